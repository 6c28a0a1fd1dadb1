//! The README's quick start, end to end with real parts: conf/quickstart.yaml as shipped,
//! the reference MCP server (`@modelcontextprotocol/server-everything`) spawned by the
//! gateway, and the official TypeScript SDK client with an OAuth client provider, which
//! discovers the gateway, registers, types a key into the passthrough page, and runs an MCP
//! session with a streamed tool through it, then refreshes.

mod common;

use std::time::{Duration, Instant};

use common::{assert_oauth_run, e2e_dir, free_port, oauth_client, strings, Gateway};

#[test]
fn the_official_sdk_client_signs_in_with_a_key_and_reaches_the_reference_server() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let e2e = e2e_dir();
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

    let seen = oauth_client(&gw, "/mcp/everything", "v1", &[("MCP_KEY", "anything")]);
    assert_oauth_run(&seen, &gw.url("/mcp/everything"));
    assert_eq!(strings(&seen["pages"]), ["gateway key"], "{seen}");

    let posts = gw.metric(r#"mcpgate_requests_total{route="/mcp/everything",status="200"}"#);
    assert!(posts >= 4.0, "only {posts} requests counted");
}
