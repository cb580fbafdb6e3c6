//! Notices of what the store just wrote, for readers that follow changes
//! (the dashboard's stream) instead of polling.
//!
//! The agent is the store's only writer, so every write that a reader can
//! see passes here. A notice names what changed; the reader reads the
//! current record itself, so a notice can never carry a stale copy. The
//! channel is bounded: a reader that falls behind gets the count of notices
//! it missed and reads everything again.

use tokio::sync::broadcast;

use crate::model::Event;

/// Notices kept for a slow reader before it misses some. A deploy of ten
/// replicas makes a few dozen; the dashboard reads them within milliseconds.
const CAPACITY: usize = 4096;

/// One change, as its writer announces it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The deployment record, or what its supervisor observes (replicas,
    /// health, endpoints), changed or was removed.
    Deployment { id: String },
    /// An event was appended to the audit log.
    Event(Box<Event>),
    /// New metric samples of the deployment were stored.
    Metrics { id: String },
}

/// The sending side, shared by every clone of the store.
#[derive(Clone)]
pub struct ChangeFeed {
    sender: broadcast::Sender<Change>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self { sender }
    }
}

impl ChangeFeed {
    /// Announces `change` to every current reader. Without readers the
    /// notice is dropped, which costs nothing.
    pub fn announce(&self, change: Change) {
        // An error only means that no reader follows right now.
        let _ = self.sender.send(change);
    }

    /// Starts following: the reader gets every change announced from now on.
    pub fn follow(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }
}
