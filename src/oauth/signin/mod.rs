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
mod redirect;
mod service;

use std::sync::Arc;

use super::issued::IssuedTokens;
use super::server::{Protocol, SignIn, Tokens};
use super::service::Service;
use crate::auth::provider::Provider;
use crate::config::{Auth, OAuthMode, Route, Strategy};
use crate::state::State;

/// The protocol of `route`, if the gateway is its authorization server: its provider
/// (broker, redirect), its service (chained), and the gateway's state.
pub fn for_route(
    route: &Route,
    provider: Option<&Arc<Provider>>,
    services: &std::collections::BTreeMap<String, Arc<Service>>,
    state: &Arc<State>,
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
                    Box::new(idp::IdpSignIn::new(
                        provider.clone(),
                        bearer.advertised_scopes(),
                    )),
                    Box::new(idp::IdpTokens::new(provider)),
                )
            }
            OAuthMode::Redirect => Some(Protocol::Redirect(Box::new(redirect::Redirect::new(
                provider?.clone(),
                bearer.advertised_scopes(),
            )))),
        },
        Auth::Issued(issued) => match &issued.strategy {
            Strategy::Passthrough(settings) => codes(
                Box::new(key::KeySignIn::new(settings, &issued.placement)),
                Box::new(IssuedTokens::new(issued, state.clone(), None)),
            ),
            Strategy::Chained { service } => {
                let service = services.get(service)?.clone();
                codes(
                    Box::new(service::ServiceSignIn::new(service.clone())),
                    Box::new(IssuedTokens::new(issued, state.clone(), Some(service))),
                )
            }
        },
    }
}

/// The host of `url`, as a page names where the user signs in next.
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url).ok()?.host_str().map(str::to_string)
}

/// The scopes a sign-in asks the IdP for, before the provider's prefix and extras: the
/// client's, with the route's advertised ones first when the client named nothing usable
/// (the SDKs ask for only `offline_access` when a route advertises no scope, and an IdP
/// refuses a sign-in for that alone).
pub fn requested_scopes(asked: Option<&str>, advertised: &str) -> String {
    match asked {
        Some(asked) if asked.split_whitespace().any(|s| s != "offline_access") => asked.into(),
        Some(asked) => format!("{advertised} {asked}"),
        None => advertised.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::requested_scopes;

    #[test]
    fn a_client_that_names_nothing_usable_gets_the_routes_scopes() {
        assert_eq!(requested_scopes(Some("mcp:read"), "openid"), "mcp:read");
        assert_eq!(
            requested_scopes(Some(" offline_access"), "openid"),
            "openid  offline_access"
        );
        assert_eq!(requested_scopes(Some(""), "openid"), "openid ");
        assert_eq!(requested_scopes(None, "openid"), "openid");
    }
}
