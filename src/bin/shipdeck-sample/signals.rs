//! SIGTERM and SIGINT handling without signal handlers.
//!
//! The main thread blocks both signals before it starts any other thread, so every
//! thread inherits the mask and the kernel queues the signals. One thread then takes
//! them with `sigwait` and turns them into a [`Stop`] message for the main thread.

use std::sync::mpsc::Sender;
use std::thread;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};

use crate::app::Stop;

/// Blocks SIGTERM and SIGINT in the calling thread and returns the set for [`spawn_waiter`].
/// Call it before starting any thread, because only threads started later inherit the mask.
pub fn block_termination_signals() -> nix::Result<SigSet> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block()?;
    Ok(signals)
}

/// Starts a thread that sends [`Stop::Signal`] when one of `signals` arrives.
pub fn spawn_waiter(signals: SigSet, stop: Sender<Stop>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("signals".into())
        .stack_size(crate::app::HELPER_STACK_BYTES)
        .spawn(move || loop {
            match signals.wait() {
                Ok(signal) => {
                    let _ = stop.send(Stop::Signal(signal));
                    return;
                }
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    let _ = stop.send(Stop::Exit {
                        code: 1,
                        reason: format!("waiting for signals failed: {error}"),
                    });
                    return;
                }
            }
        })?;
    Ok(())
}
