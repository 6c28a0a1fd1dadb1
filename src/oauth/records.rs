//! What the authorization server seals instead of keeping state (see `seal`): registrations,
//! authorization requests on their way through consent and sign-in, codes and refresh
//! tokens. Each is bound to its route; short field names keep the sealed values short.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A client registration, sealed into its `client_id`.
#[derive(Serialize, Deserialize)]
pub struct Client {
    /// The route it registered on: a client of one route is nobody on another.
    pub(crate) r: String,
    /// Redirect URIs, matched exactly.
    pub(crate) u: Vec<String>,
    pub(crate) n: Option<String>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    pub(crate) m: String,
}

impl Client {
    pub fn redirect_uris(&self) -> &[String] {
        &self.u
    }

    pub fn name(&self) -> Option<&str> {
        self.n.as_deref()
    }
}

/// What the client asked `/authorize` for, carried through consent, sign-in and the code.
#[derive(Serialize, Deserialize, Clone)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub state: Option<String>,
    pub scope: Option<String>,
}

/// A consent form, bound to the browser it was shown to.
#[derive(Serialize, Deserialize)]
pub struct Consent {
    pub q: AuthRequest,
    /// Must equal the consent cookie: the form was posted by the browser that got it.
    pub csrf: String,
    pub exp: u64,
}

/// The `state` of a sign-in elsewhere (the IdP, a downstream service).
#[derive(Serialize, Deserialize)]
pub struct SignInState {
    pub q: AuthRequest,
    pub route: String,
    /// The gateway's PKCE verifier for the IdP or service.
    pub verifier: String,
    /// Must equal the state cookie: the sign-in comes back to the browser that started it
    /// (else a victim could be made to finish an attacker's flow with the victim's account).
    pub browser: String,
    pub exp: u64,
}

/// The client's one-time code: what the sign-in got, for the token endpoint.
#[derive(Serialize, Deserialize)]
pub struct Code {
    pub q: AuthRequest,
    pub route: String,
    /// The IdP's token answer, the service's, or the key the user typed.
    pub tokens: Map<String, Value>,
    pub exp: u64,
}

#[derive(Serialize, Deserialize)]
pub struct Refresh {
    pub client_id: String,
    pub route: String,
    /// The IdP's or the downstream service's refresh token, or a passthrough key.
    pub token: String,
    /// Set on routes whose tokens the gateway issues: the grant, and the token's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// This refresh token's own id: it is good once (rotation), and a second use is seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub j: Option<String>,
}
