//! Tokens the gateway issues itself, on passthrough and chained routes: sealed (AES-256-GCM)
//! records that carry the upstream's credential (the user's key, or the downstream service's
//! access token), bound to their route and grant, with a lifetime. Nothing is stored but what
//! the state store keeps with a lifetime: used codes and refresh tokens, revoked grants.

use std::sync::Arc;

use async_trait::async_trait;
use log::warn;
use pingora::http::RequestHeader;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::params::Params;
use super::pkce::random_token;
use super::records::Refresh;
use super::reply::{self, Reply};
use super::seal::{Purpose, Sealer};
use super::server::{AuthServer, Tokens};
use super::service::Service;
use crate::auth::principal::Principal;
use crate::auth::provider::{IdpEndpoint, IdpError};
use crate::auth::{bearer_token, unix_now, Challenges, Deny, Reject};
use crate::config::{IssuedAuth, Strategy};
use crate::state::{State, StoreError};

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

/// The state key of a grant's revocation.
pub fn grant_key(route: &str, grant: &str) -> String {
    format!("{route}:grant:{grant}")
}

/// The bearer check of a route whose tokens the gateway issued, compiled per snapshot.
pub struct IssuedGuard {
    route: String,
    /// The access token is the key itself (`passthrough.raw`).
    raw: bool,
    challenges: Challenges,
    sealer: Arc<Sealer>,
    state: Arc<State>,
}

impl IssuedGuard {
    pub fn new(
        route: &str,
        auth: &IssuedAuth,
        resource_metadata: &str,
        sealer: Arc<Sealer>,
        state: Arc<State>,
    ) -> Result<IssuedGuard, http::header::InvalidHeaderValue> {
        Ok(IssuedGuard {
            route: route.to_string(),
            raw: matches!(&auth.strategy, Strategy::Passthrough(p) if p.raw),
            challenges: Challenges::new(resource_metadata, &[])?,
            sealer,
            state,
        })
    }

    /// Opens the token; says who passed (the grant, as a subject) and what the upstream
    /// gets.
    pub fn check(&self, req: &RequestHeader, now: u64) -> Result<(Arc<Principal>, String), Deny> {
        let token = bearer_token(req).map_err(|r| self.challenges.reject(r))?;
        let (grant, credential, client) = if self.raw {
            (
                pseudonym(&self.sealer, &self.route, token),
                token.to_string(),
                None,
            )
        } else {
            let access = self.open(token, now)?;
            (access.g, access.k, Some(access.c).filter(|c| !c.is_empty()))
        };
        let principal = Arc::new(Principal::subject_only(format!("grant:{grant}"), client));
        Ok((principal, credential))
    }

    fn open(&self, token: &str, now: u64) -> Result<Access, Deny> {
        let reject = |r| Err(self.challenges.reject(r));
        let Some(access) = self.sealer.open::<Access>(Purpose::Access, token) else {
            // A changed byte, another key, another kind of token: all the same to us.
            return reject(Reject::Malformed);
        };
        if access.r != self.route {
            return reject(Reject::WrongRoute);
        }
        if access.exp <= now {
            return reject(Reject::Expired);
        }
        if self
            .state
            .is_revoked(&grant_key(&self.route, &access.g), now)
        {
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

/// The gateway's own tokens (passthrough and chained routes): sealed access tokens that
/// carry the upstream's credential, and refresh tokens that carry what renews it.
pub struct IssuedTokens {
    access_ttl: u64,
    refresh_ttl: u64,
    /// The key itself is the access token (`passthrough.raw`).
    raw: bool,
    /// Chained routes: the service that refreshes the credential.
    service: Option<Arc<Service>>,
    state: Arc<State>,
}

impl IssuedTokens {
    pub fn new(
        auth: &IssuedAuth,
        state: Arc<State>,
        service: Option<Arc<Service>>,
    ) -> IssuedTokens {
        IssuedTokens {
            access_ttl: auth.access_ttl.as_secs(),
            refresh_ttl: auth.refresh_ttl.as_secs(),
            raw: matches!(&auth.strategy, Strategy::Passthrough(p) if p.raw),
            service,
            state,
        }
    }

    /// An access token for `credential` (living `access_ttl`, or less if the credential
    /// expires sooner) and a refresh token that carries `renewal` (none if it is empty).
    fn mint(
        &self,
        server: &AuthServer,
        client_id: &str,
        grant: &str,
        credential: &str,
        credential_lifetime: Option<u64>,
        renewal: &str,
    ) -> Reply {
        let now = unix_now();
        let lifetime = credential_lifetime.unwrap_or(u64::MAX).min(self.access_ttl);
        let access = Access {
            r: server.route.clone(),
            g: grant.to_string(),
            k: credential.to_string(),
            exp: now + lifetime,
            c: client_id.to_string(),
        };
        let mut answer = Map::new();
        answer.insert(
            "access_token".into(),
            server.sealer.seal(Purpose::Access, &access).into(),
        );
        answer.insert("token_type".into(), "Bearer".into());
        answer.insert("expires_in".into(), lifetime.into());
        if !renewal.is_empty() {
            let refresh = Refresh {
                client_id: client_id.to_string(),
                route: server.route.clone(),
                token: renewal.to_string(),
                grant: Some(grant.to_string()),
                exp: Some(now + self.refresh_ttl),
                j: Some(random_token()),
            };
            answer.insert(
                "refresh_token".into(),
                server.sealer.seal(Purpose::Refresh, &refresh).into(),
            );
        }
        reply::json(200, Value::Object(answer).to_string())
    }

    /// Revokes `grant` on this route until its last token would have expired anyway.
    async fn revoke(&self, route: &str, grant: &str, now: u64) -> Result<(), StoreError> {
        let until = now + self.access_ttl.max(self.refresh_ttl);
        self.state
            .revoke(&grant_key(route, grant), until, now)
            .await
    }
}

#[async_trait]
impl Tokens for IssuedTokens {
    /// Tokens for a new grant.
    fn issue(
        &self,
        server: &AuthServer,
        got: &Map<String, Value>,
        client_id: &str,
        grant: &str,
    ) -> Reply {
        let text = |k: &str| got.get(k).and_then(Value::as_str).unwrap_or_default();
        if self.raw {
            let answer = json!({"access_token": text("key"), "token_type": "Bearer"});
            return reply::json(200, answer.to_string());
        }
        match &self.service {
            None => {
                let key = text("key");
                self.mint(server, client_id, grant, key, None, key)
            }
            Some(_) => self.mint(
                server,
                client_id,
                grant,
                text("access_token"),
                service_lifetime(got),
                text("refresh_token"),
            ),
        }
    }

    async fn end_grant(
        &self,
        server: &AuthServer,
        grant: &str,
        _refresh: Option<&Refresh>,
        now: u64,
    ) {
        if let Err(e) = self.revoke(&server.route, grant, now).await {
            warn!(
                "route {}: a grant that must end could not be revoked: {e}",
                server.route
            );
        }
    }

    /// The passthrough key sealed again, or the downstream service's tokens refreshed there
    /// (a rotated refresh token is sealed in its turn).
    async fn refresh(&self, server: &AuthServer, refresh: Refresh, _form: &Params) -> Reply {
        let now = unix_now();
        let live = refresh.exp.is_some_and(|exp| exp > now);
        let grant = refresh.grant.as_deref().unwrap_or_default();
        let revoked = self.state.is_revoked(&grant_key(&server.route, grant), now);
        if !live || grant.is_empty() || revoked {
            return reply::error(
                400,
                "invalid_grant",
                "the refresh token is expired or revoked",
            );
        }
        let client_id = refresh.client_id.as_str();
        let Some(service) = &self.service else {
            return self.mint(
                server,
                client_id,
                grant,
                &refresh.token,
                None,
                &refresh.token,
            );
        };
        // The client's `scope` stays here: it names the gateway's scopes, not the service's,
        // which keeps the scopes it granted.
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.token.as_str()),
        ];
        let got = match service.grant(&form).await {
            Ok(got) => got,
            Err(IdpError::Refused(code)) => {
                warn!(
                    "route {}: the service refused a refresh: {code}",
                    server.route
                );
                return reply::error(400, "invalid_grant", "the service refused the refresh");
            }
            Err(IdpError::Failed(e)) => return server.unreachable("refresh", &e),
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
        self.mint(
            server,
            client_id,
            grant,
            access,
            service_lifetime(&got),
            next,
        )
    }

    /// RFC 7009 and RFC 7662 for the gateway's own tokens. Revoking either token of a grant
    /// revokes the grant in the state store (every replica, with Redis) until its last token
    /// would have expired anyway.
    /// A client may only revoke or introspect tokens issued to it: another client's token is
    /// unknown to it (revocation answers 200 and changes nothing, introspection says
    /// inactive), so a client cannot end or probe someone else's grant.
    async fn revoke_or_introspect(
        &self,
        server: &AuthServer,
        which: IdpEndpoint,
        client_id: &str,
        token: &str,
        _form: &Params,
    ) -> Reply {
        let route = server.route.as_str();
        let now = unix_now();
        let access = server
            .sealer
            .open::<Access>(Purpose::Access, token)
            .filter(|a| a.r == route && a.c == client_id)
            .map(|a| (a.g, a.exp));
        let found = access.or_else(|| {
            let r: Refresh = server.sealer.open(Purpose::Refresh, token)?;
            (r.route == route && r.client_id == client_id).then_some((r.grant?, r.exp?))
        });
        if let IdpEndpoint::Revocation = which {
            if let Some((grant, _)) = &found {
                if let Err(e) = self.revoke(route, grant, now).await {
                    warn!("route {route}: a revocation failed: {e}");
                    return reply::error(
                        503,
                        "temporarily_unavailable",
                        "revocations cannot be recorded now; retry later",
                    );
                }
            }
            return reply::empty(200);
        }
        let answer = match found {
            Some((grant, exp))
                if exp > now && !self.state.is_revoked(&grant_key(route, &grant), now) =>
            {
                json!({"active": true, "exp": exp, "token_type": "Bearer",
                    "sub": format!("grant:{grant}"), "aud": server.issuer})
            }
            _ => json!({"active": false}),
        };
        reply::json(200, answer.to_string())
    }
}
