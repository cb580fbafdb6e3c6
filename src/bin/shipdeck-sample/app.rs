//! State shared by the connection threads and the main thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::logs::Logger;
use crate::metrics::{Gauges, Metrics};

/// Stack size of the helper threads (signals, accept loop, log generator, timers).
/// They run a few small functions, and a small stack keeps their reserved address space low.
pub const HELPER_STACK_BYTES: usize = 128 * 1024;

/// A reason for the main thread to end the process.
#[derive(Debug)]
pub enum Stop {
    /// SIGTERM or SIGINT arrived: shut down gracefully and exit with status 0.
    Signal(Signal),
    /// Exit at once with `code`, as requested by `POST /exit` or `--exit-after`.
    Exit { code: u8, reason: String },
}

/// The outcome of a health check.
#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    NotReady { remaining: Duration },
    Failing,
    ShuttingDown,
}

/// Fixed text shown on `/`.
pub struct Identity {
    pub greeting: String,
    pub replica: String,
    pub version: String,
}

pub struct App {
    pub identity: Identity,
    pub metrics: Arc<Metrics>,
    pub logger: Logger,
    ready_at: Instant,
    health_failing: AtomicBool,
    shutting_down: AtomicBool,
    open_connections: AtomicUsize,
    requests_in_progress: Mutex<usize>,
    requests_done: Condvar,
    stop: Sender<Stop>,
}

impl App {
    pub fn new(
        identity: Identity,
        metrics: Arc<Metrics>,
        logger: Logger,
        ready_delay: Duration,
        stop: Sender<Stop>,
    ) -> Self {
        Self {
            identity,
            metrics,
            logger,
            ready_at: Instant::now() + ready_delay,
            health_failing: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            requests_in_progress: Mutex::new(0),
            requests_done: Condvar::new(),
            stop,
        }
    }

    pub fn health(&self) -> Health {
        if self.is_shutting_down() {
            return Health::ShuttingDown;
        }
        if self.health_failing.load(Ordering::Relaxed) {
            return Health::Failing;
        }
        match self.ready_at.checked_duration_since(Instant::now()) {
            Some(remaining) if !remaining.is_zero() => Health::NotReady { remaining },
            _ => Health::Ok,
        }
    }

    /// Sets whether `/healthz` reports failure, and returns the previous setting.
    pub fn set_health_failing(&self, failing: bool) -> bool {
        self.health_failing.swap(failing, Ordering::Relaxed)
    }

    pub fn gauges(&self) -> Gauges {
        Gauges {
            healthy: self.health() == Health::Ok,
            open_connections: self.open_connections.load(Ordering::Relaxed),
        }
    }

    /// Asks the main thread to end the process. Failure means main is already exiting.
    pub fn request_stop(&self, stop: Stop) {
        let _ = self.stop.send(stop);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    pub fn open_connections(&self) -> usize {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Counts a request in progress until the returned guard is dropped.
    pub fn begin_request(&self) -> RequestGuard<'_> {
        *self.lock_requests() += 1;
        RequestGuard(self)
    }

    /// Waits until no request is in progress or `timeout` passes, and returns whether all finished.
    pub fn wait_for_requests(&self, timeout: Duration) -> bool {
        let in_progress = self.lock_requests();
        let (in_progress, _) = self
            .requests_done
            .wait_timeout_while(in_progress, timeout, |count| *count > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *in_progress == 0
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, usize> {
        self.requests_in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct ConnectionGuard(Arc<App>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct RequestGuard<'a>(&'a App);

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        let mut in_progress = self.0.lock_requests();
        *in_progress -= 1;
        if *in_progress == 0 {
            self.0.requests_done.notify_all();
        }
    }
}

/// Starts a thread that keeps one core busy for `duration`, or until exit when `None`.
pub fn spawn_cpu_burner(duration: Option<Duration>) -> std::io::Result<()> {
    let until = duration.map(|duration| Instant::now() + duration);

    thread::Builder::new()
        .name("burn-cpu".into())
        .stack_size(HELPER_STACK_BYTES)
        .spawn(move || {
            let mut value = 0u64;
            while until.is_none_or(|until| Instant::now() < until) {
                value =
                    std::hint::black_box(value.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        })?;
    Ok(())
}
