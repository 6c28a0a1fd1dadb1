//! The policy as a function from headers, body and caller to a decision: no socket. The
//! integration tests (`tests/mcp_policy.rs`) take it through the gateway with real clients.

use std::path::Path;

use http::HeaderMap;
use serde_json::{json, Value};

use super::{Inspected, Policy, Refusal};
use crate::auth::principal::Principal;
use crate::config::Config;

fn policy(mcp: &str) -> Policy {
    let yaml = format!(
        r#"
listen: 127.0.0.1:8080
public_url: http://gw.test
providers:
  idp: {{ issuer: http://idp.test, jwks_uri: http://idp.test/jwks }}
routes:
  - prefix: /mcp
    upstream: http://127.0.0.1:2
    auth: {{ provider: idp, audience: aud, scopes: [mcp], roles: {{ from_claim: roles }} }}
    mcp:
{mcp}
"#
    );
    let config = Config::from_yaml(&yaml, Path::new("."), &|_| None).unwrap();
    let route = &config.routes[0];
    let url = "http://gw.test/.well-known/oauth-protected-resource/mcp";
    Policy::compile(route.mcp.as_ref().unwrap(), route, url, "routes[0].mcp").unwrap()
}

const RULES: &str = r#"
      tools:
        default: deny
        rules:
          - { name: [echo, "list_*"], allow: true }
          - { name: "delete_*", scopes: [repo:delete] }
          - { name: admin_reset, roles: [admin] }
      prompts:
        rules:
          - { name: "secret_*", allow: false }
"#;

fn caller(claims: Value) -> Principal {
    Principal::from_claims(claims.as_object().unwrap().clone(), false)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn call(tool: &str) -> String {
    json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":tool,"arguments":{"repo":"a/b"}}})
        .to_string()
}

fn judge(
    p: &Policy,
    h: &HeaderMap,
    body: &str,
    who: Option<&Principal>,
) -> (Inspected, Option<Refusal>) {
    let (inspected, refusal) = p.judge(h, body.as_bytes(), who);
    (inspected.expect("a request is inspected"), refusal)
}

fn body_of(r: &Refusal) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_call_is_allowed_denied_or_stepped_up() {
    let p = policy(RULES);
    let ann = caller(json!({"sub":"ann","scope":"mcp","roles":["admin"],"client_id":"c1"}));
    let h = HeaderMap::new();

    let (i, refusal) = judge(&p, &h, &call("echo"), Some(&ann));
    assert!(refusal.is_none());
    assert_eq!(
        (i.method.as_str(), i.name.as_deref(), i.decision),
        ("tools/call", Some("echo"), "allowed")
    );
    // The digest of the arguments as sent, never the arguments (the route did not ask).
    assert_eq!(i.arguments_sha256.as_deref().map(str::len), Some(64));
    assert_eq!(i.arguments, None);

    let (i, refusal) = judge(&p, &h, &call("delete_repository"), Some(&ann));
    let refusal = refusal.unwrap();
    assert_eq!((refusal.status, i.decision), (403, "step_up"));
    let challenge = refusal.challenge.clone().unwrap();
    assert!(challenge
        .to_str()
        .unwrap()
        .contains(r#"scope="mcp repo:delete""#));
    let body = body_of(&refusal);
    assert_eq!(
        (body["id"].as_i64(), body["error"]["code"].as_i64()),
        (Some(9), Some(-32003))
    );
    assert_eq!(body["error"]["data"]["error"], "insufficient_scope");

    let (i, refusal) = judge(&p, &h, &call("admin_reset"), Some(&ann));
    assert!(refusal.is_none(), "{}", i.decision);
    let bob = caller(json!({"sub":"bob","scope":"mcp repo:delete"}));
    let (_, refusal) = judge(&p, &h, &call("admin_reset"), Some(&bob));
    let refusal = refusal.unwrap();
    assert_eq!(refusal.status, 403);
    assert!(
        refusal.challenge.is_none(),
        "a role is no scope: no step-up"
    );
    let body = body_of(&refusal);
    assert_eq!(body["error"]["data"]["error"], "access_denied");
    assert_eq!(
        body["error"]["data"]["error_description"],
        "tools/call `admin_reset` is refused by routes[0].mcp.tools.rules[2] (admin_reset)"
    );
    let (i, refusal) = judge(&p, &h, &call("format_disk"), Some(&bob));
    assert_eq!((refusal.unwrap().status, i.decision), (403, "denied"));
    assert!(judge(&p, &h, &call("delete_repository"), Some(&bob))
        .1
        .is_none());

    let prompt =
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"secret_plan"}}"#;
    assert_eq!(judge(&p, &h, prompt, Some(&bob)).1.unwrap().status, 403);
    // No resource rules: every resource may be read.
    let read = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}"#;
    assert!(judge(&p, &h, read, Some(&bob)).1.is_none());
}

#[test]
fn arguments_are_kept_only_where_the_route_says() {
    let p = policy("      audit_arguments: true\n");
    let (i, _) = judge(&p, &HeaderMap::new(), &call("x"), None);
    assert_eq!(i.arguments.as_deref(), Some(r#"{"repo":"a/b"}"#));
}

#[test]
fn headers_that_disagree_with_the_body_are_refused() {
    let p = policy(RULES);
    let h = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ]);
    let (i, refusal) = judge(&p, &h, &call("admin_reset"), None);
    let refusal = refusal.unwrap();
    assert_eq!((refusal.status, i.decision), (400, "mismatch"));
    let body = body_of(&refusal);
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["code"], -32020);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Mcp-Name"));
}

#[test]
fn bad_bodies_get_a_clear_400() {
    let p = policy(RULES);
    let h = HeaderMap::new();
    for (body, why) in [
        ("{not json", "not valid JSON-RPC"),
        (
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            "batches are not accepted",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            "needs params.name",
        ),
    ] {
        let (_, refusal) = p.judge(&h, body.as_bytes(), None);
        let refusal = refusal.unwrap();
        assert_eq!(refusal.status, 400, "{body}");
        let description = body_of(&refusal)["error_description"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(description.contains(why), "{body}: {description}");
    }
    // A route without rules only audits: a batch passes.
    let open = policy("      audit_arguments: false\n");
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;
    assert!(open.judge(&h, batch.as_bytes(), None).1.is_none());
    // A client's answer to a server's request calls nothing.
    let answer = r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#;
    let (inspected, refusal) = p.judge(&h, answer.as_bytes(), None);
    assert!(inspected.is_none() && refusal.is_none());
    let (i, refusal) = p.too_large();
    assert_eq!(
        (refusal.unwrap().status, i.unwrap().decision),
        (413, "too_large")
    );
}

#[test]
fn a_list_is_filtered_for_its_caller_and_marked_private_on_2026_07_28() {
    let p = policy(RULES);
    let list = r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#;
    let modern = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ]);
    let (mut i, _) = judge(&p, &modern, list, None);
    let reply = i.list.as_mut().expect("a list reply to filter");
    let upstream = json!({"jsonrpc":"2.0","id":"l","result":{"tools":[
        {"name":"echo"},{"name":"delete_repository"},{"name":"admin_reset"},{"name":"list_issues"}],
        "ttlMs":60000,"cacheScope":"public"}});
    let bob = caller(json!({"sub":"bob","scope":"mcp"}));
    let out = reply
        .filter(Some(upstream.to_string().into()), true, &|n| {
            p.allows(super::Kind::Tool, n, Some(&bob))
        })
        .unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    let names: Vec<&str> = out["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "list_issues"]);
    assert_eq!(out["result"]["cacheScope"], "private");
    // On 2025-11-25 there is no cache hint to set: filtered, the upstream's stays.
    let (mut i, _) = judge(&p, &HeaderMap::new(), list, None);
    let reply = i.list.as_mut().expect("a list reply to filter");
    let out = reply
        .filter(Some(upstream.to_string().into()), true, &|n| {
            p.allows(super::Kind::Tool, n, Some(&bob))
        })
        .unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out["result"]["tools"].as_array().unwrap().len(), 2);
    assert_eq!(out["result"]["cacheScope"], "public");
}
