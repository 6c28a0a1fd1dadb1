//! Pingora's graceful upgrade: a new process takes the listening sockets over (`-u`), the
//! old one gets SIGQUIT, finishes what it has, and exits. No request fails.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{route, Gateway, Stopped, Traffic, Upstream};

#[test]
fn graceful_upgrade_under_traffic() {
    let up = Upstream::start();
    let mut old = Gateway::start(&route("/mcp", &up.url(), ""));

    let traffic = Traffic::start(&old.url("/mcp/x"), 3, true);

    // An event stream open on the old process through the upgrade finishes whole.
    let sse_url = old.url("/mcp/sse?gap_ms=3000");
    let sse = std::thread::spawn(move || reqwest::blocking::get(sse_url).unwrap().text().unwrap());

    // Stopped when the test ends, whatever happens in between.
    let new = Stopped(Gateway::spawn(old.dir.path(), &["-u"]));
    wait_for_upgrade_socket(&old.dir.path().join("upgrade.sock"));
    old.signal(libc::SIGQUIT);
    let status = old.child.wait().unwrap();
    assert!(status.success(), "old process exit: {status}");
    let after_exit = traffic.ok_count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while traffic.ok_count() < after_exit + 50 {
        assert!(Instant::now() < deadline, "the new process serves nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, failed) = traffic.stop();
    let events = sse.join().unwrap();
    assert!(
        events.contains("data: {\"n\":2}"),
        "stream cut by the upgrade: {events}"
    );
    assert_eq!(failed, 0, "requests failed during the upgrade");
    drop(new);
}

/// The new process listens on the upgrade socket once it has loaded its config; the old one
/// sends its sockets there on SIGQUIT (and retries for a few seconds if it is not there yet).
fn wait_for_upgrade_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "the new process never listened for the sockets"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
