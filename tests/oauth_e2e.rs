//! The whole OAuth way with real parts, none written here: `oidc-provider` (a certified
//! OpenID provider) as the IdP, the reference MCP server, and the official TypeScript SDK
//! clients (1.x, and the 2.x client of the 2026-07-28 revision) with an OAuth client
//! provider. Through a brokered route each client discovers, registers, authorizes (the
//! gateway's consent, the IdP's login and consent, by form posts), gets tokens, runs an MCP
//! session with a streamed tool, and refreshes.

mod common;

use common::{assert_oauth_run, free_port, oauth_client, strings, wait_for, Gateway, Node};

const RESOURCE: &str = "https://mcp-api.test";

#[test]
fn the_sdk_client_completes_oauth_through_a_brokered_route_and_refreshes() {
    for sdk in ["v1", "v2"] {
        oauth_through_a_brokered_route(sdk);
    }
}

/// `sdk`: `v1` (`@modelcontextprotocol/sdk` 1.x) or `v2` (`@modelcontextprotocol/client` 2.x).
fn oauth_through_a_brokered_route(sdk: &str) {
    let (port, idp_port, everything_port) = (free_port(), free_port(), free_port());
    let gateway = format!("http://127.0.0.1:{port}");
    let idp = Node::start(
        "idp.mjs",
        &[
            ("IDP_PORT", idp_port.to_string()),
            ("RESOURCE", RESOURCE.to_string()),
            (
                "GATEWAY_CALLBACK",
                format!(
                    "{gateway}/mcp/everything/oauth/callback,{gateway}/mcp/minimal/oauth/callback"
                ),
            ),
        ],
    );
    let issuer = format!("http://127.0.0.1:{idp_port}");
    wait_for(
        &format!("{issuer}/.well-known/openid-configuration"),
        "oidc-provider",
    );

    let gw = Gateway::start_e2e(
        port,
        &format!(
            r#"providers:
  idp:
    issuer: {issuer}
    client_id: mcpgate
    client_secret: gw-secret
    resource: {RESOURCE}
routes:
  - prefix: /mcp/everything
    upstream: http://127.0.0.1:{everything_port}/mcp
    auth: {{ provider: idp, oauth: broker, audience: {RESOURCE}, scopes: [mcp:tools] }}
    upstream_auth: {{ identity: {{}} }}
    spawn:
      command: [node, node_modules/@modelcontextprotocol/server-everything/dist/index.js, streamableHttp]
      env: {{ PORT: "{everything_port}" }}
      ready_timeout: 60s
  # The least a broker route can say: no scopes, no audience.
  - prefix: /mcp/minimal
    upstream: http://127.0.0.1:{everything_port}/mcp
    auth: {{ provider: idp, oauth: broker }}
"#
        ),
    );

    let seen = oauth_client(&gw, "/mcp/everything", sdk, &[]);
    // Introspection and revocation pass through to the IdP for the sealed refresh token.
    assert_oauth_run(&seen, &gw.url("/mcp/everything"));
    let pages = strings(&seen["pages"]);
    assert_eq!(pages.first(), Some(&"gateway consent"), "{pages:?}");
    assert!(pages.contains(&"idp login"), "{pages:?}");
    // The audit trail names the IdP's subject for the MCP traffic.
    gw.log_with(r#""route":"/mcp/everything","sub":"alice""#);

    // A route without scopes advertises what the gateway asks the IdP for (never
    // `offline_access`), so that the client asks for something the IdP accepts.
    let document: serde_json::Value =
        reqwest::blocking::get(gw.url("/.well-known/oauth-protected-resource/mcp/minimal"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(document["scopes_supported"], serde_json::json!(["openid"]));
    let seen = oauth_client(&gw, "/mcp/minimal", sdk, &[]);
    assert_oauth_run(&seen, &gw.url("/mcp/minimal"));
    drop(idp);
}
