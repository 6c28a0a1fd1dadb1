//! Bearer validation: a cold verification per algorithm (the signature check every new token
//! pays), a verification answered by the verified-token cache, an introspection-cache hit,
//! sealing and opening the gateway's own tokens, serving the authorization server metadata,
//! and a whole request through the gateway's `request_filter` and `upstream_request_filter`
//! (no sockets: the request is read from an in-memory stream) on a JWT route and on a
//! passthrough route, with an `auth: none` route as the baseline.

// The test suite's IdP, and the server it runs on.
#[path = "../tests/common/idp.rs"]
#[allow(dead_code)]
mod idp;
#[path = "../tests/common/server.rs"]
mod server;

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use idp::{Alg, Idp};
use mcpgate::auth::cache::{digest, SlotCache};
use mcpgate::auth::principal::Principal;
use mcpgate::auth::provider::Provider;
use mcpgate::auth::unix_now;
use mcpgate::config::Config;
use mcpgate::gateway::Gateway;
use mcpgate::oauth::issued::Access;
use mcpgate::oauth::seal::{Purpose, Sealer};
use mcpgate::snapshot::GatewayState;
use pingora::proxy::{ProxyHttp, Session};
use tokio::io::AsyncWriteExt;

const AUD: &str = "https://mcp.example.com/mcp";
/// The bench config's `seal_key`, raw.
const SEAL_KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
const ALGS: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

/// A config with a provider whose keys come from a JWKS file (no network in the bench).
fn write_config(dir: &std::path::Path, idp: &Idp, token_cache: usize) -> std::path::PathBuf {
    write_config_with(dir, idp, token_cache, "")
}

/// `extra`: more top-level YAML (a `state`).
fn write_config_with(
    dir: &std::path::Path,
    idp: &Idp,
    token_cache: usize,
    extra: &str,
) -> std::path::PathBuf {
    let keys: Vec<_> = ALGS.iter().map(|a| idp.public_jwk(*a)).collect();
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::json!({ "keys": keys }).to_string(),
    )
    .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:1\npublic_url: https://mcp.example.com\naccess_log: false\n{extra}\
         seal_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n\
         providers:\n  idp:\n    issuer: {}\n    jwks_file: jwks.json\n    token_cache: {token_cache}\n\
         routes:\n  - prefix: /mcp\n    upstream: http://127.0.0.1:2/mcp\n    auth: {{ provider: idp, scopes: [mcp:tools] }}\n\
         \x20 - prefix: /open\n    upstream: http://127.0.0.1:2/mcp\n    auth: none\n\
         \x20 - prefix: /keyed\n    upstream: http://127.0.0.1:2/mcp\n    auth: {{ passthrough: {{ prompt: Key, header: \"X-API-Key: {{key}}\" }} }}\n\
         \x20 - prefix: /ruled\n    upstream: http://127.0.0.1:2/mcp\n    auth: {{ provider: idp, scopes: [mcp:tools], audience: \"{AUD}\" }}\n{TEN_RULES}",
        idp.issuer()
    );
    let path = dir.join("mcpgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Ten tool rules; the bench's `echo` is decided by the last (every glob before it is tried).
const TEN_RULES: &str = "    mcp:\n      tools:\n        default: deny\n        rules:\n\
    \x20         - { name: \"delete_*\", scopes: [repo:delete] }\n\
    \x20         - { name: \"admin_*\", allow: false }\n\
    \x20         - { name: [drop_table, truncate_table], allow: false }\n\
    \x20         - { name: \"*_secret\", allow: false }\n\
    \x20         - { name: \"list_*\", allow: true }\n\
    \x20         - { name: \"get_*\", allow: true }\n\
    \x20         - { name: \"search_*\", allow: true }\n\
    \x20         - { name: create_issue, scopes: [issues:write] }\n\
    \x20         - { name: \"?pdate_*\", scopes: [issues:write] }\n\
    \x20         - { name: echo, allow: true }\n";

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
    // What an introspected token costs once answered: its digest and a cache lookup (the
    // provider's introspection cache is this table).
    let answers: SlotCache<Arc<Principal>> = SlotCache::new(65_536);
    let opaque = "an-opaque-access-token-of-typical-length-0123456789abcdef";
    let claims = serde_json::json!({"active": true, "sub": "bench-user", "scope": "mcp:tools"});
    let principal = Principal::from_claims(claims.as_object().unwrap().clone(), false);
    answers.insert(digest(opaque.as_bytes()), u64::MAX, 0, Arc::new(principal));
    c.bench_function("introspection/cache_hit", |b| {
        b.iter(|| {
            let key = digest(black_box(opaque).as_bytes());
            answers.get(&key, unix_now()).unwrap()
        })
    });
}

/// The gateway's own tokens: sealing one (at `/token`) and opening one (every request on a
/// passthrough or chained route).
fn sealing(c: &mut Criterion) {
    let sealer = Sealer::new(&SEAL_KEY, &[]);
    let access = Access {
        r: "/keyed".into(),
        g: "AbCdEfGhIjKlMnOpQrStUv".into(),
        k: "sk-0123456789abcdef0123456789abcdef".into(),
        exp: unix_now() + 3600,
        c: "a-client-id".into(),
    };
    c.bench_function("sealed_token/seal", |b| {
        b.iter(|| sealer.seal(Purpose::Access, black_box(&access)))
    });
    let sealed = sealer.seal(Purpose::Access, &access);
    c.bench_function("sealed_token/open", |b| {
        b.iter(|| {
            sealer
                .open::<Access>(Purpose::Access, black_box(&sealed))
                .unwrap()
        })
    });
}

/// The authorization server metadata as served: rendered once, then a reference count.
fn metadata(c: &mut Criterion) {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let state = GatewayState::load(&write_config(dir.path(), &idp, 0)).unwrap();
    let snapshot = state.snapshot();
    let keyed = snapshot.routes.iter().find(|r| r.spec.prefix == "/keyed");
    let server = keyed.and_then(|r| r.oauth.as_ref()).unwrap();
    c.bench_function("metadata/authorization_server", |b| {
        b.iter(|| black_box(server.metadata()))
    });
}

/// The tool-rules decision alone: a 2026-07-28 call's headers and body judged by ten rules.
fn tool_rules(c: &mut Criterion) {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let state = GatewayState::load(&write_config(dir.path(), &idp, 0)).unwrap();
    let snapshot = state.snapshot();
    let ruled = snapshot.routes.iter().find(|r| r.spec.prefix == "/ruled");
    let policy = ruled.and_then(|r| r.mcp.as_ref()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    headers.insert("mcp-method", "tools/call".parse().unwrap());
    headers.insert("mcp-name", "echo".parse().unwrap());
    let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let mut claims = idp.claims(AUD, "bench-user");
    claims["scope"] = "mcp:tools".into();
    let caller = Principal::from_claims(claims.as_object().unwrap().clone(), false);
    assert!(policy.judge(&headers, body, Some(&caller)).1.is_none());
    c.bench_function("tool_rules/judge_2026_call", |b| {
        b.iter(|| black_box(policy.judge(&headers, black_box(body), Some(&caller))))
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

/// A `redis-server` on a free port for the benches that configure `state: redis`, stopped when
/// dropped; `None` (those benches skipped) where it is not installed.
struct RedisServer(std::process::Child, u16);

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(RedisServer(child, port));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn whole_request(c: &mut Criterion) {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let gateway = |extra: &str| {
        let path = write_config_with(dir.path(), &idp, 65_536, extra);
        Gateway {
            state: Arc::new(GatewayState::load(&path).unwrap()),
        }
    };
    let memory = gateway("");
    let redis = RedisServer::start();
    let shared = redis.as_ref().map(|r| {
        gateway(&format!(
            "state: {{ redis: {{ url: \"redis://127.0.0.1:{}\" }} }}\n",
            r.1
        ))
    });
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
    let sealed = Sealer::new(&SEAL_KEY, &[]).seal(
        Purpose::Access,
        &Access {
            r: "/keyed".into(),
            g: "AbCdEfGhIjKlMnOpQrStUv".into(),
            k: "sk-0123456789abcdef0123456789abcdef".into(),
            exp: unix_now() + 3600,
            c: "a-client-id".into(),
        },
    );
    let keyed = request("/keyed/x", &format!("Authorization: Bearer {sealed}\r\n"));
    // A tools/call of each protocol generation: 2026-07-28 mirrors method and name into
    // headers (checked against the body), 2025-11-25 names them in the body only.
    let call = |path: &str, modern: bool| {
        let (headers, meta) = if modern {
            (
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n",
                r#","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#,
            )
        } else {
            (
                "MCP-Protocol-Version: 2025-11-25\r\nMcp-Session-Id: 5f1c\r\n",
                "",
            )
        };
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hello"}}{meta}}}}}"#
        );
        format!(
            "POST {path} HTTP/1.1\r\nHost: mcp.example.com\r\nAuthorization: Bearer {jwt}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             {headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let (plain_2026, ruled_2026) = (call("/mcp", true), call("/ruled", true));
    let (plain_2025, ruled_2025) = (call("/mcp", false), call("/ruled", false));
    for g in std::iter::once(&memory).chain(&shared) {
        for (name, r) in [
            ("the JWT", &protected),
            ("the sealed token", &keyed),
            ("a 2026-07-28 call", &ruled_2026),
            ("a 2025-11-25 call", &ruled_2025),
        ] {
            assert!(!rt.block_on(through_filters(g, r)), "{name} passes");
        }
    }
    c.bench_function("whole_request/auth_none", |b| {
        b.iter(|| rt.block_on(through_filters(&memory, black_box(&open))))
    });
    c.bench_function("whole_request/jwt_cached", |b| {
        b.iter(|| rt.block_on(through_filters(&memory, black_box(&protected))))
    });
    c.bench_function("whole_request/passthrough_sealed", |b| {
        b.iter(|| rt.block_on(through_filters(&memory, black_box(&keyed))))
    });
    // Tool rules: the same JWT route without and with ten rules, for each generation.
    for (name, request) in [
        ("whole_request/tools_call_2026/no_rules", &plain_2026),
        ("whole_request/tools_call_2026/ten_rules", &ruled_2026),
        ("whole_request/tools_call_2025/no_rules", &plain_2025),
        ("whole_request/tools_call_2025/ten_rules", &ruled_2025),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| rt.block_on(through_filters(&memory, black_box(request))))
        });
    }
    // The same with `state: redis`: a bearer check asks Redis nothing (revocations are read
    // from the local view), so these must cost what the memory state's do.
    let Some(shared) = &shared else {
        eprintln!("redis-server is not installed: the state: redis benches are skipped");
        return;
    };
    c.bench_function("whole_request/jwt_cached/state_redis", |b| {
        b.iter(|| rt.block_on(through_filters(shared, black_box(&protected))))
    });
    c.bench_function("whole_request/passthrough_sealed/state_redis", |b| {
        b.iter(|| rt.block_on(through_filters(shared, black_box(&keyed))))
    });
}

criterion_group!(
    benches,
    verification,
    sealing,
    metadata,
    tool_rules,
    whole_request
);
criterion_main!(benches);
