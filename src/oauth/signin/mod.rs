//! What differs between the routes whose authorization server is the gateway, behind two
//! small interfaces: how a user signs in ([`SignIn`]: at the IdP, at a downstream service,
//! or by typing the upstream's key) and what the tokens are ([`Tokens`]: the IdP's, passed
//! on, or the gateway's own, sealed). A broker route is IdP + IdP tokens, a chained route
//! service + the gateway's tokens, a passthrough route key + the gateway's tokens.
//!
//! Redirect mode is the one that fits neither: the IdP itself runs the code flow and the
//! gateway only fronts its endpoints ([`redirect`]).

mod idp;
mod key;
pub mod redirect;
mod service;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::Request;
use serde_json::{Map, Value};

use super::issued::{IssuedTokens, Revocations};
use super::params::Params;
use super::records::{AuthRequest, Client, Refresh};
use super::reply::Reply;
use super::server::AuthServer;
use super::service::Service;
use crate::auth::provider::{IdpEndpoint, IdpError, Provider};
use crate::config::{Auth, OAuthMode, Route, Strategy};

/// How a route's authorization server runs.
pub enum Protocol {
    /// The gateway's own code flow, with a way to sign in and a kind of token.
    Codes {
        sign_in: Box<dyn SignIn>,
        tokens: Box<dyn Tokens>,
    },
    /// The IdP's code flow, fronted.
    Redirect(redirect::Redirect),
}

impl Protocol {
    /// The protocol of `route`, if the gateway is its authorization server: its provider
    /// (broker, redirect), its service (chained), and the grants revoked on this process.
    pub fn for_route(
        route: &Route,
        provider: Option<&Arc<Provider>>,
        services: &std::collections::BTreeMap<String, Arc<Service>>,
        revocations: &Arc<Revocations>,
    ) -> Option<Protocol> {
        let codes = |sign_in: Box<dyn SignIn>, tokens: Box<dyn Tokens>| {
            Some(Protocol::Codes { sign_in, tokens })
        };
        match &route.auth {
            Auth::None => None,
            Auth::Bearer(bearer) => match bearer.oauth {
                OAuthMode::Direct => None,
                OAuthMode::Broker => {
                    let provider = provider?.clone();
                    codes(
                        Box::new(idp::IdpSignIn::new(provider.clone(), &bearer.scopes)),
                        Box::new(idp::IdpTokens::new(provider)),
                    )
                }
                OAuthMode::Redirect => Some(Protocol::Redirect(redirect::Redirect::new(
                    provider?.clone(),
                ))),
            },
            Auth::Issued(issued) => match &issued.strategy {
                Strategy::Passthrough(settings) => codes(
                    Box::new(key::KeySignIn::new(settings, &issued.placement)),
                    Box::new(IssuedTokens::new(issued, revocations.clone(), None)),
                ),
                Strategy::Chained { service } => {
                    let service = services.get(service)?.clone();
                    codes(
                        Box::new(service::ServiceSignIn::new(service.clone())),
                        Box::new(IssuedTokens::new(
                            issued,
                            revocations.clone(),
                            Some(service),
                        )),
                    )
                }
            },
        }
    }
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
    /// endpoint there: what the client's code will carry.
    async fn exchange(
        &self,
        server: &AuthServer,
        code: &str,
        verifier: &str,
    ) -> Result<Map<String, Value>, IdpError>;
}

/// What a route's tokens are: their issue for a redeemed code, their refresh, revocation and
/// introspection.
#[async_trait]
pub trait Tokens: Send + Sync {
    /// The token answer for a redeemed code carrying `got`, and the grant it starts (which
    /// a replay of the code ends), if the gateway keeps grants.
    fn issue(
        &self,
        server: &AuthServer,
        got: &Map<String, Value>,
        client_id: &str,
    ) -> (Reply, Option<String>);

    /// A replayed code: end the grant its first redemption started (RFC 6749 §4.1.2).
    fn end_grant(&self, server: &AuthServer, grant: &str, now: u64);

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
