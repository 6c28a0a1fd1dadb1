//! TLS on the listener (HTTP/2 by ALPN) and to an https upstream with a private CA.

mod common;

use common::{route, Gateway, Upstream};

/// A self-signed certificate for `localhost`, written as cert.pem and key.pem in a new dir.
fn cert_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    (dir, pem)
}

#[test]
fn serves_http2_over_tls_and_reaches_an_https_upstream_with_a_ca_file() {
    let up = Upstream::start();
    let (dir, pem) = cert_dir();
    let tls_gw = Gateway::start_in(
        dir,
        "tls: { cert: cert.pem, key: key.pem }",
        &route("/mcp", &format!("{}/mcp", up.url()), ""),
    );

    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/mcp/x", tls_gw.port);
    let r = client.post(&url).body("{}").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(up.last_seen().uri, "/mcp/x");

    // A second gateway in front of the first, over https, trusting only our CA file.
    let ca = tls_gw.dir.path().join("cert.pem");
    let front = Gateway::start(&route(
        "/front",
        &format!("https://localhost:{}/mcp", tls_gw.port),
        &format!("ca_file: {}", ca.display()),
    ));
    let r = reqwest::blocking::get(front.url("/front/y")).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.last_seen().uri, "/mcp/y");

    // Without the CA file the handshake fails: 502, and the gateway says why.
    let untrusting = Gateway::start(&route(
        "/front",
        &format!("https://localhost:{}/mcp", tls_gw.port),
        "",
    ));
    let r = reqwest::blocking::get(untrusting.url("/front/y")).unwrap();
    assert_eq!(r.status(), 502);
    let body: serde_json::Value = r.json().unwrap();
    assert!(
        body["error_description"].as_str().unwrap().contains("TLS"),
        "{body}"
    );
}
