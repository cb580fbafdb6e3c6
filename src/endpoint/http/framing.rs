//! HTTP/1.1 message framing as RFC 9112 defines it: where a head ends, what its header
//! fields say about the body, and where a body ends.

use std::mem::MaybeUninit;

use super::Opaque;

/// Maximum size of one request or response head. Larger heads switch the connection to
/// opaque mode, which bounds the memory of each connection.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Maximum header fields in one head, as in hyper's default.
const MAX_HEADERS: usize = 100;

/// A head buffer that grew beyond this is freed once its head is parsed, so one large
/// head does not keep its memory for the life of a keep-alive connection.
const RETAINED_HEAD_CAPACITY: usize = 4096;

/// Progress of [`HeadBuffer::scan`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadScan {
    /// The head ends after this many bytes of the chunk.
    Complete(usize),
    /// The whole chunk belongs to a head that has not ended yet.
    Partial,
    /// The head is longer than [`MAX_HEAD_BYTES`].
    TooLarge,
}

/// Bytes of a head that arrived in more than one chunk. A head that arrives whole in one
/// chunk is parsed in place and never copied.
#[derive(Debug, Default)]
pub(crate) struct HeadBuffer {
    bytes: Vec<u8>,
}

impl HeadBuffer {
    /// Returns whether part of a head has arrived.
    pub(crate) fn is_started(&self) -> bool {
        !self.bytes.is_empty()
    }

    /// Looks for the end of the head in `chunk`, keeping the bytes before it when the
    /// head has not ended. Each byte is scanned once, so a head split into many small
    /// chunks costs linear time.
    pub(crate) fn scan(&mut self, chunk: &[u8]) -> HeadScan {
        if self.bytes.is_empty() {
            if let Some(end) = find_head_end(chunk, 0) {
                return if end > MAX_HEAD_BYTES {
                    HeadScan::TooLarge
                } else {
                    HeadScan::Complete(end)
                };
            }
        }

        let before = self.bytes.len();
        let room = MAX_HEAD_BYTES - before;
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        match find_head_end(&self.bytes, before) {
            Some(end) => {
                self.bytes.truncate(end);
                HeadScan::Complete(end - before)
            }
            None if chunk.len() >= room => HeadScan::TooLarge,
            None => HeadScan::Partial,
        }
    }

    /// Returns the complete head after [`HeadBuffer::scan`] returned `Complete(used)` for `chunk`.
    pub(crate) fn head<'c>(&'c self, chunk: &'c [u8], used: usize) -> &'c [u8] {
        if self.bytes.is_empty() {
            &chunk[..used]
        } else {
            &self.bytes
        }
    }

    pub(crate) fn clear(&mut self) {
        if self.bytes.capacity() > RETAINED_HEAD_CAPACITY {
            self.bytes = Vec::new();
        } else {
            self.bytes.clear();
        }
    }
}

/// Returns the index after the empty line that ends a head, searching line feeds at
/// `from` or later. Bare LF line endings count, as RFC 9112 section 2.2 lets recipients
/// accept them.
fn find_head_end(bytes: &[u8], from: usize) -> Option<usize> {
    memchr::memchr_iter(b'\n', &bytes[from..])
        .map(|offset| from + offset)
        .find(|&lf| {
            let before = &bytes[..lf];
            before.ends_with(b"\n") || before.ends_with(b"\n\r")
        })
        .map(|lf| lf + 1)
}

/// Returns how many of the leading bytes are CR or LF. RFC 9112 section 2.2 lets
/// servers ignore empty lines before a request line, which some clients send after
/// a body.
pub(crate) fn leading_empty_lines(chunk: &[u8]) -> usize {
    chunk
        .iter()
        .take_while(|byte| matches!(byte, b'\r' | b'\n'))
        .count()
}

/// Request properties read from a request head, and its body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    pub(crate) keep_alive: bool,
    /// Whether the request is a request to leave HTTP: `CONNECT`, or `Upgrade` listed in `Connection`.
    pub(crate) wants_switch: bool,
    pub(crate) body: Body,
}

/// The request methods whose responses are framed differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Head,
    Connect,
    Other,
}

/// Response properties read from a response head. The body framing depends on the
/// request too, so [`ResponseHead::body`] computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) keep_alive: bool,
    fields: Fields,
}

impl ResponseHead {
    /// Returns the body framing of a final (non-1xx) response to a `method` request,
    /// following RFC 9112 section 6.3.
    pub(crate) fn body(&self, method: Method) -> Result<Body, Opaque> {
        if method == Method::Head || self.status == 204 || self.status == 304 {
            return Ok(Body::Length(0));
        }
        match self.fields.transfer_encoding {
            TransferEncoding::Chunked => Ok(Body::Chunked(ChunkedDecoder::default())),
            // A response without chunked as its final coding ends when the connection closes.
            TransferEncoding::Other => Ok(Body::UntilClose),
            TransferEncoding::None => match self.fields.content_length {
                ContentLength::Valid(length) => Ok(Body::Length(length)),
                ContentLength::Invalid => Err(Opaque::InvalidContentLength),
                ContentLength::Absent => Ok(Body::UntilClose),
            },
        }
    }
}

/// Parses a complete request head.
pub(crate) fn parse_request_head(head: &[u8]) -> Result<RequestHead, Opaque> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(head, &mut headers) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Opaque::UnterminatedHead),
        Err(error) => return Err(Opaque::InvalidRequestHead(error)),
    }

    let method = match request.method {
        Some("HEAD") => Method::Head,
        Some("CONNECT") => Method::Connect,
        _ => Method::Other,
    };
    let fields = Fields::read(request.headers);
    let keep_alive = fields.keep_alive(request.version.unwrap_or(1));
    let wants_switch = method == Method::Connect || (fields.upgrade && fields.connection_upgrade);

    let body = match (fields.transfer_encoding, fields.content_length) {
        (TransferEncoding::Chunked, _) => Body::Chunked(ChunkedDecoder::default()),
        // RFC 9112 section 6.3: a server cannot find the end of such a request.
        (TransferEncoding::Other, _) => return Err(Opaque::UnframedRequestBody),
        (TransferEncoding::None, ContentLength::Valid(length)) => Body::Length(length),
        (TransferEncoding::None, ContentLength::Invalid) => {
            return Err(Opaque::InvalidContentLength)
        }
        (TransferEncoding::None, ContentLength::Absent) => Body::Length(0),
    };

    Ok(RequestHead {
        method,
        keep_alive,
        wants_switch,
        body,
    })
}

/// Parses a complete response head.
pub(crate) fn parse_response_head(head: &[u8]) -> Result<ResponseHead, Opaque> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        head,
        &mut headers,
    );
    match parsed {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Opaque::UnterminatedHead),
        Err(error) => return Err(Opaque::InvalidResponseHead(error)),
    }

    let status = response.code.unwrap_or(0);
    if status < 100 {
        return Err(Opaque::InvalidStatus(status));
    }
    let fields = Fields::read(response.headers);
    Ok(ResponseHead {
        status,
        keep_alive: fields.keep_alive(response.version.unwrap_or(1)),
        fields,
    })
}

/// The header fields that framing and connection handling depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Fields {
    content_length: ContentLength,
    transfer_encoding: TransferEncoding,
    connection_close: bool,
    connection_keep_alive: bool,
    connection_upgrade: bool,
    upgrade: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ContentLength {
    #[default]
    Absent,
    Valid(u64),
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum TransferEncoding {
    #[default]
    None,
    /// `chunked` is the final coding.
    Chunked,
    Other,
}

impl Fields {
    fn read(headers: &[httparse::Header<'_>]) -> Fields {
        let mut fields = Fields::default();
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                fields.content_length = fields.content_length.merge(header.value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                fields.read_transfer_encoding(header.value);
            } else if name.eq_ignore_ascii_case("connection") {
                fields.read_connection(header.value);
            } else if name.eq_ignore_ascii_case("upgrade") {
                fields.upgrade = true;
            }
        }
        fields
    }

    /// Records whether the coding listed last, across all `Transfer-Encoding` fields, is chunked.
    fn read_transfer_encoding(&mut self, value: &[u8]) {
        let Some(last) = list_items(value).last() else {
            return;
        };
        let coding = last.split(|byte| *byte == b';').next().unwrap_or(last);
        self.transfer_encoding = if trim(coding).eq_ignore_ascii_case(b"chunked") {
            TransferEncoding::Chunked
        } else {
            TransferEncoding::Other
        };
    }

    fn read_connection(&mut self, value: &[u8]) {
        for option in list_items(value) {
            if option.eq_ignore_ascii_case(b"close") {
                self.connection_close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.connection_keep_alive = true;
            } else if option.eq_ignore_ascii_case(b"upgrade") {
                self.connection_upgrade = true;
            }
        }
    }

    /// Persistence as RFC 9112 section 9.3 defines it: HTTP/1.1 stays open unless
    /// `close` is sent, and HTTP/1.0 closes unless `keep-alive` is sent.
    fn keep_alive(&self, minor_version: u8) -> bool {
        if self.connection_close {
            return false;
        }
        minor_version >= 1 || self.connection_keep_alive
    }
}

impl ContentLength {
    /// Adds one `Content-Length` field. A list of equal values, which some
    /// intermediaries produce, counts as that value, and differing values are invalid.
    fn merge(self, value: &[u8]) -> ContentLength {
        let mut merged = self;
        let mut items = 0;
        for item in list_items(value) {
            items += 1;
            merged = match (merged, parse_decimal(item)) {
                (ContentLength::Invalid, _) | (_, None) => ContentLength::Invalid,
                (ContentLength::Absent, Some(length)) => ContentLength::Valid(length),
                (ContentLength::Valid(known), Some(length)) if known == length => merged,
                (ContentLength::Valid(_), Some(_)) => ContentLength::Invalid,
            };
        }
        if items == 0 {
            return ContentLength::Invalid;
        }
        merged
    }
}

/// Parses 1 to 19 ASCII digits, which always fit a u64. A sign or any other byte is invalid.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0')),
    )
}

/// Returns the non-empty items of a comma-separated field value, without surrounding spaces.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|byte| *byte == b',')
        .map(trim)
        .filter(|item| !item.is_empty())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = bytes
        .iter()
        .position(|byte| !is_space(byte))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !is_space(byte))
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// Body framing: the rule that finds where a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// This many bytes remain.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// The body ends when the backend closes the connection.
    UntilClose,
}

impl Body {
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self, Body::Length(0))
    }

    /// Consumes the body's bytes at the start of `bytes`. Returns how many bytes belong
    /// to the body and whether the body ended with them.
    pub(crate) fn consume(&mut self, bytes: &[u8]) -> Result<(usize, bool), Opaque> {
        match self {
            Body::Length(remaining) => {
                let used =
                    usize::try_from(*remaining).map_or(bytes.len(), |left| left.min(bytes.len()));
                *remaining -= used as u64;
                Ok((used, *remaining == 0))
            }
            Body::Chunked(decoder) => decoder.consume(bytes),
            Body::UntilClose => Ok((bytes.len(), false)),
        }
    }
}

/// Position in a chunked body (RFC 9112 section 7.1). Extensions and trailer fields are
/// skipped without being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkedDecoder {
    /// Reading the hex digits of a chunk size.
    Size { size: u64, digits: u8 },
    /// Skipping spaces or a chunk extension up to the end of the size line.
    Extension { size: u64 },
    /// After the CR of a size line.
    SizeLineFeed { size: u64 },
    /// This many bytes of chunk data remain.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the CR that follows chunk data.
    DataLineFeed,
    /// At the start of a trailer line, or of the empty line that ends the body.
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// After the CR of the final empty line.
    FinalLineFeed,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::Size { size: 0, digits: 0 }
    }
}

/// Hex digits allowed in a chunk size: 16 fill a u64.
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

impl ChunkedDecoder {
    /// Consumes chunked framing and data at the start of `bytes`. Returns how many bytes
    /// belong to the body and whether it ended with them.
    fn consume(&mut self, bytes: &[u8]) -> Result<(usize, bool), Opaque> {
        let mut used = 0;
        while used < bytes.len() {
            if let ChunkedDecoder::Data(remaining) = self {
                let left = bytes.len() - used;
                let take =
                    usize::try_from(*remaining).map_or(left, |remaining| remaining.min(left));
                *remaining -= take as u64;
                used += take;
                if *remaining == 0 {
                    *self = ChunkedDecoder::DataEnd;
                }
                continue;
            }

            let ended = self.step(bytes[used])?;
            used += 1;
            if ended {
                return Ok((used, true));
            }
        }
        Ok((used, false))
    }

    /// Advances over one framing byte and returns whether the body ended with it.
    fn step(&mut self, byte: u8) -> Result<bool, Opaque> {
        use ChunkedDecoder::*;
        *self = match (*self, byte) {
            (Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
                if digits >= MAX_CHUNK_SIZE_DIGITS {
                    return Err(Opaque::InvalidChunk(
                        "chunk size has more than 16 hex digits",
                    ));
                }
                let digit = (byte as char).to_digit(16).unwrap_or(0);
                Size {
                    size: (size << 4) | u64::from(digit),
                    digits: digits + 1,
                }
            }
            (Size { digits: 0, .. }, _) => {
                return Err(Opaque::InvalidChunk(
                    "chunk size line does not start with a hex digit",
                ))
            }
            (Size { size, .. }, b';' | b' ' | b'\t') => Extension { size },
            (Size { size, .. } | Extension { size }, b'\r') => SizeLineFeed { size },
            (Size { size, .. } | Extension { size } | SizeLineFeed { size }, b'\n') => {
                if size == 0 {
                    TrailerStart
                } else {
                    Data(size)
                }
            }
            (Size { .. }, _) => {
                return Err(Opaque::InvalidChunk("invalid byte after a chunk size"))
            }
            (Extension { size }, _) => Extension { size },
            (SizeLineFeed { .. }, _) => {
                return Err(Opaque::InvalidChunk("CR without LF in a chunk size line"))
            }
            (DataEnd, b'\r') => DataLineFeed,
            (DataEnd | DataLineFeed, b'\n') => ChunkedDecoder::default(),
            (DataEnd | DataLineFeed, _) => {
                return Err(Opaque::InvalidChunk("chunk data is not followed by CRLF"))
            }
            (TrailerStart, b'\r') => FinalLineFeed,
            (TrailerStart, b'\n') | (FinalLineFeed, b'\n') => return Ok(true),
            (TrailerLine, b'\n') => TrailerStart,
            (TrailerStart | TrailerLine, _) => TrailerLine,
            (FinalLineFeed, _) => {
                return Err(Opaque::InvalidChunk(
                    "CR without LF at the end of a chunked body",
                ))
            }
            (Data(_), _) => *self,
        };
        Ok(false)
    }
}
