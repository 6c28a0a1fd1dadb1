//! Pingora's graceful upgrade: a new process takes the listening sockets over (`-u`), the
//! old one gets SIGQUIT, finishes what it has, and exits. No request fails.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{route, Gateway, Upstream};

#[test]
fn graceful_upgrade_under_traffic() {
    let up = Upstream::start();
    let mut old = Gateway::start(&route("/mcp", &up.url(), ""));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            let url = old.url("/mcp/x");
            std::thread::spawn(move || {
                // A new connection per request: a kept-alive connection to the old process
                // is closed when it exits, which is the client's to retry, not a failure here.
                let c = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match c.get(&url).send() {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();

    // An event stream open on the old process through the upgrade finishes whole.
    let sse_url = old.url("/mcp/sse?gap_ms=3000");
    let sse = std::thread::spawn(move || reqwest::blocking::get(sse_url).unwrap().text().unwrap());
    std::thread::sleep(Duration::from_millis(300));

    let mut new = Gateway::spawn(old.dir.path(), &["-u"]);
    std::thread::sleep(Duration::from_millis(300));
    old.signal(libc::SIGQUIT);
    let status = old.child.wait().unwrap();
    assert!(status.success(), "old process exit: {status}");
    let after_exit = ok.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(2);
    while ok.load(Ordering::Relaxed) < after_exit + 50 {
        assert!(Instant::now() < deadline, "the new process serves nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let events = sse.join().unwrap();
    assert!(
        events.contains("data: {\"n\":2}"),
        "stream cut by the upgrade: {events}"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the upgrade"
    );

    // Hand the new process to the guard so that it is stopped too.
    std::mem::swap(&mut old.child, &mut new);
    let _ = new.wait();
}
