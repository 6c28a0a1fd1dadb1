//! The test IdP itself: its documents, keys, signatures, counters and endpoints, checked
//! over HTTP the way a relying party sees them.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::idp::{Alg, Idp};
use reqwest::blocking::{Client, Response};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{json, Value};

const ALL: [Alg; 9] = Alg::ALL;

const AUD: &str = "https://mcp.example.com/mcp";

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn get(url: &str) -> Response {
    reqwest::blocking::get(url).unwrap()
}

fn json_of(r: Response) -> Value {
    r.json().unwrap()
}

fn jwks(idp: &Idp) -> Vec<Value> {
    json_of(get(&idp.jwks_uri()))["keys"]
        .as_array()
        .unwrap()
        .clone()
}

fn kids(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A JWT's decoded header and claims.
fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || serde_json::from_slice(&b64(parts.next().unwrap())).unwrap();
    (next(), next())
}

/// Checks `token`'s signature with `jwk` using ring's verifiers, independently of the
/// gateway's code.
fn verifies(jwk: &Value, token: &str) -> bool {
    let (input, sig) = token.rsplit_once('.').unwrap();
    let (input, sig) = (input.as_bytes(), b64(sig));
    let member = |k: &str| b64(jwk[k].as_str().unwrap());
    let rsa = |params| {
        let key = RsaPublicKeyComponents {
            n: member("n"),
            e: member("e"),
        };
        key.verify(params, input, &sig).is_ok()
    };
    let ec = |alg| {
        let point = [vec![4], member("x"), member("y")].concat();
        UnparsedPublicKey::new(alg, point)
            .verify(input, &sig)
            .is_ok()
    };
    match jwk["alg"].as_str().unwrap() {
        "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => ec(&signature::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec(&signature::ECDSA_P384_SHA384_FIXED),
        "EdDSA" => UnparsedPublicKey::new(&signature::ED25519, member("x"))
            .verify(input, &sig)
            .is_ok(),
        other => panic!("unexpected alg {other}"),
    }
}

#[test]
fn discovery_documents_at_a_root_issuer() {
    let idp = Idp::start();
    let issuer = idp.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
    assert_eq!(idp.jwks_uri(), format!("{issuer}/jwks"));
    for doc in ["oauth-authorization-server", "openid-configuration"] {
        let r = get(&format!("{issuer}/.well-known/{doc}"));
        assert_eq!(r.status(), 200, "{doc}");
        let meta = json_of(r);
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(meta["jwks_uri"], idp.jwks_uri().as_str());
        assert_eq!(meta["token_endpoint"], format!("{issuer}/token").as_str());
        assert_eq!(
            meta["introspection_endpoint"],
            format!("{issuer}/introspect").as_str()
        );
        assert_eq!(
            meta["authorization_endpoint"],
            format!("{issuer}/authorize").as_str()
        );
        assert_eq!(meta["response_types_supported"], json!(["code"]));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        let grants = meta["grant_types_supported"].as_array().unwrap();
        for grant in [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ] {
            assert!(grants.contains(&json!(grant)), "{grant}");
        }
    }
    assert_eq!(idp.discovery_fetches(), 2);

    idp.set_issuer_in_metadata(Some("https://elsewhere.example".into()));
    let meta = json_of(get(&format!(
        "{issuer}/.well-known/oauth-authorization-server"
    )));
    assert_eq!(meta["issuer"], "https://elsewhere.example");
    idp.set_issuer_in_metadata(None);
    let meta = json_of(get(&format!("{issuer}/.well-known/openid-configuration")));
    assert_eq!(meta["issuer"], issuer.as_str());

    assert_eq!(get(&format!("{issuer}/nope")).status(), 404);
    let post = Client::new().post(idp.jwks_uri()).send().unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(idp.discovery_fetches(), 4);
    assert_eq!(idp.jwks_fetches(), 0, "neither a 405 nor a 404 is a fetch");
}

#[test]
fn discovery_documents_at_an_issuer_with_a_path() {
    let idp = Idp::start_with_path("realms/test");
    let issuer = idp.issuer();
    let origin = issuer
        .strip_suffix("/realms/test")
        .expect("issuer has the path");
    assert_eq!(idp.jwks_uri(), format!("{origin}/jwks"));
    for url in [
        format!("{origin}/.well-known/oauth-authorization-server/realms/test"),
        format!("{issuer}/.well-known/openid-configuration"),
    ] {
        let r = get(&url);
        assert_eq!(r.status(), 200, "{url}");
        let meta = json_of(r);
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(meta["token_endpoint"], format!("{origin}/token").as_str());
    }
    let root = get(&format!("{origin}/.well-known/oauth-authorization-server"));
    assert_eq!(root.status(), 404, "the root location is not this issuer's");
    assert_eq!(idp.discovery_fetches(), 2);
    assert_eq!(idp.claims(AUD, "a")["iss"], issuer.as_str());
}

#[test]
fn every_algorithm_signs_verifiable_tokens() {
    let idp = Idp::start();
    let first = jwks(&idp);
    assert_eq!(first.len(), 1, "an RS256 key from the start");
    assert_eq!(first[0]["alg"], "RS256");
    assert_eq!(first[0]["kty"], "RSA");

    let claims = idp.claims(AUD, "alice");
    assert_eq!(
        claims["exp"].as_u64(),
        claims["iat"].as_u64().map(|t| t + 300)
    );
    let tokens: Vec<String> = ALL.iter().map(|alg| idp.sign(*alg, &claims)).collect();
    let keys = jwks(&idp);
    assert_eq!(keys.len(), ALL.len(), "one key per algorithm used");
    assert_eq!(idp.jwks_fetches(), 2);
    let count = |kty: &str| keys.iter().filter(|k| k["kty"] == kty).count();
    assert_eq!((count("RSA"), count("EC"), count("OKP")), (6, 2, 1));
    let mut unique = kids(&keys);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ALL.len(), "kids are distinct");

    for (alg, token) in ALL.iter().zip(&tokens) {
        let (header, payload) = decode(token);
        let name = format!("{alg:?}");
        assert_eq!(header["alg"], name.as_str());
        assert_eq!(header["typ"], "JWT");
        assert_eq!(payload, claims);
        let jwk = keys.iter().find(|k| k["kid"] == header["kid"]).unwrap();
        assert_eq!(jwk["alg"], name.as_str());
        assert_eq!(jwk, &idp.public_jwk(*alg));
        assert!(verifies(jwk, token), "{name}");
        // The same signature over other claims does not verify.
        let (_, signature) = token.rsplit_once('.').unwrap();
        let forged = format!(
            "{}.{}.{signature}",
            token.split('.').next().unwrap(),
            URL_SAFE_NO_PAD.encode(json!({"sub": "mallory"}).to_string())
        );
        assert!(!verifies(jwk, &forged), "{name}");
    }
    let ec = keys.iter().find(|k| k["alg"] == "ES384").unwrap();
    assert_eq!(ec["crv"], "P-384");
    assert_eq!(b64(ec["x"].as_str().unwrap()).len(), 48);
    let ed = keys.iter().find(|k| k["alg"] == "EdDSA").unwrap();
    assert_eq!(ed["crv"], "Ed25519");
}

#[test]
fn attack_headers_and_hmac() {
    let idp = Idp::start();
    let claims = idp.claims(AUD, "a");
    let header = json!({"alg": "none", "jku": "http://evil.example/jwks"});
    let token = idp.sign_with_header(Alg::ES256, &header, &claims);
    assert_eq!(decode(&token).0, header, "the header is sent as given");
    let jwk = idp.public_jwk(Alg::ES256);
    assert!(verifies(&jwk, &token), "signed by the ES256 key");

    let secret = idp.public_jwk(Alg::RS256).to_string();
    let hmac = Idp::sign_hs256(&json!({"alg": "HS256"}), &claims, secret.as_bytes());
    let (input, tag) = hmac.rsplit_once('.').unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, input.as_bytes(), &b64(tag)).expect("a valid HS256 tag");
}

#[test]
fn rotation_replaces_keys() {
    let idp = Idp::start();
    let before = idp.public_jwk(Alg::RS256);
    let old_token = idp.sign(Alg::RS256, &idp.claims(AUD, "a"));
    idp.rotate(Alg::RS256);
    let after = idp.public_jwk(Alg::RS256);
    assert_ne!(before["kid"], after["kid"]);
    assert_ne!(before["n"], after["n"], "the other RSA fixture");
    let keys = jwks(&idp);
    assert_eq!(kids(&keys), [after["kid"].as_str().unwrap()]);
    assert!(!verifies(&after, &old_token));
    let new_token = idp.sign(Alg::RS256, &idp.claims(AUD, "a"));
    assert_eq!(decode(&new_token).0["kid"], after["kid"]);
    assert!(verifies(&after, &new_token));

    idp.rotate(Alg::RS256);
    let third = idp.public_jwk(Alg::RS256);
    assert_eq!(third["n"], before["n"], "back to the first fixture");
    assert!(![&before["kid"], &after["kid"]].contains(&&third["kid"]));

    let ed = idp.public_jwk(Alg::EdDSA);
    idp.rotate(Alg::EdDSA);
    let ed2 = idp.public_jwk(Alg::EdDSA);
    assert_ne!(ed["kid"], ed2["kid"]);
    assert_ne!(ed["x"], ed2["x"]);
    let mut listed = kids(&jwks(&idp));
    listed.sort();
    let mut current = kids(&[third, ed2]);
    current.sort();
    assert_eq!(listed, current, "only the current keys");
    assert_eq!(idp.jwks_fetches(), 2);
}

#[test]
fn jwks_cache_control() {
    let idp = Idp::start();
    let r = get(&idp.jwks_uri());
    assert!(r.headers().get("cache-control").is_none());
    idp.set_jwks_max_age(Some(60));
    let r = get(&idp.jwks_uri());
    assert_eq!(r.headers()["cache-control"], "max-age=60");
    idp.set_jwks_max_age(None);
    assert!(get(&idp.jwks_uri())
        .headers()
        .get("cache-control")
        .is_none());
}

#[test]
fn introspection() {
    let idp = Idp::start();
    let client = Client::new();
    let url = format!("{}/introspect", idp.issuer());
    let answer =
        json!({"active": true, "sub": "ivy", "aud": AUD, "exp": 4_000_000_000u64, "scope": "x"});
    idp.add_opaque("opaque-good", answer.clone());

    let r = client
        .post(&url)
        .form(&[("token", "opaque-good")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json_of(r)["error"], "invalid_client");
    assert_eq!(idp.last_client_auth(), None);

    // Basic credentials are form-urlencoded before base64 (RFC 6749 §2.3.1).
    let r = client
        .post(&url)
        .basic_auth("my+client", Some("s3cr%3At%25"))
        .form(&[
            ("token", "opaque-good"),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .unwrap();
    assert_eq!(json_of(r), answer);
    assert_eq!(
        idp.last_client_auth(),
        Some(("basic".into(), "my client".into(), "s3cr:t%".into()))
    );

    let form = [
        ("token", "other"),
        ("client_id", "gw"),
        ("client_secret", "s"),
    ];
    let r = client.post(&url).form(&form).send().unwrap();
    assert_eq!(json_of(r), json!({"active": false}));
    assert_eq!(
        idp.last_client_auth(),
        Some(("post".into(), "gw".into(), "s".into()))
    );

    let r = client
        .post(&url)
        .basic_auth("gw", Some("s"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400, "two client authentication methods");
    assert_eq!(idp.introspections(), 4);
    assert_eq!(idp.token_requests(), 0);
}

#[test]
fn token_exchange() {
    let idp = Idp::start();
    let client = Client::new();
    let url = format!("{}/token", idp.issuer());
    let subject = idp.sign(Alg::RS256, &idp.claims(AUD, "alice"));
    let form = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject.as_str()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("audience", "a"),
        ("audience", "b"),
    ];
    let r = client
        .post(&url)
        .basic_auth("gw", Some("s3cret"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer = json_of(r);
    let digest = ring::digest::digest(&ring::digest::SHA256, subject.as_bytes());
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        answer["access_token"],
        format!("exchanged-1-{hex}").as_str()
    );
    assert_eq!(
        answer["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300);
    let seen: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(idp.last_token_form(), seen, "every field, in order");
    assert_eq!(
        idp.last_client_auth(),
        Some(("basic".into(), "gw".into(), "s3cret".into()))
    );

    let post = |fields: &[(&str, &str)]| client.post(&url).form(fields).send().unwrap();
    let auth = [("client_id", "gw"), ("client_secret", "s3cret")];
    let r = post(&[&auth[..], &[("grant_type", "client_credentials")]].concat());
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r)["error"], "unsupported_grant_type");
    let r = post(&[&auth[..], &form[..2]].concat());
    assert_eq!(r.status(), 400, "no subject_token_type");
    assert_eq!(json_of(r)["error"], "invalid_request");
    assert_eq!(post(&form).status(), 401, "no client authentication");
    let r = post(&[&auth[..], &form[..]].concat());
    assert_eq!(
        json_of(r)["access_token"],
        format!("exchanged-5-{hex}").as_str()
    );
    assert_eq!(idp.token_requests(), 5);
    assert_eq!(idp.introspections(), 0);
}

#[test]
fn down_answers_503_everywhere() {
    let idp = Idp::start();
    idp.set_down(true);
    let issuer = idp.issuer();
    for path in [
        "/.well-known/openid-configuration",
        "/jwks",
        "/authorize",
        "/nope",
    ] {
        assert_eq!(get(&format!("{issuer}{path}")).status(), 503, "{path}");
    }
    for path in ["/introspect", "/token"] {
        let r = Client::new()
            .post(format!("{issuer}{path}"))
            .basic_auth("gw", Some("s"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
    }
    let counts = || {
        (
            idp.jwks_fetches(),
            idp.discovery_fetches(),
            idp.introspections(),
            idp.token_requests(),
            idp.authorize_requests(),
        )
    };
    assert_eq!(counts(), (0, 0, 0, 0, 0));
    idp.set_down(false);
    assert_eq!(get(&idp.jwks_uri()).status(), 200);
    assert_eq!(counts(), (1, 0, 0, 0, 0));
}

const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";

/// A PKCE verifier (RFC 7636 §4.1) and its S256 challenge.
fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-{}", "v".repeat(43));
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest))
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where the endpoints are (the issuer's path, if any, is not theirs).
fn origin(idp: &Idp) -> String {
    idp.jwks_uri().strip_suffix("/jwks").unwrap().to_string()
}

fn authorize_url(idp: &Idp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", origin(idp))).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// The usual `/authorize` parameters for `client`, with `challenge`.
fn code_request<'a>(client: &'a str, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("state", "st/1 +x"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "openid tools:read"),
    ]
}

/// Follows nothing: the redirect's target (without query) and its query parameters.
fn redirected(r: Response) -> (String, Vec<(String, String)>) {
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    let (_, raw_query) = location.split_once('?').unwrap();
    assert!(!raw_query.contains([':', '/', ' ']), "encoded: {location}");
    let url = url::Url::parse(location).unwrap();
    let params = url.query_pairs().into_owned().collect();
    let target = format!("{}{}", url.origin().ascii_serialization(), url.path());
    (target, params)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Asks `/authorize` for a code (approved), returning it.
fn get_code(idp: &Idp, http: &Client, params: &[(&str, &str)]) -> String {
    let r = http.get(authorize_url(idp, params)).send().unwrap();
    let (target, query) = redirected(r);
    assert_eq!(target, REDIRECT);
    param(&query, "code").expect("a code").to_string()
}

/// `POST /token` with Basic credentials for `client`.
fn token(idp: &Idp, http: &Client, client: (&str, &str), form: &[(&str, &str)]) -> Response {
    http.post(format!("{}/token", origin(idp)))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .unwrap()
}

fn redeem(idp: &Idp, http: &Client, code: &str, verifier: &str) -> Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token(idp, http, ("gw", "s3cret"), &form)
}

fn refresh(idp: &Idp, http: &Client, client: (&str, &str), rt: &str) -> Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    token(idp, http, client, &form)
}

fn refused(r: Response, status: u16, error: &str) {
    assert_eq!(r.status(), status, "{error}");
    assert!(r.headers().get("location").is_none());
    assert_eq!(json_of(r), json!({ "error": error }));
}

/// An access token's claims, after checking its RS256 signature against the JWKS.
fn checked_claims(idp: &Idp, token: &str) -> Value {
    let (header, claims) = decode(token);
    assert_eq!(header["alg"], "RS256");
    let keys = jwks(idp);
    let jwk = keys.iter().find(|k| k["kid"] == header["kid"]).unwrap();
    assert!(verifies(jwk, token));
    claims
}

#[test]
fn authorization_code_flow_with_pkce() {
    let idp = Idp::start_with_path("realms/test");
    idp.add_client("gw", "s3cret", REDIRECT);
    let http = no_redirects();
    let (verifier, challenge) = pkce("flow");
    let params = code_request("gw", &challenge);

    let r = http.get(authorize_url(&idp, &params)).send().unwrap();
    let (target, query) = redirected(r);
    assert_eq!(target, REDIRECT);
    let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["code", "state", "iss"]);
    assert_eq!(param(&query, "state"), Some("st/1 +x"));
    assert_eq!(param(&query, "iss"), Some(idp.issuer().as_str()));
    let code = param(&query, "code").unwrap();
    assert!(code.len() >= 16);
    let seen: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(idp.last_authorize_params(), seen);
    assert_eq!(idp.authorize_requests(), 1);
    let other = get_code(&idp, &http, &params);
    assert_ne!(other, code, "fresh codes");

    let r = redeem(&idp, &http, code, &verifier);
    assert_eq!(r.status(), 200);
    let answer = json_of(r);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(answer["refresh_token"], "rt-1");
    assert_eq!(answer["scope"], "openid tools:read");
    let claims = checked_claims(&idp, answer["access_token"].as_str().unwrap());
    assert_eq!(claims["iss"], idp.issuer().as_str());
    assert_eq!(claims["sub"], "user-1");
    assert_eq!(claims["aud"], "gw", "no audience or resource: the client");
    assert_eq!(claims["scope"], "openid tools:read");
    assert_eq!(claims["email"], "user-1@example.test");
    assert_eq!(claims["email_verified"], true);
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 300));
    assert_eq!(
        idp.last_client_auth(),
        Some(("basic".into(), "gw".into(), "s3cret".into()))
    );
    assert_eq!(idp.last_token_form()[1], ("code".into(), code.into()));

    // The audience: `audience`, else `resource`; another subject, client_secret_post.
    idp.set_login_subject("alice");
    let resource = [&params[..], &[("resource", AUD)]].concat();
    let both = [&resource[..], &[("audience", "api-1")]].concat();
    for (params, aud) in [(resource, AUD), (both, "api-1")] {
        let code = get_code(&idp, &http, &params);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", "gw"),
            ("client_secret", "s3cret"),
        ];
        let r = http
            .post(format!("{}/token", origin(&idp)))
            .form(&form)
            .send()
            .unwrap();
        let claims = checked_claims(&idp, json_of(r)["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.test");
    }
    assert_eq!(
        idp.last_client_auth(),
        Some(("post".into(), "gw".into(), "s3cret".into()))
    );
    assert_eq!(idp.token_requests(), 3);
    assert_eq!(idp.authorize_requests(), 4);
}

#[test]
fn codes_are_one_time_and_bound_to_the_verifier() {
    let idp = Idp::start();
    idp.add_client("gw", "s3cret", REDIRECT);
    idp.add_client("other", "pw", REDIRECT);
    let http = no_redirects();
    let (verifier, challenge) = pkce("one");
    let params = code_request("gw", &challenge);

    let code = get_code(&idp, &http, &params);
    assert_eq!(redeem(&idp, &http, &code, &verifier).status(), 200);
    refused(redeem(&idp, &http, &code, &verifier), 400, "invalid_grant");
    refused(
        redeem(&idp, &http, "made-up", &verifier),
        400,
        "invalid_grant",
    );

    // A wrong verifier is refused, and spends the code.
    let code = get_code(&idp, &http, &params);
    let (wrong, _) = pkce("other");
    refused(redeem(&idp, &http, &code, &wrong), 400, "invalid_grant");
    refused(redeem(&idp, &http, &code, &verifier), 400, "invalid_grant");
    // So do a missing one, one too short (RFC 7636 §4.1) and another redirect URI.
    let short = "short";
    let digest = ring::digest::digest(&ring::digest::SHA256, short.as_bytes());
    let short_challenge = URL_SAFE_NO_PAD.encode(digest);
    let code = get_code(&idp, &http, &code_request("gw", &short_challenge));
    refused(redeem(&idp, &http, &code, short), 400, "invalid_grant");
    let code = get_code(&idp, &http, &params);
    refused(redeem(&idp, &http, &code, ""), 400, "invalid_grant");
    let code = get_code(&idp, &http, &params);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
        ("code_verifier", &verifier),
    ];
    refused(
        token(&idp, &http, ("gw", "s3cret"), &form),
        400,
        "invalid_grant",
    );

    // Another client's code is not this client's, and trying does not spend it.
    let code = get_code(&idp, &http, &params);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ];
    refused(
        token(&idp, &http, ("other", "pw"), &form),
        400,
        "invalid_grant",
    );
    // Unregistered or wrong credentials, or a client_id naming another client: 401.
    refused(
        token(&idp, &http, ("gw", "nope"), &form),
        401,
        "invalid_client",
    );
    refused(
        token(&idp, &http, ("who", "s3cret"), &form),
        401,
        "invalid_client",
    );
    let named = [&form[..], &[("client_id", "other")]].concat();
    refused(
        token(&idp, &http, ("gw", "s3cret"), &named),
        401,
        "invalid_client",
    );
    let r = http
        .post(format!("{}/token", origin(&idp)))
        .form(&form)
        .send()
        .unwrap();
    refused(r, 401, "invalid_client");
    assert_eq!(redeem(&idp, &http, &code, &verifier).status(), 200);
    assert_eq!(idp.token_requests(), 14);
}

#[test]
fn refresh_tokens_rotate() {
    let idp = Idp::start();
    idp.add_client("gw", "s3cret", REDIRECT);
    idp.add_client("other", "pw", REDIRECT);
    let http = no_redirects();
    let (verifier, challenge) = pkce("rt");
    let params = [&code_request("gw", &challenge)[..], &[("resource", AUD)]].concat();
    let code = get_code(&idp, &http, &params);
    let first = json_of(redeem(&idp, &http, &code, &verifier));
    assert_eq!(first["refresh_token"], "rt-1");
    let original = checked_claims(&idp, first["access_token"].as_str().unwrap());

    idp.set_login_subject("someone-else");
    idp.rotate(Alg::RS256);
    let gw = ("gw", "s3cret");
    let r = refresh(&idp, &http, gw, "rt-1");
    assert_eq!(r.status(), 200);
    let second = json_of(r);
    assert_eq!(second["refresh_token"], "rt-2");
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["expires_in"], 300);
    assert_eq!(second["scope"], "openid tools:read");
    let token = second["access_token"].as_str().unwrap();
    assert_ne!(token, first["access_token"].as_str().unwrap());
    assert_eq!(decode(token).0["kid"], idp.public_jwk(Alg::RS256)["kid"]);
    let claims = checked_claims(&idp, token);
    for claim in ["iss", "sub", "aud", "scope", "email", "email_verified"] {
        assert_eq!(claims[claim], original[claim], "{claim}");
    }
    assert_eq!(claims["aud"], AUD);

    refused(refresh(&idp, &http, gw, "rt-1"), 400, "invalid_grant");
    refused(refresh(&idp, &http, gw, "rt-99"), 400, "invalid_grant");
    refused(
        refresh(&idp, &http, ("other", "pw"), "rt-2"),
        400,
        "invalid_grant",
    );
    refused(
        refresh(&idp, &http, ("gw", "x"), "rt-2"),
        401,
        "invalid_client",
    );
    let third = json_of(refresh(&idp, &http, gw, "rt-2"));
    assert_eq!(third["refresh_token"], "rt-3");
    refused(refresh(&idp, &http, gw, "rt-2"), 400, "invalid_grant");
    assert_eq!(idp.token_requests(), 8);
}

#[test]
fn authorize_error_redirect() {
    let idp = Idp::start();
    idp.add_client("gw", "s3cret", REDIRECT);
    let http = no_redirects();
    let (verifier, challenge) = pkce("err");
    let params = code_request("gw", &challenge);
    idp.set_authorize_error(Some("access_denied".into()));
    let r = http.get(authorize_url(&idp, &params)).send().unwrap();
    let (target, query) = redirected(r);
    assert_eq!(target, REDIRECT);
    let expected = [
        ("error", "access_denied".to_string()),
        ("state", "st/1 +x".into()),
        ("iss", idp.issuer()),
    ];
    let expected: Vec<(String, String)> =
        expected.into_iter().map(|(k, v)| (k.into(), v)).collect();
    assert_eq!(query, expected);

    // A redirect URI with a query keeps it; no state, none sent back.
    let with_query = "http://127.0.0.1:9/cb?tenant=a";
    idp.add_client("q", "pw", with_query);
    let mut params_q = code_request("q", &challenge);
    params_q[2].1 = with_query;
    params_q.remove(3);
    let r = http.get(authorize_url(&idp, &params_q)).send().unwrap();
    let names: Vec<String> = redirected(r).1.into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["tenant", "error", "iss"]);

    idp.set_authorize_error(None);
    let code = get_code(&idp, &http, &params);
    assert_eq!(redeem(&idp, &http, &code, &verifier).status(), 200);
}

/// `params` without `key`, then `key=value` at the end if given.
fn replaced<'a>(
    params: &[(&'a str, &'a str)],
    key: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut p: Vec<_> = params.iter().filter(|(k, _)| *k != key).copied().collect();
    p.extend(value.map(|v| (key, v)));
    p
}

#[test]
fn bad_authorize_requests_are_refused_without_redirect() {
    let idp = Idp::start();
    idp.add_client("gw", "s3cret", REDIRECT);
    let http = no_redirects();
    let (_, challenge) = pkce("bad");
    let good = code_request("gw", &challenge);
    let with = |key, value| replaced(&good, key, Some(value));
    let without = |key| replaced(&good, key, None);
    let get_params =
        |params: &[(&str, &str)]| http.get(authorize_url(&idp, params)).send().unwrap();

    let cases = [
        (with("client_id", "unknown"), "invalid_client"),
        (without("client_id"), "invalid_client"),
        (
            with("redirect_uri", "http://127.0.0.1:9/evil"),
            "invalid_client",
        ),
        (
            with("redirect_uri", "http://127.0.0.1:9/oauth/callback/"),
            "invalid_client",
        ),
        (without("redirect_uri"), "invalid_client"),
        (with("response_type", "token"), "invalid_request"),
        (without("response_type"), "invalid_request"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (without("code_challenge_method"), "invalid_request"),
        (without("code_challenge"), "invalid_request"),
        (with("code_challenge", ""), "invalid_request"),
        (
            [&good[..], &[("state", "again")]].concat(),
            "invalid_request",
        ),
    ];
    for (params, error) in &cases {
        refused(get_params(params), 400, error);
    }
    // Even the error redirect needs a registered client.
    idp.set_authorize_error(Some("access_denied".into()));
    refused(
        get_params(&with("client_id", "unknown")),
        400,
        "invalid_client",
    );
    assert_eq!(idp.authorize_requests(), cases.len() + 1);
    assert_eq!(
        idp.last_authorize_params().last(),
        Some(&("client_id".into(), "unknown".into()))
    );
    let r = http.post(authorize_url(&idp, &good)).send().unwrap();
    assert_eq!(r.status(), 405);
    // Malformed percent-encoding is decoded leniently, never a server error.
    let url = format!("{}/authorize?client_id=%zz&redirect_uri=%ff", origin(&idp));
    refused(http.get(url).send().unwrap(), 400, "invalid_client");
}
