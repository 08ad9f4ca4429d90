//! The connection layer under the router: our own accept loop over hyper's
//! HTTP/1 connection, so that no connection can hold a descriptor for
//! longer than it is doing something useful.
//!
//! - **Header-read timeout.** A client must finish a request's line and
//!   headers within `header_read_timeout`, counted from the accept (a new
//!   connection) or from the first byte of a later request. Sending a byte
//!   at a time does not extend it.
//! - **Idle timeout.** Between requests a kept-alive connection may wait
//!   `idle_timeout` for the next one; writing a response counts as
//!   activity, so a client reading a response slowly but steadily is not
//!   cut, one that stops reading is.
//! - While a request is being handled neither applies: the body timeout
//!   (408) and the request timeout (503) of the router bound that time.
//! - **Connection cap.** At most `max_connections` connections are served
//!   at once. One more is accepted, answered a canned `503` (if its socket
//!   takes it without waiting) and closed at once, so excess clients learn
//!   of it immediately instead of queueing in the listen backlog, and the
//!   process keeps descriptors for its database and everything else.
//! - **Accept errors** (the process or system out of descriptors, memory)
//!   pause the loop briefly, 10 ms doubling to 100 ms, and are logged once
//!   per burst, instead of spinning on the error or sleeping a whole second
//!   as `axum::serve` does.
//!
//! Hyper's own `header_read_timeout` is left off: it restarts as soon as
//! a response is written, so it would also close kept-alive connections
//! after the (short) header timeout, leaving no separate idle timeout.
//!
//! Graceful shutdown: on the signal the loop stops accepting, every
//! connection is told to finish the request it is handling and close, and
//! [`serve`] returns when the last one has (each holds a slot of the cap
//! until it ends, so "all slots free" is "all connections closed").

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long a client may take to send a request's line and headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait for its next request.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The connection cap when the open-files limit leaves room for it.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
/// Descriptors always kept out of the connection cap (for the database,
/// Redis, the runtime and standard streams), or a quarter of the limit
/// when that is more: SQLite opens three per connection, PostgreSQL one
/// per pooled connection.
pub const RESERVED_DESCRIPTORS: u64 = 128;

/// The first and the longest pause after an accept error.
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line per this long about shed connections.
const SHED_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What an excess connection is told before it is closed. Plain text: the
/// path, and so the surface whose envelope would apply, is not read.
const SHED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 21\r\n\
\r\n\
too many connections\n";

/// How connections are timed and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Connections served at once (at least one).
    pub max_connections: u32,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The connection cap that leaves room for everything else under an
/// open-files limit of `open_files` (`None`: unlimited): 10,000, or the
/// limit less a quarter of it (at least [`RESERVED_DESCRIPTORS`]) when that
/// is fewer; never below 16.
pub fn default_max_connections(open_files: Option<u64>) -> u32 {
    let Some(limit) = open_files else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let room = limit.saturating_sub(RESERVED_DESCRIPTORS.max(limit / 4));
    u32::try_from(room)
        .unwrap_or(u32::MAX)
        .clamp(16, DEFAULT_MAX_CONNECTIONS)
}

/// The process's open-files limit (its soft limit; `None`: unlimited, or
/// not a Unix).
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The process's open-files limit after raising its soft limit to the
/// hard one (`None`: unlimited, or not a Unix). Raising is safe here: the
/// process uses epoll, never `select`, and starts no child processes.
pub fn raise_open_files_limit() -> Result<Option<u64>, String> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let Some(current) = limit.current else {
            return Ok(None);
        };
        // An unlimited hard limit still cannot be set as the soft one on
        // Linux (it is capped by fs.nr_open); ask for its usual value.
        let wanted = limit.maximum.unwrap_or(1 << 20);
        if wanted <= current {
            return Ok(Some(current));
        }
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => Ok(Some(wanted)),
            Err(error) => Err(format!(
                "cannot raise the open-files limit from {current} to {wanted}: {error}"
            )),
        }
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}

/// Serves `app` on `listener` until `shutdown` completes; requests in
/// flight are allowed to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max_connections = settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.header_read_timeout(None);
    let mut shutdown = pin!(shutdown);
    let mut backoff = AcceptBackoff::default();
    let mut shed = ShedReport::default();
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                if let Some(burst) = backoff.succeeded() {
                    tracing::warn!(
                        errors = burst.errors,
                        elapsed_ms = burst.elapsed.as_millis() as u64,
                        "accepting connections again"
                    );
                }
                stream
            }
            Err(error) => {
                let Some(pause) = backoff.failed(&error) else {
                    // The peer gave up before we took its connection.
                    tracing::debug!(%error, "accept failed for one connection");
                    continue;
                };
                // Once per burst: the error repeats until descriptors free up.
                if backoff.errors() == 1 {
                    tracing::warn!(%error, "cannot accept connections; retrying with pauses");
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let connection = Connection {
                    stream,
                    accepted: Instant::now(),
                    app: app.clone(),
                    http: http.clone(),
                    settings,
                    stopping: stopping.clone(),
                    _slot: slot,
                };
                tokio::spawn(connection.run());
            }
            Err(_) => {
                // Never waits: if the socket cannot take the answer now,
                // the client gets only the close.
                let _ = stream.try_write(SHED_RESPONSE);
                drop(stream);
                if let Some(count) = shed.note(Instant::now()) {
                    tracing::warn!(
                        shed = count,
                        max_connections,
                        "connection limit reached: refusing connections with 503"
                    );
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it has closed.
    let _all = slots.acquire_many(max_connections).await;
    Ok(())
}

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: TcpStream,
    accepted: Instant,
    app: Router,
    http: hyper::server::conn::http1::Builder,
    settings: ConnectionSettings,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves requests until the client closes, a deadline passes (then
    /// the socket is dropped: closed without a response) or the server
    /// shuts down.
    async fn run(mut self) {
        let activity = Arc::new(Activity::new(self.settings, self.accepted));
        let io = TokioIo::new(WatchedIo {
            inner: self.stream,
            activity: activity.clone(),
        });
        let app = self.app;
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = on_request.request_started(Instant::now());
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(busy);
                response
            }
        });
        let mut connection = pin!(self.http.serve_connection(io, service));
        // Reads, writes and requests only note the time; this timer looks
        // at the deadline now and then (see `Activity::next_check`), so a
        // request costs no timer reset and no extra wake-up.
        let mut check = pin!(tokio::time::sleep_until(activity.next_check(self.accepted)));
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = check.as_mut() => {
                    let now = Instant::now();
                    if activity.deadline().is_some_and(|at| at <= now) {
                        tracing::debug!(phase = activity.phase_name(), "closing a connection that timed out");
                        return;
                    }
                    check.as_mut().reset(activity.next_check(now));
                }
                _ = self.stopping.wait_for(|stop| *stop), if !draining => {
                    // A head still arriving is no request yet: nothing in
                    // flight to finish, so close now rather than wait out
                    // its header timeout.
                    if matches!(activity.phase(), Phase::Head { .. }) {
                        return;
                    }
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Where a connection is in its life, for its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving a request's head, which must be complete by `deadline`.
    Head { deadline: Instant },
    /// Handling `n` requests: no deadline of ours.
    Busy(usize),
    /// Between requests, or writing a response; `since` is the last
    /// progress.
    Idle { since: Instant },
}

/// A connection's phase, moved by its reads and writes and by the
/// requests hyper hands to the router.
struct Activity {
    phase: Mutex<Phase>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl Activity {
    fn new(settings: ConnectionSettings, accepted: Instant) -> Self {
        Self {
            phase: Mutex::new(Phase::Head {
                deadline: accepted + settings.header_read_timeout,
            }),
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn phase_name(&self) -> &'static str {
        match self.phase() {
            Phase::Head { .. } => "reading headers",
            Phase::Busy(_) => "busy",
            Phase::Idle { .. } => "idle",
        }
    }

    /// When the connection is to be closed, if nothing happens before.
    fn deadline(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Head { deadline } => Some(deadline),
            Phase::Busy(_) => None,
            Phase::Idle { since } => Some(since + self.idle_timeout),
        }
    }

    /// When the watchdog should look again, having looked at `now`: the
    /// deadline, but never more than the shorter timeout ahead. No change
    /// of phase can then bring a deadline before the next look: a head
    /// starting, or a request ending, after `now` sets a deadline at least
    /// that far after `now`, and within a phase deadlines only move later.
    fn next_check(&self, now: Instant) -> Instant {
        let horizon = now + self.header_read_timeout.min(self.idle_timeout);
        self.deadline()
            .map_or(horizon, |deadline| deadline.min(horizon))
    }

    /// Bytes arrived. After an idle wait they start the next request's
    /// head; within a head they do not move its deadline (a client
    /// trickling one byte at a time gets no more time).
    fn read(&self, now: Instant) {
        self.update(|phase| match phase {
            Phase::Idle { .. } => Phase::Head {
                deadline: now + self.header_read_timeout,
            },
            other => other,
        });
    }

    /// Bytes left for the client: progress on a response.
    fn wrote(&self, now: Instant) {
        self.update(|phase| match phase {
            Phase::Idle { .. } => Phase::Idle { since: now },
            other => other,
        });
    }

    /// The head of a request is complete and goes to the router; the
    /// returned guard ends the request when its response is ready (or the
    /// request is dropped).
    fn request_started(self: &Arc<Self>, _now: Instant) -> BusyGuard {
        self.update(|phase| match phase {
            Phase::Busy(count) => Phase::Busy(count + 1),
            Phase::Head { .. } | Phase::Idle { .. } => Phase::Busy(1),
        });
        BusyGuard(self.clone())
    }

    fn request_finished(&self, now: Instant) {
        self.update(|phase| match phase {
            Phase::Busy(count) if count > 1 => Phase::Busy(count - 1),
            _ => Phase::Idle { since: now },
        });
    }
}

/// Ends a request's busy phase when dropped.
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

/// The socket, telling its connection's [`Activity`] of every read and
/// write that moved bytes.
struct WatchedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read(Instant::now());
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.wrote(Instant::now());
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.wrote(Instant::now());
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A run of accept errors that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    errors: u32,
    elapsed: Duration,
}

/// The pause after each accept error of a burst.
#[derive(Debug, Default)]
struct AcceptBackoff {
    errors: u32,
    since: Option<Instant>,
}

impl AcceptBackoff {
    /// How long to pause after `error`; `None` for an error that concerns
    /// only the one connection (its peer reset or aborted it before the
    /// accept), which is no reason to wait.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return None;
        }
        self.errors = self.errors.saturating_add(1);
        self.since.get_or_insert_with(Instant::now);
        let doublings = (self.errors - 1).min(16);
        Some((FIRST_ACCEPT_PAUSE * 2u32.pow(doublings)).min(LONGEST_ACCEPT_PAUSE))
    }

    /// Errors in the current burst so far.
    fn errors(&self) -> u32 {
        self.errors
    }

    /// An accept worked: the burst, if one just ended.
    fn succeeded(&mut self) -> Option<Burst> {
        let since = self.since.take()?;
        let errors = std::mem::take(&mut self.errors);
        Some(Burst {
            errors,
            elapsed: since.elapsed(),
        })
    }
}

/// Counts shed connections and says when to log them: the first at once,
/// then at most once per [`SHED_REPORT_INTERVAL`].
#[derive(Debug, Default)]
struct ShedReport {
    last: Option<Instant>,
    unreported: u64,
}

impl ShedReport {
    /// One more shed connection; the number to report now, if any.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= SHED_REPORT_INTERVAL);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            max_connections: 10,
        }
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(default_max_connections(None), 10_000);
        assert_eq!(default_max_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_connections(Some(20_000)), 10_000);
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(256)), 128);
        assert_eq!(default_max_connections(Some(64)), 16);
    }

    #[test]
    fn a_connection_moves_through_its_deadlines() {
        let accepted = Instant::now();
        let activity = Arc::new(Activity::new(settings(), accepted));
        // A new connection must send its head within the header timeout,
        // and trickling bytes does not extend it.
        assert_eq!(activity.deadline(), Some(accepted + Duration::from_secs(2)));
        activity.read(accepted + Duration::from_secs(1));
        assert_eq!(activity.deadline(), Some(accepted + Duration::from_secs(2)));
        // While a request is handled, no deadline of ours.
        let busy = activity.request_started(accepted);
        assert_eq!(activity.deadline(), None);
        activity.read(accepted + Duration::from_secs(3));
        assert_eq!(activity.deadline(), None);
        let before = Instant::now();
        drop(busy);
        let after = Instant::now();
        let idle_until = activity.deadline().expect("an idle deadline");
        assert!(
            before + Duration::from_secs(5) <= idle_until
                && idle_until <= after + Duration::from_secs(5)
        );
        // Writing the response is progress.
        let later = after + Duration::from_secs(4);
        activity.wrote(later);
        assert_eq!(activity.deadline(), Some(later + Duration::from_secs(5)));
        // The next request's first byte starts its header timeout.
        let next = later + Duration::from_secs(1);
        activity.read(next);
        assert_eq!(activity.deadline(), Some(next + Duration::from_secs(2)));
    }

    #[test]
    fn the_watchdog_never_looks_after_a_deadline() {
        let seconds = Duration::from_secs;
        let long_idle = ConnectionSettings {
            idle_timeout: seconds(60),
            ..settings()
        };
        let start = Instant::now();
        let activity = Arc::new(Activity::new(long_idle, start));
        assert_eq!(activity.next_check(start), start + seconds(2));
        // Idle: the deadline is 60 s away, but the watchdog looks again
        // within 2 s, so a head starting meanwhile is not missed.
        drop(activity.request_started(start));
        let looked = Instant::now();
        let check = activity.next_check(looked);
        assert_eq!(check, looked + seconds(2));
        let first_byte = looked + seconds(1);
        activity.read(first_byte);
        assert!(check <= activity.deadline().expect("a head deadline"));
        assert_eq!(
            activity.next_check(check),
            first_byte + seconds(2),
            "then exactly at the head's deadline"
        );
        // Busy: no deadline, but still a look within the shorter timeout.
        let busy = activity.request_started(check);
        assert_eq!(activity.next_check(check), check + seconds(2));
        drop(busy);
        assert!(activity.deadline().expect("idle") >= check + seconds(2));
    }

    #[test]
    fn accept_errors_back_off_and_end_in_one_report() {
        let mut backoff = AcceptBackoff::default();
        let out_of_files = io::Error::from_raw_os_error(24); // EMFILE
        let pauses: Vec<u64> = (0..7)
            .map(|_| {
                backoff
                    .failed(&out_of_files)
                    .map_or(0, |pause| pause.as_millis() as u64)
            })
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 100, 100, 100]);
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&reset), None, "one peer's problem");
        std::thread::sleep(Duration::from_millis(20));
        let burst = backoff.succeeded().expect("a burst ended");
        assert_eq!(burst.errors, 7);
        assert!(burst.elapsed >= Duration::from_millis(20), "{burst:?}");
        assert_eq!(backoff.succeeded(), None);
        assert_eq!(
            backoff.failed(&out_of_files),
            Some(Duration::from_millis(10)),
            "a new burst starts over"
        );
    }

    #[test]
    fn shed_connections_are_logged_at_most_every_ten_seconds() {
        let mut report = ShedReport::default();
        let start = Instant::now();
        assert_eq!(report.note(start), Some(1));
        for second in 1..10 {
            assert_eq!(report.note(start + Duration::from_secs(second)), None);
        }
        assert_eq!(report.note(start + Duration::from_secs(10)), Some(10));
    }
}
