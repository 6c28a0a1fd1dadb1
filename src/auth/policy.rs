//! A route's rules for an authenticated subject: scopes, allow-lists and roles. Checked on
//! every request against the verified claims; nothing here allocates unless it denies.

use super::principal::Principal;
use crate::config::{Allow, BearerAuth, Roles};

/// Which rule denied the request; the metrics reason and the 403 body name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Some required scope is missing (answered with `insufficient_scope`).
    Scope,
    Subject,
    Email,
    Group,
    Claim(String),
    Role,
}

impl Denial {
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Scope => "insufficient_scope",
            Denial::Subject => "subject_not_allowed",
            Denial::Email => "email_not_allowed",
            Denial::Group => "group_not_allowed",
            Denial::Claim(_) => "claim_not_allowed",
            Denial::Role => "missing_role",
        }
    }

    pub fn description(&self) -> String {
        match self {
            Denial::Scope => "the token lacks a required scope".into(),
            Denial::Subject => "the subject is not in the route's allow list".into(),
            Denial::Email => {
                "the email is not in the route's allow list (or is not verified)".into()
            }
            Denial::Group => "no group of the subject is in the route's allow list".into(),
            Denial::Claim(name) => format!("claim `{name}` does not have an allowed value"),
            Denial::Role => "the subject has none of the roles the route requires".into(),
        }
    }
}

pub fn check(auth: &BearerAuth, p: &Principal) -> Result<(), Denial> {
    if !auth.scopes.iter().all(|s| p.has_scope(s)) {
        return Err(Denial::Scope);
    }
    check_allow(&auth.allow, p)?;
    let roles = &auth.roles;
    if !roles.required.is_empty() && !roles.required.iter().any(|r| has_role(roles, p, r)) {
        return Err(Denial::Role);
    }
    Ok(())
}

fn check_allow(allow: &Allow, p: &Principal) -> Result<(), Denial> {
    if let Some(subjects) = &allow.subjects {
        if !subjects.contains(&p.subject) {
            return Err(Denial::Subject);
        }
    }
    if let Some(patterns) = &allow.emails {
        // `email()` is only set for a verified address (see `Principal`).
        let ok = p
            .email()
            .is_some_and(|e| patterns.iter().any(|pat| email_matches(pat, e)));
        if !ok {
            return Err(Denial::Email);
        }
    }
    if let Some(groups) = &allow.groups {
        if !p
            .claim_strings(&allow.groups_claim)
            .any(|g| groups.iter().any(|a| a == g))
        {
            return Err(Denial::Group);
        }
    }
    for (name, value) in &allow.claims {
        if !p.claim_has(name, value) {
            return Err(Denial::Claim(name.clone()));
        }
    }
    Ok(())
}

/// `*@example.com` matches any address at that domain; anything else matches exactly.
/// Both ignore case.
fn email_matches(pattern: &str, email: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(domain) if domain.starts_with('@') => email
            .len()
            .checked_sub(domain.len())
            .and_then(|at| email.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(domain)),
        _ => pattern.eq_ignore_ascii_case(email),
    }
}

fn has_role(roles: &Roles, p: &Principal, role: &str) -> bool {
    all_roles(roles, p).any(|r| r == role)
}

/// The subject's roles: those its scopes grant, then those in the role claims.
pub fn all_roles<'a>(roles: &'a Roles, p: &'a Principal) -> impl Iterator<Item = &'a str> + 'a {
    let from_scopes = roles
        .from_scopes
        .iter()
        .filter(|(scope, _)| p.has_scope(scope))
        .map(|(_, role)| role.as_str());
    let from_claims = roles
        .from_claims
        .iter()
        .flat_map(|path| p.claim_strings(path));
    from_scopes.chain(from_claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn principal(v: Value) -> Principal {
        Principal::from_claims(v.as_object().unwrap().clone(), false)
    }

    fn auth() -> BearerAuth {
        BearerAuth {
            provider: "p".into(),
            audiences: vec!["a".into()],
            scopes: vec![],
            allow: Allow {
                groups_claim: "groups".into(),
                ..Allow::default()
            },
            roles: Roles::default(),
            rate_limit: None,
            oauth: crate::config::OAuthMode::Direct,
            consent: Default::default(),
            sign_in_scopes: vec![],
        }
    }

    #[test]
    fn email_patterns() {
        assert!(email_matches("*@example.com", "ann@Example.COM"));
        assert!(!email_matches("*@example.com", "ann@evilexample.com"));
        assert!(!email_matches("*@example.com", "@example.co"));
        assert!(email_matches("Ann@x.org", "ann@x.org"));
        assert!(!email_matches("ann@x.org", "bob@x.org"));
    }

    #[test]
    fn every_configured_rule_must_pass() {
        let p = principal(
            json!({"sub":"u1","email":"ann@corp.com","email_verified":true,"scope":"mcp:tools mcp:admin",
            "groups":["eng"],"tenant":"t1","realm_access":{"roles":["dev"]}}),
        );
        let mut a = auth();
        assert_eq!(check(&a, &p), Ok(()));
        a.scopes = vec!["mcp:tools".into(), "mcp:write".into()];
        assert_eq!(check(&a, &p), Err(Denial::Scope));
        a.scopes = vec!["mcp:tools".into()];
        a.allow.emails = Some(vec!["*@corp.com".into()]);
        a.allow.groups = Some(vec!["eng".into(), "ops".into()]);
        a.allow.claims = vec![("tenant".into(), json!("t1"))];
        assert_eq!(check(&a, &p), Ok(()));
        a.allow.claims = vec![("tenant".into(), json!("t2"))];
        assert_eq!(check(&a, &p), Err(Denial::Claim("tenant".into())));
        a.allow.claims.clear();
        a.allow.subjects = Some(vec!["u2".into()]);
        assert_eq!(check(&a, &p), Err(Denial::Subject));
        a.allow.subjects = None;
        a.roles.from_scopes = vec![("mcp:admin".into(), "admin".into())];
        a.roles.from_claims = vec!["realm_access.roles".into()];
        a.roles.required = vec!["admin".into()];
        assert_eq!(check(&a, &p), Ok(()));
        assert_eq!(
            all_roles(&a.roles, &p).collect::<Vec<_>>(),
            ["admin", "dev"]
        );
        a.roles.required = vec!["owner".into()];
        assert_eq!(check(&a, &p), Err(Denial::Role));
    }

    #[test]
    fn an_unverified_email_does_not_match() {
        let p = principal(json!({"sub":"u","email":"ann@corp.com","email_verified":false}));
        let mut a = auth();
        a.allow.emails = Some(vec!["*@corp.com".into()]);
        assert_eq!(check(&a, &p), Err(Denial::Email));
    }
}
