//! End-to-end tests of the `shipdeck-sample` binary: each test starts its own
//! process on its own port and kills it when the test ends, even on failure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const SAMPLE: &str = env!("CARGO_BIN_EXE_shipdeck-sample");

/// How long a test waits for the sample to start listening or to exit.
const PATIENCE: Duration = Duration::from_secs(10);

/// Returns a port that was free a moment ago. Another process may take it before the
/// sample binds it, which fails that test with "address in use" rather than passing wrongly.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A running sample process, killed and reaped when dropped.
struct Sample {
    child: Child,
    port: u16,
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sample {
    /// Starts the sample with `args` and `env` on a free port and waits until it listens.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Sample {
        Self::start_with_output(args, env, Stdio::null, Stdio::null)
    }

    fn start_with_output(
        args: &[&str],
        env: &[(&str, &str)],
        stdout: fn() -> Stdio,
        stderr: fn() -> Stdio,
    ) -> Sample {
        let port = free_port();
        let child = Command::new(SAMPLE)
            .args(args)
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(stdout())
            .stderr(stderr())
            .spawn()
            .expect("start shipdeck-sample");
        let mut sample = Sample { child, port };

        sample.wait_until_listening();
        sample
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.try_wait().expect("poll the child");
            assert!(
                exited.is_none(),
                "sample exited before listening: {exited:?}"
            );
            assert!(
                Instant::now() < deadline,
                "sample did not listen on {}",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self, path: &str) -> HttpResponse {
        self.send("GET", path)
    }

    fn post(&self, path: &str) -> HttpResponse {
        self.send("POST", path)
    }

    fn send(&self, method: &str, path: &str) -> HttpResponse {
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        self.send_raw(request.as_bytes())
    }

    /// Sends `bytes` on a new connection and reads until the server closes it.
    fn send_raw(&self, bytes: &[u8]) -> HttpResponse {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set timeout");
        stream.write_all(bytes).expect("send request");

        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read response");
        HttpResponse::parse(&String::from_utf8(raw).expect("UTF-8 response"))
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        kill(Pid::from_raw(pid), signal).expect("send signal");
    }

    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(Instant::now() < deadline, "sample did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads the piped output streams to their end; call it after the process exited.
    fn read_output(&mut self) -> (String, String) {
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(pipe) = self.child.stdout.as_mut() {
            pipe.read_to_string(&mut stdout).expect("read stdout");
        }
        if let Some(pipe) = self.child.stderr.as_mut() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        (stdout, stderr)
    }
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn parse(raw: &str) -> HttpResponse {
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        let mut lines = head.split("\r\n");

        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status code");
        let headers = lines
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();

        HttpResponse {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Runs the sample without `PORT` in its environment (unless `env` sets it) and
/// returns its exit status and stderr.
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let output = Command::new(SAMPLE)
        .args(args)
        .env_remove("PORT")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .output()
        .expect("run shipdeck-sample");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn healthz_and_toggles() {
    let sample = Sample::start(&["serve", "--log-rate", "0"], &[]);

    let healthy = sample.get("/healthz");
    assert_eq!(healthy.status, 200);
    assert_eq!(healthy.body, "ok\n");

    assert_eq!(sample.post("/fail-health").status, 200);
    assert_eq!(sample.get("/healthz").status, 503);

    assert_eq!(sample.post("/recover-health").status, 200);
    assert_eq!(sample.get("/healthz").status, 200);
}

#[test]
fn fail_health_flag() {
    let sample = Sample::start(&["--fail-health", "--log-rate", "0"], &[]);

    assert_eq!(sample.get("/healthz").status, 503);
    assert_eq!(sample.post("/recover-health").status, 200);
    assert_eq!(sample.get("/healthz").status, 200);
}

#[test]
fn ready_delay_reports_unready() {
    let sample = Sample::start(&["--ready-delay", "1s", "--log-rate", "0"], &[]);

    assert_eq!(sample.get("/healthz").status, 503);

    let deadline = Instant::now() + PATIENCE;
    while sample.get("/healthz").status != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn greeting_shows_identity() {
    let env = [
        ("GREETING", "bonjour"),
        ("SHIPDECK_REPLICA", "3"),
        ("APP_VERSION", "9.9.9"),
    ];
    let sample = Sample::start(&["--log-rate", "0"], &env);

    let response = sample.get("/");
    assert_eq!(response.status, 200);
    assert!(response.body.contains("bonjour"), "{}", response.body);
    assert!(response.body.contains("replica 3"), "{}", response.body);
    assert!(response.body.contains("version 9.9.9"), "{}", response.body);

    let labelled = Sample::start(&["--log-rate", "0", "--version-label", "2.0"], &env);
    let body = labelled.get("/").body;
    assert!(body.contains("version 2.0"), "{body}");
}

#[test]
fn unknown_path_and_wrong_method() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);

    assert_eq!(sample.get("/nope").status, 404);

    let wrong = sample.post("/healthz");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));

    let wrong_action = sample.get("/exit");
    assert_eq!(wrong_action.status, 405);
    assert_eq!(wrong_action.header("allow"), Some("POST"));

    let head = sample.send("HEAD", "/healthz");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
}

#[test]
fn status_route_answers_requested_code() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);

    let failing = sample.get("/status/500");
    assert_eq!(failing.status, 500);
    assert_eq!(failing.body, "status 500 as requested\n");
    assert_eq!(sample.get("/status/201").status, 201);
    assert_eq!(sample.send("HEAD", "/status/503").status, 503);

    let no_content = sample.get("/status/204");
    assert_eq!(no_content.status, 204);
    assert_eq!(no_content.body, "");
    assert_eq!(no_content.header("content-length"), None);
    let not_modified = sample.get("/status/304");
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.body, "");

    for invalid in ["/status/100", "/status/600", "/status/abc", "/status/"] {
        let rejected = sample.get(invalid);
        assert_eq!(rejected.status, 400, "{invalid}");
        assert!(
            rejected.body.contains("200 to 599"),
            "{invalid}: {}",
            rejected.body
        );
    }
    assert_eq!(sample.post("/status/200").status, 405);

    let metrics = parse_exposition(&sample.get("/metrics").body);
    let series = "sample_requests_total{path=\"/status\",code=\"500\"}";
    assert_eq!(sample_value(&metrics, series), Some(1.0));
    let rejected = "sample_requests_total{path=\"/status\",code=\"400\"}";
    assert_eq!(sample_value(&metrics, rejected), Some(4.0));
}

#[test]
fn malformed_requests_rejected() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);

    assert_eq!(sample.send_raw(b"GARBAGE\r\n\r\n").status, 400);
    assert_eq!(sample.send_raw(b"GET / HTTP/1.1\r\n\r\n").status, 400);
    assert_eq!(sample.send_raw(b"\xff\xfe / HTTP/1.1\r\n\r\n").status, 400);

    let big = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(sample.send_raw(big.as_bytes()).status, 431);

    // The server keeps serving after the bad requests.
    assert_eq!(sample.get("/healthz").status, 200);
}

#[test]
fn keep_alive_serves_several_requests() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);
    let mut stream = TcpStream::connect(("127.0.0.1", sample.port)).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("set timeout");

    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let expected = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
    for _ in 0..3 {
        stream.write_all(request).expect("send request");
        let mut answer = vec![0u8; expected.len()];
        stream.read_exact(&mut answer).expect("read response");
        assert_eq!(String::from_utf8_lossy(&answer), expected);
    }
}

/// Checks every line of a Prometheus text exposition and returns its samples.
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut typed: Vec<String> = Vec::new();
    let mut samples = Vec::new();

    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name and kind");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unexpected type in {line:?}"
            );
            typed.push(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (_, help) = rest.split_once(' ').expect("HELP name and text");
            assert!(!help.is_empty(), "empty HELP in {line:?}");
            continue;
        }

        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = value.parse().expect("numeric sample value");
        let name = series.split('{').next().expect("metric name");
        let family_declared = typed.iter().any(|family| {
            name == family
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(family.as_str()))
        });
        assert!(
            family_declared,
            "sample {line:?} comes before its # TYPE line"
        );
        if series.contains('{') {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
        samples.push((series.to_string(), value));
    }
    samples
}

fn sample_value(samples: &[(String, f64)], series: &str) -> Option<f64> {
    samples
        .iter()
        .find(|(name, _)| name == series)
        .map(|(_, value)| *value)
}

#[test]
fn metrics_parse_and_count() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);
    let root_series = "sample_requests_total{path=\"/\",code=\"200\"}";

    let before = sample.get("/metrics");
    assert_eq!(before.status, 200);
    let content_type = before.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let before = parse_exposition(&before.body);
    let root_before = sample_value(&before, root_series).unwrap_or(0.0);

    for _ in 0..3 {
        assert_eq!(sample.get("/").status, 200);
    }

    let after = parse_exposition(&sample.get("/metrics").body);
    assert_eq!(sample_value(&after, root_series), Some(root_before + 3.0));

    let count = sample_value(&after, "sample_request_duration_seconds_count").expect("count");
    let infinite = sample_value(
        &after,
        "sample_request_duration_seconds_bucket{le=\"+Inf\"}",
    )
    .expect("+Inf bucket");
    assert_eq!(count, infinite);
    assert!(count >= 4.0, "{count}");

    let memory = sample_value(&after, "process_resident_memory_bytes").expect("RSS");
    assert!(memory > 0.0);
    let start = sample_value(&after, "process_start_time_seconds").expect("start time");
    assert!(start > 1.0e9, "{start}");
    assert!(sample_value(&after, "sample_log_lines_total{level=\"info\"}").is_some());
}

#[test]
fn exit_endpoint_sets_status() {
    let mut sample = Sample::start(&["--log-rate", "0"], &[]);

    let response = sample.post("/exit?code=3");
    assert_eq!(response.status, 200);

    let status = sample.wait_for_exit();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn exit_endpoint_rejects_bad_code() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);

    assert_eq!(sample.post("/exit?code=300").status, 400);
    assert_eq!(sample.post("/exit?code=x").status, 400);
    assert_eq!(sample.get("/healthz").status, 200);
}

#[test]
fn exit_after_flag() {
    let args = [
        "--exit-after",
        "300ms",
        "--exit-code",
        "4",
        "--log-rate",
        "0",
    ];
    let mut sample = Sample::start(&args, &[]);

    let status = sample.wait_for_exit();
    assert_eq!(status.code(), Some(4));
}

#[test]
fn burn_cpu_endpoint() {
    let sample = Sample::start(&["--log-rate", "0"], &[]);

    assert_eq!(sample.post("/burn-cpu?seconds=0.2").status, 202);
    assert_eq!(sample.post("/burn-cpu").status, 400);
    assert_eq!(sample.post("/burn-cpu?seconds=-1").status, 400);
}

#[test]
fn sigterm_exits_zero() {
    let mut sample =
        Sample::start_with_output(&["--log-rate", "0"], &[], Stdio::piped, Stdio::piped);
    assert_eq!(sample.get("/healthz").status, 200);

    let sent = Instant::now();
    sample.signal(Signal::SIGTERM);
    let status = sample.wait_for_exit();

    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    let (stdout, _) = sample.read_output();
    assert!(stdout.contains("shutting down"), "{stdout}");
}

#[test]
fn logs_mix_levels_and_formats() {
    let mut sample =
        Sample::start_with_output(&["--log-rate", "200"], &[], Stdio::piped, Stdio::piped);

    // At 200 lines per second, half a second gives far more than the 30 lines
    // in which every level appears in every format.
    thread::sleep(Duration::from_millis(500));
    sample.signal(Signal::SIGTERM);
    assert!(sample.wait_for_exit().success());
    let (stdout, stderr) = sample.read_output();

    for expected in [
        "INFO ",
        "{\"level\":\"info\"",
        "level=info ",
        "DEBUG ",
        "level=debug ",
    ] {
        assert!(
            stdout.contains(expected),
            "stdout lacks {expected:?}:\n{stdout}"
        );
    }
    for expected in ["WARN ", "{\"level\":\"warn\"", "level=error ", "ERROR "] {
        assert!(
            stderr.contains(expected),
            "stderr lacks {expected:?}:\n{stderr}"
        );
    }
    assert!(!stderr.contains("INFO "), "info line on stderr:\n{stderr}");
    assert!(!stdout.contains("WARN "), "warn line on stdout:\n{stdout}");
}

#[test]
fn missing_port_rejected() {
    let (status, stderr) = run_to_exit(&["serve"], &[]);

    assert!(!status.success());
    assert!(stderr.contains("PORT is not set"), "{stderr}");
}

#[test]
fn invalid_port_rejected() {
    let (status, stderr) = run_to_exit(&[], &[("PORT", "eighty")]);

    assert!(!status.success());
    assert!(stderr.contains("PORT=\"eighty\""), "{stderr}");
}

#[test]
fn port_in_use_rejected() {
    let taken = TcpListener::bind("0.0.0.0:0").expect("bind a port");
    let port = taken.local_addr().expect("address").port().to_string();

    let (status, stderr) = run_to_exit(&["--port", &port], &[]);

    assert!(!status.success());
    assert!(stderr.contains(&format!("port {port}")), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
}
