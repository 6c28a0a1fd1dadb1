//! The whole OAuth way with real parts, none written here: `oidc-provider` (a certified
//! OpenID provider) as the IdP, the reference MCP server, and the official TypeScript SDK
//! clients (1.x, and the 2.x client of the 2026-07-28 revision) with an OAuth client
//! provider. Through a brokered route each client discovers, registers, authorizes (the
//! gateway's consent, the IdP's login and consent, by form posts), gets tokens, runs an MCP
//! session with a streamed tool, and refreshes.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Gateway};

const RESOURCE: &str = "https://mcp-api.test";

/// The IdP process, stopped when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::blocking::get(url).is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "{what} never answered {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_sdk_client_completes_oauth_through_a_brokered_route_and_refreshes() {
    for sdk in ["v1", "v2"] {
        oauth_through_a_brokered_route(sdk);
    }
}

/// `sdk`: `v1` (`@modelcontextprotocol/sdk` 1.x) or `v2` (`@modelcontextprotocol/client` 2.x).
fn oauth_through_a_brokered_route(sdk: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    assert!(
        e2e.join("node_modules/oidc-provider").is_dir(),
        "the e2e packages are not installed: run `npm ci --prefix tests/e2e` (./scripts/test does)"
    );
    let (port, metrics_port, idp_port, everything_port) =
        (free_port(), free_port(), free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{port}");
    let idp = Node(
        Command::new("node")
            .arg(e2e.join("idp.mjs"))
            .env("IDP_PORT", idp_port.to_string())
            .env("RESOURCE", RESOURCE)
            .env(
                "GATEWAY_CALLBACK",
                format!("{gateway}/mcp/everything/oauth/callback"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs"),
    );
    let issuer = format!("http://127.0.0.1:{idp_port}");
    wait_for(
        &format!("{issuer}/.well-known/openid-configuration"),
        "oidc-provider",
    );

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"listen: 127.0.0.1:{port}
metrics: 127.0.0.1:{metrics_port}
seal_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
server: {{ pid_file: {d}/mcpgate.pid, upgrade_sock: {d}/upgrade.sock }}
providers:
  idp:
    issuer: {issuer}
    client_id: mcpgate
    client_secret: gw-secret
    resource: {RESOURCE}
routes:
  - prefix: /mcp/everything
    upstream: http://127.0.0.1:{everything_port}/mcp
    auth: {{ provider: idp, oauth: broker, audience: {RESOURCE}, scopes: [mcp:tools] }}
    upstream_auth: {{ identity: {{}} }}
    spawn:
      command: [node, node_modules/@modelcontextprotocol/server-everything/dist/index.js, streamableHttp]
      env: {{ PORT: "{everything_port}" }}
      ready_timeout: 60s
"#,
        d = dir.path().display()
    );
    let config_path = dir.path().join("mcpgate.yaml");
    std::fs::write(&config_path, config).unwrap();
    let gw = Gateway::start_file(&config_path, &e2e, &[], port, metrics_port);
    wait_for(&gw.url("/readyz"), "the gateway");

    let out = Command::new("node")
        .arg(e2e.join("mcp_oauth_client.mjs"))
        .arg(gw.url("/mcp/everything"))
        .arg(sdk)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{sdk} client failed: {stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(seen["echo"], "Echo: authorized", "{seen}");
    assert_eq!(seen["again"], "Echo: refreshed", "{seen}");
    assert_eq!(seen["progress"], serde_json::json!([1, 2, 3]), "{seen}");
    assert_eq!(seen["registrations"], 1, "{seen}");
    assert_eq!(
        seen["iss"],
        gw.url("/mcp/everything"),
        "RFC 9207 iss of the gateway"
    );
    assert_eq!(seen["refreshedToken"], true, "{seen}");
    // Introspection and revocation pass through to the IdP for the sealed refresh token.
    assert_eq!(
        seen["revocation"],
        serde_json::json!({"activeBefore": true, "revokeStatus": 200, "activeAfter": false,
            "refreshAfter": "invalid_grant"}),
        "{seen}"
    );
    let pages: Vec<&str> = seen["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(pages.first(), Some(&"gateway consent"), "{pages:?}");
    assert!(pages.contains(&"idp login"), "{pages:?}");
    // The audit trail names the IdP's subject for the MCP traffic.
    assert!(
        gw.log().contains(r#"sub="alice" route=/mcp/everything"#),
        "{}",
        gw.log()
    );
    drop(idp);
}
