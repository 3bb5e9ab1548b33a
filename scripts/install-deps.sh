#!/usr/bin/env bash
# Installs the Debian packages ccgate needs to build, test and run its demo.
# Only missing packages are installed; uses sudo when not root.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libuv1-dev libssl-dev openssl node-llhttp libcbor-dev libjansson-dev libcmocka-dev
    curl python3 python3-numpy clang-14 libclang-rt-14-dev
)

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
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
