//! Validation of what routes refer to by name or share: identity providers, downstream
//! OAuth services, the seal keys, and the state store.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::fields::{bounded, duration, existing_file, http_url};
use super::file::{ProviderFile, ServiceFile, StateFile};
use super::{
    ClientAuth, ConfigError, JwksSource, ProviderConfig, RedisConfig, SealKeys, Secret,
    ServiceConfig, StateConfig, TlsConfig, TokenMode,
};

pub fn providers(
    file: BTreeMap<String, ProviderFile>,
    base: &Path,
) -> Result<BTreeMap<String, ProviderConfig>, ConfigError> {
    file.into_iter()
        .map(|(name, p)| {
            let at = format!("providers.{name}");
            provider(p, &at, base).map(|p| (name, p))
        })
        .collect()
}

fn provider(p: ProviderFile, at: &str, base: &Path) -> Result<ProviderConfig, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    http_url(&p.issuer, &key("issuer"))?;
    let jwks = match (p.jwks_uri, p.jwks_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                at,
                "set `jwks_uri` or `jwks_file`, not both",
            ))
        }
        (Some(uri), None) => JwksSource::Uri(http_url(&uri, &key("jwks_uri"))?),
        (None, Some(file)) => JwksSource::File(existing_file(base, &file, &key("jwks_file"))?),
        (None, None) => JwksSource::Discovery,
    };
    let tokens = match p.tokens.as_deref() {
        None | Some("jwt") => TokenMode::Jwt,
        Some("introspection") => TokenMode::Introspection,
        Some("jwt_then_introspection") => TokenMode::JwtThenIntrospection,
        Some(other) => {
            return Err(ConfigError::new(
                key("tokens"),
                format!("`{other}` is not one of jwt, introspection, jwt_then_introspection"),
            ))
        }
    };
    let client_auth = match p.client_auth.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some("tls_client_auth") => ClientAuth::TlsClientAuth,
        Some(other) => {
            return Err(ConfigError::new(
                key("client_auth"),
                format!(
                "`{other}` is not one of client_secret_basic, client_secret_post, tls_client_auth"
            ),
            ))
        }
    };
    let client_cert = p
        .client_cert
        .map(|c| {
            Ok::<_, ConfigError>(TlsConfig {
                cert: existing_file(base, &c.cert, &key("client_cert.cert"))?,
                key: existing_file(base, &c.key, &key("client_cert.key"))?,
            })
        })
        .transpose()?;
    if client_auth == ClientAuth::TlsClientAuth && client_cert.is_none() {
        return Err(ConfigError::new(
            key("client_cert"),
            "is required with client_auth: tls_client_auth",
        ));
    }
    if tokens != TokenMode::Jwt && p.client_id.is_none() {
        return Err(ConfigError::new(
            key("client_id"),
            "is required to introspect tokens",
        ));
    }
    let endpoint = |v: Option<String>, k: &str| v.map(|u| http_url(&u, &key(k))).transpose();
    Ok(ProviderConfig {
        issuer: p.issuer,
        jwks,
        tokens,
        introspection_endpoint: endpoint(p.introspection_endpoint, "introspection_endpoint")?,
        token_endpoint: endpoint(p.token_endpoint, "token_endpoint")?,
        authorization_endpoint: endpoint(p.authorization_endpoint, "authorization_endpoint")?,
        audience: p.audience,
        resource: p.resource,
        scope_prefix: p.scope_prefix,
        extra_scopes: p.extra_scopes,
        client_id: p.client_id,
        client_secret: p.client_secret.map(Secret),
        client_auth,
        client_cert,
        ca_file: p
            .ca_file
            .map(|f| existing_file(base, &f, &key("ca_file")))
            .transpose()?,
        leeway: bounded(p.leeway.as_deref(), 60, (0, 300), &key("leeway"))?,
        required_claims: p.required_claims.unwrap_or_default(),
        token_types: token_types(p.token_types, &key("token_types"))?,
        jwks_refresh: bounded(
            p.jwks_refresh.as_deref(),
            600,
            (1, 86_400),
            &key("jwks_refresh"),
        )?,
        jwks_cooldown: bounded(
            p.jwks_cooldown.as_deref(),
            30,
            (1, 86_400),
            &key("jwks_cooldown"),
        )?,
        token_cache: p.token_cache.unwrap_or(65_536),
        introspection_cache_ttl: duration(
            p.introspection_cache_ttl.as_deref(),
            Duration::from_secs(60),
            &key("introspection_cache_ttl"),
        )?,
        timeout: bounded(p.timeout.as_deref(), 5, (1, 60), &key("timeout"))?,
        exchanges_tokens: false,
        brokers: false,
        trust_unverified_email: p.trust_unverified_email.unwrap_or(false),
    })
}

/// `token_types`: RFC 9068's `at+jwt` and the plain `JWT` most IdPs still send, unless the
/// provider says otherwise. Written as media types (`application/at+jwt`) or short.
fn token_types(list: Option<Vec<String>>, at: &str) -> Result<Vec<String>, ConfigError> {
    let Some(list) = list else {
        return Ok(vec!["at+jwt".into(), "jwt".into()]);
    };
    if list.is_empty() {
        return Err(ConfigError::new(
            at,
            "needs at least one type (at+jwt, jwt)",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let t = t.to_ascii_lowercase();
            let short = t.strip_prefix("application/").unwrap_or(&t);
            if short.is_empty() || short.contains(['/', ' ']) {
                return Err(ConfigError::new(
                    format!("{at}[{i}]"),
                    format!("`{t}` is not a media type like at+jwt"),
                ));
            }
            Ok(short.to_string())
        })
        .collect()
}

/// `seal_key` and `seal_keys_previous`: base64 (standard or URL-safe) of 32 bytes each.
pub fn seal_keys(current: Option<String>, previous: Vec<String>) -> Result<SealKeys, ConfigError> {
    let decode = |s: &str, at: &str| -> Result<[u8; 32], ConfigError> {
        use base64::Engine;
        let s = s.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))
            })
            .map_err(|_| {
                ConfigError::new(at, "is not base64 (make one with: openssl rand -base64 32)")
            })?;
        bytes.try_into().map_err(|_| {
            ConfigError::new(
                at,
                "must be 32 bytes (make one with: openssl rand -base64 32)",
            )
        })
    };
    Ok(SealKeys {
        // Empty (an unset `${VAR:-}`) means none.
        current: current
            .filter(|k| !k.trim().is_empty())
            .map(|k| decode(&k, "seal_key"))
            .transpose()?,
        previous: previous
            .iter()
            .enumerate()
            .map(|(i, k)| decode(k, &format!("seal_keys_previous[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

pub fn services(
    file: BTreeMap<String, ServiceFile>,
    base: &Path,
) -> Result<BTreeMap<String, ServiceConfig>, ConfigError> {
    file.into_iter()
        .map(|(name, s)| {
            let key = |k: &str| format!("oauth_services.{name}.{k}");
            let client_auth = match s.client_auth.as_deref() {
                None | Some("client_secret_post") => ClientAuth::Post,
                Some("client_secret_basic") => ClientAuth::Basic,
                Some(other) => {
                    return Err(ConfigError::new(
                        key("client_auth"),
                        format!("`{other}` is not one of client_secret_post, client_secret_basic"),
                    ))
                }
            };
            let service = ServiceConfig {
                authorize_url: http_url(&s.authorize_url, &key("authorize_url"))?,
                token_url: http_url(&s.token_url, &key("token_url"))?,
                client_id: s.client_id,
                client_secret: Secret(s.client_secret),
                client_auth,
                pkce: s.pkce.unwrap_or(true),
                scopes: s.scopes,
                ca_file: s
                    .ca_file
                    .map(|f| existing_file(base, &f, &key("ca_file")))
                    .transpose()?,
                timeout: bounded(s.timeout.as_deref(), 10, (1, 60), &key("timeout"))?,
            };
            Ok((name, service))
        })
        .collect()
}

/// `state`: memory unless Redis is named. The URL must be `redis://` or `rediss://`.
pub fn state(file: Option<StateFile>) -> Result<StateConfig, ConfigError> {
    let Some(StateFile::Redis(redis)) = file else {
        return Ok(StateConfig::Memory);
    };
    let scheme = redis.url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("redis" | "rediss")) || url::Url::parse(&redis.url).is_err() {
        // The URL is not repeated: it may carry a password.
        return Err(ConfigError::new(
            "state.redis.url",
            "must be a redis:// or rediss:// URL",
        ));
    }
    let prefix = redis.key_prefix.unwrap_or_else(|| "mcpgate".into());
    if prefix.is_empty() || prefix.contains([' ', '\n', '\r']) {
        return Err(ConfigError::new(
            "state.redis.key_prefix",
            "must be a word without spaces",
        ));
    }
    Ok(StateConfig::Redis(RedisConfig {
        url: Secret(redis.url),
        key_prefix: prefix,
        timeout: bounded_ms(redis.timeout.as_deref(), "state.redis.timeout")?,
    }))
}

/// A Redis operation's timeout: 500 ms unless set, between 10 ms and 10 s.
fn bounded_ms(raw: Option<&str>, at: &str) -> Result<Duration, ConfigError> {
    let d = duration(raw, Duration::from_millis(500), at)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(10) {
        return Err(ConfigError::new(at, "must be between 10ms and 10s"));
    }
    Ok(d)
}
