//! The IdP or service sends the user back: the sealed `state` must be ours, fresh, unused
//! and started in this browser; the answer must come from the IdP we sent the user to (RFC
//! 9207); its code is redeemed with the gateway's credentials, and the client gets its own
//! one-time code.

use bytes::Bytes;
use http::Request;
use log::warn;
use serde_json::Value;

use super::params::{cookie_value, Params};
use super::pkce::same;
use super::records::{AuthRequest, SignInState};
use super::reply::{self, Reply};
use super::seal::Purpose;
use super::server::AuthServer;
use crate::auth::cache::{digest, hex};
use crate::auth::unix_now;
use crate::state::Claim;

impl AuthServer {
    /// `GET …/oauth/callback`.
    pub(super) async fn callback(&self, req: &Request<Bytes>) -> Reply {
        let Some((sign_in, _)) = self.parts() else {
            return self.error_page("This route signs nobody in elsewhere.");
        };
        let params = Params::parse(req.uri().query().unwrap_or("").as_bytes());
        let sealed_state = params.get("state").unwrap_or_default();
        let state: Option<SignInState> = self.sealer.open(Purpose::State, sealed_state);
        let now = unix_now();
        let Some(state) = state.filter(|s| s.exp > now && s.route == self.route) else {
            return self.error_page("The sign-in came back with an invalid or expired state. Start again from your application.");
        };
        let same_browser = cookie_value(req.headers(), &self.cookies.state)
            .is_some_and(|c| same(c.as_bytes(), state.browser.as_bytes()));
        if !same_browser {
            warn!(
                "route {}: a sign-in came back to another browser",
                self.route
            );
            return self.error_page(
                "This sign-in was not started in this browser. Start again from your application.",
            );
        }
        let used = format!(
            "{}:state:{}",
            self.route,
            hex(&digest(sealed_state.as_bytes()))
        );
        let ttl = std::time::Duration::from_secs(state.exp - now + 1);
        match self.state.claim(&used, b"", ttl).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::Taken(_)) => {
                return self.error_page(
                    "This sign-in has already been completed. Start again from your application.",
                )
            }
            Err(e) => {
                warn!(
                    "route {}: a sign-in's state could not be checked: {e}",
                    self.route
                );
                return reply::page(
                    503,
                    super::consent::error_page(
                        "The sign-in cannot be completed right now. Try again in a moment.",
                    ),
                );
            }
        }
        let q = &state.q;
        // RFC 9207: a response from another issuer is a mix-up attack, and so is one
        // without `iss` from an IdP that says it always sends it.
        let mixed_up = sign_in.idp().is_some_and(|idp| match params.get("iss") {
            Some(iss) => iss != idp.config.issuer,
            None => idp.sends_iss(),
        });
        if mixed_up {
            warn!("route {}: callback from another issuer", self.route);
            return self.back_with_error(
                q,
                "access_denied",
                "the identity provider's answer came from another issuer",
            );
        }
        if let Some(error) = params.get("error") {
            return self.refused_by_idp(q, error, params.get("error_description"));
        }
        let Some(code) = params.get("code") else {
            return self.back_with_error(q, "server_error", "the identity provider sent no code");
        };
        let tokens = match sign_in.exchange(self, code, &state.verifier).await {
            Ok(tokens) if tokens.get("access_token").is_some_and(Value::is_string) => tokens,
            Ok(_) => {
                warn!(
                    "route {}: the IdP's token answer has no access_token",
                    self.route
                );
                return self.back_with_error(
                    q,
                    "server_error",
                    "the identity provider sent no token",
                );
            }
            Err(e) => {
                warn!("route {}: code exchange at the IdP failed: {e}", self.route);
                return self.back_with_error(
                    q,
                    "server_error",
                    "the code exchange with the identity provider failed",
                );
            }
        };
        self.code_to_client(q, tokens, &[self.cookies.set(&self.cookies.state, "", 0)])
    }

    /// The IdP said no: the operator sees what it said, the client an error it can act on.
    /// Errors about the client's request or the user pass through as they are (RFC 6749
    /// §4.1.2.1); errors about the gateway's own request to the IdP (`invalid_request`,
    /// `unauthorized_client`, RFC 8707's `invalid_target`, …) are the operator's to fix, so
    /// the client gets `server_error`. The IdP's words are printable ASCII by RFC 6749, and
    /// carry no secret; anything else in them is dropped, and they are cut short.
    fn refused_by_idp(&self, q: &AuthRequest, error: &str, description: Option<&str>) -> Reply {
        let error = printable(error, 64);
        let description = printable(description.unwrap_or(""), 300);
        warn!(
            "route {}: the identity provider refused the sign-in: {error}{}{description}",
            self.route,
            if description.is_empty() { "" } else { ": " },
        );
        let code = match error.as_str() {
            "access_denied"
            | "invalid_scope"
            | "temporarily_unavailable"
            | "server_error"
            | "login_required"
            | "consent_required"
            | "interaction_required"
            | "account_selection_required" => error.as_str(),
            _ => "server_error",
        };
        let told = if description.is_empty() {
            format!("the identity provider refused the sign-in ({error})")
        } else {
            format!("the identity provider refused the sign-in ({error}: {description})")
        };
        self.back_with_error(q, code, &told)
    }

    /// Back to the client with a one-time code that carries `tokens`.
    pub(super) fn code_to_client(
        &self,
        q: &AuthRequest,
        tokens: serde_json::Map<String, Value>,
        cookies: &[String],
    ) -> Reply {
        let code = self.seal_code(q, tokens);
        let to = self.client_redirect(&q.redirect_uri, &[("code", &code)], q.state.as_deref());
        reply::redirect(&to, cookies)
    }
}

/// `text` without what RFC 6749 does not allow in `error` and `error_description`
/// (anything outside %x20-7E), at most `max` characters: safe for a log line.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~'))
        .take(max)
        .collect()
}
