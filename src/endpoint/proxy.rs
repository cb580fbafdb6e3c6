//! The accept loop and the work on each client connection: wait for a backend,
//! connect with failover, then copy bytes both ways, observing HTTP on HTTP ports.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::http::{answer_unavailable, Ending, HttpObserver, ObservedStream, Unavailable};
use super::stats::{increment, CountedStream, EndpointCounters, RequestCounters};
use super::table::{BackendState, BackendTable};
use super::tracker::{ConnectionTracker, TrackerGuard};
use super::warning::WarningLimiter;
use super::EndpointConfig;

/// Pause after a failed `accept`, because errors such as "too many open files" last a
/// while and retrying at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// State shared by the endpoint's handles, its accept loop and its connection tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    /// When the endpoint started listening, so that a first reading of the
    /// counters can still be turned into a rate.
    pub(crate) bound_at: std::time::Instant,
    pub(crate) address: SocketAddr,
    pub(crate) config: EndpointConfig,
    table: Mutex<BackendTable>,
    /// Number of backends in rotation, watched by clients that wait for one.
    rotation_len: watch::Sender<usize>,
    pub(crate) counters: EndpointCounters,
    /// Whether new connections are observed as HTTP/1.1. Connections keep the mode they
    /// were accepted with.
    http: AtomicBool,
    /// Counted while `http` is set; kept when it is cleared, so counts stay cumulative.
    pub(crate) requests: RequestCounters,
    pub(crate) connections: Arc<ConnectionTracker>,
    /// Set to true to stop accepting and to end waits for a backend.
    pub(crate) stop_accepting: watch::Sender<bool>,
    /// Set to true to close every client connection at once.
    pub(crate) force_close: watch::Sender<bool>,
    no_backend_warnings: WarningLimiter,
    connect_warnings: WarningLimiter,
    accept_warnings: WarningLimiter,
}

impl Shared {
    pub(crate) fn new(address: SocketAddr, config: EndpointConfig) -> Shared {
        let http = config.http;
        Shared {
            bound_at: std::time::Instant::now(),
            address,
            config,
            table: Mutex::new(BackendTable::default()),
            rotation_len: watch::Sender::new(0),
            counters: EndpointCounters::default(),
            http: AtomicBool::new(http),
            requests: RequestCounters::default(),
            connections: Arc::new(ConnectionTracker::default()),
            stop_accepting: watch::Sender::new(false),
            force_close: watch::Sender::new(false),
            no_backend_warnings: WarningLimiter::default(),
            connect_warnings: WarningLimiter::default(),
            accept_warnings: WarningLimiter::default(),
        }
    }

    /// Locks the backend table. Every critical section only moves entries and reads
    /// counters, so a panic cannot leave the table half changed, and a poisoned lock is
    /// used as it is.
    pub(crate) fn table(&self) -> MutexGuard<'_, BackendTable> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_http(&self) -> bool {
        self.http.load(Ordering::Relaxed)
    }

    /// Sets whether new connections are observed as HTTP/1.1, and returns the previous setting.
    pub(crate) fn set_http(&self, http: bool) -> bool {
        self.http.swap(http, Ordering::Relaxed)
    }

    /// Publishes the rotation size after a change to the table.
    pub(crate) fn publish_rotation_len(&self, len: usize) {
        self.rotation_len.send_replace(len);
    }
}

/// Accepts client connections until `stop_accepting` is set, then drops the listener.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.stop_accepting.subscribe();

    loop {
        let accepted = tokio::select! {
            _ = wait_true(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };

        match accepted {
            Ok((client, peer)) => {
                tokio::spawn(serve_client(Arc::clone(&shared), client, peer));
            }
            Err(error) => {
                if let Some(suppressed) = shared.accept_warnings.allow() {
                    warn!(endpoint = %shared.address, %error, suppressed,
                        "accepting a connection failed; retrying after a pause");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }

    info!(endpoint = %shared.address, "endpoint stopped accepting connections");
}

/// Completes when the flag becomes true. A dropped sender can no longer set it, so the
/// future then never completes.
async fn wait_true(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|value| *value).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn serve_client(shared: Arc<Shared>, client: TcpStream, peer: SocketAddr) {
    let _client_guard = shared.connections.enter();
    let accepted = std::time::Instant::now();
    increment(&shared.counters.accepted);
    set_nodelay(&client, "client", peer);
    let http = shared.is_http();

    match open_upstream(&shared, peer).await {
        Ok(upstream) if http => copy_observed(&shared, client, peer, upstream).await,
        Ok(upstream) => copy_both_ways(&shared, client, peer, upstream).await,
        // An HTTP client gets a response that names the reason instead of a bare close.
        Err(reason) if http => answer_unavailable(client, reason, accepted, &shared.requests).await,
        Err(_) => {}
    }
}

fn set_nodelay(stream: &TcpStream, side: &str, peer: SocketAddr) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, side, %error, "setting TCP_NODELAY failed; continuing with Nagle's algorithm");
    }
}

/// A connection to a backend, with the backend's connection count held until it closes.
struct Upstream {
    stream: TcpStream,
    backend: Arc<BackendState>,
    _backend_guard: TrackerGuard,
}

/// Waits for a backend if none is in rotation, then connects to the least loaded one,
/// trying each other backend once when a connect fails.
async fn open_upstream(shared: &Shared, peer: SocketAddr) -> Result<Upstream, Unavailable> {
    match wait_for_backend(shared).await {
        BackendWait::Ready => {}
        BackendWait::TimedOut => {
            increment(&shared.counters.failed_no_backend);
            if let Some(suppressed) = shared.no_backend_warnings.allow() {
                warn!(endpoint = %shared.address, %peer, wait = ?shared.config.backend_wait, suppressed,
                    "closed a client connection because no ready backend appeared in time");
            }
            return Err(Unavailable::NoBackend(shared.config.backend_wait));
        }
        BackendWait::Closing => {
            increment(&shared.counters.failed_no_backend);
            debug!(endpoint = %shared.address, %peer,
                "closed a client connection that waited for a backend because the endpoint is closing");
            return Err(Unavailable::Closing);
        }
    }

    let mut tried: Vec<u64> = Vec::new();
    loop {
        let picked = shared.table().pick(&tried);
        let Some((backend, backend_guard)) = picked else {
            break;
        };
        tried.push(backend.id);

        if let Some(stream) = connect_backend(shared, &backend, peer).await {
            increment(&backend.counters.connections);
            return Ok(Upstream {
                stream,
                backend,
                _backend_guard: backend_guard,
            });
        }
    }

    increment(&shared.counters.failed_connect);
    if let Some(suppressed) = shared.connect_warnings.allow() {
        warn!(endpoint = %shared.address, %peer, backends = ?tried, suppressed,
            "closed a client connection because connecting to every backend failed");
    }
    Err(Unavailable::ConnectFailed)
}

enum BackendWait {
    Ready,
    TimedOut,
    Closing,
}

/// Waits up to the configured backend wait until a backend is in rotation. Ends early
/// when the endpoint is closing, because then no backend will be added.
async fn wait_for_backend(shared: &Shared) -> BackendWait {
    let mut rotation_len = shared.rotation_len.subscribe();
    let mut stop = shared.stop_accepting.subscribe();
    if *rotation_len.borrow_and_update() > 0 {
        return BackendWait::Ready;
    }

    // The sender lives in `shared`, which outlives this wait, so `wait_for` cannot fail.
    let appeared = tokio::time::timeout(
        shared.config.backend_wait,
        rotation_len.wait_for(|len| *len > 0),
    );
    tokio::select! {
        appeared = appeared => match appeared {
            Ok(Ok(_)) => BackendWait::Ready,
            Ok(Err(_)) | Err(_) => BackendWait::TimedOut,
        },
        _ = wait_true(&mut stop) => BackendWait::Closing,
    }
}

async fn connect_backend(
    shared: &Shared,
    backend: &BackendState,
    peer: SocketAddr,
) -> Option<TcpStream> {
    let attempt = tokio::time::timeout(
        shared.config.connect_timeout,
        TcpStream::connect(backend.address),
    )
    .await;

    match attempt {
        Ok(Ok(stream)) => {
            set_nodelay(&stream, "backend", backend.address);
            Some(stream)
        }
        Ok(Err(error)) => {
            increment(&backend.counters.connect_failures);
            debug!(endpoint = %shared.address, %peer, backend = backend.id, address = %backend.address,
                %error, "connecting to backend failed; trying the next one");
            None
        }
        Err(_elapsed) => {
            increment(&backend.counters.connect_failures);
            debug!(endpoint = %shared.address, %peer, backend = backend.id, address = %backend.address,
                timeout = ?shared.config.connect_timeout, "connecting to backend timed out; trying the next one");
            None
        }
    }
}

/// Copies bytes between client and backend until both directions end, or until the
/// backend's drain or the endpoint's close runs out of grace. An end of stream in one
/// direction shuts down writing on the other socket and the other direction continues.
async fn copy_both_ways(shared: &Shared, client: TcpStream, peer: SocketAddr, upstream: Upstream) {
    let backend = &upstream.backend;
    let client = CountedStream::new(
        client,
        &shared.counters.bytes_in,
        &backend.counters.bytes_in,
    );
    let server = CountedStream::new(
        upstream.stream,
        &shared.counters.bytes_out,
        &backend.counters.bytes_out,
    );
    relay(shared, peer, backend, client, server).await;
}

/// Copies bytes as [`copy_both_ways`] does, and shows them to an [`HttpObserver`] that
/// counts the requests in the endpoint's request counters.
async fn copy_observed(shared: &Shared, client: TcpStream, peer: SocketAddr, upstream: Upstream) {
    let backend = &upstream.backend;
    let observer = Mutex::new(HttpObserver::new(&shared.requests, shared.address, peer));
    let client = CountedStream::new(
        client,
        &shared.counters.bytes_in,
        &backend.counters.bytes_in,
    );
    let server = CountedStream::new(
        upstream.stream,
        &shared.counters.bytes_out,
        &backend.counters.bytes_out,
    );

    let ending = relay(
        shared,
        peer,
        backend,
        ObservedStream::client(client, &observer),
        ObservedStream::backend(server, &observer),
    )
    .await;
    observer
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .finish(ending);
}

/// Copies bytes both ways until both directions end or a grace runs out, and returns how it ended.
async fn relay<C, S>(
    shared: &Shared,
    peer: SocketAddr,
    backend: &BackendState,
    mut client: C,
    mut server: S,
) -> Ending
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut backend_closing = backend.force_close.subscribe();
    let mut endpoint_closing = shared.force_close.subscribe();

    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut server) => match copied {
            Ok((sent, received)) => {
                debug!(endpoint = %shared.address, %peer, backend = backend.id,
                    sent, received, "connection closed");
                Ending::Closed
            }
            Err(error) => {
                debug!(endpoint = %shared.address, %peer, backend = backend.id,
                    %error, "connection ended with an error");
                Ending::Failed
            }
        },
        _ = wait_true(&mut backend_closing) => {
            debug!(endpoint = %shared.address, %peer, backend = backend.id,
                "connection closed because the backend's drain grace ran out");
            Ending::ForceClosed
        }
        _ = wait_true(&mut endpoint_closing) => {
            debug!(endpoint = %shared.address, %peer, backend = backend.id,
                "connection closed because the endpoint's close grace ran out");
            Ending::ForceClosed
        }
    }
}
