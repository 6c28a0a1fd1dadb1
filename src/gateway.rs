//! The `ProxyHttp` implementation: each phase is a few lines that call into the modules.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Uri};
use log::info;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};

use crate::auth::principal::Principal;
use crate::auth::rate_limit::Decision;
use crate::auth::{self, Deny, Guard};
use crate::config::{Auth, BearerAuth, Route, Strategy};
use crate::connections;
use crate::cors;
use crate::metrics;
use crate::oauth::facade::{self, Behind, Broker};
use crate::oauth::metadata;
use crate::respond;
use crate::snapshot::{CompiledRoute, GatewayState, Snapshot};
use crate::target;
use crate::upstream::credential::{self, UpstreamCredential};
use crate::upstream::forwarded;

pub struct Gateway {
    pub state: Arc<GatewayState>,
}

/// Per-request state.
pub struct RequestCtx {
    started: Instant,
    /// Set once a route matched; the same snapshot serves the request to its end.
    routed: Option<(Arc<Snapshot>, usize)>,
    /// The canonical path, when it differs from the one the client sent: what was routed,
    /// and so what the upstream gets.
    path: Option<String>,
    /// The response is an event stream (counted in the open-streams gauge until it ends).
    stream: bool,
    /// An allowed browser origin, echoed in CORS headers.
    origin: Option<HeaderValue>,
    /// Whom the token speaks for (also set when a rule then denied the request).
    principal: Option<Arc<Principal>>,
    /// The rate-limit state reported in the response's headers.
    rate: Option<Decision>,
    /// The upstream's own credential: from a token exchange, or opened from an issued token.
    upstream_credential: Option<UpstreamCredential>,
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
            path: None,
            stream: false,
            origin: None,
            principal: None,
            rate: None,
            upstream_credential: None,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        connections::head_read(session);
        Ok(())
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
                let body = error_json!(
                    "not_ready",
                    "a spawned upstream or an identity provider is not ready yet"
                );
                return respond::error(session, 503, body).await;
            }
            _ => {}
        }
        let path = match target::path(req) {
            Ok(path) => path,
            Err(why) => return respond::invalid_request(session, why).await,
        };
        let host = match target::host(req) {
            Ok(host) => host,
            Err(why) => return respond::invalid_request(session, why).await,
        };
        if let Some(resource) = metadata::requested_resource(&path) {
            let document = snapshot
                .discovery_route(host.as_deref(), resource)
                .and_then(|i| snapshot.routes[i].resource_metadata.clone());
            return resource_metadata(session, document).await;
        }
        if let Some(issuer) = metadata::requested_issuer(&path) {
            let compiled = snapshot
                .discovery_route(host.as_deref(), issuer)
                .map(|i| &snapshot.routes[i]);
            let document = compiled.and_then(|c| {
                let idp = c.guard.as_ref().map(|g| &*g.provider);
                Some(c.facade.as_ref()?.metadata(idp))
            });
            return match document {
                Some(document) => respond::document(session, document).await,
                None => {
                    let body = error_json!("not_found", "no authorization server at this path");
                    respond::error(session, 404, body).await
                }
            };
        }
        let Some(found) = snapshot.router.lookup(host.as_deref(), &path) else {
            let body = error_json!("not_found", "no route matches this path");
            return respond::error(session, 404, body).await;
        };
        let endpoint = facade::endpoint(found.rest);
        let index = found.route;
        if let Cow::Owned(path) = path {
            ctx.path = Some(path);
        }
        ctx.routed = Some((snapshot.clone(), index));
        let (route, compiled) = snapshot.route(index);
        if let Some(facade) = &compiled.facade {
            let behind = match (&route.auth, &compiled.guard) {
                (Auth::Bearer(auth), Some(guard)) => Some(Behind::Idp {
                    provider: &guard.provider,
                    auth,
                }),
                (Auth::Issued(auth), _) => Some(Behind::Issued {
                    auth,
                    service: match &auth.strategy {
                        Strategy::Chained { service } => snapshot.services.get(service),
                        Strategy::Passthrough(_) => None,
                    },
                    revocations: &snapshot.revocations,
                }),
                _ => None,
            };
            if let (Some(endpoint), Some(behind)) = (endpoint, behind) {
                let broker = Broker {
                    facade,
                    behind,
                    sealer: &snapshot.sealer,
                    used_codes: &snapshot.used_codes,
                    documents: &snapshot.client_documents,
                };
                return broker.serve(session, endpoint).await;
            }
        }

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
        match cors::check(&route.cors_origins, session.req_header()) {
            cors::Verdict::NoOrigin => {}
            cors::Verdict::Allowed(origin) => ctx.origin = Some(origin),
            cors::Verdict::Forbidden => {
                metrics::AUTH_FAILURES
                    .with_label_values(&[&route.name, "origin_not_allowed"])
                    .inc();
                let body = error_json!("origin_not_allowed", "this origin may not call this route");
                return respond::error(session, 403, body).await;
            }
        }
        if let Some(origin) = &ctx.origin {
            if cors::is_preflight(session.req_header()) {
                let mut headers = cors::response_headers(origin).to_vec();
                headers.extend(cors::preflight_headers());
                return respond::send(session, 204, Bytes::new(), &headers).await;
            }
        }
        match (&route.auth, &compiled.guard, &compiled.issued) {
            (Auth::Bearer(bearer), Some(guard), _) => {
                self.authorize(session, ctx, route, compiled, bearer, guard)
                    .await
            }
            (Auth::Issued(auth), _, Some(issued)) => {
                let now = auth::unix_now();
                let checked = issued.check(
                    &snapshot.sealer,
                    &snapshot.revocations,
                    session.req_header(),
                    now,
                );
                match checked {
                    Ok((passed, key)) => {
                        ctx.rate = passed.rate;
                        ctx.principal = Some(passed.principal);
                        ctx.upstream_credential = UpstreamCredential::placed(&auth.placement, &key);
                        if ctx.upstream_credential.is_none() {
                            // A service token no header can carry: never proxy without it.
                            let body = error_json!(
                                "bad_gateway",
                                "the upstream's credential cannot be sent"
                            );
                            return respond::send(session, 502, body.into(), &self.cors(ctx)).await;
                        }
                        Ok(false)
                    }
                    Err(deny) => self.refuse(session, ctx, route, deny).await,
                }
            }
            _ => Ok(false),
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
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some((snapshot, index)) = &ctx.routed else {
            return Error::e_explain(ErrorType::InternalError, "no route");
        };
        let (route, compiled) = snapshot.route(*index);
        if let Some(uri) = upstream_uri(route, ctx.path.as_deref(), &upstream_request.uri)? {
            upstream_request.set_uri(uri);
        }
        upstream_request.insert_header(HOST, compiled.host_header.clone())?;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        forwarded::apply(upstream_request, snapshot.config.forwarded, peer)?;
        credential::apply(
            upstream_request,
            route,
            &snapshot.identity_names,
            ctx.principal.as_deref(),
            ctx.upstream_credential.as_ref(),
        )
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
        if let Some(origin) = &ctx.origin {
            for (name, value) in cors::response_headers(origin) {
                response.insert_header(name, value)?;
            }
        }
        if let Some(rate) = &ctx.rate {
            for (name, value) in rate.headers() {
                response.insert_header(name, value)?;
            }
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

    /// A client that goes away is how every stream ends: not an error worth a log line
    /// (ten thousand streams closing would be ten thousand of them).
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        *e.esource() == ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            )
    }

    /// What Pingora's own error logs say about a request: method and path, never the query
    /// (it may carry a credential).
    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        let req = session.req_header();
        format!("{} {}", req.method, req.uri.path())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        connections::response_done(session);
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
        if let Some(p) = &ctx.principal {
            // The audit trail: who did what, on which route, with what outcome. `{:?}`
            // quotes the subject, so no claim value can forge a log line.
            info!(
                target: "mcpgate::audit",
                "sub={:?} route={} method={} status={} {:.3}ms",
                p.subject,
                route,
                session.req_header().method,
                status_label,
                elapsed.as_secs_f64() * 1000.0
            );
        }
    }
}

impl Gateway {
    /// The bearer check, then (when the route exchanges tokens) the upstream's token.
    /// Answers the request itself (`Ok(true)`) when it is refused.
    async fn authorize(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        compiled: &CompiledRoute,
        bearer: &BearerAuth,
        guard: &Guard,
    ) -> Result<bool> {
        let now = auth::unix_now();
        let passed = match guard.check(bearer, session.req_header(), now).await {
            Ok(passed) => passed,
            Err(deny) => return self.refuse(session, ctx, route, deny).await,
        };
        ctx.rate = passed.rate;
        if let (Some(params), Some(exchanger)) =
            (&route.upstream_auth.token_exchange, &compiled.exchanger)
        {
            let token = auth::bearer_token(session.req_header()).unwrap_or_default();
            let value = exchanger
                .authorization(&guard.provider, params, token, &passed.principal, now)
                .await;
            let result = if value.is_some() { "ok" } else { "error" };
            metrics::TOKEN_EXCHANGES
                .with_label_values(&[&route.name, result])
                .inc();
            if value.is_none() {
                ctx.principal = Some(passed.principal);
                let body = error_json!(
                    "bad_gateway",
                    "the token for the upstream could not be obtained"
                );
                return respond::send(session, 502, body.into(), &self.cors(ctx)).await;
            }
            ctx.upstream_credential = value.map(UpstreamCredential::authorization);
        }
        ctx.principal = Some(passed.principal);
        Ok(false)
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        deny: Deny,
    ) -> Result<bool> {
        metrics::AUTH_FAILURES
            .with_label_values(&[&route.name, deny.reason])
            .inc();
        info!(target: "mcpgate::auth", "route={} refused ({}): {}", route.name, deny.status, deny.reason);
        let mut headers = self.cors(ctx);
        if let Some(challenge) = deny.challenge {
            headers.push((WWW_AUTHENTICATE, challenge));
        }
        if let Some(rate) = &deny.rate {
            headers.extend(rate.headers());
        }
        ctx.principal = deny.principal;
        respond::send(session, deny.status, deny.body, &headers).await
    }

    /// CORS headers for a response the gateway writes itself.
    fn cors(&self, ctx: &RequestCtx) -> Vec<(HeaderName, HeaderValue)> {
        ctx.origin
            .as_ref()
            .map(|o| cors::response_headers(o).to_vec())
            .unwrap_or_default()
    }
}

/// RFC 9728: the metadata of the protected route the request's path names, answered
/// without a token. A preflight gets open CORS; an unprotected route has no document.
async fn resource_metadata(session: &mut Session, document: Option<Bytes>) -> Result<bool> {
    if cors::is_preflight(session.req_header()) {
        let mut headers = cors::preflight_headers().to_vec();
        headers.push((
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ));
        return respond::send(session, 204, Bytes::new(), &headers).await;
    }
    match document {
        Some(body) => respond::document(session, body).await,
        None => {
            let body = error_json!("not_found", "no protected resource at this path");
            respond::error(session, 404, body).await
        }
    }
}

/// The request's URI rewritten for the upstream: its canonical path (when the client's was
/// not), the route's prefix stripped (unless `strip_prefix: false`) and the upstream's base
/// path put in front; the query as sent. `None`: unchanged.
fn upstream_uri(route: &Route, canonical: Option<&str>, uri: &Uri) -> Result<Option<Uri>> {
    let path = canonical.unwrap_or(uri.path());
    let rest = if route.strip_prefix && route.prefix != "/" {
        path.get(route.prefix.len()..).unwrap_or("")
    } else {
        path
    };
    let base = route.upstream.base_path.as_str();
    if base.is_empty() && rest.len() == path.len() && uri.scheme().is_none() && canonical.is_none()
    {
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
        upstream_uri(r, None, &uri)
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
