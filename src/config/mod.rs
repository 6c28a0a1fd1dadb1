//! Configuration: the YAML file model (`file`), `${ENV}` interpolation (`interpolate`), and the
//! validated runtime model below, which is all the rest of the gateway ever sees.

mod duration;
mod file;
mod interpolate;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::parse_duration;
pub use file::FileConfig;

/// A configuration problem, with the key path it concerns (`routes[3].upstream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    /// What clients see; no trailing slash.
    pub public_url: String,
    pub tls: Option<TlsConfig>,
    pub metrics: Option<SocketAddr>,
    /// One log line per request (method, path without query, status, route, latency).
    pub access_log: bool,
    pub server: ServerSettings,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub threads: usize,
    /// How long an old process keeps accepting after a graceful upgrade or shutdown begins.
    pub grace_period: Duration,
    /// How long open requests and streams may then run before the process exits anyway.
    pub graceful_shutdown_timeout: Duration,
    pub pid_file: String,
    pub upgrade_sock: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Metrics and log label: the configured `name`, else `host` + `prefix`.
    pub name: String,
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Starts with `/`, no trailing `/` except for the root prefix itself.
    pub prefix: String,
    pub upstream: Upstream,
    pub strip_prefix: bool,
    pub timeouts: Timeouts,
    pub auth: Auth,
    pub spawn: Option<Spawn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The URL as written, for messages.
    pub url: String,
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path the remainder of the request path is appended to; empty for the root.
    pub base_path: String,
    /// `Host` header sent upstream: host, plus the port when it is not the scheme's default.
    pub authority: String,
    pub sni: String,
    /// PEM file with the CAs that sign the upstream's certificate (https only).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// How long an idle upstream connection stays in the keepalive pool.
    pub idle: Duration,
    /// Longest wait for any read from the upstream, including between stream events.
    /// `None` (the default) so that long-lived streams are never cut.
    pub read: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `auth: none`, said explicitly: the route is open and requests pass untouched.
    None,
}

/// A command the gateway runs to serve a route's upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// How long a request waits for a (re)starting upstream before it gets 503.
    pub ready_timeout: Duration,
}

impl Config {
    /// Reads, interpolates and validates a file. Relative paths in it (CA, TLS files) are
    /// taken relative to the file's own directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, base, &|name| std::env::var(name).ok())
    }

    pub fn from_yaml(
        text: &str,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut tree: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {} column {}", l.line(), l.column()))
                .unwrap_or_default();
            ConfigError::new(at, format!("not valid YAML: {e}"))
        })?;
        interpolate::interpolate_tree(&mut tree, &mut String::new(), env)?;
        let file: FileConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ConfigError::new(path, e.into_inner().to_string())
        })?;
        validate::validate(file, base_dir)
    }
}
