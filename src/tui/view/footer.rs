//! The bottom row: the most useful keys of what has the focus, read from
//! the keymap so that remapped keys show as remapped.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::action::Command;
use crate::tui::app::{App, LogsCommand};
use crate::tui::keymap::Context;
use crate::tui::theme::Theme;

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let contexts = app.contexts();
    let hints: &[(Command, &str)] = match contexts.first() {
        Some(Context::Filter) => &[
            (Command::AcceptFilter, "keep"),
            (Command::CancelFilter, "cancel"),
            (Command::ClearInput, "clear"),
        ],
        Some(Context::Help) => &[(Command::CloseHelp, "close"), (Command::MoveDown, "scroll")],
        Some(Context::Editor) => &[
            (Command::SendManifest, "send"),
            (Command::CloseEditor, "close"),
            (Command::ToggleHelp, "keys"),
        ],
        Some(Context::Secrets) => &[
            (Command::ToggleHelp, "help"),
            (Command::AddSecret, "add"),
            (Command::SetSecret, "replace value"),
            (Command::DeleteSecret, "delete"),
            (Command::CloseSecrets, "back"),
            (Command::Quit, "quit"),
        ],
        Some(Context::Form) => &[
            (Command::Confirm, "send"),
            (Command::NextField, "next field"),
            (Command::CancelFilter, "cancel"),
        ],
        Some(Context::Confirm | Context::ConfirmTyped | Context::Prompt) => &[
            (Command::Confirm, "confirm"),
            (Command::CancelFilter, "cancel"),
        ],
        Some(Context::Logs) => &[
            (Command::ToggleHelp, "help"),
            (Command::Logs(LogsCommand::Search), "search"),
            (Command::Logs(LogsCommand::NextMatch), "next"),
            (Command::Logs(LogsCommand::ToggleFilter), "filter"),
            (Command::Logs(LogsCommand::ToggleFollow), "pause"),
            (Command::Logs(LogsCommand::NextLevel), "level"),
            (Command::CloseDetail, "back"),
            (Command::Quit, "quit"),
        ],
        Some(Context::Detail) => &[
            (Command::ToggleHelp, "help"),
            (Command::CloseDetail, "back"),
            (Command::NextTab, "next tab"),
            (Command::NextWindow, "window"),
            (Command::MarkRevision, "mark"),
            (Command::ToggleAlerts, "alerts"),
            (Command::Quit, "quit"),
        ],
        _ => &[
            (Command::ToggleHelp, "help"),
            (Command::StartFilter, "filter"),
            (Command::NextSort, "sort"),
            (Command::ScaleTo, "scale"),
            (Command::OpenPalette, "command"),
            (Command::ToggleAlerts, "alerts"),
            (Command::FocusNext, "focus"),
            (Command::Quit, "quit"),
        ],
    };
    let mut spans = Vec::new();
    for (command, label) in hints {
        if app.read_only && command.changes_agent() {
            continue;
        }
        let key = contexts
            .iter()
            .find_map(|context| app.keymap.first_key(*context, *command));
        if let Some(key) = key {
            spans.push(Span::styled(format!(" {key}"), theme.accent));
            spans.push(Span::styled(format!(" {label} "), theme.muted));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
