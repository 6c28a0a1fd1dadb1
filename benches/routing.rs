//! Route lookup among 1,000 routes (host-specific and any-host), the first step of every
//! request.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mcpgate::config::Config;
use mcpgate::routing::Router;

fn thousand_routes() -> Router {
    let mut yaml = String::from("listen: 127.0.0.1:1\nroutes:\n");
    for i in 0..1000 {
        yaml.push_str(&format!(
            "  - prefix: /tenant{i}/mcp\n    upstream: http://127.0.0.1:2/mcp\n    auth: none\n"
        ));
        if i % 10 == 0 {
            yaml.push_str(&format!("    host: t{i}.example.com\n"));
        }
    }
    let config = Config::from_yaml(&yaml, Path::new("."), &|_| None).expect("bench config");
    Router::new(&config.routes)
}

fn route_match(c: &mut Criterion) {
    let router = thousand_routes();
    c.bench_function("route_match/1000_routes/any_host", |b| {
        b.iter(|| {
            router.lookup(
                black_box(Some("mcp.example.com")),
                black_box("/tenant777/mcp/messages"),
            )
        })
    });
    c.bench_function("route_match/1000_routes/by_host", |b| {
        b.iter(|| {
            router.lookup(
                black_box(Some("t500.example.com")),
                black_box("/tenant500/mcp"),
            )
        })
    });
    c.bench_function("route_match/1000_routes/miss", |b| {
        b.iter(|| {
            router.lookup(
                black_box(Some("mcp.example.com")),
                black_box("/nowhere/at/all"),
            )
        })
    });
}

/// The path every request is routed on: already canonical (the common case, no allocation)
/// and one that needs decoding.
fn canonical_path(c: &mut Criterion) {
    c.bench_function("canonical_path/plain", |b| {
        b.iter(|| mcpgate::target::canonical_path(black_box("/tenant777/mcp/messages")))
    });
    c.bench_function("canonical_path/encoded", |b| {
        b.iter(|| mcpgate::target::canonical_path(black_box("/tenant777/%6Dcp//messages%3f")))
    });
}

criterion_group!(benches, route_match, canonical_path);
criterion_main!(benches);
