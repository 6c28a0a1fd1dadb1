//! The `ProxyHttp` implementation: each phase is a few lines that call into the modules.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::header::{CONTENT_TYPE, HOST};
use http::Uri;
use log::info;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};

use crate::config::{Auth, Route};
use crate::metrics;
use crate::respond;
use crate::snapshot::{GatewayState, Snapshot};

pub struct Gateway {
    pub state: Arc<GatewayState>,
}

/// Per-request state.
pub struct RequestCtx {
    started: Instant,
    /// Set once a route matched; the same snapshot serves the request to its end.
    routed: Option<(Arc<Snapshot>, usize)>,
    /// The response is an event stream (counted in the open-streams gauge until it ends).
    stream: bool,
}

impl RequestCtx {
    fn route(&self) -> Option<&Route> {
        self.routed.as_ref().map(|(s, i)| &s.config.routes[*i])
    }

    fn route_name(&self) -> &str {
        self.route().map_or(metrics::NO_ROUTE, |r| r.name.as_str())
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            routed: None,
            stream: false,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.state.snapshot();
        let req = session.req_header();
        match req.uri.path() {
            "/healthz" => return respond::json(session, 200, r#"{"status":"ok"}"#.into()).await,
            "/readyz" if snapshot.is_ready() => {
                return respond::json(session, 200, r#"{"status":"ready"}"#.into()).await
            }
            "/readyz" => {
                let body = error_json!("not_ready", "a spawned upstream is not listening yet");
                return respond::error(session, 503, body).await;
            }
            _ => {}
        }
        let Some(found) = snapshot.router.lookup(host(req), req.uri.path()) else {
            let body = error_json!("not_found", "no route matches this path");
            return respond::error(session, 404, body).await;
        };
        let index = found.route;
        ctx.routed = Some((snapshot.clone(), index));
        let (route, compiled) = snapshot.route(index);

        if let (Some((_, state)), Some(spawn)) = (&compiled.spawned, &route.spawn) {
            if !state.wait_ready(spawn.ready_timeout).await {
                metrics::UPSTREAM_ERRORS
                    .with_label_values(&[&route.name, "starting"])
                    .inc();
                let body = error_json!(
                    "upstream_starting",
                    "the upstream is starting; retry shortly"
                );
                return respond::error(session, 503, body).await;
            }
        }
        match route.auth {
            Auth::None => Ok(false),
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (snapshot, index) = ctx
            .routed
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route"))?;
        let peer = &snapshot.routes[*index].peer;
        let peer = match peer.current() {
            Some(peer) => peer,
            None => peer.resolve().await.map_err(|e| {
                Error::explain(
                    ErrorType::ConnectNoRoute,
                    format!("cannot resolve the upstream: {e}"),
                )
                .into_up()
            })?,
        };
        Ok(Box::new(HttpPeer::clone(&peer)))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some((snapshot, index)) = &ctx.routed else {
            return Error::e_explain(ErrorType::InternalError, "no route");
        };
        let (route, compiled) = snapshot.route(*index);
        if let Some(uri) = upstream_uri(route, &upstream_request.uri)? {
            upstream_request.set_uri(uri);
        }
        upstream_request.insert_header(HOST, compiled.host_header.clone())?;
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let is_stream = response
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if is_stream {
            // Tells any buffering proxy in front of us (nginx) to pass events on at once.
            response.insert_header("X-Accel-Buffering", "no")?;
            ctx.stream = true;
            metrics::OPEN_STREAMS
                .with_label_values(&[ctx.route_name()])
                .inc();
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failure = classify(e);
        if let Some(kind) = failure.upstream_kind {
            metrics::UPSTREAM_ERRORS
                .with_label_values(&[ctx.route_name(), kind])
                .inc();
        }
        if failure.status > 0 {
            // Pingora closes the connection after a failed proxy attempt: say so in the
            // response (`Connection: close`), or a client may reuse it and get a reset.
            session.set_keepalive(None);
            let _ = respond::error(session, failure.status, failure.body).await;
        }
        FailToProxy {
            error_code: failure.status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map(|r| r.status);
        // `as_str` reads a static table: counting a request formats nothing.
        let status_label = status.as_ref().map_or("0", |s| s.as_str());
        let route = ctx.route_name();
        let elapsed = ctx.started.elapsed();
        metrics::REQUESTS
            .with_label_values(&[route, status_label])
            .inc();
        metrics::LATENCY
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        if ctx.stream {
            metrics::OPEN_STREAMS.with_label_values(&[route]).dec();
        }
        let access_log = match &ctx.routed {
            Some((snapshot, _)) => snapshot.config.access_log,
            None => self.state.access_log(),
        };
        if access_log {
            let req = session.req_header();
            // The path only: a query string may carry credentials.
            info!(
                target: "mcpgate::access",
                "{} {} {} route={} {:.3}ms",
                req.method,
                req.uri.path(),
                status_label,
                if route.is_empty() { "-" } else { route },
                elapsed.as_secs_f64() * 1000.0
            );
        }
    }
}

/// The `Host` the client asked for: the header (HTTP/1) or the URI authority (HTTP/2).
fn host(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
}

/// The request's URI rewritten for the upstream: the route's prefix stripped (unless
/// `strip_prefix: false`) and the upstream's base path put in front. `None`: unchanged.
fn upstream_uri(route: &Route, uri: &Uri) -> Result<Option<Uri>> {
    let path = uri.path();
    let rest = if route.strip_prefix && route.prefix != "/" {
        path.get(route.prefix.len()..).unwrap_or("")
    } else {
        path
    };
    let base = route.upstream.base_path.as_str();
    if base.is_empty() && rest.len() == path.len() && uri.scheme().is_none() {
        return Ok(None);
    }
    let query = uri.query();
    let mut target =
        String::with_capacity(base.len() + rest.len() + query.map_or(0, |q| q.len() + 2));
    target.push_str(base);
    target.push_str(rest);
    if target.is_empty() {
        target.push('/');
    }
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    Uri::try_from(target).map(Some).or_err(
        ErrorType::InvalidHTTPHeader,
        "rewritten upstream path is not a valid URI",
    )
}

/// What a failed request becomes: status, OAuth-style error body, and the upstream-error kind.
struct Failure {
    status: u16,
    body: &'static str,
    upstream_kind: Option<&'static str>,
}

fn classify(e: &Error) -> Failure {
    use ErrorType::*;
    let fail = |status, body, upstream_kind| Failure {
        status,
        body,
        upstream_kind,
    };
    let unreachable = error_json!("bad_gateway", "the upstream is unreachable");
    let tls = error_json!("bad_gateway", "the TLS handshake with the upstream failed");
    let protocol = error_json!(
        "bad_gateway",
        "the upstream sent an invalid response or closed the connection"
    );
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) => fail(
            *code,
            error_json!("http_error", "the request could not be served"),
            None,
        ),
        (ErrorSource::Upstream, ConnectTimedout | TLSHandshakeTimedout) => fail(
            504,
            error_json!(
                "gateway_timeout",
                "the upstream did not accept the connection in time"
            ),
            Some("timeout"),
        ),
        (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => fail(
            504,
            error_json!("gateway_timeout", "the upstream did not answer in time"),
            Some("timeout"),
        ),
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | SocketError | BindError,
        ) => fail(502, unreachable, Some("connect")),
        (
            ErrorSource::Upstream,
            TLSHandshakeFailure | InvalidCert | HandshakeError | TLSWantX509Lookup,
        ) => fail(502, tls, Some("tls")),
        (ErrorSource::Upstream, _) => fail(502, protocol, Some("protocol")),
        // The client is gone or stalled: nobody to answer.
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed)
        | (ErrorSource::Downstream, ReadTimedout | WriteTimedout) => fail(0, "", None),
        (ErrorSource::Downstream, _) => fail(
            400,
            error_json!("invalid_request", "the request is malformed"),
            None,
        ),
        _ => fail(
            500,
            error_json!("server_error", "the gateway failed to serve the request"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn route(prefix: &str, upstream: &str, strip: bool) -> Route {
        let yaml = format!(
            "listen: 127.0.0.1:1\nroutes:\n  - prefix: {prefix}\n    upstream: {upstream}\n    strip_prefix: {strip}\n    auth: none\n"
        );
        Config::from_yaml(&yaml, Path::new("."), &|_| None)
            .unwrap()
            .routes
            .remove(0)
    }

    fn rewrite(r: &Route, uri: &str) -> String {
        let uri: Uri = uri.parse().unwrap();
        upstream_uri(r, &uri)
            .unwrap()
            .map_or(uri.to_string(), |u| u.to_string())
    }

    #[test]
    fn rewrites_paths() {
        let r = route("/mcp/a", "http://127.0.0.1:2/mcp", true);
        assert_eq!(rewrite(&r, "/mcp/a"), "/mcp");
        assert_eq!(rewrite(&r, "/mcp/a/x?y=1"), "/mcp/x?y=1");
        let r = route("/mcp/a", "http://127.0.0.1:2", true);
        assert_eq!(rewrite(&r, "/mcp/a"), "/");
        assert_eq!(rewrite(&r, "/mcp/a?q"), "/?q");
        let r = route("/mcp/a", "http://127.0.0.1:2", false);
        assert_eq!(rewrite(&r, "/mcp/a/x?q"), "/mcp/a/x?q");
        let r = route("/", "http://127.0.0.1:2/base", true);
        assert_eq!(rewrite(&r, "/x"), "/base/x");
    }

    #[test]
    fn classifies_failures() {
        let e = Error::new(ErrorType::ConnectRefused).into_up();
        assert_eq!(classify(&e).status, 502);
        let e = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(classify(&e).status, 504);
        let e = Error::new(ErrorType::ConnectionClosed).into_down();
        assert_eq!(classify(&e).status, 0);
    }
}
