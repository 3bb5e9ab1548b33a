// llama.cpp side of bench/llama-compare: loads a GGUF through node-llama-cpp (prebuilt
// llama.cpp), prefills the prompt the worker side uses, generates greedily, prints one JSON
// line {prefill_s, decode_s, tokens}. Usage:
//   node llama.mjs MODEL.gguf PROMPT_TOKENS GEN_TOKENS THREADS cpu|cuda
// run.sh installs node-llama-cpp under build/llama-compare (never into the repository) and
// runs a copy of this file from there, where Node finds the package.
import {getLlama} from "node-llama-cpp";

const [model, promptArg, genArg, threadsArg, device] = process.argv.slice(2);
if (!model || !promptArg || !genArg || !threadsArg || !["cpu", "cuda"].includes(device)) {
    console.error("usage: node llama.mjs MODEL.gguf PROMPT_TOKENS GEN_TOKENS THREADS cpu|cuda");
    process.exit(2);
}
const nPrompt = Number(promptArg), nGen = Number(genArg), threads = Number(threadsArg);

const llama = await getLlama({
    gpu: device === "cuda" ? "cuda" : false,
    build: "never",
    maxThreads: threads,
    logLevel: "error",
});
const m = await llama.loadModel({modelPath: model, gpuLayers: device === "cuda" ? "max" : 0});
const ctx = await m.createContext({
    contextSize: 1024,
    batchSize: 512,
    threads: {ideal: threads, min: threads},
    sequences: 1,
});
const seq = ctx.getSequence();
// The same prompt as gb-gen: BOS, then ids spread over ordinary pieces (every shape
// gen-model writes has at least 32,000).
const prompt = [1];
for (let i = 1; i < nPrompt; i++)
    prompt.push(300 + ((i * 7919) % 31000));

async function run(p, gen) {
    await seq.clearHistory();
    const out = [];
    const t0 = process.hrtime.bigint();
    let t1 = t0;
    for await (const tok of seq.evaluate(p, {temperature: 0})) {
        if (out.length === 0)
            t1 = process.hrtime.bigint();
        out.push(tok);
        if (out.length === gen)
            break;
    }
    const t2 = process.hrtime.bigint();
    return {prefill_s: Number(t1 - t0) / 1e9, decode_s: Number(t2 - t1) / 1e9, tokens: out};
}

await run(prompt.slice(0, 8), 2); // warm-up: page in the weights, build the compute graph
const r = await run(prompt, nGen);
console.log(JSON.stringify({prefill_s: r.prefill_s, decode_s: r.decode_s, decode_steps: nGen - 1,
                            prompt: nPrompt, tokens: r.tokens}));
await ctx.dispose();
await m.dispose();
await llama.dispose();
