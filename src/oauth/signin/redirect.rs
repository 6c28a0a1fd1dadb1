//! Redirect mode: the gateway answers discovery and registration, but the user goes straight
//! to the IdP with the provider's static `client_id` (plus the `audience`/`resource` the IdP
//! needs) and comes back to the client; `/token` passes the grant on with the secret added.
//! No consent page and no codes of its own: the IdP must list each client's callback itself.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request};
use serde_json::{json, Value};

use super::idp::IdpTokens;
use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::oauth::clients::{acceptable_redirect, registration, unreadable_registration};
use crate::oauth::params::Params;
use crate::oauth::reply::{self, Reply};
use crate::oauth::server::AuthServer;
use crate::oauth::server::{Fronted, Tokens};
use crate::oauth::Endpoint;

/// Token-endpoint fields a client may pass on to the IdP.
const PASSED_ON: [&str; 5] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
];

pub struct Redirect {
    provider: Arc<Provider>,
    /// The route's advertised scopes, asked for when the client names nothing usable.
    scopes: String,
    /// Revocation and introspection, as in broker mode.
    tokens: IdpTokens,
}

impl Redirect {
    pub fn new(provider: Arc<Provider>, scopes: &[String]) -> Redirect {
        Redirect {
            tokens: IdpTokens::new(provider.clone()),
            provider,
            scopes: scopes.join(" "),
        }
    }

    /// Every caller gets the provider's static `client_id` (never its secret: the gateway
    /// adds that at `/token`), with its redirect URIs echoed.
    fn register(&self, req: &Request<Bytes>) -> Reply {
        let Some(mut meta) = registration(req.body()) else {
            return unreadable_registration();
        };
        let client_id = self.provider.config.client_id.clone().unwrap_or_default();
        meta.insert("client_id".into(), client_id.into());
        meta.insert("token_endpoint_auth_method".into(), "none".into());
        meta.entry("grant_types")
            .or_insert(json!(["authorization_code", "refresh_token"]));
        meta.entry("response_types").or_insert(json!(["code"]));
        reply::json(201, Value::Object(meta).to_string())
    }

    /// The client's request, sent on to the IdP with the static client and the overrides.
    /// The IdP checks the redirect URI against its own list; the gateway refuses what no IdP
    /// should see (no PKCE, a redirect URI that is neither https nor loopback).
    fn authorize(&self, req: &Request<Bytes>) -> Reply {
        let params = Params::parse(req.uri().query().unwrap_or("").as_bytes());
        let c = &self.provider.config;
        let static_id = c.client_id.as_deref().unwrap_or_default();
        let redirect = params
            .get("redirect_uri")
            .filter(|u| acceptable_redirect(u));
        let pkce = params.get("code_challenge").is_some()
            && params.get("code_challenge_method") == Some("S256");
        let (Some(redirect), true, Some(true)) = (
            redirect,
            pkce,
            params.get("client_id").map(|id| id == static_id),
        ) else {
            return reply::error(
                400,
                "invalid_request",
                "the client, redirect URI or PKCE (S256) is missing or wrong",
            );
        };
        let Some(authorize) = self.provider.authorization_endpoint() else {
            return reply::error(
                503,
                "temporarily_unavailable",
                "the identity provider is not reachable yet",
            );
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("client_id", static_id);
        q.append_pair("redirect_uri", redirect);
        for name in [
            "response_type",
            "state",
            "code_challenge",
            "code_challenge_method",
            "nonce",
        ] {
            if let Some(v) = params.get(name) {
                q.append_pair(name, v);
            }
        }
        let scope = c.scopes_for_idp(&super::requested_scopes(params.get("scope"), &self.scopes));
        if !scope.is_empty() {
            q.append_pair("scope", &scope);
        }
        for (name, value) in [("audience", &c.audience), ("resource", &c.resource)] {
            if let Some(v) = value {
                q.append_pair(name, v);
            }
        }
        let separator = if authorize.contains('?') { '&' } else { '?' };
        reply::redirect(&format!("{authorize}{separator}{}", q.finish()), &[])
    }

    /// The client's grant, passed on with the gateway's credentials and the resource
    /// override; the IdP's answer (or OAuth error) goes back as it is.
    async fn token(&self, server: &AuthServer, req: &Request<Bytes>) -> Reply {
        let form = Params::parse(req.body());
        let mut grant: Vec<(&str, &str)> = PASSED_ON
            .iter()
            .filter_map(|name| form.get(name).map(|v| (*name, v)))
            .collect();
        if let Some(resource) = &self.provider.config.resource {
            grant.push(("resource", resource));
        }
        match self.provider.call(IdpEndpoint::Token, &grant).await {
            Ok(answer) => reply::json(200, Value::Object(answer).to_string()),
            Err(IdpError::Refused(code)) => {
                let code = if code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    code
                } else {
                    "invalid_request".into()
                };
                reply::error(400, &code, "the identity provider refused the grant")
            }
            Err(IdpError::Failed(e)) => server.unreachable("token", &e),
        }
    }
}

#[async_trait]
impl Fronted for Redirect {
    fn provider(&self) -> &Provider {
        &self.provider
    }

    fn tokens(&self) -> &dyn Tokens {
        &self.tokens
    }

    async fn handle(&self, server: &AuthServer, endpoint: Endpoint, req: &Request<Bytes>) -> Reply {
        match (endpoint, req.method()) {
            (Endpoint::Register, &Method::POST) => self.register(req),
            (Endpoint::Authorize, &Method::GET) => self.authorize(req),
            (Endpoint::Token, &Method::POST) => self.token(server, req).await,
            _ => reply::error(405, "invalid_request", "not available in redirect mode"),
        }
    }
}
