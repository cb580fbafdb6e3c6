//! Exec probes through the engine's exec API: the command runs inside the
//! replica's container, in its environment, as `docker exec` runs it.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;

use crate::probe::ProbeOutcome;

/// Maximum bytes of a probe's output that its message may quote.
const OUTPUT_BYTES: usize = 200;

/// Exit status of a command the container's runtime cannot run, and of one
/// it cannot find, as a shell reports them.
const NOT_EXECUTABLE: i64 = 126;
const NOT_FOUND: i64 = 127;

/// Runs `command` in `container`; it must exit with 0 within `timeout`.
pub(super) async fn probe(
    docker: &Docker,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> ProbeOutcome {
    let label = command.join(" ");
    if command.is_empty() {
        return ProbeOutcome::fail("exec probe has no command".to_owned());
    }
    let options = CreateExecOptions {
        cmd: Some(command.to_vec()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = tokio::time::timeout(timeout, docker.create_exec(container, options)).await;
    let exec = match created {
        Ok(Ok(exec)) => exec.id,
        Ok(Err(error)) => return ProbeOutcome::fail(format!("{label}: cannot start it: {error}")),
        Err(_) => return timed_out(&label, timeout),
    };
    match tokio::time::timeout(timeout, run(docker, &exec)).await {
        Ok(Ok((code, output))) => outcome(&label, code, &output),
        Ok(Err(error)) => ProbeOutcome::fail(format!("{label}: {error}")),
        Err(_) => {
            end_exec(docker, &exec).await;
            timed_out(&label, timeout)
        }
    }
}

/// Starts the exec, reads its output to the end, and returns its exit code
/// with the start of its output.
async fn run(
    docker: &Docker,
    exec: &str,
) -> Result<(Option<i64>, Vec<u8>), bollard::errors::Error> {
    let mut captured = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = docker.start_exec(exec, None).await? {
        while let Some(chunk) = output.next().await {
            let bytes = chunk?.into_bytes();
            let room = OUTPUT_BYTES.saturating_sub(captured.len());
            captured.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }
    let inspect = docker.inspect_exec(exec).await?;
    Ok((inspect.exit_code, captured))
}

fn outcome(label: &str, code: Option<i64>, output: &[u8]) -> ProbeOutcome {
    let text = String::from_utf8_lossy(output);
    let first_line = text.lines().next().unwrap_or("").trim();
    let detail = if first_line.is_empty() {
        String::new()
    } else {
        format!(": {first_line}")
    };
    match code {
        Some(0) => ProbeOutcome::pass(format!("{label} exited with 0")),
        Some(NOT_EXECUTABLE) => ProbeOutcome::fail(format!(
            "{label} cannot be run in the container (exit status 126){detail}"
        )),
        Some(NOT_FOUND) => ProbeOutcome::fail(format!(
            "{label} was not found in the container's image (exit status 127){detail}"
        )),
        Some(code) => ProbeOutcome::fail(format!("{label} exited with {code}{detail}")),
        None => ProbeOutcome::fail(format!("{label} ended without an exit status{detail}")),
    }
}

fn timed_out(label: &str, timeout: Duration) -> ProbeOutcome {
    ProbeOutcome::fail(format!(
        "{label} timed out after {} ms",
        timeout.as_millis()
    ))
}

/// Kills an exec that outlived its probe. The engine has no API to end one,
/// so its process is killed on the host by the pid the engine reports.
// NOTE: only the exec's first process is killed. The kill also needs the
// right to signal it (root, or the container's user), and without that the
// process runs on until it ends by itself.
async fn end_exec(docker: &Docker, exec: &str) {
    let pid = match docker.inspect_exec(exec).await {
        Ok(inspect) if inspect.running == Some(true) => inspect.pid,
        Ok(_) => return,
        Err(error) => {
            tracing::debug!(exec, %error, "cannot inspect a timed-out exec probe");
            return;
        }
    };
    let Some(pid) = pid
        .and_then(|pid| i32::try_from(pid).ok())
        .filter(|pid| *pid > 0)
    else {
        return;
    };
    let killed = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    if let Err(error) = killed {
        tracing::debug!(exec, pid, %error, "cannot kill a timed-out exec probe");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_read_as_messages() {
        assert!(outcome("check", Some(0), b"").success);
        let failed = outcome("check", Some(3), b"db down\nmore\n");
        assert!(!failed.success);
        assert_eq!(failed.message, "check exited with 3: db down");
        let missing = outcome("curl -f /", Some(127), b"");
        assert!(missing
            .message
            .contains("not found in the container's image"));
    }
}
