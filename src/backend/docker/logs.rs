//! Container output into the log pipeline of process replicas.
//!
//! The engine's log stream is split back into a stdout and a stderr pipe,
//! and each pipe goes through the same capture (line assembly, level
//! detection, masking) as a process replica's pipe.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, DuplexStream};

use crate::logs::{CaptureTarget, LogHub, Stream};

/// Room in each pipe; when the capture falls behind, the stream reader
/// waits, so the engine holds the output instead of the agent.
const PIPE_BYTES: usize = 64 * 1024;

/// Follows the container's output until the container ends.
///
/// `tty` is the container's TTY setting from inspect. Without a TTY the
/// engine frames the stream and marks each frame stdout or stderr; with
/// one, everything arrives as one stream, captured as stdout.
pub fn follow(docker: Docker, container: String, tty: bool, hub: &LogHub, target: CaptureTarget) {
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
        tty,
    };
    tokio::spawn(pipes.copy_from(docker, container));
}

struct Pipes {
    stdout: DuplexStream,
    stderr: DuplexStream,
    tty: bool,
}

impl Pipes {
    /// Copies the log stream into the pipes; dropping them at the end lets
    /// each capture flush its last partial line.
    async fn copy_from(mut self, docker: Docker, container: String) {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = docker.logs(&container, Some(options));
        while let Some(item) = stream.next().await {
            let output = match item {
                Ok(output) => output,
                Err(error) => {
                    tracing::debug!(%container, %error, "container log stream ended");
                    break;
                }
            };
            if self.write(output).await.is_err() {
                // The capture ended (the agent is stopping).
                break;
            }
        }
    }

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
