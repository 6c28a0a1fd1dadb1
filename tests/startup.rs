//! What an operator sees first: where the gateway listens and what each route is, a second
//! instance on the same port that exits instead of waiting forever, configuration errors
//! with a hint, warnings on a check, and a 404 that names what it did not find.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{route, Gateway, Upstream};

#[test]
fn the_start_and_each_reload_say_where_to_point_clients() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/open", &up.url(), ""));
    let config = gw.config_path();
    gw.log_with(&format!(
        "mcpgate::banner] mcpgate {} listening on http://127.0.0.1:{} (config {})",
        env!("CARGO_PKG_VERSION"),
        gw.port,
        config.display()
    ));
    gw.log_with(&format!(
        "mcpgate::banner]   http://127.0.0.1:{}/open → {} (open: auth none)",
        gw.port,
        up.url()
    ));
    gw.log_with(&format!(
        "mcpgate::banner] metrics on http://127.0.0.1:{}/metrics",
        gw.metrics_port
    ));

    let routes = route("/open", &up.url(), "") + &route("/more", &format!("{}/m", up.url()), "");
    gw.write_routes(&routes);
    gw.signal(libc::SIGHUP);
    gw.log_with(&format!("reloaded {}: 2 routes", config.display()));
    gw.log_with(&format!(
        "mcpgate::banner]   http://127.0.0.1:{}/more → {}/m (open: auth none)",
        gw.port,
        up.url()
    ));
}

#[test]
fn a_second_instance_on_the_same_port_exits_and_says_why() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/open", &up.url(), ""));
    let started = Instant::now();
    let mut second = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .arg("-c")
        .arg(gw.config_path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            common::stop(&mut second);
            panic!("the second instance is still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "listen: 127.0.0.1:{} is in use by another process (another mcpgate? `mcpgate -u`",
            gw.port
        )),
        "{stderr}"
    );
    // The first instance never noticed.
    let r = reqwest::blocking::get(gw.url("/open/x")).unwrap();
    assert_eq!(r.status(), 200);
}

/// `mcpgate -t` on `yaml`: exit success and stderr.
fn check(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcpgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(["-t", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn configuration_errors_say_what_to_write_and_a_check_warns_of_placeholders() {
    let (ok, err) =
        check("listen: 127.0.0.1:1\nroutes:\n  - { prefix: /mcp, upstream: http://127.0.0.1:2 }\n");
    assert!(!ok);
    assert!(
        err.contains("routes[0]: missing field `auth`; every route says how it is protected: `auth: none`, `auth: { provider: NAME }`"),
        "{err}"
    );
    let (ok, err) = check("listen: 127.0.0.1:1\nroutes:\n  - { prefix: /mcp, upstream: http://127.0.0.1:2, auth: none, connect_timeout: 5 }\n");
    assert!(!ok);
    assert!(
        err.contains("routes[0].connect_timeout: invalid type: integer `5`, expected a string; write durations with a unit, like 500ms, 5s"),
        "{err}"
    );

    // Loads, but the secret is still the example's: a warning, and no word of the seal key
    // (a check starts nothing that would use one).
    let (ok, err) = check(
        "listen: 127.0.0.1:1\nproviders:\n  idp: { issuer: \"https://idp.test\", client_id: gw, client_secret: change-me }\nroutes:\n  - { prefix: /mcp, upstream: http://127.0.0.1:2, auth: { provider: idp, oauth: broker } }\n",
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: providers.idp.client_secret is empty or a placeholder"),
        "{err}"
    );
    assert!(
        !err.contains("change-me"),
        "the value itself is not printed: {err}"
    );
    assert!(!err.contains("seal_key"), "{err}");
}

#[test]
fn a_404_names_the_path_it_did_not_find() {
    let up = Upstream::start();
    let gw = Gateway::start(&route("/mcp", &up.url(), ""));
    let r = reqwest::blocking::get(gw.url("/mpc/tools")).unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"], "not_found");
    assert_eq!(
        body["error_description"],
        "no route matches /mpc/tools on host 127.0.0.1"
    );
}
