//! What the gateway reads of a JSON-RPC message a client posts: its method, the name it acts
//! on, its id (to answer with), the protocol version in its `_meta`, and the tool
//! arguments. Nothing else is parsed: `params` stays raw apart from those few keys.
//!
//! A key given twice is refused (serde's derive refuses duplicate fields): the gateway and
//! the upstream must not read two different names out of one body.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The kinds of named things rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
}

impl Kind {
    /// The method that uses one, and the `params` key that names it.
    pub fn of_call(method: &str) -> Option<(Kind, &'static str)> {
        match method {
            "tools/call" => Some((Kind::Tool, "name")),
            "prompts/get" => Some((Kind::Prompt, "name")),
            "resources/read" => Some((Kind::Resource, "uri")),
            _ => None,
        }
    }

    /// The method that lists them, and the key of each entry's name.
    pub fn of_list(method: &str) -> Option<Kind> {
        match method {
            "tools/list" => Some(Kind::Tool),
            "prompts/list" => Some(Kind::Prompt),
            "resources/list" => Some(Kind::Resource),
            _ => None,
        }
    }

    /// The list result's array, and the key that names an entry in it.
    pub fn list_keys(self) -> (&'static str, &'static str) {
        match self {
            Kind::Tool => ("tools", "name"),
            Kind::Prompt => ("prompts", "name"),
            Kind::Resource => ("resources", "uri"),
        }
    }
}

/// A request or notification.
#[derive(Debug)]
pub struct Message<'a> {
    pub id: Option<&'a RawValue>,
    pub method: Cow<'a, str>,
    /// The tool or prompt name, or the resource URI, of a call that names one.
    pub name: Option<Cow<'a, str>>,
    /// `_meta["io.modelcontextprotocol/protocolVersion"]` (2026-07-28 and later).
    pub protocol_version: Option<Cow<'a, str>>,
    /// A tool call's `arguments`, as sent.
    pub arguments: Option<&'a RawValue>,
}

/// What a body is.
#[derive(Debug)]
pub enum Body<'a> {
    Message(Message<'a>),
    /// A client's answer to a server's request (sessions of 2025-11-25 and earlier): it
    /// calls nothing, so no rule applies.
    Response,
    /// A JSON array: a batch (JSON-RPC batches left MCP in 2025-06-18).
    Batch,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// Raw until the method says which key matters: a key the method does not use may hold
/// anything.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(rename = "_meta", borrow)]
    meta: Option<Meta<'a>>,
}

/// A JSON string, borrowed from the body unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow)]
    protocol_version: Option<Cow<'a, str>>,
}

/// Reads a posted body; the error says what is wrong with it.
pub fn parse(body: &[u8]) -> Result<Body<'_>, &'static str> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Ok(Body::Batch);
    }
    if first != Some(&b'{') {
        return Err("the body is not a JSON-RPC message (a JSON object)");
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|_| "the body is not valid JSON-RPC")?;
    let Some(method) = envelope.method else {
        if envelope.id.is_some() && (envelope.result.is_some() || envelope.error.is_some()) {
            return Ok(Body::Response);
        }
        return Err("the JSON-RPC message has no method");
    };
    let params: Option<Params> = envelope
        .params
        .filter(|raw| raw.get().starts_with('{'))
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|_| "the JSON-RPC params are not an object of the expected shape")?;
    if params.is_none() && envelope.params.is_some() {
        return Err("the JSON-RPC params are not an object of the expected shape");
    }
    let call = Kind::of_call(&method);
    let (mut name, mut arguments, mut protocol_version) = (None, None, None);
    if let Some(p) = params {
        if let Some((kind, key)) = call {
            let raw = if key == "uri" { p.uri } else { p.name };
            name = raw
                .map(|r| serde_json::from_str::<Text>(r.get()).map(|t| t.0))
                .transpose()
                .map_err(|_| match kind {
                    Kind::Resource => "params.uri must be a string",
                    _ => "params.name must be a string",
                })?;
            arguments = p.arguments.filter(|_| kind == Kind::Tool);
        }
        protocol_version = p.meta.and_then(|m| m.protocol_version);
    }
    if let (Some((kind, _)), None) = (call, &name) {
        return Err(match kind {
            Kind::Tool => "tools/call needs params.name",
            Kind::Prompt => "prompts/get needs params.name",
            Kind::Resource => "resources/read needs params.uri",
        });
    }
    Ok(Body::Message(Message {
        id: envelope.id,
        method,
        name,
        protocol_version,
        arguments,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Message<'_> {
        match parse(body.as_bytes()) {
            Ok(Body::Message(m)) => m,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_tool_call() {
        let m = message(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_repo",
            "arguments":{"repo":"a/b"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(m.method, "tools/call");
        assert_eq!(m.name.as_deref(), Some("delete_repo"));
        assert_eq!(m.id.map(RawValue::get), Some("7"));
        assert_eq!(m.arguments.map(RawValue::get), Some(r#"{"repo":"a/b"}"#));
        assert_eq!(m.protocol_version.as_deref(), Some("2026-07-28"));
    }

    #[test]
    fn names_by_method() {
        let m = message(
            r#"{"id":"a","method":"resources/read","params":{"uri":"file:///x","name":"n"}}"#,
        );
        assert_eq!(m.name.as_deref(), Some("file:///x"));
        let m =
            message(r#"{"id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":1}}}"#);
        assert_eq!(
            (m.name.as_deref(), m.arguments.is_none()),
            (Some("p"), true)
        );
        let m = message(r#"{"method":"notifications/initialized"}"#);
        assert_eq!((m.id.is_none(), m.name), (true, None));
        // An escaped name is read as the upstream will read it.
        let m = message(r#"{"id":1,"method":"tools/call","params":{"name":"del\u0065te"}}"#);
        assert_eq!(m.name.as_deref(), Some("delete"));
    }

    #[test]
    fn refused_shapes() {
        for (body, why) in [
            ("", "not a JSON-RPC message"),
            ("null", "not a JSON-RPC message"),
            ("{", "not valid JSON-RPC"),
            (r#"{"id":1}"#, "no method"),
            (r#"{"id":1,"method":"tools/call"}"#, "needs params.name"),
            (
                r#"{"id":1,"method":"tools/call","params":{"arguments":{}}}"#,
                "needs params.name",
            ),
            (
                r#"{"id":1,"method":"tools/call","params":{"name":5}}"#,
                "must be a string",
            ),
            (
                r#"{"id":1,"method":"resources/read","params":{"name":"x"}}"#,
                "needs params.uri",
            ),
            (
                r#"{"id":1,"method":"tools/call","method":"tools/list"}"#,
                "not valid JSON-RPC",
            ),
            (
                r#"{"id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
                "expected shape",
            ),
            (
                r#"{"id":1,"method":"tools/call","params":[1]}"#,
                "expected shape",
            ),
        ] {
            let got = parse(body.as_bytes()).map(|_| ()).unwrap_err();
            assert!(got.contains(why), "{body}: {got}");
        }
        assert!(matches!(parse(b" [{\"method\":\"x\"}]"), Ok(Body::Batch)));
        // What a method does not read may hold anything.
        let m =
            message(r#"{"id":1,"method":"completion/complete","params":{"name":{"x":1},"uri":2}}"#);
        assert_eq!(m.name, None);
        assert!(matches!(
            parse(br#"{"id":3,"result":{}}"#),
            Ok(Body::Response)
        ));
    }
}
