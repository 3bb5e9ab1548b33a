#!/usr/bin/env bash
# ccgate-worker's OpenAI API with real curl on 127.0.0.1 and a Unix socket: routes, streaming,
# every error shape, concurrency, client disconnects freeing their sequence, bad flags.
set -euo pipefail
: "${CG_BIN:?CG_BIN must name the bin directory}"
W=$CG_BIN/ccgate-worker
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-test_worker_api.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    cat "$tmp"/*.err >&2 2>/dev/null || true
    exit 1
}

# Starts the worker with the given flags; waits for "listening on" (10 s); sets PID and ADDR.
start() {
    local name=$1
    shift
    "$W" "$@" 2>"$tmp/$name.err" &
    PID=$!
    pids+=("$PID")
    for _ in $(seq 200); do
        ADDR=$(sed -n 's/^listening on //p' "$tmp/$name.err")
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || fail "$name exited early"
        sleep 0.05
    done
    fail "$name never said it was listening"
}

# post PATH JSON -> body in $tmp/out, status in $CODE
post() {
    CODE=$(curl -s -m 60 -o "$tmp/out" -w '%{http_code}' "http://$ADDR$1" \
        -H 'Content-Type: application/json' --data-binary "$2")
}
field() { python3 -c "import json,sys; d=json.load(open('$tmp/out')); print($1)"; }
expect_error() { # status param-or-None code-or-None
    [ "$CODE" = "$1" ] || fail "status $CODE, want $1: $(cat "$tmp/out")"
    [ "$(field "d['error']['param']")" = "$2" ] || fail "param: $(cat "$tmp/out")"
    [ "$(field "d['error']['code']")" = "$3" ] || fail "code: $(cat "$tmp/out")"
    [ -n "$(field "d['error']['message']")" ] || fail "message"
    [ -n "$(field "d['error']['type']")" ] || fail "type"
}

# Flags.
"$W" --help | grep -q "/v1/chat/completions" || fail "--help"
rc=0; "$W" --bogus 2>/dev/null || rc=$?; [ "$rc" = 2 ] || fail "bad flag exit $rc"
rc=0; "$W" --listen 10.1.2.3:80 --model builtin:tiny 2>"$tmp/nl.err" || rc=$?
[ "$rc" = 2 ] && grep -q "loopback only" "$tmp/nl.err" || fail "non-loopback listen accepted"
rc=0; "$W" --listen 127.0.0.1:0 --model "$tmp/missing.gguf" 2>"$tmp/nm.err" || rc=$?
[ "$rc" = 2 ] && grep -q "missing.gguf" "$tmp/nm.err" || fail "missing model"
printf 'GGUF\3\0\0\0' > "$tmp/trunc.gguf"
rc=0; "$W" --listen 127.0.0.1:0 --model "$tmp/trunc.gguf" 2>"$tmp/tr.err" || rc=$?
[ "$rc" = 2 ] && grep -q "truncated" "$tmp/tr.err" || fail "truncated model"

# --device cuda without a usable GPU (or without CUDA in this build) is a clear start-up error.
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi >/dev/null 2>&1; then
    rc=0; "$W" --listen 127.0.0.1:0 --model builtin:tiny --device cuda 2>"$tmp/cu.err" || rc=$?
    [ "$rc" = 2 ] && grep -q "device cuda" "$tmp/cu.err" || fail "--device cuda without GPU"
fi

start main --listen 127.0.0.1:0 --model builtin:tiny --threads 2 --ctx 512 --max-batch 4 --max-body 65536

# Discovery and health.
CODE=$(curl -s -o "$tmp/out" -w '%{http_code}' "http://$ADDR/v1/models")
[ "$CODE" = 200 ] && [ "$(field "d['data'][0]['id']")" = tiny ] || fail "/v1/models"
curl -s "http://$ADDR/health" > "$tmp/out"
[ "$(field "d['device']")" != "" ] && [ "$(field "d['model']")" = tiny ] || fail "/health"
[ "$(field "d['cc_mode']")" != "" ] || fail "/health cc_mode"
grep -q "worker.device" "$tmp/main.err" || [ "$(field "d['backend']")" = cuda ] || fail "auto did not say why it uses the CPU"

# Completions: usage, determinism of greedy and of a fixed seed.
post /v1/completions '{"model":"tiny","prompt":"hello world","max_tokens":12,"temperature":0,"ignore_eos":true}'
[ "$CODE" = 200 ] || fail "completion $CODE"
[ "$(field "d['object']")" = text_completion ] || fail "object"
[ "$(field "d['usage']['completion_tokens']")" -le 12 ] || fail "usage"
[ "$(field "d['usage']['total_tokens'] == d['usage']['prompt_tokens'] + d['usage']['completion_tokens']")" = True ] || fail "total"
t1=$(field "d['choices'][0]['text']")
post /v1/completions '{"model":"tiny","prompt":"hello world","max_tokens":12,"temperature":0,"ignore_eos":true}'
[ "$(field "d['choices'][0]['text']")" = "$t1" ] || fail "greedy not deterministic"
post /v1/completions '{"model":"tiny","prompt":["the model"],"max_tokens":10,"temperature":0.9,"top_p":0.9,"top_k":40,"seed":7}'
s1=$(field "d['choices'][0]['text']")
post /v1/completions '{"model":"tiny","prompt":["the model"],"max_tokens":10,"temperature":0.9,"top_p":0.9,"top_k":40,"seed":7}'
[ "$(field "d['choices'][0]['text']")" = "$s1" ] || fail "seeded sampling not deterministic"
post /v1/completions '{"model":"tiny","prompt":[1,50,60],"max_tokens":3}'
[ "$CODE" = 200 ] && [ "$(field "d['usage']['prompt_tokens']")" = 3 ] || fail "token prompt"

# Chat, non-streaming and streaming (SSE ending with [DONE]).
post /v1/chat/completions '{"model":"tiny","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hello"}]}],"max_tokens":8,"temperature":0}'
[ "$CODE" = 200 ] && [ "$(field "d['choices'][0]['message']['role']")" = assistant ] || fail "chat"
chat_text=$(field "d['choices'][0]['message']['content']")
curl -sN -m 60 "http://$ADDR/v1/chat/completions" -d '{"model":"tiny","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' > "$tmp/sse"
[ "$(tail -n 2 "$tmp/sse" | head -n 1)" = "data: [DONE]" ] || fail "no [DONE]: $(tail -3 "$tmp/sse")"
python3 - "$tmp/sse" "$chat_text" <<'PY' || fail "SSE content"
import json, sys
events = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert events[-1] == "[DONE]"
chunks = [json.loads(e) for e in events[:-1]]
text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
assert text == sys.argv[2], (text, sys.argv[2])
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert chunks[-2]["choices"][0]["finish_reason"] in ("length", "stop")
assert chunks[-1]["usage"]["completion_tokens"] >= 1
PY
# Stop strings cut the text before them.
post /v1/completions '{"model":"tiny","prompt":"hello world","max_tokens":12,"temperature":0,"ignore_eos":true,"stop":["zzz","'"${t1:3:2}"'"]}'
[ "$(field "d['choices'][0]['finish_reason']")" = stop ] || fail "stop: $(cat "$tmp/out")"

# Errors in OpenAI's shape.
post /v1/completions '{bad json'; expect_error 400 None None
post /v1/completions '[1,2]'; expect_error 400 None None
post /v1/completions '{"prompt":"a"}'; expect_error 400 model None
post /v1/completions '{"model":"gpt-4","prompt":"a"}'; expect_error 404 model model_not_found
post /v1/completions '{"model":"tiny","prompt":"a","temperature":"hot"}'; expect_error 400 temperature None
post /v1/completions '{"model":"tiny","prompt":"a","temperature":3}'; expect_error 400 temperature None
post /v1/completions '{"model":"tiny","prompt":"a","top_p":0}'; expect_error 400 top_p None
post /v1/completions '{"model":"tiny","prompt":"a","max_tokens":0}'; expect_error 400 max_tokens None
post /v1/completions '{"model":"tiny","prompt":"a","max_tokens":1.5}'; expect_error 400 max_tokens None
post /v1/completions '{"model":"tiny","prompt":"a","top_k":-1}'; expect_error 400 top_k None
post /v1/completions '{"model":"tiny","prompt":"a","seed":"x"}'; expect_error 400 seed None
post /v1/completions '{"model":"tiny","prompt":"a","n":2}'; expect_error 400 n None
post /v1/completions '{"model":"tiny","prompt":"a","stream":"yes"}'; expect_error 400 stream None
post /v1/completions '{"model":"tiny","prompt":"a","ignore_eos":1}'; expect_error 400 ignore_eos None
post /v1/completions '{"model":"tiny","prompt":"a","stop":["a","b","c","d","e"]}'; expect_error 400 stop None
post /v1/completions '{"model":"tiny","prompt":"a","stop":[""]}'; expect_error 400 stop None
post /v1/completions '{"model":"tiny","prompt":{"x":1}}'; expect_error 400 prompt None
post /v1/completions '{"model":"tiny","prompt":[99999]}'; expect_error 400 prompt None
post /v1/chat/completions '{"model":"tiny"}'; expect_error 400 messages None
post /v1/chat/completions '{"model":"tiny","messages":[{"role":"wizard","content":"x"}]}'; expect_error 400 messages None
post /v1/chat/completions '{"model":"tiny","messages":[{"role":"user","content":5}]}'; expect_error 400 messages None
long=$(python3 -c "print('hello ' * 700)")
post /v1/completions "{\"model\":\"tiny\",\"prompt\":\"$long\"}"; expect_error 400 prompt context_length_exceeded
big=$(python3 -c "print('x' * 70000)")
post /v1/completions "{\"model\":\"tiny\",\"prompt\":\"$big\"}"
[ "$CODE" = 413 ] || fail "body limit: $CODE"
post /v1/nothing '{}'; expect_error 404 None None
CODE=$(curl -s -o "$tmp/out" -w '%{http_code}' "http://$ADDR/v1/completions")
expect_error 405 None None

# Keep-alive: two requests on one connection.
curl -s -m 30 "http://$ADDR/health" "http://$ADDR/v1/models" -o /dev/null -o /dev/null -w '%{num_connects}\n' > "$tmp/ka"
[ "$(tail -1 "$tmp/ka")" = 0 ] || fail "keep-alive not reused"

# Concurrency: 6 streams at once (4 slots + queue) all complete with the same text as alone.
for i in 1 2 3 4 5 6; do
    curl -sN -m 120 "http://$ADDR/v1/completions" -d '{"model":"tiny","prompt":"hello world","max_tokens":12,"temperature":0,"ignore_eos":true,"stream":true}' > "$tmp/c$i" &
    cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p" || fail "concurrent stream failed"; done
for i in 1 2 3 4 5 6; do
    got=$(python3 -c "
import json
ev=[l[6:] for l in open('$tmp/c$i').read().split('\n') if l.startswith('data: ')]
assert ev[-1]=='[DONE]'
print(''.join(json.loads(e)['choices'][0]['text'] for e in ev[:-1]))")
    [ "$got" = "$t1" ] || fail "concurrent stream $i differs: [$got] vs [$t1]"
done

# A client that disconnects frees its sequence at once. A worker of its own with a long
# context: 4,000 tokens take seconds even with the SIMD kernels (480 could end first).
start long --listen 127.0.0.1:0 --model builtin:tiny --threads 2 --ctx 4096 --max-batch 1
curl -sN -m 60 "http://$ADDR/v1/completions" -d '{"model":"tiny","prompt":"one","max_tokens":4000,"temperature":1,"ignore_eos":true,"stream":true}' > "$tmp/dc" &
cp=$!
for _ in $(seq 200); do [ -s "$tmp/dc" ] && break; sleep 0.05; done
[ -s "$tmp/dc" ] || fail "no stream started"
grep -q '\[DONE\]' "$tmp/dc" && fail "the stream ended before the client left"
kill "$cp"; wait "$cp" 2>/dev/null || true
freed=0
for _ in $(seq 100); do
    curl -s "http://$ADDR/health" > "$tmp/out"
    if [ "$(field "d['running']")" = 0 ]; then freed=1; break; fi
    sleep 0.05
done
[ "$freed" = 1 ] || fail "disconnected client still holds a sequence"

# Timeouts: a request that never completes and an idle connection are closed.
start slow --listen 127.0.0.1:0 --model builtin:tiny --threads 1 --request-timeout 1 --idle-timeout 2
python3 - "$ADDR" <<'PY' || fail "timeouts"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
def closed_within(payload, limit):
    s = socket.create_connection((host, int(port)))
    s.settimeout(limit)
    if payload:
        s.sendall(payload)
    t = time.time()
    try:
        data = s.recv(100)
    except socket.timeout:
        return None
    return time.time() - t if data == b"" else None
r = closed_within(b"GET /health HTTP/1.1\r\nHost: x\r\n", 10)   # half a request
assert r is not None and r < 5, r
i = closed_within(b"", 10)                                          # nothing at all
assert i is not None and 1 < i < 8, i
PY

# Unix socket.
start unix --listen "unix:$tmp/w.sock" --model builtin:tiny --threads 1
curl -s --unix-socket "$tmp/w.sock" http://x/v1/models | grep -q '"tiny"' || fail "unix socket"

# SIGTERM stops cleanly.
kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$PID" 2>/dev/null; then fail "no exit on SIGTERM"; fi
wait "$PID" || fail "exit status $? on SIGTERM"
echo PASS
