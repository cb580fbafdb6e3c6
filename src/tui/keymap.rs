//! The table from keys to commands, per context, with defaults that k9s and
//! lazydocker users expect and overrides from `keymap.toml`.
//!
//! The file has one table per context and, in it, a command name bound to
//! one key or a list of keys:
//!
//! ```toml
//! [deployments]
//! sort-next = ["o", "f2"]
//!
//! [global]
//! quit = "ctrl-q"
//! ```
//!
//! A command listed in the file loses its default keys in that context, so
//! a key moved elsewhere is freed. Keys are written as `j`, `G`, `?`,
//! `space`, `enter`, `esc`, `tab`, `backtab`, `backspace`, `delete`, the
//! arrows `up`/`down`/`left`/`right`, `home`, `end`, `pageup`, `pagedown`,
//! `f1` to `f12`, with `ctrl-` and `alt-` prefixes. The defaults leave out
//! the keys that tmux (`ctrl-b`), job control (`ctrl-z`) and terminal flow
//! control (`ctrl-s`, `ctrl-q`) may take first.

use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::action::{Command, KeyCodeKey, KeyPress};
use super::app::LogsCommand;

/// The scope of a binding. Lists of contexts are searched from the most
/// specific one to [`Context::Global`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    Deployments,
    Alerts,
    Filter,
    Help,
    /// A confirmation dialog confirmed with a key.
    Confirm,
    /// A confirmation dialog confirmed by typing the deployment's name.
    ConfirmTyped,
    /// A line of text: the replica count or the command palette.
    Prompt,
    Detail,
    /// The manifest editor: unbound keys type into the text.
    Editor,
    /// The secrets list.
    Secrets,
    /// A form of several fields: a secret's name and value, or a
    /// silence's duration and comment.
    Form,
    /// The detail view's logs tab, searched before [`Context::Detail`].
    Logs,
}

impl Context {
    pub const ALL: [Context; 13] = [
        Self::Global,
        Self::Deployments,
        Self::Alerts,
        Self::Filter,
        Self::Help,
        Self::Confirm,
        Self::ConfirmTyped,
        Self::Prompt,
        Self::Detail,
        Self::Editor,
        Self::Secrets,
        Self::Form,
        Self::Logs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Deployments => "deployments",
            Self::Alerts => "alerts",
            Self::Filter => "filter",
            Self::Help => "help",
            Self::Confirm => "confirm",
            Self::ConfirmTyped => "confirm-typed",
            Self::Prompt => "prompt",
            Self::Detail => "detail",
            Self::Editor => "editor",
            Self::Secrets => "secrets",
            Self::Form => "form",
            Self::Logs => "logs",
        }
    }

    /// Commands that mean something in this context; the file may bind
    /// only these.
    pub fn commands(self) -> &'static [Command] {
        use Command::*;
        match self {
            Self::Global => &[
                Quit,
                ToggleHelp,
                ToggleAlerts,
                FocusNext,
                OpenPalette,
                NextTheme,
            ],
            Self::Deployments => &[
                MoveUp,
                MoveDown,
                PageUp,
                PageDown,
                First,
                Last,
                StartFilter,
                ClearFilter,
                NextSort,
                ReverseSort,
                ScaleUp,
                ScaleDown,
                ScaleTo,
                ForceScale,
                Autoscale,
                Rollback,
                Redeploy,
                Undeploy,
                OpenDetail,
                NewManifest,
                EditManifest,
                Restart,
                OpenSecrets,
            ],
            Self::Alerts => &[MoveUp, MoveDown, PageUp, PageDown, First, Last],
            Self::Filter => &[AcceptFilter, CancelFilter, DeleteChar, ClearInput],
            Self::Help => &[CloseHelp, MoveUp, MoveDown, PageUp, PageDown, First, Last],
            Self::Confirm => &[Confirm, CancelFilter],
            Self::ConfirmTyped => &[Confirm, CancelFilter, DeleteChar, ClearInput],
            Self::Prompt => &[Confirm, CancelFilter, DeleteChar, ClearInput, Complete],
            Self::Detail => &[
                CloseDetail,
                NextTab,
                PreviousTab,
                ShowOverview,
                ShowMetrics,
                ShowHistory,
                ShowAlerts,
                ShowTimeline,
                Logs(LogsCommand::ShowTab),
                ShowAutoscale,
                MoveUp,
                MoveDown,
                PageUp,
                PageDown,
                First,
                Last,
                NextWindow,
                MarkRevision,
                ScrollDiffDown,
                ScrollDiffUp,
                Rollback,
                EditManifest,
                Restart,
                SilenceRule,
                EndSilence,
                Acknowledge,
                ForceScale,
                Autoscale,
            ],
            Self::Editor => &[SendManifest, CloseEditor, ToggleHelp],
            Self::Secrets => &[
                MoveUp,
                MoveDown,
                PageUp,
                PageDown,
                First,
                Last,
                AddSecret,
                SetSecret,
                DeleteSecret,
                CloseSecrets,
            ],
            Self::Form => &[Confirm, CancelFilter, DeleteChar, ClearInput, NextField],
            Self::Logs => &[
                MoveUp,
                MoveDown,
                PageUp,
                PageDown,
                First,
                Last,
                Logs(LogsCommand::Search),
                Logs(LogsCommand::NextMatch),
                Logs(LogsCommand::PreviousMatch),
                Logs(LogsCommand::ClearSearch),
                Logs(LogsCommand::ToggleRegex),
                Logs(LogsCommand::ToggleFilter),
                Logs(LogsCommand::ToggleInvert),
                Logs(LogsCommand::MoreContext),
                Logs(LogsCommand::LessContext),
                Logs(LogsCommand::NextLevel),
                Logs(LogsCommand::NextReplica),
                Logs(LogsCommand::ToggleFollow),
                Logs(LogsCommand::ToggleWrap),
                Logs(LogsCommand::ToggleTimestamps),
                Logs(LogsCommand::ToggleUtc),
                Logs(LogsCommand::Save),
                Logs(LogsCommand::Copy),
            ],
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|context| context.name() == name)
    }
}

/// The default bindings: context, command, keys.
const DEFAULTS: &[(Context, Command, &[&str])] = &[
    (Context::Global, Command::Quit, &["q", "ctrl-c"]),
    (Context::Global, Command::ToggleHelp, &["?"]),
    (Context::Global, Command::ToggleAlerts, &["a"]),
    (Context::Global, Command::FocusNext, &["tab"]),
    (Context::Global, Command::OpenPalette, &[":"]),
    (Context::Global, Command::NextTheme, &["T"]),
    (Context::Deployments, Command::MoveUp, &["k", "up"]),
    (Context::Deployments, Command::MoveDown, &["j", "down"]),
    (Context::Deployments, Command::PageUp, &["pageup", "ctrl-u"]),
    (
        Context::Deployments,
        Command::PageDown,
        &["pagedown", "ctrl-d"],
    ),
    (Context::Deployments, Command::First, &["g", "home"]),
    (Context::Deployments, Command::Last, &["G", "end"]),
    (Context::Deployments, Command::StartFilter, &["/"]),
    (Context::Deployments, Command::ClearFilter, &["esc"]),
    // `s` scales, as in k9s, so sorting takes `o` (order).
    (Context::Deployments, Command::NextSort, &["o"]),
    (Context::Deployments, Command::ReverseSort, &["O"]),
    (Context::Deployments, Command::ScaleUp, &["+"]),
    (Context::Deployments, Command::ScaleDown, &["-"]),
    (Context::Deployments, Command::ScaleTo, &["s"]),
    (Context::Deployments, Command::Rollback, &["r"]),
    (Context::Deployments, Command::Redeploy, &["R"]),
    (Context::Deployments, Command::Undeploy, &["D"]),
    (Context::Alerts, Command::MoveUp, &["k", "up"]),
    (Context::Alerts, Command::MoveDown, &["j", "down"]),
    (Context::Alerts, Command::PageUp, &["pageup", "ctrl-u"]),
    (Context::Alerts, Command::PageDown, &["pagedown", "ctrl-d"]),
    (Context::Alerts, Command::First, &["g", "home"]),
    (Context::Alerts, Command::Last, &["G", "end"]),
    (Context::Filter, Command::AcceptFilter, &["enter"]),
    (Context::Filter, Command::CancelFilter, &["esc"]),
    (Context::Filter, Command::DeleteChar, &["backspace"]),
    (Context::Filter, Command::ClearInput, &["ctrl-u"]),
    (Context::Help, Command::CloseHelp, &["esc", "?", "q"]),
    (Context::Help, Command::MoveUp, &["k", "up"]),
    (Context::Help, Command::MoveDown, &["j", "down"]),
    (Context::Help, Command::PageUp, &["pageup", "ctrl-u"]),
    (Context::Help, Command::PageDown, &["pagedown", "ctrl-d"]),
    (Context::Help, Command::First, &["g", "home"]),
    (Context::Help, Command::Last, &["G", "end"]),
    (Context::Confirm, Command::Confirm, &["enter", "y"]),
    (Context::Confirm, Command::CancelFilter, &["esc", "n"]),
    (Context::ConfirmTyped, Command::Confirm, &["enter"]),
    (Context::ConfirmTyped, Command::CancelFilter, &["esc"]),
    (Context::ConfirmTyped, Command::DeleteChar, &["backspace"]),
    (Context::ConfirmTyped, Command::ClearInput, &["ctrl-u"]),
    (Context::Prompt, Command::Confirm, &["enter"]),
    (Context::Prompt, Command::CancelFilter, &["esc"]),
    (Context::Prompt, Command::DeleteChar, &["backspace"]),
    (Context::Prompt, Command::ClearInput, &["ctrl-u"]),
    (Context::Prompt, Command::Complete, &["tab"]),
    (Context::Deployments, Command::OpenDetail, &["enter"]),
    (Context::Detail, Command::CloseDetail, &["esc"]),
    (Context::Detail, Command::NextTab, &["tab", "right"]),
    (Context::Detail, Command::PreviousTab, &["backtab", "left"]),
    (Context::Detail, Command::ShowOverview, &["1"]),
    (Context::Detail, Command::ShowMetrics, &["2"]),
    (Context::Detail, Command::ShowHistory, &["3"]),
    (Context::Detail, Command::ShowAlerts, &["4"]),
    (Context::Detail, Command::ShowTimeline, &["5"]),
    (Context::Detail, Command::MoveUp, &["k", "up"]),
    (Context::Detail, Command::MoveDown, &["j", "down"]),
    (Context::Detail, Command::PageUp, &["pageup", "ctrl-u"]),
    (Context::Detail, Command::PageDown, &["pagedown", "ctrl-d"]),
    (Context::Detail, Command::First, &["g", "home"]),
    (Context::Detail, Command::Last, &["G", "end"]),
    (Context::Detail, Command::NextWindow, &["w"]),
    (Context::Detail, Command::MarkRevision, &["m", "space"]),
    (Context::Detail, Command::ScrollDiffDown, &["J"]),
    (Context::Detail, Command::ScrollDiffUp, &["K"]),
    (Context::Deployments, Command::NewManifest, &["N"]),
    (Context::Deployments, Command::EditManifest, &["e"]),
    (Context::Deployments, Command::Restart, &["X"]),
    (Context::Deployments, Command::OpenSecrets, &["S"]),
    (Context::Detail, Command::Rollback, &["r"]),
    (Context::Detail, Command::EditManifest, &["e"]),
    (Context::Detail, Command::Restart, &["X"]),
    (Context::Detail, Command::SilenceRule, &["z"]),
    (Context::Detail, Command::EndSilence, &["Z"]),
    (Context::Detail, Command::Acknowledge, &["A"]),
    // ctrl-s is terminal flow control, so sending takes nano's write-out
    // key and F5.
    (Context::Editor, Command::SendManifest, &["ctrl-o", "f5"]),
    (Context::Editor, Command::CloseEditor, &["esc"]),
    (Context::Editor, Command::ToggleHelp, &["f1"]),
    (Context::Secrets, Command::MoveUp, &["k", "up"]),
    (Context::Secrets, Command::MoveDown, &["j", "down"]),
    (Context::Secrets, Command::PageUp, &["pageup", "ctrl-u"]),
    (Context::Secrets, Command::PageDown, &["pagedown", "ctrl-d"]),
    (Context::Secrets, Command::First, &["g", "home"]),
    (Context::Secrets, Command::Last, &["G", "end"]),
    (Context::Secrets, Command::AddSecret, &["n"]),
    (Context::Secrets, Command::SetSecret, &["e", "enter"]),
    (Context::Secrets, Command::DeleteSecret, &["D", "delete"]),
    (Context::Secrets, Command::CloseSecrets, &["esc"]),
    (Context::Form, Command::Confirm, &["enter"]),
    (Context::Form, Command::CancelFilter, &["esc"]),
    (Context::Form, Command::DeleteChar, &["backspace"]),
    (Context::Form, Command::ClearInput, &["ctrl-u"]),
    (Context::Form, Command::NextField, &["tab", "backtab"]),
    (Context::Detail, Command::Logs(LogsCommand::ShowTab), &["6"]),
    (Context::Detail, Command::ShowAutoscale, &["7"]),
    // `!` forces, as in vim; `u` for autoscale, as `a` toggles the alerts.
    (Context::Deployments, Command::ForceScale, &["!"]),
    (Context::Detail, Command::ForceScale, &["!"]),
    (Context::Deployments, Command::Autoscale, &["u"]),
    (Context::Detail, Command::Autoscale, &["u"]),
    // The logs tab: less and vim for moving and searching, k9s for wrap
    // and times. Its keys shadow the detail view's where they differ.
    (Context::Logs, Command::MoveUp, &["k", "up"]),
    (Context::Logs, Command::MoveDown, &["j", "down"]),
    (Context::Logs, Command::PageUp, &["pageup", "ctrl-u"]),
    (Context::Logs, Command::PageDown, &["pagedown", "ctrl-d"]),
    (Context::Logs, Command::First, &["g", "home"]),
    (Context::Logs, Command::Last, &["G", "end"]),
    (Context::Logs, Command::Logs(LogsCommand::Search), &["/"]),
    (Context::Logs, Command::Logs(LogsCommand::NextMatch), &["n"]),
    (
        Context::Logs,
        Command::Logs(LogsCommand::PreviousMatch),
        &["N"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ClearSearch),
        &["esc"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleRegex),
        &["r"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleFilter),
        &["f"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleInvert),
        &["v"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::MoreContext),
        &["]"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::LessContext),
        &["["],
    ),
    (Context::Logs, Command::Logs(LogsCommand::NextLevel), &["l"]),
    (
        Context::Logs,
        Command::Logs(LogsCommand::NextReplica),
        &["c"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleFollow),
        &["p", "space"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleWrap),
        &["w"],
    ),
    (
        Context::Logs,
        Command::Logs(LogsCommand::ToggleTimestamps),
        &["t"],
    ),
    (Context::Logs, Command::Logs(LogsCommand::ToggleUtc), &["z"]),
    (Context::Logs, Command::Logs(LogsCommand::Save), &["S"]),
    (Context::Logs, Command::Logs(LogsCommand::Copy), &["y"]),
];

#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("cannot read the keymap {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Bindings per context, each key bound to at most one command. They are
/// kept in the order the defaults and the file give them, so the help and
/// the hints show the first key written first. At about forty bindings, a
/// scan costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<(Context, KeyPress, Command)>,
}

impl Default for Keymap {
    fn default() -> Self {
        let mut bindings = Vec::new();
        for (context, command, keys) in DEFAULTS {
            for key in *keys {
                // The defaults are constants that a unit test parses.
                if let Ok(press) = parse_key(key) {
                    bindings.push((*context, press, *command));
                }
            }
        }
        Self { bindings }
    }
}

impl Keymap {
    /// Loads the defaults with the overrides of `dir/keymap.toml`, or only
    /// the defaults when that file does not exist.
    pub fn load(dir: &Path) -> Result<Self, KeymapError> {
        let path = dir.join("keymap.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&path, &text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(KeymapError::Read { path, source }),
        }
    }

    /// Applies the overrides in `text`, read from `path` (used in errors).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, KeymapError> {
        let invalid = |span: std::ops::Range<usize>, message: String| KeymapError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, span.start),
            message,
        };
        let document = DeTable::parse(text).map_err(|error| {
            invalid(
                error.span().unwrap_or(0..0),
                format!("invalid TOML: {}", error.message()),
            )
        })?;

        let mut keymap = Self::default();
        for (section, value) in document.get_ref() {
            let Some(context) = Context::from_name(section.get_ref()) else {
                return Err(invalid(
                    section.span(),
                    format!(
                        "unknown section [{}]; the sections are {}",
                        section.get_ref(),
                        names(Context::ALL.iter().map(|context| context.name()))
                    ),
                ));
            };
            let DeValue::Table(table) = value.get_ref() else {
                return Err(invalid(
                    value.span(),
                    format!("[{}] must be a table of command = key", context.name()),
                ));
            };
            for (name, keys) in table {
                let command =
                    command_in(context, name).map_err(|message| invalid(name.span(), message))?;
                let presses = key_list(keys).map_err(|(span, message)| {
                    invalid(
                        span,
                        format!("{}.{}: {message}", context.name(), name.get_ref()),
                    )
                })?;
                keymap
                    .rebind(context, command, &presses)
                    .map_err(|message| invalid(keys.span(), message))?;
            }
        }
        Ok(keymap)
    }

    /// Replaces the keys of `command` in `context`.
    fn rebind(
        &mut self,
        context: Context,
        command: Command,
        keys: &[KeyPress],
    ) -> Result<(), String> {
        self.bindings
            .retain(|(bound_context, _, bound)| !(*bound_context == context && *bound == command));
        for key in keys {
            if let Some(other) = self.command_of(context, *key) {
                return Err(format!(
                    "key {key:?} is bound to both {other} and {command} in [{}]; move one of them to another key",
                    context.name(),
                    key = key.to_string()
                ));
            }
            self.bindings.push((context, *key, command));
        }
        Ok(())
    }

    /// Finds the command for `key` in the contexts given, most specific
    /// first.
    pub fn resolve(&self, contexts: &[Context], key: KeyPress) -> Option<Command> {
        contexts
            .iter()
            .find_map(|context| self.command_of(*context, key))
    }

    fn command_of(&self, context: Context, key: KeyPress) -> Option<Command> {
        self.bindings
            .iter()
            .find(|(bound_context, bound_key, _)| *bound_context == context && *bound_key == key)
            .map(|(_, _, command)| *command)
    }

    /// Lists the keys of `command` in `context`, in the order they were bound.
    fn keys_of(&self, context: Context, command: Command) -> impl Iterator<Item = KeyPress> + '_ {
        self.bindings
            .iter()
            .filter(move |(bound_context, _, bound)| *bound_context == context && *bound == command)
            .map(|(_, key, _)| *key)
    }

    /// Lists the commands of `context` with their keys, in the order of
    /// [`Context::commands`], for the help.
    pub fn describe(&self, context: Context) -> Vec<Binding> {
        context
            .commands()
            .iter()
            .map(|command| Binding {
                command: *command,
                keys: self.keys_of(context, *command).collect(),
            })
            .collect()
    }

    /// Returns the first key bound to `command` in `context`, for hints.
    pub fn first_key(&self, context: Context, command: Command) -> Option<KeyPress> {
        self.keys_of(context, command).next()
    }
}

/// One command and its keys, for the help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub command: Command,
    pub keys: Vec<KeyPress>,
}

fn command_in(context: Context, name: &Spanned<toml::de::DeString<'_>>) -> Result<Command, String> {
    let command = Command::from_name(name.get_ref());
    match command {
        Some(command) if context.commands().contains(&command) => Ok(command),
        _ => Err(format!(
            "unknown command {:?} in [{}]; the commands there are {}",
            name.get_ref(),
            context.name(),
            names(context.commands().iter().map(|command| command.name()))
        )),
    }
}

fn key_list(
    value: &Spanned<DeValue<'_>>,
) -> Result<Vec<KeyPress>, (std::ops::Range<usize>, String)> {
    match value.get_ref() {
        DeValue::String(text) => parse_key(text)
            .map(|key| vec![key])
            .map_err(|message| (value.span(), message)),
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(text) => parse_key(text).map_err(|message| (item.span(), message)),
                _ => Err((
                    item.span(),
                    "each key must be a string such as \"j\"".to_owned(),
                )),
            })
            .collect(),
        _ => Err((
            value.span(),
            "expected a key such as \"j\" or a list such as [\"j\", \"down\"]".to_owned(),
        )),
    }
}

/// Parses a key written as in `keymap.toml`: `j`, `G`, `ctrl-c`, `pageup`.
pub fn parse_key(text: &str) -> Result<KeyPress, String> {
    let mut rest = text;
    let mut press = KeyPress::char(' ');
    loop {
        if let Some(tail) = rest.strip_prefix("ctrl-").filter(|tail| !tail.is_empty()) {
            press.ctrl = true;
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("alt-").filter(|tail| !tail.is_empty()) {
            press.alt = true;
            rest = tail;
        } else {
            break;
        }
    }
    press.code = key_code(rest).ok_or_else(|| {
        format!(
            "invalid key {text:?}; write a character such as \"j\" or \"G\", or one of space, enter, esc, tab, backtab, backspace, delete, up, down, left, right, home, end, pageup, pagedown, f1 to f12, optionally after ctrl- or alt-"
        )
    })?;
    Ok(press)
}

fn key_code(text: &str) -> Option<KeyCodeKey> {
    let mut characters = text.chars();
    if let (Some(character), None) = (characters.next(), characters.next()) {
        return Some(KeyCodeKey::Char(character));
    }
    let code = match text {
        "space" => KeyCodeKey::Char(' '),
        "enter" => KeyCodeKey::Enter,
        "esc" => KeyCodeKey::Esc,
        "tab" => KeyCodeKey::Tab,
        "backtab" => KeyCodeKey::BackTab,
        "backspace" => KeyCodeKey::Backspace,
        "delete" => KeyCodeKey::Delete,
        "up" => KeyCodeKey::Up,
        "down" => KeyCodeKey::Down,
        "left" => KeyCodeKey::Left,
        "right" => KeyCodeKey::Right,
        "home" => KeyCodeKey::Home,
        "end" => KeyCodeKey::End,
        "pageup" => KeyCodeKey::PageUp,
        "pagedown" => KeyCodeKey::PageDown,
        _ => {
            let number: u8 = text.strip_prefix('f')?.parse().ok()?;
            return (1..=12).contains(&number).then_some(KeyCodeKey::F(number));
        }
    };
    Some(code)
}

/// Returns the 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        write!(f, "{}: {}", keys.join(" "), self.command.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("/config/shipdeck/keymap.toml")
    }

    #[test]
    fn defaults_all_parse() {
        for (context, command, keys) in DEFAULTS {
            assert!(
                context.commands().contains(command),
                "{command} in {context:?}"
            );
            for key in *keys {
                assert!(parse_key(key).is_ok(), "default key {key}");
            }
        }
    }

    #[test]
    fn defaults_resolve_vim_and_arrows() {
        let keymap = Keymap::default();
        let contexts = [Context::Deployments, Context::Global];
        let cases = [
            (KeyPress::char('j'), Command::MoveDown),
            (KeyPress::plain(KeyCodeKey::Down), Command::MoveDown),
            (KeyPress::char('k'), Command::MoveUp),
            (KeyPress::char('G'), Command::Last),
            (KeyPress::char('g'), Command::First),
            (KeyPress::char('/'), Command::StartFilter),
            (KeyPress::char('?'), Command::ToggleHelp),
            (KeyPress::char('q'), Command::Quit),
            (KeyPress::ctrl('c'), Command::Quit),
            (KeyPress::plain(KeyCodeKey::Tab), Command::FocusNext),
        ];
        for (key, command) in cases {
            assert_eq!(keymap.resolve(&contexts, key), Some(command), "{key}");
        }
    }

    #[test]
    fn defaults_avoid_reserved_keys() {
        // tmux's default prefix, job control, terminal flow control and
        // SIGQUIT: a terminal, tmux or shell may take these before the
        // dashboard receives them.
        let reserved = ["ctrl-b", "ctrl-z", "ctrl-s", "ctrl-q", "ctrl-\\"];
        let keymap = Keymap::default();
        for key in reserved {
            let press = parse_key(key).unwrap();
            assert_eq!(keymap.resolve(&Context::ALL, press), None, "{key} is bound");
        }
    }

    #[test]
    fn key_syntax() {
        assert_eq!(parse_key("ctrl-c").unwrap(), KeyPress::ctrl('c'));
        assert_eq!(parse_key("space").unwrap(), KeyPress::char(' '));
        assert_eq!(parse_key("-").unwrap(), KeyPress::char('-'));
        assert_eq!(parse_key("ctrl--").unwrap(), KeyPress::ctrl('-'));
        assert_eq!(
            parse_key("f12").unwrap(),
            KeyPress::plain(KeyCodeKey::F(12))
        );
        let alt = parse_key("alt-ctrl-x").unwrap();
        assert!(alt.alt);
        assert!(alt.ctrl);
        assert!(parse_key("f13").is_err());
        assert!(parse_key("ctrl-").is_err());
        assert!(parse_key("").is_err());
    }

    #[test]
    fn override_replaces_default_keys() {
        let text = "[deployments]\ndown = [\"n\", \"down\"]\n";
        let keymap = Keymap::from_toml(&path(), text).unwrap();
        let contexts = [Context::Deployments];
        assert_eq!(
            keymap.resolve(&contexts, KeyPress::char('n')),
            Some(Command::MoveDown)
        );
        assert_eq!(keymap.resolve(&contexts, KeyPress::char('j')), None);
        assert_eq!(
            keymap.resolve(&[Context::Alerts], KeyPress::char('j')),
            Some(Command::MoveDown),
            "other contexts keep their keys"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "[deployments]\n\ndown = \"ctrl-nope\"\n",
                3,
                "deployments.down: invalid key \"ctrl-nope\"",
            ),
            (
                "[deployments]\nfly = \"x\"\n",
                2,
                "unknown command \"fly\" in [deployments]",
            ),
            ("[nowhere]\n", 1, "unknown section [nowhere]"),
            (
                "[deployments]\nup = \"j\"\n",
                2,
                "key \"j\" is bound to both down and up",
            ),
            ("[global]\nquit = 3\n", 2, "expected a key"),
            ("[global\n", 1, "invalid TOML"),
        ];
        for (text, line, expected) in cases {
            let error = Keymap::from_toml(&path(), text).unwrap_err().to_string();
            let prefix = format!("/config/shipdeck/keymap.toml:{line}: ");
            assert!(error.starts_with(&prefix), "{error}");
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Keymap::load(dir.path()).unwrap(), Keymap::default());
    }

    #[test]
    fn describe_lists_every_command() {
        let keymap = Keymap::default();
        let help = keymap.describe(Context::Deployments);
        assert_eq!(help.len(), Context::Deployments.commands().len());
        let down = help
            .iter()
            .find(|binding| binding.command == Command::MoveDown)
            .unwrap();
        assert_eq!(down.keys.len(), 2);
    }
}
