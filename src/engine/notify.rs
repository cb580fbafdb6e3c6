//! The engine's side of notification channels: adding, listing, removing
//! and testing them, and reading in-app notifications.

use time::OffsetDateTime;

use super::{Engine, EngineError};
use crate::model::{Notification, NotifyChannel, NotifyTarget};
use crate::notify::check_channel;

impl Engine {
    /// Checks and stores a channel, replacing one of the same name.
    pub fn add_notify_channel(
        &self,
        name: &str,
        target: NotifyTarget,
    ) -> Result<NotifyChannel, EngineError> {
        let channel = NotifyChannel {
            name: name.to_owned(),
            target,
            created_at: OffsetDateTime::now_utc(),
        };
        check_channel(&channel).map_err(|error| EngineError::Unsupported {
            field: "channel".to_owned(),
            message: error.to_string(),
        })?;
        self.store.put_notify_channel(&channel)?;
        Ok(channel)
    }

    pub fn notify_channels(&self) -> Result<Vec<NotifyChannel>, EngineError> {
        Ok(self.store.notify_channels()?.records)
    }

    pub fn remove_notify_channel(&self, name: &str) -> Result<(), EngineError> {
        if self.store.remove_notify_channel(name)? {
            Ok(())
        } else {
            Err(channel_not_found(name))
        }
    }

    /// Sends a test notification to the channel `name` once, without retries,
    /// and returns how it went.
    pub async fn test_notify_channel(&self, name: &str) -> Result<(), EngineError> {
        let channels = self.store.notify_channels()?.records;
        let channel = channels
            .into_iter()
            .find(|channel| channel.name == name)
            .ok_or_else(|| channel_not_found(name))?;
        let notification = Notification {
            kind: "test".to_owned(),
            title: format!("Test of channel {name}"),
            message: "shipdeck sent this to check that the channel works".to_owned(),
            severity: "low".to_owned(),
            deployment: String::new(),
            environment: String::new(),
            time: OffsetDateTime::now_utc(),
        };
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

fn channel_not_found(name: &str) -> EngineError {
    EngineError::Unsupported {
        field: "channel".to_owned(),
        message: format!("no channel named {name:?}; list them with `shipdeck notify ls`"),
    }
}
