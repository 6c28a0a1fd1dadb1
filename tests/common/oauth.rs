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

/// Registers a public client on `route`; its `client_id`.
pub fn register(gw: &Gateway, route: &str) -> String {
    let r = http()
        .post(gw.url(&format!("{route}/oauth/register")))
        .json(
            &serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A passthrough route's sign-in: its key page from `page`, the key posted to `post` (the
/// same gateway, or another replica). The code the client gets.
pub fn key_code(page: &Gateway, post: &Gateway, route: &str, client_id: &str, key: &str) -> String {
    let url = authorize_url(page, route, client_id, REDIRECT, None);
    let r = http().get(url).send().unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let consent = consent_form_value(&r.text().unwrap());
    let r = http()
        .post(post.url(&format!("{route}/oauth/authorize")))
        .header("Cookie", cookie)
        .form(&[
            ("consent", consent.as_str()),
            ("decision", "approve"),
            ("key", key),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    query_param(&location(&r), "code").expect("a code")
}

/// `route`'s authorize URL for a public client with PKCE (`VERIFIER`).
pub fn authorize_url(
    gw: &Gateway,
    route: &str,
    client_id: &str,
    redirect: &str,
    scope: Option<&str>,
) -> String {
    let mut url = url::Url::parse(&gw.url(&format!("{route}/oauth/authorize"))).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("code_challenge", &s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    if let Some(scope) = scope {
        url.query_pairs_mut().append_pair("scope", scope);
    }
    url.to_string()
}

/// The token endpoint of `route` on `gw`, for a public client.
pub fn token(gw: &Gateway, route: &str, client_id: &str, form: &[(&str, &str)]) -> Response {
    let mut form = form.to_vec();
    form.push(("client_id", client_id));
    http()
        .post(gw.url(&format!("{route}/oauth/token")))
        .form(&form)
        .send()
        .unwrap()
}

/// Redeems `code` (with the verifier `key_code` used).
pub fn redeem(gw: &Gateway, route: &str, client_id: &str, code: &str) -> Response {
    token(
        gw,
        route,
        client_id,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
}
