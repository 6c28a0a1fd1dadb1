//! One kind's rules (tools, prompts or resources) compiled for a route: the first rule whose
//! name matches decides; none matches, the default. Deciding allocates nothing: the step-up
//! challenge of each rule is rendered when the route is compiled.

use http::HeaderValue;

use crate::auth::policy::all_roles;
use crate::auth::principal::Principal;
use crate::config::{NameRule, NameRules, Need, Roles};

pub struct Rules {
    default_allow: bool,
    rules: Vec<Rule>,
    /// Some rule depends on who calls: a list filtered by these rules differs per caller.
    pub caller_specific: bool,
}

struct Rule {
    names: Vec<Pattern>,
    need: Need,
    /// What the 403 names: the rule's key path and its first name.
    label: String,
    /// `WWW-Authenticate` of the step-up: the route's scopes and this rule's.
    challenge: Option<HeaderValue>,
}

/// What a call gets.
#[derive(Debug, PartialEq)]
pub enum Decision<'r> {
    Allow,
    /// More scope would let it through: the 403 carries this challenge.
    StepUp(&'r HeaderValue),
    /// Refused by the named rule (or `default`).
    Deny(&'r str),
}

/// What compiling needs of the route: its scopes and its resource metadata URL (for the
/// step-up challenge), and the key path of the rules (for the labels).
pub struct RouteFacts<'a> {
    pub scopes: &'a [String],
    pub resource_metadata: &'a str,
    pub at: &'a str,
}

impl Rules {
    pub fn compile(spec: &NameRules, route: &RouteFacts) -> Result<Rules, String> {
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| compile_rule(rule, i, route))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules {
            default_allow: spec.default_allow,
            caller_specific: rules.iter().any(|r| matches!(r.need, Need::Require { .. })),
            rules,
        })
    }

    /// The decision for `name`, called by `caller` (none on an open route), whose roles
    /// come from `roles`.
    pub fn decide(
        &self,
        name: &str,
        caller: Option<&Principal>,
        roles: Option<&Roles>,
    ) -> Decision<'_> {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.names.iter().any(|pattern| pattern.matches(name)))
        else {
            return if self.default_allow {
                Decision::Allow
            } else {
                Decision::Deny("default")
            };
        };
        let (scopes, wanted_roles, claims) = match &rule.need {
            Need::Allow => return Decision::Allow,
            Need::Deny => return Decision::Deny(&rule.label),
            Need::Require {
                scopes,
                roles,
                claims,
            } => (scopes, roles, claims),
        };
        let Some(p) = caller else {
            return Decision::Deny(&rule.label);
        };
        let has_role = wanted_roles.is_empty()
            || roles.is_some_and(|roles| {
                all_roles(roles, p).any(|r| wanted_roles.iter().any(|w| w == r))
            });
        if !has_role || !claims.iter().all(|(path, value)| p.claim_has(path, value)) {
            return Decision::Deny(&rule.label);
        }
        match &rule.challenge {
            Some(challenge) if !scopes.iter().all(|s| p.has_scope(s)) => {
                Decision::StepUp(challenge)
            }
            _ => Decision::Allow,
        }
    }
}

fn compile_rule(rule: &NameRule, index: usize, route: &RouteFacts) -> Result<Rule, String> {
    let label = format!("{}.rules[{index}] ({})", route.at, rule.names[0]);
    let challenge = match &rule.need {
        Need::Require { scopes, .. } if !scopes.is_empty() => {
            let mut all: Vec<&str> = route.scopes.iter().map(String::as_str).collect();
            for s in scopes {
                if !all.contains(&s.as_str()) {
                    all.push(s);
                }
            }
            let value = format!(
                r#"Bearer error="insufficient_scope", scope="{}", resource_metadata="{}", error_description="this call needs more scope""#,
                all.join(" "),
                route.resource_metadata
            );
            Some(HeaderValue::try_from(value).map_err(|_| {
                format!(
                    "{}.rules[{index}].scopes: a scope a header cannot carry",
                    route.at
                )
            })?)
        }
        _ => None,
    };
    Ok(Rule {
        names: rule.names.iter().map(|n| Pattern::new(n)).collect(),
        need: rule.need.clone(),
        label,
        challenge,
    })
}

/// A rule's name: exact, or a glob (told apart once, when the route is compiled).
enum Pattern {
    Exact(String),
    Glob(String),
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        match text.contains(['*', '?']) {
            true => Pattern::Glob(text.to_string()),
            false => Pattern::Exact(text.to_string()),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Exact(exact) => exact == name,
            Pattern::Glob(glob) => glob_matches(glob, name),
        }
    }
}

/// `*` matches any run of characters (also none), `?` exactly one; everything else itself.
/// Linear in practice: on a mismatch after a `*`, that `*` takes one more character.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == name;
    }
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ni += utf8_len(n[ni]);
            }
            Some(&c) if c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    let next = sn + utf8_len(n[sn]);
                    (pi, ni, star) = (sp + 1, next, Some((sp, next)));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The length of the UTF-8 character that starts with `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob_matches("delete_*", "delete_repository"));
        assert!(glob_matches("delete_*", "delete_"));
        assert!(!glob_matches("delete_*", "undelete_x"));
        assert!(glob_matches("*_admin", "db_admin"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("get_?", "get_x"));
        assert!(!glob_matches("get_?", "get_xy"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("file:///etc/*", "file:///etc/passwd"));
        assert!(glob_matches("wörk_*", "wörk_ü"));
        assert!(glob_matches("w?rk", "wörk"));
        assert!(glob_matches("*ü", "aüü"));
        assert!(!glob_matches("w?rk", "work_"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("exact", "Exact"));
    }

    fn principal(claims: serde_json::Value) -> Principal {
        Principal::from_claims(claims.as_object().unwrap().clone(), false)
    }

    fn rules(default_allow: bool, rules: Vec<(&str, Need)>) -> Rules {
        let spec = NameRules {
            default_allow,
            rules: rules
                .into_iter()
                .map(|(name, need)| NameRule {
                    names: vec![name.to_string()],
                    need,
                })
                .collect(),
        };
        let facts = RouteFacts {
            scopes: &["mcp".to_string()],
            resource_metadata: "https://gw/.well-known/oauth-protected-resource/mcp",
            at: "routes[0].mcp.tools",
        };
        Rules::compile(&spec, &facts).unwrap()
    }

    fn require(scopes: &[&str], roles: &[&str], claims: &[(&str, serde_json::Value)]) -> Need {
        Need::Require {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            claims: claims
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let r = rules(
            false,
            vec![
                ("list_*", Need::Allow),
                ("delete_*", require(&["repo:delete"], &[], &[])),
                ("drop_*", Need::Deny),
                ("*", require(&[], &["admin"], &[("tenant", json!("acme"))])),
            ],
        );
        assert!(r.caller_specific);
        let roles = Roles {
            from_claims: vec!["roles".into()],
            ..Roles::default()
        };
        let ann = principal(json!({"sub":"ann","scope":"mcp","roles":["admin"],"tenant":"acme"}));
        let bob = principal(json!({"sub":"bob","scope":"mcp repo:delete","tenant":"other"}));
        let decide = |name, p: &Principal| r.decide(name, Some(p), Some(&roles));
        assert_eq!(decide("list_issues", &bob), Decision::Allow);
        assert_eq!(decide("delete_repo", &bob), Decision::Allow);
        let Decision::StepUp(challenge) = decide("delete_repo", &ann) else {
            panic!("no step-up")
        };
        assert_eq!(
            challenge.to_str().unwrap(),
            r#"Bearer error="insufficient_scope", scope="mcp repo:delete", resource_metadata="https://gw/.well-known/oauth-protected-resource/mcp", error_description="this call needs more scope""#
        );
        assert_eq!(
            decide("drop_table", &ann),
            Decision::Deny("routes[0].mcp.tools.rules[2] (drop_*)")
        );
        assert_eq!(decide("search", &ann), Decision::Allow);
        assert_eq!(
            decide("search", &bob),
            Decision::Deny("routes[0].mcp.tools.rules[3] (*)")
        );
        // No caller (an open route) meets no requirement.
        assert_eq!(
            r.decide("delete_repo", None, None),
            Decision::Deny("routes[0].mcp.tools.rules[1] (delete_*)")
        );
    }

    #[test]
    fn the_default_decides_what_no_rule_names() {
        let r = rules(false, vec![("echo", Need::Allow)]);
        assert!(!r.caller_specific);
        assert_eq!(r.decide("echo", None, None), Decision::Allow);
        assert_eq!(r.decide("echo2", None, None), Decision::Deny("default"));
        let r = rules(true, vec![("rm", Need::Deny)]);
        assert_eq!(r.decide("ls", None, None), Decision::Allow);
    }

    #[test]
    fn a_role_or_claim_missing_is_no_step_up() {
        let r = rules(true, vec![("x", require(&["more"], &["admin"], &[]))]);
        let p = principal(json!({"sub":"u","scope":"mcp"}));
        let roles = Roles {
            from_scopes: vec![("admin-scope".into(), "admin".into())],
            ..Roles::default()
        };
        // More scope would not make the caller an admin (the role comes from another scope).
        assert!(matches!(
            r.decide("x", Some(&p), Some(&roles)),
            Decision::Deny(_)
        ));
    }
}
