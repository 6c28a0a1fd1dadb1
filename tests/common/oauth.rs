//! What a test plays as an OAuth client and its browser: a client that does not follow
//! redirects (each hop is checked), PKCE, and reading redirects and forms.

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use super::Gateway;

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "a-client-verifier-that-is-long-enough-for-pkce-0123456789";

pub fn http() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The PKCE S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The sealed `consent` value of the gateway's consent or key page.
pub fn consent_form_value(page: &str) -> String {
    page.split(r#"name="consent" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a consent form")
        .to_string()
}

/// The `name=value` of the sign-in state cookie a response sets (it binds the browser).
pub fn state_cookie(r: &Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("mcpgate-state-"))
        .and_then(|c| c.split(';').next())
        .expect("a state cookie")
        .to_string()
}

/// Discovery as a client starts it: `path` without a token is 401, and the route's protected
/// resource metadata (for `prefix`) is returned.
pub fn discover(gw: &Gateway, path: &str, prefix: &str) -> Value {
    let r = http().get(gw.url(path)).send().unwrap();
    assert_eq!(r.status(), 401);
    http()
        .get(gw.url(&format!("/.well-known/oauth-protected-resource{prefix}")))
        .send()
        .unwrap()
        .json()
        .unwrap()
}
