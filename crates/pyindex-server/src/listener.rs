//! Serving TCP connections so that no client can wear the server down.
//!
//! `axum::serve` cannot bound how long a client takes to send its request head, so the accept
//! loop is here, on hyper's HTTP/1.1 connection builder:
//!
//! - a request head must arrive within the header timeout (hyper's `header_read_timeout`; the
//!   wait for the next request on a kept-alive connection counts as reading its head);
//! - a connection that moves no bytes while no request is being handled is closed after the
//!   keep-alive timeout (gracefully: a response being sent is finished first), and dropped if it
//!   then stays silent for the body timeout (a client that stopped reading its response);
//! - a request body that delivers no bytes for the body timeout fails (tower-http's
//!   `TimeoutBody`), so handlers waiting on it answer instead of waiting forever;
//! - at most `max_connections` connections are open: at the cap the loop stops accepting until
//!   one closes (the kernel's backlog queues the rest, bounded by the kernel);
//! - on shutdown, idle connections close at once, busy ones get the shutdown timeout to finish;
//! - with TLS, the handshake must finish within the header timeout too, so a client that
//!   connects and never sends its hello does not hold a place under the cap.
//!
//! Every request carries the peer address (`ConnectInfo`) and its [`RequestOrigin`]: the
//! client address and scheme, taken from forwarding headers only from trusted proxies.
//!
//! HTTP/2 is not offered (neither over TLS nor with prior knowledge): pip, uv and twine speak
//! HTTP/1.1, and HTTP/1.1 alone gets a header deadline from the first byte.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
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

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then gives open
/// connections up to the shutdown timeout to finish and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
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
        let connection = Connection {
            router: router.clone(),
            limits,
            transport: transport.clone(),
            remote,
            stopping: stopping.clone(),
            _slot: permit,
        };
        tokio::spawn(connection.serve(stream));
    }
    drop(listener);
    stop.send_replace(true);
    let open = max - slots.available_permits();
    if open > 0 {
        tracing::info!(open, "waiting for open connections to finish");
    }
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_timeout, slots.acquire_many(all))
        .await
        .is_err()
    {
        let open = max - slots.available_permits();
        tracing::warn!(
            open,
            timeout = ?limits.shutdown_timeout,
            "shutdown timeout reached; closing the connections still open"
        );
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
struct Connection {
    router: Router,
    limits: ConnectionLimits,
    transport: Transport,
    remote: SocketAddr,
    stopping: watch::Receiver<bool>,
    /// Frees a place under the connection cap when dropped.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let tracked = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        let Some(tls) = self.transport.tls.clone() else {
            return self.serve_http(tracked, activity, false).await;
        };
        let handshake = tls.acceptor().accept(tracked);
        match tokio::time::timeout(self.limits.header_timeout, handshake).await {
            Ok(Ok(stream)) => self.serve_http(stream, activity, true).await,
            Ok(Err(error)) => {
                tracing::debug!(remote = %self.remote, %error, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(remote = %self.remote, "TLS handshake not finished within the header timeout");
            }
        }
    }

    async fn serve_http<I>(mut self, io: I, activity: Arc<Activity>, tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        let service = {
            // The router, with the peer address and request origin for handlers, a stall
            // bound on the request body, and a count of requests being handled.
            let (router, activity, limits, remote) = (
                self.router.clone(),
                activity.clone(),
                self.limits,
                self.remote,
            );
            let trusted = self.transport.trusted_proxies.clone();
            hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let handling = HandlingGuard::new(activity.clone());
                let origin = RequestOrigin::resolve(remote, tls, request.headers(), &trusted);
                let mut request =
                    request.map(|body| Body::new(TimeoutBody::new(limits.body_timeout, body)));
                request.extensions_mut().insert(ConnectInfo(remote));
                request.extensions_mut().insert(origin);
                let call = router.clone().oneshot(request);
                async move {
                    let response = call.await;
                    drop(handling);
                    response
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .keep_alive(true)
            .serve_connection(io, service);
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            let quiet_limit = if closing {
                self.limits.body_timeout
            } else {
                self.limits.keep_alive_timeout
            };
            let deadline = activity.last_progress() + quiet_limit;
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(remote = %self.remote, %error, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|stop| *stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    activity.touch();
                    closing = true;
                }
                () = tokio::time::sleep_until(deadline) => {
                    if activity.last_progress() + quiet_limit > Instant::now() {
                        continue;
                    }
                    if activity.handling() {
                        // A handler at work is not idleness; its body reads have their own bound.
                        activity.touch();
                        continue;
                    }
                    if closing {
                        tracing::debug!(remote = %self.remote, "dropping a connection that moved no bytes while closing");
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                    activity.touch();
                    closing = true;
                }
            }
        }
    }
}

/// When a connection last moved bytes, and how many of its requests are being handled.
struct Activity {
    origin: Instant,
    last_progress_ms: AtomicU64,
    handling: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(ms, Ordering::Relaxed);
    }

    fn last_progress(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed))
    }

    fn handling(&self) -> bool {
        self.handling.load(Ordering::Relaxed) > 0
    }
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
