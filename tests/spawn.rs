//! Spawned upstreams: started by the gateway, waited for, restarted when they die, stopped
//! with the gateway.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, Gateway};

fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "spawned command wrote no pid");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn starts_waits_for_restarts_and_stops_a_spawned_upstream() {
    let port = free_port();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(
        www.path().join("hello.txt"),
        "hello from the spawned upstream",
    )
    .unwrap();
    let pid_file = www.path().join("pid");
    // `exec` so the pid written is the server's own; python's http.server is a real server.
    let command = format!(
        "echo $$ > {}; exec python3 -m http.server {port} --bind 127.0.0.1",
        pid_file.display()
    );
    let routes = format!(
        "  - prefix: /files\n    upstream: http://127.0.0.1:{port}\n    auth: none\n    spawn:\n      command: \"{command}\"\n      cwd: {}\n      ready_timeout: 20s\n",
        www.path().display()
    );
    let mut gw = Gateway::start(&routes);

    // The first request waits until the command listens, then goes through.
    let r = reqwest::blocking::get(gw.url("/files/hello.txt")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "hello from the spawned upstream");
    assert_eq!(
        reqwest::blocking::get(gw.url("/readyz")).unwrap().status(),
        200
    );

    // Killed: the gateway starts it again, and requests go through again.
    let first = read_pid(&pid_file);
    std::fs::remove_file(&pid_file).unwrap();
    common::signal_pid(first as u32, libc::SIGKILL);
    let second = read_pid(&pid_file);
    assert_ne!(first, second);
    let r = reqwest::blocking::get(gw.url("/files/hello.txt")).unwrap();
    assert_eq!(r.status(), 200);
    let starts = gw.metric(&format!(
        "mcpgate_spawned_upstream_starts_total{{upstream=\"127.0.0.1:{port}\"}}"
    ));
    assert_eq!(starts, 2.0);

    // The gateway stops it when it shuts down.
    gw.signal(libc::SIGTERM);
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "gateway exit: {status}");
    common::wait_dead(second, "spawned upstream outlived the gateway");
}

#[test]
fn a_command_that_never_listens_gives_503_and_dies_with_a_quick_shutdown() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let routes = format!(
        "  - prefix: /never\n    upstream: http://127.0.0.1:{port}\n    auth: none\n    spawn:\n      command: \"echo $$ > {}; exec sleep 600\"\n      ready_timeout: 500ms\n",
        pid_file.display()
    );
    let gw = Gateway::start(&routes);
    let r = reqwest::blocking::get(gw.url("/never/x")).unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"], "upstream_starting");
    assert_eq!(
        reqwest::blocking::get(gw.url("/readyz")).unwrap().status(),
        503
    );
    let pid = read_pid(&pid_file);
    drop(gw); // SIGINT: Pingora's quick shutdown
    common::wait_dead(pid, "spawned upstream outlived a quick shutdown");
}

#[test]
fn a_command_that_cannot_start_or_exits_at_once_is_named_not_waited_for() {
    let (missing, quitting) = (free_port(), free_port());
    // `ready_timeout` is long: the answer must not wait for it.
    let routes = format!(
        "  - prefix: /missing\n    upstream: http://127.0.0.1:{missing}\n    auth: none\n    spawn:\n      command: [/nonexistent/mcp-server, --port, \"{missing}\"]\n      ready_timeout: 10m\n\
         \x20 - prefix: /quitting\n    upstream: http://127.0.0.1:{quitting}\n    auth: none\n    spawn:\n      command: \"exit 3\"\n      ready_timeout: 10m\n"
    );
    let gw = Gateway::start(&routes);
    for (prefix, reason) in [
        ("/missing", "cannot start `/nonexistent/mcp-server`"),
        ("/quitting", "exited (exit status: 3) before it listened"),
    ] {
        let r = reqwest::blocking::get(gw.url(&format!("{prefix}/mcp"))).unwrap();
        assert_eq!(r.status(), 502, "{prefix}");
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(body["error"], "upstream_failed", "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("the upstream's command fails (")
                && description.contains(reason),
            "{description}"
        );
        gw.log_with(reason);
    }
    // `/readyz` names each failing upstream and why.
    let r = reqwest::blocking::get(gw.url("/readyz")).unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().unwrap();
    let failing = body["failing_upstreams"].as_array().unwrap();
    assert_eq!(failing.len(), 2, "{body}");
    assert_eq!(failing[0]["route"], "/missing");
    assert!(failing[0]["reason"]
        .as_str()
        .unwrap()
        .contains("No such file"));
    let counted =
        gw.metric(r#"mcpgate_upstream_errors_total{kind="command_failed",route="/missing"}"#);
    assert!(counted >= 1.0, "{counted}");
}
