//! The proxy over real sockets: routing, rewriting, methods, MCP headers, errors, metrics.

mod common;

use common::{free_port, route, Gateway, Upstream};
use serde_json::Value;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

#[test]
fn routes_by_longest_prefix_and_rewrites_the_path() {
    let a = Upstream::start();
    let b = Upstream::start();
    let routes = route("/mcp", &format!("{}/base", a.url()), "")
        + &route("/mcp/deep", &format!("{}/other/", b.url()), "")
        + &route("/keep", &a.url(), "strip_prefix: false");
    let gw = Gateway::start(&routes);

    let r = client().get(gw.url("/mcp/x?q=1")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(a.last_seen().uri, "/base/x?q=1");

    client().get(gw.url("/mcp/deep")).send().unwrap();
    assert_eq!(b.last_seen().uri, "/other");
    assert_eq!(b.last_seen().headers["host"], b.addr.to_string());

    client().get(gw.url("/keep/y")).send().unwrap();
    assert_eq!(a.last_seen().uri, "/keep/y");

    let r = client().get(gw.url("/mcpx")).send().unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "not_found");
}

#[test]
fn routes_by_host_before_any_host() {
    let a = Upstream::start();
    let b = Upstream::start();
    let routes = route("/mcp", &a.url(), "host: tenant.example") + &route("/mcp", &b.url(), "");
    let gw = Gateway::start(&routes);
    let c = client();
    c.get(gw.url("/mcp/1"))
        .header("Host", "Tenant.Example:8443")
        .send()
        .unwrap();
    c.get(gw.url("/mcp/2"))
        .header("Host", "localhost")
        .send()
        .unwrap();
    assert_eq!(a.seen_count(), 1);
    assert_eq!(b.seen_count(), 1);
    assert_eq!(a.last_seen().uri, "/1");
}

#[test]
fn a_thousand_routes_each_reach_their_upstream_path() {
    let up = Upstream::start();
    let routes: String = (0..1000)
        .map(|i| route(&format!("/t{i}/mcp"), &format!("{}/u{i}", up.url()), ""))
        .collect();
    let gw = Gateway::start(&routes);
    let c = client();
    for i in [0, 1, 499, 998, 999] {
        let r = c.get(gw.url(&format!("/t{i}/mcp/ping"))).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(up.last_seen().uri, format!("/u{i}/ping"));
    }
    assert_eq!(c.get(gw.url("/t1000/mcp")).send().unwrap().status(), 404);
}

#[test]
fn post_get_delete_and_mcp_headers_pass_both_ways() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &format!("{}/mcp", up.url()), ""));
    let c = client();
    let mcp = [
        ("Mcp-Session-Id", "sess-123"),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "echo"),
        ("Last-Event-ID", "42"),
        ("Mcp-Param-Region", "eu"),
    ];
    for method in [
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::DELETE,
    ] {
        let mut req = c.request(method.clone(), gw.url("/mcp"));
        for (k, v) in mcp {
            req = req.header(k, v);
        }
        if method == reqwest::Method::POST {
            req = req
                .header("Content-Type", "application/json")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#);
        }
        let r = req.send().unwrap();
        assert_eq!(r.status(), 200, "{method}");
        assert_eq!(r.headers()["mcp-session-id"], "sess-123");
        assert_eq!(r.headers()["mcp-protocol-version"], "2025-11-25");
        let seen = up.last_seen();
        assert_eq!(seen.method, method.as_str());
        for (k, v) in mcp {
            assert_eq!(seen.headers[&k.to_ascii_lowercase()], v, "{k} on {method}");
        }
        if method == reqwest::Method::POST {
            assert_eq!(
                seen.body,
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#
            );
        }
    }
}

#[test]
fn a_streamed_request_body_arrives_whole() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &up.url(), ""));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let chunks: Vec<Result<&'static str, std::io::Error>> =
            vec![Ok("{\"part\":1,"), Ok("\"part2\":"), Ok("true}")];
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let r = reqwest::Client::new()
            .post(gw.url("/mcp"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    let seen = up.last_seen();
    assert_eq!(seen.headers["transfer-encoding"], "chunked");
    assert_eq!(seen.body, br#"{"part":1,"part2":true}"#);
}

#[test]
fn unreachable_upstream_is_502_and_slow_one_504_and_the_gateway_lives_on() {
    let up = Upstream::start();
    let dead = free_port();
    let routes = route(
        "/dead",
        &format!("http://127.0.0.1:{dead}"),
        "connect_timeout: 1s",
    ) + &route("/slow", &up.url(), "read_timeout: 500ms")
        + &route("/ok", &up.url(), "");
    let gw = Gateway::start(&routes);
    let c = client();

    let r = c.get(gw.url("/dead/mcp")).send().unwrap();
    assert_eq!(r.status(), 502);
    // The connection is not reused after a failure, and the client is told so.
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(r.json::<Value>().unwrap()["error"], "bad_gateway");

    let r = c.get(gw.url("/slow/slow")).send().unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.json::<Value>().unwrap()["error"], "gateway_timeout");

    assert_eq!(c.get(gw.url("/ok/x")).send().unwrap().status(), 200);
    let m = gw.metrics();
    assert_eq!(
        common::metric_value(
            &m,
            r#"mcpgate_upstream_errors_total{kind="connect",route="/dead"}"#
        ),
        1.0
    );
    assert_eq!(
        common::metric_value(
            &m,
            r#"mcpgate_upstream_errors_total{kind="timeout",route="/slow"}"#
        ),
        1.0
    );
    assert_eq!(
        common::metric_value(&m, r#"mcpgate_requests_total{route="/dead",status="502"}"#),
        1.0
    );
}

#[test]
fn health_metrics_and_access_log() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &up.url(), ""));
    let c = client();
    assert_eq!(c.get(gw.url("/healthz")).send().unwrap().status(), 200);
    assert_eq!(c.get(gw.url("/readyz")).send().unwrap().status(), 200);
    for _ in 0..3 {
        c.get(gw.url("/mcp/x?token=secret-in-query"))
            .header("Authorization", "Bearer secret-in-header")
            .header("Cookie", "session=secret-in-cookie")
            .send()
            .unwrap();
    }
    c.get(gw.url("/nowhere")).send().unwrap();
    let m = gw.metrics();
    assert_eq!(
        common::metric_value(&m, r#"mcpgate_requests_total{route="/mcp",status="200"}"#),
        3.0
    );
    assert_eq!(
        common::metric_value(&m, r#"mcpgate_requests_total{route="",status="404"}"#),
        1.0
    );
    assert_eq!(
        common::metric_value(
            &m,
            r#"mcpgate_request_duration_seconds_count{route="/mcp"}"#
        ),
        3.0
    );
    let log = gw.log_with("GET /mcp/x 200 route=/mcp");
    assert!(!log.contains("secret"), "a secret reached the log:\n{log}");
}
