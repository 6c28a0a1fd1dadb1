//! Bearer validation end to end: the real gateway, a real IdP signing real JWTs (RSA, EC,
//! Ed25519) and serving a real JWKS, and a real upstream that records what reached it.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::idp::{Alg, Idp};
use common::{Gateway, Upstream};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const AUD: &str = "https://mcp.test/api";

fn provider(idp: &Idp, extra: &str) -> String {
    let mut s = format!("providers:\n  idp:\n    issuer: {}\n", idp.issuer());
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str("    ");
        s.push_str(line.trim_start());
        s.push('\n');
    }
    s
}

/// A protected route: `auth` is a flow mapping's inside, `extra` more route keys.
fn protected(prefix: &str, upstream: &Upstream, auth: &str, extra: &str) -> String {
    let mut s = format!(
        "  - prefix: {prefix}\n    upstream: {}\n    auth: {{ provider: idp, audience: \"{AUD}\"{}{auth} }}\n",
        upstream.url(),
        if auth.is_empty() { "" } else { ", " }
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str("    ");
        s.push_str(line.trim_start());
        s.push('\n');
    }
    s
}

fn start(idp: &Idp, provider_extra: &str, routes: &str) -> Gateway {
    let gw = Gateway::start_with(&provider(idp, provider_extra), routes);
    gw.wait_ready();
    gw
}

fn get(gw: &Gateway, path: &str, token: Option<&str>) -> Response {
    let mut req = Client::new().get(gw.url(path));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.send().unwrap()
}

fn challenge(r: &Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn tokens_of_every_algorithm_pass_and_the_upstream_never_sees_them() {
    let idp = Idp::start();
    let up = Upstream::start();
    let algs = Alg::ALL;
    for alg in algs {
        idp.public_jwk(alg); // every key is in the JWKS the gateway fetches first
    }
    let gw = start(&idp, "", &protected("/mcp", &up, "", ""));
    for alg in algs {
        let token = idp.sign(alg, &idp.claims(AUD, "alice"));
        let r = get(&gw, "/mcp/tools", Some(&token));
        assert_eq!(r.status(), 200, "{alg:?}: {}", r.text().unwrap());
        let seen = up.last_seen();
        assert!(!seen.headers.contains_key("authorization"), "{alg:?}");
        // Twice: the second answer comes from the verified-token cache.
        assert_eq!(get(&gw, "/mcp/tools", Some(&token)).status(), 200);
    }
    assert_eq!(up.seen_count(), 2 * algs.len());
    gw.log_with(r#""route":"/mcp","sub":"alice","http_method":"GET","status":200"#);
}

#[test]
fn every_bad_token_gets_401_and_never_reaches_the_upstream() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = start(&idp, "", &protected("/mcp", &up, "scopes: [mcp:tools]", ""));
    let good = idp.claims(AUD, "alice");
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let rs = |claims: &Value| idp.sign(Alg::RS256, claims);
    let header = |extra: Value| {
        let mut h = json!({"alg": "RS256", "typ": "JWT", "kid": idp.public_jwk(Alg::RS256)["kid"]});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let valid = rs(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let public_key = idp.public_jwk(Alg::RS256).to_string();

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg":"none"})), b64(&good)),
        ),
        (
            "HS256 keyed with the public key",
            Idp::sign_hs256(
                &header(json!({"alg":"HS256"})),
                &good,
                public_key.as_bytes(),
            ),
        ),
        (
            "unknown kid",
            idp.sign_with_header(Alg::RS256, &header(json!({"kid":"nope"})), &good),
        ),
        (
            "jku header",
            idp.sign_with_header(
                Alg::RS256,
                &header(json!({"jku":"http://127.0.0.1:1/k"})),
                &good,
            ),
        ),
        (
            "embedded jwk",
            idp.sign_with_header(
                Alg::RS256,
                &header(json!({"jwk": idp.public_jwk(Alg::RS256)})),
                &good,
            ),
        ),
        (
            "ES256 header on the RSA key",
            idp.sign_with_header(Alg::ES256, &header(json!({"alg":"ES256"})), &good),
        ),
        ("expired", rs(&with("exp", json!(now() - 3600)))),
        ("nbf in the future", rs(&with("nbf", json!(now() + 3600)))),
        ("wrong iss", rs(&with("iss", json!("http://evil.test")))),
        ("wrong aud", rs(&with("aud", json!("https://other.test")))),
        (
            "aud array without ours",
            rs(&with("aud", json!(["a", "b"]))),
        ),
        ("no exp", rs(&without("exp"))),
        ("no aud", rs(&without("aud"))),
        (
            "changed payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&with("sub", json!("mallory"))),
                parts[2]
            ),
        ),
        ("cut off", valid[..valid.len() - 10].to_string()),
        ("two parts", format!("{}.{}", parts[0], parts[1])),
        ("not base64", format!("{}.@@@@.{}", parts[0], parts[2])),
        ("too large", "a".repeat(9 * 1024)),
        // An ID token is not an access token (RFC 8725 §3.11), whatever its audience.
        ("ID token with at_hash", rs(&with("at_hash", json!("x")))),
        ("Keycloak ID token", rs(&with("typ", json!("ID")))),
        (
            "typ id_token+jwt",
            idp.sign_with_header(Alg::RS256, &header(json!({"typ":"id_token+jwt"})), &good),
        ),
        (
            "a claim twice",
            idp.sign_payload_text(
                Alg::RS256,
                &good.to_string().replacen('{', r#"{"sub":"admin","#, 1),
            ),
        ),
        (
            "a subject with a line break",
            rs(&with("sub", json!("alice\r\nX-Auth-Subject: admin"))),
        ),
    ];
    for (what, token) in &cases {
        let r = get(&gw, "/mcp", Some(token));
        assert_eq!(r.status(), 401, "{what}");
        let c = challenge(&r);
        assert!(c.contains(r#"error="invalid_token""#), "{what}: {c}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"], "invalid_token", "{what}");
    }

    // No token: a challenge that names the metadata and scope, without an error code.
    let r = get(&gw, "/mcp", None);
    assert_eq!(r.status(), 401);
    let c = challenge(&r);
    let metadata = gw.url("/.well-known/oauth-protected-resource/mcp");
    assert!(
        c.contains(&format!(r#"resource_metadata="{metadata}""#)),
        "{c}"
    );
    assert!(
        c.contains(r#"scope="mcp:tools""#) && !c.contains("error="),
        "{c}"
    );

    // A 100 KiB header, and bytes that are not even a header value.
    let huge = format!("Bearer {}", "x".repeat(100 * 1024));
    let r = Client::new()
        .get(gw.url("/mcp"))
        .header("Authorization", huge)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "100 KiB header");
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_token");
    let r = Client::new()
        .get(gw.url("/mcp"))
        .header("Authorization", b"Bearer \xff\xfe".as_slice())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(up.seen_count(), 0, "nothing reached the upstream");
    let reasons = [
        "unsupported_alg",
        "unknown_kid",
        "key_in_header",
        "alg_mismatch",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "missing_claim",
        "bad_signature",
        "malformed",
        "token_too_large",
        "missing_token",
        "wrong_token_type",
        "bad_subject",
    ];
    for reason in reasons {
        let sample = format!(r#"mcpgate_auth_failures_total{{reason="{reason}",route="/mcp"}}"#);
        assert!(gw.metric(&sample) >= 1.0, "{sample}");
    }
    // The reason is logged; no token ever is (read once every refusal above is written:
    // the log's writer thread has caught up with a last request's line).
    gw.log_with("refused (401): expired");
    assert_eq!(
        Client::new()
            .get(gw.url("/mcp/end"))
            .send()
            .unwrap()
            .status(),
        401
    );
    let log = gw.log_with("GET /mcp/end 401");
    assert!(!log.contains(&valid[..40]) && !log.contains(parts[2]));
}

#[test]
fn scopes_allow_lists_and_roles_answer_403_with_what_failed() {
    let idp = Idp::start();
    let up = Upstream::start();
    let routes = protected("/tools", &up, "scopes: [mcp:tools, mcp:read]", "")
        + &protected(
            "/corp",
            &up,
            r#"allow: { emails: ["*@corp.test"], groups: [eng] }"#,
            "",
        )
        + &protected(
            "/admin",
            &up,
            r#"roles: { from_scopes: { "mcp:admin": admin }, from_claim: realm_access.roles, required: [admin] }"#,
            "",
        );
    let gw = start(&idp, "", &routes);
    let token = |extra: Value| {
        let mut c = idp.claims(AUD, "u1");
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.sign(Alg::ES256, &c)
    };

    let r = get(&gw, "/tools", Some(&token(json!({"scope": "mcp:tools"}))));
    assert_eq!(r.status(), 403);
    let c = challenge(&r);
    assert!(
        c.contains(r#"error="insufficient_scope""#) && c.contains(r#"scope="mcp:tools mcp:read""#),
        "{c}"
    );
    assert_eq!(r.json::<Value>().unwrap()["error"], "insufficient_scope");
    let r = get(
        &gw,
        "/tools",
        Some(&token(json!({"scope": "mcp:read mcp:tools x"}))),
    );
    assert_eq!(r.status(), 200);

    let verified = |email: &str, groups: Value| {
        token(json!({"email": email, "email_verified": true, "groups": groups}))
    };
    let r = get(
        &gw,
        "/corp",
        Some(&verified("ann@corp.test", json!(["eng"]))),
    );
    assert_eq!(r.status(), 200);
    // An address the IdP has not verified proves nothing.
    let unverified = token(json!({"email": "ann@corp.test", "groups": ["eng"]}));
    assert_eq!(get(&gw, "/corp", Some(&unverified)).status(), 403);
    let r = get(
        &gw,
        "/corp",
        Some(&verified("ann@evil.test", json!(["eng"]))),
    );
    assert_eq!(r.status(), 403);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "access_denied");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("email"),
        "{body}"
    );
    let r = get(
        &gw,
        "/corp",
        Some(&verified("ann@corp.test", json!(["ops"]))),
    );
    assert!(r.json::<Value>().unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("group"));

    let keycloak = json!({"realm_access": {"roles": ["admin"]}});
    assert_eq!(get(&gw, "/admin", Some(&token(keycloak))).status(), 200);
    assert_eq!(
        get(&gw, "/admin", Some(&token(json!({"scope": "mcp:admin"})))).status(),
        200
    );
    let r = get(&gw, "/admin", Some(&token(json!({"scope": "mcp:tools"}))));
    assert_eq!(r.status(), 403);
    assert!(r.json::<Value>().unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("roles"));
    assert_eq!(
        gw.metric(r#"mcpgate_auth_failures_total{reason="email_not_allowed",route="/corp"}"#),
        2.0
    );
}

#[test]
fn a_rotated_key_works_at_once_and_asks_the_idp_once() {
    let idp = Idp::start();
    idp.public_jwk(Alg::EdDSA); // the key exists before the gateway's first fetch
    let up = Upstream::start();
    let gw = start(&idp, "jwks_cooldown: 1h", &protected("/mcp", &up, "", ""));
    let before = idp.jwks_fetches();
    let first = idp.sign(Alg::EdDSA, &idp.claims(AUD, "a"));
    assert_eq!(get(&gw, "/mcp", Some(&first)).status(), 200);
    assert_eq!(idp.jwks_fetches(), before, "a known key needs no fetch");

    idp.rotate(Alg::EdDSA);
    let token = idp.sign(Alg::EdDSA, &idp.claims(AUD, "b"));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let url = gw.url("/mcp");
            let token = token.clone();
            std::thread::spawn(move || {
                Client::new()
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(idp.jwks_fetches(), before + 1, "16 requests, one fetch");

    // A flood of made-up kids costs the IdP nothing more within the cooldown.
    for i in 0..20 {
        let header = json!({"alg": "EdDSA", "kid": format!("random-{i}")});
        let t = idp.sign_with_header(Alg::EdDSA, &header, &idp.claims(AUD, "a"));
        assert_eq!(get(&gw, "/mcp", Some(&t)).status(), 401);
    }
    assert_eq!(idp.jwks_fetches(), before + 1);
    assert!(gw.metric(r#"mcpgate_auth_failures_total{reason="unknown_kid",route="/mcp"}"#) >= 20.0);
}

#[test]
fn the_idp_going_down_leaves_valid_tokens_working_on_cached_keys() {
    let idp = Idp::start();
    idp.public_jwk(Alg::ES384);
    let up = Upstream::start();
    let gw = start(
        &idp,
        "jwks_refresh: 1s\njwks_cooldown: 1s",
        &protected("/mcp", &up, "", ""),
    );
    idp.set_down(true);
    std::thread::sleep(Duration::from_millis(2500)); // scheduled refreshes fail meanwhile
    for sub in ["a", "b", "c"] {
        let token = idp.sign(Alg::ES384, &idp.claims(AUD, sub));
        assert_eq!(get(&gw, "/mcp", Some(&token)).status(), 200);
    }
    assert!(gw.metric(r#"mcpgate_provider_refreshes_total{provider="idp",result="error"}"#) >= 1.0);
    // Still ready: the keys it has are good.
    assert_eq!(get(&gw, "/readyz", None).status(), 200);
}

#[test]
fn discovery_follows_the_issuer_path_and_refuses_a_foreign_issuer() {
    let idp = Idp::start_with_path("realms/test");
    let up = Upstream::start();
    let gw = start(&idp, "", &protected("/mcp", &up, "", ""));
    let token = idp.sign(Alg::RS256, &idp.claims(AUD, "a"));
    assert_eq!(get(&gw, "/mcp", Some(&token)).status(), 200);

    let evil = Idp::start();
    evil.set_issuer_in_metadata(Some("http://evil.test".into()));
    let gw = Gateway::start_with(&provider(&evil, ""), &protected("/mcp", &up, "", ""));
    std::thread::sleep(Duration::from_millis(1500));
    let r = get(&gw, "/readyz", None);
    assert_eq!(r.status(), 503, "never ready on a foreign issuer");
    let token = evil.sign(Alg::RS256, &evil.claims(AUD, "a"));
    let r = get(&gw, "/mcp", Some(&token));
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "temporarily_unavailable"
    );
    assert!(gw.log().contains("not the configured"), "{}", gw.log());
}

#[test]
fn opaque_tokens_are_introspected_cached_and_fail_closed() {
    let idp = Idp::start();
    let up = Upstream::start();
    let settings = "tokens: jwt_then_introspection\nclient_id: gw\nclient_secret: s3cret\nclient_auth: client_secret_post";
    let gw = start(&idp, settings, &protected("/mcp", &up, "", ""));
    let exp = now() + 300;
    idp.add_opaque(
        "opaque-good",
        json!({"active": true, "sub": "ivy", "aud": AUD, "exp": exp, "scope": "x"}),
    );
    idp.add_opaque(
        "opaque-other-aud",
        json!({"active": true, "sub": "ivy", "aud": "elsewhere", "exp": exp}),
    );
    idp.add_opaque(
        "opaque-no-aud",
        json!({"active": true, "sub": "ivy", "exp": exp}),
    );

    for _ in 0..3 {
        assert_eq!(get(&gw, "/mcp", Some("opaque-good")).status(), 200);
    }
    assert_eq!(idp.introspections(), 1, "answers are cached");
    assert_eq!(
        idp.last_client_auth(),
        Some(("post".into(), "gw".into(), "s3cret".into()))
    );
    for token in ["opaque-other-aud", "opaque-no-aud", "opaque-unknown"] {
        let r = get(&gw, "/mcp", Some(token));
        assert_eq!(r.status(), 401, "{token}");
        assert!(challenge(&r).contains("invalid_token"));
    }
    assert_eq!(get(&gw, "/mcp", Some("opaque-unknown")).status(), 401);
    assert_eq!(idp.introspections(), 4, "inactive answers are cached too");
    // JWTs are still verified locally, without introspection.
    let jwt = idp.sign(Alg::RS256, &idp.claims(AUD, "a"));
    assert_eq!(get(&gw, "/mcp", Some(&jwt)).status(), 200);
    assert_eq!(idp.introspections(), 4);

    idp.set_down(true);
    let r = get(&gw, "/mcp", Some("opaque-new"));
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "temporarily_unavailable"
    );
    assert_eq!(
        get(&gw, "/mcp", Some("opaque-good")).status(),
        200,
        "cached"
    );
    assert_eq!(up.seen_count(), 5);
}

#[test]
fn rate_limits_are_per_subject_with_retry_after() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = start(
        &idp,
        "",
        &protected("/mcp", &up, "rate_limit: { rate: 60/min, burst: 3 }", ""),
    );
    let alice = idp.sign(Alg::RS256, &idp.claims(AUD, "alice"));
    let bob = idp.sign(Alg::RS256, &idp.claims(AUD, "bob"));
    for left in [2, 1, 0] {
        let r = get(&gw, "/mcp", Some(&alice));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "60");
        assert_eq!(
            r.headers()["ratelimit-remaining"],
            left.to_string().as_str()
        );
    }
    let r = get(&gw, "/mcp", Some(&alice));
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.json::<Value>().unwrap()["error"], "rate_limited");
    assert_eq!(
        get(&gw, "/mcp", Some(&bob)).status(),
        200,
        "bob has his own bucket"
    );
    assert_eq!(
        gw.metric(r#"mcpgate_auth_failures_total{reason="rate_limited",route="/mcp"}"#),
        1.0
    );
    gw.log_with(r#""route":"/mcp","sub":"alice","http_method":"GET","status":429"#);
}

#[test]
fn the_upstream_gets_the_configured_credential_and_never_a_spoofed_identity() {
    let idp = Idp::start();
    let up = Upstream::start();
    let settings = "client_id: gw\nclient_secret: s3cret";
    let routes = protected(
        "/static",
        &up,
        "",
        "upstream_auth: { headers: { X-API-Key: upstream-key } }",
    ) + &protected(
        "/identity",
        &up,
        r#"roles: { from_scopes: { "mcp:admin": admin } }"#,
        "upstream_auth: { identity: { subject: X-User } }",
    ) + &protected(
        "/exchange",
        &up,
        "",
        "upstream_auth: { token_exchange: { audience: internal-api, scope: read } }",
    ) + &protected("/legacy", &up, "", "upstream_auth: { forward_token: true }");
    let gw = start(&idp, settings, &routes);
    let mut claims = idp.claims(AUD, "alice");
    claims["email"] = json!("alice@corp.test");
    claims["email_verified"] = json!(true);
    claims["scope"] = json!("mcp:admin");
    let token = idp.sign(Alg::RS256, &claims);
    let send = |path: &str| {
        Client::new()
            .get(gw.url(path))
            .bearer_auth(&token)
            .header("X-User", "root")
            .header("X-Auth-Email", "root@corp.test")
            .header("X-API-Key", "client-chosen")
            .header("X_User", "root")
            .header("Cookie", "gateway-session=1")
            .send()
            .unwrap()
    };

    assert_eq!(send("/static").status(), 200);
    let seen = up.last_seen().headers;
    assert_eq!(seen["x-api-key"], "upstream-key");
    assert!(!seen.contains_key("authorization"));

    assert_eq!(send("/identity").status(), 200);
    let seen = up.last_seen().headers;
    assert_eq!(seen["x-user"], "alice");
    assert_eq!(seen["x-auth-email"], "alice@corp.test");
    assert_eq!(seen["x-auth-roles"], "admin");
    assert!(
        !seen.contains_key("x_user") && !seen.contains_key("cookie"),
        "{seen:?}"
    );

    for _ in 0..2 {
        assert_eq!(send("/exchange").status(), 200);
        let seen = up.last_seen().headers;
        assert!(
            seen["authorization"].starts_with("Bearer exchanged-"),
            "{seen:?}"
        );
        assert!(!seen["authorization"].contains(&token));
    }
    assert_eq!(idp.token_requests(), 1, "the exchanged token is cached");
    let form = idp.last_token_form();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("subject_token"), Some(token.as_str()));
    assert_eq!(field("audience"), Some("internal-api"));
    assert_eq!(field("scope"), Some("read"));
    assert_eq!(
        idp.last_client_auth(),
        Some(("basic".into(), "gw".into(), "s3cret".into()))
    );

    assert_eq!(send("/legacy").status(), 200);
    assert_eq!(
        up.last_seen().headers["authorization"],
        format!("Bearer {token}")
    );

    idp.set_down(true);
    let fresh = idp.sign(Alg::RS256, &idp.claims(AUD, "bob"));
    let r = Client::new()
        .get(gw.url("/exchange"))
        .bearer_auth(&fresh)
        .send()
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.json::<Value>().unwrap()["error"], "bad_gateway");
}

#[test]
fn browsers_need_an_allowed_origin_and_preflights_need_no_token() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = start(&idp, "", &protected("/mcp", &up, "", ""));
    let client = Client::new();

    let r = client
        .request(reqwest::Method::OPTIONS, gw.url("/mcp"))
        .header("Origin", "https://claude.ai")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, mcp-session-id",
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://claude.ai");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "authorization",
        "mcp-session-id",
        "mcp-protocol-version",
        "last-event-id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }

    // A 401 to a browser carries CORS headers, so the client can read the challenge.
    let r = client
        .post(gw.url("/mcp"))
        .header("Origin", "https://claude.ai")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://claude.ai"
    );
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("WWW-Authenticate"));

    let token = idp.sign(Alg::RS256, &idp.claims(AUD, "a"));
    let r = client
        .get(gw.url("/mcp"))
        .header("Origin", "https://claude.com")
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://claude.com"
    );

    let r = client
        .get(gw.url("/mcp"))
        .header("Origin", "https://evil.test")
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().unwrap()["error"], "origin_not_allowed");
    assert_eq!(up.seen_count(), 1);
}

#[test]
fn the_default_audience_is_the_route_url_and_reload_keeps_the_keys() {
    let idp = Idp::start();
    let up = Upstream::start();
    let route = format!(
        "  - prefix: /mcp/a\n    upstream: {}\n    auth: {{ provider: idp }}\n",
        up.url()
    );
    let gw = start(&idp, "", &route);
    let resource = gw.url("/mcp/a");
    for aud in [resource.clone(), format!("{resource}/")] {
        let token = idp.sign(Alg::RS256, &idp.claims(&aud, "a"));
        assert_eq!(get(&gw, "/mcp/a", Some(&token)).status(), 200, "{aud}");
    }
    let token = idp.sign(Alg::RS256, &idp.claims(&gw.url("/mcp/b"), "a"));
    assert_eq!(get(&gw, "/mcp/a", Some(&token)).status(), 401);

    // A reload with the provider unchanged keeps its keys: no refetch, no gap.
    let fetches = idp.jwks_fetches();
    gw.write_config(&provider(&idp, ""), &format!("{route}    name: renamed\n"));
    gw.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        gw.metric(r#"mcpgate_config_reloads_total{result="ok"}"#),
        1.0
    );
    let token = idp.sign(Alg::RS256, &idp.claims(&resource, "z"));
    assert_eq!(get(&gw, "/mcp/a", Some(&token)).status(), 200);
    assert_eq!(idp.jwks_fetches(), fetches);
}

#[test]
fn the_challenge_leads_to_the_routes_resource_metadata() {
    let idp = Idp::start();
    let up = Upstream::start();
    let routes =
        protected("/mcp", &up, "scopes: [mcp:tools]", "") + &common::route("/open", &up.url(), "");
    let gw = start(&idp, "", &routes);
    let r = get(&gw, "/mcp", None);
    let c = challenge(&r);
    let url = c
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let r = Client::new().get(url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let doc: Value = r.json().unwrap();
    assert_eq!(doc["resource"], gw.url("/mcp"));
    assert_eq!(doc["authorization_servers"], json!([idp.issuer()]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    // A deeper MCP path maps to the same route's document; an open route has none.
    let deeper = get(
        &gw,
        "/.well-known/oauth-protected-resource/mcp/messages",
        None,
    );
    assert_eq!(deeper.json::<Value>().unwrap(), doc);
    let open = get(&gw, "/.well-known/oauth-protected-resource/open", None);
    assert_eq!(open.status(), 404);
    assert_eq!(open.json::<Value>().unwrap()["error"], "not_found");
    assert_eq!(up.seen_count(), 0);
}

#[test]
fn a_provider_may_require_at_jwt_and_a_key_set_with_a_kid_twice_is_not_used() {
    let idp = Idp::start();
    let up = Upstream::start();
    let gw = start(
        &idp,
        "token_types: [application/at+jwt]",
        &protected("/mcp", &up, "", ""),
    );
    let kid = idp.public_jwk(Alg::RS256)["kid"].clone();
    let claims = idp.claims(AUD, "alice");
    let typed = |typ: &str| {
        idp.sign_with_header(
            Alg::RS256,
            &json!({"alg": "RS256", "typ": typ, "kid": kid}),
            &claims,
        )
    };
    let accepted = typed("at+jwt");
    assert_eq!(get(&gw, "/mcp", Some(&accepted)).status(), 200);
    assert_eq!(get(&gw, "/mcp", Some(&typed("JWT"))).status(), 401);
    let untyped = idp.sign_with_header(Alg::RS256, &json!({"alg": "RS256", "kid": kid}), &claims);
    assert_eq!(get(&gw, "/mcp", Some(&untyped)).status(), 401);
    // Typed as an access token, a token may carry what ID tokens carry too.
    let mut hashed = claims.clone();
    hashed["at_hash"] = json!("x");
    let token = idp.sign_with_header(
        Alg::RS256,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
        &hashed,
    );
    assert_eq!(get(&gw, "/mcp", Some(&token)).status(), 200);

    // Two keys under one kid: which one a token means would be a guess. The set is refused
    // and the keys already held stay.
    let signed_before = idp.sign_with_header(
        Alg::RS256,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
        &idp.claims(AUD, "bob"),
    );
    idp.set_duplicate_keys(true);
    idp.rotate(Alg::RS256);
    let rotated = idp.sign(Alg::RS256, &idp.claims(AUD, "alice"));
    assert_eq!(get(&gw, "/mcp", Some(&rotated)).status(), 401);
    gw.log_with("two signing keys have the kid");
    assert_eq!(get(&gw, "/mcp", Some(&signed_before)).status(), 200);
}

#[test]
fn a_dot_segment_cannot_reach_a_protected_path_through_an_open_route() {
    use std::io::{Read, Write};
    let idp = Idp::start();
    let up = Upstream::start();
    let routes = protected("/private", &up, "", "") + &common::route("/open", &up.url(), "");
    let gw = start(&idp, "", &routes);
    for path in [
        "/open/../private",
        "/open/%2e%2e/private",
        "/open/..%2fprivate",
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("invalid_request"), "{answer}");
    }
    assert_eq!(up.seen_count(), 0);
}

#[test]
fn the_default_route_answers_discovery_at_the_root() {
    let idp = Idp::start();
    let up = Upstream::start();
    let extra = format!("default_route: /mcp\n{}", provider(&idp, ""));
    let gw = Gateway::start_with(&extra, &protected("/mcp", &up, "", ""));
    gw.wait_ready();
    let root: Value = get(&gw, "/.well-known/oauth-protected-resource", None)
        .json()
        .unwrap();
    assert_eq!(root["resource"], gw.url("/mcp"));
    // A trailing slash on the resource path finds the same document.
    let slash: Value = get(&gw, "/.well-known/oauth-protected-resource/mcp/", None)
        .json()
        .unwrap();
    assert_eq!(slash, root);
}
