# syntax=docker/dockerfile:1
#
# The images of docker-compose.yml, one target each:
#
#   clickhouse   clickhouse-server with the dynamo_flatten functions: the binary in
#                /opt/dynamo-flatten/user_scripts/ (outside the data volume), the function file
#                and clickhouse-config/docker/dynamo_flatten.xml, which points user_scripts_path
#                there. A rebuild gives a new image and a new container: a running server's
#                pool processes never have their binary replaced under them.
#   kinesalite   a local Kinesis server (kinesalite, installed here, not at start-up) and
#                scripts/kinesis_stream.js (its healthcheck, and the stream creation step).
#   forwarder    kinesis-forwarder on Debian slim with the CA certificates.
#
#   docker build --target forwarder -t kinesis-forwarder .
#
# The build stage keeps Cargo's registry and target folder in BuildKit cache mounts, so a
# second build only compiles what changed; the binaries are copied out of the cache mount
# into /out, since a cache mount is not part of the image.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/dynamo-flatten target/release/kinesis-forwarder /out/

# ClickHouse 26.9, the release the engine tests run (chDB 4.4). Its base is Ubuntu 22.04
# (glibc 2.35); the UDF built above on Debian 12 needs no glibc symbol newer than 2.34
# (tests/py/test_compose_file.py checks the release binary for that).
FROM clickhouse/clickhouse-server:26.9.6.6 AS clickhouse
COPY --from=build /out/dynamo-flatten /opt/dynamo-flatten/user_scripts/dynamo-flatten
COPY clickhouse-config/dynamo_flatten_function.xml /etc/clickhouse-server/dynamo_flatten_function.xml
COPY clickhouse-config/docker/dynamo_flatten.xml /etc/clickhouse-server/config.d/dynamo_flatten.xml

FROM node:20-bookworm-slim AS kinesalite
# The version in package.json, which the tests run.
ARG KINESALITE_VERSION=3.3.3
RUN npm install --global --no-audit --no-fund kinesalite@${KINESALITE_VERSION} \
    && npm cache clean --force \
    && mkdir -p /var/lib/kinesalite \
    && chown node:node /var/lib/kinesalite
COPY scripts/kinesis_stream.js /opt/kinesalite/kinesis_stream.js
USER node
ENTRYPOINT ["kinesalite"]

FROM debian:bookworm-slim AS forwarder
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/kinesis-forwarder /usr/local/bin/kinesis-forwarder
USER nobody
ENTRYPOINT ["kinesis-forwarder"]
