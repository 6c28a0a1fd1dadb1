//! Broker mode: the gateway is the route's OAuth authorization server, a facade over the
//! IdP. Clients register here (a sealed record, no state), authorize here (a consent page),
//! and get codes and tokens here; the gateway goes to the IdP as its one static client, with
//! its own callback, PKCE pair and sealed `state`. Nothing is stored but a bounded set of
//! used codes (replay protection on this process).

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, COOKIE};
use http::{HeaderName, HeaderValue, Method};
use log::warn;
use pingora::prelude::*;
use pingora::proxy::Session;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::issued::Revocations;
use super::metadata::resource_url;
use super::seal::{Purpose, Sealer};
use super::service::Service;
use super::{cimd, consent};
use crate::auth::cache::{digest, SlotCache};
use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::auth::unix_now;
use crate::config::{Auth, BearerAuth, ConsentSettings, IssuedAuth, OAuthMode, Route, Strategy};
use crate::respond;

/// Form and JSON bodies larger than this get 413.
pub(super) const MAX_BODY: usize = 16 * 1024;
/// Lifetimes of what the gateway seals, in seconds.
const CONSENT_TTL: u64 = 600;
const STATE_TTL: u64 = 600;
const CODE_TTL: u64 = 60;
/// Approvals one browser's cookie remembers.
const MAX_APPROVALS: usize = 20;
/// Used codes remembered (each until it would have expired anyway).
const USED_CODES: usize = 65_536;

/// A route's facade, compiled once per snapshot.
pub struct Facade {
    /// The route's issuer on the gateway: its resource URL.
    pub issuer: String,
    pub(super) endpoint_base: String,
    callback: String,
    /// The gateway's own RFC 8414 fields; the IdP's descriptive ones are merged in.
    metadata: Map<String, Value>,
    /// The merged document, rendered again only when the IdP's metadata was rediscovered.
    rendered: ArcSwapOption<Rendered>,
    /// The cookie names: `__Host-` and `Secure` when the gateway is reached over https. One
    /// binds a consent form to its browser, the other remembers approvals.
    cookie: &'static str,
    approvals_cookie: &'static str,
    /// Per route, so that sign-ins on two routes in one browser do not collide.
    state_cookie: String,
    secure: bool,
    pub(super) route: String,
    pub(super) mode: Mode,
    /// What stands for the IdP's metadata when there is no IdP: rendered once, like any.
    no_idp: Arc<Map<String, Value>>,
}

struct Rendered {
    from: Arc<Map<String, Value>>,
    document: Bytes,
}

/// A client registration, sealed into its `client_id`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Client {
    /// The route it registered on: a client of one route is nobody on another.
    r: String,
    /// Redirect URIs, matched exactly.
    u: Vec<String>,
    pub(super) n: Option<String>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    m: String,
}

impl Client {
    pub(crate) fn redirect_uris(&self) -> &[String] {
        &self.u
    }
}

/// What the client asked `/authorize` for, carried through consent, the IdP and the code.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct AuthRequest {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    code_challenge: String,
    pub(super) state: Option<String>,
    pub(super) scope: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Consent {
    q: AuthRequest,
    /// Must equal the consent cookie: the form was posted by the browser that got it.
    csrf: String,
    exp: u64,
}

#[derive(Serialize, Deserialize)]
struct BrokerState {
    q: AuthRequest,
    route: String,
    /// The gateway's PKCE verifier for the IdP.
    verifier: String,
    /// Must equal the state cookie: the sign-in comes back to the browser that started it
    /// (else a victim could be made to finish an attacker's flow with the victim's account).
    browser: String,
    exp: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Code {
    q: AuthRequest,
    route: String,
    /// The IdP's token answer.
    tokens: Map<String, Value>,
    exp: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Refresh {
    pub(super) client_id: String,
    pub(super) route: String,
    /// The IdP's or the downstream service's refresh token, or a passthrough key.
    pub(super) token: String,
    /// Set on routes whose tokens the gateway issues: the grant, and the token's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) grant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) exp: Option<u64>,
}

/// Who is behind a facade, and so how it authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The IdP, with the gateway as its one client (consent here, sign-in there).
    Broker,
    /// The IdP, with clients sent straight to it (`oauth: redirect`).
    Redirect,
    /// Nobody: the user types the upstream's key into the gateway's page.
    Passthrough,
    /// A downstream OAuth service the gateway is a client of.
    Chained,
}

impl Facade {
    /// The route's facade, if the gateway is its authorization server.
    pub fn for_route(public_url: &str, route: &Route) -> Option<Facade> {
        let (mode, scopes) = match &route.auth {
            Auth::Bearer(b) => match b.oauth {
                OAuthMode::Direct => return None,
                OAuthMode::Broker => (Mode::Broker, b.scopes.as_slice()),
                OAuthMode::Redirect => (Mode::Redirect, b.scopes.as_slice()),
            },
            Auth::Issued(i) => match i.strategy {
                Strategy::Passthrough(_) => (Mode::Passthrough, &[][..]),
                Strategy::Chained { .. } => (Mode::Chained, &[][..]),
            },
            Auth::None => return None,
        };
        let issuer = resource_url(public_url, route);
        let base = format!("{issuer}/oauth");
        let redirect = mode == Mode::Redirect;
        let auth_methods = if redirect {
            json!(["none"])
        } else {
            json!(["none", "client_secret_post", "client_secret_basic"])
        };
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "registration_endpoint": format!("{base}/register"),
            "revocation_endpoint": format!("{base}/revoke"),
            "introspection_endpoint": format!("{base}/introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "scopes_supported": scopes,
            // In redirect mode the IdP answers the client itself, with its own `iss`.
            "authorization_response_iss_parameter_supported": !redirect,
            "client_id_metadata_document_supported": !redirect,
        });
        let secure = public_url.starts_with("https://");
        Some(Facade {
            callback: format!("{base}/callback"),
            endpoint_base: base,
            metadata: match metadata {
                Value::Object(fields) => fields,
                _ => unreachable!("json! of an object"),
            },
            rendered: ArcSwapOption::empty(),
            no_idp: Arc::default(),
            cookie: if secure {
                "__Host-mcpgate-consent"
            } else {
                "mcpgate-consent"
            },
            approvals_cookie: if secure {
                "__Host-mcpgate-approved"
            } else {
                "mcpgate-approved"
            },
            state_cookie: format!(
                "{}mcpgate-state-{}",
                if secure { "__Host-" } else { "" },
                &URL_SAFE_NO_PAD.encode(digest(issuer.as_bytes()))[..8]
            ),
            issuer,
            secure,
            route: route.name.clone(),
            mode,
        })
    }
}

impl Facade {
    /// The RFC 8414 document: the gateway's endpoints and capabilities, with what the IdP's
    /// own (background-fetched) metadata says about scopes, claims, grants and policies.
    pub fn metadata(&self, idp: Option<&Provider>) -> Bytes {
        let described = idp.map_or_else(|| self.no_idp.clone(), Provider::described);
        if let Some(r) = &*self.rendered.load() {
            if Arc::ptr_eq(&r.from, &described) {
                return r.document.clone();
            }
        }
        let document = Bytes::from(Value::Object(self.merge(&described)).to_string());
        self.rendered.store(Some(Arc::new(Rendered {
            from: described,
            document: document.clone(),
        })));
        document
    }

    fn merge(&self, idp: &Map<String, Value>) -> Map<String, Value> {
        let mut document = self.metadata.clone();
        for (key, value) in idp {
            match key.as_str() {
                // The route's scopes first, then those the IdP offers.
                "scopes_supported" => {
                    let Some(Value::Array(ours)) = document.get_mut(key) else {
                        continue;
                    };
                    for scope in value.as_array().into_iter().flatten() {
                        if !ours.contains(scope) {
                            ours.push(scope.clone());
                        }
                    }
                }
                // Only the grants both sides support (a code is always exchanged).
                "grant_types_supported" => {
                    let Some(Value::Array(ours)) = document.get_mut(key) else {
                        continue;
                    };
                    let theirs = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
                    ours.retain(|g| g == "authorization_code" || theirs.contains(g));
                }
                _ => {
                    document.insert(key.clone(), value.clone());
                }
            }
        }
        document
    }
}

/// Per-process state of all facades: codes (and sign-in states) already redeemed, with the
/// grant a code's redemption started on an issued route, so that a replay can end it.
pub struct UsedCodes(SlotCache<Option<String>>);

impl Default for UsedCodes {
    fn default() -> Self {
        UsedCodes(SlotCache::new(USED_CODES))
    }
}

/// The endpoint a path under the route names, if the facade answers it.
pub fn endpoint(rest: &str) -> Option<&'static str> {
    Some(match rest {
        "/oauth/register" => "register",
        "/oauth/authorize" => "authorize",
        "/oauth/callback" => "callback",
        "/oauth/token" => "token",
        "/oauth/revoke" => "revoke",
        "/oauth/introspect" => "introspect",
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
            "metadata"
        }
        _ => return None,
    })
}

/// What stands behind a facade.
pub enum Behind<'a> {
    /// The route's IdP (broker and redirect modes).
    Idp {
        provider: &'a Arc<Provider>,
        auth: &'a BearerAuth,
    },
    /// Nobody: the gateway issues the tokens (passthrough; chained, with its service).
    Issued {
        auth: &'a IssuedAuth,
        service: Option<&'a Service>,
        revocations: &'a Revocations,
    },
}

/// Everything a facade request needs.
pub struct Broker<'a> {
    pub facade: &'a Facade,
    pub behind: Behind<'a>,
    pub sealer: &'a Sealer,
    pub used_codes: &'a UsedCodes,
    pub documents: &'a cimd::Fetcher,
}

impl Broker<'_> {
    pub async fn serve(&self, session: &mut Session, endpoint: &str) -> Result<bool> {
        let method = session.req_header().method.clone();
        if method == Method::OPTIONS && endpoint != "authorize" {
            let headers = cors_open();
            return respond::send(session, 204, Bytes::new(), &headers).await;
        }
        let provider = match self.behind {
            Behind::Idp { provider, .. } => Some(provider),
            Behind::Issued { .. } => None,
        };
        // What every mode answers alike.
        let which = match (endpoint, &method) {
            ("metadata", &Method::GET) => {
                let document = self.facade.metadata(provider.map(|p| &**p));
                return respond::document(session, document).await;
            }
            ("revoke", &Method::POST) => Some(IdpEndpoint::Revocation),
            ("introspect", &Method::POST) => Some(IdpEndpoint::Introspection),
            _ => None,
        };
        match (which, &self.behind) {
            (Some(which), Behind::Idp { provider, .. }) => {
                return self.revoke_or_introspect(session, provider, which).await
            }
            (
                Some(which),
                Behind::Issued {
                    auth, revocations, ..
                },
            ) => {
                return self
                    .revoke_or_introspect_issued(session, auth, revocations, which)
                    .await
            }
            _ => {}
        }
        if let (Mode::Redirect, Some(provider)) = (self.facade.mode, provider) {
            return self
                .serve_redirect_mode(session, endpoint, method, provider)
                .await;
        }
        match (endpoint, method) {
            ("register", Method::POST) => self.register(session).await,
            ("authorize", Method::GET) => self.authorize(session).await,
            ("authorize", Method::POST) => self.decide(session).await,
            ("callback", Method::GET) => self.callback(session).await,
            ("token", Method::POST) => self.token(session).await,
            _ => {
                let body = error_json!("invalid_request", "method not allowed here");
                respond::error(session, 405, body).await
            }
        }
    }

    /// RFC 7591, stateless: the `client_id` is the sealed registration. Any scope and auth
    /// method a client sends is accepted; `redirect_uris` are echoed.
    async fn register(&self, session: &mut Session) -> Result<bool> {
        let Some(mut meta) = read_registration(session).await? else {
            return Ok(true);
        };
        let client = match registered_client(&self.facade.route, &meta) {
            Ok(client) => client,
            Err((error, description)) => {
                if error == "invalid_redirect_uri" {
                    warn!(
                        "route {}: registration refused a redirect URI",
                        self.facade.route
                    );
                }
                return json_error(session, 400, error, description).await;
            }
        };
        let method = client.m.clone();
        let client_id = self.sealer.seal_deterministic(Purpose::Client, &client);
        meta.insert("client_id".into(), client_id.clone().into());
        meta.insert("client_id_issued_at".into(), unix_now().into());
        meta.insert("token_endpoint_auth_method".into(), method.clone().into());
        meta.entry("grant_types")
            .or_insert(json!(["authorization_code", "refresh_token"]));
        meta.entry("response_types").or_insert(json!(["code"]));
        if method != "none" {
            meta.insert(
                "client_secret".into(),
                self.sealer.derive_secret(&client_id).into(),
            );
            meta.insert("client_secret_expires_at".into(), 0.into());
        }
        let body = Bytes::from(Value::Object(meta).to_string());
        respond::send(session, 201, body, &cors_open()).await
    }

    /// Checks the request; then the consent page. Until the client and its redirect URI are
    /// known good, errors are shown, never redirected.
    async fn authorize(&self, session: &mut Session) -> Result<bool> {
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let params = Params::parse(query.as_bytes());
        let Some(client_id) = params.get("client_id") else {
            return self
                .error_page(session, "The request names no client.")
                .await;
        };
        let Some(client) = self.client(client_id).await else {
            return self
                .error_page(
                    session,
                    "This client is not registered here, or its metadata document cannot be used.",
                )
                .await;
        };
        let Some(redirect_uri) = params
            .get("redirect_uri")
            .filter(|u| client.u.iter().any(|r| r == u))
        else {
            return self
                .error_page(
                    session,
                    "The redirect URI is not one this client registered.",
                )
                .await;
        };
        let state = params.get("state");
        let fail = |code: &str, description: &str| {
            self.client_redirect(
                redirect_uri,
                &[("error", code), ("error_description", description)],
                state,
            )
        };
        if params.get("response_type") != Some("code") {
            return respond::redirect(
                session,
                &fail("unsupported_response_type", "only response_type=code"),
            )
            .await;
        }
        let challenge = params
            .get("code_challenge")
            .filter(|c| is_s256_challenge(c));
        let Some(challenge) =
            challenge.filter(|_| params.get("code_challenge_method") == Some("S256"))
        else {
            return respond::redirect(
                session,
                &fail(
                    "invalid_request",
                    "PKCE with code_challenge_method=S256 is required",
                ),
            )
            .await;
        };
        if let Some(resource) = params.get("resource") {
            if resource.trim_end_matches('/') != self.facade.issuer {
                return respond::redirect(
                    session,
                    &fail("invalid_target", "the resource is not this server"),
                )
                .await;
            }
        }
        let request = AuthRequest {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: challenge.to_string(),
            state: state.map(String::from),
            scope: params.get("scope").map(String::from),
        };
        if self.facade.mode == Mode::Passthrough {
            return self
                .key_page(session, client.n.as_deref(), request, None)
                .await;
        }
        let settings = self.consent_settings();
        let trusted = settings
            .trusted_redirect_uris
            .iter()
            .any(|u| u == redirect_uri);
        let approvals = cookie_value(session.req_header(), self.facade.approvals_cookie)
            .map(|c| self.approvals(c))
            .unwrap_or_default();
        let key = self.approval_key(client_id);
        if trusted || approvals.iter().any(|(k, _)| *k == key) {
            return self.proceed(session, request, None).await;
        }
        let (consent, csrf) = self.seal_consent(&request);
        let page = consent::page(&consent::Details {
            client_name: client.n.as_deref(),
            redirect_uri,
            scope: request.scope.as_deref(),
            resource: &self.facade.issuer,
            action: &format!("{}/authorize", self.facade.endpoint_base),
            consent: &consent,
            key: None,
        });
        respond::html(session, 200, page, Some(&self.consent_cookie(&csrf))).await
    }

    /// Binds a consent form to the browser it is shown to.
    pub(super) fn consent_cookie(&self, csrf: &str) -> String {
        format!(
            "{}={csrf}; Path=/; HttpOnly; SameSite=Lax; Max-Age={CONSENT_TTL}{}",
            self.facade.cookie,
            if self.facade.secure { "; Secure" } else { "" }
        )
    }

    /// A consent form sealed for `request`, with the CSRF token its cookie must carry.
    pub(super) fn seal_consent(&self, request: &AuthRequest) -> (String, String) {
        let csrf = random_token();
        let consent = self.sealer.seal(
            Purpose::Consent,
            &Consent {
                q: request.clone(),
                csrf: csrf.clone(),
                exp: unix_now() + CONSENT_TTL,
            },
        );
        (consent, csrf)
    }

    fn consent_settings(&self) -> &ConsentSettings {
        match &self.behind {
            Behind::Idp { auth, .. } => &auth.consent,
            Behind::Issued { auth, .. } => &auth.consent,
        }
    }

    /// The consent form's answer: deny goes back to the client, approve on to the IdP.
    async fn decide(&self, session: &mut Session) -> Result<bool> {
        let cookie = cookie_value(session.req_header(), self.facade.cookie).map(str::to_string);
        let approvals_before = cookie_value(session.req_header(), self.facade.approvals_cookie)
            .map(|c| self.approvals(c))
            .unwrap_or_default();
        let Some(body) = respond::read_body(session, MAX_BODY).await? else {
            return self.error_page(session, "The form is too large.").await;
        };
        let form = Params::parse(&body);
        let consent: Option<Consent> = form
            .get("consent")
            .and_then(|c| self.sealer.open(Purpose::Consent, c));
        let Some(consent) = consent.filter(|c| c.exp > unix_now()) else {
            return self.error_page(session, "This consent form is invalid or has expired. Start again from your application.").await;
        };
        let csrf_ok =
            cookie.is_some_and(|c| constant_time_eq(c.as_bytes(), consent.csrf.as_bytes()));
        if !csrf_ok {
            return self
                .error_page(
                    session,
                    "This consent form was not sent by the browser it was shown to.",
                )
                .await;
        }
        let q = consent.q;
        if form.get("decision") != Some("approve") {
            let to = self.client_redirect(
                &q.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user declined"),
                ],
                q.state.as_deref(),
            );
            return respond::redirect(session, &to).await;
        }
        if self.facade.mode == Mode::Passthrough {
            return self.accept_key(session, q, &form).await;
        }
        let remember = self.consent_settings().remember.as_secs();
        let cookie = (remember > 0).then(|| {
            let mut approvals = approvals_before;
            approvals.retain(|(key, _)| *key != self.approval_key(&q.client_id));
            approvals.push((self.approval_key(&q.client_id), unix_now() + remember));
            // The newest approvals, a bounded few.
            let keep = approvals.len().saturating_sub(MAX_APPROVALS);
            approvals.drain(..keep);
            let sealed = self.sealer.seal(Purpose::Approvals, &approvals);
            format!(
                "{}={sealed}; Path=/; HttpOnly; SameSite=Lax; Max-Age={remember}{}",
                self.facade.approvals_cookie,
                if self.facade.secure { "; Secure" } else { "" }
            )
        });
        self.proceed(session, q, cookie).await
    }

    /// After consent: on to the IdP or the downstream service, as the gateway's own client.
    async fn proceed(
        &self,
        session: &mut Session,
        q: AuthRequest,
        approvals: Option<String>,
    ) -> Result<bool> {
        let sign_in = match self.behind {
            Behind::Idp { provider, auth } => self.to_idp(provider, auth, q),
            Behind::Issued {
                service: Some(service),
                ..
            } => {
                let (state, challenge, cookie) = self.seal_state(q);
                let challenge = service.config.pkce.then_some(challenge.as_str());
                Ok((
                    service.authorize_url(&self.facade.callback, &state, challenge),
                    cookie,
                ))
            }
            Behind::Issued { service: None, .. } => Err("This route signs nobody in elsewhere."),
        };
        match sign_in {
            Ok((location, state_cookie)) => {
                let cookies: Vec<&str> = approvals
                    .as_deref()
                    .into_iter()
                    .chain([state_cookie.as_str()])
                    .collect();
                respond::redirect_with_cookies(session, &location, &cookies).await
            }
            Err(message) => self.error_page(session, message).await,
        }
    }

    /// The `state` for a sign-in elsewhere: the client's request, the gateway's PKCE
    /// verifier and a browser binding, sealed. Returns it, the verifier's challenge and the
    /// cookie that binds the browser.
    fn seal_state(&self, q: AuthRequest) -> (String, String, String) {
        let verifier = random_token();
        let challenge = s256(&verifier);
        let browser = random_token();
        let cookie = format!(
            "{}={browser}; Path=/; HttpOnly; SameSite=Lax; Max-Age={STATE_TTL}{}",
            self.facade.state_cookie,
            if self.facade.secure { "; Secure" } else { "" }
        );
        let state = self.sealer.seal(
            Purpose::State,
            &BrokerState {
                q,
                route: self.facade.route.clone(),
                verifier,
                browser,
                exp: unix_now() + STATE_TTL,
            },
        );
        (state, challenge, cookie)
    }

    /// Sends the user to the IdP as the gateway's own client, with a sealed `state` that
    /// carries the client's request and the gateway's PKCE verifier.
    /// Where the IdP signs the user in, and the state cookie.
    fn to_idp(
        &self,
        provider: &Provider,
        auth: &BearerAuth,
        q: AuthRequest,
    ) -> Result<(String, String), &'static str> {
        let Some(authorize) = provider.authorization_endpoint() else {
            return Err("The identity provider is not reachable yet. Try again shortly.");
        };
        let requested = q.scope.clone().unwrap_or_else(|| auth.scopes.join(" "));
        let scope = provider.config.scopes_for_idp(&requested);
        let (state, challenge, cookie) = self.seal_state(q);
        let location = self.idp_authorize_url(provider, &authorize, &state, &challenge, &scope);
        Ok((location, cookie))
    }

    /// The approvals a browser's cookie remembers, still valid: (route and client digest,
    /// until).
    fn approvals(&self, cookie: &str) -> Vec<(String, u64)> {
        let now = unix_now();
        let mut list: Vec<(String, u64)> = self
            .sealer
            .open(Purpose::Approvals, cookie)
            .unwrap_or_default();
        list.retain(|(_, until)| *until > now);
        list
    }

    /// What an approval of `client_id` on this route is remembered as (a digest: the cookie
    /// need not carry whole registrations).
    fn approval_key(&self, client_id: &str) -> String {
        let d = digest(format!("{}\n{client_id}", self.facade.route).as_bytes());
        URL_SAFE_NO_PAD.encode(&d[..16])
    }

    /// The IdP's authorize URL for the gateway's own client.
    fn idp_authorize_url(
        &self,
        provider: &Provider,
        authorize: &str,
        state: &str,
        challenge: &str,
        scope: &str,
    ) -> String {
        let c = &provider.config;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", "code");
        query.append_pair("client_id", c.client_id.as_deref().unwrap_or_default());
        query.append_pair("redirect_uri", &self.facade.callback);
        query.append_pair("state", state);
        query.append_pair("code_challenge", challenge);
        query.append_pair("code_challenge_method", "S256");
        if !scope.is_empty() {
            query.append_pair("scope", scope);
        }
        for (name, value) in [("audience", &c.audience), ("resource", &c.resource)] {
            if let Some(v) = value {
                query.append_pair(name, v);
            }
        }
        let separator = if authorize.contains('?') { '&' } else { '?' };
        format!("{authorize}{separator}{}", query.finish())
    }

    /// The IdP sends the user back: check its `state` and `iss`, redeem its code with the
    /// gateway's credentials, and send the client its own one-time code.
    async fn callback(&self, session: &mut Session) -> Result<bool> {
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let params = Params::parse(query.as_bytes());
        let sealed_state = params.get("state").unwrap_or_default();
        let state: Option<BrokerState> = self.sealer.open(Purpose::State, sealed_state);
        let now = unix_now();
        let Some(state) = state.filter(|s| s.exp > now && s.route == self.facade.route) else {
            return self.error_page(session, "The sign-in came back with an invalid or expired state. Start again from your application.").await;
        };
        let same_browser = cookie_value(session.req_header(), &self.facade.state_cookie)
            .is_some_and(|c| constant_time_eq(c.as_bytes(), state.browser.as_bytes()));
        if !same_browser {
            warn!(
                "route {}: a sign-in came back to another browser",
                self.facade.route
            );
            return self.error_page(session, "This sign-in was not started in this browser. Start again from your application.").await;
        }
        let used = digest(sealed_state.as_bytes());
        if self.used_codes.0.get(&used, now).is_some() {
            return self
                .error_page(
                    session,
                    "This sign-in has already been completed. Start again from your application.",
                )
                .await;
        }
        self.used_codes.0.insert(used, state.exp, now, None);
        let q = &state.q;
        let back = |pairs: &[(&str, &str)]| {
            self.client_redirect(&q.redirect_uri, pairs, q.state.as_deref())
        };
        // RFC 9207: a response from another issuer is a mix-up attack, and so is one
        // without `iss` from an IdP that says it always sends it.
        let mixed_up = match self.behind {
            Behind::Idp { provider, .. } => match params.get("iss") {
                Some(iss) => iss != provider.config.issuer,
                None => provider.sends_iss(),
            },
            Behind::Issued { .. } => false,
        };
        if mixed_up {
            warn!("route {}: callback from another issuer", self.facade.route);
            return respond::redirect(
                session,
                &back(&[
                    ("error", "access_denied"),
                    (
                        "error_description",
                        "the identity provider's answer came from another issuer",
                    ),
                ]),
            )
            .await;
        }
        if let Some(error) = params.get("error") {
            let code = match error {
                "access_denied" | "invalid_scope" | "temporarily_unavailable" | "server_error" => {
                    error
                }
                _ => "access_denied",
            };
            return respond::redirect(
                session,
                &back(&[
                    ("error", code),
                    (
                        "error_description",
                        "the identity provider refused the sign-in",
                    ),
                ]),
            )
            .await;
        }
        let Some(code) = params.get("code") else {
            return respond::redirect(
                session,
                &back(&[
                    ("error", "server_error"),
                    ("error_description", "the identity provider sent no code"),
                ]),
            )
            .await;
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.facade.callback.as_str()),
        ];
        let answer = match self.behind {
            Behind::Idp { provider, .. } => {
                form.push(("code_verifier", state.verifier.as_str()));
                if let Some(resource) = &provider.config.resource {
                    form.push(("resource", resource));
                }
                provider.token_grant(&form).await
            }
            Behind::Issued {
                service: Some(service),
                ..
            } => {
                if service.config.pkce {
                    form.push(("code_verifier", state.verifier.as_str()));
                }
                service.grant(&form).await
            }
            Behind::Issued { service: None, .. } => Err(IdpError::Failed("no service".into())),
        };
        let tokens = match answer {
            Ok(tokens) if tokens.get("access_token").is_some_and(Value::is_string) => tokens,
            Ok(_) => {
                warn!(
                    "route {}: the IdP's token answer has no access_token",
                    self.facade.route
                );
                return respond::redirect(
                    session,
                    &back(&[
                        ("error", "server_error"),
                        ("error_description", "the identity provider sent no token"),
                    ]),
                )
                .await;
            }
            Err(e) => {
                warn!(
                    "route {}: code exchange at the IdP failed: {e}",
                    self.facade.route
                );
                return respond::redirect(
                    session,
                    &back(&[
                        ("error", "server_error"),
                        (
                            "error_description",
                            "the code exchange with the identity provider failed",
                        ),
                    ]),
                )
                .await;
            }
        };
        let ours = self.seal_code(q, tokens);
        let done = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            self.facade.state_cookie,
            if self.facade.secure { "; Secure" } else { "" }
        );
        respond::redirect_with_cookies(session, &back(&[("code", &ours)]), &[&done]).await
    }

    /// The client's one-time code, carrying what the sign-in got.
    pub(super) fn seal_code(&self, q: &AuthRequest, tokens: Map<String, Value>) -> String {
        self.sealer.seal(
            Purpose::Code,
            &Code {
                q: q.clone(),
                route: self.facade.route.clone(),
                tokens,
                exp: unix_now() + CODE_TTL,
            },
        )
    }

    /// The form of a client's request to the token, revocation or introspection endpoint,
    /// once the client has authenticated as it registered. `None`: already answered.
    pub(super) async fn client_form(
        &self,
        session: &mut Session,
    ) -> Result<Option<(String, Params)>> {
        let basic = basic_credentials(session.req_header());
        let Some(body) = respond::read_body(session, MAX_BODY).await? else {
            json_error(session, 413, "invalid_request", "the request is too large").await?;
            return Ok(None);
        };
        let form = Params::parse(&body);
        let (client_id, secret) = match (&basic, form.get("client_id")) {
            (Some((id, secret)), _) => (Some(id.as_str()), Some(secret.as_str())),
            (None, id) => (id, form.get("client_secret")),
        };
        let authenticated = match client_id {
            Some(id) => self.authenticate(id, secret, basic.is_some()).await,
            None => false,
        };
        let Some(client_id) = client_id.filter(|_| authenticated).map(String::from) else {
            json_error(
                session,
                401,
                "invalid_client",
                "client authentication failed",
            )
            .await?;
            return Ok(None);
        };
        Ok(Some((client_id, form)))
    }

    /// A revocation or introspection request: the authenticated client, its form and the
    /// `token` it names. `None`: already answered.
    pub(super) async fn token_form(
        &self,
        session: &mut Session,
    ) -> Result<Option<(String, Params, String)>> {
        let Some((client_id, form)) = self.client_form(session).await? else {
            return Ok(None);
        };
        let Some(token) = form.get("token").map(String::from) else {
            json_error(session, 400, "invalid_request", "token is required").await?;
            return Ok(None);
        };
        Ok(Some((client_id, form, token)))
    }

    async fn token(&self, session: &mut Session) -> Result<bool> {
        let Some((client_id, form)) = self.client_form(session).await? else {
            return Ok(true);
        };
        let client_id = client_id.as_str();
        // RFC 8707: tokens from here are for this route only.
        if form
            .get("resource")
            .is_some_and(|r| r.trim_end_matches('/') != self.facade.issuer)
        {
            let why = "the resource is not this server";
            return json_error(session, 400, "invalid_target", why).await;
        }
        match form.get("grant_type") {
            Some("authorization_code") => self.redeem(session, &form, client_id).await,
            Some("refresh_token") => self.refresh(session, &form, client_id).await,
            _ => {
                json_error(
                    session,
                    400,
                    "unsupported_grant_type",
                    "authorization_code or refresh_token",
                )
                .await
            }
        }
    }

    async fn redeem(&self, session: &mut Session, form: &Params, client_id: &str) -> Result<bool> {
        let invalid = "the code is invalid, expired, already used, or not for this client";
        let now = unix_now();
        let sealed = form.get("code").unwrap_or_default();
        let code: Option<Code> = self.sealer.open(Purpose::Code, sealed);
        let Some(code) = code.filter(|c| c.exp > now && c.route == self.facade.route) else {
            return json_error(session, 400, "invalid_grant", invalid).await;
        };
        let q = &code.q;
        let verifier = form.get("code_verifier").unwrap_or_default();
        let bound = q.client_id == client_id
            && form.get("redirect_uri") == Some(q.redirect_uri.as_str())
            && is_pkce_verifier(verifier)
            && constant_time_eq(s256(verifier).as_bytes(), q.code_challenge.as_bytes());
        if !bound {
            return json_error(session, 400, "invalid_grant", invalid).await;
        }
        let key = digest(sealed.as_bytes());
        if let Some(first) = self.used_codes.0.get(&key, now) {
            warn!("route {}: a code was presented twice", self.facade.route);
            self.end_replayed_grant(first.value.as_deref(), now);
            return json_error(session, 400, "invalid_grant", invalid).await;
        }
        match self.behind {
            Behind::Idp { .. } => {
                self.used_codes.0.insert(key, code.exp, now, None);
                self.tokens(session, code.tokens, client_id).await
            }
            Behind::Issued { auth, .. } => {
                let grant = random_token()[..22].to_string();
                self.used_codes
                    .0
                    .insert(key, code.exp, now, Some(grant.clone()));
                self.issue(session, auth, &code.tokens, client_id, &grant)
                    .await
            }
        }
    }

    /// RFC 6749 §4.1.2: a code used twice revokes what its first use issued (on issued
    /// routes, where the gateway knows the grant; an IdP's tokens are the IdP's to revoke).
    fn end_replayed_grant(&self, grant: Option<&str>, now: u64) {
        let (
            Some(grant),
            Behind::Issued {
                auth, revocations, ..
            },
        ) = (grant, &self.behind)
        else {
            return;
        };
        let until = now + auth.access_ttl.max(auth.refresh_ttl).as_secs();
        if !revocations.revoke(&self.facade.route, grant, until, now) {
            warn!(
                "route {}: the revocation list is full; a replayed code's grant stays",
                self.facade.route
            );
        }
    }

    async fn refresh(&self, session: &mut Session, form: &Params, client_id: &str) -> Result<bool> {
        let sealed = form.get("refresh_token").unwrap_or_default();
        let refresh: Option<Refresh> = self.sealer.open(Purpose::Refresh, sealed);
        let Some(refresh) =
            refresh.filter(|r| r.client_id == client_id && r.route == self.facade.route)
        else {
            return json_error(
                session,
                400,
                "invalid_grant",
                "the refresh token is invalid or not for this client",
            )
            .await;
        };
        let provider = match self.behind {
            Behind::Idp { provider, .. } => provider,
            Behind::Issued {
                auth,
                service,
                revocations,
            } => {
                return self
                    .refresh_issued(session, (auth, service, revocations), refresh)
                    .await
            }
        };
        let mut grant = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.token.as_str()),
        ];
        if let Some(scope) = form.get("scope") {
            grant.push(("scope", scope));
        }
        match provider.token_grant(&grant).await {
            Ok(mut tokens) => {
                // Without rotation at the IdP, the old refresh token stays the one to use.
                tokens
                    .entry("refresh_token")
                    .or_insert(refresh.token.into());
                self.tokens(session, tokens, client_id).await
            }
            Err(IdpError::Refused(code)) => {
                let code = if code == "invalid_grant" {
                    "invalid_grant"
                } else {
                    "invalid_request"
                };
                json_error(
                    session,
                    400,
                    code,
                    "the identity provider refused the refresh",
                )
                .await
            }
            Err(IdpError::Failed(e)) => self.idp_unreachable(session, "refresh", &e).await,
        }
    }

    /// RFC 7009 and RFC 7662, passed on to the IdP with the gateway's credentials. A sealed
    /// refresh token is opened first (and must be the caller's).
    pub(super) async fn revoke_or_introspect(
        &self,
        session: &mut Session,
        provider: &Provider,
        which: IdpEndpoint,
    ) -> Result<bool> {
        let Some((client_id, form, token)) = self.token_form(session).await? else {
            return Ok(true);
        };
        let token = token.as_str();
        let refresh: Option<Refresh> = self.sealer.open(Purpose::Refresh, token);
        let (token, hint) = match &refresh {
            Some(r) if r.client_id != client_id || r.route != self.facade.route => {
                return json_error(
                    session,
                    400,
                    "unauthorized_client",
                    "the token belongs to another client",
                )
                .await;
            }
            Some(r) => (r.token.as_str(), "refresh_token"),
            None => (token, form.get("token_type_hint").unwrap_or("access_token")),
        };
        let answer = provider
            .call(which, &[("token", token), ("token_type_hint", hint)])
            .await;
        match (which, answer) {
            (IdpEndpoint::Introspection, Ok(answer)) => {
                respond::send(
                    session,
                    200,
                    Bytes::from(Value::Object(answer).to_string()),
                    &cors_open(),
                )
                .await
            }
            (IdpEndpoint::Introspection, Err(IdpError::Refused(_))) => {
                respond::send(
                    session,
                    200,
                    Bytes::from_static(br#"{"active":false}"#),
                    &cors_open(),
                )
                .await
            }
            // RFC 7009: an invalid or unknown token is no error.
            (_, Ok(_) | Err(IdpError::Refused(_))) => {
                respond::send(session, 200, Bytes::new(), &cors_open()).await
            }
            (_, Err(IdpError::Failed(e))) => {
                self.idp_unreachable(session, &format!("{which:?}"), &e)
                    .await
            }
        }
    }

    /// The token answer: the IdP's access token as it is; its refresh token sealed to this
    /// client; its ID token (meant for the gateway) left out.
    async fn tokens(
        &self,
        session: &mut Session,
        idp: Map<String, Value>,
        client_id: &str,
    ) -> Result<bool> {
        let mut answer = Map::new();
        for key in ["access_token", "token_type", "expires_in", "scope"] {
            if let Some(v) = idp.get(key) {
                answer.insert(key.into(), v.clone());
            }
        }
        answer.entry("token_type").or_insert("Bearer".into());
        if let Some(token) = idp.get("refresh_token").and_then(Value::as_str) {
            let sealed = self.sealer.seal(
                Purpose::Refresh,
                &Refresh {
                    client_id: client_id.into(),
                    route: self.facade.route.clone(),
                    token: token.into(),
                    grant: None,
                    exp: None,
                },
            );
            answer.insert("refresh_token".into(), sealed.into());
        }
        let body = Bytes::from(Value::Object(answer).to_string());
        respond::send(session, 200, body, &cors_open()).await
    }

    /// A registered client of this route, authenticated as it registered.
    async fn authenticate(&self, client_id: &str, secret: Option<&str>, used_basic: bool) -> bool {
        let Some(client) = self.client(client_id).await else {
            return false;
        };
        match (client.m.as_str(), secret) {
            ("none", _) => true,
            ("client_secret_basic", Some(s)) if used_basic => {
                self.sealer.check_secret(client_id, s)
            }
            ("client_secret_post", Some(s)) if !used_basic => {
                self.sealer.check_secret(client_id, s)
            }
            _ => false,
        }
    }

    /// A client of this route: a sealed registration, or a client ID metadata document
    /// (a public client) fetched from its URL.
    pub(super) async fn client(&self, client_id: &str) -> Option<Client> {
        if cimd::is_document_url(client_id) {
            return match self.documents.get(client_id, unix_now()).await {
                Ok(doc) => Some(Client {
                    r: self.facade.route.clone(),
                    u: doc.redirect_uris.clone(),
                    n: doc.name.clone(),
                    m: "none".into(),
                }),
                Err(e) => {
                    warn!(
                        "route {}: client metadata document refused: {e}",
                        self.facade.route
                    );
                    None
                }
            };
        }
        let client: Client = self.sealer.open(Purpose::Client, client_id)?;
        (client.r == self.facade.route).then_some(client)
    }

    /// `redirect_uri` with `pairs`, the client's `state` and our `iss` (RFC 9207) added.
    pub(super) fn client_redirect(
        &self,
        redirect_uri: &str,
        pairs: &[(&str, &str)],
        state: Option<&str>,
    ) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        if let Some(s) = state {
            query.append_pair("state", s);
        }
        query.append_pair("iss", &self.facade.issuer);
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        format!("{redirect_uri}{separator}{}", query.finish())
    }

    /// A call to the IdP got no usable answer: logged, and 503 to the client.
    pub(super) async fn idp_unreachable(
        &self,
        session: &mut Session,
        what: &str,
        error: &str,
    ) -> Result<bool> {
        warn!(
            "route {}: {what} at the IdP failed: {error}",
            self.facade.route
        );
        json_error(
            session,
            503,
            "temporarily_unavailable",
            "the identity provider cannot be reached",
        )
        .await
    }

    pub(super) async fn error_page(&self, session: &mut Session, message: &str) -> Result<bool> {
        respond::html(session, 400, consent::error_page(message), None).await
    }
}

/// Query or form parameters; a repeated parameter makes the request invalid (RFC 6749 §3.1).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        match (found.next(), found.next()) {
            (Some((_, v)), None) if !v.is_empty() => Some(v),
            _ => None,
        }
    }
}

/// The client a registration request (RFC 7591) describes for `route`, or the OAuth error
/// and description that refuse it: `redirect_uris` are required and must be acceptable, and
/// the auth method must be one the gateway speaks.
pub(crate) fn registered_client(
    route: &str,
    meta: &Map<String, Value>,
) -> Result<Client, (&'static str, &'static str)> {
    let uris: Vec<String> = match meta.get("redirect_uris").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => return Err(("invalid_redirect_uri", "redirect_uris is required")),
    };
    if uris.is_empty() || !uris.iter().all(|u| acceptable_redirect(u)) {
        return Err((
            "invalid_redirect_uri",
            "redirect URIs must be https, or http on loopback, without a fragment",
        ));
    }
    let method = match meta
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None => "client_secret_basic",
        Some(m @ ("none" | "client_secret_post" | "client_secret_basic")) => m,
        Some(_) => return Err((
            "invalid_client_metadata",
            "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic",
        )),
    };
    Ok(Client {
        r: route.to_string(),
        u: uris,
        n: meta
            .get("client_name")
            .and_then(Value::as_str)
            .map(String::from),
        m: method.to_string(),
    })
}

/// https anywhere, or http on loopback (native apps, RFC 8252); no fragment.
pub(super) fn acceptable_redirect(uri: &str) -> bool {
    // URL parsing drops tabs and line breaks, but the URI is later sent as it was
    // registered, in a `Location` header that cannot carry them.
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return false;
    }
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        // Private-use schemes of native apps (`cursor://`, `vscode://`), not web schemes.
        scheme => !matches!(
            scheme,
            "javascript" | "data" | "file" | "vbscript" | "ftp" | "ws" | "wss" | "blob"
        ),
    }
}

pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_pkce_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2: an S256 challenge is the base64url of a SHA-256 digest, 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The PKCE S256 challenge of `verifier`.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn cookie_value<'a>(
    req: &'a pingora::http::RequestHeader,
    name: &str,
) -> Option<&'a str> {
    req.headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// `client_id` and `client_secret` from HTTP Basic (form-encoded first, RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(req: &pingora::http::RequestHeader) -> Option<(String, String)> {
    let value = req.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

pub(super) fn cors_open() -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = crate::cors::preflight_headers().to_vec();
    headers.push((ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
    headers
}

/// A registration request's JSON object. `None`: the request was answered (413, 400).
pub(super) async fn read_registration(session: &mut Session) -> Result<Option<Map<String, Value>>> {
    let Some(body) = respond::read_body(session, MAX_BODY).await? else {
        json_error(
            session,
            413,
            "invalid_client_metadata",
            "the request is too large",
        )
        .await?;
        return Ok(None);
    };
    let Ok(meta) = crate::json::object_with_unique_names(&body) else {
        json_error(
            session,
            400,
            "invalid_client_metadata",
            "the body is not a JSON object",
        )
        .await?;
        return Ok(None);
    };
    Ok(Some(meta))
}

pub(super) async fn json_error(
    session: &mut Session,
    status: u16,
    error: &str,
    description: &str,
) -> Result<bool> {
    let body = json!({ "error": error, "error_description": description }).to_string();
    respond::send(session, status, Bytes::from(body), &cors_open()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_safe() {
        assert!(acceptable_redirect(
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(acceptable_redirect("http://localhost:6274/oauth/callback"));
        assert!(acceptable_redirect("http://127.0.0.1:33418/callback"));
        assert!(acceptable_redirect(
            "cursor://anysphere.cursor-retrieval/oauth/callback"
        ));
        assert!(!acceptable_redirect("http://evil.example/callback"));
        assert!(!acceptable_redirect("https://a.example/cb#frag"));
        assert!(!acceptable_redirect("javascript:alert(1)"));
        assert!(!acceptable_redirect("not a url"));
        assert!(!acceptable_redirect(
            "https://a.example/cb\r\nSet-Cookie: x=1"
        ));
        assert!(!acceptable_redirect("https://a.example/c b"));
        assert!(!acceptable_redirect("https://a.example/cb\t"));
    }

    #[test]
    fn pkce_values_have_their_rfc_shapes() {
        let verifier = "dBjftJeZ4CKP-1qQI6u9FaMb9tBNgyIgSvAmxDeM7HOKDmCRmqj6OqrLLmC9E";
        assert!(is_pkce_verifier(verifier));
        assert!(is_pkce_verifier(&"a~._-".repeat(10)[..43]));
        assert!(!is_pkce_verifier("x"));
        assert!(!is_pkce_verifier(&"a".repeat(42)));
        assert!(!is_pkce_verifier(&"a".repeat(129)));
        assert!(!is_pkce_verifier(&format!("{}+/", "a".repeat(43))));
        assert!(is_s256_challenge(&s256(verifier)));
        assert!(!is_s256_challenge(&"a".repeat(44)));
        assert!(!is_s256_challenge(&format!("{}=", "a".repeat(42))));
        assert!(!is_s256_challenge(&format!("{}.", "a".repeat(42))));
    }

    #[test]
    fn params_refuse_repeats() {
        let p = Params::parse(b"a=1&b=2&b=3&c=");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), None);
    }

    #[test]
    fn pkce_s256_is_unpadded_base64url_of_sha256() {
        // Computed independently with Python's hashlib and base64.
        assert_eq!(
            s256("dBjftJeZ4CKP-1qQI6u9FaMb9tBNgyIgSvAmxDeM7HOKDmCRmqj6OqrLLmC9E"),
            "Q-9GsQ2CvvRVExheMO-o1-LYD3PltBaTDwEIibbNPZo"
        );
    }
}
