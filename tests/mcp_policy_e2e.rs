//! Tool rules with the official clients of both protocol generations, through the real
//! gateway, in front of a real MCP server (`tests/e2e/tools_server.mjs`, the v2 TypeScript
//! SDK serving 2026-07-28 and 2025-11-25 sessions): the TypeScript SDK 1.x (2025-11-25), the
//! TypeScript client 2.x pinned to 2026-07-28, and the Python `mcp` SDK (2026-07-28, and
//! 2025-11-25 with sessions). Each sees filtered lists, calls what it may (a streamed call
//! too), is refused what it may not, and none of the refused calls reaches the server.

mod common;

use common::idp::{Alg, Idp};
use common::{free_port, run_client, wait_for, Gateway, Node};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const AUD: &str = "https://mcp.test/tools";

const RULES: &str = r#"
    mcp:
      tools:
        default: deny
        rules:
          - { name: [echo, list_issues, slow_count], allow: true }
          - { name: "delete_*", scopes: [repo:delete] }
          - { name: admin_reset, roles: [admin] }
      prompts:
        rules:
          - { name: "secret_*", allow: false }
      resources:
        rules:
          - { name: "file:///secret/*", allow: false }
"#;

/// A client of `tests/e2e`: its script (the route's URL goes after the first two words, the
/// token last), its environment, and the protocol revision it must end up speaking.
struct ClientRun {
    name: &'static str,
    script: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    protocol: &'static str,
}

const CLIENTS: [ClientRun; 4] = [
    ClientRun {
        name: "ts-v1",
        script: &["node", "policy_client.mjs", "v1"],
        env: &[],
        protocol: "2025-11-25",
    },
    ClientRun {
        name: "ts-v2",
        script: &["node", "policy_client.mjs", "v2"],
        env: &[],
        protocol: "2026-07-28",
    },
    ClientRun {
        name: "python",
        script: &["python3", "policy_client.py"],
        env: &[],
        protocol: "2026-07-28",
    },
    ClientRun {
        name: "python-sessions",
        script: &["python3", "policy_client.py"],
        env: &[("PY_MCP_MODE", "legacy")],
        protocol: "2025-11-25",
    },
];

/// An MCP server (`json`: answering plain JSON, else event streams) and its port.
fn tools_server(json: bool) -> (Node, u16) {
    let port = free_port();
    let mut env = vec![("PORT", port.to_string())];
    if json {
        env.push(("JSON_RESPONSE", "1".to_string()));
    }
    let node = Node::start("tools_server.mjs", &env);
    wait_for(&format!("http://127.0.0.1:{port}/seen"), "the tools server");
    (node, port)
}

fn seen_calls(port: u16) -> Vec<String> {
    let seen: Value = reqwest::blocking::get(format!("http://127.0.0.1:{port}/seen"))
        .unwrap()
        .json()
        .unwrap();
    seen["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// What every client must have seen through the rules, whatever its protocol.
fn assert_policy_run(seen: &Value, streams: bool) {
    assert_eq!(
        seen["tools"],
        json!(["echo", "list_issues", "slow_count"]),
        "{seen}"
    );
    assert_eq!(seen["prompts"], json!(["greeting"]), "{seen}");
    assert_eq!(
        seen["resources"],
        json!(["file:///public/readme.txt"]),
        "{seen}"
    );
    assert_eq!(seen["echo"], "Echo: audit-canary-7f3a", "{seen}");
    assert_eq!(seen["slow"]["text"], "counted 3", "{seen}");
    if streams {
        assert_eq!(seen["slow"]["progress"], 3, "{seen}");
    }
    for refused in ["denied", "secret_prompt", "secret_resource"] {
        assert!(seen[refused]["error"].is_string(), "{refused}: {seen}");
    }
}

#[test]
fn official_clients_of_both_generations_through_tool_rules() {
    let idp = Idp::start();
    let (_sse, sse_port) = tools_server(false);
    let (_json, json_port) = tools_server(true);
    let route = |prefix: &str, port: u16| {
        format!(
            "  - prefix: {prefix}\n    upstream: http://127.0.0.1:{port}/mcp\n    auth: \
             {{ provider: idp, audience: \"{AUD}\", scopes: [mcp], roles: {{ from_claim: roles }} }}\n{RULES}"
        )
    };
    let extra = format!(
        "audit_log: audit.log\nproviders:\n  idp:\n    issuer: {}\n",
        idp.issuer()
    );
    let gw = Gateway::start_with(
        &extra,
        &format!("{}{}", route("/sse", sse_port), route("/json", json_port)),
    );
    gw.wait_ready();
    let mut claims = idp.claims(AUD, "alice");
    claims["scope"] = json!("mcp");
    claims["client_id"] = json!("policy-e2e");
    let token = idp.sign(Alg::RS256, &claims);

    for (prefix, port, streams) in [("/sse", sse_port, true), ("/json", json_port, false)] {
        for client in &CLIENTS {
            let (name, url) = (client.name, gw.url(prefix));
            let mut command = client.script.to_vec();
            command.insert(2, &url);
            command.push(&token);
            let seen = run_client(&gw, &command, client.env);
            assert_eq!(seen["protocol"], client.protocol, "{name} {prefix}: {seen}");
            assert_policy_run(&seen, streams);
            let denied = &seen["denied"];
            match name {
                // The 2.x client reads the step-up challenge: the scope to ask for.
                "ts-v2" => assert_eq!(denied["requiredScope"], "mcp repo:delete", "{seen}"),
                // 1.x reports the status and the body (the JSON-RPC error).
                "ts-v1" => {
                    assert_eq!(denied["status"], 403, "{seen}");
                    assert!(denied["error"]
                        .as_str()
                        .unwrap()
                        .contains("insufficient_scope"));
                }
                // Python reads the JSON-RPC error of the body.
                _ => assert!(
                    denied["error"].as_str().unwrap().contains("Forbidden"),
                    "{name}: {seen}"
                ),
            }
        }
        let calls = seen_calls(port);
        for refused in [
            "delete_repository",
            "admin_reset",
            "secret_plan",
            "file:///secret/keys.txt",
        ] {
            assert!(
                !calls.iter().any(|c| c == refused),
                "{refused} reached {prefix}: {calls:?}"
            );
        }
        assert_eq!(calls.iter().filter(|c| *c == "echo").count(), CLIENTS.len());
    }

    // A 2026-07-28 request whose Mcp-Name names an allowed tool while its body calls another:
    // refused before the server.
    let before = seen_calls(sse_port).len();
    let r = Client::new()
        .post(gw.url("/sse"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "echo")
        .body(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_reset",
                "arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}})
            .to_string(),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"]["code"], -32020);
    assert_eq!(seen_calls(sse_port).len(), before);

    // The audit trail names the caller, its client and each tool, never the arguments.
    let audit = std::fs::read_to_string(gw.dir.path().join("audit.log")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["mcp_method"] == "tools/call")
        .map(|l| (l["name"].as_str().unwrap(), l["decision"].as_str().unwrap()))
        .collect();
    assert!(calls.contains(&("echo", "allowed")), "{audit}");
    assert!(calls.contains(&("delete_repository", "step_up")), "{audit}");
    assert!(lines
        .iter()
        .all(|l| l["sub"] == "alice" && l["client"] == "policy-e2e"));
    assert!(
        !audit.contains("audit-canary-7f3a"),
        "arguments in the audit log"
    );
    // Each tool the server listed is a metric label of its own.
    let metrics = gw.metrics();
    assert!(
        metrics.contains(r#"mcpgate_mcp_requests_total{decision="allowed",method="tools/call",name="echo",route="/sse"}"#),
        "{metrics}"
    );
}
