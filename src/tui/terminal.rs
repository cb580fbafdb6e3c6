//! Taking the terminal for the dashboard and giving it back.
//!
//! [`TerminalGuard::enter`] switches to raw mode and the alternate screen
//! through ratatui's `try_init`, which also installs a panic hook that
//! restores the terminal before the panic message prints. Dropping the
//! guard restores it on every other exit path: a normal return, an error
//! and an unwinding panic alike.

use std::io;

use ratatui::DefaultTerminal;

pub struct TerminalGuard {
    terminal: DefaultTerminal,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        match ratatui::try_init() {
            Ok(terminal) => Ok(Self { terminal }),
            Err(error) => {
                // Raw mode may be on although the alternate screen failed.
                ratatui::restore();
                Err(error)
            }
        }
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
