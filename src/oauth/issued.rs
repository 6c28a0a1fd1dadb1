//! Tokens the gateway issues itself, on passthrough and chained routes: sealed (AES-256-GCM)
//! records that carry the upstream's credential (the user's key, or the downstream service's
//! access token), bound to their route and grant, with a lifetime. Nothing is stored but a
//! bounded list of revoked grants on this process.

use std::sync::Arc;

use bytes::Bytes;
use log::warn;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::facade::{cors_open, json_error, Broker, Refresh};
use super::seal::{Purpose, Sealer};
use super::service::Service;
use crate::auth::cache::{digest, SlotCache};
use crate::auth::principal::Principal;
use crate::auth::provider::{IdpEndpoint, IdpError};
use crate::auth::rate_limit::RateLimiter;
use crate::auth::{bearer_token, limit, unix_now, Challenges, Deny, Passed, Reject};
use crate::config::{IssuedAuth, Strategy};
use crate::respond;

/// Revoked grants remembered on this process.
const REVOKED_GRANTS: usize = 65_536;

/// An access token's sealed content.
#[derive(Serialize, Deserialize)]
pub struct Access {
    /// The route it was issued on: refused on any other.
    pub r: String,
    /// The grant (one authorization and the refreshes after it): the unit of revocation and
    /// the subject that rate limits and audit lines name.
    pub g: String,
    /// The upstream's credential.
    pub k: String,
    pub exp: u64,
    /// The client it was issued to: only that client may revoke or introspect it (RFC 7009
    /// §2.1). Empty in tokens sealed before clients were bound, which no client may.
    #[serde(default)]
    pub c: String,
}

/// Grants revoked on this process, each remembered until every token of it has expired.
pub struct Revocations(SlotCache<()>);

impl Default for Revocations {
    fn default() -> Self {
        Revocations(SlotCache::new(REVOKED_GRANTS))
    }
}

impl Revocations {
    fn key(route: &str, grant: &str) -> [u8; 32] {
        digest(format!("{route}\n{grant}").as_bytes())
    }

    /// `false`: no room without forgetting a live revocation (a flood of them); the caller
    /// must say the revocation failed rather than let an older one lapse.
    pub fn revoke(&self, route: &str, grant: &str, until: u64, now: u64) -> bool {
        self.0
            .insert_if_room(Self::key(route, grant), until, now, ())
    }

    pub fn is_revoked(&self, route: &str, grant: &str, now: u64) -> bool {
        self.0.get(&Self::key(route, grant), now).is_some()
    }
}

/// The bearer check of a route whose tokens the gateway issued, compiled per snapshot.
pub struct IssuedGuard {
    route: String,
    /// The access token is the key itself (`passthrough.raw`).
    raw: bool,
    pub rate_limiter: Option<Arc<RateLimiter>>,
    challenges: Challenges,
}

impl IssuedGuard {
    pub fn new(
        route: &str,
        auth: &IssuedAuth,
        resource_metadata: &str,
        rate_limiter: Option<Arc<RateLimiter>>,
    ) -> Result<IssuedGuard, http::header::InvalidHeaderValue> {
        Ok(IssuedGuard {
            route: route.to_string(),
            raw: matches!(&auth.strategy, Strategy::Passthrough(p) if p.raw),
            rate_limiter,
            challenges: Challenges::new(resource_metadata, &[])?,
        })
    }

    /// Opens the token; says who passed and what the upstream gets.
    pub fn check(
        &self,
        sealer: &Sealer,
        revocations: &Revocations,
        req: &RequestHeader,
        now: u64,
    ) -> Result<(Passed, String), Deny> {
        let token = bearer_token(req).map_err(|r| self.challenges.reject(r))?;
        let (grant, credential) = if self.raw {
            (pseudonym(sealer, &self.route, token), token.to_string())
        } else {
            let access = self.open(sealer, revocations, token, now)?;
            (access.g, access.k)
        };
        let principal = Arc::new(Principal::subject_only(format!("grant:{grant}")));
        let passed = limit(self.rate_limiter.as_deref(), principal)?;
        Ok((passed, credential))
    }

    fn open(
        &self,
        sealer: &Sealer,
        revocations: &Revocations,
        token: &str,
        now: u64,
    ) -> Result<Access, Deny> {
        let reject = |r| Err(self.challenges.reject(r));
        let Some(access) = sealer.open::<Access>(Purpose::Access, token) else {
            // A changed byte, another key, another kind of token: all the same to us.
            return reject(Reject::Malformed);
        };
        if access.r != self.route {
            return reject(Reject::WrongRoute);
        }
        if access.exp <= now {
            return reject(Reject::Expired);
        }
        if revocations.is_revoked(&self.route, &access.g, now) {
            return reject(Reject::Revoked);
        }
        Ok(access)
    }
}

/// A stable name for a raw key that says nothing about it: rate limits and audit lines need
/// a subject. Keyed (an HMAC under the seal key), so a weak key cannot be guessed back
/// from the logs.
fn pseudonym(sealer: &Sealer, route: &str, key: &str) -> String {
    sealer.derive_secret(&format!("{route}\n{key}"))[..12].to_string()
}

/// How long a service says its access token lives (`expires_in`, a number or a numeric
/// string), a few seconds short so that the gateway's token never outlives it; `None` when
/// it says nothing usable (0 included).
fn service_lifetime(got: &Map<String, Value>) -> Option<u64> {
    let seconds = match got.get("expires_in")? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (seconds >= 1.0).then(|| {
        let seconds = seconds as u64;
        if seconds > 30 {
            seconds - 5
        } else {
            seconds
        }
    })
}

impl Broker<'_> {
    /// A redeemed code of an issued route: tokens for a new grant.
    pub(super) async fn issue(
        &self,
        session: &mut Session,
        auth: &IssuedAuth,
        got: &Map<String, Value>,
        client_id: &str,
        grant: &str,
    ) -> Result<bool> {
        let text = |k: &str| got.get(k).and_then(Value::as_str).unwrap_or_default();
        let body = match &auth.strategy {
            Strategy::Passthrough(p) if p.raw => {
                let answer = json!({"access_token": text("key"), "token_type": "Bearer"});
                Bytes::from(answer.to_string())
            }
            Strategy::Passthrough(_) => {
                let key = text("key");
                self.mint(auth, client_id, grant, key, None, key)
            }
            Strategy::Chained { .. } => {
                let refresh = got.get("refresh_token").and_then(Value::as_str);
                let lifetime = service_lifetime(got);
                self.mint(
                    auth,
                    client_id,
                    grant,
                    text("access_token"),
                    lifetime,
                    refresh.unwrap_or_default(),
                )
            }
        };
        respond::send(session, 200, body, &cors_open()).await
    }

    /// A refresh on an issued route: the passthrough key sealed again, or the downstream
    /// service's tokens refreshed there (a rotated refresh token is sealed in its turn).
    pub(super) async fn refresh_issued(
        &self,
        session: &mut Session,
        (auth, service, revocations): (&IssuedAuth, Option<&Service>, &Revocations),
        refresh: Refresh,
    ) -> Result<bool> {
        let now = unix_now();
        let live = refresh.exp.is_some_and(|exp| exp > now);
        let grant = refresh.grant.as_deref().unwrap_or_default();
        if !live || grant.is_empty() || revocations.is_revoked(&self.facade.route, grant, now) {
            let why = "the refresh token is expired or revoked";
            return json_error(session, 400, "invalid_grant", why).await;
        }
        let client_id = refresh.client_id.as_str();
        let body = match (&auth.strategy, service) {
            (Strategy::Chained { .. }, Some(service)) => {
                // The client's `scope` stays here: it names the gateway's scopes, not the
                // service's, which keeps the scopes it granted.
                let grant_form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.token.as_str()),
                ];
                let got = match service.grant(&grant_form).await {
                    Ok(got) => got,
                    Err(IdpError::Refused(code)) => {
                        warn!(
                            "route {}: the service refused a refresh: {code}",
                            self.facade.route
                        );
                        let why = "the service refused the refresh";
                        return json_error(session, 400, "invalid_grant", why).await;
                    }
                    Err(IdpError::Failed(e)) => {
                        return self.idp_unreachable(session, "refresh", &e).await
                    }
                };
                // A service that does not rotate keeps the old refresh token valid.
                let next = got
                    .get("refresh_token")
                    .and_then(Value::as_str)
                    .unwrap_or(&refresh.token);
                let access = got
                    .get("access_token")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let lifetime = service_lifetime(&got);
                self.mint(auth, client_id, grant, access, lifetime, next)
            }
            (Strategy::Passthrough(_), _) => {
                self.mint(auth, client_id, grant, &refresh.token, None, &refresh.token)
            }
            (Strategy::Chained { .. }, None) => {
                return self
                    .idp_unreachable(session, "refresh", "no such service")
                    .await
            }
        };
        respond::send(session, 200, body, &cors_open()).await
    }

    /// An access token for `credential` (living `access_ttl`, or less if the credential
    /// expires sooner) and a refresh token that carries `renewal` (none if it is empty).
    fn mint(
        &self,
        auth: &IssuedAuth,
        client_id: &str,
        grant: &str,
        credential: &str,
        credential_lifetime: Option<u64>,
        renewal: &str,
    ) -> Bytes {
        let now = unix_now();
        let lifetime = credential_lifetime
            .unwrap_or(u64::MAX)
            .min(auth.access_ttl.as_secs());
        let access = Access {
            r: self.facade.route.clone(),
            g: grant.to_string(),
            k: credential.to_string(),
            exp: now + lifetime,
            c: client_id.to_string(),
        };
        let refresh = (!renewal.is_empty()).then(|| {
            self.sealer.seal(
                Purpose::Refresh,
                &Refresh {
                    client_id: client_id.to_string(),
                    route: self.facade.route.clone(),
                    token: renewal.to_string(),
                    grant: Some(grant.to_string()),
                    exp: Some(now + auth.refresh_ttl.as_secs()),
                },
            )
        });
        let mut answer = Map::new();
        answer.insert(
            "access_token".into(),
            self.sealer.seal(Purpose::Access, &access).into(),
        );
        answer.insert("token_type".into(), "Bearer".into());
        answer.insert("expires_in".into(), lifetime.into());
        if let Some(refresh) = refresh {
            answer.insert("refresh_token".into(), refresh.into());
        }
        Bytes::from(Value::Object(answer).to_string())
    }

    /// RFC 7009 and RFC 7662 for the gateway's own tokens. Revoking either token of a grant
    /// revokes the grant, on this process, until its last token would have expired anyway.
    /// A client may only revoke or introspect tokens issued to it: another client's token is
    /// unknown to it (revocation answers 200 and changes nothing, introspection says
    /// inactive), so a client cannot end or probe someone else's grant.
    pub(super) async fn revoke_or_introspect_issued(
        &self,
        session: &mut Session,
        auth: &IssuedAuth,
        revocations: &Revocations,
        which: IdpEndpoint,
    ) -> Result<bool> {
        let Some((client_id, _, token)) = self.token_form(session).await? else {
            return Ok(true);
        };
        let token = token.as_str();
        let route = self.facade.route.as_str();
        let now = unix_now();
        let access = self
            .sealer
            .open::<Access>(Purpose::Access, token)
            .filter(|a| a.r == route && a.c == client_id)
            .map(|a| (a.g, a.exp));
        let found = access.or_else(|| {
            let r: Refresh = self.sealer.open(Purpose::Refresh, token)?;
            (r.route == route && r.client_id == client_id).then_some((r.grant?, r.exp?))
        });
        if let IdpEndpoint::Revocation = which {
            if let Some((grant, _)) = &found {
                let until = now + auth.access_ttl.max(auth.refresh_ttl).as_secs();
                if !revocations.revoke(route, grant, until, now) {
                    warn!("route {route}: the revocation list is full; a revocation failed");
                    let why = "revocations cannot be recorded now; retry later";
                    return json_error(session, 503, "temporarily_unavailable", why).await;
                }
            }
            return respond::send(session, 200, Bytes::new(), &cors_open()).await;
        }
        let answer = match found {
            Some((grant, exp)) if exp > now && !revocations.is_revoked(route, &grant, now) => {
                json!({"active": true, "exp": exp, "token_type": "Bearer",
                    "sub": format!("grant:{grant}"), "aud": self.facade.issuer})
            }
            _ => json!({"active": false}),
        };
        respond::send(session, 200, Bytes::from(answer.to_string()), &cors_open()).await
    }
}
