//! RFC 7662 introspection of opaque tokens, answers cached; a flood of made-up tokens
//! neither pushes live answers out nor opens unbounded calls to the IdP.

use std::sync::Arc;

use log::warn;

use super::Provider;
use crate::auth::cache::Key as CacheKey;
use crate::auth::principal::Principal;
use crate::auth::Reject;
use crate::metrics;

impl Provider {
    /// RFC 7662, answers cached (active until the token's `exp` or the TTL, inactive for the
    /// TTL). A failed call is not cached and says `IntrospectionUnavailable` (503).
    pub(super) async fn introspect(
        &self,
        token: &str,
        key: CacheKey,
        now: u64,
    ) -> Result<Arc<Principal>, Reject> {
        let ttl = self.config.introspection_cache_ttl.as_secs();
        if let Some(hit) = self.introspected.get(&key, now) {
            return Ok(hit.value.clone());
        }
        if self.inactive.get(&key, now).is_some() {
            return Err(Reject::Inactive);
        }
        let endpoint = self.endpoints.load().introspection.clone();
        let endpoint = endpoint.ok_or(Reject::IntrospectionUnavailable)?;
        let Ok(_slot) = self.introspection_slots.try_acquire() else {
            warn!("provider {}: too many introspections in flight", self.name);
            return Err(Reject::IntrospectionUnavailable);
        };
        let form = [("token", token), ("token_type_hint", "access_token")];
        let answer = self.client.post(&endpoint, &form).await;
        let claims = match answer {
            Ok(claims) => claims,
            Err(e) => {
                warn!("provider {}: introspection failed: {e}", self.name);
                metrics::INTROSPECTIONS
                    .with_label_values(&[&self.name, "error"])
                    .inc();
                return Err(Reject::IntrospectionUnavailable);
            }
        };
        metrics::INTROSPECTIONS
            .with_label_values(&[&self.name, "ok"])
            .inc();
        let active = claims.get("active").and_then(|v| v.as_bool()) == Some(true);
        let principal = Principal::from_claims(claims, self.config.trust_unverified_email);
        principal.check_subject()?;
        let issuer_ok = principal
            .claim("iss")
            .is_none_or(|iss| iss.as_str() == Some(&self.config.issuer));
        let expired = principal.expires_at.is_some_and(|exp| now >= exp);
        if !active || expired || !issuer_ok {
            if ttl > 0 {
                self.inactive.insert(key, now + ttl, now, ());
            }
            return Err(if !issuer_ok {
                Reject::WrongIssuer
            } else {
                Reject::Inactive
            });
        }
        let principal = Arc::new(principal);
        if ttl > 0 {
            let until = principal.expires_at.unwrap_or(u64::MAX).min(now + ttl);
            self.introspected.insert(key, until, now, principal.clone());
        }
        Ok(principal)
    }
}
