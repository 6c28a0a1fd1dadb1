//! The process's logger: `env_logger` (level from `RUST_LOG`, default `info`), with one
//! filter in front of it for what Pingora reports as an error but is only a client going
//! away.

use log::{Level, Log, Metadata, Record};

/// Installs the logger; call once, first thing.
pub fn init() {
    let inner =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Quiet { inner })).is_ok() {
        log::set_max_level(max);
    }
}

struct Quiet {
    inner: env_logger::Logger,
}

impl Log for Quiet {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if self.inner.enabled(record.metadata()) && !is_client_gone(record) {
            self.inner.log(record);
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
