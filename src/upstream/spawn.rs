//! Upstreams the gateway runs itself: start the command, report ready once its port accepts
//! connections, restart it with backoff when it dies, stop it on reload or shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use log::{info, warn};
use tokio::process::{Child, Command};
use tokio::sync::{watch, Notify};

use crate::config::Spawn;
use crate::metrics;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before dying starts over at the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Whether a spawned upstream listens right now, and why not when its command fails.
/// Read lock-free on every request.
#[derive(Debug, Default)]
pub struct SpawnState {
    ready: AtomicBool,
    /// Set when the command could not start or exited before it listened; cleared once it
    /// listens. Requests then get the reason at once instead of waiting for `ready_timeout`.
    failure: ArcSwapOption<String>,
    changed: Notify,
}

/// What a request waiting for a spawned upstream learns.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Still (re)starting when the wait ended.
    Starting,
    /// Its command fails: the reason (the gateway keeps restarting it).
    Failed(Arc<String>),
}

impl SpawnState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Why the command fails, while it does.
    pub fn failure(&self) -> Option<Arc<String>> {
        self.failure.load_full()
    }

    fn set_ready(&self, ready: bool) {
        if ready {
            self.failure.store(None);
        }
        self.ready.store(ready, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn set_failed(&self, reason: String) {
        self.failure.store(Some(Arc::new(reason)));
        self.changed.notify_waiters();
    }

    fn readiness(&self) -> Option<Readiness> {
        if self.is_ready() {
            return Some(Readiness::Ready);
        }
        self.failure().map(Readiness::Failed)
    }

    /// Waits up to `timeout` for the upstream to listen; a failing command ends the wait.
    pub async fn wait_ready(&self, timeout: Duration) -> Readiness {
        let wait = async {
            loop {
                let mut notified = pin!(self.changed.notified());
                notified.as_mut().enable();
                if let Some(readiness) = self.readiness() {
                    return readiness;
                }
                notified.await;
            }
        };
        match self.readiness() {
            Some(readiness) => readiness,
            None => tokio::time::timeout(timeout, wait)
                .await
                .unwrap_or(Readiness::Starting),
        }
    }
}

/// What identifies one supervised process: where it listens and how it is started.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpawnKey {
    pub addr: SocketAddr,
    pub spawn: SpawnSpec,
}

/// `Spawn` minus the fields that do not change the process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpawnSpec {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<std::path::PathBuf>,
}

impl SpawnKey {
    pub fn new(addr: SocketAddr, spawn: &Spawn) -> SpawnKey {
        SpawnKey {
            addr,
            spawn: SpawnSpec {
                argv: spawn.argv.clone(),
                env: spawn.env.clone().into_iter().collect(),
                cwd: spawn.cwd.clone(),
            },
        }
    }
}

struct Entry {
    state: Arc<SpawnState>,
    /// Set once the process is started; sending on it stops the process for good.
    stop: Option<watch::Sender<bool>>,
}

/// All spawned upstreams of this process, across reloads.
#[derive(Default)]
pub struct Supervisor {
    entries: Mutex<HashMap<SpawnKey, Entry>>,
}

impl Supervisor {
    /// The state for `key`, shared by every snapshot that routes to it. Needs no runtime, so
    /// snapshots can be built before the server starts.
    pub fn state_for(&self, key: &SpawnKey) -> Arc<SpawnState> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .entry(key.clone())
            .or_insert_with(|| Entry {
                state: Arc::default(),
                stop: None,
            })
            .state
            .clone()
    }

    /// Starts every process in `wanted` that is not running and stops every other one.
    /// Must run inside the Tokio runtime that will own the processes.
    pub fn sync(&self, wanted: &[SpawnKey]) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|key, entry| {
            let keep = wanted.contains(key);
            if !keep {
                if let Some(stop) = &entry.stop {
                    let _ = stop.send(true);
                }
            }
            keep
        });
        for key in wanted {
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                state: Arc::default(),
                stop: None,
            });
            if entry.stop.is_none() {
                let (stop, stopped) = watch::channel(false);
                entry.stop = Some(stop);
                tokio::spawn(supervise(key.clone(), entry.state.clone(), stopped));
            }
        }
    }

    /// Stops every process and waits until each has exited (or was killed).
    pub async fn stop_all(&self) {
        let stops: Vec<_> = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.drain().filter_map(|(_, e)| e.stop).collect()
        };
        for stop in &stops {
            let _ = stop.send(true);
        }
        for stop in stops {
            stop.closed().await;
        }
    }
}

/// Runs one command for as long as it is wanted.
async fn supervise(key: SpawnKey, state: Arc<SpawnState>, mut stopped: watch::Receiver<bool>) {
    let label = key.addr.to_string();
    let mut backoff = FIRST_BACKOFF;
    loop {
        metrics::SPAWN_STARTS.with_label_values(&[&label]).inc();
        let started = Instant::now();
        let mut child = match start(&key.spawn) {
            Ok(child) => ProcessGroup::new(child),
            Err(e) => {
                let reason = format!("cannot start `{}`: {e}", key.spawn.argv[0]);
                warn!("spawned upstream {label}: {reason}; trying again in {backoff:?}");
                state.set_failed(reason);
                if sleep_or_stop(backoff, &mut stopped).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let pid = child.0.id();
        info!("spawned upstream {label}: started pid {pid:?}");
        let status = tokio::select! {
            status = run_until_exit(&mut child.0, key.addr, &state) => status,
            _ = async { stopped.wait_for(|s| *s).await.map(|_| ()) } => {
                state.set_ready(false);
                terminate(&mut child.0).await;
                info!("spawned upstream {label}: stopped");
                return;
            }
        };
        let listened = state.is_ready();
        state.set_ready(false);
        if let Some(pid) = pid {
            signal_group(pid, libc::SIGKILL); // what the leader left behind must not hold the port
        }
        if listened {
            warn!("spawned upstream {label}: exited ({status}); restarting in {backoff:?}");
        } else {
            let reason = format!(
                "`{}` exited ({status}) before it listened on {label}",
                key.spawn.argv[0]
            );
            warn!("spawned upstream {label}: {reason}; restarting in {backoff:?}");
            state.set_failed(reason);
        }
        if started.elapsed() > HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        if sleep_or_stop(backoff, &mut stopped).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A started command. Dropping it kills its whole process group, so no grandchild outlives
/// the gateway.
struct ProcessGroup(Child);

/// Groups started and not yet dropped. A quick shutdown (SIGINT) exits the process without
/// waiting for tasks to be dropped, so an `atexit` hook kills what is still listed here.
static LIVE_GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_live_groups() {
    // `try_lock`: at exit, never wait for a thread that may not run again.
    if let Ok(groups) = LIVE_GROUPS.try_lock() {
        for &pid in groups.iter() {
            signal_group(pid, libc::SIGKILL);
        }
    }
}

impl ProcessGroup {
    fn new(child: Child) -> ProcessGroup {
        static HOOK: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a plain `extern "C"` function with no arguments, as atexit(3) wants.
        HOOK.call_once(|| unsafe {
            libc::atexit(kill_live_groups);
        });
        if let Some(pid) = child.id() {
            live_groups().push(pid);
        }
        ProcessGroup(child)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            signal_group(pid, libc::SIGKILL);
            live_groups().retain(|&p| p != pid);
        }
    }
}

fn live_groups() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE_GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(spec: &SpawnSpec) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        // Its own process group, so that stopping it also stops what it started (npx → node).
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    cmd.spawn()
}

/// Marks the upstream ready once its port accepts, then waits for the process to exit.
async fn run_until_exit(child: &mut Child, addr: SocketAddr, state: &SpawnState) -> String {
    let listening = async {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        state.set_ready(true);
        std::future::pending::<()>().await
    };
    tokio::select! {
        status = child.wait() => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
        _ = listening => unreachable!("pending never completes"),
    }
}

/// SIGTERM to the process group, then SIGKILL if it has not exited within the grace time.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            signal_group(pid, libc::SIGKILL); // whatever the leader left behind
            return;
        }
        signal_group(pid, libc::SIGKILL);
    }
    let _ = child.wait().await;
}

fn signal_group(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions; a stale group id fails with ESRCH.
        unsafe { libc::kill(-pid, signal) };
    }
}

/// Sleeps, returning early with `true` if the process is no longer wanted.
async fn sleep_or_stop(d: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = async { stopped.wait_for(|s| *s).await.map(|_| ()) } => true,
    }
}
