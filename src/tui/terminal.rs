//! Taking the terminal for the dashboard and giving it back.
//!
//! [`TerminalGuard::enter`] switches to raw mode and the alternate screen
//! through ratatui's `try_init`, which also installs a panic hook that
//! restores the terminal before the panic message prints. Dropping the
//! guard restores it on every other exit path: a normal return, an error
//! and an unwinding panic alike.
//!
//! [`osc52`] builds the sequence that puts text on the terminal's
//! clipboard, which works over SSH because the terminal itself, not the
//! host, keeps the clipboard.

use std::io::{self, Write};

use base64::Engine;
use ratatui::DefaultTerminal;

pub struct TerminalGuard {
    terminal: DefaultTerminal,
    /// The dashboard runs inside tmux, which passes sequences on to the
    /// outer terminal only when they are wrapped.
    in_tmux: bool,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        let in_tmux = std::env::var_os("TMUX").is_some_and(|value| !value.is_empty());
        match ratatui::try_init() {
            Ok(terminal) => Ok(Self { terminal, in_tmux }),
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

    /// Writes `text` to the terminal's clipboard with OSC 52. The caller
    /// passes sanitised text: the terminal receives it base64-encoded, but
    /// pastes it as it is.
    pub fn copy_to_clipboard(&mut self, text: &str) -> io::Result<()> {
        let backend = self.terminal.backend_mut();
        backend.write_all(osc52(text, self.in_tmux).as_bytes())?;
        backend.flush()
    }
}

/// Builds the OSC 52 sequence that sets the clipboard (`c`) to `text`.
/// With `in_tmux`, it is wrapped in tmux's passthrough (`ESC P tmux; …
/// ESC \`, every ESC inside doubled), which tmux forwards to the outer
/// terminal when its `allow-passthrough` option is on.
pub fn osc52(text: &str, in_tmux: bool) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let sequence = format!("\x1b]52;c;{encoded}\x07");
    if in_tmux {
        format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
    } else {
        sequence
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_encodes_text_in_base64() {
        assert_eq!(osc52("hi ウェブ", false), "\x1b]52;c;aGkg44Km44Kn44OW\x07");
    }

    #[test]
    fn osc52_in_tmux_is_wrapped_with_escapes_doubled() {
        let wrapped = osc52("hi", true);
        assert_eq!(wrapped, "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\");
    }
}
