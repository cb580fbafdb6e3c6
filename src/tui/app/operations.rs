//! Changes the operator requests: scale, rollback, redeploy, undeploy.
//!
//! A key or a palette line becomes an [`Operation`]. One that removes
//! capacity or replaces what runs opens a [`ConfirmDialog`] first. The
//! dialog does no work itself: accepted, it hands the operation on exactly
//! as [`Action::Execute`](crate::tui::action::Action::Execute) does, as an
//! [`Effect::Execute`] for the worker. In `production` the operator types
//! the deployment's name to confirm.

use super::palette::{self, PaletteCommand, Target};
#[cfg(test)]
use super::Toast;
use super::{App, Effects, Layer, ToastLevel};
use crate::model::DeploymentKey;
use crate::tui::action::{Command, Effect, Operation};
#[cfg(test)]
use crate::tui::keymap::Context;

/// The environment whose changes need the deployment's name typed.
pub const PRODUCTION: &str = "production";

/// Maximum length of the reason in a failure toast. The log keeps the
/// whole error.
const MAX_REASON_CHARS: usize = 120;

/// A question before an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmDialog {
    pub operation: Operation,
    /// One sentence describing what will happen.
    pub message: String,
    /// The name the operator must type, in `production`.
    pub required_name: Option<String>,
    pub typed: String,
    /// The reason the last Enter did not confirm.
    pub error: Option<String>,
}

/// A line of text being typed: the replica count for `key`, or a palette
/// command when `key` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub key: Option<DeploymentKey>,
    pub text: String,
    /// The last error or completion hint, shown under the text.
    pub message: Option<PromptMessage>,
}

/// A line under a prompt's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptMessage {
    /// The reason Enter did not run the line.
    Error(String),
    /// The candidates a completion left.
    Hint(String),
}

impl PromptMessage {
    pub fn text(&self) -> &str {
        match self {
            Self::Error(text) | Self::Hint(text) => text,
        }
    }
}

impl App {
    /// Turns an operation key on the selected row into a request.
    pub(super) fn on_operation_command(&mut self, command: Command, effects: &mut Effects) {
        let Some(row) = self.deployments.selected() else {
            self.toast(ToastLevel::Warning, "no deployment is selected".to_owned());
            effects.redraw();
            return;
        };
        let key = row.key.clone();
        let desired = row.desired;
        let operation = match command {
            Command::ScaleUp => Operation::Scale {
                key,
                replicas: (desired + 1).min(crate::engine::MAX_REPLICAS),
                force: false,
            },
            Command::ScaleDown => Operation::Scale {
                key,
                replicas: desired.saturating_sub(1),
                force: false,
            },
            Command::ScaleTo => {
                self.layers.push(Layer::Prompt(Prompt {
                    key: Some(key),
                    text: String::new(),
                    message: None,
                }));
                effects.redraw();
                return;
            }
            Command::Rollback => Operation::Rollback {
                key,
                to_revision: None,
            },
            Command::Redeploy => Operation::Redeploy { key },
            Command::Undeploy => Operation::Undeploy { key },
            other => {
                tracing::error!(command = %other, "not an operation command; ignored");
                return;
            }
        };
        self.request(operation, effects);
    }

    /// Asks for confirmation when `operation` is destructive, or else
    /// executes it.
    pub(super) fn request(&mut self, operation: Operation, effects: &mut Effects) {
        effects.redraw();
        let operation = match operation {
            Operation::Restart { key, replica } => {
                return self.request_restart(key, replica, effects);
            }
            Operation::Scale { force: true, .. } | Operation::Autoscale { .. } => {
                return self.request_autoscale_change(operation, effects);
            }
            Operation::Deploy { .. }
            | Operation::Edit { .. }
            | Operation::Silence(_)
            | Operation::EndSilence { .. }
            | Operation::Acknowledge { .. } => return self.execute(operation, effects),
            other => other,
        };
        let (current_replicas, revision) = self
            .row(operation.key())
            .map_or((0, 0), |row| (row.desired, row.revision));
        let key = operation.key();
        let target = format!("{} ({})", key.name, key.environment);
        let message = match &operation {
            Operation::Scale { replicas, .. } if *replicas == current_replicas => {
                self.toast(
                    ToastLevel::Info,
                    format!("{target} already has {replicas} replicas"),
                );
                return;
            }
            Operation::Scale { replicas, .. } if *replicas > current_replicas => {
                self.execute(operation, effects);
                return;
            }
            Operation::Scale { replicas, .. } => {
                format!("Scale {target} from {current_replicas} to {replicas} replicas")
            }
            Operation::Rollback {
                to_revision: Some(to),
                ..
            } => format!("Roll back {target} from revision {revision} to revision {to}"),
            Operation::Rollback { .. } => format!(
                "Roll back {target} from revision {revision} to the previous healthy revision"
            ),
            Operation::Redeploy { .. } => {
                format!("Redeploy {target}: all {current_replicas} replicas restart")
            }
            Operation::Undeploy { .. } => {
                format!("Undeploy {target}: all {current_replicas} replicas stop")
            }
            Operation::Restart { .. }
            | Operation::Autoscale { .. }
            | Operation::Deploy { .. }
            | Operation::Edit { .. }
            | Operation::Silence(_)
            | Operation::EndSilence { .. }
            | Operation::Acknowledge { .. } => return,
        };
        let required_name = (key.environment == PRODUCTION).then(|| key.name.clone());
        self.layers.push(Layer::Confirm(ConfirmDialog {
            operation,
            message,
            required_name,
            typed: String::new(),
            error: None,
        }));
    }

    /// Sends `operation` to the worker, unless `--read-only` forbids it.
    pub(super) fn execute(&mut self, operation: Operation, effects: &mut Effects) {
        effects.redraw();
        if self.read_only {
            self.toast(
                ToastLevel::Warning,
                "changes are disabled: the dashboard runs with --read-only".to_owned(),
            );
            return;
        }
        self.editor_sent(&operation);
        effects.push(Effect::Execute(operation));
    }

    pub(super) fn on_operation_finished(
        &mut self,
        operation: &Operation,
        result: Result<String, String>,
        effects: &mut Effects,
    ) {
        let shown_in_editor = self.editor_finished(operation, &result);
        match result {
            Err(_) if shown_in_editor => {}
            Ok(summary) => self.toast(ToastLevel::Ok, summary),
            Err(reason) => self.toast(
                ToastLevel::Error,
                format!("{} failed: {}", operation.done(), short(&reason)),
            ),
        }
        effects.redraw();
    }

    /// Answers Enter in the top dialog or prompt.
    pub(super) fn confirm(&mut self, effects: &mut Effects) -> bool {
        match self.layers.last_mut() {
            Some(Layer::Confirm(dialog)) => {
                if let Some(name) = &dialog.required_name {
                    if dialog.typed != *name {
                        dialog.error = Some(format!(
                            "type {name} exactly to confirm, or press esc to cancel"
                        ));
                        return true;
                    }
                }
                if let Some(Layer::Confirm(dialog)) = self.layers.pop() {
                    self.execute(dialog.operation, effects);
                }
                true
            }
            Some(Layer::Prompt(prompt)) => {
                let prompt = prompt.clone();
                match prompt.key {
                    Some(key) => self.submit_count(key, &prompt.text, effects),
                    None => self.submit_palette(&prompt.text, effects),
                }
                true
            }
            _ => false,
        }
    }

    fn submit_count(&mut self, key: DeploymentKey, text: &str, effects: &mut Effects) {
        match palette::parse_forced_count(text.trim()) {
            Ok((replicas, force)) => {
                self.layers.pop();
                let operation = Operation::Scale {
                    key,
                    replicas,
                    force,
                };
                self.request(operation, effects);
            }
            Err(error) => self.set_prompt_message(error.to_string()),
        }
    }

    fn submit_palette(&mut self, text: &str, effects: &mut Effects) {
        let command = match palette::parse(text) {
            Ok(command) => command,
            Err(error) => return self.set_prompt_message(error.to_string()),
        };
        if self.read_only && command.changes_agent() {
            return self.set_prompt_message(
                "changes are disabled: the dashboard runs with --read-only".to_owned(),
            );
        }
        let operation = match command {
            PaletteCommand::Quit => {
                effects.push(Effect::Quit);
                return;
            }
            PaletteCommand::Deploy => {
                self.layers.pop();
                self.open_new_manifest();
                return;
            }
            PaletteCommand::Secrets => {
                self.layers.pop();
                self.open_secrets(effects);
                return;
            }
            PaletteCommand::Edit { target } => match self.resolve(&target) {
                Ok(key) => {
                    self.layers.pop();
                    self.open_edit_manifest(key, effects);
                    return;
                }
                Err(message) => return self.set_prompt_message(message),
            },
            PaletteCommand::Silence {
                target,
                rule,
                duration,
                comment,
            } => self.resolve(&target).map(|key| {
                Operation::Silence(Box::new(crate::tui::action::SilenceRequest {
                    key,
                    rule,
                    duration,
                    comment: comment.unwrap_or_else(|| super::DEFAULT_SILENCE_COMMENT.to_owned()),
                }))
            }),
            PaletteCommand::Ack { target, rule } => self
                .resolve(&target)
                .map(|key| Operation::Acknowledge { key, rule }),
            PaletteCommand::Restart { target, replica } => self.resolve(&target).and_then(|key| {
                self.check_replica(&key, replica)?;
                Ok(Operation::Restart { key, replica })
            }),
            PaletteCommand::Scale {
                target,
                replicas,
                force,
            } => self.resolve(&target).map(|key| Operation::Scale {
                key,
                replicas,
                force,
            }),
            PaletteCommand::Autoscale { target, setting } => {
                self.resolve(&target).map(|key| Operation::Autoscale {
                    key,
                    setting: Some(Box::new(setting)),
                })
            }
            PaletteCommand::AutoscaleOff { target } => self
                .resolve(&target)
                .map(|key| Operation::Autoscale { key, setting: None }),
            PaletteCommand::Rollback {
                target,
                to_revision,
            } => self.resolve(&target).and_then(|key| {
                self.check_revision(&key, to_revision)?;
                Ok(Operation::Rollback { key, to_revision })
            }),
            PaletteCommand::Redeploy { target } => {
                self.resolve(&target).map(|key| Operation::Redeploy { key })
            }
            PaletteCommand::Undeploy { target } => {
                self.resolve(&target).map(|key| Operation::Undeploy { key })
            }
        };
        match operation {
            Ok(operation) => {
                self.layers.pop();
                self.request(operation, effects);
            }
            Err(message) => self.set_prompt_message(message),
        }
    }

    /// Rejects a replica index the deployment does not have, before a
    /// confirmation asks about it.
    fn check_replica(&self, key: &DeploymentKey, replica: Option<u32>) -> Result<(), String> {
        let (Some(replica), Some(row)) = (replica, self.row(key)) else {
            return Ok(());
        };
        if replica >= row.desired {
            return Err(format!(
                "{} has replicas 0 to {}; there is no replica {replica}",
                key.name,
                row.desired.saturating_sub(1)
            ));
        }
        Ok(())
    }

    /// Rejects a revision that is not before the deployment's current one.
    fn check_revision(&self, key: &DeploymentKey, revision: Option<u64>) -> Result<(), String> {
        let (Some(revision), Some(row)) = (revision, self.row(key)) else {
            return Ok(());
        };
        if row.revision <= 1 {
            return Err(format!(
                "{} has only revision 1; there is nothing to roll back to",
                key.name
            ));
        }
        if revision == 0 || revision >= row.revision {
            return Err(format!(
                "{} is at revision {}; roll back to one of 1 to {}",
                key.name,
                row.revision,
                row.revision.saturating_sub(1)
            ));
        }
        Ok(())
    }

    pub(super) fn row(&self, key: &DeploymentKey) -> Option<&super::deployments::DeploymentRow> {
        self.deployments.all().iter().find(|row| row.key == *key)
    }

    /// Finds the deployment a palette line names among those listed.
    fn resolve(&self, target: &Target) -> Result<DeploymentKey, String> {
        let matches: Vec<&DeploymentKey> = self
            .deployments
            .all()
            .iter()
            .map(|row| &row.key)
            .filter(|key| key.name == target.name)
            .filter(|key| {
                target
                    .environment
                    .as_ref()
                    .is_none_or(|environment| key.environment == *environment)
            })
            .collect();
        match (matches.as_slice(), &target.environment) {
            ([key], _) => Ok((*key).clone()),
            ([], Some(environment)) => Err(format!(
                "no deployment {} in environment {environment}",
                target.name
            )),
            ([], None) => Err(format!(
                "no deployment named {}; check the name in the table",
                target.name
            )),
            (several, _) => {
                let environments: Vec<&str> =
                    several.iter().map(|key| key.environment.as_str()).collect();
                Err(format!(
                    "{} is in {}; add env:ENV",
                    target.name,
                    environments.join(", ")
                ))
            }
        }
    }

    pub(super) fn set_prompt_message(&mut self, message: String) {
        if let Some(Layer::Prompt(prompt)) = self.layers.last_mut() {
            prompt.message = Some(PromptMessage::Error(message));
        }
    }

    pub(super) fn open_palette(&mut self) -> bool {
        self.layers.push(Layer::Prompt(Prompt {
            key: None,
            text: String::new(),
            message: None,
        }));
        true
    }

    /// Completes the palette's current word.
    pub(super) fn complete(&mut self) -> bool {
        // A name deployed in several environments is offered once.
        let mut names: Vec<String> = self
            .deployments
            .all()
            .iter()
            .map(|row| row.key.name.clone())
            .collect();
        names.sort();
        names.dedup();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let Some(Layer::Prompt(prompt)) = self.layers.last_mut() else {
            return false;
        };
        if prompt.key.is_some() {
            return false;
        }
        let (text, hint) = palette::complete(&prompt.text, &names);
        prompt.text = text;
        prompt.message = hint.map(PromptMessage::Hint);
        true
    }

    /// Edits the text of the top dialog or prompt; returns whether one was
    /// open to edit.
    pub(super) fn edit_input(&mut self, edit: impl FnOnce(&mut String)) -> bool {
        match self.layers.last_mut() {
            Some(Layer::Confirm(dialog)) if dialog.required_name.is_some() => {
                edit(&mut dialog.typed);
                dialog.error = None;
                true
            }
            Some(Layer::Prompt(prompt)) => {
                edit(&mut prompt.text);
                prompt.message = None;
                true
            }
            _ => false,
        }
    }

    /// Closes the top dialog or prompt without doing anything.
    pub(super) fn cancel_dialog(&mut self) -> bool {
        if matches!(
            self.layers.last(),
            Some(Layer::Confirm(_) | Layer::Prompt(_))
        ) {
            self.layers.pop();
            return true;
        }
        false
    }
}

/// Shortens an error to its first line and [`MAX_REASON_CHARS`].
fn short(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX_REASON_CHARS {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(MAX_REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
