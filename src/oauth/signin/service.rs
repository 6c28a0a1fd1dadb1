//! Chained routes: users sign in at a downstream OAuth service (GitHub, Linear, …), the
//! gateway being its client; the tokens are the gateway's own, carrying the service's.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::Request;
use serde_json::{Map, Value};

use crate::auth::provider::IdpError;
use crate::oauth::params::Params;
use crate::oauth::records::AuthRequest;
use crate::oauth::reply::{self, Reply};
use crate::oauth::server::AuthServer;
use crate::oauth::server::SignIn;
use crate::oauth::service::Service;

pub struct ServiceSignIn {
    service: Arc<Service>,
}

impl ServiceSignIn {
    pub fn new(service: Arc<Service>) -> ServiceSignIn {
        ServiceSignIn { service }
    }
}

#[async_trait]
impl SignIn for ServiceSignIn {
    fn signs_in_at(&self) -> Option<String> {
        super::host_of(&self.service.config.authorize_url)
    }

    async fn approved(
        &self,
        server: &AuthServer,
        q: AuthRequest,
        _form: &Params,
        _req: &Request<Bytes>,
        mut cookies: Vec<String>,
    ) -> Reply {
        let (state, challenge, cookie) = server.seal_state(q);
        cookies.push(cookie);
        let challenge = self.service.config.pkce.then_some(challenge.as_str());
        let location = self
            .service
            .authorize_url(&server.callback, &state, challenge);
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
        ];
        if self.service.config.pkce {
            form.push(("code_verifier", verifier));
        }
        self.service.grant(&form).await
    }
}
