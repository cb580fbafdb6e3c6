//! Notification channels: checking them, and delivering notifications with
//! retries, off the engine's path.
//!
//! The engine hands a notification and its channels to [`Notifier::send`],
//! which returns without waiting for any delivery: each delivery runs in a
//! task of its own, so a webhook that hangs delays nothing else. A delivery
//! that still fails after its retries is reported to the caller's failure
//! hook, which records an event.
//!
//! Notifications about one alert go to one channel in order, through a
//! lane per channel and alert that runs one delivery at a time. A newer
//! notification supersedes an older one that waits for a retry, so a flaky
//! receiver cannot get "resolved" before "firing".
//! Webhooks are `http://` or `https://`, and [`tls`] builds what https trusts.

mod command;
mod tls;
mod tls_explain;
mod webhook;

pub use tls::{parse_ca_pem, CaError};

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::model::{Notification, NotifyChannel, NotifyTarget};
use crate::store::Store;

/// Attempts per delivery, with waits of 1, 2 and 4 seconds between them.
const ATTEMPTS: u32 = 4;

/// Maximum time a webhook request (connect, TLS handshake, request and
/// response) or a command may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel definition that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "invalid channel name {0:?}: use 1 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    )]
    Name(String),
    #[error("webhook URL {0:?} is not http(s)://HOST[:PORT]/PATH; give the endpoint's full URL, such as https://hooks.example.com/notify")]
    Url(String),
    #[error("the webhook URL for {0} has a user name or password before the host, which shipdeck does not send; remove it and use the token the service puts in the URL's path or query")]
    UrlCredentials(String),
    #[error("webhook URL {url:?} has an invalid port {port:?}: a port is a number from 1 to 65535; write it after the host, such as http://127.0.0.1:8080/hook, or leave out the colon for the scheme's default (80 for http, 443 for https)")]
    UrlPort { url: String, port: String },
    #[error("webhook URL {url:?} has an invalid host {host:?}: {reason}")]
    UrlHost {
        url: String,
        host: String,
        reason: &'static str,
    },
    #[error("webhook URL {url:?} ends in the fragment {fragment:?}, which is never sent to the server; remove it, or put the value in the path or query")]
    UrlFragment { url: String, fragment: String },
    #[error("channel {0:?} has a CA file but its webhook URL is http://, which uses no certificates; use the https:// URL or leave out --ca-file")]
    CaWithoutTls(String),
    #[error("the CA certificates (caPem) of channel {name:?} are not usable: {source}")]
    Ca {
        name: String,
        #[source]
        source: CaError,
    },
    #[error("the command of channel {0:?} is empty; give the program to run and its arguments")]
    EmptyCommand(String),
    #[error("the program {program:?} of channel {channel:?} cannot be run: {reason}")]
    Program {
        channel: String,
        program: String,
        reason: String,
    },
}

/// Checks a channel before it is stored.
pub fn check_channel(channel: &NotifyChannel) -> Result<(), ChannelError> {
    let name = &channel.name;
    let valid_chars = name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte));
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    if !valid_chars || !starts_well || name.len() > 63 {
        return Err(ChannelError::Name(name.clone()));
    }

    match &channel.target {
        NotifyTarget::Webhook { url, ca_pem, .. } => check_webhook(name, url, ca_pem.as_deref()),
        NotifyTarget::Command { command } => match command.first() {
            Some(program) if !program.is_empty() => command::check_program(name, program),
            _ => Err(ChannelError::EmptyCommand(name.clone())),
        },
        NotifyTarget::InApp => Ok(()),
    }
}

fn check_webhook(name: &str, url: &str, ca_pem: Option<&str>) -> Result<(), ChannelError> {
    let parsed = webhook::WebhookUrl::parse(url)?;
    let Some(pem) = ca_pem else {
        return Ok(());
    };
    if !parsed.secure {
        return Err(ChannelError::CaWithoutTls(name.to_owned()));
    }
    parse_ca_pem(pem.as_bytes())
        .map(|_| ())
        .map_err(|source| ChannelError::Ca {
            name: name.to_owned(),
            source,
        })
}

/// Returns `scheme://host:port` of a valid webhook URL, which is safe to
/// show in events because a webhook's token is in its path or query.
pub fn webhook_origin(url: &str) -> Option<String> {
    webhook::WebhookUrl::parse(url)
        .ok()
        .map(|parsed| parsed.origin())
}

/// A lane's view for a delivery: whether a newer notification waits.
struct LaneWatch<'a> {
    notifier: &'a Notifier,
    key: &'a LaneKey,
    newer: &'a Notify,
}

impl LaneWatch<'_> {
    /// Waits `wait` before a retry; returns early with `true` when a newer
    /// notification about the alert is (or becomes) pending.
    async fn wait_unless_newer(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.notifier.has_newer(self.key) {
                return true;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return self.notifier.has_newer(self.key),
                () = self.newer.notified() => {}
            }
        }
    }
}

/// Called with the channel name and the last error of a delivery that
/// failed every attempt.
pub type FailureHook = Arc<dyn Fn(&Notification, &str, &str) + Send + Sync>;

/// Delivers notifications. Clones share the store, the failure hook and
/// the lanes.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    on_failure: FailureHook,
    lanes: Arc<Mutex<HashMap<LaneKey, Lane>>>,
}

/// A channel name and the lane's subject: an alert key, or a deployment.
type LaneKey = (String, String);

/// The deliveries of one subject to one channel, one at a time and in
/// order. An alert's lane keeps only the newest waiting notification,
/// because only the alert's current state matters. A deployment's lane
/// keeps every one, because "failed" and then "deployed" are two facts that
/// the receiver needs in that order.
struct Lane {
    pending: VecDeque<(NotifyChannel, Arc<Notification>)>,
    supersede: bool,
    /// Woken when a notification waits, to cut a retry wait short.
    newer: Arc<Notify>,
}

/// Returns the lane of `notification`: its alert, or else its deployment.
/// A notification about neither has no lane and no order to keep.
fn lane_subject(notification: &Notification) -> Option<(String, bool)> {
    if let Some(alert) = &notification.alert {
        return Some((alert.clone(), true));
    }
    (!notification.deployment.is_empty()).then(|| {
        (
            format!(
                "deployment {}/{}",
                notification.deployment, notification.environment
            ),
            false,
        )
    })
}

impl Notifier {
    pub fn new(store: Store, on_failure: FailureHook) -> Self {
        Self {
            store,
            on_failure,
            lanes: Arc::default(),
        }
    }

    /// Gives `notification` the next sequence number.
    pub fn stamp(&self, notification: &mut Notification) {
        match self.store.next_notification_sequence() {
            Ok(sequence) => notification.sequence = sequence,
            Err(error) => {
                tracing::error!(%error, kind = %notification.kind, "numbering a notification failed; it is sent with sequence 0");
            }
        }
    }

    /// Numbers `notification` and keeps it in the in-app history only.
    pub fn keep(&self, mut notification: Notification) {
        self.stamp(&mut notification);
        if let Err(error) = self.store.append_notification(&notification) {
            tracing::error!(kind = %notification.kind, deployment = %notification.deployment, %error, "keeping a notification failed");
        }
    }

    /// Numbers `notification` and starts delivering it to the channels named
    /// in `names` (every channel when `names` is `None`), and returns at
    /// once. A name with no channel is reported as a failed delivery.
    pub fn send(&self, mut notification: Notification, names: Option<&[String]>) {
        self.stamp(&mut notification);
        let channels = match self.store.notify_channels() {
            Ok(scan) => scan.records,
            Err(error) => {
                (self.on_failure)(&notification, "*", &error.to_string());
                return;
            }
        };

        let chosen: Vec<NotifyChannel> = match names {
            None => channels,
            Some(names) => {
                for missing in names
                    .iter()
                    .filter(|name| !channels.iter().any(|c| &c.name == *name))
                {
                    let problem =
                        format!("no channel named {missing:?}; add it with `shipdeck notify add`");
                    (self.on_failure)(&notification, missing, &problem);
                }
                channels
                    .into_iter()
                    .filter(|c| names.contains(&c.name))
                    .collect()
            }
        };

        let notification = Arc::new(notification);
        for channel in chosen {
            match lane_subject(&notification) {
                Some((subject, supersede)) => self.enqueue(
                    (channel.name.clone(), subject),
                    supersede,
                    channel,
                    Arc::clone(&notification),
                ),
                None => {
                    let notifier = self.clone();
                    let notification = Arc::clone(&notification);
                    tokio::spawn(async move {
                        notifier
                            .deliver_with_retries(&channel, &notification, None)
                            .await
                    });
                }
            }
        }
    }

    /// Hands a notification to its lane, starting the lane's task if none
    /// runs. In a superseding lane it replaces what waits there.
    fn enqueue(
        &self,
        key: LaneKey,
        supersede: bool,
        channel: NotifyChannel,
        notification: Arc<Notification>,
    ) {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lane) = lanes.get_mut(&key) {
            if lane.supersede {
                for (_, older) in lane.pending.drain(..) {
                    tracing::debug!(channel = %key.0, alert = %key.1, superseded = older.sequence, "a newer notification about the alert replaced one waiting for delivery");
                }
            }
            lane.pending.push_back((channel, notification));
            lane.newer.notify_one();
            return;
        }
        let newer = Arc::new(Notify::new());
        lanes.insert(
            key.clone(),
            Lane {
                pending: VecDeque::new(),
                supersede,
                newer: Arc::clone(&newer),
            },
        );
        let notifier = self.clone();
        tokio::spawn(async move { notifier.run_lane(key, channel, notification, newer).await });
    }

    /// Delivers a lane's notifications one after another until none waits,
    /// then removes the lane.
    async fn run_lane(
        &self,
        key: LaneKey,
        mut channel: NotifyChannel,
        mut notification: Arc<Notification>,
        newer: Arc<Notify>,
    ) {
        loop {
            let lane = LaneWatch {
                notifier: self,
                key: &key,
                newer: &newer,
            };
            self.deliver_with_retries(&channel, &notification, Some(lane))
                .await;
            let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
            let next = lanes
                .get_mut(&key)
                .and_then(|lane| lane.pending.pop_front());
            match next {
                Some((next_channel, next_notification)) => {
                    channel = next_channel;
                    notification = next_notification;
                }
                None => {
                    lanes.remove(&key);
                    return;
                }
            }
        }
    }

    fn has_newer(&self, key: &LaneKey) -> bool {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .is_some_and(|lane| lane.supersede && !lane.pending.is_empty())
    }

    /// Delivers to one channel now and returns the outcome, for `notify test`.
    pub async fn deliver_once(
        &self,
        channel: &NotifyChannel,
        notification: &Notification,
    ) -> Result<(), String> {
        self.deliver(channel, notification).await
    }

    /// Delivers with retries. In a lane, a newer notification about the
    /// same alert ends the retries of this one, which is then dropped
    /// without being reported as failed.
    async fn deliver_with_retries(
        &self,
        channel: &NotifyChannel,
        notification: &Notification,
        lane: Option<LaneWatch<'_>>,
    ) {
        let mut wait = Duration::from_secs(1);
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.deliver(channel, notification).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(channel = %channel.name, attempt, %error, "delivering a notification failed");
                    last_error = error;
                }
            }
            if attempt == ATTEMPTS {
                break;
            }
            let superseded = match &lane {
                Some(lane) => lane.wait_unless_newer(wait).await,
                None => {
                    tokio::time::sleep(wait).await;
                    false
                }
            };
            if superseded {
                tracing::debug!(channel = %channel.name, alert = ?notification.alert, sequence = notification.sequence, "a newer notification about the alert supersedes this one; its retries stop");
                return;
            }
            wait *= 2;
        }
        (self.on_failure)(notification, &channel.name, &last_error);
    }

    async fn deliver(
        &self,
        channel: &NotifyChannel,
        notification: &Notification,
    ) -> Result<(), String> {
        match &channel.target {
            NotifyTarget::Webhook { url, ca_pem, .. } => {
                webhook::post(url, ca_pem.as_deref(), notification).await
            }
            NotifyTarget::Command { command } => command::run(command, notification).await,
            NotifyTarget::InApp => self
                .store
                .append_notification(notification)
                .map_err(|error| error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str, target: NotifyTarget) -> NotifyChannel {
        NotifyChannel {
            name: name.to_owned(),
            target,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn channel_checks() {
        let webhook = |url: &str| NotifyTarget::Webhook {
            url: url.to_owned(),
            ca_pem: None,
            ca_file: None,
        };
        assert!(check_channel(&channel("ops", webhook("http://127.0.0.1:9000/hook"))).is_ok());
        assert!(check_channel(&channel("ops", webhook("http://example.test/x?y=1"))).is_ok());
        assert!(check_channel(&channel("ops", webhook("https://example.test/"))).is_ok());
        for url in [
            "https://u:p@example.test/",
            "ftp://x/",
            "not a url",
            "http:///nohost",
        ] {
            assert!(
                check_channel(&channel("ops", webhook(url))).is_err(),
                "{url}"
            );
        }
        for name in ["", "Ops", "-ops", "o/ps", "o ps", &"x".repeat(64)] {
            assert!(
                check_channel(&channel(name, NotifyTarget::InApp)).is_err(),
                "{name:?}"
            );
        }
        let with_ca = |url: &str, pem: &str| NotifyTarget::Webhook {
            url: url.to_owned(),
            ca_pem: Some(pem.to_owned()),
            ca_file: None,
        };
        let error = check_channel(&channel("ops", with_ca("http://x/", "PEM")))
            .expect_err("a CA on http://")
            .to_string();
        assert!(error.contains("http://"), "{error}");
        let error = check_channel(&channel("ops", with_ca("https://x/", "junk")))
            .expect_err("a CA that is not PEM")
            .to_string();
        assert!(error.contains("caPem"), "{error}");
        let empty = NotifyTarget::Command { command: vec![] };
        assert!(check_channel(&channel("cmd", empty)).is_err());
    }

    /// What a flaky receiver got: each body's type and sequence, and the
    /// status it answered.
    type Received = Arc<Mutex<Vec<(String, u64, u16)>>>;

    /// Serves webhooks on 127.0.0.1 that answer 503 until an
    /// `alert-resolved` arrives and 200 from then on, holding each request
    /// for 200 ms. Returns the port, what it received, and the largest
    /// number of requests it held at once.
    async fn flaky_receiver() -> (u16, Received, Arc<std::sync::atomic::AtomicUsize>) {
        receiver(|kind, _| kind == "alert-resolved").await
    }

    /// Serves webhooks like [`flaky_receiver`], answering 200 from the first
    /// request for which `opens(kind, index)` is true.
    async fn receiver(
        opens: fn(&str, usize) -> bool,
    ) -> (u16, Received, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let received: Received = Arc::default();
        let most = Arc::new(AtomicUsize::new(0));
        let (log, peak) = (Arc::clone(&received), Arc::clone(&most));
        let resolved = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, peak, resolved, open, requests) = (
                    Arc::clone(&log),
                    Arc::clone(&peak),
                    Arc::clone(&resolved),
                    Arc::clone(&open),
                    Arc::clone(&requests),
                );
                tokio::spawn(async move {
                    let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now_open, Ordering::SeqCst);
                    let mut reader = tokio::io::BufReader::new(stream);
                    let mut length = 0usize;
                    let mut line = String::new();
                    while reader.read_line(&mut line).await.is_ok_and(|read| read > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    let mut body = vec![0u8; length];
                    let _ = reader.read_exact(&mut body).await;
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let kind = json["type"].as_str().unwrap_or_default().to_owned();
                    let index = requests.fetch_add(1, Ordering::SeqCst);
                    if opens(&kind, index) {
                        resolved.store(true, Ordering::SeqCst);
                    }
                    let status = if resolved.load(Ordering::SeqCst) {
                        200
                    } else {
                        503
                    };
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let sequence = json["sequence"].as_u64().unwrap_or_default();
                    log.lock().expect("log").push((kind, sequence, status));
                    open.fetch_sub(1, Ordering::SeqCst);
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let mut stream = reader.into_inner();
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (port, received, most)
    }

    fn alert_notification(kind: &str) -> Notification {
        Notification {
            kind: kind.to_owned(),
            title: kind.to_owned(),
            message: String::new(),
            severity: "high".to_owned(),
            deployment: "web".to_owned(),
            environment: "production".to_owned(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            alert: Some("web/production/hot".to_owned()),
            sequence: 0,
        }
    }

    async fn wait_until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A flaky receiver must end with the alert's newest state: "resolved"
    /// supersedes the retries of "firing", and nothing is delivered twice at
    /// once or reported as failed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resolved_supersedes_a_firing_retry() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(directory.path()).expect("store");
        let (port, received, most) = flaky_receiver().await;
        let hook = NotifyTarget::Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            ca_pem: None,
            ca_file: None,
        };
        store
            .put_notify_channel(&channel("flaky", hook))
            .expect("store the channel");
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let failed = Arc::clone(&failures);
        let on_failure: FailureHook = Arc::new(move |notification, _, problem| {
            let mut failed = failed.lock().expect("failures");
            failed.push(format!("{}: {problem}", notification.kind));
        });
        let notifier = Notifier::new(store, on_failure);
        let names = ["flaky".to_owned()];

        notifier.send(alert_notification("alert-firing"), Some(&names));
        let log = || received.lock().expect("log").clone();
        wait_until("the first attempt", || !log().is_empty()).await;
        notifier.send(alert_notification("alert-resolved"), Some(&names));
        wait_until("an accepted delivery", || {
            log().iter().any(|(.., status)| *status == 200)
        })
        .await;
        // The firing notification's retries would have come 1, 3 and 7 s
        // after its first attempt.
        tokio::time::sleep(Duration::from_secs(8)).await;

        let log = log();
        let accepted: Vec<&str> = log
            .iter()
            .filter(|(.., status)| *status == 200)
            .map(|(kind, ..)| kind.as_str())
            .collect();
        assert_eq!(accepted, ["alert-resolved"], "{log:?}");
        assert_eq!(
            log.last().map(|(kind, ..)| kind.as_str()),
            Some("alert-resolved"),
            "{log:?}"
        );
        let firing = log
            .iter()
            .find(|(kind, ..)| kind == "alert-firing")
            .expect("firing");
        let resolved = log
            .iter()
            .find(|(kind, ..)| kind == "alert-resolved")
            .expect("resolved");
        assert!(resolved.1 > firing.1, "sequence numbers rise: {log:?}");
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1, "{log:?}");
        assert!(
            failures.lock().expect("failures").is_empty(),
            "{failures:?}"
        );
    }

    /// A receiver that fails the first attempt must still get a
    /// deployment's notifications in the order they happened, each once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_notifications_keep_their_order() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(directory.path()).expect("store");
        let (port, received, most) = receiver(|_, index| index > 0).await;
        let hook = NotifyTarget::Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            ca_pem: None,
            ca_file: None,
        };
        store
            .put_notify_channel(&channel("flaky", hook))
            .expect("store the channel");
        let on_failure: FailureHook = Arc::new(|notification, _, problem| {
            panic!("{} failed: {problem}", notification.kind);
        });
        let notifier = Notifier::new(store, on_failure);
        let names = ["flaky".to_owned()];
        let outcome = |kind: &str| Notification {
            alert: None,
            ..alert_notification(kind)
        };

        notifier.send(outcome("deployment-failed"), Some(&names));
        notifier.send(outcome("deployment-succeeded"), Some(&names));
        let log = || received.lock().expect("log").clone();
        wait_until("both accepted", || {
            log().iter().filter(|(.., status)| *status == 200).count() == 2
        })
        .await;

        let log = log();
        let accepted: Vec<&str> = log
            .iter()
            .filter(|(.., status)| *status == 200)
            .map(|(kind, ..)| kind.as_str())
            .collect();
        assert_eq!(
            accepted,
            ["deployment-failed", "deployment-succeeded"],
            "{log:?}"
        );
        assert_eq!(
            log[0],
            ("deployment-failed".to_owned(), log[0].1, 503),
            "{log:?}"
        );
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1, "{log:?}");
    }

    #[test]
    fn channels_stored_before_https_still_load() {
        let stored = r#"{"name":"ops","kind":"webhook","url":"http://127.0.0.1:9/h","createdAt":"2024-01-01T00:00:00Z"}"#;
        let channel: NotifyChannel = serde_json::from_str(stored).expect("an old channel");
        assert_eq!(
            channel.target,
            NotifyTarget::Webhook {
                url: "http://127.0.0.1:9/h".to_owned(),
                ca_pem: None,
                ca_file: None,
            }
        );
        let again = serde_json::to_string(&channel).expect("encode");
        assert!(!again.contains("caPem"), "{again}");
    }
}
