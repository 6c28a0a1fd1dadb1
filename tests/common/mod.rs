//! Test harness: the real gateway binary on free loopback ports, a real HTTP upstream
//! (hyper) that echoes requests and streams server-sent events, and the Node.js parts of the
//! end-to-end tests (`tests/e2e`).
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use tokio::sync::mpsc;

pub mod idp;
pub mod oauth;
pub mod redis;
pub mod server;

/// The end-to-end tests' `seal_key` (32 bytes, base64).
pub const SEAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A port nothing listens on right now, and nothing else will be given before the caller
/// binds it: ports come from below the kernel's ephemeral range (which `bind(…:0)` of the
/// harness's own servers and every client socket draw from), each handed out once per test
/// binary, starting at an offset of the process id so that concurrent binaries rarely meet.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > 11_000)
        .unwrap_or(32_768);
    let span = ephemeral_low - 10_000;
    let start = std::process::id() * 97;
    loop {
        let port = 10_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

/// A running `mcpgate` process with its own config directory.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    tls: bool,
}

impl Gateway {
    /// Starts the gateway on `routes` (YAML list items, indented by two spaces) and waits
    /// until it answers `/healthz`.
    pub fn start(routes: &str) -> Gateway {
        Self::start_with("", routes)
    }

    /// `extra` is top-level YAML put before `routes:`.
    pub fn start_with(extra: &str, routes: &str) -> Gateway {
        Self::start_in(tempfile::tempdir().unwrap(), extra, routes)
    }

    /// Like `start_with`, in a directory the caller has put files in (certificates).
    pub fn start_in(dir: tempfile::TempDir, extra: &str, routes: &str) -> Gateway {
        let port = free_port();
        let metrics_port = free_port();
        let config = Self::config_text(dir.path(), port, metrics_port, extra, routes);
        std::fs::write(dir.path().join("mcpgate.yaml"), config).unwrap();
        let child = Self::spawn(dir.path(), &[]);
        let gw = Gateway {
            child,
            port,
            metrics_port,
            dir,
            tls: extra.contains("tls:"),
        };
        gw.wait_healthy();
        gw
    }

    /// Starts the gateway on an existing config file, from `cwd`, with extra environment.
    pub fn start_file(
        config: &Path,
        cwd: &Path,
        env: &[(&str, String)],
        port: u16,
        metrics_port: u16,
    ) -> Gateway {
        Self::start_file_in(
            tempfile::tempdir().unwrap(),
            config,
            cwd,
            env,
            port,
            metrics_port,
        )
    }

    /// Like `start_file`, with the log in `dir`.
    fn start_file_in(
        dir: tempfile::TempDir,
        config: &Path,
        cwd: &Path,
        env: &[(&str, String)],
        port: u16,
        metrics_port: u16,
    ) -> Gateway {
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
            .arg("-c")
            .arg(config)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("gateway binary starts");
        let gw = Gateway {
            child,
            port,
            metrics_port,
            dir,
            tls: false,
        };
        gw.wait_healthy();
        gw
    }

    /// For the end-to-end tests: the gateway on `port`, run from `tests/e2e` (so that spawned
    /// upstreams find their scripts and packages there) with a seal key and `config` (the
    /// top-level YAML after `listen`, `metrics`, `seal_key` and `server`); waits until
    /// `/readyz` says ready.
    pub fn start_e2e(port: u16, config: &str) -> Gateway {
        let metrics_port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcpgate.yaml");
        let text = format!(
            "listen: 127.0.0.1:{port}\nmetrics: 127.0.0.1:{metrics_port}\nseal_key: {SEAL_KEY}\nserver: {{ pid_file: {d}/mcpgate.pid, upgrade_sock: {d}/upgrade.sock }}\n{config}",
            d = dir.path().display()
        );
        std::fs::write(&path, text).unwrap();
        let gw = Self::start_file_in(dir, &path, &e2e_dir(), &[], port, metrics_port);
        wait_for(&gw.url("/readyz"), "the gateway");
        gw
    }

    pub fn config_text(
        dir: &Path,
        port: u16,
        metrics_port: u16,
        extra: &str,
        routes: &str,
    ) -> String {
        format!(
            "listen: 127.0.0.1:{port}\nmetrics: 127.0.0.1:{metrics_port}\nserver:\n  grace_period: 1s\n  graceful_shutdown_timeout: 2s\n  pid_file: {d}/mcpgate.pid\n  upgrade_sock: {d}/upgrade.sock\n  watch_config: {watch}\n{extra}\nroutes:\n{routes}",
            watch = extra.contains("# watch the config"),
            d = dir.display()
        )
    }

    pub fn spawn(dir: &Path, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_mcpgate"))
            .arg("-c")
            .arg(dir.join("mcpgate.yaml"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("gateway.log"))
                    .unwrap(),
            ))
            .spawn()
            .expect("gateway binary starts")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("mcpgate.yaml")
    }

    /// Rewrites the config file with new routes (same ports).
    pub fn write_routes(&self, routes: &str) {
        self.write_config("", routes);
    }

    /// Rewrites the config file with new top-level settings and routes (same ports).
    pub fn write_config(&self, extra: &str, routes: &str) {
        let text = Self::config_text(self.dir.path(), self.port, self.metrics_port, extra, routes);
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The log once it holds `needle` (the gateway writes it from a thread of its own, a
    /// moment after the line is logged); panics with the log after 10 s without it.
    pub fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: libc::c_int) {
        signal_pid(self.child.id(), signal);
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            // A TLS listener answers plain HTTP with a closed connection: accepting is enough.
            let up = match client.get(self.url("/healthz")).send() {
                Ok(r) => r.status() == 200,
                Err(_) => {
                    self.tls && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                }
            };
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become healthy; log:\n{}", self.log());
    }

    /// Waits until `/readyz` says ready (providers have their keys, spawned upstreams listen).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if reqwest::blocking::get(self.url("/readyz")).is_ok_and(|r| r.status() == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become ready; log:\n{}", self.log());
    }

    /// The Prometheus text exposition.
    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .unwrap()
            .text()
            .unwrap()
    }

    /// The value of one sample, e.g. `mcpgate_config_reloads_total{result="ok"}`; 0 if absent.
    pub fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics(), sample)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGINT (Pingora's quick shutdown, which still stops spawned upstreams), then SIGKILL
/// if the process lingers.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return; // reaped already: its PID may belong to another process by now
    }
    signal_pid(child.id(), libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A gateway process started by hand (`-u`), stopped when dropped, even when the test fails.
pub struct Stopped(pub Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

pub fn signal_pid(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// Runs `mcpgate` with arguments and returns (exit code, stdout + stderr).
pub fn run_gateway(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Steady GET traffic from a few threads, counting successes (200) and failures.
pub struct Traffic {
    stop: Arc<std::sync::atomic::AtomicBool>,
    pub ok: Arc<std::sync::atomic::AtomicUsize>,
    failed: Arc<std::sync::atomic::AtomicUsize>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// `fresh_connections`: a new connection per request, for when the server process
    /// changes (a kept-alive connection to an exiting process is the client's to retry).
    pub fn start(url: &str, threads: usize, fresh_connections: bool) -> Traffic {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers = (0..threads)
            .map(|_| {
                let (stop, ok, failed, url) =
                    (stop.clone(), ok.clone(), failed.clone(), url.to_string());
                std::thread::spawn(move || {
                    let mut builder = reqwest::blocking::Client::builder();
                    if fresh_connections {
                        builder = builder.pool_max_idle_per_host(0);
                    }
                    let client = builder.build().unwrap();
                    while !stop.load(Relaxed) {
                        match client.get(&url).send() {
                            Ok(r) if r.status() == 200 => ok.fetch_add(1, Relaxed),
                            _ => failed.fetch_add(1, Relaxed),
                        };
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            ok,
            failed,
            workers,
        }
    }

    pub fn ok_count(&self) -> usize {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the workers; returns (succeeded, failed).
    pub fn stop(self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stop.store(true, Relaxed);
        for w in self.workers {
            w.join().unwrap();
        }
        (self.ok.load(Relaxed), self.failed.load(Relaxed))
    }
}

/// Waits until `pid` has died. A zombie counts as dead: when the gateway exits right after
/// killing a child, the child is reparented before it is reaped, and a container's PID 1
/// may never reap it.
pub fn wait_dead(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_running(pid) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A real HTTP/1.1 upstream on a free port, run on its own thread.
///
/// - `/sse?gap_ms=N`: `text/event-stream`; sends `event 1`, waits N ms, sends `event 2`.
///   The time each event was written is recorded in `sent`.
/// - `/ticks`: an event every 100 ms until the client goes away.
/// - `/slow`: answers after 3 s.
/// - `/chunked`: `application/json` chunks, 300 ms apart, chunked encoding.
/// - anything else: `200` with a JSON echo of method, URI, headers and body; echoes the
///   MCP headers back as response headers.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub sent: Arc<Mutex<Vec<(String, Instant)>>>,
    _runtime: tokio::runtime::Runtime,
}

const MCP_HEADERS: [&str; 5] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

impl Upstream {
    pub fn start() -> Upstream {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (seen2, sent2) = (seen.clone(), sent.clone());
        let (addr, runtime) = serve(port, move |req| handle(req, seen2.clone(), sent2.clone()));
        Upstream {
            addr,
            seen,
            sent,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn last_seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("upstream saw a request")
    }

    pub fn seen_count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

pub use server::{serve, Body};

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

/// A body fed by a channel, so the handler decides when each piece goes out.
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    (tx, BodyExt::boxed(StreamBody::new(stream)))
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<Mutex<Vec<(String, Instant)>>>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        uri: uri.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });

    let response = match path.as_str() {
        p if p.ends_with("/sse") => {
            let gap: u64 = query
                .strip_prefix("gap_ms=")
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000);
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                for (i, wait) in [(1, 0), (2, gap)] {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    let event = format!("id: {i}\nevent: message\ndata: {{\"n\":{i}}}\n\n");
                    sent.lock()
                        .unwrap()
                        .push((format!("event {i}"), Instant::now()));
                    if tx.send(Bytes::from(event)).await.is_err() {
                        return;
                    }
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .body(body)
        }
        p if p.ends_with("/ticks") => {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                for i in 0u64.. {
                    let event = format!("id: {i}\ndata: tick {i}\n\n");
                    if tx.send(Bytes::from(event)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
        }
        p if p.ends_with("/slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Response::builder().body(full("late"))
        }
        p if p.ends_with("/chunked") => {
            let (tx, body) = channel_body();
            tokio::spawn(async move {
                for i in 0..3 {
                    sent.lock()
                        .unwrap()
                        .push((format!("chunk {i}"), Instant::now()));
                    if tx
                        .send(Bytes::from(format!("{{\"chunk\":{i}}}\n")))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(body)
        }
        _ => {
            let echo = serde_json::json!({
                "method": method,
                "uri": uri,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            let mut builder = Response::builder().header("content-type", "application/json");
            for name in MCP_HEADERS {
                if let Some(v) = headers.get(name) {
                    builder = builder.header(name, v.as_str());
                }
            }
            builder.body(full(echo.to_string()))
        }
    };
    Ok(response.unwrap())
}

/// A route entry for the YAML `routes:` list.
pub fn route(prefix: &str, upstream: &str, extra: &str) -> String {
    let mut s = format!("  - prefix: {prefix}\n    upstream: {upstream}\n    auth: none\n");
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str("    ");
        s.push_str(line.trim_start());
        s.push('\n');
    }
    s
}

/// `tests/e2e`, where the Node.js parts of the end-to-end tests live; panics if their
/// packages are not installed.
pub fn e2e_dir() -> PathBuf {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        e2e.join("node_modules/oidc-provider").is_dir(),
        "the e2e packages are not installed: run `npm ci --prefix tests/e2e` (./scripts/test does)"
    );
    e2e
}

/// A Node.js process of the end-to-end tests (an IdP, an MCP server), stopped when dropped.
pub struct Node(pub Child);

impl Node {
    /// Runs `node <script>` (a file in `tests/e2e`) from `tests/e2e` with extra environment.
    pub fn start(script: &str, env: &[(&str, String)]) -> Node {
        let e2e = e2e_dir();
        Node(
            Command::new("node")
                .arg(e2e.join(script))
                .current_dir(&e2e)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("node runs"),
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to 60 s until `url` answers 200 to a GET.
pub fn wait_for(url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::blocking::get(url).is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "{what} never answered {url}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `tests/e2e/mcp_oauth_client.mjs` against the gateway route `prefix` with `sdk`
/// (`v1` or `v2`) and extra environment, and returns the JSON line it prints.
pub fn oauth_client(
    gw: &Gateway,
    prefix: &str,
    sdk: &str,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let url = gw.url(prefix);
    run_client(gw, &["node", "mcp_oauth_client.mjs", &url, sdk], env)
}

/// Runs a client script of `tests/e2e` (`node x.mjs …`, `python3 x.py …`) from there with
/// extra environment, and returns the JSON line it prints. Panics, with the client's output
/// and the gateway's log, if it fails or takes over 60 s.
pub fn run_client(gw: &Gateway, command: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let e2e = e2e_dir();
    let out = tempfile::tempdir().unwrap();
    let file = |name: &str| std::fs::File::create(out.path().join(name)).unwrap();
    let mut child = Command::new(command[0])
        .args(&command[1..])
        .current_dir(&e2e)
        .envs(env.iter().copied())
        .stdout(Stdio::from(file("stdout")))
        .stderr(Stdio::from(file("stderr")))
        .spawn()
        .expect("the client runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    let (stdout, stderr) = (read("stdout"), read("stderr"));
    let problem = match status {
        None => "took over 60 s".to_string(),
        Some(s) if !s.success() => format!("failed ({s})"),
        Some(_) => match serde_json::from_str(stdout.trim()) {
            Ok(seen) => return seen,
            Err(e) => format!("printed no JSON ({e})"),
        },
    };
    panic!(
        "{command:?} {problem}: {stdout}\n{stderr}\ngateway log:\n{}",
        gw.log()
    )
}

/// What every OAuth run of `mcp_oauth_client.mjs` must have seen, whatever the route's
/// strategy: one registration, the tool answers before and after the refresh, three
/// progress notifications, a new access token from the refresh, the gateway's route URL as
/// the authorization response's `iss` (RFC 9207), and for the refresh token: active, then
/// revoked (200), then inactive and refused (`invalid_grant`).
pub fn assert_oauth_run(seen: &serde_json::Value, route_url: &str) {
    assert_eq!(seen["echo"], "Echo: authorized", "{seen}");
    assert_eq!(seen["again"], "Echo: refreshed", "{seen}");
    assert_eq!(seen["progress"], serde_json::json!([1, 2, 3]), "{seen}");
    assert_eq!(seen["registrations"], 1, "{seen}");
    assert_eq!(
        seen["iss"], route_url,
        "RFC 9207 iss of the gateway: {seen}"
    );
    assert_eq!(seen["refreshedToken"], true, "{seen}");
    assert_eq!(
        seen["revocation"],
        serde_json::json!({"activeBefore": true, "revokeStatus": 200, "activeAfter": false,
            "refreshAfter": "invalid_grant"}),
        "{seen}"
    );
}

/// The strings of a JSON array (none if it is not one).
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default()
}
