//! The endpoint's own `503 Service Unavailable` response on an HTTP port, for a client
//! connection that no backend can take.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::endpoint::stats::RequestCounters;

/// Maximum time to write the response to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long, and how many bytes, the request is read and dropped after the response.
/// Closing a socket with unread input sends a reset, which can make the client lose the
/// response before it reads it.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1024 * 1024;

/// Reason that no backend took a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// No backend was in rotation within the endpoint's backend wait.
    NoBackend(Duration),
    /// The endpoint is closing.
    Closing,
    /// Connecting to every backend failed or timed out.
    ConnectFailed,
}

impl Unavailable {
    fn message(self) -> String {
        match self {
            Unavailable::NoBackend(wait) => format!(
                "no replica of this deployment was ready within {wait:?}; retry when a replica is ready\n"
            ),
            Unavailable::Closing => {
                "this endpoint is closing and takes no new requests\n".to_owned()
            }
            Unavailable::ConnectFailed => {
                "connecting to every ready replica failed; retry later\n".to_owned()
            }
        }
    }
}

/// Sends `503 Service Unavailable` with `Connection: close` to `client`, counts it as
/// one failed request timed from `accepted`, and closes the connection.
pub(crate) async fn answer_unavailable(
    mut client: TcpStream,
    reason: Unavailable,
    accepted: Instant,
    counters: &RequestCounters,
) {
    // Counted before the write, so the count is in place when the client reads the response.
    counters.record_response(503, accepted.elapsed());
    let response = unavailable_response(reason);
    let written = tokio::time::timeout(WRITE_TIMEOUT, client.write_all(response.as_bytes())).await;

    match written {
        Ok(Ok(())) => linger(&mut client).await,
        Ok(Err(error)) => debug!(%error, "writing the 503 response to the client failed"),
        Err(_elapsed) => {
            debug!(timeout = ?WRITE_TIMEOUT, "writing the 503 response to the client timed out")
        }
    }
}

fn unavailable_response(reason: Unavailable) -> String {
    let body = reason.message();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Ends the client's direction and reads what it still sends, for a bounded time, so
/// that the close does not reset the connection under the response.
async fn linger(client: &mut TcpStream) {
    if client.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buffer = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => total += read,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_complete_http() {
        let response = unavailable_response(Unavailable::ConnectFailed);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Response::new(&mut headers);

        let head_len = match parsed.parse(response.as_bytes()) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!("503 response did not parse: {other:?}"),
        };
        assert_eq!(parsed.code, Some(503));
        let body = &response.as_bytes()[head_len..];
        let length = parsed
            .headers
            .iter()
            .find(|header| header.name == "Content-Length")
            .map(|header| {
                std::str::from_utf8(header.value)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            });
        assert_eq!(length, Some(body.len()));
        assert!(parsed
            .headers
            .iter()
            .any(|header| header.name == "Connection" && header.value == b"close"));
    }
}
