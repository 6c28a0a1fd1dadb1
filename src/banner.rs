//! What the gateway says at start and after each reload: where it listens, each route's
//! public URL, where it forwards and how it is protected, and where the metrics are. A
//! newcomer reads these lines to know which URL to give a client (the gateway's, never the
//! upstream's own port, which a spawned upstream announces in its own words).

use std::path::Path;

use log::{info, warn};

use crate::config::{Auth, Config, OAuthMode, Route, Strategy};
use crate::oauth::metadata::resource_url;
use crate::snapshot::Snapshot;

/// The log target, so that the lines read `mcpgate::banner` whatever module calls.
const TARGET: &str = "mcpgate::banner";

/// At start: the listeners, then the routes and the metrics address; what would lose
/// sign-ins or cannot work.
pub fn started(snapshot: &Snapshot, path: &Path) {
    let config = &snapshot.config;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listeners: Vec<String> = config
        .listen
        .iter()
        .map(|addr| format!("{scheme}://{addr}"))
        .collect();
    info!(
        target: TARGET,
        "mcpgate {} listening on {} (config {})",
        env!("CARGO_PKG_VERSION"),
        listeners.join(", "),
        path.display()
    );
    routes(snapshot);
    if let Some(metrics) = config.metrics {
        info!(target: TARGET, "metrics on http://{metrics}/metrics");
    }
    let seals = config.providers.values().any(|p| p.brokers)
        || snapshot
            .routes
            .iter()
            .any(|r| matches!(r.spec.auth, Auth::Issued(_)));
    if seals && config.seal_keys.current.is_none() {
        warn!(target: TARGET, "no seal_key configured: using a random key; sealed codes, registrations and tokens do not survive a restart or work across replicas (make one with `openssl rand -base64 32`)");
    }
    for warning in config.warnings() {
        warn!(target: TARGET, "{warning}");
    }
}

/// After a reload: the routes now served.
pub fn reloaded(snapshot: &Snapshot, path: &Path) {
    info!(
        target: TARGET,
        "reloaded {}: {} routes",
        path.display(),
        snapshot.routes.len()
    );
    routes(snapshot);
}

fn routes(snapshot: &Snapshot) {
    for route in &snapshot.routes {
        info!(target: TARGET, "  {}", route_line(&snapshot.config, &route.spec));
    }
}

/// `http://127.0.0.1:8080/mcp/everything → http://127.0.0.1:3001/mcp (passthrough, spawned)`.
pub fn route_line(config: &Config, route: &Route) -> String {
    let public = match &route.host {
        Some(host) => format!("{} (host {host})", resource_url(&config.public_url, route)),
        None => resource_url(&config.public_url, route),
    };
    let spawned = if route.spawn.is_some() {
        ", spawned"
    } else {
        ""
    };
    format!(
        "{public} → {} ({}{spawned})",
        route.upstream.url,
        protection(&route.auth)
    )
}

/// How a route is protected, in the config's own words.
fn protection(auth: &Auth) -> String {
    match auth {
        Auth::None => "open: auth none".to_string(),
        Auth::Bearer(bearer) => {
            let mode = match bearer.oauth {
                OAuthMode::Direct => "",
                OAuthMode::Broker => ", oauth broker",
                OAuthMode::Redirect => ", oauth redirect",
            };
            format!("bearer tokens of {}{mode}", bearer.provider)
        }
        Auth::Issued(issued) => match &issued.strategy {
            Strategy::Passthrough(_) => "passthrough".to_string(),
            Strategy::Chained { service } => format!("chained to {service}"),
        },
    }
}
