# Shared by scripts/test-deploy.sh and scripts/demo-compose.sh (sourced, not run).
# docker_up: uses the daemon DOCKER_HOST names (or the default socket) when one answers,
# else starts Debian's dockerd with its own data root, exec root and socket under
# $DEPLOY_DIR and stops it by PID on exit (deploy_down). base_image: makes sure
# debian:bookworm-slim exists, importing an mmdebstrap minbase tarball when it does not
# (Docker Hub is not needed; the tarball is cached under build/).
: "${DEPLOY_DIR:?DEPLOY_DIR must be set}"
DOCKERD_PID=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

docker_up() {
    if docker version >/dev/null 2>&1; then
        echo "deploy: using the running daemon at ${DOCKER_HOST:-the default socket}"
        return 0
    fi
    command -v dockerd >/dev/null || { echo "deploy: no daemon answers and dockerd is not installed (scripts/install-deps.sh --deploy)" >&2; return 1; }
    local d="$DEPLOY_DIR/dockerd"
    mkdir -p "$d/data" "$d/exec"
    export DOCKER_HOST="unix://$d/docker.sock"
    # No iptables rules on the host: containers reach each other on the networks the tests
    # create and the host's loopback through published ports (docker-proxy), nothing else.
    dockerd --data-root "$d/data" --exec-root "$d/exec" -H "$DOCKER_HOST" --pidfile "$d/docker.pid" \
        --iptables=false --ip-masq=false --ip6tables=false --bridge=none \
        >"$d/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 120); do
        docker version >/dev/null 2>&1 && { echo "deploy: started dockerd (pid $DOCKERD_PID, $DOCKER_HOST)"; return 0; }
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.5
    done
    echo "deploy: dockerd did not come up; its log:" >&2
    tail -n 30 "$d/dockerd.log" >&2
    return 1
}

deploy_down() {
    [ -n "$DOCKERD_PID" ] || return 0
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=""
    # dockerd leaves its default network namespace mounted in its exec root; innermost first.
    local m
    for m in $(awk -v d="$DEPLOY_DIR/dockerd/" 'index($2, d) == 1 {print $2}' /proc/mounts | tac); do
        umount "$m" || true
    done
}

base_image() {
    if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
        return 0
    fi
    local tar="$DEPLOY_DIR/bookworm-minbase.tar"
    if [ ! -s "$tar" ]; then
        say "base image: mmdebstrap --variant=minbase bookworm (cached as $tar)"
        # The host's apt sources and proxy settings decide where packages come from.
        local m
        m=$(apt_mirror)
        # As the official slim image: no manuals, docs or translations (the copyright files
        # stay); the settings stay in the image, so later apt-get installs follow them.
        mmdebstrap --variant=minbase --quiet \
            --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
            --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
            --aptopt='Dir::Cache::pkgcache ""' --aptopt='Dir::Cache::srcpkgcache ""' \
            --aptopt='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; }' \
            bookworm "${tar%.tar}.tmp.tar" "deb $m bookworm main" \
            "deb $m bookworm-updates main" "deb ${m%/debian}/debian-security bookworm-security main"
        mv "${tar%.tar}.tmp.tar" "$tar"
    fi
    docker import "$tar" debian:bookworm-slim >/dev/null
}

# The first Debian mirror the host's apt uses (deb822 or one-line sources).
apt_mirror() {
    local m
    m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null | grep -m1 -oE 'https?://[^ ]+/debian\b' || true)
    echo "${m:-http://deb.debian.org/debian}"
}

# compose ARGS...: docker-compose (Debian's 1.29) or, without it, `docker compose`.
compose() {
    if command -v docker-compose >/dev/null; then
        docker-compose "$@"
    else
        docker compose "$@"
    fi
}

# Proxy settings of this shell, passed to image builds that install packages.
build_args() {
    local v
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [ -n "${!v:-}" ] && printf -- '--build-arg\n%s\n' "$v"
    done
    return 0
}

# build_images PROJECT: builds the images deploy/compose/demo.yml names (all of them).
build_images() {
    local args
    mapfile -t args < <(build_args)
    say "images: docker-compose -f deploy/compose/demo.yml build"
    compose -p "$1" -f deploy/compose/demo.yml build "${args[@]}"
}

# run_demo PROJECT: runs deploy/compose/demo.yml (images built) until its one-shot request has
# finished; prints the request's output; fails when the request failed. The client's port on
# 127.0.0.1: CCGATE_DEMO_PORT (default 8080).
run_demo() {
    local p=$1 f=deploy/compose/demo.yml
    say "the demo: worker, server (sim), policy, client, one request (project $p)"
    compose -p "$p" -f "$f" up -d
    local id rc
    id=$(compose -p "$p" -f "$f" ps -q request)
    [ -n "$id" ] || { echo "deploy: the request service did not start" >&2; return 1; }
    rc=$(timeout 180 docker wait "$id") || { echo "deploy: the request did not finish in 180 s" >&2; return 1; }
    compose -p "$p" -f "$f" logs --no-color --no-log-prefix request
    if [ "$rc" != 0 ]; then
        echo "deploy: the request exited $rc; the services' logs:" >&2
        compose -p "$p" -f "$f" logs --no-color --tail 30 >&2
        return 1
    fi
}
