//! The listener's own defences, before any HTTP is parsed: caps on open client connections
//! (in all, and per client address), a deadline for every request head, and an idle limit
//! for kept-alive connections.
//!
//! Pingora has none of these: its read timeout restarts with every byte, so a client that
//! trickles a request head (or opens connections and sends nothing) holds a descriptor for
//! as long as it likes, and a few thousand of them exhaust the process. [`ConnectionGuard`]
//! wraps the proxy's application: it admits or refuses each accepted connection, and wraps
//! the stream in a [`GuardedStream`] whose reads end (as a quiet end of file) when a head is
//! late. The gateway tells the stream where a request starts and ends
//! ([`head_read`], [`response_done`]), so a stream or a slow body is never cut by these.
//!
//! On shutdown it also waits (up to the header timeout) for connections accepted just
//! before the listeners closed to deliver their first request: Pingora would otherwise
//! close them unanswered, and a client that had just connected would see its request fail.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::{l4::socket::SocketAddr, raw_connect::ProxyDigest, Stream};
use pingora::protocols::{
    tls::SslDigest, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest,
    Ssl, TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::proxy::Session;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep_until, Instant, Sleep};

use crate::config::ConnectionLimits;
use crate::metrics;
use crate::snapshot::GatewayState;

/// Descriptors kept out of the connection cap's reach: listeners, log files, the metrics
/// service, spawned upstreams' pipes, calls to identity providers.
const RESERVED_DESCRIPTORS: usize = 100;
/// Shards of the per-address table: accepts on different threads rarely meet on a lock.
const SHARDS: usize = 16;

/// The proxy application `A` behind the connection limits.
pub struct ConnectionGuard<A> {
    app: Arc<A>,
    state: Arc<GatewayState>,
    table: Arc<Table>,
}

impl<A> ConnectionGuard<A> {
    /// `open_files`: the process's descriptor limit; without `connections.max`, half of what
    /// is left of it after a reserve (each proxied connection also holds one upstream).
    pub fn new(app: A, state: Arc<GatewayState>, open_files: usize) -> Self {
        ConnectionGuard {
            app: Arc::new(app),
            state,
            table: Arc::new(Table::new(default_max(open_files))),
        }
    }
}

/// The global cap when the config sets none.
pub fn default_max(open_files: usize) -> usize {
    (open_files.saturating_sub(RESERVED_DESCRIPTORS) / 2).max(1)
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ConnectionGuard<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if stream.as_ref().as_any().is::<GuardedStream>() {
            // A connection handed back for reuse: admitted already.
            return self.app.process_new(stream, shutdown).await;
        }
        let limits = self.state.snapshot().config.connections.clone();
        let address = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(SocketAddr::as_inet).map(|a| a.ip()));
        let slot = match self.table.admit(address, &limits) {
            Ok(slot) => slot,
            Err(cap) => {
                metrics::CONNECTIONS_REFUSED.with_label_values(&[cap]).inc();
                return None;
            }
        };
        let guarded = GuardedStream::new(stream, slot, &limits);
        self.app.process_new(Box::new(guarded), shutdown).await
    }

    async fn cleanup(&self) {
        let limits = &self.state.snapshot().config.connections;
        let until = Instant::now() + limits.header_timeout;
        while self.table.fresh.load(Ordering::Acquire) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.app.cleanup().await;
    }
}

/// Open connections, in all and per address.
struct Table {
    open: AtomicUsize,
    /// The cap in force at the last accept (it follows reloads): pressure is judged by it.
    max: AtomicUsize,
    /// Admitted connections whose first request head has not been read yet.
    fresh: AtomicUsize,
    default_max: usize,
    hasher: RandomState,
    by_address: Box<[Mutex<HashMap<IpAddr, usize>>]>,
}

impl Table {
    fn new(default_max: usize) -> Table {
        Table {
            open: AtomicUsize::new(0),
            max: AtomicUsize::new(default_max),
            fresh: AtomicUsize::new(0),
            default_max,
            hasher: RandomState::new(),
            by_address: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, address: &IpAddr) -> &Mutex<HashMap<IpAddr, usize>> {
        let i = self.hasher.hash_one(address) as usize % SHARDS;
        &self.by_address[i]
    }

    /// Three quarters of the cap are open: connections that wait for a head are cut short.
    fn under_pressure(&self) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        self.open.load(Ordering::Relaxed) >= max - max / 4
    }

    /// Counts a new connection in, or names the cap it would exceed.
    fn admit(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        limits: &ConnectionLimits,
    ) -> Result<Slot, &'static str> {
        let max = limits.max.unwrap_or(self.default_max);
        self.max.store(max, Ordering::Relaxed);
        if self.open.fetch_add(1, Ordering::AcqRel) >= max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err("max");
        }
        let address = address.filter(|_| limits.per_address > 0);
        if let Some(ip) = address {
            let mut counts = lock(self.shard(&ip));
            let count = counts.entry(ip).or_insert(0);
            if *count >= limits.per_address {
                drop(counts);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err("per_address");
            }
            *count += 1;
        }
        self.fresh.fetch_add(1, Ordering::AcqRel);
        metrics::CONNECTIONS_OPEN.inc();
        Ok(Slot {
            table: self.clone(),
            address,
            fresh: true,
        })
    }
}

/// A poisoned shard only means another thread panicked between two integer updates.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One admitted connection's place in the table, given back when the connection closes.
#[derive(Debug)]
struct Slot {
    table: Arc<Table>,
    address: Option<IpAddr>,
    fresh: bool,
}

impl Slot {
    fn first_head_read(&mut self) {
        if std::mem::take(&mut self.fresh) {
            self.table.fresh.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.first_head_read();
        self.table.open.fetch_sub(1, Ordering::AcqRel);
        metrics::CONNECTIONS_OPEN.dec();
        if let Some(ip) = self.address {
            let mut counts = lock(self.table.shard(&ip));
            if let Some(count) = counts.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} open)", self.open.load(Ordering::Relaxed))
    }
}

/// How long a connection may wait for a request head while three quarters of
/// `connections.max` are open: idle and trickling connections then make room for clients that
/// send their requests at once (a flood spread over many addresses would otherwise hold the
/// cap until each of its heads times out).
const PRESSURE_WAIT: Duration = Duration::from_secs(1);

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a head since `since`, closed at `deadline`. `started`: some of it has
    /// arrived; `kept_alive`: a request has been answered on this connection before.
    Waiting {
        since: Instant,
        deadline: Instant,
        started: bool,
        kept_alive: bool,
    },
    /// A request is being served (its body, its response, a stream): no deadline here.
    Busy,
    /// Timed out: every read is the end of the stream.
    Closed,
}

/// Signals from the gateway's filters, taken by the next read.
const SIGNAL_NONE: u8 = 0;
const SIGNAL_HEAD_READ: u8 = 1;
const SIGNAL_RESPONSE_DONE: u8 = 2;

/// A client connection with the deadlines of [`Phase`].
#[derive(Debug)]
pub struct GuardedStream {
    inner: Stream,
    phase: Phase,
    signal: AtomicU8,
    /// Kept across phases and reset, so that a kept-alive connection allocates it once.
    timer: Option<Pin<Box<Sleep>>>,
    header_timeout: Duration,
    keepalive_timeout: Duration,
    /// HTTP/2 carries many requests at once; after its first bytes only its own idle limit
    /// applies.
    multiplexed: bool,
    slot: Slot,
}

impl GuardedStream {
    fn new(inner: Stream, slot: Slot, limits: &ConnectionLimits) -> GuardedStream {
        let multiplexed = matches!(inner.selected_alpn_proto(), Some(ALPN::H2));
        let now = Instant::now();
        GuardedStream {
            inner,
            phase: Phase::Waiting {
                since: now,
                deadline: now + limits.header_timeout,
                started: false,
                kept_alive: false,
            },
            signal: AtomicU8::new(SIGNAL_NONE),
            timer: None,
            header_timeout: limits.header_timeout,
            keepalive_timeout: limits.keepalive_timeout,
            multiplexed,
            slot,
        }
    }

    fn take_signal(&mut self) {
        match self.signal.swap(SIGNAL_NONE, Ordering::Relaxed) {
            SIGNAL_HEAD_READ => {
                self.slot.first_head_read();
                self.phase = Phase::Busy;
            }
            SIGNAL_RESPONSE_DONE => {
                let now = Instant::now();
                self.phase = Phase::Waiting {
                    since: now,
                    deadline: now + self.keepalive_timeout,
                    started: false,
                    kept_alive: true,
                };
            }
            _ => {}
        }
    }

    /// Bytes arrived: a waiting connection's head has begun. On a kept-alive connection it
    /// has a header timeout from now; a new connection's head was due from the accept.
    fn received(&mut self) {
        if let Phase::Waiting {
            since,
            deadline,
            started: false,
            kept_alive,
        } = self.phase
        {
            if self.multiplexed {
                self.slot.first_head_read();
                self.phase = Phase::Busy;
                return;
            }
            let (since, deadline) = if kept_alive {
                let now = Instant::now();
                (now, now + self.header_timeout)
            } else {
                (since, deadline)
            };
            self.phase = Phase::Waiting {
                since,
                deadline,
                started: true,
                kept_alive,
            };
        }
    }

    /// Arms the timer for the next point to look at the clock: the pressure check a second
    /// into the wait, then the deadline. `Ready` with the reason when the connection must
    /// close.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        let Phase::Waiting {
            since,
            deadline,
            started,
            kept_alive,
        } = self.phase
        else {
            return Poll::Pending;
        };
        loop {
            let now = Instant::now();
            let checkpoint = since + PRESSURE_WAIT;
            let wake = if now < checkpoint && checkpoint < deadline {
                checkpoint
            } else {
                deadline
            };
            if now >= deadline {
                return Poll::Ready(match (started, kept_alive) {
                    (false, true) => "keepalive",
                    _ => "header",
                });
            }
            if now >= checkpoint && self.slot.table.under_pressure() {
                return Poll::Ready("pressure");
            }
            let timer = match &mut self.timer {
                Some(timer) => {
                    if timer.deadline() != wake {
                        timer.as_mut().reset(wake);
                    }
                    timer
                }
                None => self.timer.insert(Box::pin(sleep_until(wake))),
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn expire(&mut self, why: &'static str) {
        metrics::CONNECTIONS_TIMED_OUT
            .with_label_values(&[why])
            .inc();
        self.phase = Phase::Closed;
        self.timer = None;
    }

    fn of(session: &Session) -> Option<&GuardedStream> {
        session.stream()?.as_ref().as_any().downcast_ref()
    }
}

/// The request head has been read (call from the first filter): no deadline until the
/// response is done.
pub fn head_read(session: &Session) {
    if let Some(stream) = GuardedStream::of(session) {
        stream.signal.store(SIGNAL_HEAD_READ, Ordering::Relaxed);
    }
}

/// The response has been sent (call from `logging`): the connection waits for its next
/// request, for the keepalive timeout at most.
pub fn response_done(session: &Session) {
    if let Some(stream) = GuardedStream::of(session) {
        stream.signal.store(SIGNAL_RESPONSE_DONE, Ordering::Relaxed);
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.take_signal();
        if matches!(this.phase, Phase::Closed) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_deadline(cx) {
                // Late: end of file, which Pingora takes as the client having gone away.
                Poll::Ready(why) => {
                    this.expire(why);
                    Poll::Ready(Ok(()))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_address: usize) -> ConnectionLimits {
        ConnectionLimits {
            max: Some(max),
            per_address,
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn caps_in_all_and_per_address() {
        let table = Arc::new(Table::new(10));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let l = limits(3, 2);
        let a1 = table.admit(Some(a), &l).unwrap();
        let _a2 = table.admit(Some(a), &l).unwrap();
        assert_eq!(table.admit(Some(a), &l).unwrap_err(), "per_address");
        let _b1 = table.admit(Some(b), &l).unwrap();
        assert_eq!(table.admit(Some(b), &l).unwrap_err(), "max");
        drop(a1);
        let _a3 = table.admit(Some(a), &l).unwrap();
        assert_eq!(table.open.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn pressure_is_three_quarters_of_the_cap() {
        let table = Arc::new(Table::new(10));
        let l = limits(8, 0);
        let slots: Vec<Slot> = (0..5).map(|_| table.admit(None, &l).unwrap()).collect();
        assert!(!table.under_pressure());
        let more = table.admit(None, &l).unwrap();
        assert!(table.under_pressure());
        drop((slots, more));
        assert!(!table.under_pressure());
    }

    #[test]
    fn slots_give_their_place_back() {
        let table = Arc::new(Table::new(10));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let mut slots: Vec<Slot> = (0..5)
            .map(|_| table.admit(Some(a), &limits(10, 5)).unwrap())
            .collect();
        slots[0].first_head_read();
        assert_eq!(table.fresh.load(Ordering::Relaxed), 4);
        drop(slots);
        assert_eq!(table.open.load(Ordering::Relaxed), 0);
        assert_eq!(table.fresh.load(Ordering::Relaxed), 0);
        assert!(lock(table.shard(&a)).is_empty());
    }

    #[test]
    fn no_address_cap_when_zero_and_a_default_from_the_descriptor_limit() {
        let table = Arc::new(Table::new(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mut l = limits(2, 0);
        l.max = None;
        let _s = (0..2)
            .map(|_| table.admit(Some(a), &l).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(table.admit(Some(a), &l).unwrap_err(), "max");
        assert_eq!(default_max(20_000), 9_950);
        assert_eq!(default_max(50), 1);
    }
}
