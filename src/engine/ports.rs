//! Private ports for replicas.
//!
//! The agent asks the kernel for a free port (bind to port 0), closes the
//! socket and hands the number to the replica, which binds it later. The
//! kernel may hand the same number out again right after the close, so the
//! agent also keeps the numbers it gave to running replicas and never gives
//! one out twice while its lease lives.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{LazyLock, Mutex};

/// Ports leased to replicas of every deployment of this agent.
static LEASED: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Attempts to find a port that is free and not leased before giving up.
const MAX_ATTEMPTS: usize = 64;

/// A port reserved for one replica until the lease is dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
}

impl PortLease {
    /// Leases a port that nothing listens on and no other replica holds.
    pub fn acquire() -> Option<PortLease> {
        for _ in 0..MAX_ATTEMPTS {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|listener| listener.local_addr())
                .ok()?
                .port();
            let mut leased = LEASED
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if leased.insert(port) {
                return Some(PortLease { port });
            }
        }
        None
    }

    /// Leases `port`, which a replica that this agent adopted already
    /// uses, unless another replica holds it.
    pub fn claim(port: u16) -> Option<PortLease> {
        let mut leased = LEASED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !leased.insert(port) {
            // Not `then_some`: a lease built and dropped here would free the
            // other replica's port, and its drop would wait on this lock.
            return None;
        }
        Some(PortLease { port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut leased = LEASED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        leased.remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_never_repeat_while_held() {
        let leases: Vec<PortLease> = (0..200).filter_map(|_| PortLease::acquire()).collect();
        let distinct: HashSet<u16> = leases.iter().map(PortLease::port).collect();
        assert_eq!(leases.len(), 200);
        assert_eq!(distinct.len(), 200);
    }

    #[test]
    fn claim_rejects_a_held_port() {
        let lease = PortLease::acquire().unwrap();

        assert!(PortLease::claim(lease.port()).is_none());
        let port = lease.port();
        drop(lease);
        assert!(PortLease::claim(port).is_some());
    }

    #[test]
    fn dropped_lease_frees_its_number() {
        let lease = PortLease::acquire().unwrap();
        let port = lease.port();
        drop(lease);
        let leased = LEASED.lock().unwrap();
        assert!(!leased.contains(&port));
    }
}
