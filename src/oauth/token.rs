//! The token endpoint (codes and refresh tokens), and revocation and introspection: the
//! client authenticates, the code or refresh token must be the client's, for this route;
//! then the route's [`Tokens`](super::signin::Tokens) answer.

use bytes::Bytes;
use http::Request;
use log::warn;

use super::records::{Code, Refresh};
use super::reply::{self, Reply};
use super::seal::Purpose;
use super::server::{AuthServer, Protocol};
use crate::auth::cache::digest;
use crate::auth::provider::IdpEndpoint;
use crate::auth::unix_now;

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
            Some("authorization_code") => self.redeem(&form, &client_id),
            Some("refresh_token") => self.refresh(&form, &client_id).await,
            _ => reply::error(
                400,
                "unsupported_grant_type",
                "authorization_code or refresh_token",
            ),
        }
    }

    /// A code: bound to its client, redirect URI and PKCE challenge, good once.
    fn redeem(&self, form: &super::params::Params, client_id: &str) -> Reply {
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
        let key = digest(sealed.as_bytes());
        if let Some(first) = self.used_codes.0.get(&key, now) {
            warn!("route {}: a code was presented twice", self.route);
            if let Some(grant) = first.value.as_deref() {
                tokens.end_grant(self, grant, now);
            }
            return invalid();
        }
        let (answer, grant) = tokens.issue(self, &code.tokens, client_id);
        self.used_codes.0.insert(key, code.exp, now, grant);
        answer
    }

    async fn refresh(&self, form: &super::params::Params, client_id: &str) -> Reply {
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
        tokens.refresh(self, refresh, form).await
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
