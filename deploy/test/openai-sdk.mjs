// The OpenAI Node SDK (npm `openai`), unmodified, against ccgate-client's published port:
// the app changes nothing but its base URL. Usage: node openai-sdk.mjs http://127.0.0.1:PORT
import OpenAI from "openai";

const base = process.argv[2];
if (!base) {
  console.error("usage: node openai-sdk.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const fail = (what) => {
  console.error(`FAIL: ${what}`);
  process.exit(1);
};
// ccgate asks for no API key; the SDK insists on one, the worker ignores it.
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60000 });

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
if (!ids.includes("tiny")) fail(`models.list: expected "tiny", got ${JSON.stringify(ids)}`);
console.log(`ok: models.list -> ${ids.join(", ")}`);

const done = await client.chat.completions.create({
  model: "tiny",
  max_tokens: 12,
  messages: [{ role: "user", content: "Say something." }],
});
const text = done.choices?.[0]?.message?.content;
if (typeof text !== "string" || text.length === 0) fail(`chat completion: no content in ${JSON.stringify(done)}`);
if (!done.usage || done.usage.completion_tokens < 1) fail(`chat completion: usage ${JSON.stringify(done.usage)}`);
console.log(`ok: chat.completions.create -> ${JSON.stringify(text)} (${done.usage.completion_tokens} tokens)`);

const stream = await client.chat.completions.create({
  model: "tiny",
  max_tokens: 12,
  stream: true,
  messages: [{ role: "user", content: "Stream something." }],
});
let chunks = 0, streamed = "";
for await (const chunk of stream) {
  chunks++;
  streamed += chunk.choices?.[0]?.delta?.content ?? "";
}
if (chunks < 2 || streamed.length === 0) fail(`stream: ${chunks} chunks, text ${JSON.stringify(streamed)}`);
console.log(`ok: streamed ${chunks} chunks -> ${JSON.stringify(streamed)}`);

// What the client verified: answered by ccgate-client itself, never forwarded.
const v = await (await fetch(`${base}/.well-known/ccgate/verification`)).json();
if (v.verified !== true || v.tee !== "sim" || v.insecure !== true)
  fail(`verification document: ${JSON.stringify(v)}`);
console.log(`ok: verification: verified=${v.verified} tee=${v.tee} insecure=${v.insecure} measurement=${v.measurement}`);
