//! The gateway as an OAuth client over HTTP: the one way it calls an identity provider's
//! endpoints (metadata, keys, token, introspection, revocation) and a downstream service's
//! token endpoint. Redirects are not followed (these endpoints must answer themselves),
//! answers are capped, and what goes wrong is said without the request's secrets.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{ClientAuth, Secret, TlsConfig};

/// Answers larger than this are refused.
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug)]
pub enum IdpError {
    /// The endpoint answered with an OAuth error (`invalid_grant`, …).
    Refused(String),
    /// No usable answer (network, status, body).
    Failed(String),
}

impl std::fmt::Display for IdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdpError::Refused(code) => write!(f, "refused: {code}"),
            IdpError::Failed(message) => f.write_str(message),
        }
    }
}

/// An HTTP client for one IdP or service: its timeout, the CAs it trusts besides the webpki
/// roots, and the certificate it authenticates with (mTLS).
pub fn http_client(
    timeout: Duration,
    ca_file: Option<&Path>,
    client_cert: Option<&TlsConfig>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file: {e}"))?;
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("ca_file: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(tls) = client_cert {
        let mut pem = std::fs::read(&tls.cert).map_err(|e| format!("client_cert.cert: {e}"))?;
        pem.extend(std::fs::read(&tls.key).map_err(|e| format!("client_cert.key: {e}"))?);
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|e| format!("client_cert: {e}"))?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| e.to_string())
}

/// GET a JSON document: status 200, capped. Returns the body and its `Cache-Control:
/// max-age`.
pub async fn get_document(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    let response = client
        .get(url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    if response.status() != 200 {
        return Err(format!("{url}: status {}", response.status()));
    }
    let max_age = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let body = read_capped(response)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((body, max_age))
}

/// The gateway's client credentials at a token endpoint, and how it presents them.
pub struct TokenClient {
    http: reqwest::Client,
    client_id: String,
    secret: Option<Secret>,
    auth: ClientAuth,
}

impl TokenClient {
    pub fn new(
        http: reqwest::Client,
        client_id: &str,
        secret: Option<Secret>,
        auth: ClientAuth,
    ) -> TokenClient {
        TokenClient {
            http,
            client_id: client_id.to_string(),
            secret,
            auth,
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `form` to `url` with the client's credentials. The answer is a JSON object, or
    /// a form (GitHub's token endpoint answers one unless asked for JSON); an OAuth error in
    /// it is `Refused`, with a 4xx or even a 200 (GitHub's way); a revocation's
    /// empty 200 is an empty object. Errors never quote the answer's body (it may quote the
    /// request).
    pub async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Map<String, Value>, IdpError> {
        let mut fields = form.to_vec();
        let mut request = self.http.post(url).header("Accept", "application/json");
        let secret = self.secret.as_ref().map(|s| s.0.as_str());
        match self.auth {
            ClientAuth::Basic => {
                request = request.basic_auth(form_encode(&self.client_id), secret.map(form_encode))
            }
            ClientAuth::Post => {
                fields.push(("client_id", &self.client_id));
                if let Some(s) = secret {
                    fields.push(("client_secret", s));
                }
            }
            ClientAuth::TlsClientAuth => fields.push(("client_id", &self.client_id)),
        }
        let failed = |e: String| IdpError::Failed(format!("{url}: {e}"));
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
        if body.is_empty() && status.is_success() {
            return Ok(Map::new());
        }
        let Some(answer) = parse_answer(&body, is_form) else {
            return Err(failed(format!(
                "status {status}, the answer is neither a JSON object nor a form"
            )));
        };
        match answer.get("error").and_then(Value::as_str) {
            Some(code) if !status.is_server_error() => {
                return Err(IdpError::Refused(code.to_string()))
            }
            _ => {}
        }
        if !status.is_success() {
            return Err(failed(format!("status {status}")));
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

/// A response body of at most [`MAX_ANSWER`] bytes.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("the answer is over {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's message plus its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// RFC 6749 §2.3.1: client credentials in HTTP Basic are form-encoded first.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|d| {
        let v = d.trim().strip_prefix("max-age=")?;
        v.trim().parse().ok().map(Duration::from_secs)
    })
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

    #[test]
    fn max_age_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("no-store"), None);
    }
}
