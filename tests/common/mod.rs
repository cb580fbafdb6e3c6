//! Helpers for tests that drive the real `shipdeck` binary against a real
//! agent: one temporary home per test, free ports, polling with deadlines,
//! plain HTTP over std sockets, and a guard that stops the agent and checks
//! that no replica outlives the test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Default time a test waits for a condition before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const SHIPDECK: &str = env!("CARGO_BIN_EXE_shipdeck");
pub const SAMPLE: &str = env!("CARGO_BIN_EXE_shipdeck-sample");

/// A shipdeck home in a temporary directory, with its agent.
///
/// Dropping it stops the agent (`agent stop`, then SIGKILL by pid) and
/// kills any process still marked with this home, so a failing test leaks
/// nothing. Call [`TestHome::finish`] at the end of a passing test to also
/// assert that nothing was left behind.
pub struct TestHome {
    dir: TempDir,
    home: PathBuf,
}

impl TestHome {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("shipdeck-itest-")
            .tempdir()
            .expect("create a temporary directory");
        let home = dir.path().join("home");
        Self { dir, home }
    }

    /// Returns the `SHIPDECK_HOME` of this test.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Returns a scratch directory beside the home, for manifests and sources.
    pub fn work(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `name` in the scratch directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the parent directory");
        }
        std::fs::write(&path, text).expect("write a test file");
        path
    }

    /// Builds a `shipdeck` command on this home, run from the scratch directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(SHIPDECK);
        command
            .args(args)
            .env("SHIPDECK_HOME", &self.home)
            .env_remove("SHIPDECK_LOG")
            .current_dir(self.dir.path());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run shipdeck")
    }

    /// Runs a command that must succeed and returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`shipdeck {}` failed with {}:\nstdout: {}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs a command with `-o json` that must succeed and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!(
                "`shipdeck {}`: invalid JSON ({error}):\n{text}",
                all.join(" ")
            )
        })
    }

    /// Runs a command that must fail (any non-zero exit status) with one
    /// line on standard error, and returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "`shipdeck {}` succeeded but should fail:\nstdout: {}\nstderr: {stderr}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "`shipdeck {}` should print one error line, printed:\n{stderr}",
            args.join(" ")
        );
        lines[0].to_owned()
    }

    /// `get NAME -o json`, with extra arguments such as `--env`.
    pub fn get(&self, name: &str, extra: &[&str]) -> Value {
        let mut args = vec!["get", name];
        args.extend(extra);
        self.json(&args)
    }

    /// Reads the pid the agent wrote to `run/agent.pid`, if it runs.
    pub fn agent_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.home.join("run/agent.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Waits until the killed agent `pid` has exited and its socket refuses
    /// connections. The process shows as a zombie while its other threads
    /// still close their files, so its state alone is not enough.
    pub fn wait_agent_dead(&self, pid: i32) {
        let socket = self.home.join("run/agent.sock");
        wait_for(&format!("agent {pid} to be gone"), DEADLINE, || {
            let refused = std::os::unix::net::UnixStream::connect(&socket).is_err();
            (!process_alive(pid) && refused).then_some(())
        });
    }

    /// Processes that carry this home's replica marker.
    pub fn marked_pids(&self) -> Vec<i32> {
        marked_processes(&self.home)
    }

    /// Polls until no process carries this home's marker.
    pub fn wait_no_marked(&self, what: &str) {
        wait_for(what, DEADLINE, || {
            self.marked_pids().is_empty().then_some(())
        });
    }

    /// Stops the agent and asserts that it and every replica are gone.
    pub fn finish(self) {
        let pid = self.agent_pid();
        self.ok(&["agent", "stop"]);
        if let Some(pid) = pid {
            wait_for("agent process to exit", DEADLINE, || {
                (!process_alive(pid)).then_some(())
            });
        }
        let left = wait_for_value(DEADLINE, || {
            let pids = self.marked_pids();
            pids.is_empty().then_some(()).ok_or(pids)
        });
        assert!(
            left.is_ok(),
            "replica processes left after `agent stop`: {:?}",
            left.err()
        );
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        if self.home.join("run").exists() {
            let _ = self
                .command(&["agent", "stop"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        if let Some(pid) = self.agent_pid() {
            if process_alive(pid) && process_has_arg(pid, &self.home) {
                kill9(pid);
            }
        }
        for pid in self.marked_pids() {
            // Replicas lead their own process groups.
            kill9_group(pid);
            kill9(pid);
        }
    }
}

/// Sends SIGKILL to a process.
pub fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Sends SIGKILL to a process group.
pub fn kill9_group(pgid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Checks that a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !state.starts_with('Z') && !state.starts_with('X')
}

fn process_has_arg(pid: i32, home: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = home.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// Pids of live processes whose environment has `SHIPDECK_AGENT_HOME=<home>`.
pub fn marked_processes(home: &Path) -> Vec<i32> {
    let mut marker = b"SHIPDECK_AGENT_HOME=".to_vec();
    marker.extend_from_slice(home.as_os_str().as_encoded_bytes());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|environ| {
                    environ
                        .split(|b| *b == 0)
                        .any(|var| var == marker.as_slice())
                })
                .unwrap_or(false)
        })
        .filter(|pid| process_alive(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Polls `check` every 50 ms until it returns a value, or panics naming
/// `what` once `deadline` has passed.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < end,
            "timed out after {} s waiting for {what}",
            deadline.as_secs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_for`], but returns the last error value instead of panicking.
pub fn wait_for_value<T, E>(
    deadline: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let end = Instant::now() + deadline;
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= end => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Lowest and one past the highest port that [`free_ports`] hands out.
/// The range lies below Linux's default ephemeral range (32768-60999), so
/// the short-lived client sockets of probes and tests do not take them.
const PORT_RANGE: (u16, u16) = (20000, 32000);

/// Next candidate port of this test process. Blocks come from a counter,
/// so tests in parallel threads never get the same ports. The counter
/// starts at an offset derived from the pid, so that separate test runs
/// rarely collide, and every block is checked to be free anyway.
static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Finds a base port such that `base..base + count` are all free on
/// 127.0.0.1 and 0.0.0.0 right now, and reserves it for this process.
pub fn free_ports(count: u16) -> u16 {
    use std::sync::atomic::Ordering;

    let (low, high) = (u32::from(PORT_RANGE.0), u32::from(PORT_RANGE.1));
    let span = high - low;
    let seed = std::process::id().wrapping_mul(7919) % span;
    let _ = NEXT_PORT.compare_exchange(0, seed + 1, Ordering::SeqCst, Ordering::SeqCst);

    for _ in 0..500 {
        let offset = NEXT_PORT.fetch_add(u32::from(count), Ordering::SeqCst) % span;
        let base = low + offset;
        if base + u32::from(count) > high {
            continue;
        }
        let base = u16::try_from(base).expect("ports are below 32000");
        let all_free = (base..base + count).all(|port| {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
                && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        if all_free {
            return base;
        }
    }
    panic!("no block of {count} free ports found in {PORT_RANGE:?}");
}

/// Sends a plain HTTP/1.0 GET to 127.0.0.1:`port` with short timeouts. Returns
/// the status code and the body, or `None` if nothing responds.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    parse_response(&response)
}

/// Splits a raw HTTP response into its status code and body.
pub fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}

/// Checks whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(300)).is_ok()
}

/// Polls until GET `path` on `port` returns 200 and returns the body.
pub fn wait_http_ok(port: u16, path: &str) -> String {
    wait_for(
        &format!("GET {path} on port {port} to return 200"),
        DEADLINE,
        || {
            http_get(port, path)
                .filter(|(status, _)| *status == 200)
                .map(|(_, body)| body)
        },
    )
}

/// Polls until nothing accepts connections on `port`.
pub fn wait_port_closed(port: u16) {
    wait_for(&format!("port {port} to stop answering"), DEADLINE, || {
        (!port_open(port)).then_some(())
    });
}

/// Extracts the ports of a deployment's `endpoints`, in order. A port with a
/// `hostPort` has one stable endpoint, whatever the replica count.
pub fn endpoint_ports(deployment: &Value) -> Vec<u16> {
    deployment["endpoints"]
        .as_array()
        .expect("endpoints is a list")
        .iter()
        .map(|endpoint| {
            let text = endpoint.as_str().expect("endpoint is a string");
            text.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("endpoint ends in a port")
        })
        .collect()
}

/// Extracts the pids of a deployment's replicas from `get -o json`,
/// leaving out replicas that are stopping.
pub fn replica_pids(deployment: &Value) -> Vec<i64> {
    let mut pids: Vec<i64> = deployment["replicaDetails"]
        .as_array()
        .map(|replicas| {
            replicas
                .iter()
                .filter(|r| r["state"] != "stopping")
                .filter_map(|r| r["pid"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Extracts the private ports of a deployment's replicas
/// (`replicaDetails[].port`), in the order `get` lists the replicas,
/// leaving out replicas that are stopping.
pub fn replica_ports(deployment: &Value) -> Vec<u16> {
    deployment["replicaDetails"]
        .as_array()
        .map(|replicas| {
            replicas
                .iter()
                .filter(|r| r["state"] != "stopping")
                .filter_map(|r| r["port"].as_u64())
                .map(|port| u16::try_from(port).expect("a port number"))
                .collect()
        })
        .unwrap_or_default()
}

/// Extracts the pid from a body of the sample workload's `/`, which ends in
/// `pid N`.
pub fn greeting_pid(body: &str) -> Option<i64> {
    body.split_whitespace()
        .skip_while(|word| *word != "pid")
        .nth(1)?
        .parse()
        .ok()
}

/// Sends `count` requests for `/` to `port` one after another and asserts
/// that every one returns 200 with `text` in its body. Returns the bodies.
pub fn assert_every_response(port: u16, text: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|attempt| {
            let response = http_get(port, "/");
            let body = match response {
                Some((200, body)) => body,
                other => panic!("request {attempt} to port {port}: expected 200, got {other:?}"),
            };
            assert!(
                body.contains(text),
                "request {attempt} to port {port}: expected {text:?} in {body:?}"
            );
            body
        })
        .collect()
}

/// Polls the stable endpoint on `port` until its responses have come from
/// every replica in `pids`. Each round keeps one connection per replica open
/// at once, so least-connections must spread them over every replica. Taking
/// turns alone is not enough: another client polling at the same pace, such as
/// a [`Watcher`], would take every second turn and hide half the replicas.
pub fn wait_balanced(port: u16, pids: &[i64]) {
    let mut seen = std::collections::BTreeSet::new();
    let reached = wait_for_value(DEADLINE, || {
        seen.extend(concurrent_greeting_pids(port, pids.len()));
        if pids.iter().all(|pid| seen.contains(pid)) {
            Ok(())
        } else {
            Err(seen.clone())
        }
    });
    assert!(
        reached.is_ok(),
        "port {port} reached only pids {:?} of {pids:?} within {} s",
        reached.err(),
        DEADLINE.as_secs()
    );
}

/// Opens `count` connections to `port` before sending a request on any, then
/// returns the pids named in the responses that came back.
fn concurrent_greeting_pids(port: u16, count: usize) -> Vec<i64> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let streams: Vec<TcpStream> = (0..count)
        .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok())
        .collect();

    // The endpoint picks a backend when it accepts, so give it a moment to
    // accept all of them while each is still open.
    std::thread::sleep(Duration::from_millis(50));

    let request = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut pids = Vec::new();
    for mut stream in streams {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut response = Vec::new();
        let answered = stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_end(&mut response).is_ok();
        if let Some((200, body)) = answered.then(|| parse_response(&response)).flatten() {
            pids.extend(greeting_pid(&body));
        }
    }
    pids
}

/// A thread that requests `/` from a port every 50 ms until stopped,
/// counting failed requests and bodies that lack an expected text.
pub struct Watcher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<WatchReport>,
}

/// Counts and failed responses that a [`Watcher`] observed.
#[derive(Debug, Default)]
pub struct WatchReport {
    pub requests: usize,
    /// Requests that got no 200 response.
    pub failures: Vec<Option<(u16, String)>>,
    /// Bodies of 200 responses that lacked the expected text.
    pub unexpected: Vec<String>,
}

impl Watcher {
    /// Starts watching `port`; every 200 body should contain `text`.
    pub fn start(port: u16, text: &str) -> Self {
        use std::sync::atomic::Ordering;

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let text = text.to_owned();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut report = WatchReport::default();
            while !flag.load(Ordering::Relaxed) {
                report.requests += 1;
                match http_get(port, "/") {
                    Some((200, body)) if body.contains(&text) => {}
                    Some((200, body)) => report.unexpected.push(body),
                    other => report.failures.push(other),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            report
        });
        Self { stop, thread }
    }

    /// Stops the thread and returns what it observed.
    pub fn stop(self) -> WatchReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("watcher thread")
    }
}

/// `(desired, ready)` from a deployment's `replicas`.
pub fn replica_counts(deployment: &Value) -> (u64, u64) {
    let replicas = &deployment["replicas"];
    (
        replicas["desired"].as_u64().expect("replicas.desired"),
        replicas["ready"].as_u64().expect("replicas.ready"),
    )
}

/// Builds a manifest that runs the sample workload with `replicas` replicas
/// behind the stable endpoint on host port `base`, with a fast HTTP health
/// check.
pub fn sample_manifest(name: &str, replicas: u32, base: u16, greeting: &str) -> String {
    format!(
        r#"name: {name}
version: "1.0"
run:
  command: ["{SAMPLE}", "serve", "--log-rate", "0"]
replicas: {replicas}
ports:
  - {{ name: http, containerPort: 8080, hostPort: {base} }}
env:
  GREETING: {greeting}
healthCheck:
  type: http
  path: /healthz
  port: 8080
  periodSeconds: 1
  failureThreshold: 2
terminationGracePeriodSeconds: 5
"#
    )
}

/// Runs `program` with `args` in `dir` and asserts it succeeds.
pub fn sh(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the OS user name the tests run as.
pub fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8(output.stdout)
        .expect("UTF-8 user name")
        .trim()
        .to_owned()
}

/// Returns a value that appears nowhere by chance.
pub fn random_canary() -> String {
    let mut bytes = [0u8; 16];
    let mut urandom = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
    std::io::Read::read_exact(&mut urandom, &mut bytes).expect("read /dev/urandom");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("canary-{hex}")
}

/// Runs `command` with `input` on standard input.
pub fn run_with_input(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shipdeck");
    let mut stdin = child.stdin.take().expect("stdin");
    // A command that rejects its arguments exits without reading its input.
    if let Err(error) = stdin.write_all(input) {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write standard input: {error}"
        );
    }
    drop(stdin);
    child.wait_with_output().expect("wait for shipdeck")
}

pub fn set_secret(home: &TestHome, name: &str, value: &str) {
    let output = run_with_input(
        home.command(&["secrets", "set", name]),
        format!("{value}\n").as_bytes(),
    );
    assert!(
        output.status.success(),
        "secrets set {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Lists the files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).expect("read a directory");
            stack.extend(entries.map(|entry| entry.expect("a directory entry").path()));
        } else if contains(&std::fs::read(&path).unwrap_or_default(), needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

/// Sends a POST without a body to 127.0.0.1:`port` and asserts a 2xx response.
pub fn http_post(port: u16, path: &str) {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    assert!(
        response.starts_with(b"HTTP/1.1 2"),
        "POST {path}: {}",
        String::from_utf8_lossy(&response)
    );
}

/// Accepts webhook POSTs, replies to each with `status`, and sends their JSON
/// bodies to the returned receiver.
pub fn webhook_receiver(status: u16) -> (u16, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
    let port = listener.local_addr().expect("address").port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let mut stream = reader.into_inner();
            let answer =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
            if let Ok(json) = serde_json::from_slice(&body) {
                if sender.send(json).is_err() {
                    return;
                }
            }
        }
    });
    (port, receiver)
}
