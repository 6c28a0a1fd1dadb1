//! SIGHUP reload under steady traffic: routes come and go, nothing fails, a bad file
//! changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{route, Gateway, Traffic, Upstream};

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reloads_under_traffic_without_a_failed_request() {
    let up = Upstream::start();
    let stay = route("/stay", &up.url(), "");
    let gw = Gateway::start(&(stay.clone() + &route("/a", &up.url(), "")));

    // A stream opened on /a before the reload that removes /a.
    let stream_url = gw.url("/a/ticks");
    let stream = std::thread::spawn(move || {
        let mut resp = reqwest::blocking::get(stream_url).unwrap();
        let mut buf = [0u8; 4096];
        let mut ticks = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            use std::io::Read;
            let n = resp.read(&mut buf).unwrap();
            assert!(n > 0, "stream cut by reload");
            ticks += String::from_utf8_lossy(&buf[..n])
                .matches("data: tick")
                .count();
        }
        ticks
    });

    let traffic = Traffic::start(&gw.url("/stay/x"), 4, false);

    let c = reqwest::blocking::Client::new();
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(250));
        let routes = if round % 2 == 0 {
            stay.clone() + &route("/b", &up.url(), "")
        } else {
            stay.clone() + &route("/a", &up.url(), "")
        };
        gw.write_routes(&routes);
        gw.signal(libc::SIGHUP);
        let reloads = (round + 1) as f64;
        wait_for("reload", || {
            gw.metric(r#"mcpgate_config_reloads_total{result="ok"}"#) == reloads
        });
        let (gone, there) = if round % 2 == 0 {
            ("/a/x", "/b/x")
        } else {
            ("/b/x", "/a/x")
        };
        assert_eq!(c.get(gw.url(there)).send().unwrap().status(), 200);
        assert_eq!(c.get(gw.url(gone)).send().unwrap().status(), 404);
    }
    let (ok, failed) = traffic.stop();
    let ticks = stream.join().unwrap();
    assert!(ticks >= 20, "the stream stopped early: {ticks} ticks");
    assert!(ok > 100, "too little traffic to prove anything");
    assert_eq!(failed, 0, "requests failed during reloads");
}

#[test]
fn a_bad_file_keeps_the_old_config_serving() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &up.url(), ""));
    std::fs::write(
        gw.config_path(),
        "listen: 127.0.0.1:1\nroutes:\n  - prefix: /mcp\n    upstream: ftp://x\n    auth: none\n",
    )
    .unwrap();
    gw.signal(libc::SIGHUP);
    wait_for("failed reload to be counted", || {
        gw.metric(r#"mcpgate_config_reloads_total{result="error"}"#) == 1.0
    });
    let r = reqwest::blocking::get(gw.url("/mcp/x")).unwrap();
    assert_eq!(r.status(), 200);
    let log = gw.log_with("routes[0].upstream: scheme `ftp` is not supported");
    assert!(
        log.contains("still serving the previous configuration"),
        "{log}"
    );
}

#[test]
fn a_changed_file_is_reloaded_without_a_signal_and_a_bad_one_changes_nothing() {
    let up = Upstream::start();
    // The comment turns `server.watch_config` on in the test harness.
    let watched = "# watch the config";
    let gw = Gateway::start_with(watched, &route("/a", &up.url(), ""));
    gw.write_config(
        watched,
        &(route("/a", &up.url(), "") + &route("/b", &up.url(), "")),
    );
    wait_for("the new route", || {
        reqwest::blocking::get(gw.url("/b/x")).is_ok_and(|r| r.status() == 200)
    });
    gw.log_with("the config file changed; reloading it");

    // (A reload may already have failed on a half-written file; it is the next one that
    // counts.)
    let errors = gw.metric(r#"mcpgate_config_reloads_total{result="error"}"#);
    std::fs::write(gw.config_path(), "routes: [").unwrap();
    wait_for("the failed reload", || {
        gw.metric(r#"mcpgate_config_reloads_total{result="error"}"#) > errors
    });
    let r = reqwest::blocking::get(gw.url("/b/x")).unwrap();
    assert_eq!(r.status(), 200, "the previous configuration still serves");
}
