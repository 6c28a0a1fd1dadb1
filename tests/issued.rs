//! Routes whose tokens the gateway issues itself, over real sockets: passthrough (the user's
//! key, tried on a probe first, sealed into the tokens and placed for the upstream as the
//! route says) and chained (a downstream OAuth service, here the test IdP). And everything a
//! forged, foreign, stale or revoked token must get: 401, never a 5xx, never the upstream.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::idp::Idp;
use common::oauth::{
    consent_form_value, discover, http, location, query_param, s256, state_cookie, REDIRECT,
    VERIFIER,
};
use common::{serve, Body, Gateway, Upstream};
use http_body_util::{BodyExt, Full};
use reqwest::blocking::Response;
use serde_json::Value;

const KEY_1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const GOOD_KEY: &str = "sk-good-123";

/// A service's key check: 200 for `X-API-Key: sk-good-123`, else 401.
fn probe_server() -> (String, tokio::runtime::Runtime) {
    let (addr, runtime) = serve(0, |req: hyper::Request<hyper::body::Incoming>| async move {
        let good = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) == Some(GOOD_KEY);
        let body: Body = Full::new(Bytes::new()).boxed();
        Ok::<_, Infallible>(
            hyper::Response::builder()
                .status(if good { 200 } else { 401 })
                .body(body)
                .unwrap(),
        )
    });
    (format!("http://{addr}/probe"), runtime)
}

/// A registered client of `route` and the way through its authorize step.
struct Flow<'a> {
    gw: &'a Gateway,
    route: &'a str,
    client_id: String,
}

impl<'a> Flow<'a> {
    fn register(gw: &'a Gateway, route: &'a str) -> Flow<'a> {
        Self::register_named(gw, route, "Test")
    }

    fn register_named(gw: &'a Gateway, route: &'a str, name: &str) -> Flow<'a> {
        let r = http()
            .post(gw.url(&format!("{route}/oauth/register")))
            .json(
                &serde_json::json!({"redirect_uris": [REDIRECT], "client_name": name,
                "token_endpoint_auth_method": "none"}),
            )
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        let client: Value = r.json().unwrap();
        Flow {
            gw,
            route,
            client_id: client["client_id"].as_str().unwrap().to_string(),
        }
    }

    /// The authorize page: its body, the sealed form value and the cookie.
    fn page(&self) -> (String, String, String) {
        let mut url =
            url::Url::parse(&self.gw.url(&format!("{}/oauth/authorize", self.route))).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", &s256(VERIFIER))
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "st");
        let r = http().get(url.as_str()).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let page = r.text().unwrap();
        (page.clone(), consent_form_value(&page), cookie)
    }

    /// Posts the key form; the answer (302 with a code, or the page again).
    fn post_key(&self, consent: &str, cookie: &str, key: &str) -> Response {
        http()
            .post(self.gw.url(&format!("{}/oauth/authorize", self.route)))
            .header("Cookie", cookie)
            .form(&[("consent", consent), ("decision", "approve"), ("key", key)])
            .send()
            .unwrap()
    }

    fn token(&self, form: &[(&str, &str)]) -> Response {
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        http()
            .post(self.gw.url(&format!("{}/oauth/token", self.route)))
            .form(&form)
            .send()
            .unwrap()
    }

    /// The token endpoint's answer to redeeming `code` with `verifier` and `extra` fields.
    fn redeem_with(&self, code: &str, verifier: &str, extra: &[(&str, &str)]) -> Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        form.extend_from_slice(extra);
        self.token(&form)
    }

    /// The tokens for `code`.
    fn redeem(&self, code: &str) -> Value {
        let r = self.redeem_with(code, VERIFIER, &[]);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().unwrap()
    }

    /// Key page, key: the code the client gets back.
    fn code_for_key(&self, key: &str) -> String {
        let (_, consent, cookie) = self.page();
        let r = self.post_key(&consent, &cookie, key);
        assert_eq!(r.status(), 302, "{}", r.text().unwrap_or_default());
        let back = location(&r);
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(query_param(&back, "iss"), Some(self.gw.url(self.route)));
        query_param(&back, "code").unwrap()
    }

    /// Key page, key, code, tokens.
    fn tokens_for_key(&self, key: &str) -> Value {
        self.redeem(&self.code_for_key(key))
    }

    fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Response {
        let mut form = form.to_vec();
        form.push(("client_id", &self.client_id));
        http()
            .post(self.gw.url(&format!("{}/oauth/{endpoint}", self.route)))
            .form(&form)
            .send()
            .unwrap()
    }
}

fn get(gw: &Gateway, path: &str, token: &str) -> Response {
    http().get(gw.url(path)).bearer_auth(token).send().unwrap()
}

fn assert_refused(r: Response) {
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "invalid_token");
}

fn seal_config(current: &str, previous: &[&str]) -> String {
    format!("seal_key: {current}\nseal_keys_previous: {previous:?}\n")
}

/// A gateway with the passthrough routes, the upstream and the probe service behind it.
fn passthrough_gateway() -> (Gateway, Upstream, tokio::runtime::Runtime) {
    let up = Upstream::start();
    let (probe, probe_runtime) = probe_server();
    let gw = Gateway::start_with(&seal_config(KEY_1, &[]), &passthrough_routes(&up, &probe));
    gw.wait_ready();
    (gw, up, probe_runtime)
}

fn passthrough_routes(up: &Upstream, probe: &str) -> String {
    format!(
        r#"  - prefix: /a
    upstream: {up}
    auth: {{ passthrough: {{ prompt: "Service key", help: "Settings > API", header: "X-API-Key: {{key}}", probe: "{probe}" }} }}
  - prefix: /b
    upstream: {up}
    auth: {{ passthrough: {{ prompt: "Key", query: api_key }}, access_ttl: 3s }}
  - prefix: /raw
    upstream: {up}
    auth: {{ passthrough: {{ prompt: "Key", raw: true }} }}
"#,
        up = up.url()
    )
}

#[test]
fn passthrough_seals_the_key_for_its_route_and_the_upstream_gets_it() {
    let up = Upstream::start();
    let (probe, _probe_runtime) = probe_server();
    let gw = Gateway::start_with(&seal_config(KEY_1, &[]), &passthrough_routes(&up, &probe));
    gw.wait_ready();

    // Discovery leads to the gateway as the route's authorization server.
    let prm = discover(&gw, "/a/tools", "/a");
    assert_eq!(
        prm["authorization_servers"],
        serde_json::json!([gw.url("/a")])
    );

    let a = Flow::register(&gw, "/a");
    let (page, consent, cookie) = a.page();
    assert!(page.contains(r#"type="password""#) && page.contains("Service key"));
    assert!(page.contains("Settings &gt; API"), "{page}");
    // A wrong key is refused by the probe and the page says so; the right one goes through.
    let r = a.post_key(&consent, &cookie, "sk-wrong");
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("was refused"));
    let r = a.post_key(&consent, &cookie, "");
    assert_eq!(r.status(), 200);
    let tokens = a.tokens_for_key(GOOD_KEY);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(!access.contains(GOOD_KEY) && tokens["expires_in"] == 3600);

    let r = http()
        .get(gw.url("/a/tools"))
        .bearer_auth(access)
        .header("X-API-Key", "the-client-said-so")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = up.last_seen();
    assert_eq!(seen.headers["x-api-key"], GOOD_KEY);
    assert!(!seen.headers.contains_key("authorization"), "{seen:?}");
    let upstream_calls = up.seen_count();

    // Bound to its route; a changed byte; another kind of sealed value (the refresh token).
    assert_refused(get(&gw, "/b/tools", access));
    let mut forged = access.as_bytes().to_vec();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    assert_refused(get(&gw, "/a/tools", std::str::from_utf8(&forged).unwrap()));
    assert_refused(get(&gw, "/a/tools", refresh));
    assert_refused(get(&gw, "/a/tools", GOOD_KEY));
    assert_eq!(
        up.seen_count(),
        upstream_calls,
        "nothing refused reached the upstream"
    );
    assert!(gw.metric(r#"mcpgate_auth_failures_total{reason="wrong_route",route="/b"}"#) >= 1.0);

    // Refresh: a new access token for the same key; another client cannot use the refresh.
    let other = Flow::register_named(&gw, "/a", "Other");
    let r = other.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    assert_eq!(r.status(), 400);
    let r = a.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    assert_eq!(r.status(), 200);
    let renewed: Value = r.json().unwrap();
    let access2 = renewed["access_token"].as_str().unwrap().to_string();
    assert_eq!(get(&gw, "/a/tools", &access2).status(), 200);

    // Introspection, then revocation of the grant: both its tokens stop working.
    let r: Value = a.post("introspect", &[("token", &access2)]).json().unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(a.post("revoke", &[("token", &access2)]).status(), 200);
    let r: Value = a.post("introspect", &[("token", &access2)]).json().unwrap();
    assert_eq!(r["active"], false);
    assert_refused(get(&gw, "/a/tools", &access2));
    assert_refused(get(&gw, "/a/tools", access));
    let r = a.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]);
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(up.seen_count(), upstream_calls + 1);
}

#[test]
fn a_query_placed_key_expires_and_a_raw_key_is_the_token() {
    let up = Upstream::start();
    let gw = Gateway::start_with(
        &seal_config(KEY_1, &[]),
        &passthrough_routes(&up, "http://127.0.0.1:9/"),
    );
    gw.wait_ready();

    let b = Flow::register(&gw, "/b");
    let tokens = b.tokens_for_key("sk-b");
    let access = tokens["access_token"].as_str().unwrap();
    // Expiry is in whole seconds: a 3 s token is good for at least 2 s, time enough for the
    // first request on a loaded machine (1 s was not, once in a CI run).
    assert_eq!(tokens["expires_in"], 3);
    let r = get(&gw, "/b/tools?x=1&api_key=the-client-said-so", access);
    assert_eq!(r.status(), 200);
    let uri = up.last_seen().uri;
    assert!(uri.contains("api_key=sk-b") && uri.contains("x=1"), "{uri}");
    assert!(!uri.contains("the-client-said-so"), "{uri}");
    std::thread::sleep(std::time::Duration::from_millis(4100));
    assert_refused(get(&gw, "/b/tools", access));
    assert!(gw.metric(r#"mcpgate_auth_failures_total{reason="expired",route="/b"}"#) >= 1.0);

    let raw = Flow::register(&gw, "/raw");
    let tokens = raw.tokens_for_key("sk-raw");
    assert_eq!(tokens["access_token"], "sk-raw");
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(get(&gw, "/raw/tools", "sk-raw").status(), 200);
    assert_eq!(up.last_seen().headers["authorization"], "Bearer sk-raw");
}

#[test]
fn rotating_the_seal_key_keeps_tokens_and_an_unknown_key_is_refused() {
    let up = Upstream::start();
    let (probe, _probe_runtime) = probe_server();
    let routes = passthrough_routes(&up, &probe);
    let gw = Gateway::start_with(&seal_config(KEY_1, &[]), &routes);
    gw.wait_ready();
    let a = Flow::register(&gw, "/a");
    let access = a.tokens_for_key(GOOD_KEY)["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let reload = |seal: String| {
        let before = gw.metric(r#"mcpgate_config_reloads_total{result="ok"}"#);
        gw.write_config(&seal, &routes);
        gw.signal(libc::SIGHUP);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gw.metric(r#"mcpgate_config_reloads_total{result="ok"}"#) <= before {
            assert!(std::time::Instant::now() < deadline, "{}", gw.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    reload(seal_config(KEY_2, &[KEY_1]));
    assert_eq!(
        get(&gw, "/a/tools", &access).status(),
        200,
        "the old key still opens"
    );
    reload(seal_config(KEY_2, &[]));
    assert_refused(get(&gw, "/a/tools", &access));
}

#[test]
fn a_chained_route_signs_in_at_the_service_and_refreshes_there() {
    let service = Idp::start();
    let up = Upstream::start();
    let top = format!(
        "{}refresh_grace: 0s\noauth_services:\n  svc:\n    authorize_url: {iss}/authorize\n    token_url: {iss}/token\n    client_id: gw\n    client_secret: gw-secret\n    client_auth: client_secret_basic\n    scopes: [repo]\n",
        seal_config(KEY_1, &[]),
        iss = service.issuer()
    );
    let routes = format!(
        "  - prefix: /gh\n    upstream: {}\n    auth: {{ chained: svc }}\n",
        up.url()
    );
    let gw = Gateway::start_with(&top, &routes);
    gw.wait_ready();
    service.add_client("gw", "gw-secret", &gw.url("/gh/oauth/callback"));

    let flow = Flow::register(&gw, "/gh");
    let (page, consent, cookie) = flow.page();
    assert!(page.contains("Allow access?") && !page.contains(r#"name="key""#));
    let r = http()
        .post(gw.url("/gh/oauth/authorize"))
        .header("Cookie", cookie)
        .form(&[("consent", consent.as_str()), ("decision", "approve")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    let browser = state_cookie(&r);
    let to_service = location(&r);
    assert!(to_service.starts_with(&service.issuer()), "{to_service}");
    assert_eq!(query_param(&to_service, "client_id").as_deref(), Some("gw"));
    assert_eq!(query_param(&to_service, "scope").as_deref(), Some("repo"));
    let callback = location(&http().get(&to_service).send().unwrap());
    let r = http()
        .get(&callback)
        .header("Cookie", browser)
        .send()
        .unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let tokens = flow.redeem(&query_param(&back, "code").unwrap());
    let access = tokens["access_token"].as_str().unwrap();

    assert_eq!(get(&gw, "/gh/tools", access).status(), 200);
    let upstream_got = up.last_seen().headers["authorization"].clone();
    assert!(upstream_got.starts_with("Bearer ") && !upstream_got.contains(access));
    assert!(up.last_seen().uri.starts_with("/tools"));
    let claims = jwt_claims(&upstream_got[7..]);
    assert_eq!(claims["iss"], service.issuer(), "the service's own token");

    // The service rotates refresh tokens: each refresh seals the new one.
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let asked = service.token_requests();
        let r = flow.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
        assert_eq!(r.status(), 200);
        assert_eq!(
            service.token_requests(),
            asked + 1,
            "refreshed at the service"
        );
        let renewed: Value = r.json().unwrap();
        let access = renewed["access_token"].as_str().unwrap();
        assert_eq!(get(&gw, "/gh/tools", access).status(), 200);
        let got = up.last_seen().headers["authorization"].clone();
        assert_eq!(jwt_claims(&got[7..])["iss"], service.issuer());
        refresh = renewed["refresh_token"].as_str().unwrap().to_string();
    }
    // A spent refresh token used again (no grace here) is `invalid_grant`, and ends the
    // grant: the latest tokens stop working too (OAuth 2.1 §4.3.1 reuse detection).
    let spent = tokens["refresh_token"].as_str().unwrap();
    let asked = service.token_requests();
    let r = flow.token(&[("grant_type", "refresh_token"), ("refresh_token", spent)]);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
    assert_eq!(service.token_requests(), asked, "the service was not asked");
    let r = flow.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]);
    assert_eq!(r.status(), 400, "the grant ended with the replay");
}

fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn only_the_client_a_token_was_issued_to_may_revoke_or_introspect_it() {
    let (gw, _up, _probe) = passthrough_gateway();
    let alice = Flow::register_named(&gw, "/a", "Alice's client");
    let mallory = Flow::register_named(&gw, "/a", "Mallory's client");
    let tokens = alice.tokens_for_key(GOOD_KEY);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    for token in [access, refresh] {
        let r: Value = mallory
            .post("introspect", &[("token", token)])
            .json()
            .unwrap();
        assert_eq!(
            r,
            serde_json::json!({"active": false}),
            "another client's token is unknown to it"
        );
        // RFC 7009 §2.2: 200 whatever the token, but nothing is revoked.
        assert_eq!(mallory.post("revoke", &[("token", token)]).status(), 200);
    }
    assert_eq!(
        get(&gw, "/a/tools", access).status(),
        200,
        "the grant lives on"
    );
    let r: Value = alice
        .post("introspect", &[("token", access)])
        .json()
        .unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(alice.post("revoke", &[("token", access)]).status(), 200);
    assert_refused(get(&gw, "/a/tools", access));
}

#[test]
fn a_code_used_twice_ends_the_grant_its_first_use_started() {
    let (gw, _up, _probe) = passthrough_gateway();
    let a = Flow::register(&gw, "/a");
    let code = a.code_for_key(GOOD_KEY);
    let tokens = a.redeem(&code);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(get(&gw, "/a/tools", access).status(), 200);

    assert_eq!(a.redeem_with(&code, VERIFIER, &[]).status(), 400);
    assert_refused(get(&gw, "/a/tools", access));
    let r = a.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ]);
    assert_eq!(r.status(), 400, "the grant's refresh token ended with it");
}

#[test]
fn token_requests_must_be_for_this_route_with_a_proper_pkce_verifier() {
    let (gw, _up, _probe) = passthrough_gateway();
    let a = Flow::register(&gw, "/a");
    let code = a.code_for_key(GOOD_KEY);
    let redeem = |extra: &[(&str, &str)], verifier: &str| {
        let r = a.redeem_with(&code, verifier, extra);
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    let (status, body) = redeem(&[("resource", &gw.url("/b"))], VERIFIER);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // A one-character verifier whose S256 would never match anyway is refused by its shape.
    let (status, body) = redeem(&[], "x");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = redeem(&[("resource", &format!("{}/", gw.url("/a")))], VERIFIER);
    assert_eq!(status, 200);

    // A challenge that is not an S256 value is refused at authorize.
    let mut url = url::Url::parse(&gw.url("/a/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &"a".repeat(64))
        .append_pair("code_challenge_method", "S256");
    let back = location(&http().get(url.as_str()).send().unwrap());
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("invalid_request")
    );

    // A redirect URI with a line break cannot be registered.
    let r = http()
        .post(gw.url("/a/oauth/register"))
        .json(&serde_json::json!({"redirect_uris": ["http://127.0.0.1:9/cb\r\nSet-Cookie: x=1"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
}
