//! MCP-aware policy: a route with an `mcp` block reads each JSON-RPC request it is posted
//! (bounded), checks the 2026-07-28 headers against it, decides per tool, prompt or
//! resource, filters the lists it answers, and writes an audit line per call. The decision
//! is taken in `request_filter`, before a byte reaches the upstream.

pub mod audit;
pub mod headers;
pub mod lists;
pub mod message;
pub mod rules;

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::auth::cache::{digest, hex};
use crate::auth::principal::Principal;
use crate::config::{Auth, ConfigError, McpPolicy, Roles, Route};
use crate::metrics;
use lists::ListReply;
use message::{Body, Kind, Message};
use rules::{Decision, RouteFacts, Rules};

/// Names a route's metrics know per kind: what its upstream listed. A name nobody listed
/// is counted as `(unlisted)`, so a client cannot grow the metrics with made-up names.
const KNOWN_NAMES: usize = 512;
const UNLISTED: &str = "(unlisted)";

/// A route's MCP policy, compiled for one snapshot.
pub struct Policy {
    route: String,
    pub max_body: usize,
    audit_arguments: bool,
    tools: Option<Rules>,
    prompts: Option<Rules>,
    resources: Option<Rules>,
    /// Where the route's roles come from (rules may ask for roles).
    roles: Option<Roles>,
    known: [ArcSwap<HashSet<Box<str>>>; 3],
}

/// What the gateway learnt of a request: kept for the reply's filter and the audit line.
pub struct Inspected {
    pub method: String,
    pub name: Option<String>,
    /// `allowed`, `denied`, `step_up`, `mismatch`, `invalid`, `too_large`, `batch`.
    pub decision: &'static str,
    /// A tool call's arguments: their SHA-256, and (when the route says so) themselves.
    pub arguments_sha256: Option<String>,
    pub arguments: Option<String>,
    /// Set for a list request: its reply is filtered (and its names learnt).
    pub list: Option<ListReply>,
}

/// A request refused before the upstream: what to answer.
pub struct Refusal {
    pub status: u16,
    pub challenge: Option<HeaderValue>,
    pub body: Bytes,
}

impl Policy {
    /// `resource_metadata` is the route's RFC 9728 document URL, which a step-up names.
    pub fn compile(
        spec: &McpPolicy,
        route: &Route,
        resource_metadata: &str,
        at: &str,
    ) -> Result<Policy, ConfigError> {
        let (scopes, roles) = match &route.auth {
            Auth::Bearer(b) => (b.scopes.as_slice(), Some(b.roles.clone())),
            _ => (&[][..], None),
        };
        let compile = |rules: &Option<crate::config::NameRules>, kind: &str| {
            let at = format!("{at}.{kind}");
            let facts = RouteFacts {
                scopes,
                resource_metadata,
                at: &at,
            };
            rules
                .as_ref()
                .map(|r| Rules::compile(r, &facts))
                .transpose()
                .map_err(|e| ConfigError::new(at.clone(), e))
        };
        Ok(Policy {
            route: route.name.clone(),
            max_body: spec.max_body,
            audit_arguments: spec.audit_arguments,
            tools: compile(&spec.tools, "tools")?,
            prompts: compile(&spec.prompts, "prompts")?,
            resources: compile(&spec.resources, "resources")?,
            roles,
            known: Default::default(),
        })
    }

    fn rules(&self, kind: Kind) -> Option<&Rules> {
        match kind {
            Kind::Tool => self.tools.as_ref(),
            Kind::Prompt => self.prompts.as_ref(),
            Kind::Resource => self.resources.as_ref(),
        }
    }

    fn has_rules(&self) -> bool {
        self.tools.is_some() || self.prompts.is_some() || self.resources.is_some()
    }

    /// Whether `caller` may use `name` (a list keeps only those).
    pub fn allows(&self, kind: Kind, name: &str, caller: Option<&Principal>) -> bool {
        self.rules(kind)
            .is_none_or(|r| r.decide(name, caller, self.roles.as_ref()) == Decision::Allow)
    }

    /// Decides on a posted body: what was learnt of it (for the reply's filter and the audit
    /// line; nothing for a client's response to the server), and the refusal to answer
    /// instead of proxying, if any. Every request read is counted.
    pub fn judge(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        caller: Option<&Principal>,
    ) -> (Option<Inspected>, Option<Refusal>) {
        let message = match message::parse(body) {
            Ok(Body::Message(m)) => m,
            Ok(Body::Response) => return (None, None),
            Ok(Body::Batch) if !self.has_rules() => {
                return (Some(self.count(unnamed("(batch)", "batch"))), None);
            }
            Ok(Body::Batch) => {
                let refusal = invalid(
                    "JSON-RPC batches are not accepted on a route with tool rules (MCP has \
                     had no batches since 2025-06-18): send one message per request",
                );
                return (Some(self.count(unnamed("(batch)", "batch"))), Some(refusal));
            }
            Err(why) => return (Some(self.count(unnamed("", "invalid"))), Some(invalid(why))),
        };
        let mut inspected = self.inspected(&message);
        if let Err(why) = headers::check(headers, &message) {
            inspected.decision = "mismatch";
            let refusal = Refusal {
                status: 400,
                challenge: None,
                body: rpc_error(&message, headers::HEADER_MISMATCH, &why, None),
            };
            return (Some(self.count(inspected)), Some(refusal));
        }
        let refusal = match (Kind::of_call(&message.method), &message.name) {
            (Some((kind, _)), Some(name)) => self.decide(kind, &message, name, caller),
            _ => None,
        };
        inspected.decision = match &refusal {
            None => "allowed",
            Some(r) if r.challenge.is_some() => "step_up",
            Some(_) => "denied",
        };
        if refusal.is_none() {
            inspected.list = self.list_reply(&message, headers);
        }
        (Some(self.count(inspected)), refusal)
    }

    /// The answer to a body larger than the route reads.
    pub fn too_large(&self) -> (Option<Inspected>, Option<Refusal>) {
        let why = format!(
            "the request body is larger than this route reads ({} bytes)",
            self.max_body
        );
        let refusal = Refusal {
            status: 413,
            challenge: None,
            body: error_body("invalid_request", &why),
        };
        (Some(self.count(unnamed("", "too_large"))), Some(refusal))
    }

    /// The refusal of a call the rules do not let through: a JSON-RPC error the client can
    /// match to its request, with the OAuth error in its `data`.
    fn decide(
        &self,
        kind: Kind,
        message: &Message,
        name: &str,
        caller: Option<&Principal>,
    ) -> Option<Refusal> {
        let rules = self.rules(kind)?;
        let method = &message.method;
        let (error, description, challenge) = match rules.decide(name, caller, self.roles.as_ref())
        {
            Decision::Allow => return None,
            Decision::StepUp(challenge) => (
                "insufficient_scope",
                format!("{method} `{name}` needs more scope than the token has"),
                Some(challenge.clone()),
            ),
            Decision::Deny(rule) => (
                "access_denied",
                format!("{method} `{name}` is refused by {rule}"),
                None,
            ),
        };
        let data = serde_json::json!({"error": error, "error_description": description});
        let body = rpc_error(
            message,
            FORBIDDEN,
            &format!("Forbidden: {description}"),
            Some(data),
        );
        Some(Refusal {
            status: 403,
            challenge,
            body,
        })
    }

    /// The filter of a list request's reply: it keeps what the caller may use.
    fn list_reply(&self, message: &Message, headers: &HeaderMap) -> Option<ListReply> {
        let kind = Kind::of_list(&message.method)?;
        let id = serde_json::from_str(message.id?.get()).ok()?;
        let modern = headers::version(headers).is_some_and(headers::mirrors);
        let private = modern && self.rules(kind).is_some_and(|r| r.caller_specific);
        Some(ListReply::new(kind, id, private))
    }

    fn inspected(&self, message: &Message) -> Inspected {
        let arguments = message.arguments.map(|a| a.get());
        Inspected {
            method: message.method.to_string(),
            name: message.name.as_deref().map(str::to_string),
            decision: "allowed",
            arguments_sha256: arguments.map(|a| hex(&digest(a.as_bytes()))),
            arguments: arguments
                .filter(|_| self.audit_arguments)
                .map(str::to_string),
            list: None,
        }
    }

    /// Counts the request by route, method, name and decision; names only those the
    /// upstream listed (the labels stay bounded).
    fn count(&self, inspected: Inspected) -> Inspected {
        let name = match (Kind::of_call(&inspected.method), &inspected.name) {
            (Some((kind, _)), Some(name)) if self.known[kind as usize].load().contains(&**name) => {
                name.as_str()
            }
            (Some(_), Some(_)) => UNLISTED,
            _ => "",
        };
        metrics::MCP_REQUESTS
            .with_label_values(&[
                &self.route,
                method_label(&inspected.method),
                name,
                inspected.decision,
            ])
            .inc();
        inspected
    }

    /// Remembers names the upstream listed, for the metrics' labels (up to a bound).
    pub fn learn(&self, kind: Kind, names: &[String]) {
        let known = &self.known[kind as usize];
        if names.iter().all(|n| known.load().contains(n.as_str())) {
            return;
        }
        known.rcu(|old| {
            let mut set = HashSet::clone(old);
            for name in names {
                if set.len() >= KNOWN_NAMES {
                    break;
                }
                set.insert(name.as_str().into());
            }
            Arc::new(set)
        });
    }
}

fn unnamed(method: &str, decision: &'static str) -> Inspected {
    Inspected {
        method: method.to_string(),
        name: None,
        decision,
        arguments_sha256: None,
        arguments: None,
        list: None,
    }
}

/// `400 invalid_request` saying what is wrong with the body.
fn invalid(why: &str) -> Refusal {
    Refusal {
        status: 400,
        challenge: None,
        body: error_body("invalid_request", why),
    }
}

/// The JSON-RPC error code of a call the policy refuses (implementation-defined range).
pub const FORBIDDEN: i32 = -32003;

/// A JSON-RPC error answering `message` (by its id).
fn rpc_error(message: &Message, code: i32, text: &str, data: Option<Value>) -> Bytes {
    let id = message
        .id
        .and_then(|id| serde_json::from_str::<Value>(id.get()).ok());
    let mut error = serde_json::json!({"code": code, "message": text});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error});
    Bytes::from(body.to_string())
}

fn error_body(error: &str, description: &str) -> Bytes {
    let body = serde_json::json!({"error": error, "error_description": description});
    Bytes::from(body.to_string())
}

/// The methods MCP defines, as metric labels; anything else is `other` (a client cannot
/// add labels).
fn method_label(method: &str) -> &'static str {
    const METHODS: [&str; 24] = [
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
        "logging/setLevel",
        "subscriptions/listen",
        "tasks/get",
        "tasks/list",
        "tasks/result",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
        "(batch)",
    ];
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(if method.is_empty() { "" } else { "other" })
}

#[cfg(test)]
mod tests;
