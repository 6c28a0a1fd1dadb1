//! How a value of each kind in the file is checked: files that must exist, durations,
//! bounded durations, http(s) URLs. Every check names the key path it failed on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::{parse_duration, ConfigError};

pub(super) fn existing_file(base: &Path, p: &str, at: &str) -> Result<PathBuf, ConfigError> {
    let path = base.join(p);
    if !path.is_file() {
        return Err(ConfigError::new(
            at,
            format!("no such file: {}", path.display()),
        ));
    }
    Ok(path)
}

pub(super) fn duration(
    s: Option<&str>,
    default: Duration,
    at: &str,
) -> Result<Duration, ConfigError> {
    s.map_or(Ok(default), |s| {
        parse_duration(s).map_err(|e| ConfigError::new(at, e))
    })
}

/// A duration in whole-second bounds (`min..=max`), so that no setting can turn a
/// protection off (a zero cooldown) or make tokens live on (a day of leeway).
pub(super) fn bounded(
    raw: Option<&str>,
    default_secs: u64,
    (min, max): (u64, u64),
    at: &str,
) -> Result<Duration, ConfigError> {
    let d = duration(raw, Duration::from_secs(default_secs), at)?;
    if d < Duration::from_secs(min) || d > Duration::from_secs(max) {
        return Err(ConfigError::new(
            at,
            format!("must be between {min}s and {max}s"),
        ));
    }
    Ok(d)
}

/// An http(s) URL without credentials in it.
pub(super) fn http_url(s: &str, at: &str) -> Result<String, ConfigError> {
    match Url::parse(s) {
        // Credentials in a URL would reach logs with every error about it.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(ConfigError::new(
            at,
            "must not carry credentials (use client_id and client_secret)",
        )),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(s.to_string()),
        _ => Err(ConfigError::new(at, "must be an http(s) URL")),
    }
}

/// Claim path → the value it must have, as JSON (what tokens are read as).
pub(super) fn claim_values(
    claims: std::collections::BTreeMap<String, serde_norway::Value>,
    at: &str,
) -> Result<Vec<(String, serde_json::Value)>, ConfigError> {
    claims
        .into_iter()
        .map(|(k, v)| {
            serde_json::to_value(v)
                .map(|v| (k.clone(), v))
                .map_err(|e| ConfigError::new(format!("{at}.{k}"), e.to_string()))
        })
        .collect()
}
