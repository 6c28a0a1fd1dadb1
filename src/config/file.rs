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
    /// A file for the audit lines, relative to the config file's directory.
    pub audit_log: Option<String>,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub connections: ConnectionsFile,
    /// `replace` or `append`.
    pub forwarded: Option<String>,
    /// `memory`, or `{ redis: { url, key_prefix, timeout } }`.
    pub state: Option<StateFile>,
    pub refresh_grace: Option<String>,
    #[serde(default)]
    pub client_metadata_documents: ClientDocumentsFile,
    /// The route whose discovery documents the root well-known paths serve.
    pub default_route: Option<String>,
    /// base64 of 32 bytes: seals codes, state and client registrations.
    pub seal_key: Option<String>,
    /// Older seal keys, still accepted when opening.
    #[serde(default)]
    pub seal_keys_previous: Vec<String>,
    /// Identity providers (issuers) that routes' `auth` refers to by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderFile>,
    /// OAuth services the gateway is a client of, for chained routes.
    #[serde(default)]
    pub oauth_services: BTreeMap<String, ServiceFile>,
    pub routes: Vec<RouteFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDocumentsFile {
    #[serde(default)]
    pub allow_private_addresses: bool,
    pub ca_file: Option<String>,
}

#[derive(Debug, PartialEq, Deserialize)]
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
    pub watch_config: Option<bool>,
}

/// `state: memory` or `state: { redis: { … } }`.
#[derive(Debug)]
pub enum StateFile {
    Memory,
    Redis(RedisFile),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateMap {
    redis: RedisFile,
}

/// Written by hand for the same reason as [`AuthFile`]'s: key paths inside the mapping.
impl<'de> Deserialize<'de> for StateFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StateFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`memory` or a mapping with `redis`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StateFile, E> {
                match v {
                    "memory" => Ok(StateFile::Memory),
                    other => Err(E::unknown_variant(other, &["memory", "redis"])),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StateFile, A::Error> {
                StateMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|m| StateFile::Redis(m.redis))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    pub url: String,
    pub key_prefix: Option<String>,
    pub timeout: Option<String>,
}

/// Limits on client connections, before any HTTP is read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsFile {
    pub max: Option<usize>,
    pub per_address: Option<usize>,
    pub header_timeout: Option<String>,
    pub keepalive_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Option<String>,
    pub display_name: Option<String>,
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
    pub upstream_auth: Option<UpstreamAuthFile>,
    pub cors: Option<CorsFile>,
    pub spawn: Option<SpawnFile>,
    pub mcp: Option<McpFile>,
}

/// What the gateway reads of a route's MCP requests, and who may call what.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpFile {
    /// `64KiB`, `16KiB`, or a number of bytes.
    pub max_body: Option<serde_norway::Value>,
    pub audit_arguments: Option<bool>,
    pub tools: Option<NameRulesFile>,
    pub prompts: Option<NameRulesFile>,
    pub resources: Option<NameRulesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRulesFile {
    /// `allow` or `deny`: what a name no rule matches gets.
    pub default: Option<String>,
    #[serde(default)]
    pub rules: Vec<NameRuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRuleFile {
    /// A name or glob (`delete_*`), or a list of them.
    pub name: OneOrMany,
    pub allow: Option<bool>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, serde_norway::Value>,
}

/// What protects a route. There is no default: a route without `auth` does not load.
#[derive(Debug)]
pub enum AuthFile {
    /// `auth: none`: explicitly unprotected.
    None,
    /// `auth: { provider: …, … }`, `{ passthrough: … }` or `{ chained: … }`.
    Bearer(Box<BearerFile>),
}

/// `none` as a string, or a mapping; written by hand so that a mistake inside the mapping
/// keeps its precise key path (an untagged enum would only say "no variant matched").
impl<'de> Deserialize<'de> for AuthFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AuthFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`none` or a mapping with `provider`, `passthrough` or `chained`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AuthFile, E> {
                match v {
                    "none" => Ok(AuthFile::None),
                    other => Err(E::unknown_variant(other, &["none"])),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AuthFile, A::Error> {
                BearerFile::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|b| AuthFile::Bearer(Box::new(b)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One mapping for every protected route; validation checks that exactly one of
/// `provider`, `passthrough` and `chained` is set and that the rest fits it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerFile {
    pub provider: Option<String>,
    pub passthrough: Option<PassthroughFile>,
    pub chained: Option<ChainedFileOrName>,
    /// Lifetimes of the tokens the gateway seals (passthrough and chained).
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
    /// What `aud` must contain; default: the route's public URL.
    pub audience: Option<OneOrMany>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub allow: AllowFile,
    #[serde(default)]
    pub roles: RolesFile,
    pub rate_limit: Option<RateLimitFile>,
    /// `direct` (clients go to the IdP), `broker` (the gateway is their OAuth server) or
    /// `redirect` (the gateway's endpoints, the IdP answering the client).
    pub oauth: Option<String>,
    #[serde(default)]
    pub consent: ConsentFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassthroughFile {
    /// The form field's label: what the user is asked for.
    pub prompt: String,
    pub help: Option<String>,
    /// `Name: template with {key}`; default `Authorization: Bearer {key}`.
    pub header: Option<String>,
    /// Or a query parameter that carries the key.
    pub query: Option<String>,
    /// A URL the key is tried on (GET, placed as upstream) before it is accepted.
    pub probe: Option<String>,
    /// Hand out the key itself as the access token.
    #[serde(default)]
    pub raw: bool,
}

/// `chained: github`, or `chained: { service: github, header: … }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainedFile {
    pub service: String,
    /// `Name: template with {token}`; default `Authorization: Bearer {token}`.
    pub header: Option<String>,
    pub query: Option<String>,
}

impl<'de> Deserialize<'de> for ChainedFileOrName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ChainedFileOrName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a service name or a mapping with `service`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ChainedFileOrName(ChainedFile {
                    service: v.to_string(),
                    header: None,
                    query: None,
                }))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                ChainedFile::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ChainedFileOrName)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `chained:` as written: a name is shorthand for `{ service: name }`.
#[derive(Debug)]
pub struct ChainedFileOrName(pub ChainedFile);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_post` (default, GitHub's way) or `client_secret_basic`.
    pub client_auth: Option<String>,
    /// Send a PKCE challenge (default true; some services reject or ignore it).
    pub pkce: Option<bool>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFile {
    pub remember: Option<String>,
    #[serde(default)]
    pub trusted_redirect_uris: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFile {
    pub subjects: Option<Vec<String>>,
    pub emails: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    #[serde(default)]
    pub from_scopes: BTreeMap<String, String>,
    pub from_claim: Option<OneOrMany>,
    #[serde(default)]
    pub required: Vec<String>,
}

/// `600/min`, or `{ rate: 600/min, burst: 50 }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RateLimitFile {
    Rate(String),
    Full { rate: String, burst: Option<u32> },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamAuthFile {
    #[serde(default)]
    pub forward_token: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub identity: Option<IdentityFile>,
    pub token_exchange: Option<TokenExchangeFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    pub subject: Option<String>,
    pub email: Option<String>,
    pub roles: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeFile {
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFile {
    pub origins: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks_file: Option<String>,
    pub tokens: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    /// Sent to the IdP's authorize and token endpoints when brokering.
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope_prefix: Option<String>,
    #[serde(default)]
    pub extra_scopes: Vec<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_auth: Option<String>,
    pub client_cert: Option<TlsFile>,
    pub ca_file: Option<String>,
    pub leeway: Option<String>,
    pub required_claims: Option<Vec<String>>,
    /// JOSE `typ` values accepted for access tokens.
    pub token_types: Option<Vec<String>>,
    pub jwks_refresh: Option<String>,
    pub jwks_cooldown: Option<String>,
    pub token_cache: Option<usize>,
    pub introspection_cache_ttl: Option<String>,
    pub timeout: Option<String>,
    pub trust_unverified_email: Option<bool>,
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
