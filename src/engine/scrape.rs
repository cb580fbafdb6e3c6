//! Fetching `monitoring.scrape` from every ready replica.
//!
//! A scrape runs as a task of its own, started by the metrics collector when
//! the deployment is due, and hands its result back over a channel. A
//! replica that hangs or responds slowly therefore never delays the
//! collection of other deployments; it only makes its own scrape late.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::monitor::scrape::ReplicaKey;

/// Maximum exposition size read from one replica. Larger responses are rejected
/// rather than cut, since a cut exposition would read as missing series.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Maximum time one scrape may take, whatever the interval.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// Scrape address of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub replica: ReplicaKey,
    pub address: SocketAddr,
    pub path: String,
}

impl ScrapeTarget {
    /// Returns the address as operators see it in messages.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.address, self.path)
    }
}

/// Responses of one scrape of a deployment.
#[derive(Debug)]
pub struct ScrapeOutcome {
    pub deployment_id: String,
    /// When the scrape started, in milliseconds since the epoch.
    pub time_ms: u64,
    pub responses: Vec<(ScrapeTarget, Result<String, String>)>,
}

/// Scrapes every target at once and sends the outcome; a full channel drops it,
/// which shows as a gap.
pub fn spawn(
    deployment_id: String,
    targets: Vec<ScrapeTarget>,
    interval: Duration,
    time_ms: u64,
    results: mpsc::Sender<ScrapeOutcome>,
) -> tokio::task::JoinHandle<()> {
    // A scrape that is not done before the next one is due is a failed one.
    let timeout = interval
        .mul_f64(0.9)
        .clamp(Duration::from_millis(500), MAX_TIMEOUT);
    tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for target in targets {
            tasks.spawn(async move {
                let response = fetch(&target, timeout).await;
                (target, response)
            });
        }
        let mut responses = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(response) = joined {
                responses.push(response);
            }
        }
        let outcome = ScrapeOutcome {
            deployment_id,
            time_ms,
            responses,
        };
        if results.try_send(outcome).is_err() {
            tracing::warn!("dropped a scrape result because the metrics collector is behind");
        }
    })
}

/// GETs the exposition of one replica within `timeout`.
async fn fetch(target: &ScrapeTarget, timeout: Duration) -> Result<String, String> {
    let attempt = async {
        let stream = TcpStream::connect(target.address)
            .await
            .map_err(|error| format!("connecting failed: {error}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("the HTTP handshake failed: {error}"))?;
        tokio::spawn(connection);
        let request = hyper::Request::get(target.path.as_str())
            .header("host", target.address.to_string())
            .header("accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
            .header(
                "user-agent",
                concat!("shipdeck/", env!("CARGO_PKG_VERSION")),
            )
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(|error| format!("the scrape path is not a valid request target: {error}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("the request failed: {error}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the application responded with {status}"));
        }
        read_limited(response.into_body()).await
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        format!(
            "no complete response within {} ms; make the endpoint respond faster or raise monitoring.interval",
            timeout.as_millis()
        )
    })?
}

async fn read_limited(mut body: hyper::body::Incoming) -> Result<String, String> {
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| format!("reading the response failed: {error}"))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY_BYTES {
                return Err(format!(
                    "the response is over {} MiB; expose fewer series",
                    MAX_BODY_BYTES / (1024 * 1024)
                ));
            }
            bytes.extend_from_slice(&data);
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        "the response is not UTF-8 text, so it is not the Prometheus text format".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Serves each connection with `response`, after reading the request head.
    async fn server(response: Vec<u8>, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    tokio::time::sleep(delay).await;
                    let _ = stream.write_all(&response).await;
                });
            }
        });
        address
    }

    fn target(address: SocketAddr) -> ScrapeTarget {
        ScrapeTarget {
            replica: (0, 1),
            address,
            path: "/metrics".to_owned(),
        }
    }

    fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn fetch_reads_exposition() {
        let address = server(response("200 OK", b"up 1\n"), Duration::ZERO).await;
        let text = fetch(&target(address), Duration::from_secs(5)).await;
        assert_eq!(text.as_deref(), Ok("up 1\n"));
    }

    #[tokio::test]
    async fn fetch_hanging_endpoint_times_out() {
        let address = server(response("200 OK", b"up 1\n"), Duration::from_secs(30)).await;
        let error = fetch(&target(address), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            error.contains("no complete response within 300 ms"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn fetch_error_status_and_garbage_fail() {
        let address = server(response("500 Internal Server Error", b"x"), Duration::ZERO).await;
        let error = fetch(&target(address), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.contains("500"), "{error}");

        let address = server(response("200 OK", &[0xff, 0xfe, 0x00]), Duration::ZERO).await;
        let error = fetch(&target(address), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[tokio::test]
    async fn fetch_oversized_response_rejected() {
        let body = vec![b'#'; MAX_BODY_BYTES + 1];
        let address = server(response("200 OK", &body), Duration::ZERO).await;
        let error = fetch(&target(address), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(error.contains("over 8 MiB"), "{error}");
    }

    #[tokio::test]
    async fn fetch_non_http_fails() {
        let address = server(b"SSH-2.0-OpenSSH\r\n".to_vec(), Duration::ZERO).await;
        let error = fetch(&target(address), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.contains("request failed"), "{error}");
    }
}
