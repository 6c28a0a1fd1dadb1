//! Event streams and chunked responses reach the client piece by piece, never buffered.

mod common;

use std::time::{Duration, Instant};

use common::{route, Gateway, Upstream};
use futures_util::StreamExt;

/// Reads the response until `needle` has arrived; returns when it did.
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, needle: &str) -> Instant {
    while !seen.contains(needle) {
        let chunk = resp.chunk().await.unwrap().expect("stream ended early");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Instant::now()
}

#[test]
fn sse_events_arrive_one_by_one() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &format!("{}/mcp", up.url()), ""));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut resp = reqwest::Client::new()
            .get(gw.url("/mcp/sse?gap_ms=2000"))
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        let mut seen = String::new();
        let first_held = read_until(&mut resp, &mut seen, "data: {\"n\":1}").await;
        let second_held = read_until(&mut resp, &mut seen, "data: {\"n\":2}").await;
        let sent = up.sent.lock().unwrap().clone();
        let second_sent = sent.iter().find(|(e, _)| e == "event 2").unwrap().1;
        // The client held event 1 well before the upstream even wrote event 2.
        assert!(
            first_held + Duration::from_secs(1) < second_sent,
            "event 1 was held back"
        );
        assert!(second_held >= second_sent);
        assert!(seen.contains("id: 1\nevent: message\n"));
    });
}

#[test]
fn chunked_streamable_http_arrives_chunk_by_chunk() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &up.url(), ""));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut resp = reqwest::Client::new()
            .post(gw.url("/mcp/chunked"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let mut seen = String::new();
        let first_held = read_until(&mut resp, &mut seen, "{\"chunk\":0}").await;
        read_until(&mut resp, &mut seen, "{\"chunk\":2}").await;
        let sent = up.sent.lock().unwrap().clone();
        let last_sent = sent.iter().find(|(e, _)| e == "chunk 2").unwrap().1;
        assert!(
            first_held < last_sent,
            "the first chunk waited for the last"
        );
        assert!(resp.headers().get("x-accel-buffering").is_none());
    });
}

#[test]
fn a_long_stream_is_not_cut_and_is_counted_while_open() {
    let up = Upstream::start();
    // Short idle and connect timeouts must not touch a live stream.
    let gw = Gateway::start(&route(
        "/mcp",
        &up.url(),
        "idle_timeout: 1s\nconnect_timeout: 1s",
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(gw.url("/mcp/ticks"))
            .send()
            .await
            .unwrap();
        let mut stream = resp.bytes_stream();
        let started = Instant::now();
        let mut text = String::new();
        while started.elapsed() < Duration::from_secs(3) {
            let chunk = stream.next().await.expect("stream open").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.matches("data: tick").count() >= 20, "{text}");
        let gauge =
            tokio::task::block_in_place(|| gw.metric(r#"mcpgate_open_streams{route="/mcp"}"#));
        assert_eq!(gauge, 1.0);
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::task::block_in_place(|| gw.metric(r#"mcpgate_open_streams{route="/mcp"}"#))
            != 0.0
        {
            assert!(Instant::now() < deadline, "closed stream still counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
