//! A minimal, fast MCP-shaped upstream for load tests: answers every POST with a small
//! JSON-RPC result and a session header, and `GET .../sse` with a short event stream.
//! `GET .../sse?every_ms=N` instead holds the stream open and sends an event every N ms
//! (at least 10) until the client goes away; each event's data is `{"sent_us":<unix µs>}`,
//! the moment it was handed to the connection, so a client on the same machine can measure
//! how late it arrives.
//!
//! Usage: `fast_upstream 127.0.0.1:18081 [threads]`

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::{Request, Response};
use tokio::time::{Interval, MissedTickBehavior};

const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong"}]}}"#;
const EVENTS: &[u8] =
    b"id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";

/// An endless SSE body: one event per tick, each its own frame, so that hyper writes and
/// flushes it at once (a chunk per event) rather than buffering. It lives inside the
/// connection's task, so a held stream costs one timer and no extra task; it ends when
/// hyper drops it, i.e. when a write fails because the client has gone.
struct Ticker {
    interval: Interval,
    id: u64,
}

impl Body for Ticker {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        ready!(self.interval.poll_tick(cx));
        self.id += 1;
        // Stamped when the event is produced, not when its tick was due: a late tick on a
        // busy upstream is not counted as delay in the path being measured.
        let sent_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let event = format!(
            "id: {}\nevent: message\ndata: {{\"sent_us\":{sent_us}}}\n\n",
            self.id
        );
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }
}

/// `every_ms=N` from the query string, raised to 10 ms at least.
fn every_ms(query: Option<&str>) -> Option<u64> {
    let n: u64 = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("every_ms="))?
        .parse()
        .ok()?;
    Some(n.max(10))
}

type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<ResponseBody>, Infallible> {
    let sse = req.uri().path().ends_with("/sse");
    let every = every_ms(req.uri().query()).filter(|_| sse);
    // Read the JSON-RPC request as a real server does. Answering before the request body is
    // consumed also makes a proxy drop the upstream connection instead of reusing it.
    let _ = req.into_body().collect().await;
    let (content_type, body) = match every {
        Some(ms) => {
            let mut interval = tokio::time::interval(Duration::from_millis(ms));
            // A stalled upstream skips ticks instead of sending a burst of catch-up events.
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            (
                "text/event-stream",
                Ticker { interval, id: 0 }.boxed_unsync(),
            )
        }
        None if sse => (
            "text/event-stream",
            Full::new(Bytes::from_static(EVENTS)).boxed_unsync(),
        ),
        None => (
            "application/json",
            Full::new(Bytes::from_static(RESULT)).boxed_unsync(),
        ),
    };
    Ok(Response::builder()
        .header("content-type", content_type)
        .header("mcp-session-id", "load-test-session")
        .body(body)
        .expect("static response"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!("fast_upstream listening on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: wait for some to close instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper::service::service_fn(handle),
                    )
                    .await;
            });
        }
    });
}
