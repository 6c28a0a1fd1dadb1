//! Broker mode end to end over real sockets: discovery, stateless registration, consent,
//! the gateway's own trip to a real IdP (the test IdP, with PKCE and client secret), its
//! one-time code, the token and refresh grants, and the attacks the flow must refuse.

mod common;

use common::idp::Idp;
use common::oauth::{
    consent_form_value, discover, http, location, query_param, s256, state_cookie, REDIRECT,
    VERIFIER,
};
use common::{Gateway, Upstream};
use reqwest::blocking::Response;
use serde_json::{json, Value};

const API: &str = "https://api.test";
struct Setup {
    idp: Idp,
    up: Upstream,
    gw: Gateway,
}

fn setup() -> Setup {
    setup_with("")
}

fn setup_with(auth_extra: &str) -> Setup {
    setup_full("", &format!("oauth: broker{auth_extra}"))
}

/// `top`: more top-level YAML; `auth`: the mode and more keys of the route's `auth` mapping.
fn setup_full(top: &str, auth: &str) -> Setup {
    let idp = Idp::start();
    let up = Upstream::start();
    let providers = format!(
        "{top}seal_key: {}\nproviders:\n  idp:\n    issuer: {}\n    client_id: mcpgate\n    client_secret: gw-secret\n    audience: {API}\n",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        idp.issuer()
    );
    let route = format!(
        "  - prefix: /mcp\n    upstream: {}\n    auth: {{ provider: idp, scopes: [mcp:tools], {auth} }}\n",
        up.url()
    );
    let gw = Gateway::start_with(&providers, &route);
    gw.wait_ready();
    idp.add_client("mcpgate", "gw-secret", &gw.url("/mcp/oauth/callback"));
    Setup { idp, up, gw }
}

impl Setup {
    fn register(&self, body: Value) -> Value {
        let r = http()
            .post(self.gw.url("/mcp/oauth/register"))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().unwrap()
    }

    /// A public client registered with `REDIRECT`; its id.
    fn register_public(&self) -> String {
        let body = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
        self.register(body)["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Consent, the trip to the IdP and back to the gateway's callback in the same browser:
    /// the callback URL the IdP sent the browser to, and where the gateway then sends it.
    fn through_the_idp(&self, client_id: &str) -> (String, String) {
        let (consent, cookie) = self.consent(client_id);
        let r = self.approve(&consent, &cookie);
        let browser = state_cookie(&r);
        let callback = location(&http().get(location(&r)).send().unwrap());
        let r = http()
            .get(&callback)
            .header("Cookie", &browser)
            .send()
            .unwrap();
        (callback, location(&r))
    }

    fn authorize_url(&self, client_id: &str, redirect: &str) -> String {
        let mut url = url::Url::parse(&self.gw.url("/mcp/oauth/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("code_challenge", &s256(VERIFIER))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "client-state")
            .append_pair("scope", "mcp:tools");
        url.to_string()
    }

    /// The consent page: its sealed form value and the cookie that goes with it.
    fn consent(&self, client_id: &str) -> (String, String) {
        let r = http()
            .get(self.authorize_url(client_id, REDIRECT))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap().to_string();
        let page = r.text().unwrap();
        assert!(
            page.contains("Allow access?") && page.contains("mcp:tools"),
            "{page}"
        );
        let consent = consent_form_value(&page);
        (consent, cookie)
    }

    /// The consent page's form posted with "Allow".
    fn approve(&self, consent: &str, cookie: &str) -> Response {
        http()
            .post(self.gw.url("/mcp/oauth/authorize"))
            .header("Cookie", cookie)
            .form(&[("consent", consent), ("decision", "approve")])
            .send()
            .unwrap()
    }

    /// Consent, the IdP and the callback: the code the client receives.
    fn code(&self, client_id: &str) -> String {
        let (consent, cookie) = self.consent(client_id);
        let r = self.approve(&consent, &cookie);
        assert_eq!(r.status(), 302);
        let browser = state_cookie(&r);
        let to_idp = location(&r);
        assert!(to_idp.starts_with(&self.idp.issuer()), "{to_idp}");
        assert_eq!(
            query_param(&to_idp, "client_id").as_deref(),
            Some("mcpgate")
        );
        assert_eq!(query_param(&to_idp, "audience").as_deref(), Some(API));
        assert_eq!(
            query_param(&to_idp, "code_challenge_method").as_deref(),
            Some("S256")
        );
        let r = http().get(&to_idp).send().unwrap();
        let callback = location(&r);
        assert!(
            callback.starts_with(&self.gw.url("/mcp/oauth/callback")),
            "{callback}"
        );
        // Another browser (no state cookie) cannot finish this sign-in.
        let r = http().get(&callback).send().unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().unwrap().contains("not started in this browser"));
        let r = http()
            .get(&callback)
            .header("Cookie", &browser)
            .send()
            .unwrap();
        assert_eq!(r.status(), 302);
        let back = location(&r);
        // Nor can the same callback be played twice.
        let again = http()
            .get(&callback)
            .header("Cookie", &browser)
            .send()
            .unwrap();
        assert_eq!(again.status(), 400);
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(query_param(&back, "state").as_deref(), Some("client-state"));
        assert_eq!(query_param(&back, "iss"), Some(self.gw.url("/mcp")));
        query_param(&back, "code").expect("a code")
    }

    fn token(&self, form: &[(&str, &str)]) -> Response {
        http()
            .post(self.gw.url("/mcp/oauth/token"))
            .form(form)
            .send()
            .unwrap()
    }
}

#[test]
fn a_client_registers_consents_gets_tokens_and_refreshes() {
    let s = setup();
    let gw = &s.gw;
    // Discovery: the 401 points at the resource metadata, which points at the gateway.
    let prm = discover(gw, "/mcp", "/mcp");
    assert_eq!(prm["authorization_servers"], json!([gw.url("/mcp")]));
    for path in [
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration/mcp",
        "/mcp/.well-known/openid-configuration",
    ] {
        let meta: Value = http().get(gw.url(path)).send().unwrap().json().unwrap();
        assert_eq!(meta["issuer"], gw.url("/mcp"), "{path}");
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(meta["registration_endpoint"], gw.url("/mcp/oauth/register"));
        // What the IdP's own metadata says about itself is carried over; endpoints the
        // gateway does not proxy are not.
        assert_eq!(
            meta["scopes_supported"],
            json!(["mcp:tools", "openid", "email", "offline_access"])
        );
        assert_eq!(
            meta["service_documentation"],
            format!("{}/docs", s.idp.issuer())
        );
        assert!(meta.get("userinfo_endpoint").is_none());
        assert_eq!(
            meta["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
    }

    let registration = json!({"redirect_uris": [REDIRECT], "client_name": "Test client",
        "token_endpoint_auth_method": "none", "scope": "anything at all"});
    let client = s.register(registration.clone());
    assert_eq!(client["redirect_uris"], json!([REDIRECT]));
    assert_eq!(client["scope"], "anything at all");
    assert!(client.get("client_secret").is_none());
    let client_id = client["client_id"].as_str().unwrap().to_string();
    assert_eq!(
        s.register(registration)["client_id"],
        client_id,
        "registrations alike answer alike"
    );

    let code = s.code(&client_id);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let r = s.token(&grant);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens: Value = r.json().unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert!(tokens.get("id_token").is_none());
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert!(
        !refresh.starts_with("rt-"),
        "the IdP's refresh token is sealed"
    );

    // The token works on the route; the upstream never sees it.
    let r = http()
        .get(gw.url("/mcp/tools"))
        .bearer_auth(&access)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!s.up.last_seen().headers.contains_key("authorization"));

    // One use only.
    let r = s.token(&grant);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");

    // Refresh through the gateway, with the IdP rotating its refresh token.
    let r = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client_id.as_str()),
    ]);
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().unwrap();
    let form = s.idp.last_token_form();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(field("grant_type").as_deref(), Some("refresh_token"));
    assert!(
        field("refresh_token").unwrap().starts_with("rt-"),
        "the IdP got its own token"
    );
    let auth = s.idp.last_client_auth().unwrap();
    assert_eq!((auth.1.as_str(), auth.2.as_str()), ("mcpgate", "gw-secret"));
    assert_ne!(
        renewed["refresh_token"], tokens["refresh_token"],
        "rotated and sealed again"
    );
    let access2 = renewed["access_token"].as_str().unwrap();
    let r = http()
        .get(gw.url("/mcp"))
        .bearer_auth(access2)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same refresh retried within the grace window gets the same answer (a client
    // that refreshed from two places at once keeps its grant); the IdP is not asked again.
    let asked = s.idp.token_requests();
    let r = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client_id.as_str()),
    ]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), renewed);
    assert_eq!(s.idp.token_requests(), asked);
}

#[test]
fn the_flow_refuses_what_an_attacker_would_try() {
    let s = setup();
    let gw = &s.gw;
    let client_id = s.register(
        json!({"redirect_uris": [REDIRECT], "client_name": "Test client",
        "token_endpoint_auth_method": "none"}),
    )["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = s.register(json!({"redirect_uris": ["https://other.example/cb"],
        "token_endpoint_auth_method": "client_secret_post"}));

    // An unregistered redirect URI, an unknown client: an error page, never a redirect.
    for url in [
        s.authorize_url(&client_id, "https://evil.example/cb"),
        s.authorize_url("not-a-client", REDIRECT),
    ] {
        let r = http().get(url).send().unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
    // Registration refuses a plain-http redirect off loopback.
    let r = http()
        .post(gw.url("/mcp/oauth/register"))
        .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    // A consent POST without its cookie, or with a forged form.
    let (consent, cookie) = s.consent(&client_id);
    let post = |cookie: Option<&str>, consent: &str| {
        let mut req = http().post(gw.url("/mcp/oauth/authorize"));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.form(&[("consent", consent), ("decision", "approve")])
            .send()
            .unwrap()
    };
    assert_eq!(post(None, &consent).status(), 400);
    assert_eq!(post(Some("mcpgate-consent=guess"), &consent).status(), 400);
    assert_eq!(post(Some(&cookie), "forged").status(), 400);
    // Deny goes back to the client with access_denied.
    let r = http()
        .post(gw.url("/mcp/oauth/authorize"))
        .header("Cookie", &cookie)
        .form(&[("consent", consent.as_str()), ("decision", "deny")])
        .send()
        .unwrap();
    assert_eq!(
        query_param(&location(&r), "error").as_deref(),
        Some("access_denied")
    );

    // A forged state at the callback.
    let r = http()
        .get(gw.url("/mcp/oauth/callback?code=x&state=forged"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());

    let code = s.code(&client_id);
    let mut tampered = code.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_id = other["client_id"].as_str().unwrap();
    let other_secret = other["client_secret"].as_str().unwrap();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "a changed byte",
            vec![
                ("code", &tampered),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ],
        ),
        (
            "a wrong verifier",
            vec![
                ("code", &code),
                (
                    "code_verifier",
                    "wrong-verifier-wrong-verifier-wrong-verifier-00",
                ),
                ("client_id", &client_id),
            ],
        ),
        (
            "another client",
            vec![
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("client_id", other_id),
                ("client_secret", other_secret),
            ],
        ),
    ];
    for (what, mut form) in cases {
        form.push(("grant_type", "authorization_code"));
        form.push(("redirect_uri", REDIRECT));
        let r = s.token(&form);
        assert_eq!(r.status(), 400, "{what}");
        assert_eq!(
            r.json::<Value>().unwrap()["error"],
            "invalid_grant",
            "{what}"
        );
    }
    // A confidential client with a wrong secret.
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", other_id),
        ("client_secret", "wrong"),
    ]);
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_client");
    // The untouched code still works after all that (none of the failures spent it).
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ]);
    assert_eq!(r.status(), 200);
    // A body over 16 KiB.
    let big = "x".repeat(17 * 1024);
    let r = s.token(&[("grant_type", big.as_str())]);
    assert_eq!(r.status(), 413);
    assert_eq!(s.up.seen_count(), 0);
}

#[test]
fn consent_is_remembered_per_client_and_skipped_for_trusted_redirects() {
    let s = setup_with(", consent: { remember: 1h }");
    let registration = json!({"redirect_uris": [REDIRECT], "client_name": "Test client",
        "token_endpoint_auth_method": "none"});
    let client_id = s.register(registration)["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (consent, cookie) = s.consent(&client_id);
    let r = s.approve(&consent, &cookie);
    assert_eq!(r.status(), 302);
    let remembered = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(remembered.starts_with("mcpgate-approved=") && remembered.contains("HttpOnly"));
    let remembered = remembered.split(';').next().unwrap().to_string();
    // The same browser and client: straight on to the IdP.
    let r = http()
        .get(s.authorize_url(&client_id, REDIRECT))
        .header("Cookie", &remembered)
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(&s.idp.issuer()));
    // Another client is asked, even with that cookie.
    let other = s.register(json!({"redirect_uris": [REDIRECT], "client_name": "Other",
        "token_endpoint_auth_method": "none"}))["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http()
        .get(s.authorize_url(&other, REDIRECT))
        .header("Cookie", &remembered)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "a consent page");

    let trusted = setup_with(&format!(
        ", consent: {{ trusted_redirect_uris: [\"{REDIRECT}\"] }}"
    ));
    let id = trusted
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        ["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http()
        .get(trusted.authorize_url(&id, REDIRECT))
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(&trusted.idp.issuer()));
}

/// A client ID metadata document served over https on loopback (behind a TLS gateway, with a
/// self-signed certificate for `localhost`): its URL, the CA file, and what serves it.
fn document_server() -> (String, std::path::PathBuf, Vec<Box<dyn std::any::Any>>) {
    use std::sync::{Arc, OnceLock};
    let url: Arc<OnceLock<String>> = Arc::default();
    let doc_url = url.clone();
    let (addr, runtime) = common::serve(0, move |_req| {
        let doc = json!({"client_id": doc_url.get().unwrap(), "client_name": "Document client",
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
        async move {
            use http_body_util::BodyExt;
            let body = http_body_util::Full::new(bytes::Bytes::from(doc.to_string())).boxed();
            Ok(hyper::Response::builder()
                .header("content-type", "application/json")
                .body(body)
                .unwrap())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let ca = dir.path().join("cert.pem");
    let tls = Gateway::start_in(
        dir,
        "tls: { cert: cert.pem, key: key.pem }",
        &common::route("/clients", &format!("http://{addr}"), "strip_prefix: false"),
    );
    url.set(format!("https://localhost:{}/clients/app.json", tls.port))
        .unwrap();
    (
        url.get().unwrap().clone(),
        ca,
        vec![Box::new(tls), Box::new(runtime)],
    )
}

#[test]
fn a_client_id_metadata_document_is_a_client_and_private_addresses_are_refused() {
    let (doc_url, ca, _servers) = document_server();
    let top = format!(
        "client_metadata_documents: {{ allow_private_addresses: true, ca_file: {} }}\n",
        ca.display()
    );
    let s = setup_full(&top, "oauth: broker");
    let meta: Value = http()
        .get(s.gw.url("/.well-known/oauth-authorization-server/mcp"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    // No registration: the URL is the client.
    let r = http()
        .get(s.authorize_url(&doc_url, REDIRECT))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Document client"));
    let code = s.code(&doc_url);
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", doc_url.as_str()),
    ]);
    assert_eq!(r.status(), 200);
    // Its redirect URIs bind it.
    let r = http()
        .get(s.authorize_url(&doc_url, "https://evil.example/cb"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());

    // By default a document on a private address (here: loopback) is never fetched.
    let strict = setup_full(
        &format!(
            "client_metadata_documents: {{ ca_file: {} }}\n",
            ca.display()
        ),
        "oauth: broker",
    );
    let r = http()
        .get(strict.authorize_url(&doc_url, REDIRECT))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    strict.gw.log_with("non-public address");
}

#[test]
fn redirect_mode_sends_users_straight_to_the_idp_and_adds_the_secret_at_token() {
    let s = setup_full("", "oauth: redirect");
    // The IdP lists the client's own callback: the gateway is not in the user's path back.
    s.idp.add_client("mcpgate", "gw-secret", REDIRECT);
    let client = s.register(json!({"redirect_uris": [REDIRECT], "client_name": "Test client"}));
    assert_eq!(client["client_id"], "mcpgate");
    assert!(
        client.get("client_secret").is_none(),
        "the secret stays with the gateway"
    );

    let r = http()
        .get(s.authorize_url("mcpgate", REDIRECT))
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    let to_idp = location(&r);
    assert!(to_idp.starts_with(&s.idp.issuer()), "{to_idp}");
    assert_eq!(query_param(&to_idp, "audience").as_deref(), Some(API));
    assert_eq!(query_param(&to_idp, "code_challenge"), Some(s256(VERIFIER)));
    let back = location(&http().get(&to_idp).send().unwrap());
    assert!(back.starts_with(REDIRECT), "{back}");
    let code = query_param(&back, "code").unwrap();

    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "mcpgate"),
    ]);
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().unwrap();
    let auth = s.idp.last_client_auth().unwrap();
    assert_eq!((auth.1.as_str(), auth.2.as_str()), ("mcpgate", "gw-secret"));
    let access = tokens["access_token"].as_str().unwrap();
    let r = http()
        .get(s.gw.url("/mcp"))
        .bearer_auth(access)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ]);
    assert_eq!(r.status(), 200);
    // The IdP's refusal comes back as its OAuth error.
    let r = s.token(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");

    // Another client id, or no PKCE: refused before the IdP.
    let r = http()
        .get(s.authorize_url("someone-else", REDIRECT))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let no_pkce = s
        .authorize_url("mcpgate", REDIRECT)
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    assert_eq!(http().get(no_pkce).send().unwrap().status(), 400);
}

#[test]
fn a_callback_without_iss_from_an_idp_that_promises_it_is_a_mix_up() {
    let s = setup();
    let client_id = s.register_public();
    s.idp.set_omit_iss(true);
    let (callback, back) = s.through_the_idp(&client_id);
    assert!(query_param(&callback, "iss").is_none(), "{callback}");
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&back, "code").is_none(), "{back}");
}

#[test]
fn an_idp_refusal_is_logged_and_the_client_gets_an_error_it_can_act_on() {
    let s = setup();
    let client_id = s.register_public();
    // (error from the IdP, what the client gets): the gateway's own request refused is the
    // operator's to fix; a scope the user may not have is the client's.
    for (idp_error, client_error) in [
        ("invalid_target", "server_error"),
        ("invalid_scope", "invalid_scope"),
    ] {
        s.idp.set_authorize_error(Some(idp_error.into()));
        s.idp
            .set_authorize_error_description(Some(format!("no {idp_error} here\n\u{7}")));
        let (_, back) = s.through_the_idp(&client_id);
        assert_eq!(query_param(&back, "error").as_deref(), Some(client_error));
        assert_eq!(
            query_param(&back, "error_description").as_deref(),
            Some(
                format!(
                    "the identity provider refused the sign-in ({idp_error}: no {idp_error} here)"
                )
                .as_str()
            )
        );
        // The operator reads what the IdP said, without the control characters.
        s.gw.log_with(&format!(
            "the identity provider refused the sign-in: {idp_error}: no {idp_error} here"
        ));
    }
}
