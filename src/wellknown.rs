//! What the gateway answers at fixed paths before routing: `/healthz`, `/readyz`, and the
//! discovery documents (RFC 9728 protected resource metadata, RFC 8414 / OpenID
//! authorization server metadata) at the root and with a route's path inserted.

use pingora::http::RequestHeader;

use crate::cors;
use crate::oauth::reply::{self, Reply};
use crate::snapshot::Snapshot;

/// `/healthz` (the process runs) and `/readyz` (spawned upstreams listen, providers have
/// their keys).
///
/// `/readyz` also says which state store is in use and whether it answers, but an
/// unreachable store does not make a replica unready: tokens already issued keep working
/// without it, and every replica shares the store, so failing the probe would take all of
/// them out of service at once.
pub fn health(snapshot: &Snapshot, path: &str) -> Option<Reply> {
    match path {
        "/healthz" => Some(reply::json(200, r#"{"status":"ok"}"#)),
        "/readyz" => {
            let ready = snapshot.is_ready();
            let state = &snapshot.shared.state;
            let mut body = serde_json::json!({
                "status": if ready { "ready" } else { "not_ready" },
                "state": state.name(),
                "state_reachable": state.reachable(),
            });
            let failing = snapshot.failing_upstreams();
            if !failing.is_empty() {
                body["failing_upstreams"] = serde_json::Value::from(failing);
            }
            Some(reply::json(if ready { 200 } else { 503 }, body.to_string()))
        }
        _ => None,
    }
}

/// The 404 for a request no route matches, naming what was asked for (cut short: the
/// path is the caller's, already canonical and printable).
pub fn no_route(host: Option<&str>, path: &str) -> Reply {
    let shown: String = path.chars().take(200).collect();
    let description = match host {
        Some(host) => format!("no route matches {shown} on host {host}"),
        None => format!("no route matches {shown}"),
    };
    reply::error(404, "not_found", &description)
}

/// A discovery document, if `path` (canonical) asks for one; 404 for a route that has none.
pub fn discovery(
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
    req: &RequestHeader,
) -> Option<Reply> {
    if let Some(resource) = crate::oauth::metadata::requested_resource(path) {
        if cors::is_preflight(req) {
            // Any origin may read discovery documents, without credentials.
            return Some(reply::empty(204));
        }
        let document = snapshot
            .discovery_route(host, resource)
            .and_then(|i| snapshot.routes[i].resource_metadata.clone());
        return Some(match document {
            Some(body) => reply::document(body),
            None => reply::error(404, "not_found", "no protected resource at this path"),
        });
    }
    let issuer = crate::oauth::metadata::requested_issuer(path)?;
    let server = snapshot
        .discovery_route(host, issuer)
        .and_then(|i| snapshot.routes[i].oauth.as_ref());
    Some(match server {
        Some(server) => reply::document(server.metadata()),
        None => reply::error(404, "not_found", "no authorization server at this path"),
    })
}
