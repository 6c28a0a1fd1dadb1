# Build: docker build -t mcpgate .
# Run:   docker run -p 8080:8080 -v $PWD/conf:/etc/mcpgate mcpgate
#        (listen on 0.0.0.0 in the mounted config to be reachable from outside the container)
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin mcpgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin mcpgate
COPY --from=build /src/target/release/mcpgate /usr/local/bin/mcpgate
COPY conf /etc/mcpgate/examples
USER mcpgate
EXPOSE 8080 9100
# pid file and upgrade socket default to /tmp, which the non-root user can write.
ENTRYPOINT ["/usr/local/bin/mcpgate"]
CMD ["-c", "/etc/mcpgate/mcpgate.yaml"]
