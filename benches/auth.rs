//! Bearer validation: a cold verification per algorithm (the signature check every new token
//! pays), a verification answered by the verified-token cache, and a whole request through
//! the gateway's `request_filter` and `upstream_request_filter` (no sockets: the request is
//! read from an in-memory stream), with an `auth: none` route as the baseline.

// The test suite's IdP, and the server it runs on.
#[path = "../tests/common/idp.rs"]
#[allow(dead_code)]
mod idp;
#[path = "../tests/common/server.rs"]
mod server;

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use idp::{Alg, Idp};
use mcpgate::auth::provider::Provider;
use mcpgate::auth::unix_now;
use mcpgate::config::Config;
use mcpgate::gateway::Gateway;
use mcpgate::snapshot::GatewayState;
use pingora::proxy::{ProxyHttp, Session};
use tokio::io::AsyncWriteExt;

const AUD: &str = "https://mcp.example.com/mcp";
const ALGS: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

/// A config with a provider whose keys come from a JWKS file (no network in the bench).
fn write_config(dir: &std::path::Path, idp: &Idp, token_cache: usize) -> std::path::PathBuf {
    let keys: Vec<_> = ALGS.iter().map(|a| idp.public_jwk(*a)).collect();
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::json!({ "keys": keys }).to_string(),
    )
    .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:1\npublic_url: https://mcp.example.com\naccess_log: false\n\
         providers:\n  idp:\n    issuer: {}\n    jwks_file: jwks.json\n    token_cache: {token_cache}\n\
         routes:\n  - prefix: /mcp\n    upstream: http://127.0.0.1:2/mcp\n    auth: {{ provider: idp, scopes: [mcp:tools] }}\n\
         \x20 - prefix: /open\n    upstream: http://127.0.0.1:2/mcp\n    auth: none\n",
        idp.issuer()
    );
    let path = dir.join("mcpgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn token(idp: &Idp, alg: Alg) -> String {
    let mut claims = idp.claims(AUD, "bench-user");
    claims["scope"] = "mcp:tools".into();
    claims["exp"] = (unix_now() + 3600).into();
    idp.sign(alg, &claims)
}

fn provider(idp: &Idp, token_cache: usize) -> Arc<Provider> {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&write_config(dir.path(), idp, token_cache)).unwrap();
    let settings = config.providers["idp"].clone();
    Arc::new(Provider::new("idp", settings, "providers.idp").unwrap())
}

fn verification(c: &mut Criterion) {
    let idp = Idp::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cold = provider(&idp, 0);
    for alg in ALGS {
        let t = token(&idp, alg);
        c.bench_function(&format!("jwt_verify/cold/{alg:?}"), |b| {
            b.iter(|| {
                rt.block_on(cold.authenticate(black_box(&t), unix_now()))
                    .unwrap()
            })
        });
    }
    let cached = provider(&idp, 1024);
    let t = token(&idp, Alg::RS256);
    rt.block_on(cached.authenticate(&t, unix_now())).unwrap();
    c.bench_function("jwt_verify/cached/RS256", |b| {
        b.iter(|| {
            rt.block_on(cached.authenticate(black_box(&t), unix_now()))
                .unwrap()
        })
    });
}

/// One request read from memory and taken through the phases that decide it.
async fn through_filters(gateway: &Gateway, request: &[u8]) -> bool {
    let (mut client, server) = tokio::io::duplex(4096);
    client.write_all(request).await.unwrap();
    let mut session = Session::new_h1(Box::new(server));
    session.read_request().await.unwrap();
    let mut ctx = gateway.new_ctx();
    let answered = gateway
        .request_filter(&mut session, &mut ctx)
        .await
        .unwrap();
    let mut upstream = session.req_header().clone();
    gateway
        .upstream_request_filter(&mut session, &mut upstream, &mut ctx)
        .await
        .unwrap();
    answered
}

fn whole_request(c: &mut Criterion) {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let state = GatewayState::load(&write_config(dir.path(), &idp, 65_536)).unwrap();
    let gateway = Gateway {
        state: Arc::new(state),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = token(&idp, Alg::RS256);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let request = |path: &str, auth: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: mcp.example.com\r\n{auth}Content-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMcp-Session-Id: 5f1c\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let open = request("/open", "");
    let protected = request("/mcp", &format!("Authorization: Bearer {jwt}\r\n"));
    assert!(
        !rt.block_on(through_filters(&gateway, &protected)),
        "the token passes"
    );
    c.bench_function("whole_request/auth_none", |b| {
        b.iter(|| rt.block_on(through_filters(&gateway, black_box(&open))))
    });
    c.bench_function("whole_request/jwt_cached", |b| {
        b.iter(|| rt.block_on(through_filters(&gateway, black_box(&protected))))
    });
}

criterion_group!(benches, verification, whole_request);
criterion_main!(benches);
