//! Tests of the stable endpoint on an HTTP port, against real HTTP servers on
//! 127.0.0.1. Each test binds its own ports from port 0 and ends within `TEST_LIMIT`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use shipdeck::endpoint::{Backend, Endpoint, EndpointConfig, RequestStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound of any single test, so a hang fails instead of blocking the suite.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// How long a read waits for a response.
const PATIENCE: Duration = Duration::from_secs(5);

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test finished within its time limit");
}

/// An axum server whose `/` returns 200 and `/fail` returns 500, stopped on drop.
struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    async fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a backend server on 127.0.0.1");
        let addr = listener.local_addr().expect("backend server address");
        let app = Router::new().route("/", get(|| async { "hello\n" })).route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "failed on purpose\n") }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HttpServer { addr, task }
    }

    fn backend(&self) -> Backend {
        Backend {
            id: 1,
            addr: self.addr,
        }
    }
}

async fn bind_http_endpoint(backend_wait: Duration) -> Endpoint {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = EndpointConfig {
        http: true,
        backend_wait,
        ..EndpointConfig::default()
    };
    Endpoint::bind_with_config(loopback, config)
        .await
        .expect("bind an endpoint on 127.0.0.1")
}

/// A response as the client read it.
#[derive(Debug)]
struct Response {
    status: u16,
    connection: Option<String>,
    body: String,
}

/// Reads one response framed by Content-Length from `stream`, keeping bytes that
/// follow it in `buffer` for the next call.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Response {
    loop {
        if let Some((response, used)) = parse_response(buffer) {
            buffer.drain(..used);
            return response;
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("response arrived in time")
            .expect("read the response");
        assert!(
            read > 0,
            "connection closed before a whole response arrived; have {:?}",
            String::from_utf8_lossy(buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn parse_response(buffer: &[u8]) -> Option<(Response, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buffer).expect("response head is valid") {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return None,
    };
    let field = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| String::from_utf8_lossy(header.value).into_owned())
    };
    let length: usize = field("content-length")
        .expect("response has a Content-Length")
        .parse()
        .expect("Content-Length is a number");
    if buffer.len() < head_len + length {
        return None;
    }
    let response = Response {
        status: parsed.code.expect("status code"),
        connection: field("connection"),
        body: String::from_utf8_lossy(&buffer[head_len..head_len + length]).into_owned(),
    };
    Some((response, head_len + length))
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

fn request_stats(endpoint: &Endpoint) -> RequestStats {
    endpoint
        .stats()
        .requests
        .expect("an HTTP endpoint has request stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_counted() {
    bounded(async {
        const OK: usize = 12;
        const FAILING: usize = 5;
        let server = HttpServer::start().await;
        let endpoint = bind_http_endpoint(Duration::from_secs(5)).await;
        endpoint.set_backends([server.backend()]);

        let mut stream = TcpStream::connect(endpoint.local_addr())
            .await
            .expect("connect to the endpoint");
        let mut buffer = Vec::new();
        for index in 0..OK + FAILING {
            let path = if index % 3 == 2 { "/fail" } else { "/" };
            stream
                .write_all(get_request(path).as_bytes())
                .await
                .expect("send a request");
            let response = read_response(&mut stream, &mut buffer).await;
            let expected = if path == "/fail" { 500 } else { 200 };
            assert_eq!(response.status, expected, "request {index} to {path}");
        }
        // Three more, pipelined in one write.
        let pipelined = [get_request("/"), get_request("/fail"), get_request("/")].concat();
        stream
            .write_all(pipelined.as_bytes())
            .await
            .expect("send pipelined requests");
        let statuses = [
            read_response(&mut stream, &mut buffer).await.status,
            read_response(&mut stream, &mut buffer).await.status,
            read_response(&mut stream, &mut buffer).await.status,
        ];
        assert_eq!(statuses, [200, 500, 200]);

        let stats = request_stats(&endpoint);
        assert_eq!(stats.completed, (OK + FAILING + 3) as u64);
        assert_eq!(stats.failed, (FAILING + 1) as u64);
        assert_eq!(stats.response_time.count(), stats.completed);
        assert!(stats.response_time.quantile(0.95).is_some());
        assert_eq!(
            endpoint.stats().accepted,
            1,
            "all requests used one connection"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_backend_answers_503() {
    bounded(async {
        let endpoint = bind_http_endpoint(Duration::from_millis(200)).await;

        let mut stream = TcpStream::connect(endpoint.local_addr())
            .await
            .expect("connect to the endpoint");
        stream
            .write_all(get_request("/").as_bytes())
            .await
            .expect("send a request");
        let response = read_response(&mut stream, &mut Vec::new()).await;

        assert_eq!(response.status, 503);
        assert_eq!(response.connection.as_deref(), Some("close"));
        assert!(response.body.contains("no replica"), "{}", response.body);
        let stats = endpoint.stats();
        assert_eq!(stats.failed_no_backend, 1);
        let requests = stats.requests.expect("request stats");
        assert_eq!((requests.completed, requests.failed), (1, 1));
        assert_eq!(requests.response_time.count(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connects_answer_503() {
    bounded(async {
        let closed_port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("address")
        };
        let endpoint = bind_http_endpoint(Duration::from_secs(5)).await;
        endpoint.set_backends([Backend {
            id: 1,
            addr: closed_port,
        }]);

        let mut stream = TcpStream::connect(endpoint.local_addr())
            .await
            .expect("connect to the endpoint");
        stream
            .write_all(get_request("/").as_bytes())
            .await
            .expect("send a request");
        let response = read_response(&mut stream, &mut Vec::new()).await;

        assert_eq!(response.status, 503);
        assert!(response.body.contains("connecting"), "{}", response.body);
        let stats = endpoint.stats();
        assert_eq!(stats.failed_connect, 1);
        let requests = stats.requests.expect("request stats");
        assert_eq!((requests.completed, requests.failed), (1, 1));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_closing_mid_request_counts_failure() {
    bounded(async {
        // A backend that reads the request and closes without a response.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await;
        });
        let endpoint = bind_http_endpoint(Duration::from_secs(5)).await;
        endpoint.set_backends([Backend { id: 1, addr }]);

        let mut stream = TcpStream::connect(endpoint.local_addr())
            .await
            .expect("connect to the endpoint");
        stream
            .write_all(get_request("/").as_bytes())
            .await
            .expect("send a request");
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest))
            .await
            .expect("endpoint closed the connection in time")
            .expect("read to the end");
        drop(stream);
        server.await.expect("backend task");

        assert!(rest.is_empty());
        wait_for_completed(&endpoint, 1).await;
        let requests = request_stats(&endpoint);
        assert_eq!(requests.failed, 1);
        assert_eq!(requests.response_time.count(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_endpoint_has_no_request_stats() {
    bounded(async {
        let server = HttpServer::start().await;
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let endpoint = Endpoint::bind(loopback).await.expect("bind an endpoint");
        endpoint.set_backends([server.backend()]);

        let mut stream = TcpStream::connect(endpoint.local_addr())
            .await
            .expect("connect to the endpoint");
        stream
            .write_all(get_request("/fail").as_bytes())
            .await
            .expect("send a request");
        assert_eq!(
            read_response(&mut stream, &mut Vec::new()).await.status,
            500
        );

        assert_eq!(endpoint.stats().requests, None);
    })
    .await;
}

/// Waits until the connection task has counted `completed` requests. The count is
/// taken when the connection ends, which follows the client's close asynchronously.
async fn wait_for_completed(endpoint: &Endpoint, completed: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while request_stats(endpoint).completed < completed {
        assert!(
            tokio::time::Instant::now() < deadline,
            "completed requests stayed at {} instead of {completed}",
            request_stats(endpoint).completed
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
