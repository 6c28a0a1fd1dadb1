//! The pages people read during a sign-in, as a browser shows them: the passthrough key page
//! and the broker's consent page name the server by its `display_name`, say what is granted,
//! for how long and where the sign-in goes next, keep a local client's port, and make Allow
//! the primary action. Each is rendered in headless Chromium at 1000 and 400 px wide; the
//! screenshots go to `target/screenshots` (or `MCPGATE_SCREENSHOTS`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::idp::Idp;
use common::oauth::{authorize_url, http};
use common::{Gateway, Upstream, SEAL_KEY};

/// A local client: the page must show its port.
const LOCAL_REDIRECT: &str = "http://127.0.0.1:33418/callback";

fn register(gw: &Gateway, route: &str) -> String {
    let r = http()
        .post(gw.url(&format!("{route}/oauth/register")))
        .json(&serde_json::json!({
            "redirect_uris": [LOCAL_REDIRECT],
            "token_endpoint_auth_method": "none",
            "client_name": "Notes App",
        }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("MCPGATE_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `url` in headless Chromium at `width` px; the PNG's path.
fn screenshot(url: &str, name: &str, width: u32) -> PathBuf {
    let path = screenshot_dir().join(format!("{name}-{width}.png"));
    let _ = std::fs::remove_file(&path);
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--window-size={width},900"))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("chromium runs (scripts/install-deps installs it)");
    assert!(
        out.status.success() && path.exists(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&path).unwrap();
    // The PNG's IHDR: the width asked for, and more than a blank page's few kilobytes.
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), width);
    assert!(png.len() > 10_000, "{} looks blank", path.display());
    path
}

#[test]
fn the_key_and_consent_pages_say_what_is_granted_in_a_real_browser() {
    let idp = Idp::start();
    let up = Upstream::start();
    let providers = format!(
        "seal_key: {SEAL_KEY}\nproviders:\n  idp:\n    issuer: {}\n    client_id: mcpgate\n    client_secret: gw-secret\n",
        idp.issuer()
    );
    let routes = format!(
        "  - prefix: /files\n    display_name: Company Files\n    upstream: {up}\n    auth:\n      passthrough:\n        prompt: Your Files API key\n        help: Find it under Settings, API keys.\n        header: \"Authorization: Bearer {{key}}\"\n      access_ttl: 1h\n      refresh_ttl: 30d\n\
         \x20 - prefix: /wiki\n    display_name: Team Wiki\n    upstream: {up}\n    auth: {{ provider: idp, oauth: broker, scopes: [wiki:read] }}\n",
        up = up.url()
    );
    let gw = Gateway::start_with(&providers, &routes);
    gw.wait_ready();

    let client = register(&gw, "/files");
    let url = authorize_url(&gw, "/files", &client, LOCAL_REDIRECT, None);
    let page = http().get(&url).send().unwrap().text().unwrap();
    for said in [
        "Allow Notes App to use Company Files?",
        "everything your account may do on Company Files",
        "for up to 30 days (renewed every 1 hour)",
        "sends it to Company Files with every call Notes App makes",
        "go back to <strong>127.0.0.1:33418</strong>",
        r#"value="approve" class="primary">Allow"#,
        "Find it under Settings, API keys.",
    ] {
        assert!(page.contains(said), "the key page lacks {said:?}:\n{page}");
    }
    for width in [1000, 400] {
        screenshot(&url, "key-page", width);
    }

    let client = register(&gw, "/wiki");
    let url = authorize_url(&gw, "/wiki", &client, LOCAL_REDIRECT, Some("wiki:read"));
    let page = http().get(&url).send().unwrap().text().unwrap();
    for said in [
        "Allow Notes App to use Team Wiki?",
        "<code>wiki:read</code>",
        "Next you sign in at <strong>127.0.0.1</strong>",
        "go back to <strong>127.0.0.1:33418</strong>",
    ] {
        assert!(
            page.contains(said),
            "the consent page lacks {said:?}:\n{page}"
        );
    }
    for width in [1000, 400] {
        screenshot(&url, "consent-page", width);
    }
}
