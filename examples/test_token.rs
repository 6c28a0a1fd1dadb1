//! For load tests: writes a JWKS file for a test issuer and prints a token it signed.
//! Usage: test_token <jwks.json> <issuer-file> <audience>  (prints the token on stdout)

// The test suite's IdP, and the server it runs on.
#[path = "../tests/common/idp.rs"]
#[allow(dead_code)]
mod idp;
#[path = "../tests/common/server.rs"]
mod server;

use idp::{Alg, Idp};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, jwks, issuer_file, audience] = &args[..] else {
        eprintln!("usage: test_token <jwks.json> <issuer-file> <audience>");
        std::process::exit(2);
    };
    let idp = Idp::start();
    let keys = serde_json::json!({ "keys": [idp.public_jwk(Alg::RS256)] });
    std::fs::write(jwks, keys.to_string()).expect("write the JWKS");
    std::fs::write(issuer_file, idp.issuer()).expect("write the issuer");
    let mut claims = idp.claims(audience, "load-test-user");
    claims["exp"] = (claims["iat"].as_u64().unwrap() + 3600).into();
    claims["scope"] = "mcp:tools".into();
    println!("{}", idp.sign(Alg::RS256, &claims));
}
