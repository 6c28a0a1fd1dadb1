//! Broker mode: users sign in at the route's IdP, the gateway being its one static client
//! (its own callback, PKCE pair and sealed `state`); the tokens are the IdP's, passed on,
//! with its refresh token sealed to the client.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::Request;
use serde_json::{Map, Value};

use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::oauth::params::Params;
use crate::oauth::records::{AuthRequest, Refresh};
use crate::oauth::reply::{self, Reply};
use crate::oauth::seal::Purpose;
use crate::oauth::server::AuthServer;
use crate::oauth::server::{SignIn, Tokens};

pub struct IdpSignIn {
    provider: Arc<Provider>,
    /// The route's advertised scopes, asked for when the client names nothing usable.
    scopes: String,
}

impl IdpSignIn {
    pub fn new(provider: Arc<Provider>, scopes: &[String]) -> IdpSignIn {
        IdpSignIn {
            provider,
            scopes: scopes.join(" "),
        }
    }

    /// The IdP's authorize URL for the gateway's own client.
    fn authorize_url(
        &self,
        authorize: &str,
        callback: &str,
        state: &str,
        challenge: &str,
        scope: &str,
    ) -> String {
        let c = &self.provider.config;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", "code");
        query.append_pair("client_id", c.client_id.as_deref().unwrap_or_default());
        query.append_pair("redirect_uri", callback);
        query.append_pair("state", state);
        query.append_pair("code_challenge", challenge);
        query.append_pair("code_challenge_method", "S256");
        if !scope.is_empty() {
            query.append_pair("scope", scope);
        }
        for (name, value) in [("audience", &c.audience), ("resource", &c.resource)] {
            if let Some(v) = value {
                query.append_pair(name, v);
            }
        }
        let separator = if authorize.contains('?') { '&' } else { '?' };
        format!("{authorize}{separator}{}", query.finish())
    }
}

#[async_trait]
impl SignIn for IdpSignIn {
    fn idp(&self) -> Option<&Provider> {
        Some(&self.provider)
    }

    fn signs_in_at(&self) -> Option<String> {
        super::host_of(&self.provider.config.issuer)
    }

    /// On to the IdP, with a sealed `state` that carries the client's request and the
    /// gateway's PKCE verifier.
    async fn approved(
        &self,
        server: &AuthServer,
        q: AuthRequest,
        _form: &Params,
        _req: &Request<Bytes>,
        mut cookies: Vec<String>,
    ) -> Reply {
        let Some(authorize) = self.provider.authorization_endpoint() else {
            return server
                .error_page("The identity provider is not reachable yet. Try again shortly.");
        };
        let requested = super::requested_scopes(q.scope.as_deref(), &self.scopes);
        let scope = self.provider.config.scopes_for_idp(&requested);
        let (state, challenge, cookie) = server.seal_state(q);
        cookies.push(cookie);
        let location = self.authorize_url(&authorize, &server.callback, &state, &challenge, &scope);
        reply::redirect(&location, &cookies)
    }

    async fn exchange(
        &self,
        server: &AuthServer,
        code: &str,
        verifier: &str,
    ) -> Result<Map<String, Value>, IdpError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", server.callback.as_str()),
            ("code_verifier", verifier),
        ];
        if let Some(resource) = &self.provider.config.resource {
            form.push(("resource", resource));
        }
        self.provider.token_grant(&form).await
    }
}

/// The IdP's tokens, passed on (also in redirect mode, for revocation and introspection).
pub struct IdpTokens {
    provider: Arc<Provider>,
}

impl IdpTokens {
    pub fn new(provider: Arc<Provider>) -> IdpTokens {
        IdpTokens { provider }
    }

    /// The token answer: the IdP's access token as it is; its refresh token sealed to this
    /// client; its ID token (meant for the gateway) left out.
    fn answer(&self, server: &AuthServer, idp: &Map<String, Value>, client_id: &str) -> Reply {
        let mut answer = Map::new();
        for key in ["access_token", "token_type", "expires_in", "scope"] {
            if let Some(v) = idp.get(key) {
                answer.insert(key.into(), v.clone());
            }
        }
        answer.entry("token_type").or_insert("Bearer".into());
        if let Some(token) = idp.get("refresh_token").and_then(Value::as_str) {
            let sealed = server.sealer.seal(
                Purpose::Refresh,
                &Refresh {
                    client_id: client_id.into(),
                    route: server.route.clone(),
                    token: token.into(),
                    grant: None,
                    exp: None,
                    j: Some(crate::oauth::pkce::random_token()),
                },
            );
            answer.insert("refresh_token".into(), sealed.into());
        }
        reply::json(200, Value::Object(answer).to_string())
    }
}

#[async_trait]
impl Tokens for IdpTokens {
    fn issue(
        &self,
        server: &AuthServer,
        got: &Map<String, Value>,
        client_id: &str,
        _grant: &str,
    ) -> Reply {
        self.answer(server, got, client_id)
    }

    /// The IdP's tokens are the IdP's: a spent refresh token replayed is revoked there, as
    /// far as the IdP lets the gateway (the access tokens live on until they expire).
    async fn end_grant(
        &self,
        server: &AuthServer,
        _grant: &str,
        refresh: Option<&Refresh>,
        _now: u64,
    ) {
        let Some(refresh) = refresh else { return };
        let form = [
            ("token", refresh.token.as_str()),
            ("token_type_hint", "refresh_token"),
        ];
        if let Err(e) = self.provider.call(IdpEndpoint::Revocation, &form).await {
            log::warn!(
                "route {}: revoking a replayed refresh token at the IdP failed: {e}",
                server.route
            );
        }
    }

    async fn refresh(&self, server: &AuthServer, refresh: Refresh, form: &Params) -> Reply {
        let mut grant = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.token.as_str()),
        ];
        if let Some(scope) = form.get("scope") {
            grant.push(("scope", scope));
        }
        match self.provider.token_grant(&grant).await {
            Ok(mut tokens) => {
                // Without rotation at the IdP, the old refresh token stays the one to use.
                tokens
                    .entry("refresh_token")
                    .or_insert(refresh.token.into());
                self.answer(server, &tokens, &refresh.client_id)
            }
            Err(IdpError::Refused(code)) => {
                let code = if code == "invalid_grant" {
                    "invalid_grant"
                } else {
                    "invalid_request"
                };
                reply::error(400, code, "the identity provider refused the refresh")
            }
            Err(IdpError::Failed(e)) => server.unreachable("refresh", &e),
        }
    }

    /// Passed on to the IdP with the gateway's credentials, after opening a sealed refresh
    /// token (which must be the caller's).
    async fn revoke_or_introspect(
        &self,
        server: &AuthServer,
        which: IdpEndpoint,
        client_id: &str,
        token: &str,
        form: &Params,
    ) -> Reply {
        let refresh: Option<Refresh> = server.sealer.open(Purpose::Refresh, token);
        let (token, hint) = match &refresh {
            Some(r) if r.client_id != client_id || r.route != server.route => {
                return reply::error(
                    400,
                    "unauthorized_client",
                    "the token belongs to another client",
                );
            }
            Some(r) => (r.token.as_str(), "refresh_token"),
            None => (token, form.get("token_type_hint").unwrap_or("access_token")),
        };
        let answer = self
            .provider
            .call(which, &[("token", token), ("token_type_hint", hint)])
            .await;
        match (which, answer) {
            (IdpEndpoint::Introspection, Ok(answer)) => {
                reply::json(200, Value::Object(answer).to_string())
            }
            (IdpEndpoint::Introspection, Err(IdpError::Refused(_))) => {
                reply::json(200, r#"{"active":false}"#)
            }
            // RFC 7009: an invalid or unknown token is no error.
            (_, Ok(_) | Err(IdpError::Refused(_))) => reply::empty(200),
            (_, Err(IdpError::Failed(e))) => server.unreachable(&format!("{which:?}"), &e),
        }
    }
}
