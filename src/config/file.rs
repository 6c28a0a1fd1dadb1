//! The YAML file as written by an operator. Only shapes live here; meaning is checked in
//! `validate`, which turns this into the runtime [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// One address or a list of them.
    pub listen: OneOrMany,
    pub public_url: Option<String>,
    pub tls: Option<TlsFile>,
    pub metrics: Option<String>,
    pub access_log: Option<bool>,
    #[serde(default)]
    pub server: ServerFile,
    pub routes: Vec<RouteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub threads: Option<usize>,
    pub grace_period: Option<String>,
    pub graceful_shutdown_timeout: Option<String>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Option<String>,
    pub host: Option<String>,
    pub prefix: String,
    pub upstream: String,
    pub strip_prefix: Option<bool>,
    pub ca_file: Option<String>,
    pub sni: Option<String>,
    pub connect_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub auth: AuthFile,
    pub spawn: Option<SpawnFile>,
}

/// What protects a route. There is no default: a route without `auth` does not load.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthFile {
    /// Explicitly unprotected: requests pass through untouched.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnFile {
    /// A list of arguments, or one string run by `sh -c`.
    pub command: Command,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub ready_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}
