//! Load-test client for connection exhaustion: holds many idle (or trickling) connections to
//! a server, as an attacker would, and opens a new one whenever the server closes one.
//!
//! Usage: `idle_flood <host:port> <connections> <seconds> <sources> [trickle]`
//!
//! Connections are spread over `sources` source addresses, 127.0.0.2 upwards (every address
//! in 127.0.0.0/8 is this machine's), so that a per-address cap and a global one can both be
//! reached. Idle connections send nothing; with `trickle` each sends one byte of a request
//! head every second and never finishes it. Prints one JSON line: `{"opened":N,
//! "closed_by_server":C,"connect_failed":F,"open_at_end":O}`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    closed_by_server: AtomicUsize,
    connect_failed: AtomicUsize,
    open: AtomicUsize,
}

const HEAD: &[u8] = b"GET /mcp/fast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

async fn hold(target: SocketAddr, source: Ipv4Addr, until: Instant, trickle: bool, c: Arc<Counts>) {
    while Instant::now() < until {
        let socket = TcpSocket::new_v4().expect("a socket");
        let connected = async {
            socket.bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))?;
            socket.connect(target).await
        };
        let mut stream = match tokio::time::timeout(Duration::from_secs(5), connected).await {
            Ok(Ok(stream)) => stream,
            _ => {
                c.connect_failed.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        c.opened.fetch_add(1, Relaxed);
        c.open.fetch_add(1, Relaxed);
        let mut buf = [0u8; 64];
        let mut sent = 0;
        let closed = loop {
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                read = stream.read(&mut buf) => break matches!(read, Ok(0) | Err(_)),
                _ = tick => {
                    if Instant::now() >= until {
                        break false;
                    }
                    if trickle {
                        let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                        if stream.write_all(&[byte]).await.is_err() {
                            break true;
                        }
                        sent += 1;
                    }
                }
            }
        };
        c.open.fetch_sub(1, Relaxed);
        if closed {
            c.closed_by_server.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: idle_flood <host:port> <connections> <seconds> <sources> [trickle]");
        std::process::exit(2);
    }
    let target: SocketAddr = args[1].parse().expect("host:port");
    let connections: usize = args[2].parse().expect("a number of connections");
    let seconds: u64 = args[3].parse().expect("seconds");
    let sources: u32 = args[4].parse().expect("a number of source addresses");
    let trickle = args.get(5).is_some_and(|a| a == "trickle");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs(seconds);
    runtime.block_on(async {
        let mut tasks = Vec::with_capacity(connections);
        for i in 0..connections {
            let source =
                Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + i as u32 % sources);
            tasks.push(tokio::spawn(hold(
                target,
                source,
                until,
                trickle,
                counts.clone(),
            )));
            if i % 500 == 499 {
                // Opened at about 10,000 a second: a burst, not an instant.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep_until((until - Duration::from_millis(200)).into()).await;
        let open_at_end = counts.open.load(Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        println!(
            r#"{{"opened":{},"closed_by_server":{},"connect_failed":{},"open_at_end":{}}}"#,
            counts.opened.load(Relaxed),
            counts.closed_by_server.load(Relaxed),
            counts.connect_failed.load(Relaxed),
            open_at_end
        );
    });
}
