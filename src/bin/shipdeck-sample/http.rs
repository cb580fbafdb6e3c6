//! A minimal HTTP/1.1 request reader and response writer over a blocking `TcpStream`.
//!
//! The sample serves a handful of fixed routes and must idle at a few MB of
//! RSS, because benchmarks run hundreds of instances. A thread per connection
//! over std sockets does that with no runtime. It reads request heads and
//! `Content-Length` bodies only, which is all these routes need.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Maximum size of a request head (request line and headers). Larger heads get 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Maximum size of a request body, which is read and discarded. Larger bodies get 413.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Maximum number of header fields in one request. More get 431.
const MAX_HEADERS: usize = 100;

/// How long a kept-alive connection may wait for its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client has to send the rest of a request once its first byte arrived.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long writing a response may block on a client that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head. The body, if any, has already been read and dropped.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Whether the client asked to keep the connection open after this response.
    pub keep_alive: bool,
}

impl Request {
    /// Returns the value of the first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// A request that cannot be served. The server sends `status` and closes the connection.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

impl Rejection {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// The reason no request was read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection or stayed idle past the keep-alive timeout.
    Closed,
    /// The socket failed, or the client closed it in the middle of a request.
    Broken,
    /// The request was malformed or too large.
    Rejected(Rejection),
}

/// A client connection with the bytes read past the end of the previous request.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads the next request head and discards its body.
    pub fn read_request(&mut self) -> Result<Request, ReadError> {
        let head_len = self.read_head()?;
        let head: Vec<u8> = self.buffer.drain(..head_len).collect();

        let (request, content_length) = parse_head(&head).map_err(ReadError::Rejected)?;
        self.discard_body(content_length)?;
        Ok(request)
    }

    /// Fills the buffer until it contains a whole head and returns the head's length.
    fn read_head(&mut self) -> Result<usize, ReadError> {
        let mut deadline = None;

        loop {
            if let Some(end) = find_head_end(&self.buffer) {
                if end > MAX_HEAD_BYTES {
                    return Err(head_too_large());
                }
                return Ok(end);
            }
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(head_too_large());
            }

            let timeout = match deadline {
                None => IDLE_TIMEOUT,
                Some(deadline) => remaining(deadline).ok_or_else(request_timed_out)?,
            };
            let read = self.read_more(timeout);

            match read {
                Ok(0) if self.buffer.is_empty() => return Err(ReadError::Closed),
                Ok(0) => return Err(ReadError::Broken),
                Ok(_) => {
                    deadline.get_or_insert_with(|| Instant::now() + REQUEST_TIMEOUT);
                }
                Err(error) if is_timeout(&error) && self.buffer.is_empty() => {
                    return Err(ReadError::Closed)
                }
                Err(error) if is_timeout(&error) => return Err(request_timed_out()),
                Err(_) => return Err(ReadError::Broken),
            }
        }
    }

    fn discard_body(&mut self, content_length: u64) -> Result<(), ReadError> {
        if content_length > MAX_BODY_BYTES {
            return Err(ReadError::Rejected(Rejection::new(
                413,
                format!("request body of {content_length} bytes is larger than the {MAX_BODY_BYTES} bytes accepted"),
            )));
        }

        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut missing = usize::try_from(content_length).unwrap_or(usize::MAX);

        loop {
            let buffered = missing.min(self.buffer.len());
            self.buffer.drain(..buffered);
            missing -= buffered;
            if missing == 0 {
                return Ok(());
            }

            let timeout = remaining(deadline).ok_or_else(request_timed_out)?;
            match self.read_more(timeout) {
                Ok(0) => return Err(ReadError::Broken),
                Ok(_) => {}
                Err(error) if is_timeout(&error) => return Err(request_timed_out()),
                Err(_) => return Err(ReadError::Broken),
            }
        }
    }

    fn read_more(&mut self, timeout: Duration) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(timeout))?;

        let mut chunk = [0u8; 4096];
        let read = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    /// Closes the connection after a rejection without losing the response.
    ///
    /// Closing a socket that still has unread input makes the kernel send a reset,
    /// and the client may then drop our response unread. Shutting down only our
    /// side and reading what the client still sends, within limits, avoids that.
    pub fn close_gracefully(mut self) {
        const MAX_DRAIN_BYTES: usize = 256 * 1024;
        const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut drained = 0;
        let mut chunk = [0u8; 4096];

        while drained < MAX_DRAIN_BYTES {
            let Some(timeout) = remaining(deadline) else {
                return;
            };
            if self.stream.set_read_timeout(Some(timeout)).is_err() {
                return;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(read) => drained += read,
            }
        }
    }
}

/// Returns the length of the head including its blank line, accepting CRLF or bare LF.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn head_too_large() -> ReadError {
    ReadError::Rejected(Rejection::new(
        431,
        format!("request head is larger than {MAX_HEAD_BYTES} bytes"),
    ))
}

fn request_timed_out() -> ReadError {
    ReadError::Rejected(Rejection::new(
        408,
        format!(
            "request was not complete within {} seconds",
            REQUEST_TIMEOUT.as_secs()
        ),
    ))
}

/// Parses a request head into a request and its `Content-Length`.
pub fn parse_head(head: &[u8]) -> Result<(Request, u64), Rejection> {
    let text = std::str::from_utf8(head)
        .map_err(|_| Rejection::new(400, "request head is not valid UTF-8"))?;
    let mut lines = text.lines();

    let request_line = lines.next().unwrap_or_default();
    let (method, target, version) = parse_request_line(request_line)?;

    let mut headers = Headers::default();
    for line in lines.take_while(|line| !line.is_empty()) {
        headers.add(line)?;
    }
    headers.check(version)?;

    let (path, query) = split_target(target, method)?;
    let request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        keep_alive: headers.keep_alive(version),
    };
    Ok((request, headers.content_length.unwrap_or(0)))
}

fn parse_request_line(line: &str) -> Result<(&str, &str, Version), Rejection> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(Rejection::new(
            400,
            format!("invalid request line {line:?}: expected METHOD TARGET HTTP/1.1"),
        ));
    };

    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Rejection::new(400, format!("invalid method {method:?}")));
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control() || b >= 0x80) {
        return Err(Rejection::new(
            400,
            format!("invalid request target {target:?}"),
        ));
    }

    let version = match version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        other if other.starts_with("HTTP/") => {
            return Err(Rejection::new(
                505,
                format!("HTTP version {other:?} is not supported; use HTTP/1.1 or HTTP/1.0"),
            ))
        }
        other => {
            return Err(Rejection::new(
                400,
                format!("invalid HTTP version {other:?}"),
            ));
        }
    };
    Ok((method, target, version))
}

/// Splits an origin-form or absolute-form target into path and query.
fn split_target<'a>(target: &'a str, method: &str) -> Result<(&'a str, &'a str), Rejection> {
    let origin_form = if target.starts_with('/') {
        target
    } else if target == "*" && method == "OPTIONS" {
        return Ok(("*", ""));
    } else if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |slash| &rest[slash..])
    } else {
        return Err(Rejection::new(
            400,
            format!("invalid request target {target:?}: expected a path starting with /"),
        ));
    };

    let without_fragment = origin_form.split('#').next().unwrap_or_default();
    Ok(without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, "")))
}

/// The header fields that change how a request is framed or answered.
#[derive(Default)]
struct Headers {
    count: usize,
    has_host: bool,
    has_transfer_encoding: bool,
    content_length: Option<u64>,
    connection_close: bool,
    connection_keep_alive: bool,
}

impl Headers {
    fn add(&mut self, line: &str) -> Result<(), Rejection> {
        self.count += 1;
        if self.count > MAX_HEADERS {
            return Err(Rejection::new(
                431,
                format!("request has more than {MAX_HEADERS} header fields"),
            ));
        }
        if line.starts_with([' ', '\t']) {
            return Err(Rejection::new(400, "folded header lines are not allowed"));
        }

        let Some((name, value)) = line.split_once(':') else {
            return Err(Rejection::new(
                400,
                format!("invalid header line {line:?}: missing ':'"),
            ));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Rejection::new(400, format!("invalid header name {name:?}")));
        }

        self.record(&name.to_ascii_lowercase(), value.trim_matches([' ', '\t']))
    }

    fn record(&mut self, name: &str, value: &str) -> Result<(), Rejection> {
        match name {
            "host" => self.has_host = true,
            "transfer-encoding" => self.has_transfer_encoding = true,
            "content-length" => self.set_content_length(value)?,
            "connection" => {
                for option in value.split(',').map(str::trim) {
                    self.connection_close |= option.eq_ignore_ascii_case("close");
                    self.connection_keep_alive |= option.eq_ignore_ascii_case("keep-alive");
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn set_content_length(&mut self, value: &str) -> Result<(), Rejection> {
        let invalid = || Rejection::new(400, format!("invalid Content-Length {value:?}"));
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }

        let length: u64 = value.parse().map_err(|_| invalid())?;
        match self.content_length {
            Some(previous) if previous != length => Err(Rejection::new(
                400,
                format!("conflicting Content-Length values {previous} and {length}"),
            )),
            _ => {
                self.content_length = Some(length);
                Ok(())
            }
        }
    }

    fn check(&self, version: Version) -> Result<(), Rejection> {
        if self.has_transfer_encoding {
            return Err(Rejection::new(
                501,
                "Transfer-Encoding request bodies are not supported; send Content-Length instead",
            ));
        }
        if version == Version::Http11 && !self.has_host {
            return Err(Rejection::new(400, "HTTP/1.1 request has no Host header"));
        }
        Ok(())
    }

    fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::Http11 => !self.connection_close,
            Version::Http10 => self.connection_keep_alive && !self.connection_close,
        }
    }
}

/// Whether `byte` may appear in a method or header name (RFC 9110 `tchar`).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A response ready to be written.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// The `Allow` header of a 405 response.
    pub allow: Option<&'static str>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            allow: None,
        }
    }
}

/// Writes `response`; `include_body` is false for HEAD requests.
pub fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    include_body: bool,
) -> io::Result<()> {
    // RFC 9110 section 6.4.1: 204 and 304 responses have no body, and a 204 has no
    // Content-Length either.
    let has_body = !matches!(response.status, 204 | 304);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
    );
    if response.status != 204 {
        let length = if has_body { response.body.len() } else { 0 };
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    if let Some(allow) = response.allow {
        out.push_str(&format!("Allow: {allow}\r\n"));
    }
    out.push_str("\r\n");
    if include_body && has_body {
        out.push_str(&response.body);
    }

    stream.write_all(out.as_bytes())?;
    stream.flush()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Request, u64), Rejection> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn head_parses_path_query_and_length() {
        let (request, length) =
            parse("POST /exit?code=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
                .expect("valid request");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/exit");
        assert_eq!(request.query_param("code"), Some("3"));
        assert_eq!(length, 5);
        assert!(request.keep_alive);
    }

    #[test]
    fn head_connection_semantics() {
        let (close, _) = parse("GET / HTTP/1.1\nHost: x\nConnection: Close\n\n").expect("valid");
        assert!(!close.keep_alive);

        let (old, _) = parse("GET / HTTP/1.0\r\n\r\n").expect("valid");
        assert!(!old.keep_alive);

        let (old_kept, _) =
            parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").expect("valid");
        assert!(old_kept.keep_alive);
    }

    #[test]
    fn head_absolute_form_target() {
        let (request, _) =
            parse("GET http://h:1/healthz?x HTTP/1.1\r\nHost: h\r\n\r\n").expect("valid");
        assert_eq!(request.path, "/healthz");
        assert_eq!(request.query, "x");
    }

    #[test]
    fn head_rejections() {
        let cases = [
            ("", 400),
            ("GET /\r\n\r\n", 400),
            ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET nope HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("GET / SPDY\r\nHost: x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                400,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                501,
            ),
        ];
        for (text, status) in cases {
            let rejection = parse(text).expect_err(text);
            assert_eq!(rejection.status, status, "{text:?}: {}", rejection.message);
        }
    }

    #[test]
    fn head_rejects_too_many_headers() {
        let mut text = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..MAX_HEADERS {
            text.push_str(&format!("X-{i}: y\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(parse(&text).expect_err("too many").status, 431);
    }

    #[test]
    fn head_end_accepts_crlf_and_lf() {
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\r\n"), None);
    }

    #[test]
    fn query_param_lookup() {
        let (request, _) = parse("GET /?a=1&flag&b=2 HTTP/1.0\r\n\r\n").expect("valid");
        assert_eq!(request.query_param("b"), Some("2"));
        assert_eq!(request.query_param("flag"), Some(""));
        assert_eq!(request.query_param("c"), None);
    }
}
