//! Load-test client for held SSE streams: opens many HTTP/1.1 connections, one stream on
//! each, holds them, and measures how late every event arrives against the `sent_us` stamp
//! the upstream put in it (`fast_upstream`'s `.../sse?every_ms=N`; same machine, same clock).
//!
//! Usage: `sse_clients <url> <streams> <hold_secs> [ramp_per_sec]`
//!
//! Streams are opened at `ramp_per_sec` (2000 by default) and held `hold_secs` once all are
//! open; only events received in that window count, so the ramp does not skew the figures.
//! Prints one JSON line: `{"opened":N,"failed":F,"dropped":D,"events":E,"p50_us":..,
//! "p99_us":..,"p999_us":..,"max_us":..}`, where `failed` streams never got a 200 and
//! `dropped` ones got it but ended (or broke) before the hold was over.
//!
//! One thread and a small buffer per stream, so that 10,000 streams fit in a few tens of
//! MiB and the client takes little CPU from what it measures. A plain TCP stream and a
//! minimal HTTP/1.1 reader rather than an HTTP client library: all it needs is the status
//! line, chunked decoding and `data:` lines.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a stream may take to connect and get its response head.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// First capacity of a stream's read buffer: a response head or a few events.
const READ_BUF: usize = 1024;
/// A response head larger than this is refused rather than buffered.
const MAX_HEAD: usize = 16 * 1024;

/// What the streams report, shared with `main`.
#[derive(Default)]
struct Shared {
    opened: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    /// Set once every stream is open (or has failed): events before it are not counted.
    warm: AtomicBool,
    /// Delay of each warm event, in µs. One lock per event is cheap on one thread.
    delays: Mutex<Vec<u32>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Connects, sends the request and reads the response head. Returns the stream, whatever
/// body bytes came with the head, and whether the body is chunked.
async fn open(addr: SocketAddr, request: &[u8]) -> Result<(TcpStream, Vec<u8>, bool), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(READ_BUF);
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.lines().next().unwrap_or("");
            if !status.starts_with("http/1.1 200") && !status.starts_with("http/1.0 200") {
                return Err(format!("status: {status}"));
            }
            let chunked = head
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
            buf.drain(..end + 4);
            return Ok((stream, buf, chunked));
        }
        if buf.len() > MAX_HEAD {
            return Err("response head too large".into());
        }
        if stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("closed before the response head".into());
        }
    }
}

/// Chunked transfer coding, undone just enough to get at the payload.
enum Chunked {
    /// Waiting for a `<hex size>[;ext]\r\n` line.
    Size,
    /// This many payload bytes left in the current chunk.
    Data(usize),
    /// The `\r\n` after a chunk's payload.
    DataEnd,
}

/// Reads a held stream's body until it ends or breaks: decodes the chunks (if chunked),
/// splits the payload into lines and records the delay of each `data:` line's `sent_us`.
async fn read_events(mut stream: TcpStream, mut buf: Vec<u8>, chunked: bool, shared: &Shared) {
    let mut state = if chunked {
        Chunked::Size
    } else {
        Chunked::Data(usize::MAX)
    };
    // The payload's unfinished last line; SSE lines are short.
    let mut line = Vec::with_capacity(128);
    let mut received_us = now_us();
    loop {
        // Consume as much of `buf` as forms whole pieces; keep the rest for the next read.
        let mut at = 0;
        loop {
            match state {
                Chunked::Size => {
                    let Some(eol) = find(&buf[at..], b"\r\n") else {
                        break;
                    };
                    let text = String::from_utf8_lossy(&buf[at..at + eol]);
                    let hex = text.split(';').next().unwrap_or("").trim();
                    let Ok(size) = usize::from_str_radix(hex, 16) else {
                        return; // Not chunked coding after all: give up on this stream.
                    };
                    if size == 0 {
                        return; // The last chunk: the server ended the stream.
                    }
                    at += eol + 2;
                    state = Chunked::Data(size);
                }
                Chunked::Data(left) => {
                    let n = left.min(buf.len() - at);
                    if n == 0 {
                        break;
                    }
                    for &b in &buf[at..at + n] {
                        if b == b'\n' {
                            record(&line, received_us, shared);
                            line.clear();
                        } else if line.len() < 4096 {
                            line.push(b); // (a longer line is no event of ours: cut it)
                        }
                    }
                    at += n;
                    state = if n == left {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left - n)
                    };
                }
                Chunked::DataEnd => {
                    if buf.len() - at < 2 {
                        break;
                    }
                    at += 2;
                    state = Chunked::Size;
                }
            }
        }
        buf.drain(..at);
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => received_us = now_us(),
        }
    }
}

/// Records the delay of one SSE line if it is `data:` with a `"sent_us":` stamp.
fn record(line: &[u8], received_us: u64, shared: &Shared) {
    const KEY: &[u8] = b"\"sent_us\":";
    if !line.starts_with(b"data:") || !shared.warm.load(Relaxed) {
        return;
    }
    let Some(at) = find(line, KEY) else {
        return;
    };
    let digits = &line[at + KEY.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let Some(sent_us) = std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let delay = received_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32;
    shared.delays.lock().unwrap().push(delay);
}

/// One stream from connect to its end.
async fn run_stream(addr: SocketAddr, request: Arc<[u8]>, shared: Arc<Shared>) {
    match tokio::time::timeout(OPEN_TIMEOUT, open(addr, &request)).await {
        Ok(Ok((stream, buf, chunked))) => {
            shared.opened.fetch_add(1, Relaxed);
            read_events(stream, buf, chunked, &shared).await;
            shared.dropped.fetch_add(1, Relaxed);
        }
        Ok(Err(e)) => {
            // The first few reasons are worth seeing; thousands of them are not.
            if shared.failed.fetch_add(1, Relaxed) < 5 {
                eprintln!("sse_clients: stream failed: {e}");
            }
        }
        Err(_) => {
            if shared.failed.fetch_add(1, Relaxed) < 5 {
                eprintln!("sse_clients: stream failed: no response head in {OPEN_TIMEOUT:?}");
            }
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: sse_clients <url> <streams> <hold_secs> [ramp_per_sec]");
        std::process::exit(2);
    }
    let url = url::Url::parse(&args[0]).expect("url");
    let streams: usize = args[1].parse().expect("streams");
    let hold = Duration::from_secs(args[2].parse().expect("hold_secs"));
    let ramp: usize = args
        .get(3)
        .map_or(2000, |r| r.parse().expect("ramp_per_sec"))
        .max(1);

    // 10,000 streams need more descriptors than the usual soft limit of 1,024.
    mcpgate::server::raise_open_files_limit();
    let host = url.host_str().expect("url host");
    let port = url.port_or_known_default().expect("url port");
    let addr = (host, port)
        .to_socket_addrs()
        .expect("resolve")
        .next()
        .expect("an address");
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request: Arc<[u8]> = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
    .into();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let shared = Arc::new(Shared::default());
    runtime.block_on(async {
        // Ramp: every 10 ms, start the streams that are due by then.
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut started = 0;
        while started < streams {
            tick.tick().await;
            let due = ((start.elapsed().as_secs_f64() * ramp as f64) as usize + 1).min(streams);
            for _ in started..due {
                tokio::spawn(run_stream(addr, request.clone(), shared.clone()));
            }
            started = due;
        }
        // Every stream is open or has failed within OPEN_TIMEOUT of its start.
        let deadline = Instant::now() + OPEN_TIMEOUT + Duration::from_secs(1);
        while shared.opened.load(Relaxed) + shared.failed.load(Relaxed) < streams
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "sse_clients: {} open, {} failed after {:.1}s; holding {}s",
            shared.opened.load(Relaxed),
            shared.failed.load(Relaxed),
            start.elapsed().as_secs_f64(),
            hold.as_secs()
        );
        shared.warm.store(true, Relaxed);
        tokio::time::sleep(hold).await;
        shared.warm.store(false, Relaxed);
    });

    let mut delays = std::mem::take(&mut *shared.delays.lock().unwrap());
    delays.sort_unstable();
    println!(
        "{{\"opened\":{},\"failed\":{},\"dropped\":{},\"events\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        shared.opened.load(Relaxed),
        shared.failed.load(Relaxed),
        shared.dropped.load(Relaxed),
        delays.len(),
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        percentile(&delays, 0.999),
        delays.last().copied().unwrap_or(0),
    );
    // Leave without closing 10,000 sockets one task at a time: the kernel closes them.
    std::process::exit(0);
}
