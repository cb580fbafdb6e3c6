//! Connection and byte counters of an endpoint and its backends, and their snapshots.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::histogram::{AtomicHistogram, LatencyHistogram};

/// Counters of one endpoint. Each is updated on its own with relaxed ordering, so a
/// snapshot taken while traffic flows may be a few bytes or connections apart between fields.
#[derive(Debug, Default)]
pub(crate) struct EndpointCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) failed_no_backend: AtomicU64,
    pub(crate) failed_connect: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// Counters of one backend.
#[derive(Debug, Default)]
pub(crate) struct BackendCounters {
    pub(crate) connections: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// Request counters of an endpoint whose port speaks HTTP/1.1.
#[derive(Debug, Default)]
pub(crate) struct RequestCounters {
    completed: AtomicU64,
    failed: AtomicU64,
    response_time: AtomicHistogram,
}

impl RequestCounters {
    /// Counts a request that got a complete response with `status`, sent `elapsed`
    /// after the first byte of the request.
    pub(crate) fn record_response(&self, status: u16, elapsed: Duration) {
        self.response_time.record(elapsed);
        if status >= 500 {
            increment(&self.failed);
        }
        increment(&self.completed);
    }

    /// Counts a request that got no response because a connection closed or failed.
    pub(crate) fn record_connection_error(&self) {
        increment(&self.failed);
        increment(&self.completed);
    }

    pub(crate) fn snapshot(&self) -> RequestStats {
        RequestStats {
            completed: read(&self.completed),
            failed: read(&self.failed),
            response_time: self.response_time.snapshot(),
        }
    }
}

pub(crate) fn increment(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Snapshot of an endpoint's counters, from [`crate::endpoint::Endpoint::stats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointStats {
    /// Address the endpoint listens on.
    pub address: SocketAddr,
    /// Milliseconds since the endpoint was bound, over which the counters grew.
    pub uptime_ms: u64,
    /// Client connections accepted since the endpoint was bound.
    pub accepted: u64,
    /// Client connections open now, including those waiting for a backend.
    pub active: u64,
    /// Client connections closed because no backend appeared within the backend wait.
    pub failed_no_backend: u64,
    /// Client connections closed because connecting to every backend failed or timed out.
    pub failed_connect: u64,
    /// Bytes read from clients and sent towards backends.
    pub bytes_in: u64,
    /// Bytes read from backends and sent towards clients.
    pub bytes_out: u64,
    /// Backends in rotation, then removed backends that still have open connections.
    pub backends: Vec<BackendStats>,
    /// Request counters, present while the endpoint treats its traffic as HTTP/1.1 and
    /// `None` for a plain TCP endpoint.
    pub requests: Option<RequestStats>,
}

/// Requests seen by an HTTP endpoint since it was bound. A metrics collector diffs two
/// snapshots to get the requests of one interval. Requests on connections that switched
/// to another protocol (an `Upgrade`, a `CONNECT` tunnel) or that the endpoint could not
/// parse as HTTP/1.1 are not counted after the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// Requests counted: each got a complete response, got the endpoint's own
    /// `503 Service Unavailable`, or was cut off when the backend connection closed or failed.
    pub completed: u64,
    /// Requests of `completed` that failed: status 500 or above (the endpoint's 503
    /// included), or no response because the backend connection closed or failed.
    pub failed: u64,
    /// Time from the first byte of the request to the last byte of its response, for
    /// each request that got a complete response. Requests cut off by a connection
    /// error are in `completed` and `failed` but not here.
    pub response_time: LatencyHistogram,
}

/// Snapshot of one backend's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendStats {
    /// Replica id given in [`crate::endpoint::Backend::id`].
    pub id: u64,
    /// Address the endpoint connects to.
    pub address: SocketAddr,
    /// Whether new connections may go to this backend. False once it was removed or drained.
    pub in_rotation: bool,
    /// Connections established to this backend.
    pub connections: u64,
    /// Connections open now or being opened.
    pub active: u64,
    /// Connection attempts that failed or timed out.
    pub connect_failures: u64,
    /// Bytes sent to this backend.
    pub bytes_in: u64,
    /// Bytes received from this backend.
    pub bytes_out: u64,
}

/// A stream that adds the number of bytes read from it to two counters: the
/// endpoint's and the backend's, for the same direction.
pub(crate) struct CountedStream<'a, S> {
    inner: S,
    endpoint_bytes: &'a AtomicU64,
    backend_bytes: &'a AtomicU64,
}

impl<'a, S> CountedStream<'a, S> {
    pub(crate) fn new(
        inner: S,
        endpoint_bytes: &'a AtomicU64,
        backend_bytes: &'a AtomicU64,
    ) -> Self {
        CountedStream {
            inner,
            endpoint_bytes,
            backend_bytes,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountedStream<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);

        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            self.endpoint_bytes.fetch_add(read, Ordering::Relaxed);
            self.backend_bytes.fetch_add(read, Ordering::Relaxed);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountedStream<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counted_stream_adds_bytes_read_to_both_counters() {
        let endpoint_bytes = AtomicU64::new(0);
        let backend_bytes = AtomicU64::new(5);
        let (mut writer, reader) = tokio::io::duplex(64);
        let mut counted = CountedStream::new(reader, &endpoint_bytes, &backend_bytes);

        writer.write_all(b"hello world").await.unwrap();
        drop(writer);
        let mut received = Vec::new();
        counted.read_to_end(&mut received).await.unwrap();

        assert_eq!(received, b"hello world");
        assert_eq!(read(&endpoint_bytes), 11);
        assert_eq!(read(&backend_bytes), 16);
    }

    #[tokio::test]
    async fn counted_stream_does_not_count_writes() {
        let endpoint_bytes = AtomicU64::new(0);
        let backend_bytes = AtomicU64::new(0);
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut counted = CountedStream::new(writer, &endpoint_bytes, &backend_bytes);

        counted.write_all(b"abc").await.unwrap();
        let mut received = [0u8; 3];
        reader.read_exact(&mut received).await.unwrap();

        assert_eq!(read(&endpoint_bytes), 0);
        assert_eq!(read(&backend_bytes), 0);
    }
}
