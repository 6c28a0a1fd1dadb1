//! Bearer validation and the route's policy, all decided in `request_filter` before any
//! byte reaches an upstream. A route's [`Guard`] is compiled once per snapshot with its
//! challenges pre-rendered; providers (keys, caches) live across reloads.

pub mod cache;
pub mod jwk;
pub mod jwt;
pub mod policy;
pub mod principal;
pub mod provider;
pub mod rate_limit;
pub mod token_client;

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderValue;
use pingora::http::RequestHeader;

use crate::config::BearerAuth;
use policy::Denial;
use principal::Principal;
use provider::Provider;
use rate_limit::Decision;

/// Why a token was not accepted: the `reason` label of `mcpgate_auth_failures_total` and
/// the log. Never shown to the client, who gets `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Missing,
    TooLarge,
    Malformed,
    UnsupportedAlg,
    UnsupportedHeader,
    KeyInHeader,
    UnknownKey,
    AlgMismatch,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingClaim,
    /// A JWT of a type the provider does not issue as access tokens, or an ID token.
    WrongTokenType,
    /// A subject with control characters.
    BadSubject,
    Inactive,
    /// A token the gateway sealed for another route.
    WrongRoute,
    /// A token the gateway sealed whose grant was revoked.
    Revoked,
    /// The provider's keys were never fetched and cannot be now (503).
    KeysUnavailable,
    /// The introspection endpoint failed (503).
    IntrospectionUnavailable,
}

impl Reject {
    pub fn reason(self) -> &'static str {
        match self {
            Reject::Missing => "missing_token",
            Reject::TooLarge => "token_too_large",
            Reject::Malformed => "malformed",
            Reject::UnsupportedAlg => "unsupported_alg",
            Reject::UnsupportedHeader => "unsupported_header",
            Reject::KeyInHeader => "key_in_header",
            Reject::UnknownKey => "unknown_kid",
            Reject::AlgMismatch => "alg_mismatch",
            Reject::BadSignature => "bad_signature",
            Reject::WrongIssuer => "wrong_issuer",
            Reject::WrongAudience => "wrong_audience",
            Reject::Expired => "expired",
            Reject::NotYetValid => "not_yet_valid",
            Reject::IssuedInFuture => "issued_in_future",
            Reject::MissingClaim => "missing_claim",
            Reject::WrongTokenType => "wrong_token_type",
            Reject::BadSubject => "bad_subject",
            Reject::Inactive => "inactive",
            Reject::WrongRoute => "wrong_route",
            Reject::Revoked => "revoked",
            Reject::KeysUnavailable => "keys_unavailable",
            Reject::IntrospectionUnavailable => "introspection_unavailable",
        }
    }
}

/// A refusal, ready to be written: status, headers and body.
pub struct Deny {
    pub status: u16,
    pub reason: &'static str,
    /// `WWW-Authenticate` (401, and 403 for scope).
    pub challenge: Option<HeaderValue>,
    pub body: Bytes,
    /// Set for a 429: what the `Retry-After` and `RateLimit-*` headers say (boxed: refusals
    /// travel in `Result`s and should stay small).
    pub rate: Option<Box<Decision>>,
    /// Set when the token was good and a rule denied it: the audit line names the subject.
    pub principal: Option<Arc<Principal>>,
}

/// A route's `WWW-Authenticate` values, rendered once per snapshot: no token, a bad token,
/// too few scopes.
pub struct Challenges {
    missing: HeaderValue,
    invalid: HeaderValue,
    insufficient: HeaderValue,
}

impl Challenges {
    /// `resource_metadata` is the route's RFC 9728 document URL.
    pub fn new(
        resource_metadata: &str,
        scopes: &[String],
    ) -> Result<Challenges, http::header::InvalidHeaderValue> {
        let mut base = format!(r#"Bearer resource_metadata="{resource_metadata}""#);
        if !scopes.is_empty() {
            base.push_str(&format!(r#", scope="{}""#, scopes.join(" ")));
        }
        Ok(Challenges {
            invalid: HeaderValue::try_from(format!(r#"{base}, error="invalid_token""#))?,
            insufficient: HeaderValue::try_from(format!(r#"{base}, error="insufficient_scope""#))?,
            missing: HeaderValue::try_from(base)?,
        })
    }

    pub fn reject(&self, r: Reject) -> Deny {
        let (status, challenge, body) = match r {
            Reject::Missing => (
                401,
                Some(self.missing.clone()),
                error_json!("unauthorized", "a bearer token is required"),
            ),
            Reject::KeysUnavailable | Reject::IntrospectionUnavailable => (
                503,
                None,
                error_json!(
                    "temporarily_unavailable",
                    "the identity provider cannot be reached; retry shortly"
                ),
            ),
            _ => (
                401,
                Some(self.invalid.clone()),
                error_json!(
                    "invalid_token",
                    "the access token is invalid, expired or not meant for this resource"
                ),
            ),
        };
        Deny {
            status,
            reason: r.reason(),
            challenge,
            body: Bytes::from_static(body.as_bytes()),
            rate: None,
            principal: None,
        }
    }
}

/// The 429 that refuses a request over its route's rate limit.
pub fn rate_limited(decision: Decision, principal: Arc<Principal>) -> Deny {
    Deny {
        status: 429,
        reason: "rate_limited",
        challenge: None,
        body: Bytes::from_static(
            error_json!("rate_limited", "too many requests; retry later").as_bytes(),
        ),
        rate: Some(Box::new(decision)),
        principal: Some(principal),
    }
}

/// A route's bearer check, compiled for one snapshot.
pub struct Guard {
    pub provider: Arc<Provider>,
    /// Tokens without `sub` are refused: the route limits or names subjects.
    needs_subject: bool,
    challenges: Challenges,
}

impl Guard {
    /// `resource_metadata` is the route's RFC 9728 document URL.
    pub fn new(
        auth: &BearerAuth,
        resource_metadata: &str,
        provider: Arc<Provider>,
        needs_subject: bool,
    ) -> Result<Guard, http::header::InvalidHeaderValue> {
        Ok(Guard {
            provider,
            needs_subject,
            challenges: Challenges::new(resource_metadata, auth.advertised_scopes())?,
        })
    }

    /// Token, then audience, then the route's rules (its rate limit is the route's).
    pub async fn check(
        &self,
        auth: &BearerAuth,
        req: &RequestHeader,
        now: u64,
    ) -> Result<Arc<Principal>, Deny> {
        let principal = match bearer_token(req) {
            Ok(token) => self.provider.authenticate(token, now).await,
            Err(e) => Err(e),
        }
        .map_err(|r| self.reject(r))?;
        if !principal
            .audiences
            .iter()
            .any(|a| auth.audiences.iter().any(|b| a == b))
        {
            return Err(self.reject(Reject::WrongAudience));
        }
        if self.needs_subject && principal.subject.is_empty() {
            return Err(self.reject(Reject::MissingClaim));
        }
        if let Err(denial) = policy::check(auth, &principal) {
            return Err(self.deny(denial, principal));
        }
        Ok(principal)
    }

    fn reject(&self, r: Reject) -> Deny {
        self.challenges.reject(r)
    }

    fn deny(&self, denial: Denial, principal: Arc<Principal>) -> Deny {
        let (challenge, body) = match denial {
            Denial::Scope => (
                Some(self.challenges.insufficient.clone()),
                Bytes::from_static(
                    error_json!(
                        "insufficient_scope",
                        "the access token lacks a scope this resource requires"
                    )
                    .as_bytes(),
                ),
            ),
            ref other => {
                let body = serde_json::json!({
                    "error": "access_denied",
                    "error_description": other.description(),
                });
                (None, Bytes::from(body.to_string()))
            }
        };
        Deny {
            status: 403,
            reason: denial.reason(),
            challenge,
            body,
            rate: None,
            principal: Some(principal),
        }
    }
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1). Another scheme, or no
/// header, counts as no token; a bearer value that is not a token68 is malformed.
pub fn bearer_token(req: &RequestHeader) -> Result<&str, Reject> {
    let mut values = req.headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if req.headers.contains_key(AUTHORIZATION) {
            Reject::Malformed // two Authorization headers
        } else {
            Reject::Missing
        });
    };
    let bytes = value.as_bytes();
    if bytes.len() < 7 || !bytes[..7].eq_ignore_ascii_case(b"bearer ") {
        return Err(Reject::Missing);
    }
    let token = value.to_str().map_err(|_| Reject::Malformed)?[7..].trim_start_matches(' ');
    if token.len() > jwt::MAX_TOKEN_LEN {
        return Err(Reject::TooLarge);
    }
    if !is_token68(token) {
        return Err(Reject::Malformed);
    }
    Ok(token)
}

/// RFC 7235 `token68`: what a bearer token may be made of.
pub fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    !body.is_empty() && body.bytes().all(allowed)
}

/// Seconds since the epoch, the unit of `exp`.
pub fn unix_now() -> u64 {
    provider::unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(values: &[&str]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for v in values {
            r.append_header("Authorization", *v).unwrap();
        }
        r
    }

    #[test]
    fn reads_bearer_tokens_strictly() {
        assert_eq!(
            bearer_token(&req(&["Bearer abc.def-_~+/="])),
            Ok("abc.def-_~+/=")
        );
        assert_eq!(bearer_token(&req(&["bearer  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&req(&[])), Err(Reject::Missing));
        assert_eq!(
            bearer_token(&req(&["Basic dXNlcg=="])),
            Err(Reject::Missing)
        );
        assert_eq!(bearer_token(&req(&["Bearer "])), Err(Reject::Malformed));
        assert_eq!(bearer_token(&req(&["Bearer a b"])), Err(Reject::Malformed));
        assert_eq!(
            bearer_token(&req(&["Bearer a", "Bearer b"])),
            Err(Reject::Malformed)
        );
        let long = format!("Bearer {}", "a".repeat(jwt::MAX_TOKEN_LEN + 1));
        assert_eq!(bearer_token(&req(&[&long])), Err(Reject::TooLarge));
    }
}
