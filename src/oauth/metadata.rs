//! Protected resource metadata (RFC 9728): where an MCP client learns, from the URL in a
//! `401` challenge, which authorization server issues tokens for a route and which scopes it
//! takes. Rendered once per snapshot; served without a token, cacheable, open to any origin.

use bytes::Bytes;
use serde_json::json;

use crate::config::Route;

/// The well-known prefix; a route's document is at this path followed by the route prefix.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The route's resource identifier: its public URL (`public_url` + prefix).
pub fn resource_url(public_url: &str, route: &Route) -> String {
    match route.prefix.as_str() {
        "/" => public_url.to_string(),
        prefix => format!("{public_url}{prefix}"),
    }
}

/// The URL of the route's document, as the challenge names it.
pub fn resource_metadata_url(public_url: &str, route: &Route) -> String {
    match route.prefix.as_str() {
        "/" => format!("{public_url}{RESOURCE_METADATA_PATH}"),
        prefix => format!("{public_url}{RESOURCE_METADATA_PATH}{prefix}"),
    }
}

/// The route path a metadata request asks about (`/.well-known/oauth-protected-resource/mcp`
/// → `/mcp`), or `None` when the request is not for a metadata document.
pub fn requested_resource(path: &str) -> Option<&str> {
    match path.strip_prefix(RESOURCE_METADATA_PATH)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// The route path an authorization server metadata request asks about (RFC 8414 path
/// insertion, and the OpenID location MCP clients also try).
pub fn requested_issuer(path: &str) -> Option<&str> {
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ]
    .iter()
    .find_map(|well_known| match path.strip_prefix(well_known)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    })
}

pub fn resource_document(
    public_url: &str,
    route: &Route,
    scopes: &[String],
    issuer: &str,
) -> Bytes {
    let doc = json!({
        "resource": resource_url(public_url, route),
        "authorization_servers": [issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": route.name,
    });
    Bytes::from(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_metadata_paths_to_route_paths() {
        assert_eq!(
            requested_resource("/.well-known/oauth-protected-resource/mcp/a"),
            Some("/mcp/a")
        );
        assert_eq!(
            requested_resource("/.well-known/oauth-protected-resource"),
            Some("/")
        );
        assert_eq!(
            requested_resource("/.well-known/oauth-protected-resourcex"),
            None
        );
        assert_eq!(requested_resource("/mcp"), None);
    }
}
