//! Passive HTTP/1.1 observer of one proxied connection. It never changes a byte: the
//! proxy copies bytes as they arrive and hands each chunk it read to the observer, which
//! follows the message framing on both sides to count requests and time responses.
//!
//! Requests and responses are matched in order, which HTTP/1.1 guarantees on one
//! connection, also when the client pipelines. Anything the observer cannot follow (a
//! protocol other than HTTP/1.1, a head over [`MAX_HEAD_BYTES`], broken chunked framing,
//! a switch to another protocol) turns the connection opaque: bytes still flow, and
//! counting stops for the rest of that connection. Memory per connection is bounded by
//! one head buffer and [`MAX_PIPELINED`] queued requests.

mod framing;
mod stream;
mod unavailable;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use tracing::debug;

use super::stats::RequestCounters;
pub(crate) use framing::MAX_HEAD_BYTES;
use framing::{
    leading_empty_lines, parse_request_head, parse_response_head, Body, HeadBuffer, HeadScan,
    Method, RequestHead, ResponseHead,
};
pub(crate) use stream::ObservedStream;
pub(crate) use unavailable::{answer_unavailable, Unavailable};

/// Maximum requests that wait for their responses on one connection. A client that
/// pipelines more turns its connection opaque, which bounds the queue's memory.
pub(crate) const MAX_PIPELINED: usize = 1024;

/// Reason that a connection turned opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opaque {
    InvalidRequestHead(httparse::Error),
    InvalidResponseHead(httparse::Error),
    RequestHeadTooLarge,
    ResponseHeadTooLarge,
    /// The head ended with an empty line but the parser still wanted more.
    UnterminatedHead,
    InvalidStatus(u16),
    InvalidContentLength,
    /// A request with a `Transfer-Encoding` whose final coding is not chunked.
    UnframedRequestBody,
    InvalidChunk(&'static str),
    TooManyPipelined,
    ResponseWithoutRequest,
    ResponseBeforeRequestHead,
    /// The client sent more bytes before the response to its `Upgrade` or `CONNECT` request.
    BytesBeforeSwitch,
    /// A 101 response, or a 2xx response to `CONNECT`.
    Switched(u16),
}

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Opaque::InvalidRequestHead(error) => write!(f, "the request head is invalid: {error}"),
            Opaque::InvalidResponseHead(error) => {
                write!(f, "the response head is invalid: {error}")
            }
            Opaque::RequestHeadTooLarge => {
                write!(f, "a request head is larger than {MAX_HEAD_BYTES} bytes")
            }
            Opaque::ResponseHeadTooLarge => {
                write!(f, "a response head is larger than {MAX_HEAD_BYTES} bytes")
            }
            Opaque::UnterminatedHead => {
                write!(f, "a head ended before its start line was complete")
            }
            Opaque::InvalidStatus(status) => write!(f, "the response status {status} is invalid"),
            Opaque::InvalidContentLength => write!(f, "a Content-Length value is invalid"),
            Opaque::UnframedRequestBody => write!(
                f,
                "a request has a Transfer-Encoding whose final coding is not chunked"
            ),
            Opaque::InvalidChunk(reason) => write!(f, "a chunked body is invalid: {reason}"),
            Opaque::TooManyPipelined => write!(
                f,
                "the client pipelined more than {MAX_PIPELINED} requests without responses"
            ),
            Opaque::ResponseWithoutRequest => {
                write!(f, "the backend sent a response with no request waiting")
            }
            Opaque::ResponseBeforeRequestHead => {
                write!(
                    f,
                    "the backend responded before the request head was complete"
                )
            }
            Opaque::BytesBeforeSwitch => write!(
                f,
                "the client sent bytes before the response to its Upgrade or CONNECT request"
            ),
            Opaque::Switched(status) => {
                write!(f, "the connection left HTTP/1.1 with status {status}")
            }
        }
    }
}

/// A request whose response has not completed yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// When the first byte of its head was read.
    started: Instant,
    /// `None` until the head is complete.
    head: Option<PendingHead>,
}

#[derive(Debug, Clone, Copy)]
struct PendingHead {
    method: Method,
    keep_alive: bool,
    wants_switch: bool,
}

#[derive(Debug, Clone, Copy)]
enum RequestPhase {
    Head,
    Body(Body),
    /// The client asked to switch protocols, and the next bytes belong to the new
    /// protocol if the response agrees.
    AwaitingSwitch {
        bytes_seen: bool,
    },
    /// The last request asked to close the connection, so further bytes are ignored.
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum ResponsePhase {
    Head,
    Body {
        body: Body,
        status: u16,
        keep_alive: bool,
    },
    /// The last response closed the connection, so further bytes are ignored.
    Closed,
}

/// End state of a proxied connection, as [`HttpObserver::finish`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Both directions reached end of stream.
    Closed,
    /// Reading or writing a socket failed.
    Failed,
    /// A drain or close ran out of grace and closed the connection.
    ForceClosed,
}

/// Follows the requests and responses of one connection and counts them in the
/// endpoint's [`RequestCounters`].
#[derive(Debug)]
pub(crate) struct HttpObserver<'a> {
    counters: &'a RequestCounters,
    endpoint: SocketAddr,
    peer: SocketAddr,
    opaque: bool,
    pending: VecDeque<Pending>,
    request_phase: RequestPhase,
    request_head: HeadBuffer,
    response_phase: ResponsePhase,
    response_head: HeadBuffer,
    client_failed: bool,
    backend_failed: bool,
}

impl<'a> HttpObserver<'a> {
    pub(crate) fn new(
        counters: &'a RequestCounters,
        endpoint: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        HttpObserver {
            counters,
            endpoint,
            peer,
            opaque: false,
            pending: VecDeque::new(),
            request_phase: RequestPhase::Head,
            request_head: HeadBuffer::default(),
            response_phase: ResponsePhase::Head,
            response_head: HeadBuffer::default(),
            client_failed: false,
            backend_failed: false,
        }
    }

    /// Returns whether counting stopped on this connection.
    #[cfg(test)]
    pub(crate) fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// Follows bytes that the client sent, read at `now`.
    pub(crate) fn on_request_bytes(&mut self, bytes: &[u8], now: Instant) {
        if self.opaque {
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.consume_request(rest, now) {
                Ok(used) => rest = &rest[used..],
                Err(reason) => return self.become_opaque(reason),
            }
        }
    }

    /// Follows bytes that the backend sent, read at `now`.
    pub(crate) fn on_response_bytes(&mut self, bytes: &[u8], now: Instant) {
        if self.opaque {
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.consume_response(rest, now) {
                Ok(used) => rest = &rest[used..],
                Err(reason) => return self.become_opaque(reason),
            }
        }
    }

    /// Ends a response that lasts until the backend closes, read at `now`, and counts
    /// the requests still waiting as failed, because no response can follow.
    pub(crate) fn on_backend_end(&mut self, now: Instant) {
        if self.opaque {
            return;
        }
        if let ResponsePhase::Body {
            body: Body::UntilClose,
            status,
            ..
        } = self.response_phase
        {
            self.record_oldest(status, now);
        }
        self.response_phase = ResponsePhase::Closed;
        self.fail_waiting_requests();
    }

    /// Notes that reading from or writing to the client failed.
    pub(crate) fn on_client_error(&mut self) {
        self.client_failed = true;
    }

    /// Notes that reading from or writing to the backend failed.
    pub(crate) fn on_backend_error(&mut self) {
        self.backend_failed = true;
    }

    /// Counts the requests still waiting when the connection ended. A client whose
    /// socket failed while the backend's did not abandoned them, so they are not
    /// counted. Any other ending leaves them without a response, which is a failure.
    pub(crate) fn finish(mut self, ending: Ending) {
        if self.opaque {
            return;
        }
        let client_left = ending == Ending::Failed && self.client_failed && !self.backend_failed;
        if client_left {
            debug!(endpoint = %self.endpoint, peer = %self.peer, waiting = self.pending.len(),
                "the client closed the connection with requests waiting; they are not counted");
            return;
        }
        self.fail_waiting_requests();
    }

    fn fail_waiting_requests(&mut self) {
        for request in self.pending.drain(..) {
            // A request whose head never completed was not a request yet.
            if request.head.is_some() {
                self.counters.record_connection_error();
            }
        }
    }

    fn become_opaque(&mut self, reason: Opaque) {
        debug!(endpoint = %self.endpoint, peer = %self.peer, %reason,
            "stopped counting HTTP requests on this connection; its bytes are still forwarded");
        self.opaque = true;
        self.pending = VecDeque::new();
        self.request_head = HeadBuffer::default();
        self.response_head = HeadBuffer::default();
    }

    /// Consumes client bytes at the start of `bytes` and returns how many were used.
    fn consume_request(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Opaque> {
        match &mut self.request_phase {
            RequestPhase::Head => self.consume_request_head(bytes, now),
            RequestPhase::Body(body) => {
                let (used, ended) = body.consume(bytes)?;
                if ended {
                    self.request_phase = self.after_request_body();
                }
                Ok(used)
            }
            RequestPhase::AwaitingSwitch { bytes_seen } => {
                *bytes_seen = true;
                Ok(bytes.len())
            }
            RequestPhase::Closed => Ok(bytes.len()),
        }
    }

    fn consume_request_head(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Opaque> {
        let mut skipped = 0;
        if !self.request_head.is_started() {
            skipped = leading_empty_lines(bytes);
            if skipped == bytes.len() {
                return Ok(skipped);
            }
            if self.pending.len() >= MAX_PIPELINED {
                return Err(Opaque::TooManyPipelined);
            }
            self.pending.push_back(Pending {
                started: now,
                head: None,
            });
        }

        let chunk = &bytes[skipped..];
        let used = match self.request_head.scan(chunk) {
            HeadScan::Partial => return Ok(bytes.len()),
            HeadScan::TooLarge => return Err(Opaque::RequestHeadTooLarge),
            HeadScan::Complete(used) => used,
        };
        let head = parse_request_head(self.request_head.head(chunk, used))?;
        self.request_head.clear();
        self.start_request_body(head);
        Ok(skipped + used)
    }

    fn start_request_body(&mut self, head: RequestHead) {
        if let Some(request) = self.pending.back_mut() {
            request.head = Some(PendingHead {
                method: head.method,
                keep_alive: head.keep_alive,
                wants_switch: head.wants_switch,
            });
        }
        self.request_phase = if head.body.is_complete() {
            self.after_request_body()
        } else {
            RequestPhase::Body(head.body)
        };
    }

    /// Returns the phase after the body of the newest request, which decides whether
    /// another request may follow.
    fn after_request_body(&self) -> RequestPhase {
        match self.pending.back().and_then(|request| request.head) {
            Some(head) if head.wants_switch => RequestPhase::AwaitingSwitch { bytes_seen: false },
            Some(head) if !head.keep_alive => RequestPhase::Closed,
            _ => RequestPhase::Head,
        }
    }

    /// Consumes backend bytes at the start of `bytes` and returns how many were used.
    fn consume_response(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Opaque> {
        match &mut self.response_phase {
            ResponsePhase::Head => self.consume_response_head(bytes, now),
            ResponsePhase::Body {
                body,
                status,
                keep_alive,
            } => {
                let (status, keep_alive) = (*status, *keep_alive);
                let (used, ended) = body.consume(bytes)?;
                if ended {
                    self.complete_response(status, keep_alive, now)?;
                }
                Ok(used)
            }
            ResponsePhase::Closed => Ok(bytes.len()),
        }
    }

    fn consume_response_head(&mut self, bytes: &[u8], now: Instant) -> Result<usize, Opaque> {
        let mut skipped = 0;
        if !self.response_head.is_started() {
            skipped = leading_empty_lines(bytes);
            if skipped == bytes.len() {
                return Ok(skipped);
            }
        }
        let request = match self.pending.front() {
            None => return Err(Opaque::ResponseWithoutRequest),
            Some(Pending { head: None, .. }) => return Err(Opaque::ResponseBeforeRequestHead),
            Some(Pending {
                head: Some(head), ..
            }) => *head,
        };

        let chunk = &bytes[skipped..];
        let used = match self.response_head.scan(chunk) {
            HeadScan::Partial => return Ok(bytes.len()),
            HeadScan::TooLarge => return Err(Opaque::ResponseHeadTooLarge),
            HeadScan::Complete(used) => used,
        };
        let head = parse_response_head(self.response_head.head(chunk, used))?;
        self.response_head.clear();
        self.start_response_body(&head, request, now)?;
        Ok(skipped + used)
    }

    fn start_response_body(
        &mut self,
        head: &ResponseHead,
        request: PendingHead,
        now: Instant,
    ) -> Result<(), Opaque> {
        let status = head.status;
        let switched =
            status == 101 || (request.method == Method::Connect && (200..300).contains(&status));
        if switched {
            // The handshake itself got its response, so it counts before counting stops.
            self.record_oldest(status, now);
            return Err(Opaque::Switched(status));
        }
        if status < 200 {
            // 100 Continue and other interim responses: the final response follows.
            return Ok(());
        }

        let keep_alive = head.keep_alive && request.keep_alive;
        let body = head.body(request.method)?;
        if body.is_complete() {
            self.complete_response(status, keep_alive, now)
        } else {
            self.response_phase = ResponsePhase::Body {
                body,
                status,
                keep_alive,
            };
            Ok(())
        }
    }

    /// Counts the oldest waiting request as completed with `status` at `now`, and
    /// returns the properties read from its head.
    fn record_oldest(&mut self, status: u16, now: Instant) -> Option<PendingHead> {
        let request = self.pending.pop_front()?;
        self.counters
            .record_response(status, now.saturating_duration_since(request.started));
        request.head
    }

    /// Counts the oldest waiting request as completed with a final `status` at `now`,
    /// and waits for the next response unless this one closes the connection.
    fn complete_response(
        &mut self,
        status: u16,
        keep_alive: bool,
        now: Instant,
    ) -> Result<(), Opaque> {
        self.response_phase = if keep_alive {
            ResponsePhase::Head
        } else {
            ResponsePhase::Closed
        };
        match self.record_oldest(status, now) {
            Some(head) if head.wants_switch => self.resume_after_refused_switch(head.keep_alive),
            _ => Ok(()),
        }
    }

    /// Lets the client send requests again after the backend answered its `Upgrade` or
    /// `CONNECT` request without switching.
    fn resume_after_refused_switch(&mut self, keep_alive: bool) -> Result<(), Opaque> {
        let RequestPhase::AwaitingSwitch { bytes_seen } = self.request_phase else {
            return Ok(());
        };
        if bytes_seen {
            return Err(Opaque::BytesBeforeSwitch);
        }
        self.request_phase = if keep_alive {
            RequestPhase::Head
        } else {
            RequestPhase::Closed
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests;
