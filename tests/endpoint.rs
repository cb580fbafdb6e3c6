//! Tests of the stable endpoint against real TCP servers on 127.0.0.1. Each test binds
//! its own ports from port 0 and ends within `TEST_LIMIT`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shipdeck::endpoint::{Backend, Endpoint, EndpointConfig, EndpointError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Upper bound of any single test, so a hang fails instead of blocking the suite.
const TEST_LIMIT: Duration = Duration::from_secs(30);

/// How long a check waits for a state that the endpoint reaches asynchronously.
const PATIENCE: Duration = Duration::from_secs(5);

/// A backend server: it sends its id and a newline on connect, echoes every byte, and
/// after the client's end of stream sends "bye\n" and closes. Dropping it closes the
/// listener and every connection.
struct IdServer {
    id: u64,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for IdServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IdServer {
    async fn start(id: u64) -> IdServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a backend server on 127.0.0.1");
        let addr = listener.local_addr().expect("backend server address");
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                while connections.try_join_next().is_some() {}
                if let Ok((stream, _)) = listener.accept().await {
                    connections.spawn(serve_id(stream, id));
                }
            }
        });
        IdServer { id, addr, task }
    }

    fn backend(&self) -> Backend {
        Backend {
            id: self.id,
            addr: self.addr,
        }
    }
}

async fn serve_id(mut stream: TcpStream, id: u64) {
    let _ = stream.write_all(format!("{id}\n").as_bytes()).await;
    let (mut reader, mut writer) = stream.split();
    let _ = tokio::io::copy(&mut reader, &mut writer).await;
    let _ = writer.write_all(b"bye\n").await;
    let _ = writer.shutdown().await;
}

/// Runs a test body with the overall time limit.
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test finished within its time limit");
}

async fn bind_endpoint() -> Endpoint {
    bind_endpoint_with(EndpointConfig::default()).await
}

async fn bind_endpoint_with(config: EndpointConfig) -> Endpoint {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    Endpoint::bind_with_config(loopback, config)
        .await
        .expect("bind an endpoint on 127.0.0.1")
}

/// Connects through the endpoint and reads the id line that the backend sends first.
async fn connect(endpoint: &Endpoint) -> (TcpStream, u64) {
    let mut stream = TcpStream::connect(endpoint.local_addr())
        .await
        .expect("connect to the endpoint");
    let id = read_id(&mut stream).await;
    (stream, id)
}

async fn read_id(stream: &mut TcpStream) -> u64 {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("backend id arrived in time")
            .expect("read the backend id");
        assert_eq!(read, 1, "connection closed before the backend id arrived");
        line.push(byte[0]);
    }
    let text = std::str::from_utf8(&line).expect("backend id is UTF-8");
    text.trim().parse().expect("backend id is a number")
}

/// Sends `message` and checks that it comes back.
async fn assert_echo(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).await.expect("send the message");
    let mut echoed = vec![0u8; message.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut echoed))
        .await
        .expect("echo arrived in time")
        .expect("read the echo");
    assert_eq!(echoed, message);
}

/// Reads until the peer closes and returns what arrived; a reset also counts as closed.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut received))
        .await
        .expect("connection closed in time");
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }
    received
}

async fn wait_until(description: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting until {description}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_until_idle(endpoint: &Endpoint) {
    wait_until("the endpoint has no open connection", || {
        endpoint.stats().active == 0
    })
    .await;
}

/// Returns an address on 127.0.0.1 where nothing listens. Another test could bind the
/// port in between, which would make the dead-backend tests fail rather than pass wrongly.
fn closed_port_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("ephemeral port address")
}

fn backend_active(endpoint: &Endpoint, id: u64) -> u64 {
    endpoint
        .stats()
        .backends
        .iter()
        .filter(|backend| backend.id == id)
        .map(|backend| backend.active)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_connections_spread_evenly() {
    bounded(async {
        let servers = [
            IdServer::start(1).await,
            IdServer::start(2).await,
            IdServer::start(3).await,
        ];
        let endpoint = bind_endpoint().await;
        endpoint.set_backends(servers.iter().map(IdServer::backend));

        let mut counts = [0usize; 3];
        for _ in 0..30 {
            let (stream, id) = connect(&endpoint).await;
            counts[id as usize - 1] += 1;
            drop(stream);
            wait_until_idle(&endpoint).await;
        }

        // Every backend is idle at each connect, so the tie rule alone decides: turns.
        assert_eq!(counts, [10, 10, 10]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_connections_prefer_least_loaded() {
    bounded(async {
        let servers = [
            IdServer::start(1).await,
            IdServer::start(2).await,
            IdServer::start(3).await,
        ];
        let endpoint = bind_endpoint().await;
        endpoint.set_backends(servers.iter().map(IdServer::backend));

        let mut open_connections = Vec::new();
        for _ in 0..3 {
            open_connections.push(connect(&endpoint).await);
        }
        let first_round: Vec<u64> = open_connections.iter().map(|(_, id)| *id).collect();
        assert_eq!(first_round, vec![1, 2, 3]);

        // Backend 1 keeps its connection, so it has more than 2 and 3 from here on.
        open_connections.retain(|(_, id)| *id == 1);
        wait_until("backends 2 and 3 are idle", || {
            backend_active(&endpoint, 2) == 0 && backend_active(&endpoint, 3) == 0
        })
        .await;

        let (_second, second_id) = connect(&endpoint).await;
        let (_third, third_id) = connect(&endpoint).await;
        let mut next_ids = vec![second_id, third_id];
        next_ids.sort_unstable();
        assert_eq!(next_ids, vec![2, 3]);

        assert_eq!(backend_active(&endpoint, 1), 1);
        assert_eq!(backend_active(&endpoint, 2), 1);
        assert_eq!(backend_active(&endpoint, 3), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_backend_is_skipped() {
    bounded(async {
        let live = IdServer::start(2).await;
        let dead = Backend {
            id: 1,
            addr: closed_port_address(),
        };
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([dead, live.backend()]);

        for _ in 0..4 {
            let (mut stream, id) = connect(&endpoint).await;
            assert_eq!(id, 2);
            assert_echo(&mut stream, b"still served").await;
        }

        let stats = endpoint.stats();
        assert_eq!(stats.failed_connect, 0);
        let dead_stats = stats
            .backends
            .iter()
            .find(|backend| backend.id == 1)
            .unwrap();
        assert!(dead_stats.connect_failures >= 1, "{dead_stats:?}");
        assert_eq!(dead_stats.connections, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_backends_dead_closes_client() {
    bounded(async {
        let dead = [
            Backend {
                id: 1,
                addr: closed_port_address(),
            },
            Backend {
                id: 2,
                addr: closed_port_address(),
            },
        ];
        let endpoint = bind_endpoint().await;
        endpoint.set_backends(dead);

        let mut stream = TcpStream::connect(endpoint.local_addr()).await.unwrap();
        let received = read_until_closed(&mut stream).await;

        assert!(received.is_empty());
        wait_until_idle(&endpoint).await;
        let stats = endpoint.stats();
        assert_eq!(stats.failed_connect, 1);
        let failures: u64 = stats
            .backends
            .iter()
            .map(|backend| backend.connect_failures)
            .sum();
        assert_eq!(failures, 2, "each backend was tried once: {stats:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_change_keeps_listener_and_old_connections() {
    bounded(async {
        let old = IdServer::start(1).await;
        let new = [IdServer::start(2).await, IdServer::start(3).await];
        let endpoint = bind_endpoint().await;
        let address = endpoint.local_addr();
        endpoint.set_backends([old.backend()]);
        let (mut old_stream, old_id) = connect(&endpoint).await;
        assert_eq!(old_id, 1);

        endpoint.set_backends(new.iter().map(IdServer::backend));

        assert_eq!(endpoint.local_addr(), address);
        for _ in 0..6 {
            let (stream, id) = connect(&endpoint).await;
            assert!(
                id == 2 || id == 3,
                "new connection went to removed backend {id}"
            );
            drop(stream);
        }
        assert_echo(&mut old_stream, b"old connection still works").await;
        let removed = endpoint
            .stats()
            .backends
            .into_iter()
            .find(|backend| backend.id == 1);
        assert!(!removed.unwrap().in_rotation);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_open_connection() {
    bounded(async {
        let leaving = IdServer::start(1).await;
        let staying = IdServer::start(2).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([leaving.backend(), staying.backend()]);
        let (mut stream, id) = connect(&endpoint).await;
        assert_eq!(id, 1);

        let drain = tokio::spawn(endpoint.drain(1, Duration::from_secs(20)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !drain.is_finished(),
            "drain completed while a connection was open"
        );

        assert_echo(&mut stream, b"served while draining").await;
        for _ in 0..3 {
            let (_other, other_id) = connect(&endpoint).await;
            assert_eq!(other_id, 2, "a draining backend took a new connection");
        }

        drop(stream);
        let report = tokio::time::timeout(PATIENCE, drain)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.forced_closed, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_closes_connection_after_grace() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);
        let (mut stream, _) = connect(&endpoint).await;

        let started = Instant::now();
        let report = endpoint.drain(1, Duration::from_millis(300)).await;

        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(report.forced_closed, 1);
        assert!(read_until_closed(&mut stream).await.is_empty());
        assert_eq!(backend_active(&endpoint, 1), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_of_idle_backend_completes_at_once() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);

        let report = tokio::time::timeout(
            Duration::from_secs(1),
            endpoint.drain(1, Duration::from_secs(20)),
        )
        .await
        .expect("drain without connections completed at once");

        assert_eq!(report.forced_closed, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_waits_for_backend_to_appear() {
    bounded(async {
        let server = IdServer::start(7).await;
        let endpoint = bind_endpoint_with(EndpointConfig {
            backend_wait: Duration::from_secs(10),
            ..EndpointConfig::default()
        })
        .await;

        let address = endpoint.local_addr();
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            read_id(&mut stream).await
        });
        wait_until("the client is accepted", || endpoint.stats().accepted == 1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!client.is_finished());

        endpoint.set_backends([server.backend()]);

        assert_eq!(client.await.unwrap(), 7);
        assert_eq!(endpoint.stats().failed_no_backend, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_closed_when_no_backend_appears() {
    bounded(async {
        let wait = Duration::from_millis(300);
        let endpoint = bind_endpoint_with(EndpointConfig {
            backend_wait: wait,
            ..EndpointConfig::default()
        })
        .await;

        let started = Instant::now();
        let mut stream = TcpStream::connect(endpoint.local_addr()).await.unwrap();
        let received = read_until_closed(&mut stream).await;

        assert!(received.is_empty());
        assert!(
            started.elapsed() >= wait,
            "closed after {:?}",
            started.elapsed()
        );
        wait_until_idle(&endpoint).await;
        assert_eq!(endpoint.stats().failed_no_backend, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_still_gets_reply() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);
        let (mut stream, _) = connect(&endpoint).await;

        stream.write_all(b"ping").await.unwrap();
        stream.shutdown().await.unwrap();
        let received = read_until_closed(&mut stream).await;

        // The server writes "bye" only after reading the client's end of stream.
        assert_eq!(received, b"pingbye\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_connections_and_bytes() {
    bounded(async {
        let server = IdServer::start(4).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);

        let (mut stream, _) = connect(&endpoint).await;
        let open = endpoint.stats();
        assert_eq!(open.active, 1);
        assert_eq!(open.backends[0].active, 1);

        stream.write_all(b"hello").await.unwrap();
        stream.shutdown().await.unwrap();
        let received = read_until_closed(&mut stream).await;
        assert_eq!(received, b"hellobye\n");
        drop(stream);
        wait_until_idle(&endpoint).await;

        let stats = endpoint.stats();
        assert_eq!(stats.address, endpoint.local_addr());
        assert_eq!(stats.accepted, 1);
        assert_eq!(stats.active, 0);
        assert_eq!(stats.failed_no_backend, 0);
        assert_eq!(stats.failed_connect, 0);
        assert_eq!(stats.bytes_in, 5);
        // "4\n" on connect, the echo of "hello", then "bye\n".
        assert_eq!(stats.bytes_out, 2 + 5 + 4);

        let backend = &stats.backends[0];
        assert_eq!(backend.id, 4);
        assert_eq!(backend.address, server.addr);
        assert!(backend.in_rotation);
        assert_eq!(backend.connections, 1);
        assert_eq!(backend.active, 0);
        assert_eq!(backend.connect_failures, 0);
        assert_eq!(backend.bytes_in, 5);
        assert_eq!(backend.bytes_out, 11);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_reports_port_in_use() {
    bounded(async {
        let occupying_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = occupying_listener.local_addr().unwrap();

        let error = Endpoint::bind(address).await.unwrap_err();

        assert!(
            matches!(error, EndpointError::AddressInUse { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&address.port().to_string()), "{message}");
        assert!(message.contains("already in use"), "{message}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_accepting_and_frees_port() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        let address = endpoint.local_addr();
        endpoint.set_backends([server.backend()]);
        let (mut stream, _) = connect(&endpoint).await;

        let closing = tokio::spawn({
            let endpoint = endpoint.clone();
            async move { endpoint.close(Duration::from_secs(20)).await }
        });
        wait_until("the port is free", || {
            std::net::TcpStream::connect(address).is_err()
        })
        .await;
        assert_echo(&mut stream, b"open connection continues").await;
        assert!(!closing.is_finished());

        drop(stream);
        let report = tokio::time::timeout(PATIENCE, closing)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.forced_closed, 0);
        let rebound = Endpoint::bind(address).await;
        assert!(rebound.is_ok(), "{:?}", rebound.err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_connections_after_grace() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);
        let (mut stream, _) = connect(&endpoint).await;

        let report = endpoint.close(Duration::from_millis(200)).await;

        assert_eq!(report.forced_closed, 1);
        assert!(read_until_closed(&mut stream).await.is_empty());
        assert_eq!(endpoint.stats().active, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_readded_after_removal_takes_connections() {
    bounded(async {
        let first = IdServer::start(1).await;
        let second = IdServer::start(2).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([first.backend(), second.backend()]);
        endpoint.drain(1, Duration::from_secs(1)).await;

        endpoint.set_backends([first.backend(), second.backend()]);

        let mut ids = Vec::new();
        for _ in 0..2 {
            let (stream, id) = connect(&endpoint).await;
            ids.push(id);
            drop(stream);
            wait_until_idle(&endpoint).await;
        }
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_spares_connections_after_readd() {
    bounded(async {
        let server = IdServer::start(1).await;
        let endpoint = bind_endpoint().await;
        endpoint.set_backends([server.backend()]);
        let (mut before_drain, _) = connect(&endpoint).await;

        let drain = tokio::spawn(endpoint.drain(1, Duration::from_millis(300)));
        endpoint.set_backends([server.backend()]);
        let (mut after_readd, id) = connect(&endpoint).await;
        assert_eq!(id, 1);

        let report = tokio::time::timeout(PATIENCE, drain)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.forced_closed, 1);
        assert!(read_until_closed(&mut before_drain).await.is_empty());
        assert_echo(&mut after_readd, b"made after the drain began").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_endpoint_stops_accepting() {
    bounded(async {
        let endpoint = bind_endpoint().await;
        let address = endpoint.local_addr();

        drop(endpoint);

        wait_until("the port is free", || {
            std::net::TcpStream::connect(address).is_err()
        })
        .await;
    })
    .await;
}
