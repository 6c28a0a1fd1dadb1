//! A real identity provider for tests: signs JWTs with real RSA, EC and Ed25519 keys (ring),
//! serves discovery documents and a JWKS over HTTP, rotates keys, introspects opaque tokens
//! (RFC 7662), exchanges tokens (RFC 8693) and runs the OAuth 2.1 authorization-code flow
//! with PKCE and rotating refresh tokens. It counts what it is asked, and can go down.
//!
//! Endpoints (JSON, on its own runtime, see `server::serve`):
//! - `GET` discovery: `/.well-known/oauth-authorization-server` and
//!   `/.well-known/openid-configuration` for a root issuer; for an issuer with a path, the
//!   RFC 8414 path-insertion location `/.well-known/oauth-authorization-server/<path>`, the
//!   OIDC location `/<path>/.well-known/openid-configuration` (and, as some servers do,
//!   `/.well-known/openid-configuration/<path>`).
//! - `GET /jwks`: the current public keys, with `Cache-Control: max-age` when set.
//! - `GET /authorize`: approves at once, as the login subject, for a client registered with
//!   `add_client`; redirects with `code`, `state` and `iss` (RFC 9207).
//! - `POST /introspect`, `POST /token`: client authentication by HTTP Basic (credentials
//!   form-urlencoded, RFC 6749 §2.3.1) or by `client_id`/`client_secret` form fields. The
//!   token endpoint takes the `authorization_code` and `refresh_token` grants (from
//!   registered clients only) and token exchange (from any authenticated client).
//!
//! Anything else is a 404, a wrong method a 405, and everything is a 503 while down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair};
use serde_json::{json, Value};

use super::server::{serve, Body};

/// The gateway's own list of algorithms: the IdP signs with every one it accepts.
pub use mcpgate::auth::jwk::Alg;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The two RSA fixtures (PKCS#8 PEM); RSA keys alternate between them on rotation.
const RSA_FIXTURES: [&str; 2] = [
    include_str!("../keys/rsa1.pk8.pem"),
    include_str!("../keys/rsa2.pk8.pem"),
];

/// The JOSE name of `alg` ("RS256", "EdDSA"…).
fn name(alg: Alg) -> String {
    format!("{alg:?}")
}

fn rsa_key(generation: usize) -> RsaKeyPair {
    let pem = RSA_FIXTURES[generation % 2];
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(b64).unwrap()).unwrap()
}

fn ec_key(alg: &'static signature::EcdsaSigningAlgorithm) -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
}

fn rsa(generation: usize, padding: &'static dyn RsaEncoding) -> Signer {
    Signer::Rsa(rsa_key(generation), padding)
}

enum Signer {
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One algorithm's current key. `generation` counts its rotations.
struct SigningKey {
    alg: Alg,
    generation: usize,
    kid: String,
    signer: Signer,
}

impl SigningKey {
    fn new(alg: Alg, generation: usize) -> SigningKey {
        let signer = match alg {
            Alg::RS256 => rsa(generation, &signature::RSA_PKCS1_SHA256),
            Alg::RS384 => rsa(generation, &signature::RSA_PKCS1_SHA384),
            Alg::RS512 => rsa(generation, &signature::RSA_PKCS1_SHA512),
            Alg::PS256 => rsa(generation, &signature::RSA_PSS_SHA256),
            Alg::PS384 => rsa(generation, &signature::RSA_PSS_SHA384),
            Alg::PS512 => rsa(generation, &signature::RSA_PSS_SHA512),
            Alg::ES256 => ec_key(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            Alg::ES384 => ec_key(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            Alg::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
                Signer::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
            }
        };
        SigningKey {
            alg,
            generation,
            kid: format!("{}-{generation}", name(alg).to_lowercase()),
            signer,
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(k, padding) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(*padding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// The public key as a JWK, with `kid`, `alg` and `use`.
    fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.signer {
            Signer::Rsa(k, _) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec(k) => {
                // The uncompressed point: 0x04 || x || y.
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                let crv = if len == 32 { "P-256" } else { "P-384" };
                let (x, y) = point[1..].split_at(len);
                json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        };
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(name(self.alg));
        jwk["use"] = json!("sig");
        jwk
    }
}

/// Client authentication as seen: ("basic" | "post", client_id, client_secret).
type ClientAuth = (String, String, String);

/// The subject `/authorize` logs in until `set_login_subject`.
const DEFAULT_SUBJECT: &str = "user-1";

/// `/authorize` parameters that may appear at most once (RFC 6749 §3.1).
const SINGLE: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

/// A client registered with `add_client`.
struct Client {
    secret: String,
    redirect_uri: String,
}

/// What an authorization code or a refresh token stands for.
#[derive(Clone)]
struct Grant {
    client_id: String,
    sub: String,
    aud: String,
    scope: String,
}

/// An authorization code not yet redeemed.
struct PendingCode {
    grant: Grant,
    redirect_uri: String,
    code_challenge: String,
}

#[derive(Default)]
struct State {
    keys: HashMap<Alg, SigningKey>,
    down: bool,
    max_age: Option<u64>,
    metadata_issuer: Option<String>,
    opaque: HashMap<String, Value>,
    jwks_fetches: usize,
    discovery_fetches: usize,
    introspections: usize,
    token_requests: usize,
    last_client_auth: Option<ClientAuth>,
    last_token_form: Vec<(String, String)>,
    clients: HashMap<String, Client>,
    /// `None`: `DEFAULT_SUBJECT`.
    login_subject: Option<String>,
    authorize_error: Option<String>,
    authorize_error_description: Option<String>,
    /// `/authorize` leaves `iss` out of its redirect (its metadata still promises it).
    omit_iss: bool,
    duplicate_keys: bool,
    authorize_requests: usize,
    last_authorize_params: Vec<(String, String)>,
    codes: HashMap<String, PendingCode>,
    refresh_tokens: HashMap<String, Grant>,
    refresh_issued: usize,
}

impl State {
    /// The current key of `alg`, made now if it has none yet.
    fn key(&mut self, alg: Alg) -> &SigningKey {
        self.keys
            .entry(alg)
            .or_insert_with(|| SigningKey::new(alg, 0))
    }

    /// Signs `claims` with the current key of `alg` (header `alg`, `typ: JWT`, `kid`).
    fn sign(&mut self, alg: Alg, claims: &Value) -> String {
        let header = json!({"alg": name(alg), "typ": "JWT", "kid": self.key(alg).kid});
        self.sign_with_header(alg, &header, claims)
    }

    fn sign_with_header(&mut self, alg: Alg, header: &Value, claims: &Value) -> String {
        self.sign_text(alg, header, &claims.to_string())
    }

    fn sign_text(&mut self, alg: Alg, header: &Value, payload: &str) -> String {
        let input = format!("{}.{}", b64json(header), URL_SAFE_NO_PAD.encode(payload));
        let sig = self.key(alg).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// A running test IdP on 127.0.0.1; it stops when dropped.
pub struct Idp {
    addr: SocketAddr,
    /// The issuer's path: empty, or `/realms/test`.
    path: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl Idp {
    /// Starts on a free port; the issuer is `http://127.0.0.1:PORT`. It has an RS256 key
    /// from the start (so the JWKS is never empty); other keys are made on first use.
    pub fn start() -> Idp {
        Self::start_with_path("")
    }

    /// Like `start`, with the issuer `http://127.0.0.1:PORT/<path>` (e.g. "realms/test").
    pub fn start_with_path(path: &str) -> Idp {
        let path = match path.trim_matches('/') {
            "" => String::new(),
            p => format!("/{p}"),
        };
        let state = Arc::new(Mutex::new(State::default()));
        state
            .lock()
            .unwrap()
            .keys
            .insert(Alg::RS256, SigningKey::new(Alg::RS256, 0));
        let (state2, issuer_path) = (state.clone(), path.clone());
        let addr = Arc::new(OnceLock::new());
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

    /// `http://127.0.0.1:PORT` plus the path, if any (no trailing slash).
    pub fn issuer(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// `http://127.0.0.1:PORT/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Signs `claims` with the current key of `alg` (header `alg`, `typ: JWT`, `kid`).
    pub fn sign(&self, alg: Alg, claims: &Value) -> String {
        self.state().sign(alg, claims)
    }

    /// Any header (for attacks: `alg: none`, `jku`, an embedded `jwk`, an unknown `kid`…),
    /// signed with the current key of `alg`.
    pub fn sign_with_header(&self, alg: Alg, header: &Value, claims: &Value) -> String {
        self.state().sign_with_header(alg, header, claims)
    }

    /// A payload given as text (for what a JSON value cannot hold: a name twice), signed with
    /// the current key of `alg` under the usual header.
    pub fn sign_payload_text(&self, alg: Alg, payload: &str) -> String {
        let mut s = self.state();
        let header = json!({"alg": name(alg), "typ": "JWT", "kid": s.key(alg).kid});
        s.sign_text(alg, &header, payload)
    }

    /// Whether the JWKS lists every key twice (one `kid`, two entries).
    pub fn set_duplicate_keys(&self, duplicate: bool) {
        self.state().duplicate_keys = duplicate;
    }

    /// HS256 with `secret` (the "HMAC keyed with the public key" attack).
    pub fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64json(header), b64json(claims));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Valid claims for `aud` and `sub`, good for five minutes, with an empty `scope`.
    pub fn claims(&self, aud: &str, sub: &str) -> Value {
        claims(&self.issuer(), aud, sub)
    }

    /// The current public key of `alg` as a JWK (with `kid`, `alg` and `use: sig`).
    pub fn public_jwk(&self, alg: Alg) -> Value {
        self.state().key(alg).jwk()
    }

    /// A fresh key for `alg` with a new `kid`; the old key leaves the JWKS. RSA keys
    /// alternate between the two fixtures.
    pub fn rotate(&self, alg: Alg) {
        let mut state = self.state();
        let generation = state.keys.get(&alg).map_or(1, |k| k.generation + 1);
        state.keys.insert(alg, SigningKey::new(alg, generation));
    }

    /// JWKS documents served.
    pub fn jwks_fetches(&self) -> usize {
        self.state().jwks_fetches
    }

    /// Discovery documents served (any of the locations).
    pub fn discovery_fetches(&self) -> usize {
        self.state().discovery_fetches
    }

    /// `POST /introspect` calls answered while up (with or without client authentication).
    pub fn introspections(&self) -> usize {
        self.state().introspections
    }

    /// `POST /token` calls answered while up (valid or not).
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// Down: every endpoint answers 503 (and counts nothing).
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// The `Cache-Control: max-age` sent with the JWKS (default: no header).
    pub fn set_jwks_max_age(&self, secs: Option<u64>) {
        self.state().max_age = secs;
    }

    /// Overrides the `issuer` the discovery documents state (`None`: the real one).
    pub fn set_issuer_in_metadata(&self, issuer: Option<String>) {
        self.state().metadata_issuer = issuer;
    }

    /// An opaque token and its RFC 7662 answer; unknown tokens are `{"active": false}`.
    pub fn add_opaque(&self, token: &str, answer: Value) {
        self.state().opaque.insert(token.into(), answer);
    }

    /// ("basic" | "post", client_id, client_secret) of the last introspection or token
    /// call; `None` if it had no client authentication.
    pub fn last_client_auth(&self) -> Option<(String, String, String)> {
        self.state().last_client_auth.clone()
    }

    /// The form fields of the last `POST /token`, in order, repeated fields included.
    pub fn last_token_form(&self) -> Vec<(String, String)> {
        self.state().last_token_form.clone()
    }

    /// Registers (or replaces) a client for the authorization-code flow: `/authorize` wants
    /// exactly this `redirect_uri`, the token endpoint these credentials.
    pub fn add_client(&self, client_id: &str, secret: &str, redirect_uri: &str) {
        let client = Client {
            secret: secret.into(),
            redirect_uri: redirect_uri.into(),
        };
        self.state().clients.insert(client_id.into(), client);
    }

    /// The `sub` that `/authorize` logs in from now on (default: "user-1").
    pub fn set_login_subject(&self, sub: &str) {
        self.state().login_subject = Some(sub.into());
    }

    /// `Some(error)`: `/authorize` redirects with `error` (e.g. "access_denied") instead of
    /// a code; `None`: it approves again.
    pub fn set_authorize_error(&self, error: Option<String>) {
        self.state().authorize_error = error;
    }

    /// The `error_description` sent with the error set by `set_authorize_error`.
    pub fn set_authorize_error_description(&self, description: Option<String>) {
        self.state().authorize_error_description = description;
    }

    /// Whether `/authorize` leaves `iss` out of its redirects (RFC 9207 broken).
    pub fn set_omit_iss(&self, omit: bool) {
        self.state().omit_iss = omit;
    }

    /// `GET /authorize` calls answered while up (valid or not).
    pub fn authorize_requests(&self) -> usize {
        self.state().authorize_requests
    }

    /// The query parameters of the last `GET /authorize`, decoded, in order.
    pub fn last_authorize_params(&self) -> Vec<(String, String)> {
        self.state().last_authorize_params.clone()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for `aud` and `sub`, good for five minutes, with an empty `scope`.
fn claims(issuer: &str, aud: &str, sub: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": aud, "sub": sub,
        "exp": now + 300, "iat": now, "nbf": now, "scope": "",
    })
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn reply(status: u16, body: Value) -> Response<Body> {
    reply_cached(status, body, None)
}

fn reply_cached(status: u16, body: Value, max_age: Option<u64>) -> Response<Body> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(age) = max_age {
        r = r.header("cache-control", format!("max-age={age}"));
    }
    r.body(Full::new(bytes::Bytes::from(body.to_string())).boxed())
        .unwrap()
}

/// The first value of form field `key`.
fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Undoes `application/x-www-form-urlencoded` encoding; `None` if malformed.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// Client authentication by HTTP Basic or by form fields. `Err` if both are used
/// (RFC 6749 §2.3: one method per request) or the Basic header is malformed.
fn client_auth(
    authorization: Option<&str>,
    form: &[(String, String)],
) -> Result<Option<ClientAuth>, ()> {
    let Some(header) = authorization else {
        return Ok(field(form, "client_id").map(|id| {
            let secret = field(form, "client_secret").unwrap_or_default();
            ("post".into(), id.into(), secret.into())
        }));
    };
    if field(form, "client_secret").is_some() {
        return Err(());
    }
    let basic = header.strip_prefix("Basic ").ok_or(())?;
    let decoded = String::from_utf8(STANDARD.decode(basic).map_err(|_| ())?).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    let id = form_decode(id).ok_or(())?;
    let secret = form_decode(secret).ok_or(())?;
    Ok(Some(("basic".into(), id, secret)))
}

/// What a request asks for, once its path is known.
enum Endpoint {
    Discovery,
    Jwks,
    Introspect,
    Token,
    Authorize,
}

async fn handle(
    req: Request<Incoming>,
    addr: SocketAddr,
    issuer_path: String,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    if s.down {
        return Ok(reply(503, json!({"error": "temporarily_unavailable"})));
    }
    let path = parts.uri.path();
    let discovery = [
        format!("/.well-known/oauth-authorization-server{issuer_path}"),
        format!("/.well-known/openid-configuration{issuer_path}"),
        format!("{issuer_path}/.well-known/openid-configuration"),
    ];
    let endpoint = match path {
        "/jwks" => Endpoint::Jwks,
        "/introspect" => Endpoint::Introspect,
        "/token" => Endpoint::Token,
        "/authorize" => Endpoint::Authorize,
        p if discovery.iter().any(|d| d == p) => Endpoint::Discovery,
        _ => return Ok(reply(404, json!({"error": "not_found"}))),
    };
    let method = match endpoint {
        Endpoint::Discovery | Endpoint::Jwks | Endpoint::Authorize => Method::GET,
        Endpoint::Introspect | Endpoint::Token => Method::POST,
    };
    if parts.method != method {
        return Ok(reply(405, json!({"error": "method_not_allowed"})));
    }
    let origin = format!("http://{addr}");
    let real_issuer = format!("{origin}{issuer_path}");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());

    let response = match endpoint {
        Endpoint::Discovery => {
            s.discovery_fetches += 1;
            let issuer = s.metadata_issuer.clone().unwrap_or(real_issuer);
            reply(
                200,
                json!({
                    "issuer": issuer,
                    "jwks_uri": format!("{origin}/jwks"),
                    "token_endpoint": format!("{origin}/token"),
                    "introspection_endpoint": format!("{origin}/introspect"),
                    "authorization_endpoint": format!("{origin}/authorize"),
                    "grant_types_supported":
                        ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": true,
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_basic", "client_secret_post"],
                    "scopes_supported": ["openid", "email", "offline_access"],
                    "service_documentation": format!("{origin}/docs"),
                    "userinfo_endpoint": format!("{origin}/userinfo"),
                }),
            )
        }
        Endpoint::Jwks => {
            s.jwks_fetches += 1;
            let copies = if s.duplicate_keys { 2 } else { 1 };
            let keys: Vec<Value> = s
                .keys
                .values()
                .flat_map(|k| std::iter::repeat_n(k.jwk(), copies))
                .collect();
            reply_cached(200, json!({ "keys": keys }), s.max_age)
        }
        Endpoint::Introspect | Endpoint::Token => {
            let token_call = matches!(endpoint, Endpoint::Token);
            if token_call {
                s.token_requests += 1;
                s.last_token_form = form.clone();
            } else {
                s.introspections += 1;
            }
            let Ok(client) = client_auth(authorization, &form) else {
                s.last_client_auth = None;
                return Ok(reply(400, json!({"error": "invalid_request"})));
            };
            s.last_client_auth = client.clone();
            match client {
                None => reply(401, json!({"error": "invalid_client"})),
                Some(client) if token_call => match field(&form, "grant_type") {
                    Some("authorization_code") => code_grant(&mut s, &client, &form, &real_issuer),
                    Some("refresh_token") => refresh_grant(&mut s, &client, &form, &real_issuer),
                    _ => exchange(&form, s.token_requests),
                },
                Some(_) => {
                    let token = field(&form, "token").unwrap_or_default();
                    let answer = s.opaque.get(token).cloned();
                    reply(200, answer.unwrap_or(json!({"active": false})))
                }
            }
        }
        Endpoint::Authorize => {
            let query = parts.uri.query().unwrap_or_default();
            let params = url::form_urlencoded::parse(query.as_bytes()).into_owned();
            authorize(&mut s, params.collect(), &real_issuer)
        }
    };
    Ok(response)
}

fn error(status: u16, error: &str) -> Response<Body> {
    reply(status, json!({ "error": error }))
}

/// 16 random bytes, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).unwrap();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `GET /authorize`: 400 `invalid_client` (no redirect) unless `client_id` and
/// `redirect_uri` are a registered pair; 400 `invalid_request` without `response_type=code`
/// and an S256 `code_challenge`, or with a parameter of `SINGLE` repeated. Otherwise a 302
/// to `redirect_uri` with a fresh one-time `code` (or the error set), `state` if given and
/// `iss`. The token's `aud` is `audience`, else `resource`, else the client's id.
fn authorize(s: &mut State, params: Vec<(String, String)>, issuer: &str) -> Response<Body> {
    s.authorize_requests += 1;
    s.last_authorize_params = params.clone();
    let param = |key| field(&params, key);
    let (Some(client_id), Some(redirect_uri)) = (param("client_id"), param("redirect_uri")) else {
        return error(400, "invalid_client");
    };
    let registered = s.clients.get(client_id);
    if registered.is_none_or(|c| c.redirect_uri != redirect_uri) {
        return error(400, "invalid_client");
    }
    let repeated = SINGLE
        .iter()
        .any(|key| params.iter().filter(|(k, _)| k == key).count() > 1);
    let code_challenge = param("code_challenge").unwrap_or_default();
    if repeated
        || param("response_type") != Some("code")
        || param("code_challenge_method") != Some("S256")
        || code_challenge.is_empty()
    {
        return error(400, "invalid_request");
    }
    let Ok(mut location) = url::Url::parse(redirect_uri) else {
        return error(400, "invalid_request");
    };
    {
        let mut query = location.query_pairs_mut();
        match &s.authorize_error {
            Some(e) => {
                if let Some(d) = &s.authorize_error_description {
                    query.append_pair("error_description", d);
                }
                query.append_pair("error", e)
            }
            None => {
                let code = random_token();
                let grant = Grant {
                    client_id: client_id.into(),
                    sub: (s.login_subject.as_deref())
                        .unwrap_or(DEFAULT_SUBJECT)
                        .into(),
                    aud: (param("audience").or(param("resource")))
                        .unwrap_or(client_id)
                        .into(),
                    scope: param("scope").unwrap_or_default().into(),
                };
                let pending = PendingCode {
                    grant,
                    redirect_uri: redirect_uri.into(),
                    code_challenge: code_challenge.into(),
                };
                s.codes.insert(code.clone(), pending);
                query.append_pair("code", &code)
            }
        };
        if let Some(state) = param("state") {
            query.append_pair("state", state);
        }
        if !s.omit_iss {
            query.append_pair("iss", issuer);
        }
    }
    Response::builder()
        .status(302)
        .header("location", location.as_str())
        .body(Full::new(bytes::Bytes::new()).boxed())
        .unwrap_or_else(|_| error(400, "invalid_request"))
}

/// The client's id if `client` authenticates a client registered with `add_client` (and a
/// `client_id` form field, if any, names the same client).
fn registered<'a>(s: &State, client: &'a ClientAuth, form: &[(String, String)]) -> Option<&'a str> {
    let (_, id, secret) = client;
    let known = s.clients.get(id).is_some_and(|c| c.secret == *secret);
    let same = field(form, "client_id").is_none_or(|f| f == id);
    (known && same).then_some(id.as_str())
}

/// RFC 7636 §4.1: 43 to 128 characters, unreserved only.
fn verifier_syntax_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The `authorization_code` grant: 401 `invalid_client` unless a registered client
/// authenticates; 400 `invalid_grant` unless the code was issued to it, is unused, and comes
/// with the same `redirect_uri` and a well-formed `code_verifier` matching the challenge.
/// Codes are one-time: its client's first attempt spends a code, whatever the outcome.
fn code_grant(
    s: &mut State,
    client: &ClientAuth,
    form: &[(String, String)],
    issuer: &str,
) -> Response<Body> {
    let Some(client_id) = registered(s, client, form) else {
        return error(401, "invalid_client");
    };
    let code = field(form, "code").unwrap_or_default();
    let pending = match s.codes.remove(code) {
        Some(p) if p.grant.client_id == client_id => p,
        Some(p) => {
            // Another client's code: refused, and not spent.
            s.codes.insert(code.into(), p);
            return error(400, "invalid_grant");
        }
        None => return error(400, "invalid_grant"),
    };
    let verifier = field(form, "code_verifier").unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    if field(form, "redirect_uri") != Some(pending.redirect_uri.as_str())
        || !verifier_syntax_ok(verifier)
        || URL_SAFE_NO_PAD.encode(digest) != pending.code_challenge
    {
        return error(400, "invalid_grant");
    }
    issue(s, pending.grant, issuer)
}

/// The `refresh_token` grant: 401 `invalid_client` unless a registered client
/// authenticates; 400 `invalid_grant` unless the token was issued to it and is unused.
/// Refresh tokens rotate: each use spends the token and issues the next.
fn refresh_grant(
    s: &mut State,
    client: &ClientAuth,
    form: &[(String, String)],
    issuer: &str,
) -> Response<Body> {
    let Some(client_id) = registered(s, client, form) else {
        return error(401, "invalid_client");
    };
    let token = field(form, "refresh_token").unwrap_or_default();
    match s.refresh_tokens.remove(token) {
        Some(grant) if grant.client_id == client_id => issue(s, grant, issuer),
        Some(grant) => {
            // Another client's token: refused, and not spent.
            s.refresh_tokens.insert(token.into(), grant);
            error(400, "invalid_grant")
        }
        None => error(400, "invalid_grant"),
    }
}

/// A fresh RS256 access token for `grant`, good for five minutes, and the next refresh token
/// (`rt-<n>`).
fn issue(s: &mut State, grant: Grant, issuer: &str) -> Response<Body> {
    let mut claims = claims(issuer, &grant.aud, &grant.sub);
    claims["scope"] = json!(grant.scope);
    claims["email"] = json!(format!("{}@example.test", grant.sub));
    claims["email_verified"] = json!(true);
    let access_token = s.sign(Alg::RS256, &claims);
    s.refresh_issued += 1;
    let refresh_token = format!("rt-{}", s.refresh_issued);
    let scope = grant.scope.clone();
    s.refresh_tokens.insert(refresh_token.clone(), grant);
    reply(
        200,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": refresh_token,
            "scope": scope,
        }),
    )
}

/// An RFC 8693 token exchange: `exchanged-<n>-<first 8 hex digits of sha256(subject)>`;
/// 400 `unsupported_grant_type` for another grant, `invalid_request` without a subject.
fn exchange(form: &[(String, String)], n: usize) -> Response<Body> {
    if field(form, "grant_type") != Some(TOKEN_EXCHANGE) {
        return reply(400, json!({"error": "unsupported_grant_type"}));
    }
    match (
        field(form, "subject_token"),
        field(form, "subject_token_type"),
    ) {
        (Some(subject), Some(_)) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, subject.as_bytes());
            let hex: String = digest.as_ref()[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            reply(
                200,
                json!({
                    "access_token": format!("exchanged-{n}-{hex}"),
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 300,
                }),
            )
        }
        _ => reply(400, json!({"error": "invalid_request"})),
    }
}
