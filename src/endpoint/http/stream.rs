//! A stream wrapper that passes every chunk read from a socket to the connection's
//! [`HttpObserver`], and reports to it which socket failed.

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::HttpObserver;

/// Socket of the connection that a stream wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Backend,
}

/// One socket of a proxied connection, observed. Both sockets of a connection share
/// one observer behind a mutex. They are polled by the same task, so the lock is never
/// contended, and it only makes the shared borrow `Send`.
pub(crate) struct ObservedStream<'o, 'c, S> {
    inner: S,
    observer: &'o Mutex<HttpObserver<'c>>,
    side: Side,
}

impl<'o, 'c, S> ObservedStream<'o, 'c, S> {
    /// Wraps the client's socket: what it reads are requests.
    pub(crate) fn client(inner: S, observer: &'o Mutex<HttpObserver<'c>>) -> Self {
        ObservedStream {
            inner,
            observer,
            side: Side::Client,
        }
    }

    /// Wraps the backend's socket: what it reads are responses.
    pub(crate) fn backend(inner: S, observer: &'o Mutex<HttpObserver<'c>>) -> Self {
        ObservedStream {
            inner,
            observer,
            side: Side::Backend,
        }
    }

    /// Locks the observer. A panic inside it leaves at worst wrong counts for this one
    /// connection, so a poisoned lock is used as it is.
    fn observer(&self) -> MutexGuard<'o, HttpObserver<'c>> {
        self.observer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note_error<T>(&self, poll: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(_)) = poll {
            let mut observer = self.observer();
            match self.side {
                Side::Client => observer.on_client_error(),
                Side::Backend => observer.on_backend_error(),
            }
        }
    }

    fn observe_read(&self, bytes: &[u8], has_room: bool) {
        let now = Instant::now();
        let mut observer = self.observer();
        match (self.side, bytes.is_empty()) {
            (Side::Client, false) => observer.on_request_bytes(bytes, now),
            (Side::Backend, false) => observer.on_response_bytes(bytes, now),
            // An empty read into a buffer with room is the end of the stream.
            (Side::Backend, true) if has_room => observer.on_backend_end(now),
            _ => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ObservedStream<'_, '_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let has_room = buf.remaining() > 0;
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);

        match &poll {
            Poll::Ready(Ok(())) => self.observe_read(&buf.filled()[before..], has_room),
            Poll::Ready(Err(_)) => self.note_error(&poll),
            Poll::Pending => {}
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ObservedStream<'_, '_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_error(&poll);
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note_error(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.note_error(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_error(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
