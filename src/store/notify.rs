//! Notification channels, and the notifications kept for in-app channels.

use crate::model::{Notification, NotifyChannel};

use super::{
    decode, encode, keys, storage, Scan, Store, StoreError, NOTIFICATIONS, NOTIFY_CHANNELS,
};

/// In-app notifications kept; older ones are removed as new ones arrive.
const KEPT_NOTIFICATIONS: usize = 1000;

impl Store {
    /// Stores `channel`, replacing one of the same name, and flushes.
    /// Returns the channel it replaced.
    pub fn put_notify_channel(
        &self,
        channel: &NotifyChannel,
    ) -> Result<Option<NotifyChannel>, StoreError> {
        keys::check_component("channel name", &channel.name)?;
        let key = channel.name.as_bytes();
        let value = encode(NOTIFY_CHANNELS, key, channel)?;
        let previous = self
            .notify_channels
            .insert(key, value)
            .map_err(storage(NOTIFY_CHANNELS))?;
        self.flush()?;
        Ok(previous.and_then(|old| decode(NOTIFY_CHANNELS, key, &old).ok()))
    }

    /// Stores `channel` only if no channel has its name, in one atomic step,
    /// and flushes. Returns whether it was stored.
    pub fn create_notify_channel(&self, channel: &NotifyChannel) -> Result<bool, StoreError> {
        keys::check_component("channel name", &channel.name)?;
        let key = channel.name.as_bytes();
        let value = encode(NOTIFY_CHANNELS, key, channel)?;
        let swapped = self
            .notify_channels
            .compare_and_swap(key, None::<&[u8]>, Some(value))
            .map_err(storage(NOTIFY_CHANNELS))?;
        self.flush()?;
        Ok(swapped.is_ok())
    }

    /// Removes the channel `name`; returns whether it existed.
    pub fn remove_notify_channel(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .notify_channels
            .remove(name.as_bytes())
            .map_err(storage(NOTIFY_CHANNELS))?;
        self.flush()?;
        Ok(removed.is_some())
    }

    /// Returns every channel, by name.
    pub fn notify_channels(&self) -> Result<Scan<NotifyChannel>, StoreError> {
        let mut scan = Scan::default();
        for item in self.notify_channels.iter() {
            let (key, value) = item.map_err(storage(NOTIFY_CHANNELS))?;
            scan.push(decode(NOTIFY_CHANNELS, &key, &value));
        }
        Ok(scan)
    }

    /// Returns the next notification sequence number. sled's id generator
    /// is monotonic across restarts (it skips ahead after one), which is
    /// what receivers need to order notifications.
    pub fn next_notification_sequence(&self) -> Result<u64, StoreError> {
        // Plus one, so that 0 stays the mark of an unnumbered notification.
        let id = self.db.generate_id().map_err(storage(NOTIFICATIONS))?;
        Ok(id + 1)
    }

    /// Keeps `notification` for in-app reading, dropping the oldest beyond
    /// the limit.
    pub fn append_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        let id = self.db.generate_id().map_err(storage(NOTIFICATIONS))?;
        let key = id.to_be_bytes();
        let value = encode(NOTIFICATIONS, &key, notification)?;
        self.notifications
            .insert(key, value)
            .map_err(storage(NOTIFICATIONS))?;
        while self.notifications.len() > KEPT_NOTIFICATIONS {
            if self
                .notifications
                .pop_min()
                .map_err(storage(NOTIFICATIONS))?
                .is_none()
            {
                break;
            }
        }
        Ok(())
    }

    /// Returns the newest `limit` in-app notifications, oldest first.
    pub fn notifications(&self, limit: usize) -> Result<Scan<Notification>, StoreError> {
        let mut scan = Scan::default();
        for item in self.notifications.iter().rev().take(limit) {
            let (key, value) = item.map_err(storage(NOTIFICATIONS))?;
            scan.push(decode(NOTIFICATIONS, &key, &value));
        }
        scan.records.reverse();
        Ok(scan)
    }
}
