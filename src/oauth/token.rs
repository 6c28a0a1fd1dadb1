//! The token endpoint (codes and refresh tokens), and revocation and introspection: the
//! client authenticates, the code or refresh token must be the client's, for this route;
//! then the route's [`Tokens`](super::signin::Tokens) answer.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use log::warn;

use super::issued::grant_key;
use super::params::Params;
use super::pkce::random_token;
use super::records::{Code, Refresh};
use super::reply::{self, Reply};
use super::seal::Purpose;
use super::server::{AuthServer, Protocol, Tokens};
use crate::auth::cache::{digest, hex};
use crate::auth::provider::IdpEndpoint;
use crate::auth::unix_now;
use crate::state::Claim;

/// How long a used refresh token without an expiry (an IdP's, sealed) is remembered.
const SPENT_REFRESH_TTL: u64 = 90 * 24 * 3600;
/// Polls (100 ms apart) for the answer of a refresh still being made.
const RETRY_POLLS: usize = 50;

impl AuthServer {
    /// `POST …/oauth/token`.
    pub(super) async fn token(&self, req: &Request<Bytes>) -> Reply {
        let (client_id, form) = match self.authenticated_form(req).await {
            Ok(ok) => ok,
            Err(refused) => return refused,
        };
        // RFC 8707: tokens from here are for this route only.
        if form
            .get("resource")
            .is_some_and(|r| r.trim_end_matches('/') != self.issuer)
        {
            return reply::error(400, "invalid_target", "the resource is not this server");
        }
        match form.get("grant_type") {
            Some("authorization_code") => self.redeem(&form, &client_id).await,
            Some("refresh_token") => self.refresh(&form, &client_id).await,
            _ => reply::error(
                400,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            ),
        }
    }

    /// A code: bound to its client, redirect URI and PKCE challenge, good once (claimed in
    /// the state before anything is issued: two redemptions at once, on any replicas, get
    /// one answer between them).
    async fn redeem(&self, form: &Params, client_id: &str) -> Reply {
        let Some((_, tokens)) = self.parts() else {
            return reply::error(400, "unsupported_grant_type", "no codes here");
        };
        let invalid = || {
            reply::error(
                400,
                "invalid_grant",
                "the code is invalid, expired, already used, or not for this client",
            )
        };
        let now = unix_now();
        let sealed = form.get("code").unwrap_or_default();
        let code: Option<Code> = self.sealer.open(Purpose::Code, sealed);
        let Some(code) = code.filter(|c| c.exp > now && c.route == self.route) else {
            return invalid();
        };
        let q = &code.q;
        let verifier = form.get("code_verifier").unwrap_or_default();
        let bound = q.client_id == client_id
            && form.get("redirect_uri") == Some(q.redirect_uri.as_str())
            && super::pkce::verifies(verifier, &q.code_challenge);
        if !bound {
            return invalid();
        }
        let grant = random_token()[..22].to_string();
        let key = format!("{}:code:{}", self.route, hex(&digest(sealed.as_bytes())));
        let ttl = Duration::from_secs(code.exp - now + 1);
        match self.state.claim(&key, grant.as_bytes(), ttl).await {
            Ok(Claim::Claimed) => tokens.issue(self, &code.tokens, client_id, &grant),
            Ok(Claim::Taken(first)) => {
                warn!("route {}: a code was presented twice", self.route);
                let first = String::from_utf8_lossy(&first);
                tokens.end_grant(self, &first, None, now).await;
                invalid()
            }
            Err(e) => self.state_unavailable("a code", &e),
        }
    }

    /// A refresh token: the client's, for this route, and good once. A retry of the same
    /// refresh within `refresh_grace` gets the answer the first use got (parallel calls and
    /// clients that retry from another address keep their grant); a use after that is a
    /// replay, and ends the grant.
    async fn refresh(&self, form: &Params, client_id: &str) -> Reply {
        let Some((_, tokens)) = self.parts() else {
            return reply::error(400, "unsupported_grant_type", "no refresh tokens here");
        };
        let sealed = form.get("refresh_token").unwrap_or_default();
        let refresh: Option<Refresh> = self.sealer.open(Purpose::Refresh, sealed);
        let Some(refresh) = refresh.filter(|r| r.client_id == client_id && r.route == self.route)
        else {
            return reply::error(
                400,
                "invalid_grant",
                "the refresh token is invalid or not for this client",
            );
        };
        let Some(id) = refresh.j.clone() else {
            // Sealed before refresh tokens had ids: its answer carries one.
            return tokens.refresh(self, refresh, form).await;
        };
        let now = unix_now();
        let key = format!("{}:refresh:{id}", self.route);
        let ttl = Duration::from_secs(
            refresh
                .exp
                .map_or(SPENT_REFRESH_TTL, |exp| exp.saturating_sub(now))
                + 1,
        );
        let pending = format!("pending:{now}");
        match self.state.claim(&key, pending.as_bytes(), ttl).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Taken(first)) => {
                return self
                    .refresh_again(&key, &first, tokens, &refresh, now)
                    .await
            }
            Err(e) => return self.state_unavailable("a refresh", &e),
        }
        let answer = tokens.refresh(self, refresh, form).await;
        let settled = if answer.status() == 200 {
            let sealed = self.sealer.seal_bytes(Purpose::Answer, answer.body());
            format!("done:{now}:{sealed}")
        } else {
            format!("failed:{now}")
        };
        if let Err(e) = self.state.settle(&key, settled.as_bytes()).await {
            warn!(
                "route {}: a refresh's answer was not kept for retries: {e}",
                self.route
            );
        }
        answer
    }

    /// A refresh token seen before (`first`: what its first use left): the same answer
    /// within the grace, else the end of the grant.
    async fn refresh_again(
        &self,
        key: &str,
        first: &[u8],
        tokens: &dyn Tokens,
        refresh: &Refresh,
        now: u64,
    ) -> Reply {
        let mut first = String::from_utf8_lossy(first).into_owned();
        let used_at = |v: &str| {
            v.split(':')
                .nth(1)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let revoked = refresh
            .grant
            .as_deref()
            .is_some_and(|g| self.state.is_revoked(&grant_key(&self.route, g), now));
        if revoked {
            return reply::error(
                400,
                "invalid_grant",
                "the refresh token is expired or revoked",
            );
        }
        if self.refresh_grace == 0 || now > used_at(&first) + self.refresh_grace {
            warn!(
                "route {}: a spent refresh token was used again; its grant ends",
                self.route
            );
            let grant = refresh.grant.as_deref().unwrap_or_default();
            tokens.end_grant(self, grant, Some(refresh), now).await;
            return reply::error(400, "invalid_grant", "the refresh token was already used");
        }
        // Within the grace: wait (briefly) for the first use's answer, and give it again.
        for _ in 0..RETRY_POLLS {
            if !first.starts_with("pending:") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            match self.state.claim(key, b"", Duration::from_secs(1)).await {
                Ok(Claim::Taken(value)) => first = String::from_utf8_lossy(&value).into_owned(),
                Ok(Claim::Claimed) | Err(_) => break,
            }
        }
        let answer = first
            .strip_prefix("done:")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(_, sealed)| self.sealer.open_bytes(Purpose::Answer, sealed));
        match answer {
            Some(body) => reply::json(200, body),
            None => reply::error(
                400,
                "invalid_grant",
                "the refresh token is being used; retry shortly",
            ),
        }
    }

    /// The state could not say whether something was used: nothing is issued on a guess.
    fn state_unavailable(&self, what: &str, e: &crate::state::StoreError) -> Reply {
        warn!("route {}: {what} could not be checked: {e}", self.route);
        reply::error(
            503,
            "temporarily_unavailable",
            "the gateway cannot check this now; retry shortly",
        )
    }

    /// `POST …/oauth/revoke` (RFC 7009) and `…/oauth/introspect` (RFC 7662).
    pub(super) async fn revoke_or_introspect(
        &self,
        req: &Request<Bytes>,
        which: IdpEndpoint,
    ) -> Reply {
        let (client_id, form) = match self.authenticated_form(req).await {
            Ok(ok) => ok,
            Err(refused) => return refused,
        };
        let Some(token) = form.get("token") else {
            return reply::error(400, "invalid_request", "token is required");
        };
        let tokens = match &self.protocol {
            Protocol::Codes { tokens, .. } => tokens.as_ref(),
            Protocol::Redirect(redirect) => redirect.tokens(),
        };
        tokens
            .revoke_or_introspect(self, which, &client_id, token, &form)
            .await
    }
}
