//! Everything that can change the dashboard's state, as one enum.
//!
//! Keys, clock ticks, terminal resizes and the worker's results all arrive
//! as an [`Action`] on one channel, so [`App::apply`](super::app::App::apply)
//! is the only place where state changes and every change can be replayed
//! in a unit test. What the state asks of the outside world comes back as an
//! [`Effect`].

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{AutoscaleSetting, DetailData, DetailRequest, LogsCommand, LogsData, LogsEffect};
use crate::config::{SecretInfo, SecretValue};
use crate::model::{DeploymentKey, DeploymentView, ManifestSource, SeriesView};
use crate::monitor::alerts::AlertView;

/// One input to the dashboard's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A key press, resolved through the keymap of the focused view.
    Key(KeyPress),
    /// A command given directly, as a resolved key would give it.
    Command(Command),
    /// The clock moved: toasts may expire and ages may change.
    Tick,
    /// The terminal now has this many columns and rows.
    Resize { width: u16, height: u16 },
    /// The agent the dashboard watches, read once per connection.
    AgentInfo(AgentInfo),
    /// A fresh list of every deployment.
    Deployments(Vec<DeploymentView>),
    /// A fresh list of every alert, in every state.
    Alerts(Vec<AlertView>),
    /// Recent series of one deployment, for its row.
    Metrics {
        key: DeploymentKey,
        series: Vec<SeriesView>,
    },
    /// The agent responded with an error to a read; the last data stays.
    FetchFailed { what: String, message: String },
    /// The agent's socket stopped accepting connections.
    ConnectionLost { reason: String },
    /// The agent responds again after a [`Action::ConnectionLost`].
    ConnectionRestored,
    /// Leave the dashboard (a signal or the input ending).
    Quit,
    /// A change the operator confirmed (or one that needs no
    /// confirmation), to send to the agent.
    Execute(Operation),
    /// The agent's response to an [`Operation`]: a summary for the toast,
    /// or the agent's error, which the toast shortens to one line.
    OperationFinished {
        operation: Operation,
        result: Result<String, String>,
    },
    /// the agent rejected a [`Operation::Scale`] because autoscaling sets
    /// the deployment's count; `message` is the agent's.
    ScaleRejected {
        operation: Operation,
        message: String,
    },
    /// Theme `name`, requested by [`Effect::LoadTheme`], did not load.
    ThemeFailed { name: String, message: String },
    /// A read for the detail view of `key`.
    Detail {
        key: DeploymentKey,
        data: DetailData,
    },
    /// A read for the logs tab of `key`, boxed so that every action
    /// stays small.
    Logs {
        key: DeploymentKey,
        data: Box<LogsData>,
    },
    /// The manifest that [`Request::LoadManifest`] asked for, or why the
    /// agent did not return it.
    ManifestLoaded {
        key: DeploymentKey,
        // Boxed, so that every action stays small.
        result: Result<Box<ManifestSource>, String>,
    },
    /// The secret names and times that [`Request::ReadSecrets`] asked for.
    Secrets(Result<Vec<SecretInfo>, SecretsReadError>),
    /// The agent's response to a [`SecretChange`]; it names the secret and
    /// never carries its value.
    SecretChanged {
        name: String,
        deleted: bool,
        result: Result<(), String>,
    },
}

/// The reason the secrets list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsReadError {
    /// The agent cannot decrypt its vault. The message names the key it
    /// needs.
    Locked(String),
    Failed(String),
}

/// A one-off request to the agent that is not an [`Operation`] on a
/// deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Read the current manifest of a deployment, for the editor.
    LoadManifest(DeploymentKey),
    ReadSecrets,
    ChangeSecret(SecretChange),
}

/// A change to the vault. `Debug` shows a value as `[REDACTED]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// Adds the secret, or replaces its value.
    Set {
        name: String,
        value: SecretValue,
    },
    Delete {
        name: String,
    },
}

impl SecretChange {
    pub fn name(&self) -> &str {
        match self {
            Self::Set { name, .. } | Self::Delete { name } => name,
        }
    }
}

/// A change to one deployment that the dashboard requests from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operation {
    /// With `force`, the agent turns autoscaling off first where it is on.
    Scale {
        key: DeploymentKey,
        replicas: u32,
        force: bool,
    },
    /// Turns autoscaling on with `setting`, or off with `None`, as a new
    /// revision. Boxed, so that every action stays small.
    Autoscale {
        key: DeploymentKey,
        setting: Option<Box<AutoscaleSetting>>,
    },
    /// `to_revision: None` rolls back to the previous healthy revision.
    Rollback {
        key: DeploymentKey,
        to_revision: Option<u64>,
    },
    Redeploy {
        key: DeploymentKey,
    },
    Undeploy {
        key: DeploymentKey,
    },
    /// Deploy a manifest written in the editor; `key` is its name and
    /// environment as parsed.
    Deploy {
        key: DeploymentKey,
        manifest: String,
    },
    /// Redeploy `key` from its edited manifest.
    Edit {
        key: DeploymentKey,
        manifest: String,
    },
    /// Restart one replica, or every replica in a rolling way.
    Restart {
        key: DeploymentKey,
        replica: Option<u32>,
    },
    /// Boxed, so that every action stays small.
    Silence(Box<SilenceRequest>),
    EndSilence {
        key: DeploymentKey,
        id: String,
    },
    Acknowledge {
        key: DeploymentKey,
        rule: String,
    },
}

/// Silence `rule` of `key` for `duration` (such as `1h`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SilenceRequest {
    pub key: DeploymentKey,
    pub rule: String,
    pub duration: String,
    pub comment: String,
}

impl Operation {
    pub fn key(&self) -> &DeploymentKey {
        match self {
            Self::Scale { key, .. }
            | Self::Autoscale { key, .. }
            | Self::Rollback { key, .. }
            | Self::Redeploy { key }
            | Self::Undeploy { key }
            | Self::Deploy { key, .. }
            | Self::Edit { key, .. }
            | Self::Restart { key, .. }
            | Self::EndSilence { key, .. }
            | Self::Acknowledge { key, .. } => key,
            Self::Silence(request) => &request.key,
        }
    }

    /// Describes the operation in the past tense, for the toast on success.
    pub fn done(&self) -> String {
        let key = self.key();
        let target = format!("{} ({})", key.name, key.environment);
        match self {
            Self::Scale {
                replicas,
                force: true,
                ..
            } => format!("turning autoscaling off for {target} and scaling to {replicas} replicas"),
            Self::Scale { replicas, .. } => format!("scaling {target} to {replicas} replicas"),
            Self::Autoscale {
                setting: Some(setting),
                ..
            } => format!(
                "autoscaling {target} between {} and {} replicas",
                setting.min_replicas, setting.max_replicas
            ),
            Self::Autoscale { setting: None, .. } => {
                format!("turning autoscaling off for {target}")
            }
            Self::Rollback {
                to_revision: Some(revision),
                ..
            } => format!("rolling back {target} to revision {revision}"),
            Self::Rollback { .. } => format!("rolling back {target}"),
            Self::Redeploy { .. } => format!("redeploying {target}"),
            Self::Undeploy { .. } => format!("undeploying {target}"),
            Self::Deploy { .. } => format!("deploying {target}"),
            Self::Edit { .. } => format!("redeploying {target} from the edited manifest"),
            Self::Restart {
                replica: Some(replica),
                ..
            } => format!("restarting replica {replica} of {target}"),
            Self::Restart { .. } => format!("restarting every replica of {target}"),
            Self::Silence(request) => format!(
                "silencing {} on {target} for {}",
                request.rule, request.duration
            ),
            Self::EndSilence { id, .. } => format!("ending silence {id} on {target}"),
            Self::Acknowledge { rule, .. } => format!("acknowledging {rule} on {target}"),
        }
    }
}

/// Agent details for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub socket: String,
    pub home: String,
    pub version: String,
    pub pid: u32,
}

/// A request from the state to the event loop, which owns the terminal and
/// the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Something visible changed: draw a frame.
    Redraw,
    /// Leave the dashboard and restore the terminal.
    Quit,
    /// Fetch metrics for these deployments, replacing the previous set.
    WatchMetrics(Vec<DeploymentKey>),
    /// Send this change to the agent.
    Execute(Operation),
    /// Load theme `name` and draw with it from now on.
    LoadTheme(String),
    /// Read what the detail view shows, replacing the previous request;
    /// `None` when no detail view is open.
    WatchDetail(Option<DetailRequest>),
    /// Send a one-off request; its result arrives as an action.
    Request(Request),
    /// Follow, page or save what the logs tab shows.
    Logs(LogsEffect),
    /// Put this text on the terminal's clipboard with OSC 52.
    CopyToClipboard(String),
}

/// An operator's intent, the value a key is bound to in the keymap. Names
/// in `keymap.toml` are the kebab-case forms from [`Command::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Quit,
    ToggleHelp,
    ToggleAlerts,
    FocusNext,
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
    AcceptFilter,
    CancelFilter,
    DeleteChar,
    ClearInput,
    CloseHelp,
    ScaleUp,
    ScaleDown,
    ScaleTo,
    Rollback,
    Redeploy,
    Undeploy,
    OpenPalette,
    Confirm,
    Complete,
    NextTheme,
    OpenDetail,
    CloseDetail,
    NextTab,
    PreviousTab,
    ShowOverview,
    ShowMetrics,
    ShowHistory,
    ShowAlerts,
    ShowTimeline,
    ShowAutoscale,
    NextWindow,
    MarkRevision,
    ScrollDiffDown,
    ScrollDiffUp,
    NewManifest,
    EditManifest,
    Restart,
    OpenSecrets,
    SendManifest,
    CloseEditor,
    AddSecret,
    SetSecret,
    DeleteSecret,
    CloseSecrets,
    NextField,
    SilenceRule,
    EndSilence,
    Acknowledge,
    /// Repeat the scale the agent last rejected because autoscaling was on,
    /// turning autoscaling off first.
    ForceScale,
    /// Open the palette on `autoscale` for the deployment in view.
    Autoscale,
    /// A key of the logs tab; [`Command::ALL`] leaves these out.
    Logs(LogsCommand),
}

impl Command {
    pub const ALL: [Command; 59] = [
        Self::Quit,
        Self::ToggleHelp,
        Self::ToggleAlerts,
        Self::FocusNext,
        Self::MoveUp,
        Self::MoveDown,
        Self::PageUp,
        Self::PageDown,
        Self::First,
        Self::Last,
        Self::StartFilter,
        Self::ClearFilter,
        Self::NextSort,
        Self::ReverseSort,
        Self::AcceptFilter,
        Self::CancelFilter,
        Self::DeleteChar,
        Self::ClearInput,
        Self::CloseHelp,
        Self::ScaleUp,
        Self::ScaleDown,
        Self::ScaleTo,
        Self::Rollback,
        Self::Redeploy,
        Self::Undeploy,
        Self::OpenPalette,
        Self::Confirm,
        Self::Complete,
        Self::NextTheme,
        Self::OpenDetail,
        Self::CloseDetail,
        Self::NextTab,
        Self::PreviousTab,
        Self::ShowOverview,
        Self::ShowMetrics,
        Self::ShowHistory,
        Self::ShowAlerts,
        Self::ShowTimeline,
        Self::ShowAutoscale,
        Self::NextWindow,
        Self::MarkRevision,
        Self::ScrollDiffDown,
        Self::ScrollDiffUp,
        Self::NewManifest,
        Self::EditManifest,
        Self::Restart,
        Self::OpenSecrets,
        Self::SendManifest,
        Self::CloseEditor,
        Self::AddSecret,
        Self::SetSecret,
        Self::DeleteSecret,
        Self::CloseSecrets,
        Self::NextField,
        Self::SilenceRule,
        Self::EndSilence,
        Self::Acknowledge,
        Self::ForceScale,
        Self::Autoscale,
    ];

    /// Returns the name used in `keymap.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::ToggleHelp => "help",
            Self::ToggleAlerts => "toggle-alerts",
            Self::FocusNext => "focus-next",
            Self::MoveUp => "up",
            Self::MoveDown => "down",
            Self::PageUp => "page-up",
            Self::PageDown => "page-down",
            Self::First => "first",
            Self::Last => "last",
            Self::StartFilter => "filter",
            Self::ClearFilter => "clear-filter",
            Self::NextSort => "sort-next",
            Self::ReverseSort => "sort-reverse",
            Self::AcceptFilter => "accept",
            Self::CancelFilter => "cancel",
            Self::DeleteChar => "delete-char",
            Self::ClearInput => "clear-input",
            Self::CloseHelp => "close",
            Self::ScaleUp => "scale-up",
            Self::ScaleDown => "scale-down",
            Self::ScaleTo => "scale",
            Self::Rollback => "rollback",
            Self::Redeploy => "redeploy",
            Self::Undeploy => "undeploy",
            Self::OpenPalette => "palette",
            Self::Confirm => "confirm",
            Self::Complete => "complete",
            Self::NextTheme => "next-theme",
            Self::OpenDetail => "open",
            Self::CloseDetail => "back",
            Self::NextTab => "next-tab",
            Self::PreviousTab => "previous-tab",
            Self::ShowOverview => "tab-overview",
            Self::ShowMetrics => "tab-metrics",
            Self::ShowHistory => "tab-history",
            Self::ShowAlerts => "tab-alerts",
            Self::ShowTimeline => "tab-timeline",
            Self::ShowAutoscale => "tab-autoscale",
            Self::NextWindow => "metrics-window",
            Self::MarkRevision => "mark",
            Self::ScrollDiffDown => "diff-down",
            Self::ScrollDiffUp => "diff-up",
            Self::NewManifest => "deploy",
            Self::EditManifest => "edit",
            Self::Restart => "restart",
            Self::OpenSecrets => "secrets",
            Self::SendManifest => "send",
            Self::CloseEditor => "close-editor",
            Self::AddSecret => "add",
            Self::SetSecret => "set-value",
            Self::DeleteSecret => "delete",
            Self::CloseSecrets => "close-secrets",
            Self::NextField => "next-field",
            Self::SilenceRule => "silence",
            Self::EndSilence => "unsilence",
            Self::Acknowledge => "ack",
            Self::ForceScale => "force-scale",
            Self::Autoscale => "autoscale",
            Self::Logs(command) => command.name(),
        }
    }

    /// Returns one line for the `?` help.
    pub fn description(self) -> &'static str {
        match self {
            Self::Quit => "quit the dashboard (the agent keeps running)",
            Self::ToggleHelp => "show or hide this help",
            Self::ToggleAlerts => "show or hide the firing alerts",
            Self::FocusNext => "move the focus to the next pane",
            Self::MoveUp => "select the previous row",
            Self::MoveDown => "select the next row",
            Self::PageUp => "scroll up one page",
            Self::PageDown => "scroll down one page",
            Self::First => "select the first row",
            Self::Last => "select the last row",
            Self::StartFilter => "filter: name text, env:E, status:S, tag:T",
            Self::ClearFilter => "remove the filter",
            Self::NextSort => "sort by the next column",
            Self::ReverseSort => "reverse the sort order",
            Self::AcceptFilter => "keep the filter and return to the table",
            Self::CancelFilter => "drop the edit and return to the table",
            Self::DeleteChar => "delete the character before the cursor",
            Self::ClearInput => "clear the filter text",
            Self::CloseHelp => "close this help",
            Self::ScaleUp => "scale up by one replica",
            Self::ScaleDown => "scale down by one replica",
            Self::ScaleTo => "scale to a replica count you type",
            Self::Rollback => {
                "roll back: in history to the selected revision, else to the previous healthy one"
            }
            Self::Redeploy => "redeploy: every replica restarts",
            Self::Undeploy => "undeploy: every replica stops",
            Self::OpenPalette => "command palette, as in :scale web 3",
            Self::Confirm => "confirm: do what the dialog says",
            Self::Complete => "complete the command or deployment name",
            Self::NextTheme => "switch to the next theme",
            Self::OpenDetail => "open the selected deployment's detail view",
            Self::CloseDetail => "return to the deployments table",
            Self::NextTab => "show the next tab",
            Self::PreviousTab => "show the previous tab",
            Self::ShowOverview => "show the overview tab",
            Self::ShowMetrics => "show the metrics tab",
            Self::ShowHistory => "show the history tab",
            Self::ShowAlerts => "show the alerts tab",
            Self::ShowTimeline => "show the timeline tab",
            Self::ShowAutoscale => "show the autoscale tab",
            Self::NextWindow => "metrics: switch the window (5m, 1h, 24h)",
            Self::MarkRevision => "history: mark the selected revision to diff against",
            Self::ScrollDiffDown => "history: scroll the diff down",
            Self::ScrollDiffUp => "history: scroll the diff up",
            Self::NewManifest => "write a new manifest and deploy it",
            Self::EditManifest => "edit the manifest and redeploy it",
            Self::Restart => "restart all replicas, or the one selected",
            Self::OpenSecrets => "list the secrets, never their values",
            Self::SendManifest => "editor: check, confirm and send",
            Self::CloseEditor => "editor: close; asks if changes are unsent",
            Self::AddSecret => "secrets: add a secret",
            Self::SetSecret => "secrets: replace the selected secret's value",
            Self::DeleteSecret => "secrets: delete the selected secret",
            Self::CloseSecrets => "secrets: return to the deployments",
            Self::NextField => "move to the next field of the form",
            Self::SilenceRule => "alerts: silence the selected rule for a while",
            Self::EndSilence => "alerts: end the selected silence",
            Self::Acknowledge => "alerts: acknowledge the firing alert",
            Self::ForceScale => {
                "force the scale rejected while autoscaling was on: turns it off (asks first)"
            }
            Self::Autoscale => "open :autoscale for this deployment, filled in with its setting",
            Self::Logs(command) => command.description(),
        }
    }

    /// Whether the command changes anything in the agent, which
    /// `--read-only` hides and rejects.
    pub fn changes_agent(self) -> bool {
        matches!(
            self,
            Self::ScaleUp
                | Self::ScaleDown
                | Self::ScaleTo
                | Self::Rollback
                | Self::Redeploy
                | Self::Undeploy
                | Self::NewManifest
                | Self::EditManifest
                | Self::Restart
                | Self::SendManifest
                | Self::AddSecret
                | Self::SetSecret
                | Self::DeleteSecret
                | Self::SilenceRule
                | Self::EndSilence
                | Self::Acknowledge
                | Self::ForceScale
                | Self::Autoscale
        )
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let logs = LogsCommand::ALL.into_iter().map(Self::Logs);
        Self::ALL
            .into_iter()
            .chain(logs)
            .find(|command| command.name() == name)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key with its modifiers, the unit the keymap binds. Shift is folded
/// into the character (`G`, not `shift-g`), as terminals report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPress {
    pub code: KeyCodeKey,
    pub ctrl: bool,
    pub alt: bool,
}

/// The keys the keymap can name; a subset of crossterm's [`KeyCode`] that
/// is `Ord`, so that bindings list in a stable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeKey {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Delete,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    F(u8),
}

impl KeyPress {
    pub fn plain(code: KeyCodeKey) -> Self {
        Self {
            code,
            ctrl: false,
            alt: false,
        }
    }

    pub fn char(character: char) -> Self {
        Self::plain(KeyCodeKey::Char(character))
    }

    pub fn ctrl(character: char) -> Self {
        Self {
            code: KeyCodeKey::Char(character),
            ctrl: true,
            alt: false,
        }
    }

    /// Converts a terminal key event; `None` for releases, repeats reported
    /// as releases, and keys the keymap cannot name (media keys, bare
    /// modifiers).
    pub fn from_event(event: KeyEvent) -> Option<Self> {
        if event.kind == KeyEventKind::Release {
            return None;
        }
        let code = match event.code {
            KeyCode::Char(character) => KeyCodeKey::Char(character),
            KeyCode::Enter => KeyCodeKey::Enter,
            KeyCode::Esc => KeyCodeKey::Esc,
            KeyCode::Tab => KeyCodeKey::Tab,
            KeyCode::BackTab => KeyCodeKey::BackTab,
            KeyCode::Backspace => KeyCodeKey::Backspace,
            KeyCode::Delete => KeyCodeKey::Delete,
            KeyCode::Up => KeyCodeKey::Up,
            KeyCode::Down => KeyCodeKey::Down,
            KeyCode::Left => KeyCodeKey::Left,
            KeyCode::Right => KeyCodeKey::Right,
            KeyCode::Home => KeyCodeKey::Home,
            KeyCode::End => KeyCodeKey::End,
            KeyCode::PageUp => KeyCodeKey::PageUp,
            KeyCode::PageDown => KeyCodeKey::PageDown,
            KeyCode::F(number) => KeyCodeKey::F(number),
            _ => return None,
        };
        Some(Self {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// The character this key types into a text field, if it types one.
    pub fn typed_char(self) -> Option<char> {
        match self.code {
            KeyCodeKey::Char(character) if !self.ctrl && !self.alt => Some(character),
            _ => None,
        }
    }
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCodeKey::Char(' ') => f.write_str("space"),
            KeyCodeKey::Char(character) => write!(f, "{character}"),
            KeyCodeKey::Enter => f.write_str("enter"),
            KeyCodeKey::Esc => f.write_str("esc"),
            KeyCodeKey::Tab => f.write_str("tab"),
            KeyCodeKey::BackTab => f.write_str("backtab"),
            KeyCodeKey::Backspace => f.write_str("backspace"),
            KeyCodeKey::Delete => f.write_str("delete"),
            KeyCodeKey::Up => f.write_str("up"),
            KeyCodeKey::Down => f.write_str("down"),
            KeyCodeKey::Left => f.write_str("left"),
            KeyCodeKey::Right => f.write_str("right"),
            KeyCodeKey::Home => f.write_str("home"),
            KeyCodeKey::End => f.write_str("end"),
            KeyCodeKey::PageUp => f.write_str("pageup"),
            KeyCodeKey::PageDown => f.write_str("pagedown"),
            KeyCodeKey::F(number) => write!(f, "f{number}"),
        }
    }
}
