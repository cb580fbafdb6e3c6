//! Command channels: checking the program when the channel is added, and
//! running it with the notification as JSON on standard input.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ChannelError, DELIVERY_TIMEOUT};
use crate::model::Notification;

/// Lines of a failed command's standard error shown in the failure.
const STDERR_LINES: usize = 5;
/// Characters kept of each of those lines.
const STDERR_LINE_CHARS: usize = 200;
/// Bytes of standard error kept. The rest is read and dropped, so that a
/// program that writes much to standard error does not block on a full
/// pipe.
const STDERR_BYTES: usize = 4096;

/// Checks that `program` is something the agent can start: an absolute path
/// to an executable file, or a name found on the agent's `PATH`. A relative
/// path is rejected because it would depend on the agent's working
/// directory.
pub(super) fn check_program(channel: &str, program: &str) -> Result<(), ChannelError> {
    let problem = |reason: String| ChannelError::Program {
        channel: channel.to_owned(),
        program: program.to_owned(),
        reason,
    };
    let path = Path::new(program);
    if program.contains('/') {
        if !path.is_absolute() {
            return Err(problem(
                "it is a relative path, which would depend on the agent's working directory; give the absolute path".to_owned(),
            ));
        }
        return executable(path).map_err(problem);
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    match find_on_path(program, &search) {
        Some(_) => Ok(()),
        None => Err(problem(format!(
            "it was not found as an executable file on the agent's PATH ({}); give its absolute path",
            search.to_string_lossy()
        ))),
    }
}

fn find_on_path(program: &str, search: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(search)
        .filter(|directory| directory.is_absolute())
        .map(|directory| directory.join(program))
        .find(|candidate| executable(candidate).is_ok())
}

/// Checks that `path` is a regular file that the agent may execute.
fn executable(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        _ => format!("it cannot be read: {error}"),
    })?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err("it is not executable; run chmod +x on it".to_owned());
    }
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
        .map_err(|error| format!("the agent's user may not execute it ({error})"))
}

/// Runs `command` with the notification as JSON on standard input. A
/// failure carries the first lines of the program's standard error.
pub(super) async fn run(command: &[String], notification: &Notification) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("the command is empty".to_owned());
    };
    let body = serde_json::to_vec(notification).map_err(|error| error.to_string())?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("starting {program:?} failed: {error}"))?;
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A program that does not read its input is not an error.
            let _ = stdin.write_all(&body).await;
        }
    };
    let finished = async {
        let (_, errors, status) = tokio::join!(feed, read_stderr(stderr), child.wait());
        (errors, status)
    };
    let (errors, status) = tokio::time::timeout(DELIVERY_TIMEOUT, finished)
        .await
        .map_err(|_| {
            format!(
                "{program:?} did not finish within {} s",
                DELIVERY_TIMEOUT.as_secs()
            )
        })?;
    let status = status.map_err(|error| format!("waiting for {program:?} failed: {error}"))?;
    if status.success() {
        return Ok(());
    }
    let mut failure = format!("{program:?} exited with {status}");
    let excerpt = stderr_excerpt(&errors);
    if !excerpt.is_empty() {
        failure.push_str(&format!("; its standard error began: {excerpt}"));
    }
    Err(failure)
}

async fn read_stderr(stderr: Option<tokio::process::ChildStderr>) -> Vec<u8> {
    let Some(mut stderr) = stderr else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(read) = stderr.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        let room = STDERR_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..read.min(room)]);
    }
    kept
}

/// Formats the first lines of standard error on one line, with escape
/// sequences and control characters removed, each line shortened and the
/// lines joined by " | ".
fn stderr_excerpt(errors: &[u8]) -> String {
    let text = String::from_utf8_lossy(errors);
    let lines: Vec<String> = text
        .lines()
        .map(|line| crate::logs::sanitize_for_terminal(line).trim().to_owned())
        .filter(|line| !line.is_empty())
        .take(STDERR_LINES)
        .map(|line| shorten(&line, STDERR_LINE_CHARS))
        .collect();
    lines.join(" | ")
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_checked_where_the_agent_finds_them() {
        assert!(check_program("c", "sh").is_ok());
        assert!(check_program("c", "/bin/sh").is_ok());
        let error = check_program("c", "/nonexistent/prog").expect_err("missing");
        assert!(error.to_string().contains("no such file"), "{error}");
        let error = check_program("c", "cmd.sh").expect_err("not on PATH");
        assert!(error.to_string().contains("agent's PATH"), "{error}");
        let error = check_program("c", "./cmd.sh").expect_err("relative");
        assert!(error.to_string().contains("relative path"), "{error}");
        let error = check_program("c", "/etc").expect_err("a directory");
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn non_executable_files_are_rejected() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let script = directory.path().join("hook.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("write a script");
        let path = script.to_str().expect("UTF-8 path");
        let error = check_program("c", path).expect_err("no x bit");
        assert!(error.to_string().contains("chmod +x"), "{error}");
    }

    #[test]
    fn stderr_excerpts_are_short_and_clean() {
        let errors = b"boom \x1b[31mred\x1b[0m\n\nsecond\nthird\nfourth\nfifth\nsixth\n";
        assert_eq!(
            stderr_excerpt(errors),
            "boom red | second | third | fourth | fifth"
        );
        let long = "x".repeat(300);
        assert_eq!(
            stderr_excerpt(long.as_bytes()).chars().count(),
            STDERR_LINE_CHARS + 1
        );
    }
}
