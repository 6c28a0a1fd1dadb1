//! What the upstream receives in place of the client's token: nothing, static headers,
//! identity headers (never taken from the client), or a token from an RFC 8693 exchange.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue};
use log::warn;
use pingora::http::RequestHeader;
use pingora::prelude::*;

use crate::auth::cache::{digest, SlotCache};
use crate::auth::policy::all_roles;
use crate::auth::principal::Principal;
use crate::auth::provider::Provider;
use crate::config::{Auth, Placement, Route, TokenExchange};

/// Exchanged tokens kept per route.
const EXCHANGED_TOKENS: usize = 16_384;
/// Lifetime assumed for an exchanged token whose answer gives none.
const DEFAULT_EXCHANGED_TTL: u64 = 300;

/// The upstream's own credential for one request.
pub enum UpstreamCredential {
    Header(HeaderName, HeaderValue),
    /// A query parameter and its value; one the client sent under that name is replaced.
    Query(String, String),
}

impl UpstreamCredential {
    pub fn authorization(value: HeaderValue) -> UpstreamCredential {
        UpstreamCredential::Header(AUTHORIZATION, value)
    }

    /// `credential` as `placement` says; `None` if it cannot be a header value.
    pub fn placed(placement: &Placement, credential: &str) -> Option<UpstreamCredential> {
        Some(match placement {
            Placement::Header {
                name,
                before,
                after,
            } => {
                let mut value =
                    HeaderValue::try_from(format!("{before}{credential}{after}")).ok()?;
                value.set_sensitive(true);
                UpstreamCredential::Header(name.clone(), value)
            }
            Placement::Query(param) => UpstreamCredential::Query(param.clone(), credential.into()),
        })
    }
}

/// The header names that carry an identity to some upstream: every `X-Auth-*` and every
/// name any route's `upstream_auth.identity` uses. Nobody may send them through any route,
/// open ones included: an upstream behind an open route may trust them too.
#[derive(Debug, Default)]
pub struct IdentityNames {
    configured: Vec<HeaderName>,
}

impl IdentityNames {
    pub fn new(routes: &[Route]) -> IdentityNames {
        let mut configured: Vec<HeaderName> = Vec::new();
        for names in routes
            .iter()
            .filter_map(|r| r.upstream_auth.identity.as_ref())
        {
            for name in [&names.subject, &names.email, &names.roles] {
                if !configured.contains(name) && !is_x_auth(name) {
                    configured.push(name.clone());
                }
            }
        }
        IdentityNames { configured }
    }

    fn contains(&self, name: &HeaderName) -> bool {
        is_x_auth(name)
            || self
                .configured
                .iter()
                .any(|n| same_after_underscores(name, n))
    }

    /// Drops every identity header the client sent; allocates only when there is one.
    pub fn strip(&self, req: &mut RequestHeader) {
        let spoofed: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|k| self.contains(k))
            .cloned()
            .collect();
        for name in spoofed {
            req.remove_header(&name);
        }
    }
}

/// `X-Auth-…`, also spelled with underscores.
fn is_x_auth(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    name.len() > 7
        && matches!(
            &name[..7],
            b"x-auth-" | b"x_auth_" | b"x-auth_" | b"x_auth-"
        )
}

/// Rewrites the upstream request's credentials for `route`, after dropping any identity
/// header the client sent.
pub fn apply(
    req: &mut RequestHeader,
    route: &Route,
    identity_names: &IdentityNames,
    principal: Option<&Principal>,
    credential: Option<&UpstreamCredential>,
) -> Result<()> {
    identity_names.strip(req);
    let ua = &route.upstream_auth;
    if !matches!(route.auth, Auth::None) {
        // MCP forbids passing the client's token on: the upstream is not its audience.
        // Cookies are the browser's credentials for the gateway's origin, not the upstream's.
        if !ua.forward_token {
            req.remove_header(&AUTHORIZATION);
        }
        req.remove_header(&COOKIE);
    }
    if let Some(names) = &ua.identity {
        if let Some(p) = principal {
            let roles = match &route.auth {
                Auth::Bearer(b) if b.roles.is_configured() => {
                    Some(all_roles(&b.roles, p).collect::<Vec<_>>().join(","))
                }
                _ => None,
            };
            let values = [
                (&names.subject, Some(p.subject.as_str())),
                (&names.email, p.email()),
                (&names.roles, roles.as_deref()),
            ];
            for (name, value) in values {
                // A value that cannot be a header (control characters) is left out.
                if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                    req.insert_header(name.clone(), v)?;
                }
            }
        }
    }
    for (name, value) in &ua.headers {
        req.insert_header(name.clone(), value.clone())?;
    }
    match credential {
        Some(UpstreamCredential::Header(name, value)) => {
            req.insert_header(name.clone(), value.clone())?;
        }
        Some(UpstreamCredential::Query(param, value)) => {
            let uri = with_query_param(&req.uri, param, value)?;
            req.set_uri(uri);
        }
        None => {}
    }
    Ok(())
}

/// `uri` with `param=value` in its query, in place of any the client sent.
fn with_query_param(uri: &http::Uri, param: &str, value: &str) -> Result<http::Uri> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let sent = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes());
    for (k, v) in sent.filter(|(k, _)| k != param) {
        query.append_pair(&k, &v);
    }
    query.append_pair(param, value);
    let path_and_query = format!("{}?{}", uri.path(), query.finish());
    http::Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .or_else(|e| Error::e_explain(ErrorType::InternalError, format!("query credential: {e}")))
}

/// `x_auth_subject` and `x-auth-subject` name the same header to some upstream stacks.
fn same_after_underscores(a: &HeaderName, b: &HeaderName) -> bool {
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (*x == b'_' && *y == b'-'))
}

/// A route's token exchange, with the exchanged tokens cached by the client token's digest
/// until they (or the client's token) expire.
pub struct Exchanger {
    cache: SlotCache<HeaderValue>,
}

impl Default for Exchanger {
    fn default() -> Self {
        Exchanger {
            cache: SlotCache::new(EXCHANGED_TOKENS),
        }
    }
}

impl Exchanger {
    /// The `Authorization` value for the upstream. `now` is unix seconds.
    pub async fn authorization(
        &self,
        provider: &Provider,
        params: &TokenExchange,
        subject_token: &str,
        principal: &Principal,
        now: u64,
    ) -> Option<HeaderValue> {
        let key = digest(subject_token.as_bytes());
        if let Some(hit) = self.cache.get(&key, now) {
            return Some(hit.value.clone());
        }
        let (token, expires_in) = match provider.exchange(subject_token, params).await {
            Ok(answer) => answer,
            Err(e) => {
                warn!("provider {}: token exchange failed: {e}", provider.name);
                return None;
            }
        };
        let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
        value.set_sensitive(true);
        let until = (now
            + expires_in
                .unwrap_or(DEFAULT_EXCHANGED_TTL)
                .saturating_sub(5))
        .min(principal.expires_at.unwrap_or(u64::MAX));
        self.cache.insert(key, until, now, value.clone());
        Some(value)
    }
}
