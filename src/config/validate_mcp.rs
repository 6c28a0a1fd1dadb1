//! Validation of a route's `mcp` block: the body limit and the tool, prompt and resource rules.

use super::fields::claim_values;
use super::file::{McpFile, NameRuleFile, NameRulesFile, OneOrMany};
use super::{Auth, ConfigError, McpPolicy, NameRule, NameRules, Need};

/// The most of a request body the gateway reads to decide: Pingora replays a body it read
/// to the upstream from a buffer of this size, and no more.
pub const MAX_BODY_LIMIT: usize = 64 * 1024;

pub fn mcp(raw: McpFile, auth: &Auth, at: &str) -> Result<McpPolicy, ConfigError> {
    let max_body = match raw.max_body {
        None => MAX_BODY_LIMIT,
        Some(v) => byte_size(&v).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.max_body"),
                "write a size like 64KiB, 16KiB or 4096 (bytes)",
            )
        })?,
    };
    if max_body == 0 || max_body > MAX_BODY_LIMIT {
        return Err(ConfigError::new(
            format!("{at}.max_body"),
            "must be between 1 byte and 64KiB: the gateway holds the body to decide, and \
             replays at most 64KiB of it to the upstream",
        ));
    }
    let rules = |raw: Option<NameRulesFile>, kind: &str| {
        raw.map(|r| name_rules(r, auth, &format!("{at}.{kind}")))
            .transpose()
    };
    Ok(McpPolicy {
        max_body,
        audit_arguments: raw.audit_arguments.unwrap_or(false),
        tools: rules(raw.tools, "tools")?,
        prompts: rules(raw.prompts, "prompts")?,
        resources: rules(raw.resources, "resources")?,
    })
}

/// `65536`, `64KiB`, `512B`.
fn byte_size(v: &serde_norway::Value) -> Option<usize> {
    if let Some(n) = v.as_u64() {
        return usize::try_from(n).ok();
    }
    let s = v.as_str()?.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = number.parse().ok()?;
    match unit.trim() {
        "" | "B" => Some(n),
        "KiB" => n.checked_mul(1024),
        _ => None,
    }
}

fn name_rules(raw: NameRulesFile, auth: &Auth, at: &str) -> Result<NameRules, ConfigError> {
    let default_allow = match raw.default.as_deref() {
        None | Some("allow") => true,
        Some("deny") => false,
        Some(other) => {
            return Err(ConfigError::new(
                format!("{at}.default"),
                format!("`{other}`: write `allow` or `deny`"),
            ))
        }
    };
    let rules = raw
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| rule(r, auth, &format!("{at}.rules[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(NameRules {
        default_allow,
        rules,
    })
}

fn rule(raw: NameRuleFile, auth: &Auth, at: &str) -> Result<NameRule, ConfigError> {
    let names = match raw.name {
        OneOrMany::One(n) => vec![n],
        OneOrMany::Many(list) => list,
    };
    if names.is_empty()
        || names
            .iter()
            .any(|n| n.is_empty() || n.contains(char::is_control))
    {
        return Err(ConfigError::new(
            format!("{at}.name"),
            "give a name or glob (`delete_*`), or a list of them; none may be empty",
        ));
    }
    let requires = !raw.scopes.is_empty() || !raw.roles.is_empty() || !raw.claims.is_empty();
    let need = match (raw.allow, requires) {
        (Some(_), true) => {
            return Err(ConfigError::new(
                format!("{at}.allow"),
                "a rule either allows, denies, or names what it needs (scopes, roles, \
                 claims), not both",
            ))
        }
        (Some(true), false) => Need::Allow,
        (Some(false), false) => Need::Deny,
        (None, false) => {
            return Err(ConfigError::new(
                at,
                "say what the rule does: `allow: true`, `allow: false`, or the `scopes`, \
                 `roles` or `claims` it needs",
            ))
        }
        (None, true) => {
            let Auth::Bearer(bearer) = auth else {
                return Err(ConfigError::new(
                    at,
                    "scopes, roles and claims need a route with `auth.provider`: only its \
                     tokens carry them (use `allow: true` or `allow: false` here)",
                ));
            };
            if !raw.roles.is_empty() && !bearer.roles.is_configured() {
                return Err(ConfigError::new(
                    format!("{at}.roles"),
                    "the route's `auth.roles` says where roles come from \
                     (`from_scopes`, `from_claim`); it has neither",
                ));
            }
            Need::Require {
                scopes: raw.scopes,
                roles: raw.roles,
                claims: claim_values(raw.claims, &format!("{at}.claims"))?,
            }
        }
    };
    Ok(NameRule { names, need })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The error of a config whose route has `auth` and `mcp` as given.
    fn error(auth: &str, mcp: &str) -> String {
        let yaml = format!(
            "listen: 127.0.0.1:8080\npublic_url: http://gw.test\nproviders:\n  idp: {{ issuer: \
             http://idp.test, jwks_uri: http://idp.test/j }}\nroutes:\n  - prefix: /mcp\n    \
             upstream: http://127.0.0.1:2\n    auth: {auth}\n    mcp: {mcp}\n"
        );
        Config::from_yaml(&yaml, std::path::Path::new("."), &|_| None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_name_their_key() {
        let bearer = "{ provider: idp, audience: a }";
        for (auth, mcp, expected) in [
            (
                bearer,
                "{ max_body: 1MiB }",
                "routes[0].mcp.max_body: write a size like",
            ),
            (
                bearer,
                "{ max_body: 65537 }",
                "routes[0].mcp.max_body: must be between",
            ),
            (
                bearer,
                "{ tools: { default: maybe } }",
                "routes[0].mcp.tools.default: `maybe`",
            ),
            (
                bearer,
                "{ tools: { rules: [ { name: x } ] } }",
                "routes[0].mcp.tools.rules[0]: say what the rule does",
            ),
            (
                bearer,
                "{ tools: { rules: [ { name: x, allow: true, scopes: [s] } ] } }",
                "routes[0].mcp.tools.rules[0].allow: a rule either allows",
            ),
            (
                bearer,
                "{ tools: { rules: [ { name: [], allow: true } ] } }",
                "routes[0].mcp.tools.rules[0].name: give a name",
            ),
            (
                bearer,
                "{ prompts: { rules: [ { name: p, roles: [admin] } ] } }",
                "routes[0].mcp.prompts.rules[0].roles: the route's `auth.roles`",
            ),
            (
                "none",
                "{ resources: { rules: [ { name: 'file:*', scopes: [s] } ] } }",
                "routes[0].mcp.resources.rules[0]: scopes, roles and claims need a route",
            ),
            (bearer, "{ tool: {} }", "unknown field `tool`"),
        ] {
            let got = error(auth, mcp);
            assert!(got.contains(expected), "{mcp}: {got}");
        }
    }

    #[test]
    fn sizes() {
        let v = |s: &str| serde_norway::from_str::<serde_norway::Value>(s).unwrap();
        assert_eq!(byte_size(&v("4096")), Some(4096));
        assert_eq!(byte_size(&v("'4096'")), Some(4096));
        assert_eq!(byte_size(&v("16KiB")), Some(16384));
        assert_eq!(byte_size(&v("'512 B'")), Some(512));
        assert_eq!(byte_size(&v("64KB")), None);
        assert_eq!(byte_size(&v("KiB")), None);
        assert_eq!(byte_size(&v("-1")), None);
    }
}
