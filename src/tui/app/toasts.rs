//! Short-lived messages about what changed while the operator watched.

use std::collections::VecDeque;

use time::{Duration, OffsetDateTime};

use crate::tui::sanitize::clean;

/// How long a toast stays on screen.
pub const TOAST_LIFETIME: Duration = Duration::seconds(5);
/// Toasts kept at once; a newer one pushes out the oldest.
const MAX_TOASTS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastLevel {
    Info,
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub level: ToastLevel,
    /// Sanitised text.
    pub message: String,
    pub expires_at: OffsetDateTime,
}

/// The toasts on screen, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toasts {
    items: VecDeque<Toast>,
}

impl Toasts {
    /// Adds a toast; its text is sanitised here, so callers may pass
    /// application text as it came.
    pub fn push(&mut self, level: ToastLevel, message: String, now: OffsetDateTime) {
        if self.items.len() == MAX_TOASTS {
            self.items.pop_front();
        }
        self.items.push_back(Toast {
            level,
            message: clean(&message).into_owned(),
            expires_at: now + TOAST_LIFETIME,
        });
    }

    /// Drops the toasts that expired by `now`; returns whether any did.
    pub fn expire(&mut self, now: OffsetDateTime) -> bool {
        let before = self.items.len();
        self.items.retain(|toast| toast.expires_at > now);
        self.items.len() != before
    }

    pub fn iter(&self) -> impl Iterator<Item = &Toast> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-01 00:00:00 UTC);

    #[test]
    fn expire_after_lifetime() {
        let mut toasts = Toasts::default();
        toasts.push(ToastLevel::Info, "first".to_owned(), T0);
        toasts.push(
            ToastLevel::Info,
            "second".to_owned(),
            T0 + Duration::seconds(2),
        );
        assert!(!toasts.expire(T0 + Duration::seconds(4)));
        assert!(toasts.expire(T0 + Duration::seconds(5)));
        let left: Vec<&str> = toasts.iter().map(|toast| toast.message.as_str()).collect();
        assert_eq!(left, ["second"]);
        assert!(toasts.expire(T0 + Duration::seconds(7)));
        assert!(toasts.is_empty());
    }

    #[test]
    fn oldest_is_dropped_when_full() {
        let mut toasts = Toasts::default();
        for index in 0..6 {
            toasts.push(ToastLevel::Info, index.to_string(), T0);
        }
        let left: Vec<&str> = toasts.iter().map(|toast| toast.message.as_str()).collect();
        assert_eq!(left, ["2", "3", "4", "5"]);
    }
}
