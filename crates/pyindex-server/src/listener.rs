//! Serving TCP connections so that no client can wear the server down.
//!
//! `axum::serve` cannot bound how long a client takes to send its request head, so the accept
//! loop is here, on hyper's HTTP/1.1 connection builder:
//!
//! - a request head must arrive within the header timeout (the wait for the next request on a
//!   kept-alive connection counts as reading its head);
//! - a connection that moves no bytes while no request is being handled is closed after the
//!   keep-alive timeout (gracefully: a response being sent is finished first), and dropped if it
//!   then stays silent for the body timeout (a client that stopped reading its response);
//! - a request body that delivers no bytes for the body timeout fails (tower-http's
//!   `TimeoutBody`), so handlers waiting on it answer instead of waiting forever;
//! - at most `max_connections` connections are open: at the cap the loop still accepts, and
//!   makes room by closing the connection that has waited longest for a request head (one that
//!   never sent a whole head, or sits idle between requests); a connection with a request in
//!   progress (head received, response not yet sent whole) is never closed for room. When every
//!   connection has a request in progress, the accepted one waits for a place and the loop stops
//!   accepting (the kernel's backlog queues the rest, bounded by the kernel);
//! - on shutdown, idle connections close at once, busy ones get the shutdown timeout to finish,
//!   and the connection tasks still running then are aborted (dropping an unfinished upload
//!   removes its spool file) before `serve` returns;
//! - with TLS, the handshake must finish within the header timeout too, so a client that
//!   connects and never sends its hello does not hold a place under the cap.
//!
//! These clocks are kept by a watchdog task per connection ([`watchdog`]), which wakes only at
//! their deadlines and leaves orders for the connection's task ([`Activity::orders`]). Why not
//! timers in the connection's task (hyper's header timer, a `select!` over a sleep, the shutdown
//! watch and the eviction notice, as before): hyper armed and cancelled its header timer for every
//! request, and the `select!` polled the sleep and locked the two notifiers' waiter lists at every
//! wake of the connection, which together showed in profiles of cached pages. Now a wake polls
//! the connection and reads one atomic word.
//!
//! Every request is handed to the application with its [`RequestOrigin`] ([`App::answer`]):
//! the client address and scheme, taken from forwarding headers only from trusted proxies (else
//! the peer's). Not also axum's `ConnectInfo`: nothing needs the bare peer address beside it,
//! and each request extension is an allocation.
//!
//! HTTP/2 is not offered (neither over TLS nor with prior knowledge): pip, uv and twine speak
//! HTTP/1.1, and HTTP/1.1 alone gets a header deadline from the first byte.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use futures::task::AtomicWaker;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

use crate::forwarded::{RequestOrigin, TrustedProxies};
use crate::tls::Tls;

/// File descriptors kept free for everything but client sockets: the database, logs, the
/// spool directory, blob files being published.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 128;
/// Descriptors one connection may hold at once: its socket plus a file it downloads or an
/// upload it spools.
pub const FILE_DESCRIPTORS_PER_CONNECTION: u64 = 2;
/// The default connection cap never exceeds this, however high the descriptor limit: each
/// connection costs memory too.
pub const MAX_DEFAULT_CONNECTIONS: u64 = 16_384;
/// The largest `max_connections` accepted (the semaphore counts permits in `u32`).
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// The bounds a connection lives within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a whole request head.
    pub header_timeout: Duration,
    /// Time an idle connection is kept open between requests.
    pub keep_alive_timeout: Duration,
    /// Time a request body may deliver no bytes, and a closing connection may stay silent.
    pub body_timeout: Duration,
    /// Time given to open connections to finish after a shutdown signal.
    pub shutdown_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Default header timeout.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default keep-alive timeout.
    pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default body timeout.
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default shutdown timeout: below the 10 s that `docker stop` waits before SIGKILL.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);
}

/// The default connection cap for a process that may open `open_files` descriptors: what is
/// left after [`RESERVED_FILE_DESCRIPTORS`], [`FILE_DESCRIPTORS_PER_CONNECTION`] each, at
/// least 1 and at most [`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections(open_files: u64) -> usize {
    let cap = (open_files.saturating_sub(RESERVED_FILE_DESCRIPTORS)
        / FILE_DESCRIPTORS_PER_CONNECTION)
        .clamp(1, MAX_DEFAULT_CONNECTIONS);
    usize::try_from(cap).unwrap_or(1)
}

/// The open-file limit before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now (the hard limit, when raising worked).
    pub now: u64,
}

/// The soft `RLIMIT_NOFILE` in force (`u64::MAX` for unlimited).
pub fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, so that many clients cannot exhaust the
/// descriptors with sockets. `None` stands for "unlimited" and is reported as `u64::MAX`.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    if limit.current == limit.maximum {
        return Ok(OpenFileLimit {
            before,
            now: before,
        });
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised)?;
    Ok(OpenFileLimit {
        before,
        now: limit.maximum.unwrap_or(u64::MAX),
    })
}

/// How connections are spoken to: TLS or plain, and whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// TLS configuration; `None` serves plain HTTP.
    pub tls: Option<Arc<Tls>>,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// What the listener serves: the application ([`crate::Envelope`]) or, in tests, a router.
///
/// The listener hands each request over with its [`RequestOrigin`] beside it rather than in its
/// extensions: the first extension of a request allocates the extensions' map, and the requests
/// served most (cached index pages) never read the origin. The application puts it in the
/// extensions of the requests that go on to handlers that may.
pub trait App: Clone + Send + Sync + 'static {
    /// The answer to a request.
    type Answer: Future<Output = axum::response::Response> + Send;

    /// Answers `request`, which came from `origin`.
    fn answer(&self, request: axum::extract::Request, origin: RequestOrigin) -> Self::Answer;
}

impl App for axum::Router {
    type Answer = Pin<Box<dyn Future<Output = axum::response::Response> + Send>>;

    fn answer(&self, mut request: axum::extract::Request, origin: RequestOrigin) -> Self::Answer {
        request.extensions_mut().insert(origin);
        let call = self.clone().oneshot(request);
        Box::pin(async move {
            let Ok(response) = call.await;
            response
        })
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then gives open
/// connections up to the shutdown timeout to finish, aborts those still open and returns.
pub async fn serve<R: App>(
    listener: TcpListener,
    router: R,
    limits: ConnectionLimits,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(max));
    let open = Arc::new(OpenConnections::default());
    let mut tasks = JoinSet::new();
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // Finished tasks are reaped here, so the set holds at most the open connections.
        while tasks.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
        };
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = take_slot(&slots, &open) => slot,
        };
        let activity = Arc::new(Activity::new());
        let connection = Connection {
            router: router.clone(),
            limits,
            transport: transport.clone(),
            remote,
            stopping: stopping.clone(),
            activity: activity.clone(),
            _registered: open.register(activity),
            _slot: slot,
        };
        tasks.spawn(connection.serve(stream));
    }
    drop(listener);
    stop.send_replace(true);
    finish_connections(tasks, &open, limits.shutdown_timeout).await;
}

/// Waits up to `timeout` for the connection tasks to end, then aborts the rest and waits for
/// them to be dropped (closing their sockets, removing their spool files).
async fn finish_connections(mut tasks: JoinSet<()>, open: &OpenConnections, timeout: Duration) {
    if open.len() > 0 {
        tracing::info!(open = open.len(), "waiting for open connections to finish");
    }
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(timeout, all_done).await.is_ok() {
        return;
    }
    tracing::warn!(
        open = open.len(),
        ?timeout,
        "shutdown timeout reached; closing the connections still open"
    );
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// How often a full server looks again for a connection it may close to make room, while every
/// connection has a request in progress.
const RECHECK_FOR_ROOM: Duration = Duration::from_millis(500);

/// A place under the connection cap for a connection just accepted: a free one, or one made by
/// closing the connection that has waited longest for a request head.
async fn take_slot(slots: &Arc<Semaphore>, open: &OpenConnections) -> OwnedSemaphorePermit {
    loop {
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return slot;
        }
        open.evict_longest_waiting();
        // The closed connection frees its place once its task runs; look again after a while
        // in case it started a request meanwhile (then it stays) or none could be closed.
        if let Ok(Ok(slot)) =
            tokio::time::timeout(RECHECK_FOR_ROOM, slots.clone().acquire_owned()).await
        {
            return slot;
        }
    }
}

/// The open connections' activity, so that a full server can close the one that has waited
/// longest for a request head. Finding it scans them all, which happens only at the cap (a
/// per-request ordered index would cost every request a shared lock instead).
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    by_id: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl OpenConnections {
    fn register(self: &Arc<Self>, activity: Arc<Activity>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut by_id) = self.by_id.lock() {
            by_id.insert(id, activity);
        }
        Registered {
            open: self.clone(),
            id,
        }
    }

    fn len(&self) -> usize {
        self.by_id.lock().map_or(0, |by_id| by_id.len())
    }

    /// Tells the connection that has waited longest for a request head to close; `false` if
    /// every connection has a request in progress (or was already told).
    fn evict_longest_waiting(&self) -> bool {
        let Ok(by_id) = self.by_id.lock() else {
            return false;
        };
        let victim = by_id
            .values()
            .filter(|a| a.awaiting_head() && !a.evicted.load(Ordering::Relaxed))
            .min_by_key(|a| a.waiting_since());
        match victim {
            Some(activity) => {
                activity.evicted.store(true, Ordering::Relaxed);
                activity.order(Order::EVICT);
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from [`OpenConnections`] when dropped (also when its task is aborted).
struct Registered {
    open: Arc<OpenConnections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut by_id) = self.open.by_id.lock() {
            by_id.remove(&self.id);
        }
    }
}

/// Errors of `accept` that concern one connection are skipped; others (such as running out
/// of file descriptors) are logged and followed by a pause, so the loop does not spin.
async fn pause_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "could not accept a connection; retrying in 250 ms");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// One accepted connection and what it needs.
struct Connection<R> {
    router: R,
    limits: ConnectionLimits,
    transport: Transport,
    remote: SocketAddr,
    stopping: watch::Receiver<bool>,
    activity: Arc<Activity>,
    /// Leaves [`OpenConnections`] when dropped.
    _registered: Registered,
    /// Frees a place under the connection cap when dropped.
    _slot: OwnedSemaphorePermit,
}

impl<R: App> Connection<R> {
    async fn serve(self, stream: TcpStream) {
        // Each write goes out at once: a streamed body's chunks (an upstream file relayed while
        // it arrives) must not wait for the client's delayed ACK of the previous segment, which
        // stalled each such answer by 40 ms (Nagle's algorithm). Answers are written whole
        // (head and body in one write) wherever they can be, so this costs no extra packets.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(remote = %self.remote, %error, "could not set TCP_NODELAY");
        }
        let activity = self.activity.clone();
        let tracked = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        let Some(tls) = self.transport.tls.clone() else {
            return self.serve_http(tracked, activity, false).await;
        };
        let handshake = tls.acceptor().accept(tracked);
        let handshake = tokio::select! {
            finished = tokio::time::timeout(self.limits.header_timeout, handshake) => finished,
            // Only an eviction is ordered before the watchdog starts.
            _ = activity.orders() => {
                tracing::debug!(remote = %self.remote, "closing a connection still in its TLS handshake to make room");
                return;
            }
        };
        match handshake {
            Ok(Ok(stream)) => self.serve_http(stream, activity, true).await,
            Ok(Err(error)) => {
                tracing::debug!(remote = %self.remote, %error, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(remote = %self.remote, "TLS handshake not finished within the header timeout");
            }
        }
    }

    async fn serve_http<I>(self, io: I, activity: Arc<Activity>, tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let service = {
            // The router, with the request origin for handlers, a stall bound on the request
            // body, and a count of requests being handled.
            let (router, activity, limits, remote) = (
                self.router.clone(),
                activity.clone(),
                self.limits,
                self.remote,
            );
            let trusted = self.transport.trusted_proxies.clone();
            hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let in_progress = RequestGuard::new(activity.clone());
                let handling = HandlingGuard::new(activity.clone());
                let origin = RequestOrigin::resolve(remote, tls, request.headers(), &trusted);
                let request =
                    request.map(|body| Body::new(TimeoutBody::new(limits.body_timeout, body)));
                let answer = router.answer(request, origin);
                async move {
                    let response = answer.await;
                    drop(handling);
                    // The request stays in progress until its response body is sent whole.
                    Ok::<_, std::convert::Infallible>(response.map(|body| UntilSent {
                        body,
                        _in_progress: in_progress,
                    }))
                }
            })
        };
        // The header timeout is the watchdog's: hyper's own would arm a timer per request.
        let connection = hyper::server::conn::http1::Builder::new()
            .header_read_timeout(None)
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(connection);
        // The head of the first request is awaited from now (after a TLS handshake).
        activity.waiting_for_head();
        let _watchdog = AbortOnDrop(tokio::spawn(watchdog(
            activity.clone(),
            self.limits,
            self.stopping.clone(),
        )));
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(remote = %self.remote, %error, "connection ended with an error");
                    }
                    return;
                }
                orders = activity.orders() => {
                    if orders.has(Order::HEAD_TIMEOUT) {
                        tracing::debug!(remote = %self.remote, "closing a connection whose request head did not arrive within the header timeout");
                        return;
                    }
                    if orders.has(Order::QUIET_WHILE_CLOSING) {
                        tracing::debug!(remote = %self.remote, "dropping a connection that moved no bytes while closing");
                        return;
                    }
                    if orders.has(Order::EVICT) {
                        if activity.awaiting_head() {
                            tracing::debug!(remote = %self.remote, "closing a connection waiting for a request head to make room");
                            return;
                        }
                        // A request arrived after it was picked: it stays.
                        activity.evicted.store(false, Ordering::Relaxed);
                    }
                    if orders.has(Order::CLOSE) {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Aborts a task when dropped: a connection's watchdog ends with the connection.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps a connection's clocks (see the module documentation): orders it to close gracefully
/// when it moved no bytes for the keep-alive timeout while no request was being handled, or when
/// the server shuts down; to drop at once when a request head took longer than the header
/// timeout, or when it stayed silent for the body timeout while closing. Between deadlines it
/// sleeps; it reads the connection's activity when it wakes, so a request costs it nothing.
async fn watchdog(
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let mut closing = false;
    loop {
        let quiet_limit = if closing {
            limits.body_timeout
        } else {
            limits.keep_alive_timeout
        };
        let mut deadline = activity.last_progress() + quiet_limit;
        if !closing {
            deadline = deadline.min(activity.head_deadline(limits.header_timeout));
        }
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                activity.touch();
                closing = true;
                activity.order(Order::CLOSE);
            }
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                if !closing
                    && activity.awaiting_head()
                    && activity.waiting_since() + limits.header_timeout <= now
                {
                    activity.order(Order::HEAD_TIMEOUT);
                    return;
                }
                if activity.last_progress() + quiet_limit > now {
                    continue;
                }
                if activity.handling() {
                    // A handler at work is not idleness; its body reads have their own bound.
                    activity.touch();
                    continue;
                }
                if closing {
                    activity.order(Order::QUIET_WHILE_CLOSING);
                    return;
                }
                activity.touch();
                closing = true;
                activity.order(Order::CLOSE);
            }
        }
    }
}

/// Orders left for a connection's task (bits, several may wait at once).
#[derive(Clone, Copy)]
struct Order(u8);

impl Order {
    /// Close gracefully: finish the request in progress, take no other.
    const CLOSE: u8 = 1;
    /// Close now: the request head did not arrive within the header timeout.
    const HEAD_TIMEOUT: u8 = 2;
    /// Close now: no bytes moved for the body timeout while closing.
    const QUIET_WHILE_CLOSING: u8 = 4;
    /// Close now if waiting for a request head, to make room under the connection cap.
    const EVICT: u8 = 8;

    fn has(self, order: u8) -> bool {
        self.0 & order != 0
    }
}

/// When a connection last moved bytes, how many of its requests are being handled or in
/// progress, and since when it waits for a request head.
struct Activity {
    origin: Instant,
    /// `origin` on the coarse clock ([`coarse_now_ms`]), which the `_ms` fields count from.
    origin_ms: u64,
    last_progress_ms: AtomicU64,
    handling: AtomicUsize,
    /// Requests whose head arrived and whose response is not yet sent whole.
    in_progress: AtomicUsize,
    /// When the last request ended (0: when the connection opened).
    waiting_since_ms: AtomicU64,
    /// Set when the connection is told to close to make room.
    evicted: AtomicBool,
    /// [`Order`] bits not yet taken by the connection's task, and its waker.
    orders: AtomicU8,
    attention: AtomicWaker,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            origin_ms: coarse_now_ms(),
            last_progress_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            in_progress: AtomicUsize::new(0),
            waiting_since_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            orders: AtomicU8::new(0),
            attention: AtomicWaker::new(),
        }
    }

    /// Leaves `order` for the connection's task and wakes it.
    fn order(&self, order: u8) {
        self.orders.fetch_or(order, Ordering::AcqRel);
        self.attention.wake();
    }

    /// Waits for orders and takes them all. Polling it registers the waker and reads one
    /// atomic word: it is polled at every wake of the connection.
    fn orders(&self) -> impl Future<Output = Order> + '_ {
        std::future::poll_fn(move |cx| {
            self.attention.register(cx.waker());
            if self.orders.load(Ordering::Acquire) == 0 {
                return Poll::Pending;
            }
            Poll::Ready(Order(self.orders.swap(0, Ordering::AcqRel)))
        })
    }

    /// From now on the connection waits for a request head.
    fn waiting_for_head(&self) {
        self.waiting_since_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// When the header timeout ends at the earliest: counted from when the connection began
    /// waiting for the head, or, with a request in progress, from now (that request ends later).
    fn head_deadline(&self, header_timeout: Duration) -> Instant {
        let from = if self.awaiting_head() {
            self.waiting_since()
        } else {
            Instant::now()
        };
        from + header_timeout
    }

    fn elapsed_ms(&self) -> u64 {
        coarse_now_ms().saturating_sub(self.origin_ms)
    }

    fn touch(&self) {
        self.last_progress_ms
            .store(self.elapsed_ms(), Ordering::Relaxed);
    }

    fn last_progress(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed))
    }

    /// No request in progress: the connection waits for (the rest of) a request head.
    fn awaiting_head(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed) == 0
    }

    fn waiting_since(&self) -> Instant {
        self.origin + Duration::from_millis(self.waiting_since_ms.load(Ordering::Relaxed))
    }

    fn handling(&self) -> bool {
        self.handling.load(Ordering::Relaxed) > 0
    }
}

/// Milliseconds on the kernel's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`: the same
/// timeline as `Instant`, advancing by the scheduler tick, a few milliseconds).
///
/// Why: activity is recorded at every socket read and write and at the end of every request
/// (four times per request), for timeouts counted in seconds; the precise clock, which reads
/// the CPU's counter, showed in profiles of cached pages, the coarse one is a memory read.
#[cfg(target_os = "linux")]
fn coarse_now_ms() -> u64 {
    use rustix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::MonotonicCoarse);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let millis = u64::try_from(now.tv_nsec / 1_000_000).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(millis)
}

/// Elsewhere: milliseconds since the first call, on the precise clock.
#[cfg(not(target_os = "linux"))]
fn coarse_now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Counts a request as being handled while alive.
struct HandlingGuard(Arc<Activity>);

impl HandlingGuard {
    fn new(activity: Arc<Activity>) -> HandlingGuard {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        HandlingGuard(activity)
    }
}

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// Counts a request as in progress while alive: from its head to the end of its response body.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn new(activity: Arc<Activity>) -> RequestGuard {
        activity.in_progress.fetch_add(1, Ordering::Relaxed);
        RequestGuard(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.waiting_for_head();
        activity.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request in progress until hyper has sent it whole (or
/// given up on it) and drops it.
struct UntilSent {
    body: Body,
    _in_progress: RequestGuard,
}

impl hyper::body::Body for UntilSent {
    type Data = <Body as hyper::body::Body>::Data;
    type Error = <Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A socket that records in [`Activity`] each time bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl Tracked {
    fn record(&self, result: &Poll<std::io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.activity.touch();
        }
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.record(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HALF_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo";
    const FULL_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    const SLOW_HEAD: &[u8] = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    /// Long enough that nothing in these tests closes by timeout.
    const LONG: Duration = Duration::from_secs(600);

    fn limits(max_connections: usize, shutdown_timeout: Duration) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: LONG,
            keep_alive_timeout: LONG,
            body_timeout: LONG,
            shutdown_timeout,
            max_connections,
        }
    }

    /// Sets its flag when dropped: shows that a handler's future was dropped.
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A server with `/` answering at once and `/slow` never answering (setting `dropped`
    /// when its future is dropped); returns its address, the shutdown trigger and its task.
    async fn start(
        limits: ConnectionLimits,
        dropped: Arc<AtomicBool>,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let router = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(move || {
                let flag = DropFlag(dropped.clone());
                async move {
                    let _flag = flag;
                    std::future::pending::<()>().await;
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let server = tokio::spawn(serve(
            listener,
            router,
            limits,
            Transport::default(),
            shutdown,
        ));
        (addr, stop, server)
    }

    async fn connect(addr: SocketAddr, send: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(send).await.unwrap();
        stream
    }

    /// Reads until the server closes; `None` if it keeps the connection open for `wait`.
    async fn read_to_close(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match tokio::time::timeout(wait, stream.read_to_end(&mut out)).await {
            Ok(_) => Some(out),
            Err(_) => None,
        }
    }

    /// Gives the server time to accept and start serving what was sent.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_waiting_head_makes_room() {
        let (addr, _stop, _server) = start(limits(2, LONG), Arc::default()).await;
        let mut oldest = connect(addr, HALF_HEAD).await;
        settle().await;
        let mut newer = connect(addr, HALF_HEAD).await;
        settle().await;
        let mut client = connect(addr, FULL_HEAD).await;
        let answer = read_to_close(&mut client, Duration::from_secs(10)).await;
        let answer = String::from_utf8(answer.expect("the new client was not served")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            read_to_close(&mut oldest, Duration::from_secs(10))
                .await
                .is_some(),
            "the connection waiting longest was not closed"
        );
        assert!(
            read_to_close(&mut newer, Duration::from_millis(500))
                .await
                .is_none(),
            "a newer waiting connection was closed too"
        );
    }

    #[tokio::test]
    async fn a_request_in_progress_is_not_closed_for_room() {
        let (addr, _stop, _server) = start(limits(1, LONG), Arc::default()).await;
        let mut busy = connect(addr, SLOW_HEAD).await;
        settle().await;
        let mut client = connect(addr, FULL_HEAD).await;
        assert!(
            read_to_close(&mut client, Duration::from_secs(2))
                .await
                .is_none(),
            "served although the only place holds a request in progress"
        );
        assert!(
            read_to_close(&mut busy, Duration::from_millis(100))
                .await
                .is_none(),
            "the request in progress was closed"
        );
        drop(busy);
        let answer = read_to_close(&mut client, Duration::from_secs(10)).await;
        let answer = String::from_utf8(answer.expect("not served after a place freed")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_makes_room() {
        let (addr, _stop, _server) = start(limits(1, LONG), Arc::default()).await;
        let mut idle = connect(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let mut client = connect(addr, FULL_HEAD).await;
        let answer = read_to_close(&mut client, Duration::from_secs(10)).await;
        assert!(answer.expect("not served").starts_with(b"HTTP/1.1 200"));
        assert!(
            read_to_close(&mut idle, Duration::from_secs(10))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn the_header_timeout_bounds_the_first_head_and_the_wait_after_a_response() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            ..limits(8, LONG)
        };
        let (addr, _stop, _server) = start(limits, Arc::default()).await;
        let mut half = connect(addr, HALF_HEAD).await;
        let mut kept = connect(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
        let mut buf = [0u8; 1024];
        let n = kept.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let started = std::time::Instant::now();
        for stream in [&mut half, &mut kept] {
            let answer = read_to_close(stream, Duration::from_secs(10)).await;
            assert_eq!(
                answer.as_deref(),
                Some(&b""[..]),
                "closed without an answer"
            );
        }
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "closed before the header timeout"
        );
    }

    #[tokio::test]
    async fn shutdown_aborts_the_connections_still_open_at_the_deadline() {
        let dropped = Arc::new(AtomicBool::new(false));
        let (addr, stop, server) =
            start(limits(8, Duration::from_millis(300)), dropped.clone()).await;
        let mut busy = connect(addr, SLOW_HEAD).await;
        settle().await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("serve did not return after the shutdown timeout")
            .unwrap();
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler still ran after serve returned"
        );
        assert!(
            read_to_close(&mut busy, Duration::from_secs(10))
                .await
                .is_some(),
            "the connection was not closed"
        );
    }

    #[test]
    fn default_cap_leaves_room_for_files() {
        assert_eq!(default_max_connections(1024), (1024 - 128) / 2);
        assert_eq!(default_max_connections(20_000), (20_000 - 128) / 2);
        assert_eq!(default_max_connections(100), 1);
        assert_eq!(default_max_connections(0), 1);
        assert_eq!(
            default_max_connections(u64::MAX),
            MAX_DEFAULT_CONNECTIONS as usize
        );
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let limit = raise_open_file_limit().unwrap();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current, now.maximum);
        assert_eq!(limit.now, now.current.unwrap_or(u64::MAX));
        assert!(limit.now >= limit.before);
    }
}
