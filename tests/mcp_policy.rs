//! MCP-aware policy through the real gateway: tool rules decided in `request_filter` on the
//! JSON-RPC body (and the 2026-07-28 headers checked against it), bodies that pass reaching
//! the upstream byte for byte, refusals that never reach it, and one audit line per call.
//! A real IdP signs the tokens; a real upstream records what it got. The SDK clients' runs
//! against a real MCP server are in `mcp_policy_e2e.rs`.

mod common;

use common::idp::{Alg, Idp};
use common::{Gateway, Upstream};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const AUD: &str = "https://mcp.test/api";

/// A route with tool rules over `up`; `mcp_extra` adds keys to its `mcp` block.
fn gateway(idp: &Idp, up: &Upstream, mcp_extra: &str) -> Gateway {
    let extra = format!(
        "audit_log: audit.log\nproviders:\n  idp:\n    issuer: {}\n",
        idp.issuer()
    );
    let routes = format!(
        r#"  - prefix: /mcp
    upstream: {up}
    auth:
      provider: idp
      audience: "{AUD}"
      scopes: [mcp]
      roles: {{ from_claim: roles }}
    mcp:
      {mcp_extra}
      tools:
        default: deny
        rules:
          - {{ name: [echo, "list_*"], allow: true }}
          - {{ name: "delete_*", scopes: [repo:delete] }}
          - {{ name: admin_reset, roles: [admin] }}
  - prefix: /open
    upstream: {up}
    auth: none
    mcp:
      max_body: 1KiB
"#,
        up = up.url()
    );
    let gw = Gateway::start_with(&extra, &routes);
    gw.wait_ready();
    gw
}

fn token(idp: &Idp, sub: &str, scope: &str, roles: &[&str]) -> String {
    let mut claims = idp.claims(AUD, sub);
    claims["scope"] = json!(scope);
    claims["roles"] = json!(roles);
    claims["client_id"] = json!("test-client");
    idp.sign(Alg::ES256, &claims)
}

fn post(gw: &Gateway, path: &str, token: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut req = Client::new()
        .post(gw.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn call(id: u32, tool: &str, arguments: Value) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}})
        .to_string()
}

fn json_of(r: Response) -> Value {
    let text = r.text().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn audit_lines(gw: &Gateway, at_least: usize) -> Vec<Value> {
    let path = gw.dir.path().join("audit.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("an audit line is one JSON object"))
            .collect();
        if lines.len() >= at_least {
            return lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} audit lines, wanted {at_least}:\n{text}",
            lines.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn tool_calls_are_decided_before_the_upstream_and_audited() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = gateway(&idp, &up, "");
    let ann = token(&idp, "ann", "mcp", &["admin"]);

    // Allowed: the body reaches the upstream byte for byte (the proxy replays what the
    // gateway read), with the client's length.
    let body = call(
        1,
        "echo",
        json!({"message": "héllo", "secret": "s3cr3t-argument"}),
    );
    let r = post(&gw, "/mcp", &ann, &[], &body);
    assert_eq!(r.status(), 200);
    let seen = up.last_seen();
    assert_eq!(seen.body, body.as_bytes());
    assert_eq!(seen.headers["content-length"], body.len().to_string());
    assert!(!seen.headers.contains_key("authorization"));

    // A chunked body (a reader of unknown length) arrives whole too.
    let r = Client::new()
        .post(gw.url("/mcp"))
        .header("Authorization", format!("Bearer {ann}"))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            body.clone().into_bytes(),
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.last_seen().headers["transfer-encoding"], "chunked");
    assert_eq!(up.last_seen().body, body.as_bytes());

    // Denied by the default, by a role: 403 naming the rule; the upstream never sees it.
    let before = up.seen_count();
    let r = post(&gw, "/mcp", &ann, &[], &call(2, "format_disk", json!({})));
    assert_eq!(r.status(), 403);
    // A JSON-RPC error for the request's id, the OAuth error in its data.
    let refusal = json_of(r);
    assert_eq!(refusal["id"], 2);
    assert_eq!(refusal["error"]["code"], -32003);
    assert_eq!(refusal["error"]["data"]["error"], "access_denied");
    assert!(refusal["error"]["data"]["error_description"]
        .as_str()
        .unwrap()
        .contains("refused by default"));
    let bob = token(&idp, "bob", "mcp", &[]);
    let r = post(&gw, "/mcp", &bob, &[], &call(3, "admin_reset", json!({})));
    assert_eq!(r.status(), 403);
    assert!(json_of(r)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("routes[0].mcp.tools.rules[2] (admin_reset)"));

    // Step-up: more scope would do; the challenge says which (the route's and the rule's),
    // and the resource metadata advertises it.
    let r = post(
        &gw,
        "/mcp",
        &ann,
        &[],
        &call(4, "delete_repository", json!({})),
    );
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with(
            r#"Bearer error="insufficient_scope", scope="mcp repo:delete", resource_metadata=""#
        ),
        "{challenge}"
    );
    assert_eq!(json_of(r)["error"]["data"]["error"], "insufficient_scope");
    let prm: Value = Client::new()
        .get(gw.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(prm["scopes_supported"], json!(["mcp", "repo:delete"]));
    assert_eq!(
        up.seen_count(),
        before,
        "no refused call reached the upstream"
    );
    let stepped_up = token(&idp, "ann", "mcp repo:delete", &[]);
    let r = post(
        &gw,
        "/mcp",
        &stepped_up,
        &[],
        &call(5, "delete_repository", json!({})),
    );
    assert_eq!(r.status(), 200);

    // Counted per route, tool and decision (a tool the upstream never listed is unnamed).
    let metrics = gw.metrics();
    assert_eq!(
        common::metric_value(
            &metrics,
            r#"mcpgate_mcp_requests_total{decision="step_up",method="tools/call",name="(unlisted)",route="/mcp"}"#
        ),
        1.0,
        "{metrics}"
    );

    // One audit line per call: who, which tool, the decision, the status; the arguments'
    // digest and never the arguments.
    let lines = audit_lines(&gw, 6);
    let echo = &lines[0];
    assert_eq!(echo["sub"], "ann");
    assert_eq!(echo["client"], "test-client");
    assert_eq!(echo["route"], "/mcp");
    assert_eq!(echo["mcp_method"], "tools/call");
    assert_eq!(echo["name"], "echo");
    assert_eq!(echo["decision"], "allowed");
    assert_eq!(echo["status"], 200);
    assert_eq!(echo["arguments_sha256"].as_str().map(str::len), Some(64));
    let decisions: Vec<(&str, &str, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap_or(""),
                l["decision"].as_str().unwrap_or(""),
                l["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("echo", "allowed", 200),
            ("echo", "allowed", 200),
            ("format_disk", "denied", 403),
            ("admin_reset", "denied", 403),
            ("delete_repository", "step_up", 403),
            ("delete_repository", "allowed", 200),
        ]
    );
    let text = std::fs::read_to_string(gw.dir.path().join("audit.log")).unwrap();
    assert!(!text.contains("s3cr3t-argument"), "{text}");
    assert!(!gw.log().contains("s3cr3t-argument"));
    assert!(
        !gw.log().contains("mcpgate::audit"),
        "audit lines go to their own file"
    );
}

#[test]
fn headers_that_disagree_with_the_body_never_reach_the_upstream() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = gateway(&idp, &up, "");
    let ann = token(&idp, "ann", "mcp", &["admin"]);
    let modern = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
    ];

    // Agreeing headers (the name in its Base64 form, too) pass.
    for name in ["echo", "=?base64?ZWNobw==?="] {
        let mut headers = modern.to_vec();
        headers.push(("Mcp-Name", name));
        let r = post(&gw, "/mcp", &ann, &headers, &call(1, "echo", json!({})));
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(up.last_seen().headers["mcp-name"], name);
    }
    let before = up.seen_count();
    // A header naming an allowed tool on a body calling a denied one: 400, -32020.
    let mut spoofed = modern.to_vec();
    spoofed.push(("Mcp-Name", "echo"));
    let r = post(
        &gw,
        "/mcp",
        &ann,
        &spoofed,
        &call(7, "format_disk", json!({})),
    );
    assert_eq!(r.status(), 400);
    let error = json_of(r);
    assert_eq!(error["id"], 7);
    assert_eq!(error["error"]["code"], -32020);
    // Missing and undecodable names, a method that disagrees.
    for (name, method) in [
        (None, "tools/call"),
        (Some("=?base64?***?="), "tools/call"),
        (Some("echo"), "tools/list"),
    ] {
        let mut headers = vec![
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
        ];
        headers.extend(name.map(|n| ("Mcp-Name", n)));
        let r = post(&gw, "/mcp", &ann, &headers, &call(8, "echo", json!({})));
        assert_eq!(r.status(), 400, "{name:?} {method}");
        assert_eq!(json_of(r)["error"]["code"], -32020);
    }
    assert_eq!(up.seen_count(), before);
}

#[test]
fn bad_bodies_get_a_clear_4xx_and_nothing_reaches_the_upstream() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = gateway(&idp, &up, "");
    let ann = token(&idp, "ann", "mcp", &["admin"]);
    let big = call(1, "echo", json!({"message": "x".repeat(2000)}));
    for (path, body, status, error) in [
        ("/mcp", "{\"jsonrpc\":\"2.0\",", 400, "not valid JSON-RPC"),
        ("/mcp", "", 400, "not a JSON-RPC message"),
        (
            "/mcp",
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            400,
            "batches",
        ),
        (
            "/mcp",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            400,
            "needs params.name",
        ),
        (
            "/mcp",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"echo"}}"#,
            400,
            "expected shape",
        ),
        (
            "/open",
            &big,
            413,
            "larger than this route reads (1024 bytes)",
        ),
    ] {
        let r = post(&gw, path, &ann, &[], body);
        assert_eq!(r.status().as_u16(), status, "{body}");
        let answer = json_of(r);
        assert_eq!(answer["error"], "invalid_request");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(error), "{body}: {description}");
    }
    assert_eq!(up.seen_count(), 0);
    // The gateway still serves, and the open route (no rules) passes a batch on.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;
    assert_eq!(post(&gw, "/open", "", &[], batch).status(), 200);
    assert_eq!(up.last_seen().body, batch.as_bytes());
    let metrics = gw.metrics();
    assert_eq!(
        common::metric_value(
            &metrics,
            r#"mcpgate_mcp_requests_total{decision="too_large",method="",name="",route="/open"}"#
        ),
        1.0
    );
}

#[test]
fn arguments_reach_the_audit_line_only_where_the_route_says() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = gateway(&idp, &up, "audit_arguments: true");
    let ann = token(&idp, "ann", "mcp", &[]);
    let r = post(
        &gw,
        "/mcp",
        &ann,
        &[],
        &call(1, "echo", json!({"message": "kept"})),
    );
    assert_eq!(r.status(), 200);
    let lines = audit_lines(&gw, 1);
    assert_eq!(lines[0]["arguments"], json!({"message": "kept"}));
}

#[test]
fn the_audit_file_gets_every_line_whatever_rust_log_says() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (common::free_port(), common::free_port());
    let routes = common::route("/open", &up.url(), "mcp: { max_body: 1KiB }");
    let config = Gateway::config_text(
        dir.path(),
        port,
        metrics_port,
        "audit_log: audit.log",
        &routes,
    );
    let path = dir.path().join("mcpgate.yaml");
    std::fs::write(&path, config).unwrap();
    let gw = Gateway::start_file(
        &path,
        dir.path(),
        &[("RUST_LOG", "warn".into())],
        port,
        metrics_port,
    );
    let r = post(&gw, "/open", "", &[], &call(1, "echo", json!({})));
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let audit = loop {
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap_or_default();
        if !text.is_empty() || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let line: Value = serde_json::from_str(audit.trim()).expect("one audit line");
    assert_eq!(
        (line["name"].as_str(), line["decision"].as_str()),
        (Some("echo"), Some("allowed"))
    );
}
