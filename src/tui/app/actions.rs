//! Routing of the editor, secrets, alert and restart commands, and the
//! forms and questions they open. Kept apart from `App::on_command` so
//! that each view's commands live with the view.

use super::detail::DetailTab;
use super::form::{Form, FormField, FormPurpose};
use super::secrets::DEFAULT_SILENCE_COMMENT;
use super::{App, ConfirmDialog, Effects, Layer, Pane, ToastLevel, PRODUCTION};
use crate::model::DeploymentKey;
use crate::monitor::alerts::{AlertState, SilenceTarget};
use crate::tui::action::{Command, KeyPress, Operation, SecretChange, SilenceRequest};

/// Duration a silence form starts with.
pub const DEFAULT_SILENCE: &str = "1h";

impl App {
    /// Handles a command that belongs to the editor, the secrets view, a
    /// form or the detail view's alert and restart actions. Returns `None`
    /// for a command it does not handle, and otherwise whether anything
    /// changed.
    pub(super) fn on_feature_command(
        &mut self,
        command: Command,
        effects: &mut Effects,
    ) -> Option<bool> {
        match self.layers.last() {
            Some(Layer::Form(_)) => return self.on_form_command(command, effects),
            Some(Layer::DiscardEdits | Layer::DeleteSecret { .. }) => {
                return self.on_question_command(command, effects)
            }
            Some(Layer::Editor) => match command {
                Command::SendManifest => return Some(self.send_manifest(effects)),
                Command::CloseEditor => return Some(self.close_editor()),
                _ => return None,
            },
            Some(Layer::Secrets) => {
                let handled = matches!(
                    command,
                    Command::MoveUp
                        | Command::MoveDown
                        | Command::PageUp
                        | Command::PageDown
                        | Command::First
                        | Command::Last
                        | Command::AddSecret
                        | Command::SetSecret
                        | Command::DeleteSecret
                        | Command::CloseSecrets
                );
                if handled {
                    return Some(self.on_secrets_command(command));
                }
            }
            _ => {}
        }
        match command {
            Command::NewManifest => Some(self.open_new_manifest()),
            Command::EditManifest => {
                let key = self.target_key()?;
                Some(self.open_edit_manifest(key, effects))
            }
            Command::OpenSecrets => Some(self.open_secrets(effects)),
            Command::Restart => {
                let key = self.target_key()?;
                let replica = self.selected_replica();
                self.request_restart(key, replica, effects);
                Some(true)
            }
            Command::Rollback if self.focus == Pane::Detail => {
                let key = self.target_key()?;
                // In the history tab the selected revision is the target;
                // elsewhere, as in the table, the previous healthy one.
                let to_revision = self
                    .detail
                    .as_ref()
                    .filter(|detail| detail.tab == DetailTab::History)
                    .and_then(|detail| detail.selected_revision());
                self.request(Operation::Rollback { key, to_revision }, effects);
                Some(true)
            }
            Command::SilenceRule => Some(self.open_silence_form()),
            Command::EndSilence => Some(self.end_selected_silence(effects)),
            Command::Acknowledge => Some(self.acknowledge_selected(effects)),
            other => self.on_autoscale_command(other, effects),
        }
    }

    /// Returns the deployment a command acts on: the detail view's, or the
    /// selected row's.
    pub(super) fn target_key(&mut self) -> Option<DeploymentKey> {
        if self.focus == Pane::Detail {
            if let Some(detail) = &self.detail {
                return Some(detail.key.clone());
            }
        }
        let key = self.deployments.selected().map(|row| row.key.clone());
        if key.is_none() {
            self.toast(ToastLevel::Warning, "no deployment is selected".to_owned());
        }
        key
    }

    /// Returns the replica selected in the detail view's overview, the
    /// target of a restart there. On other tabs and in the table a restart
    /// takes every replica.
    fn selected_replica(&self) -> Option<u32> {
        let detail = self
            .detail
            .as_ref()
            .filter(|_| self.focus == Pane::Detail)?;
        if detail.tab != DetailTab::Overview {
            return None;
        }
        detail.selected_replica()
    }

    /// Asks to confirm a restart, which takes capacity away while it runs.
    pub(super) fn request_restart(
        &mut self,
        key: DeploymentKey,
        replica: Option<u32>,
        effects: &mut Effects,
    ) {
        let desired = self
            .deployments
            .all()
            .iter()
            .find(|row| row.key == key)
            .map_or(0, |row| row.desired);
        let target = format!("{} ({})", key.name, key.environment);
        let message = match replica {
            Some(replica) => format!(
                "Restart replica {replica} of {target}: it stops and a fresh one takes its place"
            ),
            None => format!(
                "Restart {target}: all {desired} replicas are replaced one by one as a new revision of the same spec"
            ),
        };
        let required_name = (key.environment == PRODUCTION).then(|| key.name.clone());
        self.layers.push(Layer::Confirm(ConfirmDialog {
            operation: Operation::Restart { key, replica },
            message,
            required_name,
            typed: String::new(),
            error: None,
        }));
        effects.redraw();
    }

    pub(super) fn open_form(&mut self, form: Form) -> bool {
        self.layers.push(Layer::Form(form));
        true
    }

    /// Types a character into the focused field of a form on top.
    pub(super) fn type_into_form(&mut self, key: KeyPress) -> bool {
        let Some(Layer::Form(form)) = self.layers.last_mut() else {
            return false;
        };
        if let Some(character) = key.typed_char() {
            if let Some(field) = form.focused() {
                field.push(character);
                form.error = None;
            }
        }
        true
    }

    fn on_form_command(&mut self, command: Command, effects: &mut Effects) -> Option<bool> {
        let Some(Layer::Form(form)) = self.layers.last_mut() else {
            return None;
        };
        match command {
            Command::DeleteChar => {
                if let Some(field) = form.focused() {
                    field.pop();
                }
            }
            Command::ClearInput => {
                if let Some(field) = form.focused() {
                    field.clear();
                }
            }
            Command::NextField => form.next_field(),
            Command::CancelFilter => {
                form.wipe();
                self.layers.pop();
            }
            Command::Confirm => self.submit_form(effects),
            _ => return None,
        }
        Some(true)
    }

    /// Checks the form on top and sends the change it describes.
    fn submit_form(&mut self, effects: &mut Effects) {
        let existing: Vec<String> = self
            .secrets
            .iter()
            .flat_map(|secrets| secrets.list.iter().flatten())
            .map(|secret| secret.name.clone())
            .collect();
        let Some(Layer::Form(form)) = self.layers.last_mut() else {
            return;
        };
        match form_action(form, &existing) {
            Ok(FormAction::Secret(change)) => {
                self.layers.pop();
                self.change_secret(change, effects);
            }
            Ok(FormAction::Execute(operation)) => {
                self.layers.pop();
                self.execute(operation, effects);
            }
            Err(message) => form.error = Some(message),
        }
    }

    fn on_question_command(&mut self, command: Command, effects: &mut Effects) -> Option<bool> {
        match command {
            Command::Confirm => match self.layers.pop() {
                Some(Layer::DiscardEdits) => self.discard_editor(),
                Some(Layer::DeleteSecret { name }) => {
                    self.change_secret(SecretChange::Delete { name }, effects)
                }
                _ => {}
            },
            Command::CancelFilter => {
                self.layers.pop();
            }
            _ => return None,
        }
        Some(true)
    }

    /// Opens the silence form for the rule selected in the alerts tab.
    fn open_silence_form(&mut self) -> bool {
        let Some((key, rule)) = self.selected_rule() else {
            return false;
        };
        self.open_form(silence_form(key, rule, DEFAULT_SILENCE))
    }

    /// Returns the deployment and rule selected in the detail view's alerts
    /// tab, or shows a message saying why there is none.
    fn selected_rule(&mut self) -> Option<(DeploymentKey, String)> {
        let selected = self
            .detail
            .as_ref()
            .filter(|detail| detail.tab == DetailTab::Alerts)
            .and_then(|detail| Some((detail.key.clone(), detail.selected_rule()?)));
        if selected.is_none() {
            self.toast(
                ToastLevel::Warning,
                "select an alert rule in the alerts tab first".to_owned(),
            );
        }
        selected
    }

    fn end_selected_silence(&mut self, effects: &mut Effects) -> bool {
        let selected = self
            .detail
            .as_ref()
            .filter(|detail| detail.tab == DetailTab::Alerts)
            .and_then(|detail| Some((detail.key.clone(), detail.selected_silence()?)));
        let Some((key, silence)) = selected else {
            self.toast(
                ToastLevel::Warning,
                "select a silence, or a rule with one, in the alerts tab first".to_owned(),
            );
            return true;
        };
        self.execute(
            Operation::EndSilence {
                key,
                id: silence.id,
            },
            effects,
        );
        true
    }

    fn acknowledge_selected(&mut self, effects: &mut Effects) -> bool {
        let Some((key, rule)) = self.selected_rule() else {
            return true;
        };
        let firing =
            self.detail.as_ref().is_some_and(|detail| {
                detail.alert_states.iter().flatten().any(|alert| {
                    alert.rule == rule && matches!(alert.state, AlertState::Firing { .. })
                })
            });
        if !firing {
            self.toast(
                ToastLevel::Warning,
                format!("{rule} is not firing; only a firing alert can be acknowledged"),
            );
            return true;
        }
        self.execute(Operation::Acknowledge { key, rule }, effects);
        true
    }
}

/// The change a valid form sends.
enum FormAction {
    Secret(SecretChange),
    Execute(Operation),
}

/// Checks `form` and returns what it sends. `existing` names the secrets
/// listed, which adding must not replace unasked.
fn form_action(form: &mut Form, existing: &[String]) -> Result<FormAction, String> {
    match form.purpose.clone() {
        FormPurpose::AddSecret => {
            let name = form.fields[0].text().trim().to_owned();
            crate::config::secret::check_name(&name).map_err(|error| error.to_string())?;
            if existing.contains(&name) {
                return Err(format!(
                    "secret {name} exists; to replace its value, close this form, select it and press e"
                ));
            }
            let value = &mut form.fields[1];
            if value.chars() == 0 {
                return Err("type the value; an empty secret is not stored".to_owned());
            }
            let value = value.take_secret();
            Ok(FormAction::Secret(SecretChange::Set { name, value }))
        }
        FormPurpose::SetSecret { name } => {
            let value = &mut form.fields[0];
            if value.chars() == 0 {
                return Err("type the new value; an empty secret is not stored".to_owned());
            }
            let value = value.take_secret();
            Ok(FormAction::Secret(SecretChange::Set { name, value }))
        }
        FormPurpose::Silence { key, rule } => {
            let duration = form.fields[0].text().trim().to_owned();
            check_silence_duration(&duration)?;
            let comment = match form.fields[1].text().trim() {
                "" => DEFAULT_SILENCE_COMMENT.to_owned(),
                text => text.to_owned(),
            };
            Ok(FormAction::Execute(Operation::Silence(Box::new(
                SilenceRequest {
                    key,
                    rule,
                    duration,
                    comment,
                },
            ))))
        }
    }
}

/// Checks a silence length as the agent reads it: a positive duration
/// such as `30m`, `1h` or `2h30m`.
pub fn check_silence_duration(text: &str) -> Result<(), String> {
    // The parser's error names the text and the accepted forms.
    let duration = crate::manifest::ManifestDuration::try_from(text.to_owned())
        .map_err(|error| error.to_string())?;
    if duration.as_millis() == 0 {
        return Err(format!(
            "invalid duration {text:?}: give a positive length such as 30m or 1h"
        ));
    }
    Ok(())
}

pub(super) fn silence_form(key: DeploymentKey, rule: String, duration: &str) -> Form {
    Form {
        title: format!(" silence {rule} on {} ({}) ", key.name, key.environment),
        purpose: FormPurpose::Silence { key, rule },
        fields: vec![
            FormField::plain("for", duration),
            FormField::plain("comment", ""),
        ],
        focus: 0,
        error: None,
        note: "notifications stop until the silence ends; the alert still shows".to_owned(),
    }
}

/// Returns whether a silence with `target` mutes `rule`, so that the rule's
/// row can end it.
pub(super) fn silence_target_matches(target: &SilenceTarget, rule: &str) -> bool {
    match target {
        SilenceTarget::Rule(name) => name == rule,
        SilenceTarget::Deployment => true,
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
