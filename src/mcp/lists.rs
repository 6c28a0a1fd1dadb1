//! Lists answered with only what the caller may use: the reply to a `tools/list` (and
//! `prompts/list`, `resources/list` where rules exist) loses the entries the caller's rules
//! refuse, in a JSON response and in an event stream alike. A stream passes event by
//! event: only an event's own bytes wait for its end.

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use pingora::http::ResponseHeader;
use serde_json::{Map, Value};

use super::message::Kind;

/// The most of one reply (a JSON body, or one event) held to filter it: a list of thousands
/// of tools with long schemas fits. Beyond it the reply is replaced by an error, not passed
/// unfiltered.
pub const MAX_REPLY: usize = 8 * 1024 * 1024;

/// A list request's reply, to be filtered.
pub struct ListReply {
    pub kind: Kind,
    /// The request's id, as JSON: only the reply to it is filtered.
    id: Value,
    /// Mark the result `cacheScope: "private"` (2026-07-28: a caller-specific list must
    /// not be served to another caller from a shared cache).
    private: bool,
    /// Whether the reply is an event stream; decided by its `Content-Type`.
    pub(crate) stream: bool,
    pending: BytesMut,
    /// Why the reply cannot be filtered (too large, compressed): it becomes an error.
    unfilterable: Option<&'static str>,
    /// The names the reply listed (all of them, kept or not).
    seen: Vec<String>,
}

impl ListReply {
    pub fn new(kind: Kind, id: Value, private: bool) -> ListReply {
        ListReply {
            kind,
            id,
            private,
            stream: false,
            pending: BytesMut::new(),
            unfilterable: None,
            seen: Vec::new(),
        }
    }

    /// The names the reply listed: the upstream's names, which metrics may use as labels.
    pub fn take_seen(&mut self) -> Vec<String> {
        std::mem::take(&mut self.seen)
    }

    /// Reads the reply's head: an event stream is filtered event by event, JSON whole. The
    /// length changes, so it goes; a body that cannot be read (compressed, though the
    /// request asked for `identity`) is replaced by an error rather than passed unfiltered.
    pub fn expect(&mut self, response: &mut ResponseHeader) {
        let content_type = response.headers.get(CONTENT_TYPE).map(|v| v.as_bytes());
        self.stream = content_type.is_some_and(|t| t.starts_with(b"text/event-stream"));
        let encoded = response
            .headers
            .get(CONTENT_ENCODING)
            .is_some_and(|e| e.as_bytes() != b"identity");
        if encoded {
            self.unfilterable = Some("it arrived compressed");
            response.remove_header(&CONTENT_ENCODING);
        }
        response.remove_header(&CONTENT_LENGTH);
    }

    /// Takes a chunk of the body and says what goes to the client now. `keep` says whether
    /// the caller may use a name.
    pub fn filter(
        &mut self,
        chunk: Option<Bytes>,
        end: bool,
        keep: &dyn Fn(&str) -> bool,
    ) -> Option<Bytes> {
        if let Some(chunk) = chunk {
            if self.pending.len() + chunk.len() > MAX_REPLY {
                self.unfilterable = Some("it is larger than 8 MiB");
                self.pending.clear();
            } else if self.unfilterable.is_none() {
                self.pending.extend_from_slice(&chunk);
            }
        }
        if let Some(why) = self.unfilterable {
            return end.then(|| self.refusal(why));
        }
        if self.stream {
            let out = self.events(keep, end);
            if end {
                // An event the stream did not finish is never dispatched by a client.
                self.pending.clear();
            }
            return (!out.is_empty()).then(|| out.freeze());
        }
        if !end {
            return None;
        }
        let body = self.pending.split().freeze();
        Some(self.message(&body, keep).map_or(body, Bytes::from))
    }

    /// The complete events in `pending`, each filtered if it is the reply; `last`: no more
    /// bytes will come.
    fn events(&mut self, keep: &dyn Fn(&str) -> bool, last: bool) -> BytesMut {
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending, last) {
            let event = self.pending.split_to(end);
            out.extend_from_slice(&self.event(&event, keep).unwrap_or_else(|| event.to_vec()));
        }
        out
    }

    /// An event rewritten with its data filtered, or `None` to pass it as it is.
    fn event(&mut self, event: &[u8], keep: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(event).ok()?;
        let mut data = String::new();
        let mut other = Vec::new();
        for line in text
            .split_inclusive(['\n'])
            .flat_map(|l| l.split_inclusive('\r'))
        {
            let bare = line.trim_end_matches(['\r', '\n']);
            if bare.is_empty() {
                continue;
            }
            match bare.strip_prefix("data") {
                Some(rest) if rest.is_empty() || rest.starts_with(':') => {
                    let value = rest.strip_prefix(':').unwrap_or(rest);
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
                _ => other.push(bare),
            }
        }
        let filtered = self.message(data.as_bytes(), keep)?;
        let mut out = Vec::with_capacity(filtered.len() + 64);
        for line in other {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&filtered);
        out.extend_from_slice(b"\n\n");
        Some(out)
    }

    /// The JSON-RPC message filtered, if it is the reply to the list request.
    fn message(&mut self, body: &[u8], keep: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
        let mut message: Map<String, Value> = serde_json::from_slice(body).ok()?;
        if message.get("id") != Some(&self.id) {
            return None;
        }
        let result = message.get_mut("result")?.as_object_mut()?;
        let (array, key) = self.kind.list_keys();
        let entries = result.get_mut(array)?.as_array_mut()?;
        let listed = entries.len();
        let seen = &mut self.seen;
        entries.retain(|entry| {
            let name = entry.get(key).and_then(Value::as_str);
            seen.extend(name.map(str::to_string));
            name.is_some_and(keep)
        });
        if entries.len() == listed && !self.private {
            // Nothing to change: the reply passes byte for byte.
            return None;
        }
        if self.private {
            result.insert("cacheScope".into(), Value::from("private"));
        }
        serde_json::to_vec(&message).ok()
    }

    /// What replaces a reply too large to filter: a JSON-RPC error (as an event in a stream).
    fn refusal(&self, why: &str) -> Bytes {
        let message = format!("the gateway could not filter this list: {why}");
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": -32603, "message": message},
        });
        match self.stream {
            true => Bytes::from(format!("data: {error}\n\n")),
            false => Bytes::from(error.to_string()),
        }
    }
}

/// Where the first complete event in `buf` ends (after its blank line), if one is there;
/// `last`: nothing follows `buf`, so a `\r` at its end is a whole line ending.
fn event_end(buf: &[u8], last: bool) -> Option<usize> {
    let mut i = 0;
    let mut line_start = true;
    while i < buf.len() {
        let eol = match buf[i] {
            b'\n' => 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') => 2,
            // A lone `\r` at the buffer's end may be half of `\r\n`: wait for more.
            b'\r' if i + 1 == buf.len() && !last => return None,
            b'\r' => 1,
            _ => {
                line_start = false;
                i += 1;
                continue;
            }
        };
        if line_start {
            return Some(i + eol);
        }
        line_start = true;
        i += eol;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keep(name: &str) -> bool {
        !name.starts_with("delete")
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"echo"},{"name":"delete_repo"},{"name":"list"}],"ttlMs":0,"cacheScope":"public"}}"#;

    fn names(message: &Value) -> Vec<&str> {
        message["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_json_reply_is_filtered_at_its_end() {
        let mut reply = ListReply::new(Kind::Tool, json!(4), true);
        let (a, b) = LIST.split_at(40);
        assert_eq!(reply.filter(Some(Bytes::from(a)), false, &keep), None);
        let out = reply.filter(Some(Bytes::from(b)), true, &keep).unwrap();
        let message: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(names(&message), ["echo", "list"]);
        assert_eq!(message["result"]["cacheScope"], "private");
        assert_eq!(reply.take_seen(), ["echo", "delete_repo", "list"]);
    }

    #[test]
    fn a_list_with_nothing_to_remove_passes_byte_for_byte() {
        let mut reply = ListReply::new(Kind::Tool, json!(4), false);
        let out = reply
            .filter(Some(Bytes::from(LIST)), true, &|_| true)
            .unwrap();
        assert_eq!(out, LIST);
        assert_eq!(reply.take_seen().len(), 3);
    }

    #[test]
    fn a_stream_with_nothing_to_remove_passes_byte_for_byte_to_its_last_event() {
        let mut reply = ListReply::new(Kind::Tool, json!(4), false);
        reply.stream = true;
        // The last event's blank line is a lone \r at the very end of the stream.
        let events = format!(": hi\r\n\r\nid: 1\r\ndata: {LIST}\r\r");
        let out = reply
            .filter(Some(Bytes::from(events.clone())), true, &|_| true)
            .unwrap();
        assert_eq!(out, events);
        assert_eq!(reply.take_seen().len(), 3);
    }

    #[test]
    fn entries_without_a_name_are_dropped_even_when_every_name_may_pass() {
        let mut reply = ListReply::new(Kind::Tool, json!(4), false);
        let list = r#"{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"echo"},{"title":"x"}]}}"#;
        let out = reply
            .filter(Some(Bytes::from(list)), true, &|_| true)
            .unwrap();
        let message: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(names(&message), ["echo"]);
    }

    #[test]
    fn another_reply_passes_as_it_is() {
        let mut reply = ListReply::new(Kind::Tool, json!("other-id"), false);
        let out = reply.filter(Some(Bytes::from(LIST)), true, &keep).unwrap();
        assert_eq!(out, LIST);
        let mut reply = ListReply::new(Kind::Tool, json!(4), false);
        let error = r#"{"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"x"}}"#;
        assert_eq!(
            reply.filter(Some(Bytes::from(error)), true, &keep).unwrap(),
            error
        );
    }

    #[test]
    fn a_stream_passes_event_by_event() {
        let mut reply = ListReply::new(Kind::Tool, json!(4), false);
        reply.stream = true;
        let progress =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
        let out = reply
            .filter(Some(Bytes::from(progress)), false, &keep)
            .unwrap();
        assert_eq!(
            out, progress,
            "an unrelated event passes at once, untouched"
        );
        let event = format!("id: 7\r\nevent: message\r\ndata: {LIST}\r\n\r\n");
        let (a, b) = event.split_at(30);
        assert_eq!(
            reply.filter(Some(Bytes::from(a.to_string())), false, &keep),
            None
        );
        let out = reply
            .filter(Some(Bytes::from(b.to_string())), false, &keep)
            .unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("id: 7\nevent: message\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n"), "{text}");
        let data: Value =
            serde_json::from_str(&text["id: 7\nevent: message\ndata: ".len()..text.len() - 2])
                .unwrap();
        assert_eq!(names(&data), ["echo", "list"]);
        assert_eq!(data["result"]["cacheScope"], "public");
        // A half event at the end is dropped, as a client would.
        assert_eq!(
            reply.filter(Some(Bytes::from("data: {\"id\":4")), true, &keep),
            None
        );
    }

    #[test]
    fn data_split_over_lines_is_joined() {
        let mut reply = ListReply::new(Kind::Prompt, json!("p"), false);
        reply.stream = true;
        let event = "data: {\"id\":\"p\",\"result\":{\"prompts\":\ndata: [{\"name\":\"a\"},{\"name\":\"delete\"}]}}\n\n";
        let out = reply.filter(Some(Bytes::from(event)), true, &keep).unwrap();
        assert_eq!(
            out,
            "data: {\"id\":\"p\",\"result\":{\"prompts\":[{\"name\":\"a\"}]}}\n\n"
        );
    }

    #[test]
    fn a_reply_too_large_becomes_an_error() {
        let mut reply = ListReply::new(Kind::Tool, json!(1), false);
        let big = Bytes::from(vec![b' '; MAX_REPLY]);
        assert_eq!(reply.filter(Some(big.clone()), false, &keep), None);
        assert_eq!(reply.filter(Some(big), false, &keep), None);
        let out = reply.filter(None, true, &keep).unwrap();
        let error: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(error["error"]["code"], -32603);
    }

    #[test]
    fn event_ends() {
        assert_eq!(event_end(b"data: x\n\nrest", false), Some(9));
        assert_eq!(event_end(b"data: x\r\n\r\n", false), Some(11));
        assert_eq!(event_end(b"data: x\r\rdata", false), Some(9));
        assert_eq!(
            event_end(b"data: x\r\r", false),
            None,
            "the last \\r may be half a \\r\\n"
        );
        assert_eq!(
            event_end(b"data: x\r\r", true),
            Some(9),
            "at the stream's end it is a line ending"
        );
        assert_eq!(event_end(b"data: x\r", false), None);
        assert_eq!(event_end(b"data: x\n", false), None);
        assert_eq!(event_end(b"\n", false), Some(1));
    }
}
