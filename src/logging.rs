//! The process's logger. `env_logger` formats each record (level from `RUST_LOG`, default
//! `info`) on the thread that logs it; a writer thread writes it. A worker thread hands the
//! line to a bounded queue and goes on, so neither the access log nor a slow stderr (a pipe
//! nobody reads fast enough, a full disk behind a redirect) ever holds a request. When the
//! queue is full the line is dropped and counted (`mcpgate_log_lines_dropped_total`).
//!
//! One filter stands in front: what Pingora reports as an error but is only a client going
//! away.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use log::{Level, Log, Metadata, Record};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

use crate::metrics;

/// Lines the queue holds before it drops: about 2 MiB of typical lines.
const QUEUED_LINES: usize = 16_384;

/// The writer threads' handles: dropped at exit, which writes out what is still queued.
static WRITER: Mutex<Vec<WorkerGuard>> = Mutex::new(Vec::new());

/// The log target of audit lines (`mcp::audit`).
pub const AUDIT_TARGET: &str = "mcpgate::audit";

/// Where audit lines go when `audit_log` names a file.
static AUDIT: OnceLock<AuditSink> = OnceLock::new();

enum AuditSink {
    /// Through a writer thread of its own, as the log's.
    Background(NonBlocking),
    /// Written by the thread that logs (`-d`: a fork keeps no threads); one `write` per
    /// line on an append-only file, so lines never interleave.
    Direct(File),
}

/// Installs the logger; call once, first thing. `background`: through the writer thread;
/// otherwise each line is written by the thread that logs it (a process that forks to
/// daemonize loses its threads, so `-d` logs that way).
pub fn init(background: bool) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let dropped = if background {
        let (writer, guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(QUEUED_LINES)
            .lossy(true)
            .thread_name("mcpgate-log")
            // The writer drains what is queued, then flushes: under load, many lines per
            // write(2).
            .finish(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stderr(),
            ));
        let dropped = writer.error_counter();
        builder.target(env_logger::Target::Pipe(Box::new(writer)));
        WRITER.lock().unwrap_or_else(|e| e.into_inner()).push(guard);
        // SAFETY: registers a plain `extern "C"` function with no arguments, as atexit(3)
        // wants. Pingora ends the process with `exit`, which runs it.
        unsafe { libc::atexit(flush_at_exit) };
        Some(dropped)
    } else {
        None
    };
    let inner = builder.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Quiet { inner, dropped })).is_ok() {
        log::set_max_level(max);
    }
}

/// Sends audit lines to `path` (appended to) from now on; `background` as for [`init`].
pub fn audit_to(path: &Path, background: bool) -> std::io::Result<()> {
    let file = File::options().create(true).append(true).open(path)?;
    let sink = if background {
        let (writer, guard) = NonBlockingBuilder::default()
            .buffered_lines_limit(QUEUED_LINES)
            .lossy(true)
            .thread_name("mcpgate-audit")
            .finish(std::io::BufWriter::with_capacity(64 * 1024, file));
        WRITER.lock().unwrap_or_else(|e| e.into_inner()).push(guard);
        AuditSink::Background(writer)
    } else {
        AuditSink::Direct(file)
    };
    let _ = AUDIT.set(sink);
    // Audit lines are `info`: a quieter `RUST_LOG` must not drop them from their file (the
    // logger still filters everything else by it).
    log::set_max_level(log::max_level().max(log::LevelFilter::Info));
    Ok(())
}

/// Writes an audit line to its own file; `false` if there is none.
fn write_audit(record: &Record) -> bool {
    let Some(sink) = AUDIT.get() else {
        return false;
    };
    let line = format!("{}\n", record.args());
    match sink {
        AuditSink::Background(writer) => {
            let _ = writer.clone().write_all(line.as_bytes());
            metrics::AUDIT_LINES_DROPPED.set(writer.error_counter().dropped_lines() as i64);
        }
        AuditSink::Direct(file) => {
            let _ = (&*file).write_all(line.as_bytes());
        }
    }
    true
}

extern "C" fn flush_at_exit() {
    // `try_lock`: at exit, never wait for a thread that may not run again.
    if let Ok(mut writers) = WRITER.try_lock() {
        writers.clear();
    }
}

struct Quiet {
    inner: env_logger::Logger,
    dropped: Option<ErrorCounter>,
}

impl Log for Quiet {
    fn enabled(&self, metadata: &Metadata) -> bool {
        (metadata.target() == AUDIT_TARGET && AUDIT.get().is_some()) || self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if record.target() == AUDIT_TARGET && write_audit(record) {
            return;
        }
        if self.inner.enabled(record.metadata()) && !is_client_gone(record) {
            self.inner.log(record);
            if let Some(dropped) = &self.dropped {
                metrics::LOG_LINES_DROPPED.set(dropped.dropped_lines() as i64);
            }
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Pingora logs an error when a connection ends before a whole request head arrived: a
/// client that went away, or one the connection guard closed for being late. A flood of
/// idle connections would otherwise write one error line each.
fn is_client_gone(record: &Record) -> bool {
    if record.level() != Level::Error || !record.target().starts_with("pingora_proxy") {
        return false;
    }
    let message = record.args().to_string();
    is_head_read_failure(&message)
}

fn is_head_read_failure(message: &str) -> bool {
    message.starts_with("Fail to proxy: ")
        && message.contains(", downstream session type:")
        && ["ConnectionClosed", "ReadError", "ReadTimedout"]
            .iter()
            .any(|kind| message.contains(&format!("Downstream {kind}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_client_gone_before_its_head_is_quiet() {
        assert!(is_head_read_failure(
            "Fail to proxy: Downstream ConnectionClosed context: while reading request headers, \
             bytes already read: 30, downstream session type: h1"
        ));
        assert!(!is_head_read_failure(
            "Fail to proxy: Upstream ConnectRefused context: x, tries: 1, retry: false, GET /x"
        ));
        assert!(!is_head_read_failure(
            "Fail to proxy: Downstream InvalidHTTPHeader context: bad header, downstream session type: h1"
        ));
    }
}
