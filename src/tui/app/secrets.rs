//! The secrets view: the vault's secret names and times, never values;
//! adding a secret, replacing a value in a masked field, deleting one.

use super::form::{Form, FormField, FormPurpose};
use super::list::ListCursor;
use super::{App, Effects, Layer, ToastLevel};
use crate::config::SecretInfo;
use crate::tui::action::{Command, Effect, Request, SecretChange, SecretsReadError};

/// The advice shown when the agent cannot decrypt its vault, after the
/// agent's own message, which names the key it expects.
pub const UNLOCK_ADVICE: &str = "Unlock it by restarting the agent with the master key or passphrase the vault was created with: `shipdeck agent stop`, then start it with SHIPDECK_MASTER_KEY, SHIPDECK_PASSPHRASE_FILE or the original key file in place.";

/// Comment of a silence whose form left the comment empty, because the
/// agent requires one.
pub const DEFAULT_SILENCE_COMMENT: &str = "silenced from the dashboard";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsState {
    /// `None` until the first read returns.
    pub list: Option<Vec<SecretInfo>>,
    pub cursor: ListCursor,
    pub error: Option<SecretsReadError>,
}

impl SecretsState {
    pub fn selected(&self) -> Option<&SecretInfo> {
        self.list.as_ref()?.get(self.cursor.selected)
    }

    fn len(&self) -> usize {
        self.list.as_ref().map_or(0, Vec::len)
    }
}

impl App {
    /// Opens the secrets view and reads the list.
    pub(super) fn open_secrets(&mut self, effects: &mut Effects) -> bool {
        if self.layers.contains(&Layer::Secrets) {
            return false;
        }
        self.secrets = Some(SecretsState::default());
        self.layers.push(Layer::Secrets);
        effects.push(Effect::Request(Request::ReadSecrets));
        true
    }

    pub(super) fn close_secrets(&mut self) -> bool {
        self.secrets = None;
        self.layers.retain(|layer| *layer != Layer::Secrets);
        true
    }

    /// Rows of the secrets table on screen.
    pub fn secrets_page(&self) -> usize {
        if !crate::tui::layout::fits(self.width, self.height) {
            return 0;
        }
        let area = ratatui::layout::Rect::new(0, 0, self.width, self.height);
        crate::tui::layout::Areas::new(area, false)
            .table_rows()
            .saturating_sub(SECRETS_NOTE_ROWS)
    }

    pub(super) fn on_secrets(
        &mut self,
        result: Result<Vec<SecretInfo>, SecretsReadError>,
        effects: &mut Effects,
    ) {
        let page = self.secrets_page();
        let Some(secrets) = self.secrets.as_mut() else {
            return;
        };
        let before = secrets.clone();
        match result {
            Ok(list) => {
                secrets.list = Some(list);
                secrets.error = None;
                let len = secrets.len();
                secrets.cursor.clamp(len, page);
            }
            Err(error) => secrets.error = Some(error),
        }
        if *secrets != before {
            effects.redraw();
        }
    }

    /// Re-reads the list every tick while the view is open, so that a
    /// change from the CLI shows.
    pub(super) fn refresh_secrets(&mut self, effects: &mut Effects) {
        if self.secrets.is_some() {
            effects.push(Effect::Request(Request::ReadSecrets));
        }
    }

    pub(super) fn on_secrets_command(&mut self, command: Command) -> bool {
        let page = self.secrets_page();
        match command {
            Command::AddSecret => self.open_form(add_secret_form()),
            Command::SetSecret => {
                let Some(name) = self.selected_secret() else {
                    return false;
                };
                self.open_form(set_secret_form(name))
            }
            Command::DeleteSecret => {
                let Some(name) = self.selected_secret() else {
                    return false;
                };
                self.layers.push(Layer::DeleteSecret { name });
                true
            }
            Command::CloseSecrets => self.close_secrets(),
            movement => self.secrets.as_mut().is_some_and(|secrets| {
                let len = secrets.len();
                secrets.cursor.apply(movement, len, page)
            }),
        }
    }

    fn selected_secret(&self) -> Option<String> {
        let secrets = self.secrets.as_ref()?;
        secrets.selected().map(|info| info.name.clone())
    }

    /// Sends a change to the vault, unless `--read-only` forbids it.
    pub(super) fn change_secret(&mut self, change: SecretChange, effects: &mut Effects) {
        effects.redraw();
        if self.read_only {
            self.toast(
                ToastLevel::Warning,
                "changes are disabled: the dashboard runs with --read-only".to_owned(),
            );
            return;
        }
        tracing::info!(
            secret = change.name(),
            "sending a secret change to the agent"
        );
        effects.push(Effect::Request(Request::ChangeSecret(change)));
    }

    pub(super) fn on_secret_changed(
        &mut self,
        name: &str,
        deleted: bool,
        result: Result<(), String>,
        effects: &mut Effects,
    ) {
        match result {
            Ok(()) => {
                let verb = if deleted { "deleted" } else { "saved" };
                self.toast(ToastLevel::Ok, format!("secret {name} {verb}"));
            }
            Err(reason) => {
                let verb = if deleted { "deleting" } else { "saving" };
                let first = reason.lines().next().unwrap_or_default().to_owned();
                self.toast(
                    ToastLevel::Error,
                    format!("{verb} secret {name} failed: {first}"),
                );
            }
        }
        self.refresh_secrets(effects);
        effects.redraw();
    }
}

/// Rows under the secrets table: the note that values never show.
pub const SECRETS_NOTE_ROWS: usize = 1;

fn add_secret_form() -> Form {
    Form {
        purpose: FormPurpose::AddSecret,
        title: " add a secret ".to_owned(),
        fields: vec![FormField::plain("name", ""), FormField::masked("value")],
        focus: 0,
        error: None,
        note: "manifests use it as ${SECRET:name} in env; the value is never shown".to_owned(),
    }
}

fn set_secret_form(name: String) -> Form {
    Form {
        title: format!(" replace the value of {name} "),
        purpose: FormPurpose::SetSecret { name },
        fields: vec![FormField::masked("new value")],
        focus: 0,
        error: None,
        note: "replicas read it when they next start; redeploy to restart them".to_owned(),
    }
}
