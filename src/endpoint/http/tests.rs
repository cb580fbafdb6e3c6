use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::endpoint::stats::{RequestCounters, RequestStats};

fn address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// An observer with its own counters and a clock that the test moves.
struct Harness {
    counters: RequestCounters,
    start: Instant,
}

impl Harness {
    fn new() -> Self {
        Harness {
            counters: RequestCounters::default(),
            start: Instant::now(),
        }
    }

    fn observer(&self) -> HttpObserver<'_> {
        HttpObserver::new(&self.counters, address(), address())
    }

    fn at(&self, millis: u64) -> Instant {
        self.start + Duration::from_millis(millis)
    }

    fn stats(&self) -> RequestStats {
        self.counters.snapshot()
    }
}

/// Feeds all of `requests`, then all of `responses`, each in one chunk, and returns
/// the counts and whether the connection stayed countable.
fn exchange(requests: &[u8], responses: &[u8]) -> (u64, u64, bool) {
    let harness = Harness::new();
    let mut observer = harness.observer();
    observer.on_request_bytes(requests, harness.at(0));
    observer.on_response_bytes(responses, harness.at(1));
    let opaque = observer.is_opaque();
    let stats = harness.stats();
    (stats.completed, stats.failed, !opaque)
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";

fn response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Reason\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn keep_alive_sequence() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    for (step, status) in [200u16, 500, 404].into_iter().enumerate() {
        let sent = step as u64 * 10;
        observer.on_request_bytes(GET, harness.at(sent));
        observer.on_response_bytes(&response(status, "hello"), harness.at(sent + 2));
    }

    let stats = harness.stats();
    assert!(!observer.is_opaque());
    assert_eq!(stats.completed, 3);
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.response_time.count(), 3);
    assert_eq!(stats.response_time.sum_micros, 6000);
}

#[test]
fn pipelined_requests_matched_in_order() {
    let requests = [GET, b"HEAD / HTTP/1.1\r\n\r\n", GET].concat();
    // The HEAD response announces a body it does not send, as HEAD responses do.
    let responses = [
        response(200, "one"),
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n".to_vec(),
        response(503, "three"),
    ]
    .concat();

    assert_eq!(exchange(&requests, &responses), (3, 1, true));
}

#[test]
fn pipelined_response_times_start_at_each_request() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(GET, harness.at(0));
    observer.on_request_bytes(GET, harness.at(4));
    observer.on_response_bytes(
        &[response(200, "a"), response(200, "b")].concat(),
        harness.at(10),
    );

    let stats = harness.stats();
    assert_eq!(stats.completed, 2);
    assert_eq!(stats.response_time.sum_micros, 10_000 + 6_000);
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let post = b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        4;name=value\r\nWiki\r\n5 ; quoted=\"a;b\"\r\npedia\r\n0\r\nExpires: never\r\nX-Sum: 9\r\n\r\n";
    let requests = [&post[..], GET].concat();
    let chunked = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
        A\r\n0123456789\r\n0;last\r\nTrailer-Field: x\r\n\r\n";
    let responses = [&chunked[..], &response(200, "ok")].concat();

    assert_eq!(exchange(&requests, &responses), (2, 1, true));
}

#[test]
fn chunked_body_with_bare_line_feeds() {
    let requests = [GET, GET].concat();
    let chunked = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
    let responses = [&chunked[..], &response(200, "ok")].concat();

    assert_eq!(exchange(&requests, &responses), (2, 0, true));
}

#[test]
fn head_response_has_no_body() {
    let requests = [b"HEAD /file HTTP/1.1\r\n\r\n".as_slice(), GET].concat();
    let head_response = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    let chunked_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let responses = [&head_response[..], &response(200, "x")].concat();

    assert_eq!(exchange(&requests, &responses), (2, 0, true));
    let responses = [&chunked_head[..], &response(200, "x")].concat();
    assert_eq!(exchange(&requests, &responses), (2, 0, true));
}

#[test]
fn no_body_for_204_and_304() {
    let requests = [GET, GET, GET].concat();
    let responses = [
        b"HTTP/1.1 204 No Content\r\n\r\n".as_slice(),
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        &response(200, "fresh"),
    ]
    .concat();

    assert_eq!(exchange(&requests, &responses), (3, 0, true));
}

#[test]
fn continue_is_interim() {
    let harness = Harness::new();
    let mut observer = harness.observer();
    let head = b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

    observer.on_request_bytes(head, harness.at(0));
    observer.on_response_bytes(b"HTTP/1.1 100 Continue\r\n\r\n", harness.at(1));
    assert_eq!(
        harness.stats().completed,
        0,
        "100 Continue completes nothing"
    );

    observer.on_request_bytes(b"hello", harness.at(2));
    observer.on_response_bytes(&response(201, ""), harness.at(3));
    observer.on_request_bytes(GET, harness.at(4));
    observer.on_response_bytes(&response(200, "ok"), harness.at(5));

    let stats = harness.stats();
    assert!(!observer.is_opaque());
    assert_eq!(stats.completed, 2);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.response_time.sum_micros, 3000 + 1000);
}

#[test]
fn body_until_close_ends_with_backend() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(GET, harness.at(0));
    observer.on_response_bytes(b"HTTP/1.1 200 OK\r\n\r\nfirst part ", harness.at(1));
    observer.on_response_bytes(b"HTTP/1.1 200 looks like a head", harness.at(2));
    assert_eq!(harness.stats().completed, 0);

    observer.on_backend_end(harness.at(7));
    observer.finish(Ending::Closed);

    let stats = harness.stats();
    assert_eq!(stats.completed, 1);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.response_time.sum_micros, 7000);
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(b"GET / HTTP/1.0\r\n\r\n", harness.at(0));
    observer.on_response_bytes(b"HTTP/1.0 200 OK\r\n\r\nuntil close", harness.at(1));
    // Bytes after a closing request are not requests of this connection.
    observer.on_request_bytes(b"garbage that is never parsed", harness.at(2));
    observer.on_backend_end(harness.at(3));
    observer.finish(Ending::Closed);

    assert_eq!(harness.stats().completed, 1);
    assert_eq!(harness.stats().failed, 0);
}

#[test]
fn http_1_0_keep_alive_continues() {
    let request = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let answer = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok";

    let requests = [&request[..], request].concat();
    let responses = [&answer[..], answer].concat();
    assert_eq!(exchange(&requests, &responses), (2, 0, true));
}

#[test]
fn connection_close_ends_counting_of_later_bytes() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        harness.at(0),
    );
    observer.on_request_bytes(GET, harness.at(1));
    observer.on_response_bytes(&response(200, "bye"), harness.at(2));
    observer.on_backend_end(harness.at(3));
    observer.finish(Ending::Closed);

    assert_eq!(harness.stats().completed, 1);
    assert_eq!(harness.stats().failed, 0);
}

#[test]
fn closing_response_ignores_later_bytes() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(&[GET, GET].concat(), harness.at(0));
    observer.on_response_bytes(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nstray bytes",
        harness.at(1),
    );
    assert!(!observer.is_opaque());
    observer.on_backend_end(harness.at(2));
    observer.finish(Ending::Closed);

    let stats = harness.stats();
    assert_eq!(stats.completed, 2);
    assert_eq!(stats.failed, 1, "the second request got no response");
}

#[test]
fn upgrade_switches_to_opaque() {
    let harness = Harness::new();
    let mut observer = harness.observer();
    let upgrade = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

    observer.on_request_bytes(upgrade, harness.at(0));
    observer.on_response_bytes(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
        harness.at(1),
    );
    observer.on_request_bytes(b"\x81\x85masked frame", harness.at(2));
    observer.on_response_bytes(b"HTTP/1.1 500 not a response\r\n\r\n", harness.at(3));
    assert!(observer.is_opaque());
    observer.finish(Ending::Closed);

    let stats = harness.stats();
    assert_eq!(stats.completed, 1, "the handshake counts once");
    assert_eq!(stats.failed, 0);
}

#[test]
fn refused_upgrade_keeps_counting() {
    let upgrade = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(upgrade, harness.at(0));
    observer.on_response_bytes(&response(426, "no"), harness.at(1));
    observer.on_request_bytes(GET, harness.at(2));
    observer.on_response_bytes(&response(200, "ok"), harness.at(3));

    assert!(!observer.is_opaque());
    assert_eq!(harness.stats().completed, 2);
}

#[test]
fn bytes_before_upgrade_answer_go_opaque_on_refusal() {
    let upgrade = b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(upgrade, harness.at(0));
    observer.on_request_bytes(GET, harness.at(1));
    observer.on_response_bytes(&response(400, "no"), harness.at(2));

    assert!(observer.is_opaque());
    assert_eq!(harness.stats().completed, 1);
}

#[test]
fn connect_tunnel_switches_to_opaque() {
    let connect = b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n";
    let (completed, failed, countable) = exchange(
        connect,
        b"HTTP/1.1 200 Connection Established\r\n\r\nraw tunnel bytes",
    );

    assert_eq!((completed, failed), (1, 0));
    assert!(!countable);
}

#[test]
fn garbage_switches_to_opaque() {
    let cases: [&[u8]; 4] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    ];
    for garbage in cases {
        let harness = Harness::new();
        let mut observer = harness.observer();
        observer.on_request_bytes(garbage, harness.at(0));
        observer.on_response_bytes(&response(500, "x"), harness.at(1));
        observer.on_backend_end(harness.at(2));
        assert!(
            observer.is_opaque(),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
        observer.finish(Ending::Closed);
        assert_eq!(harness.stats().completed, 0);
    }
}

#[test]
fn invalid_framing_switches_to_opaque() {
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"",
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", b""),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"",
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b""),
        (
            GET,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
        ),
        (GET, b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n"),
    ];
    for (requests, responses) in cases {
        let (_, _, countable) = exchange(requests, responses);
        assert!(
            !countable,
            "{:?} / {:?}",
            String::from_utf8_lossy(requests),
            String::from_utf8_lossy(responses)
        );
    }
}

#[test]
fn head_over_cap_switches_to_opaque() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(b"GET / HTTP/1.1\r\nX-Large: ", harness.at(0));
    let filler = [b'a'; 1000];
    for _ in 0..MAX_HEAD_BYTES / filler.len() + 1 {
        observer.on_request_bytes(&filler, harness.at(0));
    }

    assert!(observer.is_opaque());
}

#[test]
fn large_head_under_cap_is_counted() {
    let header = format!("X-Large: {}\r\n", "a".repeat(MAX_HEAD_BYTES - 100));
    let request = format!("GET / HTTP/1.1\r\n{header}\r\n").into_bytes();
    let harness = Harness::new();
    let mut observer = harness.observer();

    for piece in request.chunks(1000) {
        observer.on_request_bytes(piece, harness.at(0));
    }
    observer.on_response_bytes(&response(200, "ok"), harness.at(1));

    assert!(!observer.is_opaque());
    assert_eq!(harness.stats().completed, 1);
}

#[test]
fn response_without_request_switches_to_opaque() {
    let (completed, _, countable) = exchange(b"", &response(408, "timeout"));

    assert_eq!(completed, 0);
    assert!(!countable);
}

#[test]
fn pipelining_beyond_limit_switches_to_opaque() {
    let requests = GET.repeat(MAX_PIPELINED + 1);
    let (_, _, countable) = exchange(&requests, b"");

    assert!(!countable);
}

#[test]
fn empty_lines_between_requests_are_skipped() {
    let requests = [GET, b"\r\n", GET].concat();
    let responses = [response(200, "a"), response(200, "b")].concat();

    assert_eq!(exchange(&requests, &responses), (2, 0, true));
}

#[test]
fn backend_close_fails_waiting_requests() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(&[GET, GET, b"GET /partial"].concat(), harness.at(0));
    observer.on_response_bytes(&response(200, "one"), harness.at(1));
    observer.on_response_bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        harness.at(2),
    );
    observer.on_backend_end(harness.at(3));
    observer.finish(Ending::Closed);

    let stats = harness.stats();
    assert_eq!(stats.completed, 2, "the incomplete head is not a request");
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.response_time.count(), 1);
}

#[test]
fn client_failure_leaves_waiting_requests_uncounted() {
    let harness = Harness::new();
    let mut observer = harness.observer();

    observer.on_request_bytes(GET, harness.at(0));
    observer.on_client_error();
    observer.finish(Ending::Failed);

    assert_eq!(harness.stats().completed, 0);
}

#[test]
fn backend_failure_fails_waiting_requests() {
    for ending in [Ending::Failed, Ending::ForceClosed] {
        let harness = Harness::new();
        let mut observer = harness.observer();

        observer.on_request_bytes(GET, harness.at(0));
        observer.on_backend_error();
        observer.finish(ending);

        let stats = harness.stats();
        assert_eq!((stats.completed, stats.failed), (1, 1), "{ending:?}");
    }
}

/// One request and its response, as a client and a server would send them.
#[derive(Debug, Clone, Copy)]
enum Template {
    Get(u16),
    Head,
    NoContent,
    NotModified,
    ChunkedPost,
    Continue,
}

impl Template {
    fn request(self) -> Vec<u8> {
        match self {
            Template::Get(_) | Template::NoContent | Template::NotModified => GET.to_vec(),
            Template::Head => b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Template::ChunkedPost => b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n"
                .to_vec(),
            Template::Continue => {
                b"PUT /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody".to_vec()
            }
        }
    }

    fn response(self) -> Vec<u8> {
        match self {
            Template::Get(status) => response(status, "some body text"),
            Template::Head => b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n".to_vec(),
            Template::NoContent => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            Template::NotModified => b"HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n".to_vec(),
            Template::ChunkedPost => {
                b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n0\r\n\r\n"
                    .to_vec()
            }
            Template::Continue => [
                b"HTTP/1.1 100 Continue\r\n\r\n".as_slice(),
                &response(201, "made"),
            ]
            .concat(),
        }
    }

    fn fails(self) -> bool {
        matches!(self, Template::Get(500..) | Template::ChunkedPost)
    }
}

fn template() -> impl Strategy<Value = Template> {
    prop_oneof![
        prop_oneof![Just(200u16), Just(404), Just(500), Just(503)].prop_map(Template::Get),
        Just(Template::Head),
        Just(Template::NoContent),
        Just(Template::NotModified),
        Just(Template::ChunkedPost),
        Just(Template::Continue),
    ]
}

/// Splits `bytes` at the given points (taken modulo its length).
fn split_at_points(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = points
        .iter()
        .map(|point| point % (bytes.len() + 1))
        .collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|pair| bytes[pair[0]..pair[1]].to_vec())
        .collect()
}

proptest! {
    #[test]
    fn split_points_do_not_change_counts(
        templates in prop::collection::vec(template(), 1..12),
        request_points in prop::collection::vec(any::<usize>(), 0..40),
        response_points in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let requests: Vec<u8> = templates.iter().flat_map(|t| t.request()).collect();
        let responses: Vec<u8> = templates.iter().flat_map(|t| t.response()).collect();
        let expected_failed = templates.iter().filter(|t| t.fails()).count() as u64;

        let harness = Harness::new();
        let mut observer = harness.observer();
        for piece in split_at_points(&requests, &request_points) {
            observer.on_request_bytes(&piece, harness.at(0));
        }
        for piece in split_at_points(&responses, &response_points) {
            observer.on_response_bytes(&piece, harness.at(1));
        }
        prop_assert!(!observer.is_opaque());
        observer.finish(Ending::Closed);

        let stats = harness.stats();
        prop_assert_eq!(stats.completed, templates.len() as u64);
        prop_assert_eq!(stats.failed, expected_failed);
        prop_assert_eq!(stats.response_time.count(), templates.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        requests in prop::collection::vec(any::<u8>(), 0..2048),
        responses in prop::collection::vec(any::<u8>(), 0..2048),
        points in prop::collection::vec(any::<usize>(), 0..16),
        prefix in prop_oneof![Just(&b""[..]), Just(GET), Just(&b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..])],
    ) {
        let harness = Harness::new();
        let mut observer = harness.observer();
        let requests = [prefix, &requests].concat();
        let responses = [&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..], &responses].concat();
        let request_pieces = split_at_points(&requests, &points);
        let response_pieces = split_at_points(&responses, &points);

        for (request, response) in request_pieces.iter().zip(&response_pieces) {
            observer.on_request_bytes(request, harness.at(0));
            observer.on_response_bytes(response, harness.at(1));
        }
        observer.on_backend_end(harness.at(2));
        observer.finish(Ending::Closed);

        let stats = harness.stats();
        prop_assert!(stats.failed <= stats.completed);
    }
}
