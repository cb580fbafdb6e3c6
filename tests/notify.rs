//! Notification channels end to end: a webhook receiver that the test runs
//! on 127.0.0.1 gets the alert notifications of a real agent, and failures
//! are retried and then recorded as events. The https receiver is a
//! tokio-rustls server with a CA and a leaf certificate made by the test.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A webhook receiver over TLS: its port, the PEM file of the CA that signed
/// its certificate, and the JSON bodies it received.
struct TlsReceiver {
    port: u16,
    ca_file: PathBuf,
    received: mpsc::Receiver<Value>,
}

/// Makes a CA and a leaf for `names` (host names or IP addresses) signed by
/// it, writes the CA to `ca.pem` in the scratch directory, and serves
/// webhooks with the leaf on 127.0.0.1, responding with 200.
fn tls_webhook_receiver(home: &TestHome, names: &[&str]) -> TlsReceiver {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shipdeck test CA");
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    let ca_file = home.write("ca.pem", &ca.pem());
    let (port, received) = serve_certificate(leaf.der().clone(), &leaf_key);
    TlsReceiver {
        port,
        ca_file,
        received,
    }
}

/// Makes one self-signed certificate for `names` marked CA:TRUE, as
/// `openssl req -x509` makes it by default, writes it to `cert.pem` and
/// serves webhooks with it. An `expired` one ended in 2021.
fn self_signed_ca_receiver(home: &TestHome, names: &[&str], expired: bool) -> TlsReceiver {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("certificate params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().expect("key");
    let certificate = params.self_signed(&key).expect("self-signed certificate");
    let ca_file = home.write("cert.pem", &certificate.pem());
    let (port, received) = serve_certificate(certificate.der().clone(), &key);
    TlsReceiver {
        port,
        ca_file,
        received,
    }
}

/// Serves webhooks over TLS with `certificate` on 127.0.0.1, responding
/// with 200; returns the port and the JSON bodies received.
fn serve_certificate(
    certificate: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    key: &rcgen::KeyPair,
) -> (u16, mpsc::Receiver<Value>) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .expect("server TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
    let port = listener.local_addr().expect("address").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the receiver");
        runtime.block_on(serve_tls(listener, acceptor, sender));
    });
    (port, received)
}

async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    sender: mpsc::Sender<Value>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    while let Ok((stream, _)) = listener.accept().await {
        // A client that rejects the certificate ends the handshake; the
        // receiver just waits for the next connection.
        let Ok(stream) = acceptor.accept(stream).await else {
            continue;
        };
        let mut reader = tokio::io::BufReader::new(stream);
        let mut length = 0usize;
        let mut line = String::new();
        while reader.read_line(&mut line).await.is_ok_and(|read| read > 0) {
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            line.clear();
        }
        let mut body = vec![0u8; length];
        let _ = reader.read_exact(&mut body).await;
        let mut stream = reader.into_inner();
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        if let Ok(json) = serde_json::from_slice(&body) {
            if sender.send(json).is_err() {
                return;
            }
        }
    }
}

#[test]
fn https_webhook_with_its_ca_file_gets_the_test() {
    let home = TestHome::new();
    let receiver = tls_webhook_receiver(&home, &["localhost", "127.0.0.1"]);
    let ca_file = receiver.ca_file.to_str().expect("UTF-8 path");
    for (name, host) in [("by-name", "localhost"), ("by-address", "127.0.0.1")] {
        let url = format!("https://{host}:{}/hook", receiver.port);
        home.ok(&[
            "notify",
            "add",
            name,
            "--webhook",
            &url,
            "--ca-file",
            ca_file,
        ]);
        home.ok(&["notify", "test", name]);
        let test = receiver
            .received
            .recv_timeout(DEADLINE)
            .expect("the test notification over TLS");
        assert_eq!(test["type"], "test", "{test:#}");
        assert_eq!(test["title"], format!("Test of channel {name}"), "{test:#}");
    }
    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed[0]["caFile"], ca_file, "{listed:#}");
    assert!(
        listed[0]["caPem"]
            .as_str()
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")),
        "{listed:#}"
    );
}

#[test]
fn untrusted_https_webhook_is_recorded_as_not_trusted() {
    let home = TestHome::new();
    let receiver = tls_webhook_receiver(&home, &["localhost", "127.0.0.1"]);
    let url = format!("https://localhost:{}/hook", receiver.port);
    home.ok(&["notify", "add", "private", "--webhook", &url]);
    let error = home.fails(&["notify", "test", "private"]);
    assert!(
        error.contains("certificate of localhost is not trusted") && error.contains("--ca-file"),
        "{error}"
    );

    let manifest = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n  alerts:\n    - { name: running, metric: replicas_ready, condition: gte, threshold: 1, notifications: [private] }\n";
    let path = home.write("up.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let failure = wait_for(
        "a failed delivery in the events",
        Duration::from_secs(40),
        || {
            let events = home.json(&["events", "up"]);
            events
                .as_array()?
                .iter()
                .filter(|event| event["action"] == "notify-failed")
                .find_map(|event| event["message"].as_str().map(str::to_owned))
        },
    );
    assert!(
        failure.contains("channel private") && failure.contains("is not trusted"),
        "{failure}"
    );
    assert!(
        receiver.received.try_recv().is_err(),
        "nothing is sent to a server that is not trusted"
    );
}

#[test]
fn https_webhook_under_another_name_is_a_name_mismatch() {
    let home = TestHome::new();
    let receiver = tls_webhook_receiver(&home, &["hooks.example.test"]);
    let url = format!("https://127.0.0.1:{}/hook", receiver.port);
    let ca_file = receiver.ca_file.to_str().expect("UTF-8 path");
    home.ok(&[
        "notify",
        "add",
        "ops",
        "--webhook",
        &url,
        "--ca-file",
        ca_file,
    ]);
    let error = home.fails(&["notify", "test", "ops"]);
    assert!(
        error.contains("certificate of 127.0.0.1 is for hooks.example.test")
            && error.contains("name mismatch"),
        "{error}"
    );
}

#[test]
fn ca_files_are_checked_when_the_channel_is_added() {
    let home = TestHome::new();
    let url = "https://hooks.example.test/x";
    let junk = home.write("junk.pem", "not a certificate\n");
    let junk = junk.to_str().expect("UTF-8 path");
    let error = home.fails(&["notify", "add", "ops", "--webhook", url, "--ca-file", junk]);
    assert!(
        error.contains(junk) && error.contains("no PEM certificate"),
        "{error}"
    );
    let missing = home.work().join("missing.pem");
    let missing = missing.to_str().expect("UTF-8 path");
    let error = home.fails(&[
        "notify",
        "add",
        "ops",
        "--webhook",
        url,
        "--ca-file",
        missing,
    ]);
    assert!(
        error.contains(missing) && error.contains("reading the CA file"),
        "{error}"
    );
    let receiver = tls_webhook_receiver(&home, &["localhost"]);
    let ca_file = receiver.ca_file.to_str().expect("UTF-8 path");
    let plain = "http://127.0.0.1:9/x";
    let error = home.fails(&[
        "notify",
        "add",
        "ops",
        "--webhook",
        plain,
        "--ca-file",
        ca_file,
    ]);
    assert!(
        error.contains("http://, which uses no certificates"),
        "{error}"
    );
    let channels = home.json(&["notify", "ls"]);
    assert_eq!(channels.as_array().map(Vec::len), Some(0), "{channels:#}");
}

#[test]
fn alert_notifications_reach_a_webhook_once_each() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);
    home.ok(&["notify", "test", "ops"]);
    let test = received
        .recv_timeout(DEADLINE)
        .expect("the test notification");
    assert_eq!(test["type"], "test");

    let manifest = format!(
        "name: hot\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  alerts:\n    - {{ name: busy, metric: cpu_percentage, condition: gt, threshold: 50, for: 3s, severity: critical, notifications: [ops] }}\n"
    );
    let path = home.write("hot.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);
    let replica = replica_ports(&home.get("hot", &[]))[0];
    http_post(replica, "/burn-cpu?seconds=8");

    let firing = received
        .recv_timeout(DEADLINE)
        .expect("a firing notification");
    assert_eq!(firing["type"], "alert-firing", "{firing:#}");
    assert_eq!(firing["severity"], "critical");
    assert_eq!(firing["deployment"], "hot");
    assert!(
        firing["title"]
            .as_str()
            .unwrap_or_default()
            .contains("busy firing"),
        "{firing:#}"
    );
    let resolved = received
        .recv_timeout(DEADLINE)
        .expect("a resolved notification");
    assert_eq!(resolved["type"], "alert-resolved", "{resolved:#}");
    assert_eq!(firing["alert"], "hot/development/busy", "{firing:#}");
    assert_eq!(resolved["alert"], firing["alert"], "{resolved:#}");
    let sequence = |body: &Value| body["sequence"].as_u64().unwrap_or_default();
    assert!(sequence(&firing) > sequence(&test), "{firing:#}");
    assert!(sequence(&resolved) > sequence(&firing), "{resolved:#}");
    assert!(test.get("alert").is_none(), "{test:#}");

    // Nothing else arrives: one firing, one resolved, no repeats.
    assert!(received.recv_timeout(Duration::from_secs(3)).is_err());

    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed[0]["name"], "ops");
    assert_eq!(listed[0]["kind"], "webhook");
}

#[test]
fn failing_webhook_is_retried_then_recorded() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(500);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "broken", "--webhook", &url]);

    let error = home.fails(&["notify", "test", "broken"]);
    assert!(
        error.contains(&format!("the webhook at 127.0.0.1:{port} answered 500")),
        "{error}"
    );
    assert!(
        received.recv_timeout(DEADLINE).is_ok(),
        "the test reached the receiver"
    );

    let manifest = format!(
        "name: hot\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\"]\nports: [{{ containerPort: 8080 }}]\nmonitoring:\n  interval: 1s\n  alerts:\n    - {{ name: up, metric: replicas_ready, condition: gte, threshold: 1, notifications: [broken, missing] }}\n"
    );
    let path = home.write("hot.yaml", &manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let failures = wait_for(
        "failed deliveries in the events",
        Duration::from_secs(40),
        || {
            let events = home.json(&["events", "hot"]);
            let failed: Vec<String> = events
                .as_array()?
                .iter()
                .filter(|event| event["action"] == "notify-failed")
                .filter_map(|event| event["message"].as_str().map(str::to_owned))
                .collect();
            (failed.len() >= 2).then_some(failed)
        },
    );
    assert!(
        failures
            .iter()
            .any(|m| m.contains("channel missing") && m.contains("no channel named")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|m| m.contains("channel broken") && m.contains("500")),
        "{failures:?}"
    );
    let attempts =
        std::iter::from_fn(|| received.recv_timeout(Duration::from_millis(100)).ok()).count();
    assert_eq!(attempts, 4, "four attempts before giving up");
}

#[test]
fn bad_channels_get_clear_errors() {
    let home = TestHome::new();
    let error = home.fails(&[
        "notify",
        "add",
        "ops",
        "--webhook",
        "https://bot:s3cret@hooks.example.test/x",
    ]);
    assert!(error.contains("user name or password"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
    let error = home.fails(&["notify", "add", "ops", "--webhook", "ftp://x/"]);
    assert!(error.contains("is not http(s)://"), "{error}");
    let error = home.fails(&["notify", "add", "Ops Team", "--in-app"]);
    assert!(error.contains("invalid channel name"), "{error}");
    let error = home.fails(&["notify", "rm", "nobody"]);
    assert!(error.contains("no channel named \"nobody\""), "{error}");
    home.ok(&["notify", "add", "inbox", "--in-app"]);
    home.ok(&["notify", "test", "inbox"]);
    let history = home.json(&["notify", "history"]);
    assert_eq!(history[0]["type"], "test");
    let table = home.ok(&["notify", "history"]);
    assert!(table.contains("MESSAGE"), "{table}");
    assert!(table.contains("shipdeck sent this to check"), "{table}");
}

#[test]
fn command_channel_gets_json_on_stdin() {
    let home = TestHome::new();
    let out = home.work().join("notification.json");
    let script = format!("cat > {}", out.display());
    home.ok(&["notify", "add", "script", "--command", "sh", "-c", &script]);
    home.ok(&["notify", "test", "script"]);
    let written: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the command wrote its input"))
            .expect("JSON on standard input");
    assert_eq!(written["type"], "test");

    home.ok(&["notify", "add", "failing", "--command", "false"]);
    let error = home.fails(&["notify", "test", "failing"]);
    assert!(error.contains("exited with"), "{error}");
}

#[test]
fn command_arguments_survive_both_separator_forms() {
    let home = TestHome::new();
    let out = home.work().join("args.out");
    let script = format!("cat > /dev/null; echo \"$0|$1\" >> {}", out.display());
    home.ok(&[
        "notify",
        "add",
        "after",
        "--command",
        "/bin/sh",
        "--",
        "-c",
        &script,
        "zero",
        "one two",
    ]);
    home.ok(&[
        "notify",
        "add",
        "before",
        "--command",
        "--",
        "/bin/sh",
        "-c",
        &script,
        "zero",
        "one two",
    ]);
    home.ok(&["notify", "test", "after"]);
    home.ok(&["notify", "test", "before"]);
    let written = std::fs::read_to_string(&out).expect("the commands ran");
    assert_eq!(written, "zero|one two\nzero|one two\n");

    let listed = home.json(&["notify", "ls"]);
    assert_eq!(
        listed[0]["command"],
        serde_json::json!(["/bin/sh", "-c", script, "zero", "one two"]),
        "{listed:#}"
    );
    let table = home.ok(&["notify", "ls"]);
    assert!(table.contains("zero 'one two'"), "{table}");
}

#[test]
fn command_programs_are_checked_and_stderr_reported() {
    let home = TestHome::new();
    let error = home.fails(&["notify", "add", "gone", "--command", "/nonexistent/prog"]);
    assert!(
        error.contains("\"/nonexistent/prog\"") && error.contains("no such file"),
        "{error}"
    );
    let error = home.fails(&["notify", "add", "rel", "--command", "cmd.sh"]);
    assert!(
        error.contains("\"cmd.sh\"") && error.contains("agent's PATH"),
        "{error}"
    );
    let error = home.fails(&["notify", "add", "rel", "--command", "./cmd.sh"]);
    assert!(error.contains("absolute path"), "{error}");
    let plain = home.write("plain.sh", "#!/bin/sh\nexit 0\n");
    let error = home.fails(&["notify", "add", "nox", "--command", plain.to_str().unwrap()]);
    assert!(error.contains("chmod +x"), "{error}");

    let script = "cat > /dev/null; printf 'boom on stderr\\n\\033[31mred\\033[0m\\n' >&2; exit 4";
    home.ok(&[
        "notify",
        "add",
        "loud",
        "--command",
        "/bin/sh",
        "-c",
        script,
    ]);
    let error = home.fails(&["notify", "test", "loud"]);
    assert!(error.contains("exit status: 4"), "{error}");
    assert!(error.contains("boom on stderr | red"), "{error}");
    assert!(!error.contains('\u{1b}'), "{error:?}");
}

#[test]
fn repeats_stop_when_acknowledged_and_silences_are_listed() {
    let home = TestHome::new();
    let (port, received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook");
    home.ok(&["notify", "add", "ops", "--webhook", &url]);

    let manifest = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n  alerts:\n    - { name: running, metric: replicas_ready, condition: gte, threshold: 1, repeatInterval: 2s, notifications: [ops] }\n";
    let path = home.write("up.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let first = received
        .recv_timeout(DEADLINE)
        .expect("a firing notification");
    assert_eq!(first["type"], "alert-firing", "{first:#}");
    let repeat = received.recv_timeout(DEADLINE).expect("a reminder");
    assert_eq!(repeat["type"], "alert-repeat", "{repeat:#}");

    let listed = home.json(&["alerts", "ls", "up"]);
    assert_eq!(listed[0]["rule"], "running", "{listed:#}");
    assert_eq!(listed[0]["state"], "firing", "{listed:#}");

    home.ok(&["alerts", "ack", "up", "running"]);
    // A reminder already on its way may still arrive; after that, none.
    while received.recv_timeout(Duration::from_millis(1500)).is_ok() {}
    assert!(
        received.recv_timeout(Duration::from_secs(4)).is_err(),
        "no reminders after the acknowledgement"
    );
    let listed = home.json(&["alerts", "ls"]);
    assert_eq!(
        listed[0]["acknowledged"]["author"],
        current_user(),
        "{listed:#}"
    );

    home.ok(&[
        "alerts",
        "silence",
        "up",
        "--for",
        "1h",
        "--comment",
        "maintenance",
    ]);
    let listed = home.json(&["alerts", "ls", "up"]);
    assert_eq!(listed[0]["silenced"], true, "{listed:#}");

    let error = home.fails(&["alerts", "ack", "up", "nosuchrule"]);
    assert!(
        error.contains("no alert from a rule named \"nosuchrule\""),
        "{error}"
    );
    let error = home.fails(&["alerts", "silence", "up", "--for", "1h", "--comment", " "]);
    assert!(error.contains("comment"), "{error}");
    let events = home.json(&["events", "up"]);
    let actions: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["action"].as_str())
        .collect();
    assert!(actions.contains(&"alert-acknowledged"), "{actions:?}");
    assert!(actions.contains(&"alert-silenced"), "{actions:?}");
}

#[test]
fn webhook_urls_with_invalid_ports_are_rejected() {
    let home = TestHome::new();
    for (url, port) in [
        ("http://127.0.0.1:99999/", "99999"),
        ("http://127.0.0.1:65536/", "65536"),
        ("http://127.0.0.1:8a/", "8a"),
        ("http://127.0.0.1:/", ""),
        ("http://127.0.0.1:0/", "0"),
    ] {
        let error = home.fails(&["notify", "add", "p", "--webhook", url]);
        assert!(
            error.contains(&format!("invalid port {port:?}")) && error.contains("1 to 65535"),
            "{url}: {error}"
        );
    }
    for url in ["http://127.1/", "http://[zz]/", "http://127.0.0.1/x#frag"] {
        let error = home.fails(&["notify", "add", "p", "--webhook", url]);
        assert!(error.contains(url), "{url}: {error}");
    }
    let channels = home.json(&["notify", "ls"]);
    assert_eq!(channels.as_array().map(Vec::len), Some(0), "{channels:#}");
}

#[test]
fn self_signed_ca_certificate_pinned_by_ca_file() {
    let home = TestHome::new();
    let receiver = self_signed_ca_receiver(&home, &["127.0.0.1"], false);
    let url = format!("https://127.0.0.1:{}/hook", receiver.port);
    home.ok(&["notify", "add", "plain", "--webhook", &url]);
    let error = home.fails(&["notify", "test", "plain"]);
    assert!(
        error.contains("is a CA certificate")
            && error.contains("basicConstraints=critical,CA:FALSE"),
        "{error}"
    );
    assert!(!error.contains("Other("), "{error}");
    assert!(!error.contains("CaUsedAsEndEntity"), "{error}");

    let cert = receiver.ca_file.to_str().expect("UTF-8 path");
    home.ok(&[
        "notify",
        "add",
        "pinned",
        "--webhook",
        &url,
        "--ca-file",
        cert,
    ]);
    home.ok(&["notify", "test", "pinned"]);
    let test = receiver
        .received
        .recv_timeout(DEADLINE)
        .expect("the test notification over TLS");
    assert_eq!(test["title"], "Test of channel pinned", "{test:#}");
}

#[test]
fn pinned_certificate_checks_name_and_dates() {
    let home = TestHome::new();
    let other_name = self_signed_ca_receiver(&home, &["hooks.example.test"], false);
    let url = format!("https://127.0.0.1:{}/hook", other_name.port);
    let cert = other_name.ca_file.to_str().expect("UTF-8 path");
    home.ok(&[
        "notify",
        "add",
        "named",
        "--webhook",
        &url,
        "--ca-file",
        cert,
    ]);
    let error = home.fails(&["notify", "test", "named"]);
    assert!(
        error.contains("is for hooks.example.test") && error.contains("name mismatch"),
        "{error}"
    );

    let expired = self_signed_ca_receiver(&home, &["127.0.0.1"], true);
    let url = format!("https://127.0.0.1:{}/hook", expired.port);
    let cert = expired.ca_file.to_str().expect("UTF-8 path");
    home.ok(&["notify", "add", "old", "--webhook", &url, "--ca-file", cert]);
    let error = home.fails(&["notify", "test", "old"]);
    assert!(error.contains("has expired"), "{error}");
    assert!(other_name.received.try_recv().is_err());
    assert!(expired.received.try_recv().is_err());
}

#[test]
fn adding_a_taken_name_needs_replace() {
    let home = TestHome::new();
    let (port, _received) = webhook_receiver(200);
    let url = format!("http://127.0.0.1:{port}/hook?token=s3cret");
    let added = home.ok(&["notify", "add", "hook", "--webhook", &url]);
    assert_eq!(added, "channel hook added\n");
    let error = home.fails(&["notify", "add", "hook", "--in-app"]);
    assert!(
        error.contains("channel \"hook\" exists already") && error.contains("--replace"),
        "{error}"
    );
    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed[0]["kind"], "webhook", "{listed:#}");

    let replaced = home.ok(&["notify", "add", "hook", "--in-app", "--replace"]);
    assert_eq!(replaced, "channel hook replaced\n");
    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed[0]["kind"], "inApp", "{listed:#}");
    let added = home.ok(&["notify", "add", "fresh", "--in-app", "--replace"]);
    assert_eq!(added, "channel fresh added\n");

    let events = home.json(&["events"]);
    let changes: Vec<(String, String, String)> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| {
            event["action"]
                .as_str()
                .is_some_and(|action| action.starts_with("notify-channel-"))
        })
        .map(|event| {
            let text = |field: &str| event[field].as_str().unwrap_or_default().to_owned();
            (text("action"), text("user"), text("message"))
        })
        .collect();
    let actions: Vec<&str> = changes.iter().map(|(action, ..)| action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "notify-channel-added",
            "notify-channel-replaced",
            "notify-channel-added"
        ],
        "{changes:?}"
    );
    assert!(
        changes.iter().all(|(_, user, _)| *user == current_user()),
        "{changes:?}"
    );
    assert!(
        changes[0]
            .2
            .contains(&format!("webhook to http://127.0.0.1:{port}")),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .all(|(.., message)| !message.contains("s3cret")),
        "{changes:?}"
    );
}

#[test]
fn removing_a_named_channel_needs_force() {
    let home = TestHome::new();
    home.ok(&["notify", "add", "ops", "--in-app"]);
    home.ok(&["notify", "add", "spare", "--in-app"]);
    let manifest = "name: up\nrun:\n  command: [sleep, \"1000\"]\nmonitoring:\n  interval: 1s\n  notifications: [ops]\n  alerts:\n    - { name: running, metric: replicas_ready, condition: gte, threshold: 1, notifications: [ops] }\n";
    let path = home.write("up.yaml", manifest);
    home.ok(&["deploy", "-f", path.to_str().unwrap(), "--wait"]);

    let error = home.fails(&["notify", "rm", "ops"]);
    assert!(
        error.contains("alert rule running of up")
            && error.contains("monitoring.notifications of up")
            && error.contains("--force"),
        "{error}"
    );
    let listed = home.json(&["notify", "ls"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed:#}");

    let removed = home.ok(&["notify", "rm", "ops", "--force"]);
    assert!(removed.starts_with("channel ops removed\n"), "{removed}");
    assert!(
        removed.contains("warning: alert rule running of up"),
        "{removed}"
    );
    assert_eq!(
        home.ok(&["notify", "rm", "spare"]),
        "channel spare removed\n"
    );

    let events = home.json(&["events"]);
    let removals: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["action"] == "notify-channel-removed")
        .filter_map(|event| event["message"].as_str())
        .collect();
    assert_eq!(removals.len(), 2, "{removals:?}");
    assert!(removals[0].contains("still named by"), "{removals:?}");
}
