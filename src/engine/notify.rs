//! The engine's side of notification channels: adding, listing, removing
//! and testing them, and reading in-app notifications.

use time::OffsetDateTime;

use super::alert_rules::PutMode;
use super::{Caller, Engine, EngineError};
use crate::model::{ChannelRemoval, Notification, NotifyChannel, NotifyTarget};
use crate::notify::check_channel;

/// A rejected change of a notification channel.
#[derive(Debug, thiserror::Error)]
pub enum ChannelChangeError {
    #[error("{0}")]
    Invalid(String),
    #[error("channel {name:?} exists already ({existing}); pass --replace to replace it (over the API, send the request without If-None-Match: *), or choose another name")]
    Exists { name: String, existing: String },
    #[error("no channel named {0:?}; list them with `shipdeck notify ls`")]
    NotFound(String),
    #[error("channel {name:?} is still named by {}; remove it from them first, or pass --force to remove it anyway (their notifications to it are then recorded as notify-failed)", .users.join(", "))]
    InUse { name: String, users: Vec<String> },
}

impl Engine {
    /// Checks and stores a channel. With [`PutMode::CreateOnly`] an existing
    /// channel of that name is an error; otherwise it is replaced. Returns
    /// the channel and whether it was created (rather than replaced), and
    /// records the change as an event of the caller.
    pub async fn add_notify_channel(
        &self,
        name: &str,
        target: NotifyTarget,
        mode: PutMode,
        caller: &Caller,
    ) -> Result<(NotifyChannel, bool), EngineError> {
        let channel = NotifyChannel {
            name: name.to_owned(),
            target,
            created_at: OffsetDateTime::now_utc(),
        };
        check_channel(&channel).map_err(|error| ChannelChangeError::Invalid(error.to_string()))?;
        let created = match mode {
            PutMode::CreateOnly => {
                if !self.store.create_notify_channel(&channel)? {
                    let existing = self
                        .find_channel(name)?
                        .map(|old| describe_target(&old.target));
                    return Err(ChannelChangeError::Exists {
                        name: name.to_owned(),
                        existing: existing.unwrap_or_else(|| "just added".to_owned()),
                    }
                    .into());
                }
                true
            }
            PutMode::CreateOrReplace => self.store.put_notify_channel(&channel)?.is_none(),
        };
        let (action, verb) = if created {
            ("notify-channel-added", "added")
        } else {
            ("notify-channel-replaced", "replaced")
        };
        let message = format!(
            "channel {name} {verb}: {}",
            describe_target(&channel.target)
        );
        self.record_agent_event(caller, action, &message).await?;
        Ok((channel, created))
    }

    pub fn notify_channels(&self) -> Result<Vec<NotifyChannel>, EngineError> {
        Ok(self.store.notify_channels()?.records)
    }

    /// Removes a channel. A channel that alert rules or a deployment's
    /// `monitoring.notifications` still name is removed only with `force`,
    /// and the result names them so the caller can warn.
    pub async fn remove_notify_channel(
        &self,
        name: &str,
        force: bool,
        caller: &Caller,
    ) -> Result<ChannelRemoval, EngineError> {
        let Some(channel) = self.find_channel(name)? else {
            return Err(ChannelChangeError::NotFound(name.to_owned()).into());
        };
        let users = self.channel_users(name)?;
        if !users.is_empty() && !force {
            return Err(ChannelChangeError::InUse {
                name: name.to_owned(),
                users,
            }
            .into());
        }
        if !self.store.remove_notify_channel(name)? {
            return Err(ChannelChangeError::NotFound(name.to_owned()).into());
        }
        let mut message = format!(
            "channel {name} removed: {}",
            describe_target(&channel.target)
        );
        if !users.is_empty() {
            message.push_str(&format!("; still named by {}", users.join(", ")));
        }
        self.record_agent_event(caller, "notify-channel-removed", &message)
            .await?;
        Ok(ChannelRemoval {
            still_named_by: users,
        })
    }

    /// Lists what names the channel: each alert rule (manifest or API) and
    /// each deployment whose newest revision's `monitoring.notifications`
    /// names it.
    fn channel_users(&self, name: &str) -> Result<Vec<String>, EngineError> {
        let names = |list: &[String]| list.iter().any(|channel| channel == name);
        let mut users = Vec::new();
        for deployment in self.store.list_deployments()?.records {
            let key = deployment.key();
            let mut rules = self.manifest_rules(&deployment.id, deployment.revision)?;
            rules.extend(self.stored_rules(&deployment.id)?);
            for rule in rules.iter().filter(|rule| names(&rule.notifications)) {
                users.push(format!("alert rule {} of {key}", rule.name));
            }
            let newest = match self.store.latest_revision_number(&deployment.id)? {
                Some(number) => self.store.get_revision(&deployment.id, number)?,
                None => None,
            };
            let outcome_channels = newest
                .and_then(|revision| revision.spec.monitoring)
                .map(|monitoring| monitoring.notifications)
                .unwrap_or_default();
            if names(&outcome_channels) {
                users.push(format!("monitoring.notifications of {key}"));
            }
        }
        users.dedup();
        Ok(users)
    }

    fn find_channel(&self, name: &str) -> Result<Option<NotifyChannel>, EngineError> {
        Ok(self
            .store
            .notify_channels()?
            .records
            .into_iter()
            .find(|channel| channel.name == name))
    }

    /// Sends a test notification to the channel `name` once, without retries,
    /// and returns how it went.
    pub async fn test_notify_channel(&self, name: &str) -> Result<(), EngineError> {
        let channel = self
            .find_channel(name)?
            .ok_or_else(|| ChannelChangeError::NotFound(name.to_owned()))?;
        let mut notification = Notification {
            kind: "test".to_owned(),
            title: format!("Test of channel {name}"),
            message: "shipdeck sent this to check that the channel works".to_owned(),
            severity: "low".to_owned(),
            deployment: String::new(),
            environment: String::new(),
            time: OffsetDateTime::now_utc(),
            alert: None,
            sequence: 0,
        };
        self.notifier.stamp(&mut notification);
        self.notifier
            .deliver_once(&channel, &notification)
            .await
            .map_err(|problem| EngineError::Unsupported {
                field: format!("channel {name}"),
                message: format!("the test notification was not delivered: {problem}"),
            })
    }

    /// Returns the newest `limit` notifications kept by in-app channels.
    pub fn notifications(&self, limit: usize) -> Result<Vec<Notification>, EngineError> {
        Ok(self.store.notifications(limit)?.records)
    }
}

/// Describes a channel's target for events without what may be secret: a
/// webhook's path and query often carry its token, so only the scheme, host
/// and port are kept.
fn describe_target(target: &NotifyTarget) -> String {
    match target {
        NotifyTarget::Webhook { url, .. } => match crate::notify::webhook_origin(url) {
            Some(origin) => format!("webhook to {origin}"),
            None => "webhook".to_owned(),
        },
        NotifyTarget::Command { command } => format!(
            "command {}",
            command.first().map(String::as_str).unwrap_or_default()
        ),
        NotifyTarget::InApp => "in-app".to_owned(),
    }
}
