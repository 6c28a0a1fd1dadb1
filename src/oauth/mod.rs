//! What the gateway answers itself as part of OAuth: the protected resource metadata
//! (RFC 9728) a route's `401` points to, and for broker, redirect, passthrough and chained
//! routes a whole authorization server (`server`).

mod authorize;
mod callback;
pub mod cimd;
pub mod clients;
pub mod consent;
pub mod issued;
pub mod metadata;
pub mod params;
pub mod pkce;
pub mod records;
pub mod reply;
pub mod seal;
pub mod server;
pub mod service;
pub mod signin;
mod token;

#[cfg(test)]
mod tests;

/// The endpoints of a route's authorization server, under the route's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Authorize,
    Callback,
    Token,
    Revoke,
    Introspect,
    Metadata,
}

impl Endpoint {
    /// The endpoint `rest` (the path after the route's prefix) names, if any.
    pub fn of(rest: &str) -> Option<Endpoint> {
        Some(match rest {
            "/oauth/register" => Endpoint::Register,
            "/oauth/authorize" => Endpoint::Authorize,
            "/oauth/callback" => Endpoint::Callback,
            "/oauth/token" => Endpoint::Token,
            "/oauth/revoke" => Endpoint::Revoke,
            "/oauth/introspect" => Endpoint::Introspect,
            "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" => {
                Endpoint::Metadata
            }
            _ => return None,
        })
    }
}
