//! The README's quick start, end to end with real parts: conf/quickstart.yaml as shipped,
//! the reference MCP server (`@modelcontextprotocol/server-everything`) spawned by the
//! gateway, and the official TypeScript SDK client talking MCP through it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, Gateway};

#[test]
fn the_official_sdk_client_reaches_the_reference_server_through_the_quickstart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = root.join("tests/e2e");
    assert!(
        e2e.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "the e2e packages are not installed: run `npm ci --prefix tests/e2e` (./scripts/test does)"
    );
    let (port, metrics_port, everything_port) = (free_port(), free_port(), free_port());
    // Run from tests/e2e so that `npx` finds the lockfile-pinned server there, offline.
    let gw = Gateway::start_file(
        &root.join("conf/quickstart.yaml"),
        &e2e,
        &[
            ("MCPGATE_PORT", port.to_string()),
            ("MCPGATE_METRICS_PORT", metrics_port.to_string()),
            ("EVERYTHING_PORT", everything_port.to_string()),
        ],
        port,
        metrics_port,
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while reqwest::blocking::get(gw.url("/readyz")).unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "the reference server never listened:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = Command::new("node")
        .arg(e2e.join("mcp_client.mjs"))
        .arg(gw.url("/mcp/everything"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tools.contains(&"echo") && tools.contains(&"trigger-long-running-operation"),
        "{tools:?}"
    );
    assert_eq!(seen["echo"], "Echo: through the gateway");
    assert_eq!(seen["progress"], serde_json::json!([1, 2, 3, 4]));
    // Progress events are 500 ms apart: the first arrived long before the final answer,
    // so the response streamed through instead of being buffered.
    assert!(
        seen["firstProgressLeadMs"].as_f64().unwrap() > 800.0,
        "{seen}"
    );
    assert!(seen["long"]
        .as_str()
        .unwrap()
        .starts_with("Long running operation completed"));

    let posts = gw.metric(r#"mcpgate_requests_total{route="/mcp/everything",status="200"}"#);
    assert!(posts >= 4.0, "only {posts} requests counted");
}
