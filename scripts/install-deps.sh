#!/usr/bin/env bash
# Installs the Debian packages ccgate needs to build, test and run its demo, and the npm
# packages the SDK tests use (tests/integration/sdk: the official OpenAI Node SDK, pinned in its
# package-lock.json, into tests/integration/sdk/node_modules; tests then run offline).
#   scripts/install-deps.sh [--bench] [--deploy]
# --bench adds what bench/run.sh needs: the peer proxies, wrk, valgrind and taskset (node and
# npm, for bench/llama-compare too, are in the base set).
# --deploy adds what make test-deploy and make demo-compose need: Docker (daemon, CLI,
# docker-compose), mmdebstrap for the base image, lintian, PyYAML, Node.js and npm.
# Only missing packages are installed; uses sudo when not root.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libuv1-dev libssl-dev openssl node-llhttp libcbor-dev libjansson-dev libcmocka-dev
    libxml2-dev libxmlsec1-dev
    curl python3 python3-numpy python3-jwcrypto clang-14 libclang-rt-14-dev
    # promtool (tests check the sidecars' /metrics with it); iproute2 and util-linux for the
    # tests that run in network namespaces of their own.
    prometheus iproute2 util-linux
)
# Node.js and npm for tests/integration/test_openai_sdk.sh (Debian 12's nodejs 18 will do),
# unless the machine has them another way (NodeSource).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
bench=0
deploy=0
for arg in "$@"; do
    case "$arg" in
    --bench)
        bench=1
        # nginx's stream proxy is a dynamic module in Debian 12 (libnginx-mod-stream).
        pkgs+=(stunnel4 haproxy nginx libnginx-mod-stream wrk valgrind util-linux strace procps)
        # bench/llama-compare runs llama.cpp through npm's node-llama-cpp (it needs Node >= 20;
        # Debian 12's nodejs is 18, so a newer node already on the machine is kept)
        ;;
    --deploy)
        deploy=1
        # apparmor: dockerd needs its parser where the kernel enforces AppArmor (Debian 12 does).
        pkgs+=(docker.io docker-compose apparmor mmdebstrap lintian python3-yaml)
        ;;
    *)
        echo "install-deps: unknown option '$arg' (expected --bench or --deploy)" >&2
        exit 2
        ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

# The SDK tests' npm packages, as the invoking user, exactly as package-lock.json pins them.
# Without the registry this is a warning, not a failure: the build does not need them, and
# test_openai_sdk.sh then fails saying what is missing.
npm_deps() {
    local dir
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/sdk"
    [ -d "$dir/node_modules/openai" ] && return 0
    echo "install-deps: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
        echo "install-deps: warning: npm ci failed; integration.test_openai_sdk will fail" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
    npm_deps
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The packages' system services (prometheus; with --bench nginx and haproxy on every
# address; with --deploy dockerd) must not start at install time: tests, the benchmark and
# the deploy tests run their own processes. policy-rc.d says so to invoke-rc.d, and only
# while we install, unless the machine already has its own.
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
rc=0
{ $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } || rc=$?
if [ $own_policy -eq 1 ]; then
    $sudo rm -f /usr/sbin/policy-rc.d
fi
[ $rc -eq 0 ] || exit $rc
npm_deps
