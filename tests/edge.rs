//! The edge against hostile request targets and headers, over real sockets: an open route
//! whose prefix is the parent of a protected one, in front of an upstream that decodes
//! paths the way Starlette-based MCP servers do (uvicorn); forged identity headers; hosts
//! that could fall through to another route.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::idp::{Alg, Idp};
use common::{free_port, wait_for, Gateway, Node, Upstream};
use serde_json::Value;

const AUD: &str = "https://mcp.test/api";

/// `python3 tests/upstreams/decoding_upstream.py PORT`, stopped when dropped.
fn decoding_upstream() -> (Node, String) {
    let port = free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/upstreams/decoding_upstream.py"
    );
    let child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let url = format!("http://127.0.0.1:{port}");
    let node = Node(child);
    wait_for(
        &format!("{url}/ping"),
        "the uvicorn upstream (pip install -r tests/upstreams/requirements.txt)",
    );
    (node, url)
}

/// Sends `head` (without the final blank line) as it is; returns status and body.
fn raw(gw: &Gateway, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn get(gw: &Gateway, target: &str, extra: &str) -> (u16, String) {
    raw(
        gw,
        &format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1{extra}"),
    )
}

fn open_and_protected(idp: &Idp, upstream: &str) -> Gateway {
    let providers = format!("providers:\n  idp: {{ issuer: \"{}\" }}\n", idp.issuer());
    let routes = format!(
        "  - prefix: /api\n    upstream: {upstream}/api\n    auth: none\n\
         \x20 - prefix: /api/admin\n    upstream: {upstream}/api/admin\n    \
         auth: {{ provider: idp, audience: \"{AUD}\" }}\n    upstream_auth: {{ identity: {{}} }}\n"
    );
    let gw = Gateway::start_with(&providers, &routes);
    gw.wait_ready();
    gw
}

#[test]
fn no_spelling_of_a_protected_path_reaches_it_through_an_open_parent() {
    let idp = Idp::start();
    let (_python, upstream) = decoding_upstream();
    let gw = open_and_protected(&idp, &upstream);

    // The open route serves its own part.
    let (status, body) = get(&gw, "/api/public", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["part"],
        "public"
    );

    // Spellings the upstream would decode to /api/admin: routed as /api/admin (401), or
    // refused (400). Never the admin part without a token.
    for target in [
        "/api/admin/x",
        "/api/%61dmin/x",
        "/api/%61%64%6D%69%6E/x",
        "/api/%61DMIN/../admin/x",
        "//api/admin/x",
        "/api//admin/x",
        "/api/./admin/x",
        "/api/x/../admin/x",
        "/api/%2e%2e/api/admin/x",
        "/api;x/admin/x",
        "/api/admin;x/x",
        "/api%3bx/admin/x",
        "/api/%2561dmin/x",
        "/api%2Fadmin/x",
        "/api\\admin/x",
        "http://127.0.0.1/api/%61dmin/x",
        "HTTP://127.0.0.1/api/admin/x",
    ] {
        let (status, body) = get(&gw, target, "");
        assert!(status == 401 || status == 400, "{target}: {status} {body}");
        assert!(!body.contains("\"part\": \"admin\""), "{target}: {body}");
    }

    // Targets that are not paths at all.
    for target in [
        "*",
        "api/admin/x",
        "127.0.0.1:80",
        "ftp://127.0.0.1/api/admin/x",
    ] {
        let (status, body) = get(&gw, target, "");
        assert_eq!(status, 400, "{target}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "invalid_request"
        );
    }

    // With a token, the decoded spelling reaches the admin part as the path that was routed.
    let token = idp.sign(Alg::RS256, &idp.claims(AUD, "alice"));
    let bearer = format!("\r\nAuthorization: Bearer {token}");
    let (status, body) = get(&gw, "/api/%61dmin/%7Ex", &bearer);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["part"], "admin");
    assert_eq!(
        seen["raw_path"], "/api/admin/~x",
        "the upstream gets the canonical form"
    );
    assert_eq!(seen["headers"]["x-auth-subject"], "alice");
}

#[test]
fn identity_headers_cannot_be_forged_through_any_route() {
    let idp = Idp::start();
    let (_python, upstream) = decoding_upstream();
    let gw = open_and_protected(&idp, &upstream);
    let forged =
        "\r\nX-Auth-Subject: admin\r\nX_Auth_Email: root@example.com\r\nX-Auth-Anything: y";
    let (status, body) = get(&gw, "/api/public", forged);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let headers = seen["headers"].as_object().unwrap();
    let leaked: Vec<&String> = headers.keys().filter(|k| k.contains("auth")).collect();
    assert!(
        leaked.is_empty(),
        "forged identity reached the open route's upstream: {leaked:?}"
    );

    let token = idp.sign(Alg::RS256, &idp.claims(AUD, "alice"));
    let (status, body) = get(
        &gw,
        "/api/admin/x",
        &format!("{forged}\r\nAuthorization: Bearer {token}"),
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-auth-subject"], "alice");
    assert!(seen["headers"].get("x_auth_email").is_none(), "{seen}");
    assert!(seen["headers"].get("x-auth-anything").is_none(), "{seen}");
}

#[test]
fn hosts_are_matched_as_routes_are_written_and_non_hosts_refused() {
    let secure = Upstream::start();
    let any = Upstream::start();
    let routes = common::route("/mcp", &secure.url(), "host: secure.example")
        + &common::route("/mcp", &any.url(), "");
    let gw = Gateway::start(&routes);
    let with_host = |host: &str| raw(&gw, &format!("GET /mcp/x HTTP/1.1\r\nHost: {host}"));

    for host in [
        "secure.example",
        "SECURE.example",
        "secure.example.",
        "secure.example.:80",
        "secure.example:8080",
    ] {
        let before = secure.seen_count();
        let (status, body) = with_host(host);
        assert_eq!(status, 200, "{host}: {body}");
        assert_eq!(
            secure.seen_count(),
            before + 1,
            "{host} fell through to the any-host route"
        );
    }
    for host in [
        "secure.example,other",
        "secure.example other",
        "sécure.example",
        "a:b:c",
        "[zz]",
    ] {
        let (status, body) = with_host(host);
        assert_eq!(status, 400, "{host:?}: {body}");
    }
    // A loopback gateway serves only its own names: a browser page on another name that
    // resolves to 127.0.0.1 (DNS rebinding) reaches nothing. `.localhost` names are loopback.
    let (status, body) = with_host("evil.example");
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("invalid_request"), "{body}");
    assert_eq!(with_host("app.localhost:3000").0, 200);
    // HTTP/1.1 needs a Host; HTTP/1.0 may go without one (any-host routes).
    let (status, _) = raw(&gw, "GET /mcp/x HTTP/1.1");
    assert_eq!(status, 400);
    let (status, _) = raw(&gw, "GET /mcp/x HTTP/1.0");
    assert_eq!(status, 200);
    // The absolute-form authority names the host.
    let before = secure.seen_count();
    let (status, _) = raw(&gw, "GET http://secure.example./mcp/x HTTP/1.1");
    assert_eq!(status, 200);
    assert_eq!(secure.seen_count(), before + 1);
    assert_eq!(secure.last_seen().uri, "/x", "origin form upstream");
    assert_eq!(
        any.seen_count(),
        2,
        "only app.localhost and the HTTP/1.0 request reached the any-host route"
    );
}

#[test]
fn a_browser_on_the_gateways_own_origin_is_allowed_and_others_are_not() {
    let up = Upstream::start();
    let gw = Gateway::start(&common::route("/mcp", &up.url(), ""));
    let own = format!("http://localhost:{}", gw.port);
    for (origin, status) in [
        (own.as_str(), 200),
        (&format!("http://127.0.0.1:{}", gw.port), 200),
        ("https://claude.ai", 200),
        ("http://evil.example", 403),
        ("http://localhost:1", 403),
    ] {
        let (got, body) = get(&gw, "/mcp/x", &format!("\r\nOrigin: {origin}"));
        assert_eq!(got, status, "{origin}: {body}");
    }
}

#[test]
fn the_upstream_is_told_the_real_client_address_as_the_policy_says() {
    let up = Upstream::start();
    let claims = [
        ("X-Forwarded-For", "10.9.9.9"),
        ("Forwarded", "for=10.9.9.9"),
        ("X-Real-IP", "10.9.9.9"),
        ("X-Forwarded-Host", "admin.internal"),
    ];
    let send = |gw: &Gateway| {
        let mut req = reqwest::blocking::Client::new().get(gw.url("/mcp/x"));
        for (k, v) in claims {
            req = req.header(k, v);
        }
        assert_eq!(req.send().unwrap().status(), 200);
        up.last_seen().headers
    };

    let edge = Gateway::start(&common::route("/mcp", &up.url(), ""));
    let seen = send(&edge);
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    for gone in ["forwarded", "x-real-ip", "x-forwarded-host"] {
        assert!(
            !seen.contains_key(gone),
            "{gone} reached the upstream: {seen:?}"
        );
    }

    let behind = Gateway::start_with("forwarded: append", &common::route("/mcp", &up.url(), ""));
    let seen = send(&behind);
    assert_eq!(seen["x-forwarded-for"], "10.9.9.9, 127.0.0.1");
    assert_eq!(seen["forwarded"], "for=10.9.9.9, for=127.0.0.1");
}

#[test]
fn what_the_gateway_writes_is_never_sniffed() {
    let up = Upstream::start();
    let gw = Gateway::start(&common::route("/mcp", &up.url(), ""));
    let r = reqwest::blocking::get(gw.url("/nowhere")).unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let (status, _) = get(&gw, "*", "");
    assert_eq!(status, 400);
}
