//! Container output into the log pipeline of process replicas.
//!
//! The engine's log stream is split back into a stdout and a stderr pipe,
//! and each pipe goes through the same capture (line assembly, level
//! detection, masking) as a process replica's pipe.
//!
//! The stream is requested with the engine's timestamps, so that a stream
//! that broke off (the engine restarted) or one that a new agent opens for
//! an adopted container resumes after the last line already captured,
//! without repeating it.

use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::{Shared, RETRY};
use crate::logs::{CaptureTarget, LogHub, Stream};

/// Room in each pipe; when the capture falls behind, the stream reader
/// waits, so the engine holds the output instead of the agent.
const PIPE_BYTES: usize = 64 * 1024;

/// A container's log stream, and the time to resume it from.
pub(super) struct LogFollow {
    pub docker: Docker,
    pub container: String,
    /// The container's TTY setting from inspect. Without a TTY the engine
    /// frames the stream and marks each frame stdout or stderr; with one,
    /// everything arrives as one stream, captured as stdout.
    pub tty: bool,
    /// Only lines the engine stamped after this time, in nanoseconds since
    /// the epoch, are captured; `None` captures all.
    pub since: Option<u64>,
    pub shared: Arc<Shared>,
}

impl LogFollow {
    /// Follows the container's output until the container ends.
    pub fn start(self, hub: &LogHub, target: CaptureTarget) {
        let (stdout_writer, stdout_reader) = tokio::io::duplex(PIPE_BYTES);
        let (stderr_writer, stderr_reader) = tokio::io::duplex(PIPE_BYTES);
        let stderr_target = CaptureTarget {
            stream: Stream::Stderr,
            ..target.clone()
        };
        let stdout_target = CaptureTarget {
            stream: Stream::Stdout,
            ..target
        };
        hub.capture(stdout_target, stdout_reader);
        hub.capture(stderr_target, stderr_reader);
        let pipes = Pipes {
            stdout: stdout_writer,
            stderr: stderr_writer,
            tty: self.tty,
        };
        tokio::spawn(self.copy_into(pipes));
    }

    /// Copies the log stream into the pipes, opening it again after a break
    /// while the container runs. Dropping the pipes at the end lets each
    /// capture store its last partial line.
    async fn copy_into(mut self, mut pipes: Pipes) {
        loop {
            match self.copy_stream(&mut pipes).await {
                Copied::PipeClosed => return,
                Copied::StreamEnded => {}
            }
            match self.docker.inspect_container(&self.container, None).await {
                Ok(info) if info.state.as_ref().and_then(|state| state.running) == Some(true) => {
                    tokio::time::sleep(RETRY).await;
                }
                Ok(_)
                | Err(EngineError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return,
                Err(error) => {
                    tracing::debug!(container = %self.container, %error, "cannot inspect the container; waiting for the engine");
                    self.shared.wait_reachable().await;
                }
            }
        }
    }

    async fn copy_stream(&mut self, pipes: &mut Pipes) -> Copied {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            // The engine takes whole seconds here; the lines of that second
            // that were captured already are skipped below.
            since: self.since.map_or(0, whole_seconds),
            ..Default::default()
        };
        let mut stream = self.docker.logs(&self.container, Some(options));
        while let Some(item) = stream.next().await {
            let output = match item {
                Ok(output) => output,
                Err(error) => {
                    tracing::debug!(container = %self.container, %error, "container log stream ended");
                    return Copied::StreamEnded;
                }
            };
            let Some(output) = self.after_last(output) else {
                continue;
            };
            if pipes.write(output).await.is_err() {
                // The capture ended (the agent is stopping).
                return Copied::PipeClosed;
            }
        }
        Copied::StreamEnded
    }

    /// Strips the engine's timestamp from a frame; returns `None` for a
    /// frame stamped at or before the last one captured.
    fn after_last(&mut self, output: LogOutput) -> Option<LogOutput> {
        let (message, rebuild): (Bytes, fn(Bytes) -> LogOutput) = match output {
            LogOutput::StdOut { message } => (message, |message| LogOutput::StdOut { message }),
            LogOutput::StdErr { message } => (message, |message| LogOutput::StdErr { message }),
            LogOutput::Console { message } => (message, |message| LogOutput::Console { message }),
            LogOutput::StdIn { .. } => return None,
        };
        keep_after(&mut self.since, message).map(rebuild)
    }
}

/// Returns a frame's text without its timestamp, unless it is stamped at or
/// before `since`, and moves `since` to its stamp. A frame without a
/// timestamp is kept whole.
fn keep_after(since: &mut Option<u64>, message: Bytes) -> Option<Bytes> {
    let Some((stamp, text)) = split_timestamp(&message) else {
        return Some(message);
    };
    if since.is_some_and(|since| stamp <= since) {
        return None;
    }
    *since = Some(stamp);
    Some(message.slice(text..))
}

enum Copied {
    StreamEnded,
    PipeClosed,
}

/// Reads the engine's `RFC3339Nano ` prefix of a frame; returns the time in
/// nanoseconds since the epoch and where the text starts.
fn split_timestamp(message: &[u8]) -> Option<(u64, usize)> {
    let space = memchr::memchr(b' ', message)?;
    let stamp = std::str::from_utf8(&message[..space]).ok()?;
    let time = OffsetDateTime::parse(stamp, &Rfc3339).ok()?;
    let nanos = u64::try_from(time.unix_timestamp_nanos()).ok()?;
    Some((nanos, space + 1))
}

/// Turns nanoseconds since the epoch into the whole seconds the engine's
/// `since` takes, rounded down, so that nothing after `nanos` is left out.
fn whole_seconds(nanos: u64) -> i32 {
    i32::try_from(nanos / 1_000_000_000).unwrap_or(i32::MAX)
}

struct Pipes {
    stdout: DuplexStream,
    stderr: DuplexStream,
    tty: bool,
}

impl Pipes {
    async fn write(&mut self, output: LogOutput) -> std::io::Result<()> {
        match output {
            LogOutput::StdErr { message } if !self.tty => self.stderr.write_all(&message).await,
            LogOutput::StdIn { .. } => Ok(()),
            // NOTE: bollard picks the framing from the first byte of each
            // read rather than from the TTY setting. Containers that shipdeck
            // creates have no TTY, so every frame starts with a header byte
            // of 0 to 2 and its choice is always the multiplexed framing.
            LogOutput::StdOut { message }
            | LogOutput::Console { message }
            | LogOutput::StdErr { message } => self.stdout.write_all(&message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_splits_from_text() {
        let frame = b"2026-12-05T04:30:26.082517064Z listening on 0.0.0.0:8080\n";
        let (nanos, start) = split_timestamp(frame).unwrap();

        assert_eq!(nanos % 1_000_000_000, 82_517_064);
        assert_eq!(&frame[start..], b"listening on 0.0.0.0:8080\n");
    }

    #[test]
    fn frames_up_to_since_are_skipped() {
        let first = "2026-12-05T04:30:26.000000001Z one\n";
        let (stamp, _) = split_timestamp(first.as_bytes()).unwrap();
        let mut since = Some(stamp);
        let repeated = keep_after(&mut since, Bytes::from(first));
        let next = keep_after(
            &mut since,
            Bytes::from("2026-12-05T04:30:26.000000002Z two\n"),
        );

        assert_eq!(repeated, None);
        assert_eq!(next.as_deref(), Some(&b"two\n"[..]));
        assert_eq!(since, Some(stamp + 1));
    }

    #[test]
    fn frame_without_timestamp_is_kept() {
        assert_eq!(split_timestamp(b"plain text\n"), None);
    }

    #[test]
    fn whole_seconds_round_down() {
        assert_eq!(whole_seconds(1_999_999_999), 1);
        assert_eq!(whole_seconds(u64::MAX), i32::MAX);
    }
}
