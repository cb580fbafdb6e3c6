//! The byte layout of a block of log entries in the store.
//!
//! Entries are stored in blocks of a few hundred, not one record each: one
//! store write per block keeps capture fast, a search reads few records, and
//! retention drops the oldest block whole. The layout is binary and versioned,
//! because a search decodes a million entries and JSON would be the slowest
//! part of it.
//!
//! ```text
//! block:  version u8 | count u32 | first id u64 | last id u64
//!         | entries length u32 | entries, LZ4-compressed
//! entry:  id u64 | level u8 | stream u8 | flags u8 | revision u64
//!         | source length u16 | source | message length u32 | message
//! ```
//!
//! Numbers are big-endian. Text is UTF-8. The entries are compressed because
//! sled keeps much of what it stores in memory: log lines shrink several
//! times under LZ4, and so do the agent's memory and disk use.

use super::level::Level;
use super::{LogEntry, Stream};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 8 + 8 + 4;

/// Largest uncompressed body accepted when reading. Blocks are written at
/// about 64 KiB plus one line of up to 64 KiB, so a larger length means a
/// damaged header, and trusting it would allocate without bound.
const MAX_BODY_LEN: u32 = 4 << 20;
const FLAG_BUILD: u8 = 1;

/// An entry of a stored block, borrowing its text from the block.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub id: u64,
    pub level: Level,
    pub stream: Stream,
    pub build: bool,
    pub revision: u64,
    pub source: &'a str,
    pub message: &'a str,
}

impl EntryRef<'_> {
    pub fn to_entry(self) -> LogEntry {
        LogEntry {
            id: self.id,
            time: super::time_of(self.id),
            level: self.level,
            stream: self.stream,
            build: self.build,
            revision: self.revision,
            source: self.source.to_owned(),
            message: self.message.to_owned(),
            context: false,
        }
    }

    /// Overwrites `entry` with this one, reusing its text buffers.
    pub fn copy_into(self, entry: &mut LogEntry) {
        entry.id = self.id;
        entry.time = super::time_of(self.id);
        entry.level = self.level;
        entry.stream = self.stream;
        entry.build = self.build;
        entry.revision = self.revision;
        entry.source.clear();
        entry.source.push_str(self.source);
        entry.message.clear();
        entry.message.push_str(self.message);
        entry.context = false;
    }
}

impl<'a> From<&'a LogEntry> for EntryRef<'a> {
    fn from(entry: &'a LogEntry) -> Self {
        EntryRef {
            id: entry.id,
            level: entry.level,
            stream: entry.stream,
            build: entry.build,
            revision: entry.revision,
            source: &entry.source,
            message: &entry.message,
        }
    }
}

/// The summary at the start of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub count: u32,
    pub first_id: u64,
    pub last_id: u64,
    /// Length of the entries once decompressed.
    pub body_len: u32,
}

/// A reason why a stored block could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("log block format version {0} is unknown; a newer shipdeck wrote it")]
    Version(u8),
    #[error("log block ends inside entry {entry}; the block is damaged")]
    Truncated { entry: u32 },
    #[error("log block entry {entry} has an unknown level or stream code; the block is damaged")]
    BadCode { entry: u32 },
    #[error("log block entry {entry} has text that is not UTF-8; the block is damaged")]
    BadText { entry: u32 },
    #[error("log block entries do not decompress ({detail}); the block is damaged")]
    Compression { detail: String },
}

/// Encodes `entries`, which must not be empty and must be in id order.
pub fn encode(entries: &[LogEntry]) -> Vec<u8> {
    let size: usize = entries.iter().map(encoded_len).sum();
    let mut body = Vec::with_capacity(size);
    for entry in entries {
        encode_entry(entry, &mut body);
    }
    let compressed = lz4_flex::block::compress(&body);

    let first = entries.first().map_or(0, |entry| entry.id);
    let last = entries.last().map_or(0, |entry| entry.id);
    let mut out = Vec::with_capacity(HEADER_LEN + compressed.len());
    out.push(VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&first.to_be_bytes());
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&compressed);
    out
}

/// Bytes that `entry` takes in a block.
pub fn encoded_len(entry: &LogEntry) -> usize {
    8 + 3 + 8 + 2 + source_len(&entry.source) + 4 + entry.message.len()
}

fn source_len(source: &str) -> usize {
    source.len().min(usize::from(u16::MAX))
}

fn encode_entry(entry: &LogEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(&entry.id.to_be_bytes());
    out.push(entry.level.as_u8());
    out.push(stream_code(entry.stream));
    out.push(if entry.build { FLAG_BUILD } else { 0 });
    out.extend_from_slice(&entry.revision.to_be_bytes());

    // Sources are replica names, far below the limit; a longer one is cut
    // at a character boundary rather than making the block unreadable.
    let source = truncate_at_char(&entry.source, source_len(&entry.source));
    out.extend_from_slice(&(source.len() as u16).to_be_bytes());
    out.extend_from_slice(source.as_bytes());

    // Messages are at most 64 KiB plus a marker, far below u32::MAX.
    out.extend_from_slice(&(entry.message.len() as u32).to_be_bytes());
    out.extend_from_slice(entry.message.as_bytes());
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn stream_code(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn stream_from_code(code: u8) -> Option<Stream> {
    match code {
        0 => Some(Stream::Stdout),
        1 => Some(Stream::Stderr),
        _ => None,
    }
}

/// Reads the header of a block.
pub fn header(block: &[u8]) -> Result<BlockHeader, BlockError> {
    let Some(&version) = block.first() else {
        return Err(BlockError::Truncated { entry: 0 });
    };
    if version != VERSION {
        return Err(BlockError::Version(version));
    }
    let mut reader = Reader {
        bytes: block,
        at: 1,
        entry: 0,
    };
    Ok(BlockHeader {
        count: reader.u32()?,
        first_id: reader.u64()?,
        last_id: reader.u64()?,
        body_len: reader.u32()?,
    })
}

/// Decompresses the entries of a block.
pub fn body(block: &[u8], header: &BlockHeader) -> Result<Vec<u8>, BlockError> {
    if header.body_len > MAX_BODY_LEN {
        return Err(BlockError::Compression {
            detail: format!("a length of {} bytes is over the limit", header.body_len),
        });
    }
    let compressed = block.get(HEADER_LEN..).unwrap_or_default();
    let body =
        lz4_flex::block::decompress(compressed, header.body_len as usize).map_err(|error| {
            BlockError::Compression {
                detail: error.to_string(),
            }
        })?;
    if body.len() != header.body_len as usize {
        return Err(BlockError::Compression {
            detail: format!(
                "{} bytes came out where the header says {}",
                body.len(),
                header.body_len
            ),
        });
    }
    Ok(body)
}

/// Iterates over the `count` entries of a decompressed body, oldest first.
pub fn entries(body: &[u8], count: u32) -> Entries<'_> {
    Entries {
        reader: Reader {
            bytes: body,
            at: 0,
            entry: 0,
        },
        remaining: count,
    }
}

/// The entries of one block, decoded one at a time.
pub struct Entries<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<EntryRef<'a>, BlockError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let entry = self.reader.entry();
        if entry.is_err() {
            // Nothing after a damaged entry can be located.
            self.remaining = 0;
        }
        self.reader.entry += 1;
        Some(entry)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    entry: u32,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], BlockError> {
        let end = self.at.checked_add(len);
        let slice = end.and_then(|end| self.bytes.get(self.at..end));
        let slice = slice.ok_or(BlockError::Truncated { entry: self.entry })?;
        self.at += len;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlockError> {
        let slice = self.take(N)?;
        let mut array = [0; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, BlockError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, BlockError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, BlockError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, BlockError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn text(&mut self, len: usize) -> Result<&'a str, BlockError> {
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| BlockError::BadText { entry: self.entry })
    }

    fn entry(&mut self) -> Result<EntryRef<'a>, BlockError> {
        let id = self.u64()?;
        let bad_code = BlockError::BadCode { entry: self.entry };
        let level = Level::from_u8(self.u8()?).ok_or(bad_code.clone())?;
        let stream = stream_from_code(self.u8()?).ok_or(bad_code)?;
        let flags = self.u8()?;
        let revision = self.u64()?;
        let source_len = usize::from(self.u16()?);
        let source = self.text(source_len)?;
        let message_len = self.u32()? as usize;
        let message = self.text(message_len)?;
        Ok(EntryRef {
            id,
            level,
            stream,
            build: flags & FLAG_BUILD != 0,
            revision,
            source,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, message: &str) -> LogEntry {
        LogEntry {
            id,
            time: crate::logs::time_of(id),
            level: Level::Warn,
            stream: Stream::Stderr,
            build: id.is_multiple_of(2),
            revision: 7,
            source: "web-1".to_owned(),
            message: message.to_owned(),
            context: false,
        }
    }

    #[test]
    fn round_trip() {
        let written = vec![
            entry(10, "first"),
            entry(11, ""),
            entry(12, "caf\u{e9} \u{1f680}"),
        ];
        let block = encode(&written);
        let expected_len: usize = written.iter().map(encoded_len).sum();
        let read_header = header(&block).unwrap();
        assert_eq!(
            read_header,
            BlockHeader {
                count: 3,
                first_id: 10,
                last_id: 12,
                body_len: expected_len as u32,
            }
        );
        let body = body(&block, &read_header).unwrap();
        let read: Vec<LogEntry> = entries(&body, read_header.count)
            .map(|entry| entry.unwrap().to_entry())
            .collect();
        assert_eq!(read, written);
    }

    #[test]
    fn repetitive_lines_compress() {
        let written: Vec<LogEntry> = (0..500)
            .map(|id| entry(id, "GET /healthz 200 0.3ms user-agent=kube-probe/1.29"))
            .collect();
        let raw: usize = written.iter().map(encoded_len).sum();
        assert!(
            encode(&written).len() * 4 < raw,
            "a block of similar lines shrinks"
        );
    }

    #[test]
    fn damaged_compressed_body_is_an_error() {
        let block = encode(&[entry(1, "hello"), entry(2, "world")]);
        let read_header = header(&block).unwrap();
        for len in HEADER_LEN..block.len() {
            let outcome = body(&block[..len], &read_header);
            assert!(outcome.is_err(), "a body cut to {len} bytes decompressed");
        }
        let mut huge = read_header;
        huge.body_len = u32::MAX;
        assert!(body(&block, &huge).is_err());
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() {
        let block = encode(&[entry(1, "hello"), entry(2, "world")]);
        let read_header = header(&block).unwrap();
        let body = body(&block, &read_header).unwrap();
        for len in 0..body.len() {
            let results: Vec<_> = entries(&body[..len], read_header.count).collect();
            assert!(
                results.iter().any(Result::is_err),
                "a body cut to {len} bytes decoded without an error"
            );
        }
        assert!(header(&block[..HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn unknown_version_is_reported() {
        let mut block = encode(&[entry(1, "x")]);
        block[0] = 9;
        assert_eq!(header(&block), Err(BlockError::Version(9)));
    }

    #[test]
    fn bad_codes_are_reported() {
        let block = encode(&[entry(1, "x")]);
        let read_header = header(&block).unwrap();
        let mut body = body(&block, &read_header).unwrap();
        body[8] = 200;
        let first = entries(&body, 1).next().unwrap();
        assert_eq!(first.unwrap_err(), BlockError::BadCode { entry: 0 });
    }
}
