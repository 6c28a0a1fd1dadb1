//! Clients of a route's authorization server: registration (RFC 7591, stateless: the
//! `client_id` is the sealed registration), and client authentication at the token,
//! revocation and introspection endpoints.

use bytes::Bytes;
use http::Request;
use serde_json::{json, Map, Value};

use super::params::{basic_credentials, Params};
use super::records::Client;
use super::reply::{self, Reply};
use super::seal::Purpose;
use super::server::AuthServer;
use crate::auth::unix_now;

impl AuthServer {
    /// Any scope and auth method a client sends is accepted; `redirect_uris` are echoed.
    pub(super) fn register(&self, req: &Request<Bytes>) -> Reply {
        let Some(mut meta) = registration(req.body()) else {
            return unreadable_registration();
        };
        let client = match registered_client(&self.route, &meta) {
            Ok(client) => client,
            Err((error, description)) => {
                if error == "invalid_redirect_uri" {
                    log::warn!("route {}: registration refused a redirect URI", self.route);
                }
                return reply::error(400, error, description);
            }
        };
        let client_id = self.sealer.seal_deterministic(Purpose::Client, &client);
        meta.insert("client_id".into(), client_id.clone().into());
        meta.insert("client_id_issued_at".into(), unix_now().into());
        meta.insert("token_endpoint_auth_method".into(), client.m.clone().into());
        meta.entry("grant_types")
            .or_insert(json!(["authorization_code", "refresh_token"]));
        meta.entry("response_types").or_insert(json!(["code"]));
        if client.m != "none" {
            meta.insert(
                "client_secret".into(),
                self.sealer.derive_secret(&client_id).into(),
            );
            meta.insert("client_secret_expires_at".into(), 0.into());
        }
        reply::json(201, Value::Object(meta).to_string())
    }

    /// The form of a request to the token, revocation or introspection endpoint, once its
    /// client has authenticated as it registered (HTTP Basic or form fields).
    pub(super) async fn authenticated_form(
        &self,
        req: &Request<Bytes>,
    ) -> Result<(String, Params), Reply> {
        let basic = basic_credentials(req.headers());
        let form = Params::parse(req.body());
        let (client_id, secret) = match (&basic, form.get("client_id")) {
            (Some((id, secret)), _) => (Some(id.as_str()), Some(secret.as_str())),
            (None, id) => (id, form.get("client_secret")),
        };
        let authenticated = match client_id {
            Some(id) => self.authenticate(id, secret, basic.is_some()).await,
            None => false,
        };
        match client_id.filter(|_| authenticated) {
            Some(id) => Ok((id.to_string(), form)),
            None => Err(reply::error(
                401,
                "invalid_client",
                "client authentication failed",
            )),
        }
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
}

/// A registration request's JSON object (member names unique).
pub(super) fn registration(body: &[u8]) -> Option<Map<String, Value>> {
    crate::json::object_with_unique_names(body).ok()
}

/// The answer to a registration body that is no JSON object.
pub(super) fn unreadable_registration() -> Reply {
    reply::error(
        400,
        "invalid_client_metadata",
        "the body is not a JSON object",
    )
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
pub(crate) fn acceptable_redirect(uri: &str) -> bool {
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
}
