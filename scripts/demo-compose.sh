#!/usr/bin/env bash
# make demo-compose: deploy/compose/demo.yml end to end on the simulated TEE, then down.
# Uses the Docker daemon DOCKER_HOST names (or the default socket) when one answers, else
# starts its own under build/deploy and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEPLOY_DIR=$PWD/build/deploy
mkdir -p "$DEPLOY_DIR"
source scripts/deploy-lib.sh
PROJECT=ccgate-demo
stop() {
    compose -p "$PROJECT" -f deploy/compose/demo.yml down -v >/dev/null 2>&1 || true
    deploy_down
}
trap stop EXIT
docker_up
base_image
build_images "$PROJECT"
run_demo "$PROJECT"
say "done (docker-compose -f deploy/compose/demo.yml up --build keeps it running)"
