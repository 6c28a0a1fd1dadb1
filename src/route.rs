//! The one runtime route: everything a request on a route needs, compiled once per snapshot
//! from the validated route. Its protection is an [`Access`] that cannot be written down
//! without the check it needs; its authorization server (if the gateway is one for it) is
//! wired here, not per request; its metric handles are resolved here.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora_prometheus::prometheus::{Histogram, IntCounter, IntGauge};

use crate::auth::principal::Principal;
use crate::auth::provider::Provider;
use crate::auth::rate_limit::{Decision, RateLimiter};
use crate::auth::{rate_limited, Deny, Guard};
use crate::config::{Auth, BearerAuth, ConfigError, Placement, Route, TokenExchange};
use crate::mcp::Policy;
use crate::metrics;
use crate::oauth::issued::IssuedGuard;
use crate::oauth::metadata;
use crate::oauth::server::{AuthServer, Shared};
use crate::oauth::service::Service;
use crate::oauth::signin;
use crate::state::State;
use crate::upstream::credential::{Exchanger, UpstreamCredential};
use crate::upstream::peer::UpstreamPeer;
use crate::upstream::rewrite::Rewrite;
use crate::upstream::spawn::{Readiness, SpawnKey, SpawnState, Supervisor};

pub struct CompiledRoute {
    /// The route as validated.
    pub spec: Route,
    pub rewrite: Rewrite,
    pub peer: UpstreamPeer,
    /// The `Host` header sent upstream, built once.
    pub host_header: HeaderValue,
    pub spawned: Option<(SpawnKey, Arc<SpawnState>)>,
    pub access: Access,
    /// The route's authorization server, when the gateway is one for it.
    pub oauth: Option<AuthServer>,
    /// The route's protected resource metadata document (RFC 9728), when it is protected.
    pub resource_metadata: Option<Bytes>,
    /// What it reads of MCP requests and whom it lets call what (`mcp:`).
    pub mcp: Option<Policy>,
    pub metrics: RouteMetrics,
}

/// How a route is protected.
pub enum Access {
    /// `auth: none`: requests pass untouched.
    Open,
    /// Bearer tokens from a provider, then the route's policy; maybe a token exchange.
    Bearer(Box<BearerAccess>),
    /// The gateway's own tokens, which carry the upstream's credential.
    Issued(Box<IssuedAccess>),
}

pub struct BearerAccess {
    pub guard: Guard,
    auth: BearerAuth,
    limit: Option<Limit>,
    exchange: Option<(TokenExchange, Arc<Exchanger>)>,
    route: String,
}

pub struct IssuedAccess {
    guard: IssuedGuard,
    limit: Option<Limit>,
    placement: Placement,
}

/// A route's rate limit per subject: its own limiter, or (with Redis) the shared bucket.
pub struct Limit {
    limiter: Arc<RateLimiter>,
    state: Arc<State>,
    /// The shared bucket's name: the route's.
    bucket: String,
}

impl Limit {
    /// The decision the response reports, or the 429.
    async fn admit(
        limit: Option<&Limit>,
        principal: &Arc<Principal>,
    ) -> Result<Option<Decision>, Deny> {
        let Some(limit) = limit else {
            return Ok(None);
        };
        let decision = limit
            .state
            .take(&limit.limiter, &limit.bucket, &principal.subject)
            .await;
        if !decision.allowed {
            return Err(rate_limited(decision, principal.clone()));
        }
        Ok(Some(decision))
    }
}

/// A request let through: whom it speaks for, the rate-limit state its response reports,
/// and the upstream's own credential.
#[derive(Default)]
pub struct Admitted {
    pub principal: Option<Arc<Principal>>,
    pub rate: Option<Decision>,
    pub credential: Option<UpstreamCredential>,
}

impl Access {
    /// The token check and the route's policy; `now` is unix seconds.
    pub async fn check(&self, req: &RequestHeader, now: u64) -> Result<Admitted, Deny> {
        match self {
            Access::Open => Ok(Admitted::default()),
            Access::Bearer(bearer) => bearer.check(req, now).await,
            Access::Issued(issued) => {
                let (principal, key) = issued.guard.check(req, now)?;
                let rate = Limit::admit(issued.limit.as_ref(), &principal).await?;
                let Some(credential) = UpstreamCredential::placed(&issued.placement, &key) else {
                    // A service token no header can carry: never proxy without it.
                    return Err(cannot_reach_upstream(
                        principal,
                        "the upstream's credential cannot be sent",
                    ));
                };
                Ok(Admitted {
                    principal: Some(principal),
                    rate,
                    credential: Some(credential),
                })
            }
        }
    }

    fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        let limit = match self {
            Access::Open => None,
            Access::Bearer(b) => b.limit.as_ref(),
            Access::Issued(i) => i.limit.as_ref(),
        };
        limit.map(|l| &l.limiter)
    }
}

impl BearerAccess {
    /// The bearer check, then (when the route exchanges tokens) the upstream's token.
    async fn check(&self, req: &RequestHeader, now: u64) -> Result<Admitted, Deny> {
        let principal = self.guard.check(&self.auth, req, now).await?;
        let rate = Limit::admit(self.limit.as_ref(), &principal).await?;
        let Some((params, exchanger)) = &self.exchange else {
            return Ok(Admitted {
                principal: Some(principal),
                rate,
                credential: None,
            });
        };
        let token = crate::auth::bearer_token(req).unwrap_or_default();
        let value = exchanger
            .authorization(&self.guard.provider, params, token, &principal, now)
            .await;
        let result = if value.is_some() { "ok" } else { "error" };
        metrics::TOKEN_EXCHANGES
            .with_label_values(&[&self.route, result])
            .inc();
        match value {
            Some(value) => Ok(Admitted {
                principal: Some(principal),
                rate,
                credential: Some(UpstreamCredential::authorization(value)),
            }),
            None => Err(cannot_reach_upstream(
                principal,
                "the token for the upstream could not be obtained",
            )),
        }
    }
}

/// `502`: the client is who it says, but the upstream's credential cannot be had.
fn cannot_reach_upstream(principal: Arc<Principal>, description: &str) -> Deny {
    let body = serde_json::json!({"error": "bad_gateway", "error_description": description});
    Deny {
        status: 502,
        reason: "upstream_credential",
        challenge: None,
        body: Bytes::from(body.to_string()),
        rate: None,
        principal: Some(principal),
    }
}

/// What a route's build takes from the snapshot it belongs to.
pub struct Context<'a> {
    pub supervisor: &'a Supervisor,
    pub public_url: &'a str,
    pub providers: &'a BTreeMap<String, Arc<Provider>>,
    pub services: &'a BTreeMap<String, Arc<Service>>,
    pub shared: &'a Shared,
}

impl CompiledRoute {
    /// Compiles `route` (at key path `at`). `old` is the same route in the previous snapshot:
    /// its rate limiter (with its state) and exchanged tokens are kept when their settings
    /// did not change.
    pub fn compile(
        route: Route,
        at: &str,
        cx: &Context,
        old: Option<&CompiledRoute>,
    ) -> Result<CompiledRoute, ConfigError> {
        let peer = UpstreamPeer::new(&route, at)?;
        let host_header = HeaderValue::from_str(&route.upstream.authority).map_err(|_| {
            ConfigError::new(format!("{at}.upstream"), "host is not a valid Host header")
        })?;
        let spawned = match &route.spawn {
            Some(spawn) => {
                // Loopback only (checked by validation), so this asks no DNS server.
                let addr = peer.resolve_blocking().map_err(|e| {
                    ConfigError::new(format!("{at}.upstream"), format!("cannot resolve: {e}"))
                })?;
                let key = SpawnKey::new(addr, spawn);
                let state = cx.supervisor.state_for(&key);
                Some((key, state))
            }
            None => None,
        };
        let provider = match &route.auth {
            Auth::Bearer(b) => Some(&cx.providers[&b.provider]),
            _ => None,
        };
        let oauth =
            signin::for_route(&route, provider, cx.services, &cx.shared.state).map(|protocol| {
                let consent = match &route.auth {
                    Auth::Bearer(b) => b.consent.clone(),
                    Auth::Issued(i) => i.consent.clone(),
                    Auth::None => Default::default(),
                };
                let scopes = route.scopes();
                AuthServer::new(cx.public_url, &route, consent, cx.shared, protocol, &scopes)
            });
        let metadata_url = metadata::resource_metadata_url(cx.public_url, &route);
        let access = access(&route, at, cx, provider, old, &metadata_url)?;
        let mcp = route
            .mcp
            .as_ref()
            .map(|spec| Policy::compile(spec, &route, &metadata_url, &format!("{at}.mcp")))
            .transpose()?;
        let issuer = match (&oauth, provider) {
            (Some(server), _) => Some(server.issuer.as_str()),
            (None, Some(p)) => Some(p.config.issuer.as_str()),
            (None, None) => None,
        };
        let resource_metadata = issuer.map(|issuer| {
            metadata::resource_document(cx.public_url, &route, &route.scopes(), issuer)
        });
        Ok(CompiledRoute {
            metrics: RouteMetrics::new(&route.name),
            rewrite: Rewrite::new(&route),
            spec: route,
            peer,
            host_header,
            spawned,
            access,
            oauth,
            resource_metadata,
            mcp,
        })
    }
}

impl CompiledRoute {
    /// Waits (up to its `ready_timeout`) for a spawned upstream that is (re)starting;
    /// counted when it is not listening by then or its command fails.
    pub async fn upstream_started(&self) -> Readiness {
        let (Some((_, state)), Some(spawn)) = (&self.spawned, &self.spec.spawn) else {
            return Readiness::Ready;
        };
        let readiness = state.wait_ready(spawn.ready_timeout).await;
        let counted = match readiness {
            Readiness::Ready => return readiness,
            Readiness::Starting => "starting",
            Readiness::Failed(_) => "command_failed",
        };
        metrics::UPSTREAM_ERRORS
            .with_label_values(&[&self.spec.name, counted])
            .inc();
        readiness
    }
}

/// The route's access, compiled.
fn access(
    route: &Route,
    at: &str,
    cx: &Context,
    provider: Option<&Arc<Provider>>,
    old: Option<&CompiledRoute>,
    metadata_url: &str,
) -> Result<Access, ConfigError> {
    let limit = rate_limiter(route, old).map(|limiter| Limit {
        limiter,
        state: cx.shared.state.clone(),
        bucket: route.name.clone(),
    });
    Ok(match (&route.auth, provider) {
        (Auth::None, _) => Access::Open,
        (Auth::Issued(auth), _) => Access::Issued(Box::new(IssuedAccess {
            guard: IssuedGuard::new(
                &route.name,
                auth,
                metadata_url,
                cx.shared.sealer.clone(),
                cx.shared.state.clone(),
            )
            .map_err(|_| ConfigError::new(format!("{at}.prefix"), "cannot be in a header"))?,
            limit,
            placement: auth.placement.clone(),
        })),
        (Auth::Bearer(bearer), Some(provider)) => {
            let needs_subject = limit.is_some() || route.upstream_auth.identity.is_some();
            let guard = Guard::new(bearer, metadata_url, provider.clone(), needs_subject).map_err(
                |_| {
                    ConfigError::new(
                        format!("{at}.auth.scopes"),
                        "a scope has characters a WWW-Authenticate header cannot carry",
                    )
                },
            )?;
            let exchange = route.upstream_auth.token_exchange.as_ref().map(|te| {
                // Exchanged tokens stay valid only while the route and its provider are
                // unchanged.
                let kept = old.and_then(|o| match &o.access {
                    Access::Bearer(b)
                        if o.spec.auth == route.auth
                            && Arc::ptr_eq(&b.guard.provider, provider) =>
                    {
                        b.exchange
                            .as_ref()
                            .filter(|(params, _)| params == te)
                            .map(|(_, e)| e.clone())
                    }
                    _ => None,
                });
                (te.clone(), kept.unwrap_or_default())
            });
            Access::Bearer(Box::new(BearerAccess {
                guard,
                auth: (**bearer).clone(),
                limit,
                exchange,
                route: route.name.clone(),
            }))
        }
        (Auth::Bearer(_), None) => unreachable!("validation checks that the provider exists"),
    })
}

/// The route's rate limiter: the previous snapshot's (with its state) when the limit did
/// not change, else a new one.
fn rate_limiter(route: &Route, old: Option<&CompiledRoute>) -> Option<Arc<RateLimiter>> {
    let limit = route.auth.rate_limit()?;
    let kept = old.and_then(|o| {
        o.access
            .rate_limiter()
            .filter(|_| o.spec.auth.rate_limit() == Some(limit))
            .cloned()
    });
    Some(kept.unwrap_or_else(|| Arc::new(RateLimiter::new(limit.clone()))))
}

/// Statuses whose request counters are resolved at build: what a route answers nearly always.
const COMMON_STATUSES: [u16; 12] = [200, 202, 204, 400, 401, 403, 404, 429, 500, 502, 503, 504];

/// The metric handles of requests no route matched.
pub static UNROUTED: LazyLock<RouteMetrics> =
    LazyLock::new(|| RouteMetrics::new(metrics::NO_ROUTE));

/// A route's metric handles, resolved once so that counting a request hashes no labels.
pub struct RouteMetrics {
    name: String,
    requests: [IntCounter; COMMON_STATUSES.len()],
    pub latency: Histogram,
    pub open_streams: IntGauge,
}

impl RouteMetrics {
    pub fn new(name: &str) -> RouteMetrics {
        RouteMetrics {
            name: name.to_string(),
            requests: COMMON_STATUSES
                .map(|status| metrics::REQUESTS.with_label_values(&[name, &status.to_string()])),
            latency: metrics::LATENCY.with_label_values(&[name]),
            open_streams: metrics::OPEN_STREAMS.with_label_values(&[name]),
        }
    }

    /// Counts a request answered with `status` (0: no answer).
    pub fn count(&self, status: u16, label: &str) {
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.requests[i].inc(),
            None => metrics::REQUESTS
                .with_label_values(&[&self.name, label])
                .inc(),
        }
    }
}
