//! Counting of open connections with a wait for the count to reach zero.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Number of open connections, with a notification when it drops to zero.
#[derive(Debug, Default)]
pub(crate) struct ConnectionTracker {
    open: AtomicUsize,
    idle: Notify,
}

impl ConnectionTracker {
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Counts one more open connection until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> TrackerGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        TrackerGuard {
            tracker: Arc::clone(self),
        }
    }

    /// Waits until no connection is open or `limit` has passed, and returns whether the
    /// count reached zero.
    pub(crate) async fn wait_idle(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait_idle_unbounded())
            .await
            .is_ok()
    }

    async fn wait_idle_unbounded(&self) {
        loop {
            // Registering before reading the count closes the window in which the last
            // guard could drop between the check and the wait.
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            if self.open() == 0 {
                return;
            }

            notified.await;
        }
    }
}

/// One open connection counted by a [`ConnectionTracker`].
#[derive(Debug)]
pub(crate) struct TrackerGuard {
    tracker: Arc<ConnectionTracker>,
}

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.tracker.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_idle_returns_at_once_without_connections() {
        let tracker = Arc::new(ConnectionTracker::default());

        assert!(tracker.wait_idle(Duration::from_millis(10)).await);
    }

    #[tokio::test]
    async fn wait_idle_completes_when_last_guard_drops() {
        let tracker = Arc::new(ConnectionTracker::default());
        let first = tracker.enter();
        let second = tracker.enter();
        assert_eq!(tracker.open(), 2);

        let waiter = tokio::spawn({
            let tracker = Arc::clone(&tracker);
            async move { tracker.wait_idle(Duration::from_secs(5)).await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one connection is still open");

        drop(second);
        assert!(waiter.await.unwrap());
        assert_eq!(tracker.open(), 0);
    }

    #[tokio::test]
    async fn wait_idle_times_out_while_open() {
        let tracker = Arc::new(ConnectionTracker::default());
        let _guard = tracker.enter();

        assert!(!tracker.wait_idle(Duration::from_millis(20)).await);
    }
}
