//! A downstream OAuth service (GitHub, Linear, …) that chained routes sign users in at, with
//! the gateway as its client. Such services are plain OAuth 2.0: no discovery, PKCE maybe,
//! and token answers that may come as a form (GitHub, unless asked for JSON).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth::provider::{error_chain, read_capped, IdpError};
use crate::config::{ClientAuth, ConfigError, ServiceConfig};

pub struct Service {
    pub name: String,
    pub config: ServiceConfig,
    client: reqwest::Client,
}

impl Service {
    pub fn new(name: &str, config: ServiceConfig) -> Result<Service, ConfigError> {
        let at = format!("oauth_services.{name}");
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // The token endpoint must answer itself.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let certs = std::fs::read(ca)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())
                })
                .map_err(|e| ConfigError::new(format!("{at}.ca_file"), e))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::new(at, e.to_string()))?;
        Ok(Service {
            name: name.to_string(),
            config,
            client,
        })
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
        let c = &self.config;
        let mut fields = form.to_vec();
        let mut request = self
            .client
            .post(&c.token_url)
            .header("Accept", "application/json");
        match c.client_auth {
            ClientAuth::Post => {
                fields.push(("client_id", &c.client_id));
                fields.push(("client_secret", &c.client_secret.0));
            }
            // RFC 6749 §2.3.1: form-encode both before joining them.
            _ => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                let (id, secret): (String, String) = (enc(&c.client_id), enc(&c.client_secret.0));
                request = request.basic_auth(id, Some(secret));
            }
        }
        let failed = |e: String| IdpError::Failed(format!("{}: {e}", c.token_url));
        let response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| failed(error_chain(&e.without_url())))?;
        let status = response.status();
        let is_form = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let body = read_capped(response).await.map_err(failed)?;
        let answer = parse_answer(&body, is_form).ok_or_else(|| {
            failed(format!(
                "status {status}, the answer is neither a JSON object nor a form"
            ))
        })?;
        if let Some(code) = answer.get("error").and_then(Value::as_str) {
            return Err(IdpError::Refused(code.to_string()));
        }
        if !status.is_success() {
            return Err(failed(format!("status {status}")));
        }
        if !answer.get("access_token").is_some_and(Value::is_string) {
            return Err(failed("the answer has no access_token".into()));
        }
        Ok(answer)
    }
}

/// A token answer as JSON, or as a form (`access_token=…&token_type=bearer`); numbers in a
/// form (`expires_in`) become JSON numbers.
fn parse_answer(body: &[u8], is_form: bool) -> Option<Map<String, Value>> {
    if !is_form {
        if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(body) {
            return Some(map);
        }
    }
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains('=') || text.trim_start().starts_with('{') {
        return None;
    }
    Some(
        url::form_urlencoded::parse(text.trim().as_bytes())
            .map(|(k, v)| {
                let value = match v.parse::<u64>() {
                    Ok(n) if k.ends_with("expires_in") => Value::from(n),
                    _ => Value::from(v.into_owned()),
                };
                (k.into_owned(), value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_come_as_json_or_as_a_form() {
        let json = parse_answer(br#"{"access_token":"a","expires_in":60}"#, false).unwrap();
        assert_eq!(json["access_token"], "a");
        let form = parse_answer(
            b"access_token=gho_x&scope=repo&token_type=bearer&expires_in=28800",
            true,
        )
        .unwrap();
        assert_eq!(form["access_token"], "gho_x");
        assert_eq!(form["expires_in"], 28800);
        // GitHub answers a form even to a client that did not say it takes one.
        let unlabelled = parse_answer(b"error=bad_verification_code", false).unwrap();
        assert_eq!(unlabelled["error"], "bad_verification_code");
        assert!(parse_answer(b"<html>oops</html>", false).is_none());
        assert!(parse_answer(b"{broken", false).is_none());
    }
}
