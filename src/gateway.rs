//! The `ProxyHttp` implementation: each phase is a few lines that call into the modules.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Method};
use log::info;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{ErrorSource, ErrorType};

use crate::auth::principal::Principal;
use crate::auth::rate_limit::Decision;
use crate::auth::{unix_now, Deny};
use crate::connections;
use crate::cors;
use crate::mcp::{audit, Inspected, Policy};
use crate::metrics;
use crate::oauth::reply;
use crate::oauth::server::{AuthServer, ClientIp};
use crate::oauth::{self, Endpoint};
use crate::respond;
use crate::route::{Admitted, CompiledRoute, UNROUTED};
use crate::snapshot::{GatewayState, Snapshot};
use crate::target;
use crate::upstream::credential::{self, UpstreamCredential};
use crate::upstream::forwarded;
use crate::upstream::spawn::Readiness;
use crate::wellknown;

/// Bodies the authorization server reads (forms, registrations) larger than this get 413.
const MAX_OAUTH_BODY: usize = 16 * 1024;

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
    /// What the route's MCP policy read of the request (and the list reply's filter).
    mcp: Option<Inspected>,
}

impl RequestCtx {
    fn route(&self) -> Option<&CompiledRoute> {
        self.routed.as_ref().map(|(s, i)| &s.routes[*i])
    }

    fn route_name(&self) -> &str {
        self.route()
            .map_or(metrics::NO_ROUTE, |r| r.spec.name.as_str())
    }

    fn admit(&mut self, admitted: Admitted) {
        self.principal = admitted.principal;
        self.rate = admitted.rate;
        self.upstream_credential = admitted.credential;
    }

    /// CORS headers for a response the gateway writes itself.
    fn cors(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.origin
            .as_ref()
            .map(|o| cors::response_headers(o).to_vec())
            .unwrap_or_default()
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
            mcp: None,
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

    /// The flow of a request: health and discovery documents, the canonical target, the
    /// route, its OAuth endpoints, its upstream's start, CORS, its access check; then proxy.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.state.snapshot();
        let req = session.req_header();
        if let Some(answer) = wellknown::health(&snapshot, req.uri.path()) {
            return respond::reply(session, answer).await;
        }
        let (path, host) = match (target::path(req), target::host(req)) {
            (Ok(path), Ok(host)) => (path, host),
            (Err(why), _) | (_, Err(why)) => return respond::invalid_request(session, why).await,
        };
        if !snapshot.config.serves_host(host.as_deref()) {
            let body = error_json!(
                "invalid_request",
                "this gateway listens on loopback and serves only localhost, its public_url's host and its routes' hosts"
            );
            return respond::error(session, 421, body).await;
        }
        if let Some(answer) = wellknown::discovery(&snapshot, host.as_deref(), &path, req) {
            return respond::reply(session, answer).await;
        }
        let Some(found) = snapshot.router.lookup(host.as_deref(), &path) else {
            return respond::reply(session, wellknown::no_route(host.as_deref(), &path)).await;
        };
        let (index, endpoint) = (found.route, Endpoint::of(found.rest));
        if let Cow::Owned(path) = path {
            ctx.path = Some(path);
        }
        ctx.routed = Some((snapshot.clone(), index));
        let route = &snapshot.routes[index];
        if let (Some(server), Some(endpoint)) = (&route.oauth, endpoint) {
            return self.oauth(session, server, endpoint).await;
        }
        match route.upstream_started().await {
            Readiness::Ready => {}
            Readiness::Starting => {
                let body = error_json!(
                    "upstream_starting",
                    "the upstream is starting; retry shortly"
                );
                return respond::error(session, 503, body).await;
            }
            Readiness::Failed(reason) => {
                let why = format!(
                    "the upstream's command fails ({reason}); the gateway keeps restarting it"
                );
                return respond::reply(session, reply::error(502, "upstream_failed", &why)).await;
            }
        }
        if let Some(answered) = self.cors(session, ctx, route).await? {
            return Ok(answered);
        }
        match route.access.check(session.req_header(), unix_now()).await {
            Ok(admitted) => ctx.admit(admitted),
            Err(deny) => return self.refuse(session, ctx, route, deny).await,
        }
        match &route.mcp {
            Some(policy) if session.req_header().method == Method::POST => {
                self.inspect(session, ctx, policy).await
            }
            _ => Ok(false),
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx
            .route()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route"))?;
        let peer = match route.peer.current() {
            Some(peer) => peer,
            None => route.peer.resolve().await.map_err(|e| {
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
        let route = &snapshot.routes[*index];
        if let Some(uri) = route
            .rewrite
            .uri(ctx.path.as_deref(), &upstream_request.uri)?
        {
            upstream_request.set_uri(uri);
        }
        upstream_request.insert_header(HOST, route.host_header.clone())?;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        forwarded::apply(upstream_request, snapshot.config.forwarded, peer)?;
        if ctx.mcp.as_ref().is_some_and(|m| m.list.is_some()) {
            // A list is filtered as JSON: it must not arrive compressed.
            upstream_request.insert_header(ACCEPT_ENCODING, "identity")?;
        }
        credential::apply(
            upstream_request,
            &route.spec,
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
            if let Some(route) = ctx.route() {
                route.metrics.open_streams.inc();
            }
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
        if let Some(list) = ctx.mcp.as_mut().and_then(|m| m.list.as_mut()) {
            list.expect(response);
        }
        Ok(())
    }

    /// A list's reply, filtered for the caller as it passes (see `mcp::lists`).
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        let (Some(list), Some((snapshot, index))) =
            (ctx.mcp.as_mut().and_then(|m| m.list.as_mut()), &ctx.routed)
        else {
            return Ok(None);
        };
        let Some(policy) = &snapshot.routes[*index].mcp else {
            return Ok(None);
        };
        let (kind, caller) = (list.kind, ctx.principal.as_deref());
        *body = list.filter(body.take(), end_of_stream, &|name| {
            policy.allows(kind, name, caller)
        });
        if end_of_stream {
            policy.learn(kind, &list.take_seen());
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failure = respond::classify(e);
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
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        // `as_str` reads a static table: counting a request formats nothing.
        let status_label = session
            .response_written()
            .map_or("0", |r| r.status.as_str());
        let elapsed = ctx.started.elapsed();
        match ctx.route() {
            Some(route) => {
                route.metrics.count(status, status_label);
                route.metrics.latency.observe(elapsed.as_secs_f64());
                if ctx.stream {
                    route.metrics.open_streams.dec();
                }
            }
            None => UNROUTED.count(status, status_label),
        }
        let route = ctx.route_name();
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
        if ctx.principal.is_some() || ctx.mcp.is_some() {
            audit::write(audit::Request {
                route,
                caller: ctx.principal.as_deref(),
                http_method: session.req_header().method.as_str(),
                status,
                elapsed,
                inspected: ctx.mcp.as_ref(),
            });
        }
    }
}

impl Gateway {
    /// A posted MCP request on a route with a policy: its body read (bounded; the proxy
    /// replays it to the upstream), then judged. `Ok(true)` when it was refused here.
    async fn inspect(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        policy: &Policy,
    ) -> Result<bool> {
        session.enable_retry_buffering();
        let body = respond::read_body(session, policy.max_body).await?;
        let (inspected, refusal) = match &body {
            Some(body) => policy.judge(
                &session.req_header().headers,
                body,
                ctx.principal.as_deref(),
            ),
            None => {
                // The rest of the body is never read: the connection cannot be reused.
                session.set_keepalive(None);
                policy.too_large()
            }
        };
        ctx.mcp = inspected;
        let Some(refusal) = refusal else {
            return Ok(false);
        };
        let mut headers = ctx.cors();
        headers.extend(refusal.challenge.map(|c| (WWW_AUTHENTICATE, c)));
        respond::send(session, refusal.status, refusal.body, &headers).await
    }

    /// One of the route's OAuth endpoints: the request's body read (bounded), the
    /// authorization server asked, its answer written.
    async fn oauth(
        &self,
        session: &mut Session,
        server: &AuthServer,
        endpoint: Endpoint,
    ) -> Result<bool> {
        let Some(body) = respond::read_body(session, MAX_OAUTH_BODY).await? else {
            let answer = oauth::reply::error(413, "invalid_request", "the request is too large");
            return respond::reply(session, answer).await;
        };
        let req = session.req_header();
        let mut request = http::Request::new(body);
        *request.method_mut() = req.method.clone();
        *request.uri_mut() = req.uri.clone();
        *request.headers_mut() = req.headers.clone();
        if let Some(ip) = session.client_addr().and_then(|a| a.as_inet()) {
            request.extensions_mut().insert(ClientIp(ip.ip()));
        }
        let answer = server.handle(endpoint, &request).await;
        respond::reply(session, answer).await
    }

    /// The browser origin check: `Some(true)` when the request was answered here (a
    /// refused origin, a preflight).
    async fn cors(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
    ) -> Result<Option<bool>> {
        match cors::check(&route.spec.cors_origins, session.req_header()) {
            cors::Verdict::NoOrigin => Ok(None),
            cors::Verdict::Forbidden => {
                metrics::AUTH_FAILURES
                    .with_label_values(&[&route.spec.name, "origin_not_allowed"])
                    .inc();
                let body = error_json!("origin_not_allowed", "this origin may not call this route");
                respond::error(session, 403, body).await.map(Some)
            }
            cors::Verdict::Allowed(origin) => {
                let preflight = cors::is_preflight(session.req_header());
                ctx.origin = Some(origin);
                if !preflight {
                    return Ok(None);
                }
                let mut headers = ctx.cors();
                headers.extend(cors::preflight_headers());
                respond::send(session, 204, Bytes::new(), &headers)
                    .await
                    .map(Some)
            }
        }
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &CompiledRoute,
        deny: Deny,
    ) -> Result<bool> {
        let name = &route.spec.name;
        metrics::AUTH_FAILURES
            .with_label_values(&[name, deny.reason])
            .inc();
        info!(target: "mcpgate::auth", "route={name} refused ({}): {}", deny.status, deny.reason);
        let mut headers = ctx.cors();
        if let Some(challenge) = deny.challenge {
            headers.push((WWW_AUTHENTICATE, challenge));
        }
        if let Some(rate) = &deny.rate {
            headers.extend(rate.headers());
        }
        ctx.principal = deny.principal;
        respond::send(session, deny.status, deny.body, &headers).await
    }
}
