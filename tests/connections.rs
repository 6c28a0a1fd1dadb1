//! The connection guard over real sockets: a deadline for request heads, an idle limit for
//! kept-alive connections, caps on open connections in all and per client address, and no
//! error line for a client that goes away. Streams and slow bodies are never cut by these.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{route, Gateway, Upstream};

/// Reads until the server closes the connection or `wait` passes; returns what arrived and
/// whether the connection was closed.
fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let until = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into(), true)
            }
            Err(_) => {}
        }
    }
    (String::from_utf8_lossy(&got).into(), false)
}

fn connect(gw: &Gateway) -> TcpStream {
    TcpStream::connect(("127.0.0.1", gw.port)).unwrap()
}

/// A connection from another loopback address (127.0.0.0/8 is all this machine's).
fn connect_from(gw: &Gateway, source: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: SocketAddr = format!("127.0.0.1:{}", gw.port).parse().unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

fn get(s: &mut TcpStream, path: &str) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 8192];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into()
}

#[test]
fn a_late_or_trickled_head_is_closed_quietly_and_counted() {
    let up = Upstream::start();
    let gw = Gateway::start_with(
        "connections: { header_timeout: 1s, keepalive_timeout: 2s }",
        &route("/mcp", &up.url(), ""),
    );

    // Nothing sent at all.
    let mut silent = connect(&gw);
    // Part of a head, then nothing.
    let mut partial = connect(&gw);
    partial
        .write_all(b"GET /mcp/x HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // A byte every 200 ms: each read is prompt, the head never completes in time.
    let mut trickle = connect(&gw);
    let started = Instant::now();
    let head =
        b"GET /mcp/x HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for b in head {
        if trickle.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        if let (_, true) = read_until_closed(&mut trickle, Duration::from_millis(200)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled head was never closed");
    let trickle_took = started.elapsed();
    assert!(trickle_took < Duration::from_secs(5), "{trickle_took:?}");
    for (name, s) in [("silent", &mut silent), ("partial", &mut partial)] {
        let (answer, closed) = read_until_closed(s, Duration::from_secs(5));
        assert!(closed, "{name} connection still open");
        assert_eq!(answer, "", "{name}: nothing is answered to a late head");
    }
    assert!(gw.metric("mcpgate_connections_timed_out_total{timeout=\"header\"}") >= 3.0);

    // A client leaving in the middle of its head is not an error either.
    let mut gone = connect(&gw);
    gone.write_all(b"GET /mcp/x HTTP/1.1\r\n").unwrap();
    drop(gone);
    // A prompt client on a fresh connection is served.
    assert!(get(&mut connect(&gw), "/mcp/x").starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(300));
    let log = gw.log();
    assert!(!log.contains("Fail to proxy"), "{log}");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_but_streams_and_slow_bodies_are_not() {
    let up = Upstream::start();
    let gw = Gateway::start_with(
        "connections: { header_timeout: 1s, keepalive_timeout: 1s }",
        &route("/mcp", &up.url(), ""),
    );

    let mut kept = connect(&gw);
    assert!(get(&mut kept, "/mcp/x").starts_with("HTTP/1.1 200"));
    let (_, closed) = read_until_closed(&mut kept, Duration::from_secs(5));
    assert!(closed, "idle kept-alive connection still open");
    assert_eq!(
        gw.metric("mcpgate_connections_timed_out_total{timeout=\"keepalive\"}"),
        1.0
    );

    // An event stream longer than both limits arrives whole.
    let events = reqwest::blocking::get(gw.url("/mcp/sse?gap_ms=2500"))
        .unwrap()
        .text()
        .unwrap();
    assert!(events.contains("data: {\"n\":2}"), "{events}");

    // A body sent slowly after its head is the request's business, not the head's.
    let mut slow = connect(&gw);
    slow.write_all(b"POST /mcp/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    for b in b"body" {
        std::thread::sleep(Duration::from_millis(600));
        slow.write_all(&[*b]).unwrap();
    }
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""body":"body""#), "{answer}");
}

#[test]
fn connections_are_capped_per_address_and_in_all() {
    let up = Upstream::start();
    let gw = Gateway::start_with(
        "connections: { max: 6, per_address: 3, header_timeout: 30s }",
        &route("/mcp", &up.url(), ""),
    );
    // Wait until the health checks' connections are gone.
    let settle = Instant::now() + Duration::from_secs(5);
    while gw.metric("mcpgate_connections_open") > 1.0 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }

    let held: Vec<TcpStream> = (0..3).map(|_| connect_from(&gw, "127.0.0.2")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = connect_from(&gw, "127.0.0.2");
    let (_, closed) = read_until_closed(&mut over, Duration::from_secs(3));
    assert!(closed, "a fourth connection from one address was kept");
    assert_eq!(
        gw.metric("mcpgate_connections_refused_total{cap=\"per_address\"}"),
        1.0
    );
    // Another address is not held back by the first one's connections.
    assert!(get(&mut connect_from(&gw, "127.0.0.3"), "/mcp/x").starts_with("HTTP/1.1 200"));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(get(&mut connect_from(&gw, "127.0.0.2"), "/mcp/x").starts_with("HTTP/1.1 200"));

    // Six open in all, from three addresses: the seventh is refused, whoever sends it.
    let _held: Vec<TcpStream> = ["127.0.0.4", "127.0.0.5", "127.0.0.6"]
        .iter()
        .flat_map(|a| [connect_from(&gw, a), connect_from(&gw, a)])
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = connect_from(&gw, "127.0.0.7");
    let (_, closed) = read_until_closed(&mut over, Duration::from_secs(3));
    assert!(closed, "a seventh connection was kept");
    assert!(gw.metric("mcpgate_connections_refused_total{cap=\"max\"}") >= 1.0);
}

#[test]
fn near_the_cap_waiting_connections_make_room_for_prompt_ones() {
    let up = Upstream::start();
    let gw = Gateway::start_with(
        "connections: { max: 8, per_address: 0, header_timeout: 30s }",
        &route("/mcp", &up.url(), ""),
    );
    // Six of eight open is three quarters: connections that have waited a second for their
    // heads are closed, however long their header timeout, until fewer are open.
    let mut idle: Vec<TcpStream> = (0..6).map(|_| connect(&gw)).collect();
    std::thread::sleep(Duration::from_millis(2500));
    let closed = idle
        .iter_mut()
        .map(|s| read_until_closed(s, Duration::from_millis(300)).1)
        .filter(|&closed| closed)
        .count();
    assert!(closed >= 1, "no idle connection closed under pressure");
    assert_eq!(
        gw.metric("mcpgate_connections_timed_out_total{timeout=\"pressure\"}"),
        closed as f64
    );
    // Below the mark, the rest wait for their own header timeout.
    assert!(closed < 6, "connections closed without pressure");
    assert!(get(&mut connect(&gw), "/mcp/x").starts_with("HTTP/1.1 200"));
}
