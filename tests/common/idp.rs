//! A real identity provider for tests: signs JWTs with real RSA, EC and Ed25519 keys (ring),
//! serves discovery documents and a JWKS over HTTP, rotates keys, introspects opaque tokens
//! (RFC 7662) and exchanges tokens (RFC 8693). It counts what it is asked, and can go down.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

/// The gateway's own list of algorithms: the IdP signs with every one it accepts.
pub use mcpgate::auth::jwk::Alg;

fn name(alg: Alg) -> String {
    format!("{alg:?}")
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct SigningKey {
    kid: String,
    signer: Signer,
}

#[derive(Default)]
struct State {
    keys: HashMap<Alg, SigningKey>,
    rotations: usize,
    down: bool,
    max_age: Option<u64>,
    metadata_issuer: Option<String>,
    opaque: HashMap<String, Value>,
    jwks_fetches: usize,
    discovery_fetches: usize,
    introspections: usize,
    token_requests: usize,
    last_client_auth: Option<(String, String, String)>,
    last_token_form: Vec<(String, String)>,
}

pub struct Idp {
    addr: SocketAddr,
    path: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

const RSA_FIXTURES: [&str; 2] = [
    include_str!("../keys/rsa1.pk8.pem"),
    include_str!("../keys/rsa2.pk8.pem"),
];

fn rsa_key(index: usize) -> RsaKeyPair {
    let pem = RSA_FIXTURES[index % 2];
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn new_key(alg: Alg, generation: usize) -> SigningKey {
    let rng = SystemRandom::new();
    let signer = match alg {
        Alg::ES256 | Alg::ES384 => {
            let a = if alg == Alg::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
            Signer::Ec(EcdsaKeyPair::from_pkcs8(a, pkcs8.as_ref(), &rng).unwrap())
        }
        Alg::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            Signer::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }
        _ => Signer::Rsa(rsa_key(generation)),
    };
    SigningKey {
        kid: format!("{}-{generation}", name(alg).to_lowercase()),
        signer,
    }
}

impl SigningKey {
    fn sign(&self, alg: Alg, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(k) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    Alg::RS384 => &signature::RSA_PKCS1_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    fn jwk(&self, alg: Alg) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.signer {
            Signer::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + len]), "y": b64(&point[1 + len..])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(name(alg));
        jwk["use"] = json!("sig");
        jwk
    }
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

impl Idp {
    pub fn start() -> Idp {
        Self::start_with_path("")
    }

    /// The issuer is `http://127.0.0.1:PORT/<path>`; discovery documents are served at the
    /// RFC 8414 path-insertion location and the OIDC one.
    pub fn start_with_path(path: &str) -> Idp {
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("/{}", path.trim_matches('/'))
        };
        let state = Arc::new(Mutex::new(State::default()));
        state
            .lock()
            .unwrap()
            .keys
            .insert(Alg::RS256, new_key(Alg::RS256, 0));
        let (state2, issuer_path) = (state.clone(), path.clone());
        let addr = Arc::new(std::sync::OnceLock::new());
        let addr2 = addr.clone();
        let (bound, runtime) = serve(0, move |req| {
            let addr = *addr2.get().expect("address known before the first request");
            handle(req, addr, issuer_path.clone(), state2.clone())
        });
        addr.set(bound).unwrap();
        Idp {
            addr: bound,
            path,
            state,
            _runtime: runtime,
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    pub fn jwks_uri(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn with_key<T>(&self, alg: Alg, f: impl FnOnce(&SigningKey) -> T) -> T {
        let mut state = self.state.lock().unwrap();
        let key = state.keys.entry(alg).or_insert_with(|| new_key(alg, 0));
        f(key)
    }

    /// Signs `claims` with the current key of `alg`.
    pub fn sign(&self, alg: Alg, claims: &Value) -> String {
        let kid = self.with_key(alg, |k| k.kid.clone());
        let header = json!({"alg": name(alg), "typ": "JWT", "kid": kid});
        self.sign_with_header(alg, &header, claims)
    }

    /// Any header (for attacks), signed with the current key of `alg`.
    pub fn sign_with_header(&self, alg: Alg, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64json(header), b64json(claims));
        let sig = self.with_key(alg, |k| k.sign(alg, input.as_bytes()));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// HS256 with `secret` (the "HMAC keyed with the public key" attack).
    pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64json(header), b64json(claims));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Valid claims for `aud` and `sub`, good for five minutes.
    pub fn claims(&self, aud: &str, sub: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({"iss": self.issuer(), "aud": aud, "sub": sub, "exp": now + 300, "iat": now, "nbf": now, "scope": ""})
    }

    pub fn public_jwk(&self, alg: Alg) -> Value {
        self.with_key(alg, |k| k.jwk(alg))
    }

    /// A fresh key for `alg` with a new `kid`; the old one leaves the JWKS.
    pub fn rotate(&self, alg: Alg) {
        let mut state = self.state.lock().unwrap();
        state.rotations += 1;
        let key = new_key(alg, state.rotations);
        state.keys.insert(alg, key);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.lock().unwrap().discovery_fetches
    }

    pub fn introspections(&self) -> usize {
        self.state.lock().unwrap().introspections
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    /// Down: every endpoint answers 503.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn set_jwks_max_age(&self, secs: Option<u64>) {
        self.state.lock().unwrap().max_age = secs;
    }

    /// Overrides the `issuer` the metadata documents state.
    pub fn set_issuer_in_metadata(&self, issuer: Option<String>) {
        self.state.lock().unwrap().metadata_issuer = issuer;
    }

    /// An opaque token and its introspection answer; unknown tokens are inactive.
    pub fn add_opaque(&self, token: &str, answer: Value) {
        self.state
            .lock()
            .unwrap()
            .opaque
            .insert(token.into(), answer);
    }

    /// ("basic" | "post", client_id, client_secret) of the last introspection or token call.
    pub fn last_client_auth(&self) -> Option<(String, String, String)> {
        self.state.lock().unwrap().last_client_auth.clone()
    }

    pub fn last_token_form(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().last_token_form.clone()
    }
}

use super::server::{serve, Body};

fn reply(status: u16, body: Value, max_age: Option<u64>) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(age) = max_age {
        r = r.header("cache-control", format!("max-age={age}"));
    }
    r.body(Full::new(bytes::Bytes::from(body.to_string())).boxed())
        .unwrap()
}

/// Client authentication by HTTP Basic or by form fields.
fn client_auth(
    req_auth: Option<&str>,
    form: &BTreeMap<String, String>,
) -> Option<(String, String, String)> {
    if let Some(basic) = req_auth.and_then(|h| h.strip_prefix("Basic ")) {
        let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some(("basic".into(), id.into(), secret.into()));
    }
    let id = form.get("client_id")?;
    let secret = form.get("client_secret").cloned().unwrap_or_default();
    Some(("post".into(), id.clone(), secret))
}

async fn handle(
    req: Request<Incoming>,
    addr: SocketAddr,
    issuer_path: String,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let origin = format!("http://{addr}");
    let issuer = format!("{origin}{issuer_path}");
    let mut s = state.lock().unwrap();
    if s.down {
        return Ok(reply(
            503,
            json!({"error": "temporarily_unavailable"}),
            None,
        ));
    }
    let discovery = [
        format!("/.well-known/oauth-authorization-server{issuer_path}"),
        format!("/.well-known/openid-configuration{issuer_path}"),
        format!("{issuer_path}/.well-known/openid-configuration"),
    ];
    let response = if discovery.contains(&path) {
        s.discovery_fetches += 1;
        let stated = s.metadata_issuer.clone().unwrap_or(issuer);
        reply(
            200,
            json!({
                "issuer": stated,
                "jwks_uri": format!("{origin}/jwks"),
                "token_endpoint": format!("{origin}/token"),
                "introspection_endpoint": format!("{origin}/introspect"),
                "authorization_endpoint": format!("{origin}/authorize"),
                "grant_types_supported": ["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"],
                "response_types_supported": ["code"],
            }),
            None,
        )
    } else if path == "/jwks" {
        s.jwks_fetches += 1;
        let keys: Vec<Value> = s.keys.iter().map(|(alg, k)| k.jwk(*alg)).collect();
        reply(200, json!({ "keys": keys }), s.max_age)
    } else if path == "/introspect" {
        let Some(client) = client_auth(auth.as_deref(), &form) else {
            return Ok(reply(401, json!({"error": "invalid_client"}), None));
        };
        s.introspections += 1;
        s.last_client_auth = Some(client);
        let token = form.get("token").cloned().unwrap_or_default();
        let answer = s.opaque.get(&token).cloned();
        reply(200, answer.unwrap_or(json!({"active": false})), None)
    } else if path == "/token" {
        let Some(client) = client_auth(auth.as_deref(), &form) else {
            return Ok(reply(401, json!({"error": "invalid_client"}), None));
        };
        s.token_requests += 1;
        s.last_client_auth = Some(client);
        s.last_token_form = form.clone().into_iter().collect();
        let exchange = form.get("grant_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:grant-type:token-exchange");
        match form.get("subject_token") {
            Some(subject) if exchange && form.contains_key("subject_token_type") => {
                let digest = ring::digest::digest(&ring::digest::SHA256, subject.as_bytes());
                let hex: String = digest.as_ref()[..4]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                reply(
                    200,
                    json!({
                        "access_token": format!("exchanged-{}-{hex}", s.token_requests),
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "token_type": "Bearer",
                        "expires_in": 300,
                    }),
                    None,
                )
            }
            _ => reply(400, json!({"error": "unsupported_grant_type"}), None),
        }
    } else {
        reply(404, json!({"error": "not_found"}), None)
    };
    Ok(response)
}
