//! Every endpoint of the authorization server, as a function from a request value to a
//! response value: no socket, no IdP (a broker route's sign-in is followed up to the
//! redirect to the IdP; the end-to-end tests take it further with real ones).

use std::path::Path;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Method, Request};
use serde_json::{json, Value};

use super::pkce::s256;
use super::reply::Reply;
use super::server::AuthServer;
use super::Endpoint;
use crate::config::Config;
use crate::snapshot::Snapshot;
use crate::upstream::spawn::Supervisor;

const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// A snapshot with a passthrough route (`/keyed`) and a broker route (`/mcp`) whose IdP's
/// authorization endpoint is configured (no discovery needed to send a user there).
fn snapshot() -> Snapshot {
    let yaml = r#"
listen: 127.0.0.1:8080
public_url: http://gw.test
seal_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
providers:
  idp:
    issuer: http://idp.test
    jwks_uri: http://idp.test/jwks
    authorization_endpoint: http://idp.test/authorize
    token_endpoint: http://idp.test/token
    audience: https://api.test
    client_id: gw
    client_secret: s
routes:
  - prefix: /keyed
    upstream: http://127.0.0.1:2
    auth: { passthrough: { prompt: "Service key", header: "X-Key: {key}" } }
  - prefix: /mcp
    upstream: http://127.0.0.1:2
    auth: { provider: idp, oauth: broker, scopes: [mcp:tools] }
"#;
    let config = Config::from_yaml(yaml, Path::new("."), &|_| None).unwrap();
    let state = std::sync::Arc::new(crate::state::State::new(&config.state).unwrap());
    Snapshot::build(config, &Supervisor::default(), &state, None).unwrap()
}

fn server<'a>(snapshot: &'a Snapshot, prefix: &str) -> &'a AuthServer {
    let route = snapshot.routes.iter().find(|r| r.spec.prefix == prefix);
    route.and_then(|r| r.oauth.as_ref()).unwrap()
}

fn request(
    method: Method,
    uri: &str,
    headers: &[(http::HeaderName, &str)],
    body: &str,
) -> Request<Bytes> {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.body(Bytes::from(body.to_string())).unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn json_body(r: &Reply) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

fn location(r: &Reply) -> url::Url {
    url::Url::parse(r.headers()[LOCATION].to_str().unwrap()).unwrap()
}

fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `name=value` part of the response's cookie called `name`.
fn cookie(r: &Reply, name: &str) -> String {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string()
}

/// The sealed form value of a consent or key page.
fn consent_value(r: &Reply) -> String {
    let page = std::str::from_utf8(r.body()).unwrap();
    page.split(r#"name="consent" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string()
}

async fn register(server: &AuthServer) -> String {
    let body = json!({"redirect_uris": [REDIRECT], "client_name": "Test",
        "token_endpoint_auth_method": "none"});
    let r = server
        .handle(
            Endpoint::Register,
            &request(Method::POST, "/x", &[], &body.to_string()),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    let client = json_body(&r);
    assert_eq!(client["redirect_uris"], json!([REDIRECT]), "echoed");
    client["client_id"].as_str().unwrap().to_string()
}

fn authorize_uri(client_id: &str, challenge: &str) -> String {
    format!(
        "/keyed/oauth/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "st"),
        ])
    )
}

/// Registration, the key page, the key: the code the client gets.
async fn code(server: &AuthServer, client_id: &str) -> String {
    let uri = authorize_uri(client_id, &s256(VERIFIER));
    let page = server
        .handle(Endpoint::Authorize, &request(Method::GET, &uri, &[], ""))
        .await;
    assert_eq!(page.status(), 200);
    let body = std::str::from_utf8(page.body()).unwrap();
    assert!(body.contains("Service key") && body.contains(r#"type="password""#));
    let csrf = cookie(&page, "mcpgate-consent");
    let post = form(&[
        ("consent", &consent_value(&page)),
        ("decision", "approve"),
        ("key", "sk-1"),
    ]);
    let back = server
        .handle(
            Endpoint::Authorize,
            &request(
                Method::POST,
                "/keyed/oauth/authorize",
                &[(COOKIE, &csrf)],
                &post,
            ),
        )
        .await;
    assert_eq!(back.status(), 302);
    let to = location(&back);
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(param(&to, "state").as_deref(), Some("st"));
    assert_eq!(param(&to, "iss").as_deref(), Some("http://gw.test/keyed"));
    param(&to, "code").unwrap()
}

async fn token(server: &AuthServer, pairs: &[(&str, &str)]) -> Reply {
    server
        .handle(
            Endpoint::Token,
            &request(Method::POST, "/keyed/oauth/token", &[], &form(pairs)),
        )
        .await
}

#[tokio::test]
async fn metadata_preflight_and_wrong_methods() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/keyed");
    let r = server
        .handle(Endpoint::Metadata, &request(Method::GET, "/x", &[], ""))
        .await;
    assert_eq!(r.status(), 200);
    let meta = json_body(&r);
    assert_eq!(meta["issuer"], "http://gw.test/keyed");
    assert_eq!(meta["token_endpoint"], "http://gw.test/keyed/oauth/token");
    let r = server
        .handle(Endpoint::Token, &request(Method::OPTIONS, "/x", &[], ""))
        .await;
    assert_eq!(r.status(), 204);
    let r = server
        .handle(Endpoint::Token, &request(Method::GET, "/x", &[], ""))
        .await;
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn register_refuses_what_it_cannot_honour() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/keyed");
    for (body, code) in [
        ("not json", "invalid_client_metadata"),
        (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (
            r#"{"redirect_uris":["http://evil.example/cb"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["x"]}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata",
        ),
    ] {
        let r = server
            .handle(Endpoint::Register, &request(Method::POST, "/x", &[], body))
            .await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(json_body(&r)["error"], code, "{body}");
    }
    register(server).await;
}

#[tokio::test]
async fn authorize_shows_errors_until_the_client_is_known_then_redirects_them() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/keyed");
    let unknown = authorize_uri("not-a-client", &s256(VERIFIER));
    let r = server
        .handle(
            Endpoint::Authorize,
            &request(Method::GET, &unknown, &[], ""),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get(LOCATION).is_none(), "never redirected");
    let client_id = register(server).await;
    let no_pkce = authorize_uri(&client_id, "too-short");
    let r = server
        .handle(
            Endpoint::Authorize,
            &request(Method::GET, &no_pkce, &[], ""),
        )
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn the_consent_form_needs_its_cookie_and_deny_goes_back() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/keyed");
    let client_id = register(server).await;
    let uri = authorize_uri(&client_id, &s256(VERIFIER));
    let page = server
        .handle(Endpoint::Authorize, &request(Method::GET, &uri, &[], ""))
        .await;
    let consent = consent_value(&page);
    let post = |cookie: &str, decision: &str| {
        let body = form(&[("consent", &consent), ("decision", decision), ("key", "k")]);
        request(
            Method::POST,
            "/keyed/oauth/authorize",
            &[(COOKIE, cookie)],
            &body,
        )
    };
    let r = server
        .handle(
            Endpoint::Authorize,
            &post("mcpgate-consent=guess", "approve"),
        )
        .await;
    assert_eq!(r.status(), 400);
    let csrf = cookie(&page, "mcpgate-consent");
    let r = server
        .handle(Endpoint::Authorize, &post(&csrf, "deny"))
        .await;
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test]
async fn token_refreshes_revokes_and_a_replayed_code_ends_its_grant() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/keyed");
    let client_id = register(server).await;
    let redeem = |code: String| {
        let client_id = client_id.clone();
        async move {
            let pairs = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", client_id.as_str()),
            ];
            token(server, &pairs).await
        }
    };
    let introspect = |token: String| {
        let body = form(&[("token", &token), ("client_id", &client_id)]);
        async move {
            let req = request(Method::POST, "/x", &[], &body);
            server.handle(Endpoint::Introspect, &req).await
        }
    };
    let r = redeem(code(server, &client_id).await).await;
    assert_eq!(r.status(), 200);
    let refresh = json_body(&r)["refresh_token"].as_str().unwrap().to_string();
    let r = token(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let access = json_body(&r)["access_token"].as_str().unwrap().to_string();
    assert_eq!(json_body(&introspect(access.clone()).await)["active"], true);
    let body = form(&[("token", &access), ("client_id", &client_id)]);
    let r = server
        .handle(Endpoint::Revoke, &request(Method::POST, "/x", &[], &body))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json_body(&introspect(access.clone()).await)["active"],
        false
    );

    // A second sign-in; its code replayed ends the grant the code's first use started.
    let code = code(server, &client_id).await;
    let r = redeem(code.clone()).await;
    let access = json_body(&r)["access_token"].as_str().unwrap().to_string();
    assert_eq!(json_body(&introspect(access.clone()).await)["active"], true);
    assert_eq!(redeem(code).await.status(), 400);
    assert_eq!(
        json_body(&introspect(access.clone()).await)["active"],
        false
    );

    let r = server
        .handle(
            Endpoint::Introspect,
            &request(
                Method::POST,
                "/x",
                &[(AUTHORIZATION, "Basic eDp5")],
                "token=x",
            ),
        )
        .await;
    assert_eq!(r.status(), 401, "an unknown client");
}

#[tokio::test]
async fn a_callback_with_a_foreign_state_is_an_error_page() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/mcp");
    let r = server
        .handle(
            Endpoint::Callback,
            &request(
                Method::GET,
                "/mcp/oauth/callback?state=forged&code=c",
                &[],
                "",
            ),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(std::str::from_utf8(r.body())
        .unwrap()
        .contains("invalid or expired state"));
}

#[tokio::test]
async fn a_broker_route_sends_the_approved_user_to_its_idp_as_the_gateway() {
    let snapshot = snapshot();
    let server = server(&snapshot, "/mcp");
    let client_id = register(server).await;
    let uri = authorize_uri(&client_id, &s256(VERIFIER)).replace("/keyed/", "/mcp/");
    let page = server
        .handle(Endpoint::Authorize, &request(Method::GET, &uri, &[], ""))
        .await;
    assert!(std::str::from_utf8(page.body())
        .unwrap()
        .contains("Allow access?"));
    let csrf = cookie(&page, "mcpgate-consent");
    let body = form(&[("consent", &consent_value(&page)), ("decision", "approve")]);
    let r = server
        .handle(
            Endpoint::Authorize,
            &request(
                Method::POST,
                "/mcp/oauth/authorize",
                &[(COOKIE, &csrf)],
                &body,
            ),
        )
        .await;
    assert_eq!(r.status(), 302);
    let to = location(&r);
    assert!(
        to.as_str().starts_with("http://idp.test/authorize?"),
        "{to}"
    );
    assert_eq!(param(&to, "client_id").as_deref(), Some("gw"));
    assert_eq!(param(&to, "audience").as_deref(), Some("https://api.test"));
    assert_eq!(param(&to, "scope").as_deref(), Some("mcp:tools"));
    assert_eq!(
        param(&to, "redirect_uri").as_deref(),
        Some("http://gw.test/mcp/oauth/callback")
    );
    assert!(
        cookie(&r, &server.cookies.state).len() > 20,
        "the browser is bound"
    );
}
