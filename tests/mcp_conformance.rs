//! The official MCP conformance suite (server scenarios of 2025-11-25 and 2026-07-28, run by
//! `scripts/conformance`) against a real MCP server directly and through a gateway route with
//! tool, prompt and resource rules that allow everything: the gateway reads and judges every
//! request, and the same scenarios pass.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{free_port, Gateway, Stopped};

/// The suite's verdict lines (`2026-07-28 tools-list PASS`, `… FAIL [not scored]`, without
/// failure details), and its summary line.
fn conformance(url: &str, label: &str) -> (Vec<String>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/conformance"))
        .args([url, label])
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/conformance runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the suite did not run:\n{text}");
    let verdicts = text
        .lines()
        .filter(|l| l.starts_with("20"))
        .map(|l| {
            let verdict = l.split(" (").next().unwrap().split("  [").next().unwrap();
            let scored = if l.contains("[not scored") {
                " [not scored]"
            } else {
                ""
            };
            format!("{verdict}{scored}")
        })
        .collect();
    let summary = text.lines().last().unwrap_or_default().to_string();
    (verdicts, summary)
}

#[test]
fn the_same_scenarios_pass_directly_and_through_tool_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let port = free_port();
    let upstream = Stopped(
        Command::new(root.join("scripts/conformance"))
            .args(["--upstream", &port.to_string()])
            .env("QUIET", "1")
            .stdout(Stdio::null())
            .spawn()
            .expect("the suite's upstream starts"),
    );
    // The suite's server answers a GET on its MCP path with 405 once it listens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while reqwest::blocking::get(format!("http://127.0.0.1:{port}/mcp")).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the suite's upstream never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let gw_port = free_port();
    let gw = Gateway::start_e2e(
        gw_port,
        &format!(
            r#"routes:
  - prefix: /mcp
    upstream: http://127.0.0.1:{port}/mcp
    # No `cors`: the suite's DNS-rebinding check sends the gateway's own origin and expects
    # it allowed, and another host refused, which the defaults do on a loopback listener.
    auth: none
    mcp:
      tools:
        default: deny
        rules:
          - {{ name: "test_*", allow: true }}
          - {{ name: "*", allow: true }}
      prompts: {{ default: deny, rules: [ {{ name: "*", allow: true }} ] }}
      resources: {{ default: deny, rules: [ {{ name: "*", allow: true }} ] }}
"#
        ),
    );

    let (direct, direct_summary) = conformance(&format!("http://127.0.0.1:{port}/mcp"), "direct");
    let (through, through_summary) = conformance(&gw.url("/mcp"), "through mcpgate");
    assert_eq!(
        direct, through,
        "the suite's verdicts differ:\n{direct_summary}\n{through_summary}"
    );
    // Every scenario a revision requires passes (the unscored ones are the tasks extension,
    // which the SDK the upstream is built on does not implement).
    let required_failures: Vec<&String> = through
        .iter()
        .filter(|v| !v.contains("[not scored") && !v.ends_with("PASS"))
        .collect();
    assert!(required_failures.is_empty(), "{required_failures:?}");
    assert!(through.len() >= 80, "{through_summary}");
    // The gateway read them: a tool call of each revision was judged.
    let metrics = gw.metrics();
    assert!(
        metrics.contains(r#"mcpgate_mcp_requests_total{decision="allowed",method="tools/call""#),
        "{metrics}"
    );
    drop(upstream);
}
