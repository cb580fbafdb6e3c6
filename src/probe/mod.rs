//! Health probes: http, tcp and exec, each bounded by its timeout.
//!
//! A probe never blocks its caller past `timeout`: a slow server or a
//! hanging command counts as a failure.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// What to probe, resolved for one replica.
#[derive(Debug, Clone)]
pub enum ProbeTarget {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Exec { command: Vec<String> },
}

/// The result of one probe, with the message operators see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub success: bool,
    pub message: String,
    /// Nothing listened on the port: the replica has not opened it yet.
    pub refused: bool,
}

impl ProbeOutcome {
    fn pass(message: String) -> Self {
        Self {
            success: true,
            message,
            refused: false,
        }
    }

    fn fail(message: String) -> Self {
        Self {
            success: false,
            message,
            refused: false,
        }
    }

    fn refused(message: String) -> Self {
        Self {
            success: false,
            message,
            refused: true,
        }
    }
}

/// Runs one probe against a replica.
pub async fn run(target: &ProbeTarget, timeout: Duration, workdir: &Path) -> ProbeOutcome {
    let attempt = async {
        match target {
            ProbeTarget::Http { port, path } => http(*port, path).await,
            ProbeTarget::Tcp { port } => tcp(*port).await,
            ProbeTarget::Exec { command } => exec(command, workdir).await,
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::fail(format!("timed out after {} ms", timeout.as_millis())),
    }
}

async fn tcp(port: u16) -> ProbeOutcome {
    match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(_) => ProbeOutcome::pass(format!("port {port} accepts connections")),
        Err(error) => {
            let message = format!("connect to port {port} failed: {error}");
            connect_failed(error, message)
        }
    }
}

/// Sends `GET path` and reads the status line; 2xx and 3xx pass, as in Kubernetes.
async fn http(port: u16, path: &str) -> ProbeOutcome {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(stream) => stream,
        Err(error) => {
            let message = format!("GET {path} on port {port}: {error}");
            return connect_failed(error, message);
        }
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: shipdeck-probe\r\nConnection: close\r\n\r\n"
    );
    if let Err(error) = stream.write_all(request.as_bytes()).await {
        return ProbeOutcome::fail(format!("GET {path} on port {port}: {error}"));
    }

    let mut head = vec![0u8; 1024];
    let mut filled = 0;
    while filled < head.len() && !head[..filled].contains(&b'\n') {
        match stream.read(&mut head[filled..]).await {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) => return ProbeOutcome::fail(format!("GET {path} on port {port}: {error}")),
        }
    }
    match parse_status(&head[..filled]) {
        Some(code) if (200..400).contains(&code) => {
            ProbeOutcome::pass(format!("GET {path} on port {port} returned {code}"))
        }
        Some(code) => ProbeOutcome::fail(format!("GET {path} on port {port} returned {code}")),
        None => ProbeOutcome::fail(format!(
            "GET {path} on port {port}: the response is not HTTP"
        )),
    }
}

fn connect_failed(error: std::io::Error, message: String) -> ProbeOutcome {
    if error.kind() == std::io::ErrorKind::ConnectionRefused {
        ProbeOutcome::refused(message)
    } else {
        ProbeOutcome::fail(message)
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

async fn exec(command: &[String], workdir: &Path) -> ProbeOutcome {
    let Some((program, args)) = command.split_first() else {
        return ProbeOutcome::fail("exec probe has no command".to_owned());
    };
    let child = Command::new(program)
        .args(args)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    match child.await {
        Ok(status) if status.success() => ProbeOutcome::pass(format!("{program} exited with 0")),
        Ok(status) => ProbeOutcome::fail(format!("{program} {status}")),
        Err(error) => ProbeOutcome::fail(format!("cannot run {program}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_parses() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
    }

    #[test]
    fn status_line_rejects_garbage() {
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[tokio::test]
    async fn tcp_probe_fails_on_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let outcome = run(
            &ProbeTarget::Tcp { port },
            Duration::from_secs(1),
            Path::new("/"),
        )
        .await;
        assert!(!outcome.success, "{outcome:?}");
    }

    #[tokio::test]
    async fn exec_probe_times_out() {
        let target = ProbeTarget::Exec {
            command: vec!["sleep".into(), "5".into()],
        };
        let outcome = run(&target, Duration::from_millis(200), Path::new("/")).await;
        assert!(outcome.message.contains("timed out"), "{outcome:?}");
    }
}
