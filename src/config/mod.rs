//! Configuration: the YAML file model (`file`), `${ENV}` interpolation (`interpolate`), and the
//! validated runtime model below, which is all the rest of the gateway ever sees.

mod depth;
mod duration;
mod fields;
mod file;
mod interpolate;
mod validate;
mod validate_auth;
mod validate_mcp;
mod validate_providers;

pub use validate_auth::DEFAULT_CORS_ORIGINS;

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
    /// With only loopback listeners, the request hosts served (lower case, no port);
    /// `None`: any.
    pub local_hosts: Option<Vec<String>>,
    pub tls: Option<TlsConfig>,
    pub metrics: Option<SocketAddr>,
    /// One log line per request (method, path without query, status, route, latency).
    pub access_log: bool,
    /// A file for the audit lines (one JSON object each); `None`: they go to the log.
    pub audit_log: Option<PathBuf>,
    pub server: ServerSettings,
    pub connections: ConnectionLimits,
    /// What the upstream is told of the client's address.
    pub forwarded: ForwardedPolicy,
    /// Where what must be remembered is kept: this process, or Redis for every replica.
    pub state: StateConfig,
    /// How long a used refresh token still gets the same answer again (parallel or retried
    /// refreshes); zero: none.
    pub refresh_grace: Duration,
    /// Seals what the gateway hands out instead of keeping state.
    pub seal_keys: SealKeys,
    pub client_metadata_documents: ClientDocuments,
    /// Index of the route whose discovery documents are also served at the root
    /// (`/.well-known/oauth-protected-resource`), for clients that look there.
    pub default_route: Option<usize>,
    /// By name, as routes refer to them.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// OAuth services the gateway is a client of (chained routes), by name.
    pub oauth_services: BTreeMap<String, ServiceConfig>,
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
    /// Reload when the config file changes, as on SIGHUP.
    pub watch_config: bool,
}

/// What one client, and all of them together, may hold open, and for how long a connection
/// may sit without sending a whole request head. Read at every accept, so a reload applies
/// them to new connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open client connections in all; `None`: derived from the open-files limit.
    pub max: Option<usize>,
    /// Open client connections per client address; 0: no cap.
    pub per_address: usize,
    /// A request head must arrive whole within this (from the accept, or from its first
    /// byte on a kept-alive connection).
    pub header_timeout: Duration,
    /// A kept-alive connection without a new request for this long is closed.
    pub keepalive_timeout: Duration,
}

/// Where codes, sign-in states, refresh-token uses, revocations and rate-limit buckets live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateConfig {
    /// This process: nothing to set up; one replica.
    #[default]
    Memory,
    /// Redis or Valkey, shared by every replica.
    Redis(RedisConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://` or `rediss://`, maybe with a password: a secret.
    pub url: Secret,
    /// Put before every key, so that several gateways can share one Redis.
    pub key_prefix: String,
    /// Per operation; an operation that takes longer fails as if Redis were down.
    pub timeout: Duration,
}

/// `X-Forwarded-For` and `Forwarded`: the client's own claims dropped and its address set
/// (at the edge), or the chain a trusted proxy in front built kept and extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedPolicy {
    #[default]
    Replace,
    Append,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Metrics and log label: the configured `name`, else `host` + `prefix`.
    pub name: String,
    /// What people are shown on the sign-in and consent pages (`display_name`).
    pub display_name: Option<String>,
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Starts with `/`, no trailing `/` except for the root prefix itself.
    pub prefix: String,
    pub upstream: Upstream,
    pub strip_prefix: bool,
    pub timeouts: Timeouts,
    pub auth: Auth,
    pub upstream_auth: UpstreamAuth,
    /// Browser origins allowed to call the route (exact `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    pub spawn: Option<Spawn>,
    /// Set when the route reads its MCP requests (`mcp:`): tool rules, audit lines.
    pub mcp: Option<McpPolicy>,
}

impl Route {
    /// The scopes a client may ask for on this route: its own, then those its MCP rules
    /// need (which a step-up asks for).
    pub fn scopes(&self) -> Vec<String> {
        let Auth::Bearer(bearer) = &self.auth else {
            return Vec::new();
        };
        let mut scopes = bearer.advertised_scopes().to_vec();
        let policy = self.mcp.iter();
        let kinds = policy.flat_map(|m| [&m.tools, &m.prompts, &m.resources]);
        for rule in kinds.flatten().flat_map(|r| &r.rules) {
            if let Need::Require { scopes: needed, .. } = &rule.need {
                for scope in needed {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
        }
        scopes
    }
}

/// A route's MCP policy: how much of a request body the gateway reads to decide, and the
/// rules for each kind of named thing a client can ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct McpPolicy {
    pub max_body: usize,
    /// Audit lines carry the tool arguments themselves, not only their digest.
    pub audit_arguments: bool,
    pub tools: Option<NameRules>,
    pub prompts: Option<NameRules>,
    /// Matched against resource URIs.
    pub resources: Option<NameRules>,
}

/// Ordered rules: the first whose name matches decides; no match, the default.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRules {
    pub default_allow: bool,
    pub rules: Vec<NameRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NameRule {
    /// Exact names and globs (`*` any run of characters, `?` one character).
    pub names: Vec<String>,
    pub need: Need,
}

/// What a rule asks of the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    Allow,
    Deny,
    /// Every scope, one of the roles (if any are named), every claim value.
    Require {
        scopes: Vec<String>,
        roles: Vec<String>,
        claims: Vec<(String, serde_json::Value)>,
    },
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

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// `auth: none`, said explicitly: the route is open and requests pass untouched.
    None,
    /// Bearer tokens from a provider, then the route's policy.
    Bearer(Box<BearerAuth>),
    /// The gateway is the route's authorization server and issues sealed tokens that carry
    /// the upstream's own credential (passthrough and chained strategies).
    Issued(Box<IssuedAuth>),
}

impl Auth {
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self {
            Auth::None => None,
            Auth::Bearer(b) => b.rate_limit.as_ref(),
            Auth::Issued(i) => i.rate_limit.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssuedAuth {
    pub strategy: Strategy,
    /// How the upstream receives the credential.
    pub placement: Placement,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub rate_limit: Option<RateLimit>,
    pub consent: ConsentSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// The user types the upstream's key into the gateway's page.
    Passthrough(Passthrough),
    /// The user signs in at a downstream OAuth service (`oauth_services.<name>`).
    Chained { service: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    pub prompt: String,
    pub help: Option<String>,
    /// Tried with the key (GET, placed as upstream) before the key is accepted.
    pub probe: Option<String>,
    /// The access token is the key itself: no lifetime, route binding or revocation.
    pub raw: bool,
}

/// Where the upstream's credential goes in the proxied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `name: {before}{credential}{after}`.
    Header {
        name: http::HeaderName,
        before: String,
        after: String,
    },
    /// A query parameter (any the client sent under that name is removed).
    Query(String),
}

/// A downstream OAuth service the gateway signs users in at as its own client.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub client_auth: ClientAuth,
    pub pkce: bool,
    pub scopes: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BearerAuth {
    pub provider: String,
    /// `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Every one is required.
    pub scopes: Vec<String>,
    pub allow: Allow,
    pub roles: Roles,
    pub rate_limit: Option<RateLimit>,
    pub oauth: OAuthMode,
    pub consent: ConsentSettings,
    /// What a route that brokers sign-ins but names no `scopes` advertises and asks the IdP
    /// for (empty otherwise): the provider's `extra_scopes` without `offline_access` (the
    /// MCP spec keeps it out of resource metadata), else `openid`. Spec-following clients
    /// ask for exactly what is advertised, and an IdP given nothing usable refuses.
    pub sign_in_scopes: Vec<String>,
}

impl BearerAuth {
    /// The scopes the route advertises: its own, else those its sign-ins ask for.
    pub fn advertised_scopes(&self) -> &[String] {
        if self.scopes.is_empty() {
            &self.sign_in_scopes
        } else {
            &self.scopes
        }
    }
}

/// The broker's consent page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsentSettings {
    /// How long a browser's approval of a client is remembered; zero: ask every time.
    pub remember: Duration,
    /// Clients sending users back to one of these skip the page (the code can only go there).
    pub trusted_redirect_uris: Vec<String>,
}

/// How client ID metadata documents (a `client_id` that is an https URL) are fetched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientDocuments {
    /// Let documents live on private, loopback or link-local addresses (tests, intranets).
    pub allow_private_addresses: bool,
    /// CAs trusted for their https servers besides the webpki roots.
    pub ca_file: Option<PathBuf>,
}

/// Who answers the route's OAuth discovery, registration, authorize and token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthMode {
    /// The IdP itself: the resource metadata names it, clients talk to it directly.
    Direct,
    /// The gateway, as a facade: its own registration, consent and codes, with the IdP
    /// behind it as the gateway's one static client.
    Broker,
    /// The gateway's discovery and endpoints, but the user goes straight to the IdP with the
    /// provider's static `client_id` and comes back to the client; `/token` adds the secret.
    /// For IdPs that list the clients' callbacks themselves.
    Redirect,
}

/// The seal key, and older ones that still open.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SealKeys {
    /// `None`: a random key for this process (flows do not survive a restart or cross
    /// replicas).
    pub current: Option<[u8; 32]>,
    pub previous: Vec<[u8; 32]>,
}

impl fmt::Debug for SealKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealKeys(<{} keys>)",
            self.current.iter().count() + self.previous.len()
        )
    }
}

/// Allow-lists. Each list that is set must match (a list matches if any entry does).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allow {
    pub subjects: Option<Vec<String>>,
    /// Exact addresses or `*@domain`.
    pub emails: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub groups_claim: String,
    /// Claim path (dots for nesting) → the value it must equal (or, for an array, contain).
    pub claims: Vec<(String, serde_json::Value)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Roles {
    /// Scope → role it grants.
    pub from_scopes: Vec<(String, String)>,
    /// Claim paths holding role names (`realm_access.roles`, `roles`).
    pub from_claims: Vec<String>,
    /// The subject needs at least one of these.
    pub required: Vec<String>,
}

impl Roles {
    /// Whether roles are used at all (required or sent upstream).
    pub fn is_configured(&self) -> bool {
        !self.from_scopes.is_empty() || !self.from_claims.is_empty()
    }
}

/// `limit` requests per `window` per subject, with bursts of up to `burst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
    pub burst: u32,
}

/// What the upstream receives in place of the client's token.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpstreamAuth {
    /// Send the client's `Authorization` on (MCP forbids it; for legacy upstreams only).
    pub forward_token: bool,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub identity: Option<IdentityHeaders>,
    pub token_exchange: Option<TokenExchange>,
}

/// Header names for the authenticated identity; always removed from the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub subject: http::HeaderName,
    pub email: http::HeaderName,
    pub roles: http::HeaderName,
}

/// RFC 8693 parameters; the provider's token endpoint and client credentials are used.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenExchange {
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// A value that must not reach logs: `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Secret {
    /// Empty, or the kind of text examples put where a secret goes (`change-me`, `<secret>`,
    /// `your-client-secret`, `TODO`).
    pub fn is_placeholder(&self) -> bool {
        let s = self.0.trim().to_ascii_lowercase();
        s.is_empty()
            || s.starts_with('<')
            || s.starts_with("your")
            || [
                "change",
                "replace",
                "todo",
                "xxxx",
                "placeholder",
                "secret-here",
            ]
            .iter()
            .any(|p| s.contains(p))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// JWTs verified locally against the provider's keys.
    Jwt,
    /// Every token introspected (RFC 7662), answers cached.
    Introspection,
    /// JWTs verified locally; anything else introspected.
    JwtThenIntrospection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
    /// mTLS: the client certificate authenticates; `client_id` goes in the form.
    TlsClientAuth,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Exactly as the IdP writes it in `iss`.
    pub issuer: String,
    pub jwks: JwksSource,
    pub tokens: TokenMode,
    pub introspection_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    /// `audience` and `resource` sent to the IdP when brokering.
    pub audience: Option<String>,
    pub resource: Option<String>,
    /// Put before each scope the gateway asks the IdP for (Entra: `api://<app id>/`); the
    /// tokens then carry the scopes without it.
    pub scope_prefix: Option<String>,
    /// Always asked for at the IdP as well (`openid`, `offline_access` for refresh tokens).
    pub extra_scopes: Vec<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    pub client_cert: Option<TlsConfig>,
    pub ca_file: Option<PathBuf>,
    pub leeway: Duration,
    /// Claims a JWT must carry besides `iss`, `aud` and `exp`.
    pub required_claims: Vec<String>,
    /// JOSE `typ` values a JWT access token may have: lower case, without `application/`;
    /// `jwt` also admits a token without `typ`.
    pub token_types: Vec<String>,
    /// Key-set refresh period when the IdP sends no `max-age`.
    pub jwks_refresh: Duration,
    /// Least time between refreshes caused by an unknown `kid`.
    pub jwks_cooldown: Duration,
    /// Verified-token cache entries; 0 turns the cache off.
    pub token_cache: usize,
    pub introspection_cache_ttl: Duration,
    /// Per request to the IdP.
    pub timeout: Duration,
    /// Some route exchanges tokens with this provider (RFC 8693).
    pub exchanges_tokens: bool,
    /// Some route brokers OAuth with this provider.
    pub brokers: bool,
    /// Take `email` as verified even without `email_verified: true` (for IdPs that only
    /// issue verified addresses but do not say so).
    pub trust_unverified_email: bool,
}

impl ProviderConfig {
    /// The `scope` parameter for the IdP's authorize endpoint, from the scopes a client asked
    /// the gateway for: prefixed as the IdP names them, plus `extra_scopes`.
    pub fn scopes_for_idp(&self, requested: &str) -> String {
        let prefix = self.scope_prefix.as_deref().unwrap_or("");
        let mut scopes: Vec<String> = requested
            .split_whitespace()
            .map(|s| format!("{prefix}{s}"))
            .collect();
        for extra in &self.extra_scopes {
            if !scopes.contains(extra) {
                scopes.push(extra.clone());
            }
        }
        scopes.join(" ")
    }

    /// Whether discovery must run: some endpoint the provider needs was not configured.
    pub fn needs_discovery(&self) -> bool {
        let jwt = self.tokens != TokenMode::Introspection;
        let introspect = self.tokens != TokenMode::Jwt;
        (jwt && self.jwks == JwksSource::Discovery)
            || (introspect && self.introspection_endpoint.is_none())
            || (self.exchanges_tokens && self.token_endpoint.is_none())
            || (self.brokers
                && (self.token_endpoint.is_none() || self.authorization_endpoint.is_none()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_uri` from the provider's metadata.
    Discovery,
    Uri(String),
    File(PathBuf),
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
    /// Whether a request for `host` (normalised, `None` for HTTP/1.0 without one) is for
    /// this gateway: see `local_hosts`. Names under `.localhost` are loopback (RFC 6761).
    pub fn serves_host(&self, host: Option<&str>) -> bool {
        match (&self.local_hosts, host) {
            (Some(hosts), Some(host)) => {
                host.ends_with(".localhost") || hosts.iter().any(|h| h == host)
            }
            _ => true,
        }
    }

    /// What loads but is likely a mistake: secrets that are empty or still a placeholder.
    /// Key paths only, never the values.
    pub fn warnings(&self) -> Vec<String> {
        let providers = self.providers.iter().filter_map(|(name, p)| {
            let secret = p.client_secret.as_ref()?;
            Some((format!("providers.{name}.client_secret"), secret))
        });
        let services = self.oauth_services.iter().map(|(name, s)| {
            (
                format!("oauth_services.{name}.client_secret"),
                &s.client_secret,
            )
        });
        providers
            .chain(services)
            .filter(|(_, secret)| secret.is_placeholder())
            .map(|(at, _)| {
                format!("{at} is empty or a placeholder; the IdP will refuse the gateway")
            })
            .collect()
    }

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
        depth::check_flow_depth(text)?;
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
            let reason = e.into_inner().to_string();
            match hint(&path, &reason) {
                Some(hint) => ConfigError::new(path, format!("{reason}; {hint}")),
                None => ConfigError::new(path, reason),
            }
        })?;
        validate::validate(file, base_dir)
    }
}

/// What to write instead, where the file parser's own words leave a newcomer guessing.
fn hint(path: &str, reason: &str) -> Option<&'static str> {
    let key = path.rsplit('.').next().unwrap_or(path);
    let number = reason.starts_with("invalid type: integer")
        || reason.starts_with("invalid type: floating point");
    let duration_key = [
        "timeout", "ttl", "grace", "period", "remember", "leeway", "cooldown",
    ]
    .iter()
    .any(|k| key.ends_with(k))
        || key == "jwks_refresh";
    if reason.starts_with("missing field `auth`") {
        Some("every route says how it is protected: `auth: none`, `auth: { provider: NAME }`, `auth: { passthrough: {...} }` or `auth: { chained: NAME }`")
    } else if number && duration_key {
        Some("write durations with a unit, like 500ms, 5s, 2m, 1h or 30d")
    } else {
        None
    }
}
