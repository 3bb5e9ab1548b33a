// The official OpenAI Node SDK against ccgate-client (tests/integration/test_openai_sdk.sh).
// Usage: node errors.js BASE_URL: lists the models once with the SDK's default retry policy
// (2 retries) and prints one JSON line: what the SDK returned, or the error it raised.
'use strict';
const OpenAI = require('openai');

async function main() {
    const client = new OpenAI({ baseURL: process.argv[2] + '/v1', apiKey: 'unused', timeout: 20000 });
    const t0 = Date.now();
    try {
        const { data, response } = await client.models.list().withResponse();
        console.log(JSON.stringify({
            ok: true,
            models: data.data.map((m) => m.id),
            request_id: response.headers.get('x-request-id'),
            ms: Date.now() - t0,
        }));
    } catch (e) {
        console.log(JSON.stringify({
            ok: false,
            class: e.constructor.name,
            api_error: e instanceof OpenAI.APIError,
            internal_server_error: e instanceof OpenAI.InternalServerError,
            status: e.status,
            code: e.code,
            type: e.type,
            param: e.param,
            ccgate: e.error ? e.error.ccgate : undefined,
            request_id: e.headers ? e.headers['x-request-id'] : undefined,
            should_retry: e.headers ? e.headers['x-should-retry'] : undefined,
            message: e.message,
            ms: Date.now() - t0,
        }));
    }
}

main();
