//! The consent page (MCP requires one of a proxy that uses a single static client at the
//! IdP: otherwise any registered client could ride on the user's earlier consent there).
//! Plain HTML, no scripts, every value escaped.

pub struct Details<'a> {
    pub client_name: Option<&'a str>,
    pub redirect_uri: &'a str,
    pub scope: Option<&'a str>,
    /// The MCP server: its `display_name` and URL.
    pub server: &'a ServerFacts,
    /// Where the form posts.
    pub action: &'a str,
    /// The sealed request.
    pub consent: &'a str,
    /// On passthrough routes: the field the user types the upstream's key into.
    pub key: Option<KeyField<'a>>,
}

/// What the pages say of a route, worked out when the route is compiled.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// `display_name`, else the URL.
    pub name: String,
    pub url: String,
    /// How long what is granted lasts, when the gateway decides it (its own tokens).
    pub lifetime: Option<String>,
    /// Where the user signs in after this page (the IdP's or service's host); `None` when
    /// this page is the sign-in.
    pub signs_in_at: Option<String>,
}

pub struct KeyField<'a> {
    pub prompt: &'a str,
    pub help: Option<&'a str>,
    /// Why the last key was not taken.
    pub error: Option<&'a str>,
}

pub fn page(d: &Details) -> String {
    let client = escape(d.client_name.unwrap_or("An unnamed application"));
    let server = escape(&d.server.name);
    let scopes: String = d
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let scopes = if scopes.is_empty() {
        format!("<li>everything your account may do on {server}</li>")
    } else {
        scopes
    };
    let lifetime = d.server.lifetime.as_deref().map_or(String::new(), |l| {
        format!(
            "<p>{client} keeps this access for {}, unless you revoke it sooner.</p>",
            escape(l)
        )
    });
    let field = d.key.as_ref().map_or(String::new(), |k| {
        format!(
            r#"{error}<label for="key">{prompt}</label>
<input type="password" id="key" name="key" autocomplete="off" required autofocus>{help}
<p class="small">The key is sealed into the tokens {client} gets: the application never sees it. The gateway sends it to {server} with every call {client} makes, for as long as the access lasts.</p>
"#,
            error = k.error.map_or(String::new(), |e| format!(
                r#"<p class="error" role="alert">{}</p>"#,
                escape(e)
            )),
            prompt = escape(k.prompt),
            help = k.help.map_or(String::new(), |h| format!(
                r#"<span class="small">{}</span>"#,
                escape(h)
            )),
        )
    });
    let next = match &d.server.signs_in_at {
        Some(at) => format!(
            "Next you sign in at <strong>{}</strong>; then you go back to <strong>{}</strong>.",
            escape(at),
            escape(&redirect_host(d.redirect_uri))
        ),
        None => format!(
            "Then you go back to <strong>{}</strong>.",
            escape(&redirect_host(d.redirect_uri))
        ),
    };
    let body = format!(
        r#"<h1>Allow {client} to use {server}?</h1>
<p><strong>{client}</strong> wants to use <strong>{server}</strong> (<code>{url}</code>) on your behalf, with:</p>
<ul>{scopes}</ul>
{lifetime}<form method="post" action="{action}">
<input type="hidden" name="consent" value="{consent}">
{field}<p>{next}</p>
<div class="actions"><button type="submit" name="decision" value="approve" class="primary">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button></div>
</form>
<p class="small">Only allow applications you trust. The application was registered by whoever runs it, and its name is not verified.</p>"#,
        url = escape(&d.server.url),
        action = escape(d.action),
        consent = escape(d.consent),
    );
    wrap("Allow access?", &body)
}

/// Where the user goes back to: the host, with its port when it has one (local clients
/// differ only by port).
fn redirect_host(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => redirect_uri.to_string(),
        },
        Err(_) => redirect_uri.to_string(),
    }
}

/// `1 hour`, `30 days`, `90 minutes`: the largest unit that divides the duration.
pub fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(size, _)| secs >= *size && secs.is_multiple_of(*size))
        .map_or((secs, "second"), |(size, unit)| (secs / size, unit));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
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
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#222;overflow-wrap:anywhere}}h1{{font-size:1.5rem;line-height:1.3}}code{{font-size:.9em}}label{{display:block;font-weight:600}}input{{font-size:1rem;width:100%;box-sizing:border-box;padding:.5rem;margin:.25rem 0}}.actions{{display:flex;gap:.75rem;flex-wrap:wrap;margin:1.5rem 0}}button{{font-size:1rem;padding:.6rem 1.5rem;border-radius:.375rem;cursor:pointer}}.primary{{background:#1a56db;color:#fff;border:1px solid #1a56db;font-weight:600}}.secondary{{background:#fff;color:#333;border:1px solid #999}}.small{{display:block;font-size:.85rem;color:#555}}.error{{color:#a00}}</style></head>
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
        let server = ServerFacts {
            name: "Files <prod>".into(),
            url: "https://mcp.example/mcp".into(),
            lifetime: Some("30 days".into()),
            signs_in_at: None,
        };
        let page = page(&Details {
            client_name: Some("<script>alert(1)</script>"),
            redirect_uri: "http://127.0.0.1:33418/cb",
            scope: Some("read \"write\""),
            server: &server,
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
        assert!(page.contains("Files &lt;prod&gt;"));
        assert!(
            page.contains("<strong>127.0.0.1:33418</strong>"),
            "the port names a local client"
        );
        assert!(page.contains("for 30 days"));
        assert!(page.contains(r#"type="password" id="key" name="key""#));
        assert!(page.contains("API &lt;key&gt;") && page.contains("a=1&amp;b=2"));
        assert!(page.contains("The key &lt;b&gt; was refused"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        use std::time::Duration;
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(human(Duration::from_secs(5400)), "90 minutes");
        assert_eq!(human(Duration::from_secs(45)), "45 seconds");
    }
}
