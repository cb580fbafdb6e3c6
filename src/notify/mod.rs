//! Notification channels: checking them, and delivering notifications with
//! retries, off the engine's path.
//!
//! The engine hands a notification and its channels to [`Notifier::send`],
//! which returns without waiting for any delivery: each delivery runs in a
//! task of its own, so a webhook that hangs delays nothing else. A delivery that still fails after its
//! retries is reported to the caller's failure hook, which records an event.
//! Webhooks are `http://` or `https://`, and [`tls`] builds what https trusts.

mod command;
mod tls;
mod tls_explain;
mod webhook;

pub use tls::{parse_ca_pem, CaError};

use std::sync::Arc;
use std::time::Duration;

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

/// Called with the channel name and the last error of a delivery that
/// failed every attempt.
pub type FailureHook = Arc<dyn Fn(&Notification, &str, &str) + Send + Sync>;

/// Delivers notifications. Clones share the store and the failure hook.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    on_failure: FailureHook,
}

impl Notifier {
    pub fn new(store: Store, on_failure: FailureHook) -> Self {
        Self { store, on_failure }
    }

    /// Starts delivering `notification` to the channels named in `names`
    /// (every channel when `names` is `None`) and returns at once. A name
    /// with no channel is reported as a failed delivery.
    pub fn send(&self, notification: Notification, names: Option<&[String]>) {
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
            let notifier = self.clone();
            let notification = Arc::clone(&notification);
            tokio::spawn(
                async move { notifier.deliver_with_retries(&channel, &notification).await },
            );
        }
    }

    /// Delivers to one channel now and returns the outcome, for `notify test`.
    pub async fn deliver_once(
        &self,
        channel: &NotifyChannel,
        notification: &Notification,
    ) -> Result<(), String> {
        self.deliver(channel, notification).await
    }

    async fn deliver_with_retries(&self, channel: &NotifyChannel, notification: &Notification) {
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
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
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
