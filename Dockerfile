# Both programs, for docker-compose.yml: the UDF (copied into the ClickHouse image's
# user_scripts) and the forwarder.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/dynamo-flatten /src/target/release/kinesis-forwarder /usr/local/bin/
ENTRYPOINT ["kinesis-forwarder"]
