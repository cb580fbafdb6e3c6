//! The dashboard's state, owned by the event loop alone.
//!
//! [`App::apply`] takes one [`Action`] and returns the [`Effect`]s it
//! requests. It does no I/O and reads the time only through its [`Clock`], so
//! every key sequence and data arrival can be replayed in a unit test. The
//! state is split per view: [`DeploymentsState`], [`AlertsState`] and
//! [`Toasts`] know nothing of each other, and `App` routes between them.

mod actions;
mod alerts;
mod autoscale;
mod clock;
mod deployments;
mod detail;
mod detail_select;
mod editor;
mod filter;
mod form;
mod list;
mod logs;
mod logs_app;
mod logs_command;
mod logs_requests;
mod logs_search;
mod logs_window;
mod operations;
pub mod palette;
mod secrets;
mod toasts;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use time::OffsetDateTime;

pub use actions::{check_silence_duration, DEFAULT_SILENCE};
pub use alerts::{AlertRow, AlertsState};
pub use autoscale::{AutoscaleSetting, MetricTarget, PerReplica};
pub use clock::{Clock, ManualClock, SystemClock};
pub use deployments::{DeploymentRow, DeploymentsState, RowMetrics, Sort, SortColumn, ROW_SERIES};
pub use detail::{
    spec_diff, DetailData, DetailRequest, DetailState, DetailTab, DiffLine, MetricsWindow,
    SpecDiff, AUTOSCALE_SUMMARY_ROWS, DETAIL_SERIES, OVERVIEW_SUMMARY_ROWS, RECENT_EVENTS,
};
pub use editor::{
    change_summary, check_manifest, EditorProblem, EditorState, EditorTarget, CHECK_DELAY,
    NEW_MANIFEST,
};
pub use filter::Filter;
pub use form::{Form, FormField, FormPurpose};
pub use list::ListCursor;
pub use logs::{
    replica_index, FetchKind, LogsCommand, LogsData, LogsEffect, LogsFetch, LogsQuery, LogsSave,
    LogsSettings, LogsState, LogsWatch, LEVEL_WIDTH, MAX_CONTEXT_LINES, TIME_WIDTH,
};
pub use logs_app::{default_save_name, LogsInput, LogsInputPurpose, MAX_COPY_BYTES};
pub use logs_search::Search;
pub use logs_window::{LogLine, LogWindow, Select, Viewport, PAGE_LINES, WINDOW_LINES};
pub use operations::{ConfirmDialog, Prompt, PromptMessage, PRODUCTION};
pub use secrets::{SecretsState, DEFAULT_SILENCE_COMMENT, SECRETS_NOTE_ROWS, UNLOCK_ADVICE};
pub use toasts::{Toast, ToastLevel, Toasts};

use super::action::{Action, AgentInfo, Command, Effect, KeyPress};
use super::keymap::{Binding, Context, Keymap};
use super::layout::{self, Areas};
use crate::model::{DeploymentKey, DeploymentStatus, SeriesView};

/// The pane that receives movement keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Deployments,
    Alerts,
    /// The detail view of [`App::detail`], in place of the table.
    Detail,
}

/// A layer over the panes that receives input first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The `?` help, listing the keys of `context`.
    Help {
        context: Context,
        cursor: ListCursor,
    },
    /// Typing a filter; `previous` is restored on cancel.
    Filter { previous: String },
    /// A question before a destructive operation.
    Confirm(ConfirmDialog),
    /// The replica count or a `:` palette command being typed.
    Prompt(Prompt),
    /// The manifest editor of [`App::editor`], over the body.
    Editor,
    /// The secrets view of [`App::secrets`], over the body.
    Secrets,
    /// A form: a secret's name and value, or a silence.
    Form(Form),
    /// The question before the editor drops unsent changes.
    DiscardEdits,
    /// The question before secret `name` is deleted.
    DeleteSecret { name: String },
    /// A search or a path being typed in the logs tab.
    LogsInput(LogsInput),
}

/// The agent connection as the dashboard last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// No response yet.
    Connecting,
    Connected,
    /// The socket stopped accepting connections at `since`; the data shown
    /// is stale.
    Lost {
        since: OffsetDateTime,
        reason: String,
    },
}

/// Settings that come from the command line and the config directory.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub keymap: Keymap,
    pub read_only: bool,
    /// The agent's socket, shown until the agent reports its home.
    pub socket: String,
}

pub struct App {
    pub keymap: Keymap,
    pub read_only: bool,
    pub socket: String,
    pub agent: Option<AgentInfo>,
    pub connection: Connection,
    pub deployments: DeploymentsState,
    pub alerts: AlertsState,
    /// The open detail view, if any; the deployments table stays behind it.
    pub detail: Option<DetailState>,
    /// The manifest editor, while [`Layer::Editor`] is on the stack.
    pub editor: Option<EditorState>,
    /// The secrets view, while [`Layer::Secrets`] is on the stack.
    pub secrets: Option<SecretsState>,
    pub toasts: Toasts,
    pub focus: Pane,
    pub layers: Vec<Layer>,
    /// The last failed read, until a read succeeds.
    pub last_error: Option<String>,
    /// The scale the agent last rejected because autoscaling was on, which
    /// [`Command::ForceScale`] repeats with autoscaling turned off.
    rejected_scale: Option<(DeploymentKey, u32)>,
    /// The themes `T` cycles through, and the one in use; see
    /// [`App::set_themes`].
    pub themes: Vec<String>,
    pub theme: String,
    pub width: u16,
    pub height: u16,
    clock: Arc<dyn Clock>,
    /// The deployments whose metrics the worker fetches.
    watched: Vec<DeploymentKey>,
    /// Request the worker reads for the detail view.
    watched_detail: Option<DetailRequest>,
    /// The follow stream the worker reads for the logs tab.
    watched_logs: Option<LogsWatch>,
    /// The operator's time zone, for the logs tab's local times; UTC when
    /// unknown.
    pub local_zone: Option<Arc<tz::TimeZone>>,
    /// A hash of the clock-dependent text on screen (ages), so that a tick
    /// redraws only when that text changes.
    clock_text: u64,
}

/// Effects collected while applying one action, without duplicates.
#[derive(Default)]
struct Effects(Vec<Effect>);

impl Effects {
    fn push(&mut self, effect: Effect) {
        if !self.0.contains(&effect) {
            self.0.push(effect);
        }
    }

    fn redraw(&mut self) {
        self.push(Effect::Redraw);
    }
}

impl App {
    pub fn new(options: AppOptions, clock: Arc<dyn Clock>) -> Self {
        Self {
            keymap: options.keymap,
            read_only: options.read_only,
            socket: options.socket,
            agent: None,
            connection: Connection::Connecting,
            deployments: DeploymentsState::default(),
            alerts: AlertsState::default(),
            detail: None,
            editor: None,
            secrets: None,
            toasts: Toasts::default(),
            focus: Pane::Deployments,
            layers: Vec::new(),
            last_error: None,
            rejected_scale: None,
            themes: Vec::new(),
            theme: String::new(),
            width: 0,
            height: 0,
            clock,
            watched: Vec::new(),
            watched_detail: None,
            watched_logs: None,
            local_zone: None,
            clock_text: 0,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Applies one action and returns what the event loop must do.
    pub fn apply(&mut self, action: Action) -> Vec<Effect> {
        let mut effects = Effects::default();
        match action {
            Action::Key(key) => self.on_key(key, &mut effects),
            Action::Command(command) => self.on_command(command, &mut effects),
            Action::Tick => self.on_tick(&mut effects),
            Action::Resize { width, height } => {
                self.width = width;
                self.height = height;
                self.deployments.rebuild(self.table_page());
                self.alerts
                    .cursor
                    .clamp(self.alerts.firing().len(), self.alert_page());
                self.fit_detail();
                effects.redraw();
            }
            Action::AgentInfo(info) => {
                if self.agent.as_ref() != Some(&info) {
                    self.agent = Some(info);
                    effects.redraw();
                }
            }
            Action::Deployments(views) => self.on_deployments(&views, &mut effects),
            Action::Alerts(views) => self.on_alerts(&views, &mut effects),
            Action::Metrics { key, series } => self.on_metrics(key, &series, &mut effects),
            Action::FetchFailed { what, message } => {
                let error = format!("reading {what} failed: {message}");
                if self.last_error.as_ref() != Some(&error) {
                    self.last_error = Some(error);
                    effects.redraw();
                }
            }
            Action::ConnectionLost { reason } => self.on_connection_lost(reason, &mut effects),
            Action::ConnectionRestored => self.on_connection_restored(&mut effects),
            Action::Quit => effects.push(Effect::Quit),
            Action::Execute(operation) => self.execute(operation, &mut effects),
            Action::OperationFinished { operation, result } => {
                self.on_operation_finished(&operation, result, &mut effects)
            }
            Action::ScaleRejected { operation, message } => {
                self.on_scale_rejected(&operation, &message, &mut effects)
            }
            Action::ThemeFailed { name, message } => {
                self.on_theme_failed(name, message, &mut effects)
            }
            Action::Detail { key, data } => self.on_detail(&key, data, &mut effects),
            Action::ManifestLoaded { key, result } => {
                self.on_manifest_loaded(&key, result, &mut effects)
            }
            Action::Secrets(result) => self.on_secrets(result, &mut effects),
            Action::SecretChanged {
                name,
                deleted,
                result,
            } => self.on_secret_changed(&name, deleted, result, &mut effects),
            Action::Logs { key, data } => self.on_logs_data(&key, *data, &mut effects),
        }
        self.check_editor(&mut effects);
        self.watch_visible(&mut effects);
        self.watch_detail(&mut effects);
        self.watch_logs(&mut effects);
        effects.0
    }

    /// Lists the keymap contexts that receive a key now, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        match self.layers.last() {
            Some(Layer::Help { .. }) => vec![Context::Help],
            Some(Layer::Filter { .. }) => vec![Context::Filter],
            Some(Layer::Confirm(dialog)) if dialog.required_name.is_some() => {
                vec![Context::ConfirmTyped]
            }
            Some(Layer::Confirm(_)) => vec![Context::Confirm],
            Some(Layer::Prompt(_) | Layer::LogsInput(_)) => vec![Context::Prompt],
            Some(Layer::Editor) => vec![Context::Editor],
            Some(Layer::Secrets) => vec![Context::Secrets, Context::Global],
            Some(Layer::Form(_)) => vec![Context::Form],
            Some(Layer::DiscardEdits | Layer::DeleteSecret { .. }) => vec![Context::Confirm],
            None if self.focus == Pane::Detail && self.logs_shown() => {
                vec![Context::Logs, Context::Detail, Context::Global]
            }
            None => vec![self.pane_context(), Context::Global],
        }
    }

    fn pane_context(&self) -> Context {
        match self.focus {
            Pane::Deployments => Context::Deployments,
            Pane::Alerts => Context::Alerts,
            Pane::Detail => Context::Detail,
        }
    }

    fn on_key(&mut self, key: KeyPress, effects: &mut Effects) {
        if let Some(command) = self.keymap.resolve(&self.contexts(), key) {
            self.on_command(command, effects);
            return;
        }
        if self.type_into_editor(key, effects) {
            return;
        }
        if self.type_into_form(key) {
            effects.redraw();
            return;
        }
        // Unbound keys type into the filter; elsewhere they do nothing.
        if let Some(character) = key.typed_char() {
            if self.edit_filter(|text| text.push(character))
                || self.edit_input(|text| text.push(character))
                || self.edit_logs_input(|text| text.push(character))
            {
                effects.redraw();
            }
        }
    }

    fn on_command(&mut self, command: Command, effects: &mut Effects) {
        if self.read_only && command.changes_agent() {
            self.toast(
                ToastLevel::Warning,
                format!("{command} is disabled: the dashboard runs with --read-only"),
            );
            effects.redraw();
            return;
        }
        if command == Command::Quit {
            effects.push(Effect::Quit);
            return;
        }
        if let Some(changed) = self.on_feature_command(command, effects) {
            if changed {
                effects.redraw();
            }
            return;
        }
        if command.changes_agent() {
            self.on_operation_command(command, effects);
            return;
        }
        let changed = match command {
            Command::ToggleHelp => self.open_help(),
            Command::CloseHelp => self.pop_layer(),
            Command::ToggleAlerts => self.toggle_alerts(),
            Command::FocusNext => self.focus_next(),
            Command::StartFilter => self.start_filter(),
            Command::AcceptFilter => self.pop_layer(),
            Command::CancelFilter => {
                self.cancel_filter() || self.cancel_dialog() || self.cancel_logs_input()
            }
            Command::DeleteChar => {
                let delete = |text: &mut String| {
                    text.pop();
                };
                self.edit_filter(delete) || self.edit_input(delete) || self.edit_logs_input(delete)
            }
            Command::ClearInput => {
                self.edit_filter(String::clear)
                    || self.edit_input(String::clear)
                    || self.edit_logs_input(String::clear)
            }
            Command::OpenPalette => self.open_palette(),
            Command::Confirm => self.confirm(effects) || self.submit_logs_input(),
            Command::Complete => self.complete(),
            Command::NextTheme => self.next_theme(effects),
            Command::OpenDetail => self.open_detail(),
            Command::CloseDetail => self.close_detail(),
            Command::Logs(command) => self.on_logs_command(command, effects),
            movement_or_table => self.on_pane_command(movement_or_table),
        };
        if changed {
            effects.redraw();
        }
    }

    /// Applies a command to the top layer, or else to the focused pane.
    fn on_pane_command(&mut self, command: Command) -> bool {
        if let Some(Layer::Help { context, cursor }) = self.layers.last_mut() {
            let len = help_lines(&self.keymap, *context, self.read_only).len();
            let page = help_page(self.width, self.height);
            return cursor.apply(command, len, page);
        }
        match self.focus {
            Pane::Deployments => {
                let page = self.table_page();
                self.deployments.command(command, page)
            }
            Pane::Alerts => {
                let page = self.alert_page();
                self.alerts
                    .cursor
                    .apply(command, self.alerts.firing().len(), page)
            }
            Pane::Detail => {
                let page = self.detail_page(command);
                self.detail
                    .as_mut()
                    .is_some_and(|detail| detail.command(command, page))
            }
        }
    }

    fn pop_layer(&mut self) -> bool {
        self.layers.pop().is_some()
    }

    fn open_help(&mut self) -> bool {
        let context = self.contexts()[0];
        self.layers.push(Layer::Help {
            context,
            cursor: ListCursor::default(),
        });
        true
    }

    fn start_filter(&mut self) -> bool {
        self.layers.push(Layer::Filter {
            previous: self.deployments.filter_text.clone(),
        });
        true
    }

    fn is_typing_filter(&self) -> bool {
        matches!(self.layers.last(), Some(Layer::Filter { .. }))
    }

    /// Drops the edit and restores the filter from before `/`.
    fn cancel_filter(&mut self) -> bool {
        if !self.is_typing_filter() {
            return false;
        }
        if let Some(Layer::Filter { previous }) = self.layers.pop() {
            self.deployments
                .set_filter_text(previous, self.table_page());
        }
        true
    }

    /// Changes the filter text being typed, which applies at once.
    fn edit_filter(&mut self, edit: impl FnOnce(&mut String)) -> bool {
        if !self.is_typing_filter() {
            return false;
        }
        let mut text = self.deployments.filter_text.clone();
        edit(&mut text);
        self.deployments.set_filter_text(text, self.table_page());
        true
    }

    fn toggle_alerts(&mut self) -> bool {
        self.alerts.shown = !self.alerts.shown;
        if !self.alerts.shown {
            self.focus = self.main_pane();
        }
        self.deployments.rebuild(self.table_page());
        true
    }

    fn focus_next(&mut self) -> bool {
        if !self.alerts.shown {
            return false;
        }
        self.focus = match self.focus {
            Pane::Deployments | Pane::Detail => Pane::Alerts,
            Pane::Alerts => self.main_pane(),
        };
        true
    }

    /// The pane in the body of the screen: the detail view when one is
    /// open, else the table.
    fn main_pane(&self) -> Pane {
        if self.detail.is_some() {
            Pane::Detail
        } else {
            Pane::Deployments
        }
    }

    /// Opens the detail view of the selected deployment.
    fn open_detail(&mut self) -> bool {
        let Some(row) = self.deployments.selected() else {
            return false;
        };
        self.detail = Some(DetailState::new(row.key.clone()));
        self.focus = Pane::Detail;
        self.fit_detail();
        true
    }

    fn close_detail(&mut self) -> bool {
        if self.detail.take().is_none() {
            return false;
        }
        self.focus = Pane::Deployments;
        true
    }

    fn on_detail(&mut self, key: &DeploymentKey, data: DetailData, effects: &mut Effects) {
        // A read for a detail view closed since the request went out.
        let Some(detail) = self.detail.as_mut().filter(|detail| detail.key == *key) else {
            return;
        };
        if detail.receive(data) {
            effects.redraw();
        }
    }

    /// Asks the worker for what the open detail tab shows when that changes.
    fn watch_detail(&mut self, effects: &mut Effects) {
        let request = self.detail.as_ref().map(|detail| {
            let mut request = detail.request();
            // A deployment missing from the list is read all the same,
            // because the agent reports whether autoscaling is on.
            request.autoscaled = self
                .row(&detail.key)
                .is_none_or(|row| row.autoscaling.is_some());
            request
        });
        if request != self.watched_detail {
            self.watched_detail = request.clone();
            effects.push(Effect::WatchDetail(request));
        }
    }

    /// Drops the autoscale tab's data once the list shows autoscaling off.
    fn forget_autoscale_when_off(&mut self) {
        let off = self
            .detail
            .as_ref()
            .and_then(|detail| self.row(&detail.key))
            .is_some_and(|row| row.autoscaling.is_none());
        if let Some(detail) = self.detail.as_mut().filter(|_| off) {
            detail.forget_autoscale();
        }
    }

    fn fit_detail(&mut self) {
        let fits = layout::fits(self.width, self.height);
        let areas = self.detail_areas();
        let Some(detail) = self.detail.as_mut() else {
            return;
        };
        if fits {
            detail.fit([
                areas.history_rows(),
                areas.diff_rows(),
                areas.table_rows(),
                areas.inner_rows(),
            ]);
            detail
                .logs
                .set_area(areas.logs_rows(), areas.logs_columns());
        }
    }

    fn detail_areas(&self) -> layout::DetailAreas {
        layout::DetailAreas::new(self.areas().table)
    }

    /// Returns the rows one page of the open tab holds, for `command`.
    pub fn detail_page(&self, command: Command) -> usize {
        if !layout::fits(self.width, self.height) {
            return 0;
        }
        let areas = self.detail_areas();
        let tab = self.detail.as_ref().map(|detail| detail.tab);
        match (tab, command) {
            (_, Command::ScrollDiffDown | Command::ScrollDiffUp) => areas.diff_rows(),
            (Some(DetailTab::History), _) => areas.history_rows(),
            (Some(DetailTab::Timeline), _) => areas.table_rows(),
            (Some(DetailTab::Logs), _) => areas.logs_rows(),
            _ => areas.inner_rows(),
        }
    }

    fn on_tick(&mut self, effects: &mut Effects) {
        let now = self.now();
        if self.toasts.expire(now) {
            effects.redraw();
        }
        self.refresh_secrets(effects);
        let clock_text = self.clock_text_hash(now);
        if clock_text != self.clock_text {
            self.clock_text = clock_text;
            effects.redraw();
        }
    }

    fn on_deployments(&mut self, views: &[crate::model::DeploymentView], effects: &mut Effects) {
        self.last_error = None;
        self.mark_connected(effects);
        let Some(changes) = self.deployments.replace(views, self.table_page()) else {
            return;
        };
        self.forget_autoscale_when_off();
        let now = self.now();
        for change in changes {
            let level = status_level(change.to);
            let message = change.message();
            self.toasts.push(level, message, now);
        }
        self.clock_text = self.clock_text_hash(now);
        effects.redraw();
    }

    fn on_alerts(&mut self, views: &[crate::monitor::alerts::AlertView], effects: &mut Effects) {
        self.mark_connected(effects);
        let Some(changes) = self.alerts.replace(views, self.alert_page()) else {
            return;
        };
        let now = self.now();
        for change in changes {
            let row = &change.row;
            let (level, verb) = if change.firing {
                (ToastLevel::Error, "firing")
            } else {
                (ToastLevel::Ok, "resolved")
            };
            let message = format!(
                "alert {} {verb} on {} ({})",
                row.rule, row.deployment, row.environment
            );
            self.toasts.push(level, message, now);
        }
        effects.redraw();
    }

    fn on_metrics(&mut self, key: DeploymentKey, series: &[SeriesView], effects: &mut Effects) {
        if !self.deployments.set_metrics(key, series) {
            return;
        }
        let by_metric = matches!(
            self.deployments.sort.column,
            SortColumn::Cpu | SortColumn::Memory | SortColumn::Requests
        );
        if by_metric {
            self.deployments.rebuild(self.table_page());
        }
        effects.redraw();
    }

    fn mark_connected(&mut self, effects: &mut Effects) {
        if self.connection != Connection::Connected {
            self.connection = Connection::Connected;
            effects.redraw();
        }
    }

    fn on_connection_lost(&mut self, reason: String, effects: &mut Effects) {
        if let Connection::Lost { reason: known, .. } = &self.connection {
            if *known == reason {
                return;
            }
        }
        let since = match &self.connection {
            Connection::Lost { since, .. } => *since,
            _ => self.now(),
        };
        self.connection = Connection::Lost { since, reason };
        effects.redraw();
    }

    fn on_connection_restored(&mut self, effects: &mut Effects) {
        if matches!(self.connection, Connection::Lost { .. }) {
            self.toast(ToastLevel::Ok, "reconnected to the agent".to_owned());
        }
        self.mark_connected(effects);
        effects.redraw();
    }

    /// Sets the theme names `T` cycles through and the one in use.
    pub fn set_themes(&mut self, names: Vec<String>, current: &str) {
        self.themes = names;
        current.clone_into(&mut self.theme);
    }

    fn next_theme(&mut self, effects: &mut Effects) -> bool {
        let position = self.themes.iter().position(|name| *name == self.theme);
        let next = match position {
            Some(index) => self.themes.get((index + 1) % self.themes.len()),
            None => self.themes.first(),
        };
        let Some(next) = next.cloned() else {
            return false;
        };
        self.toast(ToastLevel::Info, format!("theme {next}"));
        self.theme.clone_from(&next);
        effects.push(Effect::LoadTheme(next));
        true
    }

    fn on_theme_failed(&mut self, name: String, message: String, effects: &mut Effects) {
        self.toast(
            ToastLevel::Error,
            format!("theme {name} failed to load: {message}"),
        );
        // The frame keeps the previous theme, while `self.theme` keeps the
        // failed name so that the next `T` moves past it.
        effects.redraw();
    }

    /// Shows a message for a few seconds.
    pub fn toast(&mut self, level: ToastLevel, message: String) {
        let now = self.now();
        self.toasts.push(level, message, now);
    }

    /// Asks the worker for the metrics of the rows on screen when they change.
    fn watch_visible(&mut self, effects: &mut Effects) {
        // The detail view hides the table, so its rows need no metrics.
        let page = if self.detail.is_some() {
            0
        } else {
            self.table_page()
        };
        let visible: Vec<DeploymentKey> = self
            .deployments
            .page(page)
            .map(|row| row.key.clone())
            .collect();
        if visible != self.watched {
            self.watched = visible.clone();
            effects.push(Effect::WatchMetrics(visible));
        }
    }

    fn areas(&self) -> Areas {
        Areas::new(
            ratatui::layout::Rect::new(0, 0, self.width, self.height),
            self.alerts.shown,
        )
    }

    /// Returns how many rows of the deployments table are on screen.
    pub fn table_page(&self) -> usize {
        if !layout::fits(self.width, self.height) {
            return 0;
        }
        self.areas().table_rows()
    }

    /// Returns how many rows of the alerts pane are on screen.
    pub fn alert_page(&self) -> usize {
        if !layout::fits(self.width, self.height) {
            return 0;
        }
        self.areas().alert_rows()
    }

    fn clock_text_hash(&self, now: OffsetDateTime) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let page = if self.detail.is_some() {
            0
        } else {
            self.table_page()
        };
        for row in self.deployments.page(page) {
            format_age(now - row.created_at).hash(&mut hasher);
        }
        if self.alerts.shown {
            for row in self.alerts.page(self.alert_page()) {
                format_age(now - row.since).hash(&mut hasher);
            }
        }
        hasher.finish()
    }
}

/// Returns the level, and so the colour, a status is shown with.
pub fn status_level(status: DeploymentStatus) -> ToastLevel {
    match status {
        DeploymentStatus::Deployed => ToastLevel::Ok,
        DeploymentStatus::Failed => ToastLevel::Error,
        DeploymentStatus::Degraded
        | DeploymentStatus::Pending
        | DeploymentStatus::Building
        | DeploymentStatus::Deploying
        | DeploymentStatus::Undeploying => ToastLevel::Warning,
        DeploymentStatus::Undeployed => ToastLevel::Info,
    }
}

/// Formats an age as the largest whole unit: `45s`, `12m`, `5h`, `3d`.
pub fn format_age(age: time::Duration) -> String {
    let seconds = age.whole_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..172_800 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// One line of the `?` help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpLine {
    Heading(String),
    Binding(Binding),
    Note(&'static str),
}

/// The help for `context`: its keys, then the global ones, from the keymap
/// table, leaving out what `--read-only` disables.
pub fn help_lines(keymap: &Keymap, context: Context, read_only: bool) -> Vec<HelpLine> {
    let mut lines = Vec::new();
    let contexts = help_contexts(context);
    for (index, shown) in contexts.iter().enumerate() {
        lines.push(HelpLine::Heading(format!("{} keys", shown.name())));
        let before = &contexts[..index];
        // A command a more specific context lists already, such as the
        // logs tab's movement keys, is not listed twice.
        let listed_before = |command: Command| {
            before
                .iter()
                .any(|context| context.commands().contains(&command))
        };
        lines.extend(
            keymap
                .describe(*shown)
                .into_iter()
                .filter(|binding| !(read_only && binding.command.changes_agent()))
                .filter(|binding| !listed_before(binding.command))
                .map(|binding| HelpLine::Binding(unshadowed(keymap, before, binding))),
        );
    }
    if context == Context::Deployments && !read_only {
        lines.push(HelpLine::Note(
            "scale down, forced scales, autoscale changes, rollback, redeploy, restart, undeploy and sending a manifest ask first; in production, type the name",
        ));
    }
    if read_only {
        lines.push(HelpLine::Note(
            "read-only: commands that change deployments are hidden and rejected",
        ));
    }
    lines
}

/// Lists the contexts whose keys work in `context`, most specific first:
/// the logs tab's keys come before the detail view's.
fn help_contexts(context: Context) -> Vec<Context> {
    match context {
        Context::Logs => vec![Context::Logs, Context::Detail, Context::Global],
        // The editor and forms take every other key as text, so global keys
        // do not apply there.
        Context::Editor | Context::Form => vec![context],
        other => vec![other, Context::Global],
    }
}

/// Drops the keys of a binding that a more specific context (of `before`)
/// binds first, such as Tab, which switches tabs in the detail view rather
/// than the focus.
fn unshadowed(keymap: &Keymap, before: &[Context], mut binding: Binding) -> Binding {
    binding
        .keys
        .retain(|key| keymap.resolve(before, *key).is_none());
    binding
}

/// Where the help popup goes on a screen of `area`.
pub fn help_area(area: ratatui::layout::Rect) -> ratatui::layout::Rect {
    layout::centered(area, 90, 80)
}

/// Help lines the popup shows at once, inside its borders.
pub fn help_page(width: u16, height: u16) -> usize {
    let area = help_area(ratatui::layout::Rect::new(0, 0, width, height));
    usize::from(area.height.saturating_sub(2))
}

#[cfg(test)]
mod tests;
