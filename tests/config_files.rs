//! Every example in conf/ loads; `mcpgate -t` says which key is wrong, where and why.

mod common;

use common::run_gateway;

#[test]
fn every_file_in_conf_loads() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conf");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let (code, out) = run_gateway(&["-t", "-c", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {out}", path.display());
            assert!(out.contains("configuration is valid"), "{out}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "conf/ has only {checked} examples");
}

#[test]
fn a_bad_file_fails_the_check_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n    auth: none\n  - prefix: /b\n    upstream: not-a-url\n    auth: none\n",
            "routes[1].upstream: not a URL",
        ),
        (
            "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n",
            "routes[0]: missing field `auth`",
        ),
        (
            "listen: 127.0.0.1:8080\nlisten_typo: 1\nroutes: []\n",
            "listen_typo: unknown field",
        ),
        (
            "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n    auth: none\n    ca_file: missing.pem\n",
            "routes[0].ca_file: only applies to an https upstream",
        ),
        (
            "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /a\n    upstream: https://127.0.0.1:1\n    auth: none\n    ca_file: missing.pem\n",
            "routes[0].ca_file: no such file",
        ),
        (
            "listen: 127.0.0.1:8080\ntls: { cert: cert.pem, key: cert.pem }\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n    auth: none\n",
            "tls.cert: ",
        ),
        // A key that would be accepted and then do nothing is refused like a typo.
        (
            "listen: 127.0.0.1:8080\nproviders:\n  p: { issuer: \"https://i.test\", client_id: c }\nroutes:\n  - prefix: /a\n    upstream: http://127.0.0.1:1\n    auth: { provider: p }\n    upstream_auth: { token_exchange: { scope_prefix: api:// } }\n",
            "routes[0].upstream_auth.token_exchange.scope_prefix: unknown field",
        ),
    ];
    // A file nested far too deep is refused before the YAML parser runs (its time grows
    // with the square of the depth: 200 KB took the parser 49 s).
    let deep = format!("listen: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let cases = cases.into_iter().chain([(
        deep.as_str(),
        "line 1 column 41: not valid YAML: nested more than 32",
    )]);
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    for (yaml, want) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let (code, out) = run_gateway(&["-t", "-c", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(want), "want `{want}` in: {out}");
    }
    let (code, out) = run_gateway(&["-t", "-c", "/nonexistent/mcpgate.yaml"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("cannot read /nonexistent/mcpgate.yaml"),
        "{out}"
    );
}

#[test]
fn a_ca_file_that_is_not_pem_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "listen: 127.0.0.1:8080\nroutes:\n  - prefix: /a\n    upstream: https://localhost:1\n    auth: none\n    ca_file: ca.pem\n").unwrap();
    let (code, out) = run_gateway(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("routes[0]: ") && out.contains("ca.pem"),
        "{out}"
    );
}

/// The config the replicas of deploy/ (compose and Kubernetes) run with loads, given the
/// environment they give it.
#[test]
fn the_replicas_deployment_config_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/mcpgate.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["-t", "-c", path])
        .env("MCPGATE_SEAL_KEY", common::SEAL_KEY)
        .env("MCPGATE_PUBLIC_URL", "https://mcp.example.com")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
}
