//! The logs tab's keys and reads as the [`App`] routes them: the commands
//! that need more than the tab's own state (the input line, toasts, the
//! clipboard, the replicas of the deployment), and the reads it asks the
//! worker for.

use std::path::PathBuf;

use time::OffsetDateTime;

use super::logs::{LogsCommand, LogsData, LogsEffect};
use super::{App, DetailTab, Effects, Layer, ToastLevel};
use crate::model::DeploymentKey;
use crate::tui::action::Effect;

/// Most bytes of a line sent to the clipboard. OSC 52 carries them in
/// base64 inside one escape sequence, and terminals cap its length.
/// NOTE: some terminals cap it lower and then ignore the whole copy.
pub const MAX_COPY_BYTES: usize = 100_000;

/// The purpose of the logs tab's input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogsInputPurpose {
    Search,
    /// The path to save the lines shown to.
    Save,
}

/// A line of text typed in the logs tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsInput {
    pub purpose: LogsInputPurpose,
    pub text: String,
    /// The reason the last Enter did not accept the text.
    pub error: Option<String>,
}

impl App {
    /// Returns whether the logs tab is on screen.
    pub fn logs_shown(&self) -> bool {
        self.detail
            .as_ref()
            .is_some_and(|detail| detail.tab == DetailTab::Logs)
    }

    /// Applies a logs command; returns whether the screen changed.
    pub(super) fn on_logs_command(&mut self, command: LogsCommand, effects: &mut Effects) -> bool {
        if command == LogsCommand::ShowTab {
            return self
                .detail
                .as_mut()
                .is_some_and(|detail| detail.show_tab(DetailTab::Logs));
        }
        if !self.logs_shown() {
            return false;
        }
        match command {
            LogsCommand::Search => self.open_search(),
            LogsCommand::Save => self.open_save(),
            LogsCommand::Copy => self.copy_selected(effects),
            // Esc clears the search first, and goes back once none is left.
            LogsCommand::ClearSearch => {
                self.with_logs(|logs, key| logs.clear_search(key)) || self.close_detail()
            }
            LogsCommand::NextReplica => {
                let replicas = self.known_replicas();
                self.with_logs(|logs, key| {
                    logs.next_replica(&replicas, key);
                    true
                })
            }
            other => self.with_logs(|logs, key| {
                match other {
                    LogsCommand::NextMatch => logs.next_match(true, key),
                    LogsCommand::PreviousMatch => logs.next_match(false, key),
                    LogsCommand::ToggleRegex => logs.toggle_regex(key),
                    LogsCommand::ToggleFilter => logs.toggle_filter(key),
                    LogsCommand::ToggleInvert => logs.toggle_invert(key),
                    LogsCommand::MoreContext => logs.change_context(1, key),
                    LogsCommand::LessContext => logs.change_context(-1, key),
                    LogsCommand::NextLevel => logs.next_level(key),
                    LogsCommand::ToggleFollow => logs.toggle_follow(key),
                    LogsCommand::ToggleWrap => logs.toggle_wrap(),
                    LogsCommand::ToggleTimestamps => logs.toggle_timestamps(),
                    LogsCommand::ToggleUtc => logs.toggle_utc(),
                    _ => return false,
                }
                true
            }),
        }
    }

    /// Runs `change` on the logs state with its deployment's key.
    fn with_logs(
        &mut self,
        change: impl FnOnce(&mut super::LogsState, &DeploymentKey) -> bool,
    ) -> bool {
        let Some(detail) = self.detail.as_mut() else {
            return false;
        };
        let key = detail.key.clone();
        change(&mut detail.logs, &key)
    }

    /// The replicas `c` cycles through: those the deployment has now and
    /// those that wrote the lines held.
    fn known_replicas(&self) -> Vec<u32> {
        let Some(detail) = &self.detail else {
            return Vec::new();
        };
        let mut replicas = detail.logs.replicas_seen();
        if let Some(view) = &detail.deployment {
            replicas.extend(view.replica_details.iter().map(|replica| replica.index));
        }
        replicas.sort_unstable();
        replicas.dedup();
        replicas
    }

    fn open_search(&mut self) -> bool {
        let Some(detail) = self.detail.as_mut() else {
            return false;
        };
        detail.logs.start_search();
        let text = detail
            .logs
            .search
            .as_ref()
            .map(|search| search.text.clone())
            .unwrap_or_default();
        self.layers.push(Layer::LogsInput(LogsInput {
            purpose: LogsInputPurpose::Search,
            text,
            error: None,
        }));
        true
    }

    fn open_save(&mut self) -> bool {
        let Some(detail) = &self.detail else {
            return false;
        };
        let text = default_save_name(&detail.key, self.now());
        self.layers.push(Layer::LogsInput(LogsInput {
            purpose: LogsInputPurpose::Save,
            text,
            error: None,
        }));
        true
    }

    /// Sends the selected line's sanitised text to the clipboard.
    fn copy_selected(&mut self, effects: &mut Effects) -> bool {
        let line = self
            .detail
            .as_ref()
            .and_then(|detail| detail.logs.window.selected_line())
            .map(|line| line.text.clone());
        let Some(mut text) = line else {
            self.toast(
                ToastLevel::Warning,
                "no line is selected to copy".to_owned(),
            );
            return true;
        };
        let characters = text.chars().count();
        let cut = text.len() > MAX_COPY_BYTES;
        if cut {
            let mut end = MAX_COPY_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let message = if cut {
            format!(
                "sent the first {} of {characters} characters of the line to the terminal's clipboard (OSC 52)",
                text.chars().count()
            )
        } else {
            format!("sent the line ({characters} characters) to the terminal's clipboard (OSC 52)")
        };
        effects.push(Effect::CopyToClipboard(text));
        self.toast(ToastLevel::Info, message);
        true
    }

    /// Applies an edit to the logs input line; returns whether one is open.
    pub(super) fn edit_logs_input(&mut self, edit: impl FnOnce(&mut String)) -> bool {
        let Some(Layer::LogsInput(input)) = self.layers.last_mut() else {
            return false;
        };
        edit(&mut input.text);
        input.error = None;
        let (purpose, text) = (input.purpose, input.text.clone());
        if purpose == LogsInputPurpose::Search {
            self.with_logs(|logs, _| {
                logs.edit_search(&text);
                true
            });
        }
        true
    }

    /// Accepts the logs input line.
    pub(super) fn submit_logs_input(&mut self) -> bool {
        let Some(Layer::LogsInput(input)) = self.layers.last_mut() else {
            return false;
        };
        match input.purpose {
            LogsInputPurpose::Search => {
                let text = input.text.clone();
                self.layers.pop();
                self.with_logs(|logs, key| {
                    logs.edit_search(&text);
                    logs.accept_search(key);
                    true
                });
            }
            LogsInputPurpose::Save => {
                let text = input.text.trim().to_owned();
                if text.is_empty() {
                    input.error = Some("type a path to save to, or press esc".to_owned());
                    return true;
                }
                self.layers.pop();
                self.with_logs(|logs, key| {
                    logs.save(key, PathBuf::from(text));
                    true
                });
            }
        }
        true
    }

    /// Closes the logs input line; a cancelled search restores the one
    /// from before.
    pub(super) fn cancel_logs_input(&mut self) -> bool {
        let Some(Layer::LogsInput(input)) = self.layers.last() else {
            return false;
        };
        if input.purpose == LogsInputPurpose::Search {
            self.with_logs(|logs, _| {
                logs.cancel_search();
                true
            });
        }
        self.layers.pop();
        true
    }

    pub(super) fn on_logs_data(
        &mut self,
        key: &DeploymentKey,
        data: LogsData,
        effects: &mut Effects,
    ) {
        if let LogsData::Saved { path, result } = &data {
            let (level, message) = match result {
                Ok(count) => (
                    ToastLevel::Ok,
                    format!("saved {count} lines to {}", path.display()),
                ),
                Err(message) => (ToastLevel::Error, message.clone()),
            };
            self.toast(level, message);
            effects.redraw();
        }
        let Some(detail) = self.detail.as_mut().filter(|detail| detail.key == *key) else {
            return;
        };
        if detail.logs.receive(data, key) {
            effects.redraw();
        }
    }

    /// Asks the worker for the logs tab's stream and reads.
    pub(super) fn watch_logs(&mut self, effects: &mut Effects) {
        let watch = self
            .detail
            .as_ref()
            .filter(|detail| detail.tab == DetailTab::Logs)
            .map(|detail| detail.logs.watch(&detail.key));
        if watch != self.watched_logs {
            self.watched_logs.clone_from(&watch);
            effects.push(Effect::Logs(LogsEffect::Watch(watch)));
        }
        if let Some(detail) = self.detail.as_mut() {
            for request in detail.logs.take_requests() {
                effects.push(Effect::Logs(request));
            }
        }
    }
}

/// Builds the file name the save input starts with: the deployment,
/// its environment and the time, in the current directory.
pub fn default_save_name(key: &DeploymentKey, now: OffsetDateTime) -> String {
    let safe = |text: &str| -> String {
        text.chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.') {
                    character
                } else {
                    '_'
                }
            })
            .collect()
    };
    let utc = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{}-{:04}{:02}{:02}-{:02}{:02}{:02}.log",
        safe(&key.name),
        safe(&key.environment),
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}
