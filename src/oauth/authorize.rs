//! The authorization endpoint: the client's request is checked (until the client and its
//! redirect URI are known good, errors are shown, never redirected), then the user sees the
//! consent page (or the key page), and the form's answer sends the browser on to sign in.
//! Approvals may be remembered per browser in a sealed cookie.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::Request;

use super::consent;
use super::params::{cookie_value, Params};
use super::pkce::{is_s256_challenge, random_token, same};
use super::records::{AuthRequest, Client, Consent};
use super::reply::{self, Reply};
use super::seal::Purpose;
use super::server::{AuthServer, CONSENT_TTL};
use crate::auth::cache::digest;
use crate::auth::unix_now;

/// Approvals one browser's cookie remembers.
const MAX_APPROVALS: usize = 20;

impl AuthServer {
    /// `GET …/oauth/authorize`.
    pub(super) async fn authorize(&self, req: &Request<Bytes>) -> Reply {
        let Some((sign_in, _)) = self.parts() else {
            return self.error_page("This route signs nobody in here.");
        };
        let params = Params::parse(req.uri().query().unwrap_or("").as_bytes());
        let Some(client_id) = params.get("client_id") else {
            return self.error_page("The request names no client.");
        };
        let Some(client) = self.client(client_id).await else {
            return self.error_page(
                "This client is not registered here, or its metadata document cannot be used.",
            );
        };
        let Some(redirect_uri) = params
            .get("redirect_uri")
            .filter(|u| client.redirect_uris().iter().any(|r| r == u))
        else {
            return self.error_page("The redirect URI is not one this client registered.");
        };
        let request = AuthRequest {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: String::new(),
            state: params.get("state").map(String::from),
            scope: params.get("scope").map(String::from),
        };
        if params.get("response_type") != Some("code") {
            return self.back_with_error(
                &request,
                "unsupported_response_type",
                "only response_type=code",
            );
        }
        let challenge = params
            .get("code_challenge")
            .filter(|c| is_s256_challenge(c))
            .filter(|_| params.get("code_challenge_method") == Some("S256"));
        let Some(challenge) = challenge else {
            return self.back_with_error(
                &request,
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            );
        };
        if params
            .get("resource")
            .is_some_and(|r| r.trim_end_matches('/') != self.issuer)
        {
            return self.back_with_error(
                &request,
                "invalid_target",
                "the resource is not this server",
            );
        }
        let request = AuthRequest {
            code_challenge: challenge.to_string(),
            ..request
        };
        let trusted = self
            .consent
            .trusted_redirect_uris
            .iter()
            .any(|u| u == redirect_uri);
        let remembered = || {
            let key = self.approval_key(client_id);
            self.approvals(req).iter().any(|(k, _)| *k == key)
        };
        if sign_in.remembers_consent() && (trusted || remembered()) {
            let no_form = Params::parse(b"");
            return sign_in
                .approved(self, request, &no_form, req, Vec::new())
                .await;
        }
        sign_in.page(self, &client, &request)
    }

    /// The consent page for `q`, with its form sealed and bound to this browser.
    pub(super) fn consent_page(&self, client: &Client, q: &AuthRequest) -> Reply {
        self.form_page(client, q, None)
    }

    /// The consent page, with `key` when the user is to type the upstream's key.
    pub(super) fn form_page(
        &self,
        client: &Client,
        q: &AuthRequest,
        key: Option<consent::KeyField>,
    ) -> Reply {
        let csrf = random_token();
        let sealed = self.sealer.seal(
            Purpose::Consent,
            &Consent {
                q: q.clone(),
                csrf: csrf.clone(),
                exp: unix_now() + CONSENT_TTL,
            },
        );
        let page = consent::page(&consent::Details {
            client_name: client.name(),
            redirect_uri: &q.redirect_uri,
            scope: q.scope.as_deref(),
            server: &self.facts,
            action: &format!("{}/authorize", self.endpoint_base),
            consent: &sealed,
            key,
        });
        let cookie = self.cookies.set(self.cookies.consent, &csrf, CONSENT_TTL);
        reply::page_with_cookie(200, page, Some(&cookie))
    }

    /// `POST …/oauth/authorize`: the consent (or key) form's answer. Deny goes back to the
    /// client; approve on to sign in.
    pub(super) async fn decide(&self, req: &Request<Bytes>) -> Reply {
        let Some((sign_in, _)) = self.parts() else {
            return self.error_page("This route signs nobody in here.");
        };
        let form = Params::parse(req.body());
        let consent: Option<Consent> = form
            .get("consent")
            .and_then(|c| self.sealer.open(Purpose::Consent, c));
        let Some(consent) = consent.filter(|c| c.exp > unix_now()) else {
            return self.error_page(
                "This consent form is invalid or has expired. Start again from your application.",
            );
        };
        let csrf_ok = cookie_value(req.headers(), self.cookies.consent)
            .is_some_and(|c| same(c.as_bytes(), consent.csrf.as_bytes()));
        if !csrf_ok {
            return self
                .error_page("This consent form was not sent by the browser it was shown to.");
        }
        let q = consent.q;
        if form.get("decision") != Some("approve") {
            return self.back_with_error(&q, "access_denied", "the user declined");
        }
        let remember = self.consent.remember.as_secs();
        let cookies = if sign_in.remembers_consent() && remember > 0 {
            let mut approvals = self.approvals(req);
            let key = self.approval_key(&q.client_id);
            approvals.retain(|(k, _)| *k != key);
            approvals.push((key, unix_now() + remember));
            // The newest approvals, a bounded few.
            let keep = approvals.len().saturating_sub(MAX_APPROVALS);
            approvals.drain(..keep);
            let sealed = self.sealer.seal(Purpose::Approvals, &approvals);
            vec![self.cookies.set(self.cookies.approvals, &sealed, remember)]
        } else {
            Vec::new()
        };
        sign_in.approved(self, q, &form, req, cookies).await
    }

    /// The approvals the request's cookie remembers, still valid: (route and client digest,
    /// until).
    fn approvals(&self, req: &Request<Bytes>) -> Vec<(String, u64)> {
        let Some(cookie) = cookie_value(req.headers(), self.cookies.approvals) else {
            return Vec::new();
        };
        let now = unix_now();
        let mut list: Vec<(String, u64)> = self
            .sealer
            .open(Purpose::Approvals, cookie)
            .unwrap_or_default();
        list.retain(|(_, until)| *until > now);
        list
    }

    /// What an approval of `client_id` on this route is remembered as (a digest: the cookie
    /// need not carry whole registrations).
    fn approval_key(&self, client_id: &str) -> String {
        let d = digest(format!("{}\n{client_id}", self.route).as_bytes());
        URL_SAFE_NO_PAD.encode(&d[..16])
    }
}
