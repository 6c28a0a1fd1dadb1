//! The gateway as the authorization server of its routes, end to end with real parts: the
//! official TypeScript SDK clients (1.x and 2.x) with an OAuth client provider, an MCP server
//! built with the official SDK that wants a credential of its own (tests/e2e/keyed_server.mjs),
//! and for the chained route `oidc-provider` playing a GitHub-like OAuth service
//! (tests/e2e/downstream.mjs: client_secret_post, no PKCE, rotating refresh tokens).
//!
//! - passthrough: the user types the upstream's API key into the gateway's page; the gateway
//!   tries it on the probe URL first (a wrong key is refused and asked for again), seals it
//!   into the tokens it issues, and puts it on each proxied request as `X-API-Key`.
//! - chained: the user signs in at the downstream service through the gateway, which is that
//!   service's client; the upstream gets the downstream's access token, never the gateway's,
//!   and a refresh through the gateway refreshes at the downstream.
//!
//! Each run discovers, registers, authorizes, runs an MCP session with a streamed tool,
//! refreshes, asks the upstream what credentials reached it, then introspects and revokes.
//! The chained route keeps its state (codes, refresh tokens, revocations) in a real Redis.

mod common;

use common::{assert_oauth_run, free_port, oauth_client, strings, wait_for, Gateway, Node};
use serde_json::{json, Value};

const KEY: &str = "sk-test-123";

#[test]
fn passthrough_sdk_client_types_a_key_and_the_upstream_gets_it() {
    for sdk in ["v1", "v2"] {
        passthrough(sdk);
    }
}

#[test]
fn chained_oauth_through_a_downstream_without_pkce() {
    for sdk in ["v1", "v2"] {
        chained(sdk);
    }
}

/// `sdk`: `v1` (`@modelcontextprotocol/sdk` 1.x) or `v2` (`@modelcontextprotocol/client` 2.x).
fn passthrough(sdk: &str) {
    let (port, keyed_port) = (free_port(), free_port());
    let gw = Gateway::start_e2e(
        port,
        &format!(
            r#"routes:
  - prefix: /mcp/keyed
    upstream: http://127.0.0.1:{keyed_port}/mcp
    auth:
      passthrough:
        prompt: Test API key
        header: "X-API-Key: {{key}}"
        probe: http://127.0.0.1:{keyed_port}/probe
    spawn:
      command: [node, keyed_server.mjs]
      env: {{ PORT: "{keyed_port}", EXPECT_HEADER: x-api-key, EXPECT_VALUE: {KEY} }}
      ready_timeout: 60s
"#
        ),
    );

    let seen = oauth_client(
        &gw,
        "/mcp/keyed",
        sdk,
        &[
            ("MCP_KEY", KEY),
            ("MCP_WRONG_KEY_FIRST", "wrong-key"),
            ("MCP_SEEN_TOOL", "1"),
        ],
    );
    assert_oauth_run(&seen, &gw.url("/mcp/keyed"));
    // One page, twice: the wrong key is refused after the probe, the right one goes through.
    assert_eq!(
        strings(&seen["pages"]),
        ["gateway key", "gateway key"],
        "{seen}"
    );
    assert_eq!(seen["wrongKeyRefused"], true, "{seen}");
    // The upstream got the key as configured and nothing else: not the gateway's tokens.
    let saw = &seen["upstreamSaw"];
    assert_eq!(saw["mcp"]["x-api-key"], json!([KEY]), "{seen}");
    assert_eq!(saw["mcp"]["authorization"], json!([]), "{seen}");
    // The probe tried both keys, placed the same way.
    assert_eq!(
        saw["probe"]["x-api-key"],
        json!(["wrong-key", KEY]),
        "{seen}"
    );
    assert_eq!(saw["probe"]["authorization"], json!([]), "{seen}");
    // The tokens the client held are sealed: the key is not in them in the clear.
    for token in client_tokens(&seen) {
        assert!(!token.contains(KEY), "the key shows in a token: {token}");
    }
}

fn chained(sdk: &str) {
    let (port, keyed_port, downstream_port) = (free_port(), free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{port}");
    let callback = format!("{gateway}/mcp/gh/oauth/callback");
    let downstream_url = format!("http://127.0.0.1:{downstream_port}");
    let downstream = Node::start(
        "downstream.mjs",
        &[
            ("PORT", downstream_port.to_string()),
            ("GATEWAY_CALLBACK", callback.clone()),
        ],
    );
    wait_for(
        &format!("{downstream_url}/.well-known/openid-configuration"),
        "the downstream service",
    );
    // This route keeps its state in a real Redis: the SDK clients run the same against it.
    let redis = common::redis::Redis::start();
    let gw = Gateway::start_e2e(
        port,
        &format!(
            r#"state: {{ redis: {{ url: "{redis_url}" }} }}
oauth_services:
  gh:
    authorize_url: {downstream_url}/auth
    token_url: {downstream_url}/token
    client_id: mcpgate-gh
    client_secret: gh-secret
    client_auth: client_secret_post
    pkce: false
    scopes: [openid, offline_access, repo]
routes:
  - prefix: /mcp/gh
    upstream: http://127.0.0.1:{keyed_port}/mcp
    auth: {{ chained: {{ service: gh }} }}
    spawn:
      command: [node, keyed_server.mjs]
      env: {{ PORT: "{keyed_port}", EXPECT_HEADER: authorization, EXPECT_USERINFO: "{downstream_url}/me" }}
      ready_timeout: 60s
"#,
            redis_url = redis.url()
        ),
    );

    let seen = oauth_client(&gw, "/mcp/gh", sdk, &[("MCP_SEEN_TOOL", "1")]);
    assert_oauth_run(&seen, &gw.url("/mcp/gh"));
    let pages = strings(&seen["pages"]);
    assert_eq!(pages.first(), Some(&"gateway consent"), "{pages:?}");
    assert!(pages.contains(&"idp login"), "{pages:?}");

    // Every credential that reached the upstream was a live downstream token (the upstream
    // checked each at the downstream's userinfo), none the client held; the refresh brought
    // a new one.
    let saw = strings(&seen["upstreamSaw"]["mcp"]["authorization"]);
    assert!(
        saw.len() >= 2,
        "one downstream token before the refresh, one after: {seen}"
    );
    let held = client_tokens(&seen);
    for value in &saw {
        let token = value
            .strip_prefix("Bearer ")
            .unwrap_or_else(|| panic!("not a bearer credential: {value}"));
        assert!(
            !held.contains(&token),
            "the upstream got a token of the gateway's: {token}"
        );
        for gateway_token in &held {
            assert!(
                !gateway_token.contains(token),
                "a downstream token shows in the clear in a gateway token: {gateway_token}"
            );
        }
    }
    assert_eq!(seen["upstreamSaw"]["mcp"]["x-api-key"], json!([]), "{seen}");

    // What the gateway asked of the downstream: its own client, its callback, the configured
    // scopes and no PKCE challenge; one code exchange without a verifier and one refresh,
    // both accepted (client_secret_post is the only way the downstream takes).
    let asked: Value = reqwest::blocking::get(format!("{downstream_url}/_seen"))
        .unwrap()
        .json()
        .unwrap();
    let authorize = asked["authorize"].as_array().unwrap();
    assert_eq!(authorize.len(), 1, "{asked}");
    assert_eq!(authorize[0]["client_id"], "mcpgate-gh", "{asked}");
    assert_eq!(authorize[0]["redirect_uri"], callback, "{asked}");
    assert_eq!(authorize[0]["code_challenge"], Value::Null, "{asked}");
    assert_eq!(authorize[0]["state"], true, "{asked}");
    let scopes: Vec<&str> = authorize[0]["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    for scope in ["openid", "offline_access", "repo"] {
        assert!(scopes.contains(&scope), "{scope} not asked for: {asked}");
    }
    assert_eq!(
        asked["token"],
        json!([
            {"grant_type": "authorization_code", "status": 200, "error": null, "code_verifier": false},
            {"grant_type": "refresh_token", "status": 200, "error": null, "code_verifier": false},
        ]),
        "{asked}"
    );
    drop(downstream);
}

/// Every access and refresh token the client was given.
fn client_tokens(seen: &Value) -> Vec<&str> {
    let mut tokens = strings(&seen["clientAccessTokens"]);
    tokens.extend(strings(&seen["clientRefreshTokens"]));
    assert!(!tokens.is_empty(), "the client reported no tokens: {seen}");
    tokens
}
