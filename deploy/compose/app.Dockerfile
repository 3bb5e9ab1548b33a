# The demo's app: anything that speaks HTTP to ccgate-client. Here curl, as a non-root user.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* && useradd --uid 10002 --no-create-home --shell /usr/sbin/nologin app
USER 10002:10002
