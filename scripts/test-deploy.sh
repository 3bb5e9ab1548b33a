#!/usr/bin/env bash
# make test-deploy: the deployment files, each tested for real on this machine.
#   scripts/test-deploy.sh DEB
# 1. images (deploy/docker/Dockerfile): non-root, read-only root, HEALTHCHECK, no keys;
# 2. deploy/compose/demo.yml end to end: a chat completion through client -> server -> worker
#    and the verification document; the worker unreachable but from the server;
# 3. the OpenAI Node SDK (npm openai) against the client's published loopback port;
# 4. deploy/compose/server.yml and client.yml as users run them (sim TEE, test overrides);
# 5. the .deb: lintian, Depends, installed into a fresh container: ccgate --version, the
#    ccgate user, systemd-analyze verify on the installed units, the demo from the installed
#    files;
# 6. deploy/k8s and the compose files agree on images, ports and probes (deploy/test/check.py).
# Uses the Docker daemon DOCKER_HOST names when one answers, else starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:?usage: test-deploy.sh DEB}
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
export DEPLOY_DIR=$PWD/build/deploy
mkdir -p "$DEPLOY_DIR"
source scripts/deploy-lib.sh
T0=$(date +%s)
VERSION=$(sed -n 's/^project(ccgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IMAGE=ccgate:$VERSION
P=ccgate-test$$
LINK=ccgate-test-link$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ccgate-deploy.XXXXXX")

cleanup() {
    local rc=$?
    set +e
    compose -p "$P-demo" -f deploy/compose/demo.yml down -v >/dev/null 2>&1
    CCGATE_TEST_LINK=$LINK compose -p "$P-cli" -f deploy/compose/client.yml \
        -f deploy/test/client.link.yml down -v >/dev/null 2>&1
    CCGATE_TEST_LINK=$LINK compose -p "$P-srv" -f deploy/compose/server.yml \
        -f deploy/test/server.sim.yml down -v >/dev/null 2>&1
    docker network rm "$LINK" >/dev/null 2>&1
    deploy_down
    rm -rf "$WORK"
    [ $rc -eq 0 ] || echo "test-deploy: FAILED" >&2
    exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

docker_up
base_image

# 2 first: it builds the images.
build_images "$P-demo"
DEMO_PORT=$(free_port)
CCGATE_DEMO_PORT=$DEMO_PORT run_demo "$P-demo" | tee "$WORK/demo.out"
grep -q '^data: {.*"chat.completion.chunk"' "$WORK/demo.out" || fail "demo: no streamed chunk"
grep -q '^data: \[DONE\]' "$WORK/demo.out" || fail "demo: the stream did not end with [DONE]"
python3 - "$WORK/demo.out" <<'PY' || fail "demo: verification document"
import json, sys
doc = json.loads(open(sys.argv[1]).read().split("(GET /.well-known/ccgate/verification)\n", 1)[1])
assert doc["verified"] is True and doc["tee"] == "sim" and doc["insecure"] is True, doc
assert len(doc["measurement"]) == 96, doc
PY
pass "demo: a streamed chat completion and the verification document (verified, sim, INSECURE)"

say "1. the image"
# docker-compose 1.29 and `docker compose` name containers differently: ask for ids.
cid() { compose -p "$P-demo" -f deploy/compose/demo.yml ps -q "$1"; }
[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = 10001:10001 ] || fail "image user"
docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE" | grep -q 'ccgate health' ||
    fail "image HEALTHCHECK"
for b in ccgate ccgate-client ccgate-server ccgate-worker ccgate-kbs; do
    docker run --rm --read-only --network none --cap-drop ALL "$IMAGE" "$b" --version |
        grep -q "$VERSION" || fail "$b --version in the image"
done
pass "image: runs as 10001:10001, HEALTHCHECK with ccgate health, five programs on a read-only root"
docker run --rm --network none --user 0 "$IMAGE" sh -c \
    '! grep -rlsE "PRIVATE KEY|BEGIN CERTIFICATE" /etc/ccgate /var/lib/ccgate /root /home /usr/share/ccgate' ||
    fail "the image holds keys or certificates outside the binaries"
pass "image: no keys or certificates in /etc/ccgate, /var/lib/ccgate, homes, share"
for s in ccgate-server ccgate-worker ccgate-client; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$s")")" = healthy ] ||
        fail "$s is not healthy"
    [ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Privileged}}' "$(cid "$s")")" = "true false" ] ||
        fail "$s: expected a read-only root and no privileges"
done
pass "demo: server, worker and client healthy by their HEALTHCHECKs, read-only, unprivileged"
ports=$(docker port "$(cid ccgate-client)")
[ "$ports" = "8080/tcp -> 127.0.0.1:$DEMO_PORT" ] || fail "client ports: $ports"
[ -z "$(docker port "$(cid ccgate-server)")" ] || fail "the demo server publishes a port"
pass "demo: only the client's port is published, on 127.0.0.1"
# The worker: reachable on the server's loopback, from nowhere else.
docker exec "$(cid ccgate-server)" ccgate health http://127.0.0.1:8000/health >/dev/null ||
    fail "the server cannot reach the worker"
cvm_net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(cid ccgate-server)" | tr ' ' '\n' | grep cvm)
rc=0
docker run --rm --network "$cvm_net" "$IMAGE" ccgate health http://ccgate-server:8000/health \
    --timeout-ms 2000 >/dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "the worker answered on the server's network address (exit $rc)"
docker run --rm --network "$cvm_net" "$IMAGE" ccgate health http://ccgate-server:8443/ \
    --timeout-ms 2000 >/dev/null 2>&1 && fail "RA-TLS port answered plain HTTP"
pass "demo: the worker answers on the server's loopback only"

say "3. the OpenAI Node SDK against the client's published port"
mkdir -p "$DEPLOY_DIR/node"
if [ ! -d "$DEPLOY_DIR/node/node_modules/openai" ]; then
    (cd "$DEPLOY_DIR/node" && npm install --no-audit --no-fund --silent openai@4)
fi
cp deploy/test/openai-sdk.mjs "$DEPLOY_DIR/node/"
node "$DEPLOY_DIR/node/openai-sdk.mjs" "http://127.0.0.1:$DEMO_PORT"
compose -p "$P-demo" -f deploy/compose/demo.yml down -v >/dev/null 2>&1

say "4. server.yml and client.yml as users run them (sim TEE; test overrides)"
docker network create --internal "$LINK" >/dev/null
export CCGATE_TEST_LINK=$LINK CCGATE_MODELS_DIR=$WORK/models
mkdir -p "$WORK/models"
SRV_PORT=$(free_port)
CCGATE_SERVER_PUBLISH=127.0.0.1:$SRV_PORT compose -p "$P-srv" -f deploy/compose/server.yml \
    -f deploy/test/server.sim.yml up -d
srv=$(compose -p "$P-srv" -f deploy/compose/server.yml -f deploy/test/server.sim.yml ps -q ccgate-server)
for _ in $(seq 60); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$srv")" = healthy ] && break
    sleep 1
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "$srv")" = healthy ] || fail "server.yml: not healthy"
docker run --rm --network "$LINK" "$IMAGE" ccgate policy from-evidence \
    --server ccgate-server:8443 --allow-sim >"$WORK/policy.json"
chmod 644 "$WORK/policy.json"
CLI_PORT=$(free_port)
export CCGATE_SERVER=ccgate-server:8443 CCGATE_POLICY_FILE=$WORK/policy.json CCGATE_CLIENT_PORT=$CLI_PORT
compose -p "$P-cli" -f deploy/compose/client.yml -f deploy/test/client.link.yml up -d
app=$(compose -p "$P-cli" -f deploy/compose/client.yml -f deploy/test/client.link.yml ps -q app)
out=$(docker exec "$app" sh -c 'curl -sS --fail-with-body "$OPENAI_BASE_URL/chat/completions" \
    -H "Content-Type: application/json" \
    -d "{\"model\": \"tiny\", \"max_tokens\": 8, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"')
echo "$out" | grep -q '"chat.completion"' || fail "client.yml: the app's request: $out"
pass "client.yml + server.yml: the app's request answered through the attested pair"
curl -sS --fail "http://127.0.0.1:$CLI_PORT/v1/models" | grep -q '"tiny"' ||
    fail "client.yml: published loopback port"
pass "client.yml: the published port answers on 127.0.0.1:$CLI_PORT"

say "5. the Debian package"
lintian "$DEB" 2>&1 | grep -v 'running with root privileges' | tee "$WORK/lintian.out"
! grep -q '^E:' "$WORK/lintian.out" || fail "lintian reports errors"
pass "lintian: no errors"
depends=$(dpkg-deb -f "$DEB" Depends)
for d in adduser libc6 libcbor0.8 libjansson4 libssl3 libuv1 libxmlsec1-openssl; do
    [[ ", $depends," == *", $d"[\ ,]* ]] || fail "Depends lacks $d: $depends"
done
pass "Depends: $depends"
mkdir -p "$WORK/deb"
cp "$DEB" "$WORK/deb/ccgate.deb"
mapfile -t args < <(build_args)
docker build -q --network host "${args[@]}" -f deploy/test/deb.Dockerfile -t ccgate-deb-test:$VERSION \
    "$WORK/deb" >/dev/null
docker run --rm --network none ccgate-deb-test:$VERSION sh -c '
    set -e
    ccgate --version
    getent passwd ccgate | grep -q ":/var/lib/ccgate:/usr/sbin/nologin$"
    [ "$(stat -c %U:%a /var/lib/ccgate)" = ccgate:750 ]
    systemd-analyze verify /usr/lib/systemd/system/ccgate-client.service \
        /usr/lib/systemd/system/ccgate-server.service /usr/lib/systemd/system/ccgate-worker.service
    bash /usr/share/ccgate/demo.sh --once /usr/bin' | tee "$WORK/deb.out"
grep -q '"verified": true' "$WORK/deb.out" 2>/dev/null || grep -q 'verified *true' "$WORK/deb.out" ||
    fail "the installed demo did not show a verified server"
pass "the .deb in a fresh container: ccgate --version, the ccgate user, systemd-analyze verify, the demo"
docker rmi ccgate-deb-test:$VERSION >/dev/null

say "6. Kubernetes manifests and compose files agree"
python3 deploy/test/check.py "$VERSION"

say "sizes"
docker image inspect -f '{{index .RepoTags 0}} {{.Size}}' "$IMAGE" ccgate-demo-app:$VERSION |
    awk '{printf "image %s: %.1f MB\n", $1, $2 / 1e6}'
echo "package $(basename "$DEB"): $(stat -c %s "$DEB") bytes"
echo "test-deploy: passed in $(($(date +%s) - T0)) s"
