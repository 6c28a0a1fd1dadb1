//! The container image as the Dockerfile documents it: built, then run with the documented
//! command, it serves the reference MCP server behind the passthrough strategy and its
//! metrics. Runs where a Docker daemon answers; elsewhere it says that it did not run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;

/// A running container, removed however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn docker_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_documented_docker_run_serves_the_quick_start() {
    if !docker_answers() {
        eprintln!("SKIPPED: no Docker daemon answers `docker info` here; the container smoke test did not run");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "mcpgate-smoke:test"])
        .arg(root)
        .status()
        .unwrap();
    assert!(built.success(), "docker build failed");
    let (port, metrics_port) = (free_port(), free_port());
    let out = Command::new("docker")
        .args(["run", "-d", "--rm", "-p"])
        .arg(format!("127.0.0.1:{port}:8080"))
        .arg("-p")
        .arg(format!("127.0.0.1:{metrics_port}:9100"))
        .arg("mcpgate-smoke:test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let container = Container(String::from_utf8_lossy(&out.stdout).trim().to_string());

    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reqwest::blocking::get(format!("{base}/readyz")).is_ok_and(|r| r.status() == 200) {
        if Instant::now() > deadline {
            let logs = Command::new("docker")
                .args(["logs", &container.0])
                .output()
                .unwrap();
            panic!(
                "the container never got ready:\n{}",
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The spawned reference server is there, and protected.
    let r = reqwest::blocking::Client::new()
        .post(format!("{base}/mcp/everything"))
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let metrics = reqwest::blocking::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("mcpgate_requests_total"), "{metrics}");
}
