//! The audit line: one JSON object per request on an authenticated route (and per MCP
//! request on a route that reads them), to the log target `mcpgate::audit`, which
//! `audit_log` can send to a file of its own. It names who (subject, client), where
//! (route), what (HTTP method; MCP method, name, decision, the arguments' SHA-256) and
//! how it went (status, latency). Tool arguments appear only where a route turns that on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::info;
use serde::Serialize;
use serde_json::value::RawValue;

use super::Inspected;
use crate::auth::principal::Principal;
use crate::logging::AUDIT_TARGET;

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    http_method: &'a str,
    status: u16,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Box<RawValue>>,
}

/// What one request's audit line says.
pub struct Request<'a> {
    pub route: &'a str,
    pub caller: Option<&'a Principal>,
    pub http_method: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub inspected: Option<&'a Inspected>,
}

pub fn write(r: Request) {
    // Built only when it will be written (`RUST_LOG=warn` and no `audit_log`: never).
    if !log::log_enabled!(target: AUDIT_TARGET, log::Level::Info) {
        return;
    }
    let mcp = r.inspected;
    let line = Line {
        time: rfc3339_now(),
        route: r.route,
        sub: r.caller.map(|p| p.subject.as_str()),
        client: r.caller.and_then(|p| p.client_id.as_deref()),
        http_method: r.http_method,
        status: r.status,
        latency_ms: (r.elapsed.as_secs_f64() * 1e6).round() / 1e3,
        mcp_method: mcp.map(|i| i.method.as_str()).filter(|m| !m.is_empty()),
        // A resource URI's query or fragment may carry a credential, as a path's query may
        // (the access log drops those too).
        name: mcp
            .and_then(|i| i.name.as_deref())
            .map(|n| n.split(['?', '#']).next().unwrap_or(n)),
        decision: mcp.map(|i| i.decision),
        arguments_sha256: mcp.and_then(|i| i.arguments_sha256.as_deref()),
        arguments: mcp
            .and_then(|i| i.arguments.clone())
            .and_then(|a| RawValue::from_string(a).ok()),
    };
    if let Ok(json) = serde_json::to_string(&line) {
        info!(target: AUDIT_TARGET, "{json}");
    }
}

/// `2026-12-01T23:59:59.123Z`.
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now)
}

fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Duration::from_millis(1_764_633_599_123)),
            "2025-12-01T23:59:59.123Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
