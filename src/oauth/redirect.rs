//! Redirect mode: the gateway answers discovery and registration, but the user goes straight
//! to the IdP with the provider's static `client_id` (plus the `audience`/`resource` the IdP
//! needs) and comes back to the client; `/token` passes the grant on with the secret added.
//! No consent page and no codes of its own: the IdP must list each client's callback itself.

use bytes::Bytes;
use http::Method;
use pingora::prelude::*;
use pingora::proxy::Session;
use serde_json::{json, Value};

use super::facade::{
    acceptable_redirect, cors_open, json_error, read_registration, Broker, Params, MAX_BODY,
};
use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::respond;

/// Token-endpoint fields a client may pass on to the IdP.
const PASSED_ON: [&str; 5] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
];

impl Broker<'_> {
    pub(super) async fn serve_redirect_mode(
        &self,
        session: &mut Session,
        endpoint: &str,
        method: Method,
        provider: &Provider,
    ) -> Result<bool> {
        match (endpoint, method) {
            ("register", Method::POST) => self.register_static(session, provider).await,
            ("authorize", Method::GET) => self.authorize_at_idp(session, provider).await,
            ("token", Method::POST) => self.token_at_idp(session, provider).await,
            _ => {
                let body = error_json!("invalid_request", "not available in redirect mode");
                respond::error(session, 405, body).await
            }
        }
    }

    /// Every caller gets the provider's static `client_id` (never its secret: the gateway
    /// adds that at `/token`), with its redirect URIs echoed.
    async fn register_static(&self, session: &mut Session, provider: &Provider) -> Result<bool> {
        let Some(mut meta) = read_registration(session).await? else {
            return Ok(true);
        };
        let client_id = provider.config.client_id.clone().unwrap_or_default();
        meta.insert("client_id".into(), client_id.into());
        meta.insert("token_endpoint_auth_method".into(), "none".into());
        meta.entry("grant_types")
            .or_insert(json!(["authorization_code", "refresh_token"]));
        meta.entry("response_types").or_insert(json!(["code"]));
        let body = Bytes::from(Value::Object(meta).to_string());
        respond::send(session, 201, body, &cors_open()).await
    }

    /// The client's request, sent on to the IdP with the static client and the overrides.
    /// The IdP checks the redirect URI against its own list; the gateway refuses what no IdP
    /// should see (no PKCE, a redirect URI that is neither https nor loopback).
    async fn authorize_at_idp(&self, session: &mut Session, provider: &Provider) -> Result<bool> {
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let params = Params::parse(query.as_bytes());
        let c = &provider.config;
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
            let body = error_json!(
                "invalid_request",
                "the client, redirect URI or PKCE (S256) is missing or wrong"
            );
            return respond::error(session, 400, body).await;
        };
        let Some(authorize) = provider.authorization_endpoint() else {
            let body = error_json!(
                "temporarily_unavailable",
                "the identity provider is not reachable yet"
            );
            return respond::error(session, 503, body).await;
        };
        let location = {
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
            let scope = c.scopes_for_idp(params.get("scope").unwrap_or_default());
            if !scope.is_empty() {
                q.append_pair("scope", &scope);
            }
            for (name, value) in [("audience", &c.audience), ("resource", &c.resource)] {
                if let Some(v) = value {
                    q.append_pair(name, v);
                }
            }
            let separator = if authorize.contains('?') { '&' } else { '?' };
            format!("{authorize}{separator}{}", q.finish())
        };
        respond::redirect(session, &location).await
    }

    /// The client's grant, passed on with the gateway's credentials and the resource
    /// override; the IdP's answer (or OAuth error) goes back as it is.
    async fn token_at_idp(&self, session: &mut Session, provider: &Provider) -> Result<bool> {
        let Some(body) = respond::read_body(session, MAX_BODY).await? else {
            return json_error(session, 413, "invalid_request", "the request is too large").await;
        };
        let form = Params::parse(&body);
        let mut grant: Vec<(&str, &str)> = PASSED_ON
            .iter()
            .filter_map(|name| form.get(name).map(|v| (*name, v)))
            .collect();
        if let Some(resource) = &provider.config.resource {
            grant.push(("resource", resource));
        }
        match provider.call(IdpEndpoint::Token, &grant).await {
            Ok(answer) => {
                let body = Bytes::from(Value::Object(answer).to_string());
                respond::send(session, 200, body, &cors_open()).await
            }
            Err(IdpError::Refused(code)) => {
                let code = if code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    code
                } else {
                    "invalid_request".into()
                };
                json_error(
                    session,
                    400,
                    &code,
                    "the identity provider refused the grant",
                )
                .await
            }
            Err(IdpError::Failed(e)) => self.idp_unreachable(session, "token", &e).await,
        }
    }
}
