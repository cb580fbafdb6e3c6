//! Health probes: http, tcp and exec, each bounded by its timeout.
//!
//! A probe never blocks its caller past `timeout`: a slow server or a
//! hanging command counts as a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// The target of a probe, resolved for one replica. Its `Debug` output
/// lists an exec probe's environment by name only, because values may be
/// secrets.
#[derive(Clone)]
pub enum ProbeTarget {
    Http {
        port: u16,
        path: String,
    },
    Tcp {
        port: u16,
    },
    /// A command run in the replica's working directory and environment.
    Exec {
        command: Vec<String>,
        env: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeTarget::Http { port, path } => f
                .debug_struct("Http")
                .field("port", port)
                .field("path", path)
                .finish(),
            ProbeTarget::Tcp { port } => f.debug_struct("Tcp").field("port", port).finish(),
            ProbeTarget::Exec { command, env } => f
                .debug_struct("Exec")
                .field("command", command)
                .field("env_names", &env.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
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
    pub fn pass(message: String) -> Self {
        Self {
            success: true,
            message,
            refused: false,
        }
    }

    pub fn fail(message: String) -> Self {
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
    // An exec probe keeps its own time, so that it can end the command's
    // whole process group when the time is up.
    if let ProbeTarget::Exec { command, env } = target {
        return exec(command, env, workdir, timeout).await;
    }
    let attempt = async {
        match target {
            ProbeTarget::Http { port, path } => http(*port, path).await,
            ProbeTarget::Tcp { port } => tcp(*port).await,
            ProbeTarget::Exec { .. } => {
                ProbeOutcome::fail("exec probe took the wrong path".to_owned())
            }
        }
    };
    let label = target.describe();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::fail(format!(
            "{label} timed out after {} ms",
            timeout.as_millis()
        )),
    }
}

impl ProbeTarget {
    /// Names the probe in messages, such as `GET /healthz on port 41234`.
    fn describe(&self) -> String {
        match self {
            ProbeTarget::Http { port, path } => format!("GET {path} on port {port}"),
            ProbeTarget::Tcp { port } => format!("connect to port {port}"),
            ProbeTarget::Exec { command, .. } => command.join(" "),
        }
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

/// Runs the command in a process group of its own, so that a timeout ends
/// everything it started, not only its first process.
async fn exec(
    command: &[String],
    env: &BTreeMap<String, String>,
    workdir: &Path,
    timeout: Duration,
) -> ProbeOutcome {
    let Some((program, args)) = command.split_first() else {
        return ProbeOutcome::fail("exec probe has no command".to_owned());
    };
    let mut child = match Command::new(program)
        .args(args)
        .env_clear()
        .envs(probe_env(env))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return ProbeOutcome::fail(format!("cannot run {program}: {error}")),
    };

    let group = child.id().and_then(|pid| i32::try_from(pid).ok());
    let status = tokio::time::timeout(timeout, child.wait()).await;
    // Whatever the command left behind in its group goes too.
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    match status {
        Ok(Ok(status)) if status.success() => {
            ProbeOutcome::pass(format!("{program} exited with 0"))
        }
        Ok(Ok(status)) => ProbeOutcome::fail(format!("{program} {status}")),
        Ok(Err(error)) => ProbeOutcome::fail(format!("waiting for {program} failed: {error}")),
        Err(_) => {
            let _ = child.wait().await;
            ProbeOutcome::fail(format!(
                "{program} timed out after {} ms and was killed",
                timeout.as_millis()
            ))
        }
    }
}

/// Builds the probe's environment: the replica's, plus the agent's PATH,
/// HOME and LANG, so that a probe finds the same tools a shell would.
fn probe_env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut full: BTreeMap<String, String> = ["PATH", "HOME", "LANG"]
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    full.extend(env.clone());
    full
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
            env: BTreeMap::new(),
        };
        let outcome = run(&target, Duration::from_millis(200), Path::new("/")).await;
        assert!(outcome.message.contains("timed out"), "{outcome:?}");
    }

    fn processes_with_argument(argument: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .filter(|cmdline| {
                cmdline
                    .split(|byte| *byte == 0)
                    .any(|part| part == argument.as_bytes())
            })
            .count()
    }

    #[tokio::test]
    async fn exec_probe_timeout_kills_its_children() {
        let target = ProbeTarget::Exec {
            command: vec!["sh".into(), "-c".into(), "sleep 31.7; true".into()],
            env: BTreeMap::new(),
        };
        let outcome = run(&target, Duration::from_millis(300), Path::new("/")).await;
        assert!(!outcome.success, "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            processes_with_argument("31.7"),
            0,
            "a sleep outlived its probe"
        );
    }

    #[tokio::test]
    async fn exec_probe_sees_replica_environment() {
        let env = BTreeMap::from([("PORT".to_owned(), "4321".to_owned())]);
        let target = ProbeTarget::Exec {
            command: vec!["sh".into(), "-c".into(), "test \"$PORT\" = 4321".into()],
            env,
        };
        let outcome = run(&target, Duration::from_secs(2), Path::new("/")).await;
        assert!(outcome.success, "{outcome:?}");
    }
}
