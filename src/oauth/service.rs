//! A downstream OAuth service (GitHub, Linear, …) that chained routes sign users in at, with
//! the gateway as its client. Such services are plain OAuth 2.0: no discovery, PKCE maybe,
//! and token answers that may come as a form (GitHub, unless asked for JSON).

use serde_json::{Map, Value};

use crate::auth::token_client::{http_client, IdpError, TokenClient};
use crate::config::{ConfigError, ServiceConfig};

pub struct Service {
    pub config: ServiceConfig,
    client: TokenClient,
}

impl Service {
    pub fn new(name: &str, config: ServiceConfig) -> Result<Service, ConfigError> {
        let at = format!("oauth_services.{name}");
        let http = http_client(config.timeout, config.ca_file.as_deref(), None)
            .map_err(|e| ConfigError::new(at, e))?;
        let client = TokenClient::new(
            http,
            &config.client_id,
            Some(config.client_secret.clone()),
            config.client_auth,
        );
        Ok(Service { config, client })
    }

    /// Where the user signs in: the gateway's own client, callback and sealed `state`.
    pub fn authorize_url(&self, callback: &str, state: &str, challenge: Option<&str>) -> String {
        let c = &self.config;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", "code");
        query.append_pair("client_id", &c.client_id);
        query.append_pair("redirect_uri", callback);
        query.append_pair("state", state);
        if let Some(challenge) = challenge {
            query.append_pair("code_challenge", challenge);
            query.append_pair("code_challenge_method", "S256");
        }
        if !c.scopes.is_empty() {
            query.append_pair("scope", &c.scopes.join(" "));
        }
        let separator = if c.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{}", c.authorize_url, query.finish())
    }

    /// A grant at the token endpoint with the gateway's client credentials. The answer must
    /// carry an `access_token`; an OAuth error (also GitHub's 200-with-`error`) is `Refused`.
    pub async fn grant(&self, form: &[(&str, &str)]) -> Result<Map<String, Value>, IdpError> {
        let answer = self.client.post(&self.config.token_url, form).await?;
        if !answer.get("access_token").is_some_and(Value::is_string) {
            let url = &self.config.token_url;
            return Err(IdpError::Failed(format!(
                "{url}: the answer has no access_token"
            )));
        }
        Ok(answer)
    }
}
