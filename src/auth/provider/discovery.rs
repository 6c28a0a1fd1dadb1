//! Where an IdP says its endpoints are (RFC 8414, and OpenID Connect discovery), and what
//! its metadata says about it that stays true of the gateway's facade over it.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::Provider;
use crate::auth::token_client::get_document;

impl Provider {
    /// RFC 8414 first, then OpenID Connect discovery, with the path-insertion rule for
    /// issuers that have a path. The document's `issuer` must be ours exactly.
    pub(super) async fn discover(&self) -> Result<Metadata, String> {
        let mut last_error = String::new();
        for url in discovery_urls(&self.config.issuer) {
            let body = match get_document(self.client.http(), &url).await {
                Ok((body, _)) => body,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let meta =
                Metadata::parse(&body).map_err(|e| format!("{url}: not valid metadata: {e}"))?;
            if meta.issuer != self.config.issuer {
                return Err(format!(
                    "{url}: issuer is `{}`, not the configured `{}`",
                    meta.issuer, self.config.issuer
                ));
            }
            return Ok(meta);
        }
        Err(format!("discovery failed: {last_error}"))
    }
}

#[derive(Deserialize)]
pub(super) struct Metadata {
    pub(super) issuer: String,
    pub(super) jwks_uri: Option<String>,
    pub(super) introspection_endpoint: Option<String>,
    pub(super) token_endpoint: Option<String>,
    pub(super) authorization_endpoint: Option<String>,
    pub(super) revocation_endpoint: Option<String>,
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: bool,
    #[serde(skip)]
    pub(super) described: Map<String, Value>,
}

/// Fields of an IdP's metadata that describe it rather than name its endpoints: they stay
/// true of the gateway's facade over it. Endpoints the gateway does not proxy (userinfo,
/// logout, device, PAR, JWKS) are left out, as the facade cannot honour them.
const DESCRIPTIVE_FIELDS: [&str; 8] = [
    "scopes_supported",
    "claims_supported",
    "grant_types_supported",
    "ui_locales_supported",
    "claims_locales_supported",
    "service_documentation",
    "op_policy_uri",
    "op_tos_uri",
];

impl Metadata {
    pub(super) fn parse(body: &[u8]) -> Result<Metadata, serde_json::Error> {
        let document: Map<String, Value> = serde_json::from_slice(body)?;
        let described = DESCRIPTIVE_FIELDS
            .iter()
            .filter_map(|&k| Some((k.to_string(), document.get(k)?.clone())))
            .collect();
        let mut meta: Metadata = serde_json::from_value(Value::Object(document))?;
        meta.described = described;
        Ok(meta)
    }
}

/// Where an issuer's metadata may be, in the order MCP clients try them.
pub fn discovery_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let (origin, path) = match issuer
        .find("://")
        .and_then(|i| issuer[i + 3..].find('/').map(|j| i + 3 + j))
    {
        Some(split) => issuer.split_at(split),
        None => (issuer, ""),
    };
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_follows_path_insertion() {
        assert_eq!(
            discovery_urls("https://idp.example.com/"),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            discovery_urls("https://idp.example.com/realms/x"),
            [
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/x",
                "https://idp.example.com/.well-known/openid-configuration/realms/x",
                "https://idp.example.com/realms/x/.well-known/openid-configuration"
            ]
        );
    }
}
