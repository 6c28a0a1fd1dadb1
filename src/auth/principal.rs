//! Who a verified token speaks for: its claims, with the few the gateway reads on every
//! request (subject, scopes, audiences, expiry) pulled out once, when the token is verified.

use serde_json::{Map, Value};

pub struct Principal {
    pub subject: String,
    /// From `scope` (space-separated) or `scp` (array or string, as Entra and Okta write it).
    pub scopes: Vec<String>,
    /// `aud`, a string or an array.
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// The OAuth client the token was issued to (`client_id`, else `azp`), for audit lines.
    pub client_id: Option<String>,
    /// `email`, only if the token says it is verified (`email_verified: true`) or the
    /// provider is trusted to send verified addresses only: an unverified address proves
    /// nothing (anyone can put any address in an account at some IdPs).
    email: Option<String>,
    claims: Map<String, Value>,
}

impl Principal {
    /// Only a subject and a client: the gateway's own tokens carry no claims to read.
    pub fn subject_only(subject: String, client_id: Option<String>) -> Principal {
        Principal {
            subject,
            scopes: Vec::new(),
            audiences: Vec::new(),
            expires_at: None,
            client_id,
            email: None,
            claims: Map::new(),
        }
    }

    pub fn from_claims(claims: Map<String, Value>, trust_unverified_email: bool) -> Principal {
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut scopes = strings(claims.get("scope"));
        if scopes.is_empty() {
            scopes = strings(claims.get("scp"));
        }
        let audiences = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            other => strings(other),
        };
        Principal {
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            scopes,
            audiences,
            expires_at: claims.get("exp").and_then(Value::as_u64),
            client_id: ["client_id", "azp"]
                .iter()
                .find_map(|k| claims.get(*k).and_then(Value::as_str))
                .map(str::to_string),
            email: claims
                .get("email")
                .and_then(Value::as_str)
                .filter(|_| {
                    trust_unverified_email
                        || claims.get("email_verified") == Some(&Value::Bool(true))
                })
                .map(str::to_string),
            claims,
        }
    }

    /// A claim by name, or by path for a nested one (`realm_access.roles`). A top-level name
    /// that contains dots (Auth0's `https://example.com/roles`) is found as it is.
    pub fn claim(&self, path: &str) -> Option<&Value> {
        if let Some(v) = self.claims.get(path) {
            return Some(v);
        }
        let mut parts = path.split('.');
        let mut value = self.claims.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(value)
    }

    /// A subject is sent upstream and written to audit lines: one with control characters
    /// (a line break, a NUL) could split a header or forge a log line, so it is refused.
    pub fn check_subject(&self) -> Result<(), super::Reject> {
        if self.subject.chars().any(char::is_control) {
            return Err(super::Reject::BadSubject);
        }
        Ok(())
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the claim at `path` is `value` or, for an array claim, contains it.
    pub fn claim_has(&self, path: &str, value: &Value) -> bool {
        match self.claim(path) {
            Some(Value::Array(items)) if !value.is_array() => items.contains(value),
            Some(v) => v == value,
            None => false,
        }
    }

    /// The strings at `path` (one string, or an array of them).
    pub fn claim_strings<'a>(&'a self, path: &str) -> impl Iterator<Item = &'a str> + 'a {
        let value = self.claim(path);
        let one = value.and_then(Value::as_str);
        let many = value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        one.into_iter().chain(many)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Principal {
        Principal::from_claims(v.as_object().unwrap().clone(), false)
    }

    #[test]
    fn trusts_only_verified_emails_unless_told_otherwise() {
        let claims = json!({"email":"a@x.org"}).as_object().unwrap().clone();
        assert_eq!(Principal::from_claims(claims.clone(), false).email(), None);
        assert_eq!(
            Principal::from_claims(claims, true).email(),
            Some("a@x.org")
        );
        let verified = p(json!({"email":"a@x.org","email_verified":true}));
        assert_eq!(verified.email(), Some("a@x.org"));
        let dotted = p(json!({"https://app.example.com/roles":["r"]}));
        assert!(dotted.claim("https://app.example.com/roles").is_some());
    }

    #[test]
    fn reads_the_usual_claim_shapes() {
        let a = p(json!({"sub":"u1","scope":"a b","aud":"x","exp":5,
            "realm_access":{"roles":["admin","dev"]},"groups":"g1"}));
        assert_eq!((a.subject.as_str(), a.expires_at), ("u1", Some(5)));
        assert_eq!(a.scopes, ["a", "b"]);
        assert_eq!(a.audiences, ["x"]);
        assert!(a.has_scope("b") && !a.has_scope("c"));
        assert_eq!(
            a.claim_strings("realm_access.roles").collect::<Vec<_>>(),
            ["admin", "dev"]
        );
        assert_eq!(a.claim_strings("groups").collect::<Vec<_>>(), ["g1"]);
        assert!(a.claim_has("realm_access.roles", &json!("dev")));
        let b = p(json!({"scp":["r","w"],"aud":["x","y"]}));
        assert_eq!(b.scopes, ["r", "w"]);
        assert_eq!(b.audiences, ["x", "y"]);
        assert_eq!(b.subject, "");
    }
}
