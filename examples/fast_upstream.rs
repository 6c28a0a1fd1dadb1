//! A minimal, fast MCP-shaped upstream for load tests: answers every POST with a small
//! JSON-RPC result and a session header, and `GET .../sse` with a short event stream.
//!
//! Usage: `fast_upstream 127.0.0.1:18081 [threads]`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

const RESULT: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong"}]}}"#;
const EVENTS: &[u8] =
    b"id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let sse = req.uri().path().ends_with("/sse");
    // Read the JSON-RPC request as a real server does. Answering before the request body is
    // consumed also makes a proxy drop the upstream connection instead of reusing it.
    let _ = req.into_body().collect().await;
    let (content_type, body) = if sse {
        ("text/event-stream", EVENTS)
    } else {
        ("application/json", RESULT)
    };
    Ok(Response::builder()
        .header("content-type", content_type)
        .header("mcp-session-id", "load-test-session")
        .body(Full::new(Bytes::from_static(body)))
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
