# Test only (scripts/test-deploy.sh): the .deb installed into a fresh debian:bookworm-slim,
# with what the checks use (curl and python3 for the demo script, systemd for
# systemd-analyze verify).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY ccgate.deb /tmp/ccgate.deb
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/ccgate.deb curl python3 systemd \
 && rm -rf /var/lib/apt/lists/* /tmp/ccgate.deb
