//! Reading a process's output stream into batches of lines for the writer.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::hub::Message;
use super::lines::{AssembledLine, LineAssembler, MAX_LINE_BYTES};
use super::Stream;

/// Size of one read. Large enough that a chatty replica costs few wake-ups,
/// small enough that each batch is timestamped close to when it was written.
const READ_BYTES: usize = 32 * 1024;

/// The deployment, source and stream that captured lines belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureTarget {
    pub deployment_id: String,
    /// The replica (`web-0`) or `build`.
    pub source: String,
    pub stream: Stream,
    pub revision: u64,
    pub build: bool,
}

/// The lines of one read, with the time they were read.
pub(super) struct Batch {
    pub target: Arc<CaptureTarget>,
    pub time: u64,
    pub lines: Vec<AssembledLine>,
}

/// Nanoseconds since the epoch, now.
pub(super) fn now_nanos() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(0)
}

/// Reads `reader` to its end and sends its lines to the writer.
///
/// When the writer falls behind, `send` waits, so this stops reading and the
/// process blocks on a full pipe instead of the agent dropping lines or
/// buffering without bound. Each capture waits its turn for room in the
/// channel, so one flooding replica cannot keep the others out.
pub(super) async fn capture<R>(
    sender: mpsc::Sender<Message>,
    target: Arc<CaptureTarget>,
    mut reader: R,
) where
    R: AsyncRead + Unpin,
{
    let mut assembler = LineAssembler::new(MAX_LINE_BYTES);
    let mut chunk = vec![0u8; READ_BYTES];

    loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::debug!(source = %target.source, %error, "reading output failed; capture ends");
                break;
            }
        };
        let time = now_nanos();
        let mut lines = Vec::new();
        assembler.push(&chunk[..read], &mut lines);
        if lines.is_empty() {
            continue;
        }
        if !send(&sender, &target, time, lines).await {
            return;
        }
    }

    if let Some(last) = assembler.finish() {
        send(&sender, &target, now_nanos(), vec![last]).await;
    }
}

async fn send(
    sender: &mpsc::Sender<Message>,
    target: &Arc<CaptureTarget>,
    time: u64,
    lines: Vec<AssembledLine>,
) -> bool {
    let batch = Batch {
        target: Arc::clone(target),
        time,
        lines,
    };
    sender.send(Message::Lines(batch)).await.is_ok()
}
