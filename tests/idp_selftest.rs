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
    for path in ["/.well-known/openid-configuration", "/jwks", "/nope"] {
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
        )
    };
    assert_eq!(counts(), (0, 0, 0, 0));
    idp.set_down(false);
    assert_eq!(get(&idp.jwks_uri()).status(), 200);
    assert_eq!(counts(), (1, 0, 0, 0));
}
