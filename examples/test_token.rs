//! For load tests: the keys and tokens of a test issuer, written to files. ES256, because it
//! signs fast enough to write a distinct token for every request of a run.
//!
//! Usage: test_token <out-dir> <audience> <count>. Writes into `<out-dir>`:
//! - `issuer`: the issuer URL the tokens carry;
//! - `jwks-1.json`: key A; `jwks-2.json`: keys A and B (a rotation: B published, then used);
//! - `token-a`, `token-b`: one token signed with each key (the cached scenarios);
//! - `tokens-a.txt`: `<count>` distinct tokens signed with A, one per line.

// The test suite's IdP, and the server it runs on.
#[path = "../tests/common/idp.rs"]
#[allow(dead_code)]
mod idp;
#[path = "../tests/common/server.rs"]
mod server;

use std::io::Write;
use std::path::Path;

use idp::{Alg, Idp};
use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, audience, count] = &args[..] else {
        eprintln!("usage: test_token <out-dir> <audience> <count>");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("count is a number");
    let out = Path::new(out);
    let write = |name: &str, text: &str| std::fs::write(out.join(name), text).expect("write");
    let idp = Idp::start();
    let claims = |sub: &str| -> Value {
        let mut claims = idp.claims(audience, sub);
        claims["exp"] = (claims["iat"].as_u64().unwrap() + 3600).into();
        claims["scope"] = "mcp:tools".into();
        claims
    };
    write("issuer", &idp.issuer());
    let key_a = idp.public_jwk(Alg::ES256);
    write("token-a", &idp.sign(Alg::ES256, &claims("load-test-user")));
    let mut tokens = std::io::BufWriter::new(
        std::fs::File::create(out.join("tokens-a.txt")).expect("create tokens-a.txt"),
    );
    for i in 0..count {
        writeln!(
            tokens,
            "{}",
            idp.sign(Alg::ES256, &claims(&format!("user-{i}")))
        )
        .expect("write a token");
    }
    tokens.flush().expect("flush");
    idp.rotate(Alg::ES256);
    let key_b = idp.public_jwk(Alg::ES256);
    write("token-b", &idp.sign(Alg::ES256, &claims("load-test-user")));
    write("jwks-1.json", &json!({ "keys": [key_a] }).to_string());
    write(
        "jwks-2.json",
        &json!({ "keys": [key_a, key_b] }).to_string(),
    );
}
