# Build: docker build -t mcpgate .
# Run:   docker run --rm -p 8080:8080 -p 9100:9100 mcpgate
#        serves conf/mcpgate.yaml: the reference MCP server behind the passthrough strategy at
#        http://localhost:8080/mcp/everything, metrics on :9100. Your own configuration:
#        docker run --rm -p 8080:8080 -v $PWD/my-conf:/etc/mcpgate mcpgate  (my-conf/mcpgate.yaml)
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin mcpgate

# Node in the runtime image: spawned upstreams are most often Node MCP servers (npx …).
FROM node:22-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && npm install --global --no-audit --no-fund @modelcontextprotocol/server-everything@2026.8.31 \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin mcpgate
COPY --from=build /src/target/release/mcpgate /usr/local/bin/mcpgate
COPY conf/mcpgate.yaml /etc/mcpgate/mcpgate.yaml
COPY conf /etc/mcpgate/examples
USER mcpgate
EXPOSE 8080 9100
# pid file and upgrade socket default to /tmp, which the non-root user can write.
ENTRYPOINT ["/usr/local/bin/mcpgate"]
CMD ["-c", "/etc/mcpgate/mcpgate.yaml"]
