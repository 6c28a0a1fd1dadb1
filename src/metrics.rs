//! Prometheus metrics, registered in the registry that `pingora-prometheus` serves.

use std::sync::LazyLock;

use pingora_prometheus::prometheus::{
    register_histogram_vec, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
    HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Label used for requests that matched no route.
pub const NO_ROUTE: &str = "";

pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_requests_total",
        "Requests answered, by route and status",
        &["route", "status"]
    )
    .expect("metric registers once")
});

pub static LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "mcpgate_request_duration_seconds",
        "Time from request to the end of the response (for streams: the whole stream)",
        &["route"],
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0
        ]
    )
    .expect("metric registers once")
});

pub static UPSTREAM_ERRORS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_upstream_errors_total",
        "Failed exchanges with an upstream, by route and kind (connect, timeout, protocol, starting, command_failed)",
        &["route", "kind"]
    )
    .expect("metric registers once")
});

pub static OPEN_STREAMS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "mcpgate_open_streams",
        "Event-stream responses currently open, by route",
        &["route"]
    )
    .expect("metric registers once")
});

pub static RELOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_config_reloads_total",
        "Configuration reloads, by result (ok, error)",
        &["result"]
    )
    .expect("metric registers once")
});

pub static SPAWN_STARTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_spawned_upstream_starts_total",
        "Starts of spawned upstream commands (the first and every restart), by upstream address",
        &["upstream"]
    )
    .expect("metric registers once")
});

pub static AUTH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_auth_failures_total",
        "Requests refused by a route's auth, by route and precise reason \
         (expired, bad_signature, wrong_audience, insufficient_scope, rate_limited, ...)",
        &["route", "reason"]
    )
    .expect("metric registers once")
});

pub static PROVIDER_REFRESHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_provider_refreshes_total",
        "Fetches of a provider's metadata and keys, by provider and result (ok, error)",
        &["provider", "result"]
    )
    .expect("metric registers once")
});

pub static INTROSPECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_introspections_total",
        "Calls to a provider's introspection endpoint (cache misses), by result (ok, error)",
        &["provider", "result"]
    )
    .expect("metric registers once")
});

pub static TOKEN_EXCHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_token_exchanges_total",
        "Upstream tokens obtained by RFC 8693 exchange, by route and result (ok, error)",
        &["route", "result"]
    )
    .expect("metric registers once")
});

pub static CONNECTIONS_OPEN: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "mcpgate_connections_open",
        "Client connections currently open (after any TLS handshake)"
    )
    .expect("metric registers once")
});

pub static CONNECTIONS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_connections_refused_total",
        "Client connections closed at once because a cap was reached, by cap (max, per_address)",
        &["cap"]
    )
    .expect("metric registers once")
});

pub static CONNECTIONS_TIMED_OUT: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_connections_timed_out_total",
        "Client connections closed for sending no whole request head in time, by timeout \
         (header, keepalive)",
        &["timeout"]
    )
    .expect("metric registers once")
});

pub static STATE_OPERATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_state_operations_total",
        "Operations on the state store (claim, settle, revoke, take), by result (ok, error)",
        &["op", "result"]
    )
    .expect("metric registers once")
});

pub static STATE_LATENCY: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "mcpgate_state_operation_duration_seconds",
        "Time of operations on the state store",
        &["op"],
        vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0]
    )
    .expect("metric registers once")
});

pub static STATE_FALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_state_fallbacks_total",
        "Decisions taken without the shared store because it could not answer, by kind (rate_limit)",
        &["kind"]
    )
    .expect("metric registers once")
});

pub static LOG_LINES_DROPPED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "mcpgate_log_lines_dropped",
        "Log lines dropped since start because the writer's queue was full (stderr too slow)"
    )
    .expect("metric registers once")
});

pub static AUDIT_LINES_DROPPED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "mcpgate_audit_lines_dropped",
        "Audit lines dropped since start because the audit file's queue was full (disk too slow)"
    )
    .expect("metric registers once")
});

pub static MCP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "mcpgate_mcp_requests_total",
        "MCP requests read on routes with an `mcp` block, by route, method, name (tool, \
         prompt or resource URI; `(unlisted)` for one the upstream never listed) and decision",
        &["route", "method", "name", "decision"]
    )
    .expect("metric registers once")
});

/// Registers every metric, so that all are listed (at zero) from the first scrape.
pub fn init() {
    LazyLock::force(&REQUESTS);
    LazyLock::force(&LATENCY);
    LazyLock::force(&UPSTREAM_ERRORS);
    LazyLock::force(&OPEN_STREAMS);
    LazyLock::force(&RELOADS);
    LazyLock::force(&SPAWN_STARTS);
    LazyLock::force(&AUTH_FAILURES);
    LazyLock::force(&PROVIDER_REFRESHES);
    LazyLock::force(&INTROSPECTIONS);
    LazyLock::force(&TOKEN_EXCHANGES);
    LazyLock::force(&CONNECTIONS_OPEN);
    LazyLock::force(&CONNECTIONS_REFUSED);
    LazyLock::force(&CONNECTIONS_TIMED_OUT);
    LazyLock::force(&LOG_LINES_DROPPED);
    LazyLock::force(&STATE_OPERATIONS);
    LazyLock::force(&STATE_LATENCY);
    LazyLock::force(&STATE_FALLBACKS);
    LazyLock::force(&AUDIT_LINES_DROPPED);
    LazyLock::force(&MCP_REQUESTS);
}
