//! The backends of one endpoint and the least-connections choice among them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use super::stats::{read, BackendCounters, BackendStats};
use super::tracker::{ConnectionTracker, TrackerGuard};
use super::Backend;

/// One backend address with its counters and its open connections.
#[derive(Debug)]
pub(crate) struct BackendState {
    pub(crate) id: u64,
    pub(crate) address: SocketAddr,
    pub(crate) counters: BackendCounters,
    pub(crate) connections: Arc<ConnectionTracker>,
    /// Set to true to close every connection to this backend at once.
    pub(crate) force_close: watch::Sender<bool>,
    /// Whether a drain took this backend out of rotation. A draining state is never put
    /// back into rotation, so a drain cannot close connections made after it began.
    draining: AtomicBool,
}

impl BackendState {
    fn new(backend: &Backend) -> Arc<BackendState> {
        Arc::new(BackendState {
            id: backend.id,
            address: backend.addr,
            counters: BackendCounters::default(),
            connections: Arc::new(ConnectionTracker::default()),
            force_close: watch::Sender::new(false),
            draining: AtomicBool::new(false),
        })
    }

    fn matches(&self, backend: &Backend) -> bool {
        self.id == backend.id && self.address == backend.addr
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    fn snapshot(&self, in_rotation: bool) -> BackendStats {
        BackendStats {
            id: self.id,
            address: self.address,
            in_rotation,
            connections: read(&self.counters.connections),
            active: self.connections.open() as u64,
            connect_failures: read(&self.counters.connect_failures),
            bytes_in: read(&self.counters.bytes_in),
            bytes_out: read(&self.counters.bytes_out),
        }
    }
}

/// Backends that take new connections (the rotation) and removed backends whose
/// connections are still open (retired).
#[derive(Debug, Default)]
pub(crate) struct BackendTable {
    rotation: Vec<Arc<BackendState>>,
    retired: Vec<Arc<BackendState>>,
    /// Index in `rotation` where the next search for the least loaded backend starts,
    /// so that backends with equal load take turns.
    cursor: usize,
}

impl BackendTable {
    pub(crate) fn rotation_len(&self) -> usize {
        self.rotation.len()
    }

    /// Makes `backends` the rotation. A backend with the same id and address as before
    /// keeps its counters and connections. A removed backend moves to `retired`, where
    /// its open connections continue. Returns the ids given more than once, of which
    /// only the first entry is used.
    pub(crate) fn replace(&mut self, backends: &[Backend]) -> Vec<u64> {
        let mut duplicates = Vec::new();
        let mut rotation: Vec<Arc<BackendState>> = Vec::with_capacity(backends.len());

        for backend in backends {
            if rotation.iter().any(|state| state.id == backend.id) {
                duplicates.push(backend.id);
                continue;
            }
            rotation.push(self.take_state(backend));
        }

        self.retired.append(&mut self.rotation);
        self.rotation = rotation;
        self.prune_retired();
        self.cursor = if self.rotation.is_empty() {
            0
        } else {
            self.cursor % self.rotation.len()
        };
        duplicates
    }

    /// Returns the existing state for `backend` unless it is being drained, else a new
    /// one, and removes it from the table's lists.
    fn take_state(&mut self, backend: &Backend) -> Arc<BackendState> {
        let reusable = |state: &Arc<BackendState>| state.matches(backend) && !state.is_draining();

        if let Some(index) = self.rotation.iter().position(reusable) {
            return self.rotation.remove(index);
        }
        if let Some(index) = self.retired.iter().position(reusable) {
            return self.retired.remove(index);
        }
        BackendState::new(backend)
    }

    fn prune_retired(&mut self) {
        self.retired.retain(|state| state.connections.open() > 0);
    }

    /// Takes the backend with id `id` out of the rotation for draining and returns every
    /// state with that id, including retired ones with connections still open.
    pub(crate) fn remove(&mut self, id: u64) -> Vec<Arc<BackendState>> {
        if let Some(index) = self.rotation.iter().position(|state| state.id == id) {
            let state = self.rotation.remove(index);
            self.retired.push(state);
            if index < self.cursor {
                self.cursor -= 1;
            }
            if self.cursor >= self.rotation.len() {
                self.cursor = 0;
            }
        }
        self.prune_retired();

        let states: Vec<Arc<BackendState>> = self
            .retired
            .iter()
            .filter(|state| state.id == id)
            .cloned()
            .collect();
        for state in &states {
            state.draining.store(true, Ordering::Release);
        }
        states
    }

    /// Chooses the backend in rotation with the fewest open connections, skipping the
    /// ids in `exclude`, and counts the new connection on it. Among equally loaded
    /// backends the one nearest after the previous choice wins.
    pub(crate) fn pick(&mut self, exclude: &[u64]) -> Option<(Arc<BackendState>, TrackerGuard)> {
        let count = self.rotation.len();
        let mut best: Option<(usize, usize)> = None;

        for offset in 0..count {
            let index = (self.cursor + offset) % count;
            let state = &self.rotation[index];
            if exclude.contains(&state.id) {
                continue;
            }
            let open = state.connections.open();
            if best.is_none_or(|(_, best_open)| open < best_open) {
                best = Some((index, open));
            }
        }

        let (index, _) = best?;
        self.cursor = (index + 1) % count;
        let state = Arc::clone(&self.rotation[index]);
        let guard = state.connections.enter();
        Some((state, guard))
    }

    pub(crate) fn snapshot(&mut self) -> Vec<BackendStats> {
        self.prune_retired();
        let in_rotation = self.rotation.iter().map(|state| state.snapshot(true));
        let retired = self.retired.iter().map(|state| state.snapshot(false));
        in_rotation.chain(retired).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(id: u64) -> Backend {
        Backend {
            id,
            addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + id as u16)),
        }
    }

    fn pick_id(table: &mut BackendTable, guards: &mut Vec<TrackerGuard>) -> u64 {
        let (state, guard) = table.pick(&[]).unwrap();
        guards.push(guard);
        state.id
    }

    #[test]
    fn pick_takes_turns_between_idle_backends() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1), backend(2), backend(3)]);

        let picked: Vec<u64> = (0..6)
            .map(|_| table.pick(&[]).map(|(state, _guard)| state.id).unwrap())
            .collect();

        assert_eq!(picked, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn pick_prefers_fewest_open_connections() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1), backend(2)]);
        let mut guards = Vec::new();

        assert_eq!(pick_id(&mut table, &mut guards), 1);
        assert_eq!(pick_id(&mut table, &mut guards), 2);
        let released = guards.remove(1);
        drop(released);

        assert_eq!(pick_id(&mut table, &mut guards), 2);
        assert_eq!(pick_id(&mut table, &mut guards), 1);
    }

    #[test]
    fn pick_skips_excluded_ids() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1), backend(2)]);

        let (state, _guard) = table.pick(&[1]).unwrap();
        assert_eq!(state.id, 2);
        assert!(table.pick(&[1, 2]).is_none());
    }

    #[test]
    fn pick_returns_none_without_backends() {
        let mut table = BackendTable::default();

        assert!(table.pick(&[]).is_none());
    }

    #[test]
    fn replace_keeps_state_of_unchanged_backend() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1)]);
        let (first, _guard) = table.pick(&[]).unwrap();

        table.replace(&[backend(1), backend(2)]);
        let snapshot = table.snapshot();

        assert!(Arc::ptr_eq(&first, &table.rotation[0]));
        assert_eq!(snapshot.len(), 2);
        assert_eq!(snapshot[0].active, 1);
    }

    #[test]
    fn replace_retires_removed_backend_while_connected() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1), backend(2)]);
        let (state, guard) = table.pick(&[]).unwrap();
        assert_eq!(state.id, 1);

        table.replace(&[backend(2)]);
        let snapshot = table.snapshot();
        assert_eq!(snapshot.len(), 2);
        assert!(snapshot[0].in_rotation);
        assert_eq!(snapshot[1].id, 1);
        assert!(!snapshot[1].in_rotation);

        drop(guard);
        assert_eq!(table.snapshot().len(), 1);
    }

    #[test]
    fn replace_uses_first_of_duplicate_ids() {
        let mut table = BackendTable::default();
        let other_address = Backend {
            id: 1,
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        };

        let duplicates = table.replace(&[backend(1), other_address]);

        assert_eq!(duplicates, vec![1]);
        assert_eq!(table.rotation_len(), 1);
        assert_eq!(table.rotation[0].address, backend(1).addr);
    }

    #[test]
    fn remove_takes_backend_out_of_rotation() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1), backend(2)]);
        let (_state, _guard) = table.pick(&[]).unwrap();

        let removed = table.remove(1);

        assert_eq!(removed.len(), 1);
        assert_eq!(table.rotation_len(), 1);
        assert_eq!(table.pick(&[]).map(|(state, _)| state.id), Some(2));
    }

    #[test]
    fn replace_after_drain_creates_new_state() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1)]);
        let (old, _guard) = table.pick(&[]).unwrap();
        table.remove(1);

        table.replace(&[backend(1)]);

        assert!(!Arc::ptr_eq(&old, &table.rotation[0]));
        assert!(old.is_draining());
        assert!(!table.rotation[0].is_draining());
    }

    #[test]
    fn replace_revives_removed_backend_not_drained() {
        let mut table = BackendTable::default();
        table.replace(&[backend(1)]);
        let (old, _guard) = table.pick(&[]).unwrap();
        table.replace(&[]);

        table.replace(&[backend(1)]);

        assert!(Arc::ptr_eq(&old, &table.rotation[0]));
    }
}
