//! The consent page (MCP requires one of a proxy that uses a single static client at the
//! IdP: otherwise any registered client could ride on the user's earlier consent there).
//! Plain HTML, no scripts, every value escaped.

pub struct Details<'a> {
    pub client_name: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub scope: Option<&'a str>,
    /// The MCP server's URL.
    pub resource: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// The sealed request.
    pub consent: &'a str,
    /// On passthrough routes: the field the user types the upstream's key into.
    pub key: Option<KeyField<'a>>,
}

pub struct KeyField<'a> {
    pub prompt: &'a str,
    pub help: Option<&'a str>,
    /// Why the last key was not taken.
    pub error: Option<&'a str>,
}

pub fn page(d: &Details) -> String {
    let host = url::Url::parse(d.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| d.redirect_uri.to_string());
    let scopes: String = d
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let scopes = if scopes.is_empty() {
        "<li>no particular scope</li>".to_string()
    } else {
        scopes
    };
    let (next, field) = match &d.key {
        None => ("After you sign in, you will be sent back to", String::new()),
        Some(k) => (
            "The key is sealed into the token it gets, never shown to it, and you go back to",
            format!(
                r#"{error}<label for="key">{prompt}</label><br>
<input type="password" id="key" name="key" autocomplete="off" required autofocus>{help}<br>
"#,
                error = k.error.map_or(String::new(), |e| format!(
                    r#"<p class="error" role="alert">{}</p>"#,
                    escape(e)
                )),
                prompt = escape(k.prompt),
                help = k.help.map_or(String::new(), |h| format!(
                    r#"<br><span class="small">{}</span>"#,
                    escape(h)
                )),
            ),
        ),
    };
    let body = format!(
        r#"<h1>Allow access?</h1>
<p><strong>{client}</strong> wants to use <code>{resource}</code> on your behalf.</p>
<p>{next} <strong>{host}</strong>.</p>
<p>Access it asks for:</p><ul>{scopes}</ul>
<form method="post" action="{action}">
<input type="hidden" name="consent" value="{consent}">
{field}<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="small">Only allow applications you trust. The application was registered by whoever runs it, and its name is not verified.</p>"#,
        client = escape(d.client_name.unwrap_or("An unnamed application")),
        resource = escape(d.resource),
        host = escape(&host),
        action = escape(d.action),
        consent = escape(d.consent),
    );
    wrap("Allow access?", &body)
}

pub fn error_page(message: &str) -> String {
    wrap(
        "Cannot continue",
        &format!("<h1>Cannot continue</h1><p>{}</p>", escape(message)),
    )
}

fn wrap(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}.small{{font-size:.85rem;color:#555}}.error{{color:#a00}}input{{font-size:1rem;width:100%;margin:.25rem 0 1rem}}</style></head>
<body>{body}</body></html>"#
    )
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_the_client_chose_is_escaped() {
        let page = page(&Details {
            client_name: Some("<script>alert(1)</script>"),
            redirect_uri: "https://app.example/cb",
            scope: Some("read \"write\""),
            resource: "https://mcp.example/mcp",
            action: "https://mcp.example/mcp/oauth/authorize",
            consent: "abc",
            key: Some(KeyField {
                prompt: "API <key>",
                help: Some("from https://example.com/settings?a=1&b=2"),
                error: Some("The key <b> was refused"),
            }),
        });
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;") && page.contains("&quot;write&quot;"));
        assert!(page.contains("app.example"));
        assert!(page.contains(r#"type="password" id="key" name="key""#));
        assert!(page.contains("API &lt;key&gt;") && page.contains("a=1&amp;b=2"));
        assert!(page.contains("The key &lt;b&gt; was refused"));
    }
}
