//! A route's authorization server: the gateway as the OAuth 2.1 authorization server of a
//! route (broker, passthrough and chained routes) or as the front of its IdP (redirect
//! mode). Built once per snapshot with everything it needs; each endpoint is a function
//! from a request value to a response value, so the protocol is testable without sockets
//! and the gateway only reads the request and writes the answer.
//!
//! The protocol is the same whoever signs users in: registration (`clients`), the
//! authorization request and consent (`authorize`), the sign-in's return (`callback`), codes,
//! refreshes, revocation and introspection (`token`). What differs is behind two small
//! interfaces (`signin`): how a user signs in, and what the tokens are.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request};
use log::warn;
use serde_json::{json, Map, Value};

use super::cimd;
use super::consent::{self, human, ServerFacts};
use super::metadata::resource_url;
use super::params::Params;
use super::records::{AuthRequest, Client, Code, Refresh, SignInState};
use super::reply::{self, Reply};
use super::seal::{Purpose, Sealer};
use super::Endpoint;
use crate::auth::cache::digest;
use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::auth::unix_now;
use crate::config::{Auth, ConsentSettings, Route};
use crate::state::State;

/// Lifetimes of what the server seals, in seconds.
pub(super) const CONSENT_TTL: u64 = 600;
pub(super) const STATE_TTL: u64 = 600;
const CODE_TTL: u64 = 60;

/// What the authorization servers of one snapshot share.
pub struct Shared {
    pub sealer: Arc<Sealer>,
    /// Codes, sign-in states and refresh tokens used; grants revoked (kept across reloads).
    pub state: Arc<State>,
    /// Client ID metadata documents, fetched and cached.
    pub documents: Arc<cimd::Fetcher>,
    pub refresh_grace: std::time::Duration,
}

/// The address of the client that sent a request, as an extension of the request value.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub std::net::IpAddr);

/// The cookie names: `__Host-` and `Secure` when the gateway is reached over https.
pub(super) struct Cookies {
    /// Binds a consent form to its browser.
    pub consent: &'static str,
    /// Remembers approvals.
    pub approvals: &'static str,
    /// Binds a sign-in elsewhere to its browser; per route, so that sign-ins on two routes
    /// in one browser do not collide.
    pub state: String,
    pub secure: bool,
}

impl Cookies {
    /// A `Set-Cookie` value for `name`, HttpOnly, SameSite=Lax, living `max_age` seconds.
    pub fn set(&self, name: &str, value: &str, max_age: u64) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

pub struct AuthServer {
    /// The route's issuer on the gateway: its resource URL.
    pub issuer: String,
    pub(super) endpoint_base: String,
    pub(super) callback: String,
    pub(super) route: String,
    pub(super) cookies: Cookies,
    pub(super) consent: ConsentSettings,
    pub(super) sealer: Arc<Sealer>,
    pub(super) state: Arc<State>,
    /// How long a used refresh token gets the same answer again.
    pub(super) refresh_grace: u64,
    documents: Arc<cimd::Fetcher>,
    /// The gateway's own RFC 8414 fields; the IdP's descriptive ones are merged in.
    metadata: Map<String, Value>,
    /// The merged document, rendered again only when the IdP's metadata was rediscovered.
    rendered: ArcSwapOption<Rendered>,
    /// What stands for the IdP's metadata when there is no IdP: rendered once, like any.
    no_idp: Arc<Map<String, Value>>,
    pub(super) protocol: Protocol,
    /// What its pages say of the route.
    pub(super) facts: ServerFacts,
}

struct Rendered {
    from: Arc<Map<String, Value>>,
    document: Bytes,
}

impl AuthServer {
    /// The route's authorization server, run as `protocol` says.
    pub fn new(
        public_url: &str,
        route: &Route,
        consent: ConsentSettings,
        shared: &Shared,
        protocol: Protocol,
        scopes: &[String],
    ) -> AuthServer {
        let issuer = resource_url(public_url, route);
        let base = format!("{issuer}/oauth");
        let redirect = matches!(protocol, Protocol::Redirect(_));
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
        let facts = ServerFacts {
            name: route.display_name.clone().unwrap_or_else(|| issuer.clone()),
            url: issuer.clone(),
            lifetime: match &route.auth {
                Auth::Issued(i) => Some(format!(
                    "up to {} (renewed every {})",
                    human(i.refresh_ttl),
                    human(i.access_ttl)
                )),
                _ => None,
            },
            signs_in_at: match &protocol {
                Protocol::Codes { sign_in, .. } => sign_in.signs_in_at(),
                Protocol::Redirect(_) => None,
            },
        };
        let secure = public_url.starts_with("https://");
        let host_prefix = if secure { "__Host-" } else { "" };
        AuthServer {
            callback: format!("{base}/callback"),
            endpoint_base: base,
            metadata: match metadata {
                Value::Object(fields) => fields,
                _ => unreachable!("json! of an object"),
            },
            rendered: ArcSwapOption::empty(),
            no_idp: Arc::default(),
            cookies: Cookies {
                consent: if secure {
                    "__Host-mcpgate-consent"
                } else {
                    "mcpgate-consent"
                },
                approvals: if secure {
                    "__Host-mcpgate-approved"
                } else {
                    "mcpgate-approved"
                },
                state: format!(
                    "{host_prefix}mcpgate-state-{}",
                    &URL_SAFE_NO_PAD.encode(digest(issuer.as_bytes()))[..8]
                ),
                secure,
            },
            issuer,
            route: route.name.clone(),
            consent,
            sealer: shared.sealer.clone(),
            state: shared.state.clone(),
            refresh_grace: shared.refresh_grace.as_secs(),
            documents: shared.documents.clone(),
            protocol,
            facts,
        }
    }

    /// Answers one request to one of the route's OAuth endpoints.
    pub async fn handle(&self, endpoint: Endpoint, req: &Request<Bytes>) -> Reply {
        let method = req.method();
        if method == Method::OPTIONS && endpoint != Endpoint::Authorize {
            return reply::empty(204);
        }
        match (endpoint, method) {
            (Endpoint::Metadata, &Method::GET) => return reply::document(self.metadata()),
            (Endpoint::Revoke, &Method::POST) => {
                return self
                    .revoke_or_introspect(req, IdpEndpoint::Revocation)
                    .await
            }
            (Endpoint::Introspect, &Method::POST) => {
                return self
                    .revoke_or_introspect(req, IdpEndpoint::Introspection)
                    .await
            }
            _ => {}
        }
        if let Protocol::Redirect(redirect) = &self.protocol {
            return redirect.handle(self, endpoint, req).await;
        }
        match (endpoint, method) {
            (Endpoint::Register, &Method::POST) => self.register(req),
            (Endpoint::Authorize, &Method::GET) => self.authorize(req).await,
            (Endpoint::Authorize, &Method::POST) => self.decide(req).await,
            (Endpoint::Callback, &Method::GET) => self.callback(req).await,
            (Endpoint::Token, &Method::POST) => self.token(req).await,
            _ => reply::error(405, "invalid_request", "method not allowed here"),
        }
    }

    /// How users sign in and what the tokens are, on a route that runs the code flow.
    pub(super) fn parts(&self) -> Option<(&dyn SignIn, &dyn Tokens)> {
        match &self.protocol {
            Protocol::Codes { sign_in, tokens } => Some((sign_in.as_ref(), tokens.as_ref())),
            Protocol::Redirect(_) => None,
        }
    }

    /// The IdP behind the route, if there is one.
    pub fn provider(&self) -> Option<&Provider> {
        match &self.protocol {
            Protocol::Codes { sign_in, .. } => sign_in.idp(),
            Protocol::Redirect(redirect) => Some(redirect.provider()),
        }
    }

    /// The RFC 8414 document: the gateway's endpoints and capabilities, with what the IdP's
    /// own (background-fetched) metadata says about scopes, claims, grants and policies.
    pub fn metadata(&self) -> Bytes {
        let described = self
            .provider()
            .map_or_else(|| self.no_idp.clone(), Provider::described);
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
        query.append_pair("iss", &self.issuer);
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        format!("{redirect_uri}{separator}{}", query.finish())
    }

    /// A redirect back to the client with an OAuth error.
    pub(super) fn back_with_error(&self, q: &AuthRequest, code: &str, description: &str) -> Reply {
        let to = self.client_redirect(
            &q.redirect_uri,
            &[("error", code), ("error_description", description)],
            q.state.as_deref(),
        );
        reply::redirect(&to, &[])
    }

    /// The client's one-time code, carrying what the sign-in got.
    pub(super) fn seal_code(&self, q: &AuthRequest, tokens: Map<String, Value>) -> String {
        self.sealer.seal(
            Purpose::Code,
            &Code {
                q: q.clone(),
                route: self.route.clone(),
                tokens,
                exp: unix_now() + CODE_TTL,
            },
        )
    }

    /// The `state` for a sign-in elsewhere: the client's request, the gateway's PKCE
    /// verifier and a browser binding, sealed. Returns it, the verifier's challenge and the
    /// cookie that binds the browser.
    pub(super) fn seal_state(&self, q: AuthRequest) -> (String, String, String) {
        let verifier = super::pkce::random_token();
        let challenge = super::pkce::s256(&verifier);
        let browser = super::pkce::random_token();
        let cookie = self.cookies.set(&self.cookies.state, &browser, STATE_TTL);
        let state = self.sealer.seal(
            Purpose::State,
            &SignInState {
                q,
                route: self.route.clone(),
                verifier,
                browser,
                exp: unix_now() + STATE_TTL,
            },
        );
        (state, challenge, cookie)
    }

    /// A client of this route: a sealed registration, or a client ID metadata document
    /// (a public client) fetched from its URL.
    pub(super) async fn client(&self, client_id: &str) -> Option<super::records::Client> {
        if cimd::is_document_url(client_id) {
            return match self.documents.get(client_id, unix_now()).await {
                Ok(doc) => Some(super::records::Client {
                    r: self.route.clone(),
                    u: doc.redirect_uris.clone(),
                    n: doc.name.clone(),
                    m: "none".into(),
                }),
                Err(e) => {
                    warn!(
                        "route {}: client metadata document refused: {e}",
                        self.route
                    );
                    None
                }
            };
        }
        let client: super::records::Client = self.sealer.open(Purpose::Client, client_id)?;
        (client.r == self.route).then_some(client)
    }

    /// A call to the IdP or service got no usable answer: logged, and 503 to the client.
    pub(super) fn unreachable(&self, what: &str, error: &str) -> Reply {
        warn!("route {}: {what} at the IdP failed: {error}", self.route);
        reply::error(
            503,
            "temporarily_unavailable",
            "the identity provider cannot be reached",
        )
    }

    /// An error page a user reads.
    pub(super) fn error_page(&self, message: &str) -> Reply {
        reply::page(400, consent::error_page(message))
    }
}

/// How a route's authorization server runs.
pub enum Protocol {
    /// The gateway's own code flow, with a way to sign in and a kind of token.
    Codes {
        sign_in: Box<dyn SignIn>,
        tokens: Box<dyn Tokens>,
    },
    /// The IdP's code flow, fronted (redirect mode).
    Redirect(Box<dyn Fronted>),
}

/// Where and how a user signs in, once the client's authorization request passed the
/// protocol's checks.
#[async_trait]
pub trait SignIn: Send + Sync {
    /// The IdP, when users sign in there: its metadata is merged into the route's, and a
    /// callback must carry its `iss`.
    fn idp(&self) -> Option<&Provider> {
        None
    }

    /// Where the user signs in after the gateway's page (a host, for the page to name);
    /// `None` when the page itself is the sign-in.
    fn signs_in_at(&self) -> Option<String> {
        None
    }

    /// What the user is shown for a checked request: the consent page, unless this way of
    /// signing in has a page of its own (the key page), which is also its consent.
    fn page(&self, server: &AuthServer, client: &Client, q: &AuthRequest) -> Reply {
        server.consent_page(client, q)
    }

    /// Whether consent may be remembered and skipped (never for a page that asks for a
    /// key).
    fn remembers_consent(&self) -> bool {
        true
    }

    /// The user approved (the consent form, or the key form `form`): where the browser goes
    /// next, setting `cookies` (a remembered approval).
    async fn approved(
        &self,
        server: &AuthServer,
        q: AuthRequest,
        form: &Params,
        req: &Request<Bytes>,
        cookies: Vec<String>,
    ) -> Reply;

    /// The code a sign-in elsewhere came back with, exchanged with `verifier` at the token
    /// endpoint there: what the client's code will carry. A page that is itself the sign-in
    /// (the key page) never sends anyone elsewhere, so no callback reaches this.
    async fn exchange(
        &self,
        _server: &AuthServer,
        _code: &str,
        _verifier: &str,
    ) -> Result<Map<String, Value>, IdpError> {
        Err(IdpError::Failed(
            "this route signs nobody in elsewhere".into(),
        ))
    }
}

/// What a route's tokens are: their issue for a redeemed code, their refresh, revocation and
/// introspection.
#[async_trait]
pub trait Tokens: Send + Sync {
    /// The token answer for a redeemed code carrying `got`, starting `grant` (which a replay
    /// of the code, or of a spent refresh token, ends) where the gateway keeps grants.
    fn issue(
        &self,
        server: &AuthServer,
        got: &Map<String, Value>,
        client_id: &str,
        grant: &str,
    ) -> Reply;

    /// A replayed code or spent refresh token: end the grant it belongs to (RFC 6749
    /// §4.1.2, OAuth 2.1 §4.3.1). `refresh`: the refresh token, when that was replayed.
    async fn end_grant(
        &self,
        server: &AuthServer,
        grant: &str,
        refresh: Option<&Refresh>,
        now: u64,
    );

    /// A refresh-token grant of `refresh` (already checked to be the client's).
    async fn refresh(&self, server: &AuthServer, refresh: Refresh, form: &Params) -> Reply;

    /// RFC 7009 / RFC 7662 for `token`, asked by the authenticated `client_id`.
    async fn revoke_or_introspect(
        &self,
        server: &AuthServer,
        which: IdpEndpoint,
        client_id: &str,
        token: &str,
        form: &Params,
    ) -> Reply;
}

/// A route whose IdP runs the code flow itself, the gateway only fronting its endpoints.
#[async_trait]
pub trait Fronted: Send + Sync {
    fn provider(&self) -> &Provider;

    /// Revocation and introspection, passed on.
    fn tokens(&self) -> &dyn Tokens;

    /// Registration, authorization and the token endpoint.
    async fn handle(&self, server: &AuthServer, endpoint: Endpoint, req: &Request<Bytes>) -> Reply;
}
