#!/usr/bin/env bash
# Installs the Debian packages ccgate needs to build, test and run its demo.
#   scripts/install-deps.sh [--bench]
# --bench adds what bench/run.sh needs: the peer proxies, wrk, valgrind and taskset.
# Only missing packages are installed; uses sudo when not root.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libuv1-dev libssl-dev openssl node-llhttp libcbor-dev libjansson-dev libcmocka-dev
    curl python3 python3-numpy clang-14 libclang-rt-14-dev
)
bench=0
if [ "${1:-}" = "--bench" ]; then
    bench=1
    # nginx's stream proxy is a dynamic module in Debian 12 (libnginx-mod-stream).
    pkgs+=(stunnel4 haproxy nginx libnginx-mod-stream wrk valgrind util-linux strace procps)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The benchmark runs its own proxies on 127.0.0.1; the packages' system services (nginx and
# haproxy on every address) must not start at install time. policy-rc.d says so to
# invoke-rc.d, and only while we install, unless the machine already has its own.
own_policy=0
if [ $bench -eq 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
rc=0
{ $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } || rc=$?
if [ $own_policy -eq 1 ]; then
    $sudo rm -f /usr/sbin/policy-rc.d
fi
exit $rc
