//! The manifest editor: write a new manifest and deploy it, or edit a
//! deployment's manifest and redeploy it.
//!
//! The text is checked with the parser and validator the agent uses, a
//! moment after the last key press, and the first problem is shown at its
//! line and column. Sending is rejected while a problem remains. A sent
//! manifest goes through the same confirmation as every destructive
//! operation, with a summary of what changes. The editor stays open until
//! the agent accepts the manifest, and shows the agent's error otherwise.

use std::collections::BTreeSet;

use ratatui::style::{Modifier, Style};
use ratatui_textarea::{Input, Key, TextArea};
use time::OffsetDateTime;

use super::operations::PRODUCTION;
use super::{App, ConfirmDialog, Effects, Layer, ToastLevel};
use crate::manifest::{self, Manifest, ManifestError};
use crate::model::{DeploymentKey, ManifestSource};
use crate::tui::action::{Effect, KeyCodeKey, KeyPress, Operation, Request};

/// How long the text must stay unchanged before it is checked, so that
/// errors do not flicker while a word is half typed. Checks run on the
/// next action after that, at the latest on the next clock tick.
pub const CHECK_DELAY: time::Duration = time::Duration::milliseconds(400);

/// The text a new manifest starts from: the smallest one that deploys.
pub const NEW_MANIFEST: &str = "\
name: web
version: \"1.0\"
environment: development
run:
  command: [\"python3\", \"-m\", \"http.server\", \"${PORT}\"]
replicas: 1
ports:
  - { name: http, containerPort: 8080 }
";

/// The destination of the editor's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorTarget {
    New,
    /// A deployment's manifest, read from its current `revision`.
    Edit {
        key: DeploymentKey,
        revision: u64,
    },
}

/// The first problem the checks found, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorProblem {
    pub line: usize,
    pub column: usize,
    /// The field path, such as `ports[0].containerPort`; empty for the
    /// document itself.
    pub path: String,
    pub message: String,
}

impl From<ManifestError> for EditorProblem {
    fn from(error: ManifestError) -> Self {
        Self {
            line: error.line.max(1),
            column: error.column.max(1),
            path: error.path,
            message: error.message,
        }
    }
}

impl std::fmt::Display for EditorProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
pub struct EditorState {
    pub target: EditorTarget,
    pub textarea: TextArea<'static>,
    /// The text the editor opened with; unsent changes are measured
    /// against it.
    pub original: String,
    /// False while the manifest of an edited deployment is being read.
    pub loaded: bool,
    pub problem: Option<EditorProblem>,
    /// Whether `problem` describes the current text.
    pub checked: bool,
    /// Set when the manifest names a template: the agent merges it before
    /// the rules that span fields, so only the agent can check those.
    pub template: Option<String>,
    pub last_edit: Option<OffsetDateTime>,
    /// Set from the confirmation until the agent responds.
    pub sending: bool,
    /// The agent's error for the last send, or for reading the manifest.
    pub agent_error: Option<String>,
}

impl EditorState {
    fn new(target: EditorTarget, text: &str, loaded: bool) -> Self {
        let mut state = Self {
            target,
            textarea: text_area(text),
            original: text.to_owned(),
            loaded,
            problem: None,
            checked: false,
            template: None,
            last_edit: None,
            sending: false,
            agent_error: None,
        };
        if loaded {
            state.check();
        }
        state
    }

    pub fn text(&self) -> String {
        let mut text = self.textarea.lines().join("\n");
        text.push('\n');
        text
    }

    /// Returns whether the text differs from what the editor opened with.
    pub fn is_modified(&self) -> bool {
        self.loaded && self.text().trim_end() != self.original.trim_end()
    }

    /// Checks the text now; returns the manifest when it passes.
    pub fn check(&mut self) -> Option<Manifest> {
        let (manifest, problem, template) = match check_manifest(&self.text()) {
            Ok(Checked { manifest, template }) => (Some(manifest), None, template),
            Err(problem) => (None, Some(problem), None),
        };
        self.problem = problem;
        self.template = template;
        self.checked = true;
        manifest
    }

    /// Checks the text when it has rested for [`CHECK_DELAY`]; returns
    /// whether the result changed what is shown.
    fn check_if_due(&mut self, now: OffsetDateTime) -> bool {
        let due = self
            .last_edit
            .is_some_and(|edited| now - edited >= CHECK_DELAY);
        if self.checked || !due {
            return false;
        }
        let before = (self.problem.clone(), self.template.clone());
        self.check();
        before != (self.problem.clone(), self.template.clone())
    }

    /// Types one key into the text; returns whether it changed anything.
    fn input(&mut self, key: KeyPress, now: OffsetDateTime) -> bool {
        let Some(input) = to_input(key) else {
            return false;
        };
        let before = self.textarea.cursor();
        let modified = self.textarea.input(input);
        if modified {
            self.checked = false;
            self.last_edit = Some(now);
            self.agent_error = None;
        }
        modified || before != self.textarea.cursor()
    }
}

fn text_area(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut textarea = TextArea::new(if lines.is_empty() {
        vec![String::new()]
    } else {
        lines
    });
    // YAML indents with spaces; two is the manifest's own style.
    textarea.set_tab_length(2);
    textarea.set_hard_tab_indent(false);
    // Neutral styles that read on every theme and with NO_COLOR: the view
    // adds the theme's colours around the text.
    textarea.set_cursor_line_style(Style::default());
    textarea.set_cursor_style(Style::default().add_modifier(Modifier::REVERSED));
    textarea.set_line_number_style(Style::default().add_modifier(Modifier::DIM));
    textarea.set_max_histories(200);
    textarea
}

/// Converts a key to the editor widget's input. Shift is folded into the
/// character already.
fn to_input(key: KeyPress) -> Option<Input> {
    let code = match key.code {
        KeyCodeKey::Char(character) => Key::Char(character),
        KeyCodeKey::Enter => Key::Enter,
        KeyCodeKey::Tab => Key::Tab,
        KeyCodeKey::Backspace => Key::Backspace,
        KeyCodeKey::Delete => Key::Delete,
        KeyCodeKey::Up => Key::Up,
        KeyCodeKey::Down => Key::Down,
        KeyCodeKey::Left => Key::Left,
        KeyCodeKey::Right => Key::Right,
        KeyCodeKey::Home => Key::Home,
        KeyCodeKey::End => Key::End,
        KeyCodeKey::PageUp => Key::PageUp,
        KeyCodeKey::PageDown => Key::PageDown,
        KeyCodeKey::F(number) => Key::F(number),
        KeyCodeKey::Esc | KeyCodeKey::BackTab => return None,
    };
    Some(Input {
        key: code,
        ctrl: key.ctrl,
        alt: key.alt,
        shift: false,
    })
}

/// A manifest that passed the checks.
pub struct Checked {
    pub manifest: Manifest,
    /// The template it names, whose fields only the agent can merge.
    pub template: Option<String>,
}

/// Parses and validates `text` as the agent does before it merges the
/// environment config and a template. A manifest that names a template
/// skips the rules that span fields, because the template may supply what
/// they need; the agent checks those after merging.
pub fn check_manifest(text: &str) -> Result<Checked, EditorProblem> {
    let parsed = manifest::parse_typed::<Manifest>(text, "editor", &[])?;
    if let Some(template) = parsed.value.template.clone() {
        return Ok(Checked {
            manifest: parsed.value,
            template: Some(template),
        });
    }
    Ok(Checked {
        manifest: parsed.validate()?,
        template: None,
    })
}

/// Lists what changes between two specs, in words an operator scans:
/// image, command, replicas, version, the names of env keys (never their
/// values), then the other fields that differ.
pub fn change_summary(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut changes = Vec::new();
    if old.image != new.image {
        changes.push(format!(
            "image {} → {}",
            old.image.as_deref().unwrap_or("none"),
            new.image.as_deref().unwrap_or("none")
        ));
    }
    if old.run != new.run {
        changes.push("run command changed".to_owned());
    }
    if old.replicas != new.replicas {
        changes.push(format!("replicas {} → {}", old.replicas, new.replicas));
    }
    if old.version != new.version {
        changes.push(format!("version {:?} → {:?}", old.version, new.version));
    }
    if let Some(env) = env_changes(old, new) {
        changes.push(env);
    }
    let others = other_changes(old, new);
    if !others.is_empty() {
        changes.push(format!("also changed: {}", others.join(", ")));
    }
    changes
}

fn env_changes(old: &Manifest, new: &Manifest) -> Option<String> {
    let added: Vec<&str> = new
        .env
        .keys()
        .filter(|key| !old.env.contains_key(*key))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old
        .env
        .keys()
        .filter(|key| !new.env.contains_key(*key))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = new
        .env
        .iter()
        .filter(|(key, value)| old.env.get(*key).is_some_and(|old| old != *value))
        .map(|(key, _)| key.as_str())
        .collect();
    let parts: Vec<String> = [("added", added), ("removed", removed), ("changed", changed)]
        .into_iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(verb, keys)| format!("{verb} {}", keys.join(", ")))
        .collect();
    (!parts.is_empty()).then(|| format!("env keys {}", parts.join("; ")))
}

/// Names the other top-level fields that differ, as the manifest spells them.
fn other_changes(old: &Manifest, new: &Manifest) -> Vec<String> {
    const SUMMARISED: [&str; 6] = ["name", "image", "run", "replicas", "version", "env"];
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|key| !SUMMARISED.contains(&key.as_str()))
        .filter(|key| old.get(*key) != new.get(*key))
        .cloned()
        .collect()
}

impl App {
    /// Opens the editor on a new manifest.
    pub(super) fn open_new_manifest(&mut self) -> bool {
        if self.editor.is_some() {
            return false;
        }
        self.editor = Some(EditorState::new(EditorTarget::New, NEW_MANIFEST, true));
        self.layers.push(Layer::Editor);
        true
    }

    /// Opens the editor on `key`'s manifest, which the worker reads.
    pub(super) fn open_edit_manifest(&mut self, key: DeploymentKey, effects: &mut Effects) -> bool {
        if self.editor.is_some() {
            return false;
        }
        let revision = self
            .deployments
            .all()
            .iter()
            .find(|row| row.key == key)
            .map_or(0, |row| row.revision);
        let target = EditorTarget::Edit {
            key: key.clone(),
            revision,
        };
        self.editor = Some(EditorState::new(target, "", false));
        self.layers.push(Layer::Editor);
        effects.push(Effect::Request(Request::LoadManifest(key)));
        true
    }

    /// Puts a read manifest into the editor that asked for it.
    pub(super) fn on_manifest_loaded(
        &mut self,
        key: &DeploymentKey,
        result: Result<Box<ManifestSource>, String>,
        effects: &mut Effects,
    ) {
        let Some(editor) = self.editor.as_mut() else {
            return;
        };
        let EditorTarget::Edit { key: wanted, .. } = &editor.target else {
            return;
        };
        if wanted != key || editor.loaded {
            return;
        }
        match result {
            Ok(source) => {
                let target = EditorTarget::Edit {
                    key: key.clone(),
                    revision: source.revision,
                };
                *editor = EditorState::new(target, &source.text, true);
            }
            Err(message) => {
                editor.agent_error = Some(format!("reading the manifest failed: {message}"));
            }
        }
        effects.redraw();
    }

    /// Types an unbound key into the editor when it is on top; returns
    /// whether it was.
    pub(super) fn type_into_editor(&mut self, key: KeyPress, effects: &mut Effects) -> bool {
        if !matches!(self.layers.last(), Some(Layer::Editor)) {
            return false;
        }
        let now = self.now();
        if let Some(editor) = self.editor.as_mut().filter(|editor| editor.loaded) {
            if editor.input(key, now) {
                effects.redraw();
            }
        }
        true
    }

    /// Checks the editor's text once it has rested.
    pub(super) fn check_editor(&mut self, effects: &mut Effects) {
        let now = self.now();
        if let Some(editor) = self.editor.as_mut() {
            if editor.check_if_due(now) {
                effects.redraw();
            }
        }
    }

    /// Checks the text and, when it passes, opens the confirmation of the send.
    pub(super) fn send_manifest(&mut self, effects: &mut Effects) -> bool {
        let known: Vec<DeploymentKey> = self
            .deployments
            .all()
            .iter()
            .map(|row| row.key.clone())
            .collect();
        let Some(editor) = self.editor.as_mut().filter(|editor| editor.loaded) else {
            return false;
        };
        if editor.sending {
            self.toast(
                ToastLevel::Info,
                "the manifest is being sent; wait for the agent's response".to_owned(),
            );
            return true;
        }
        let Some(manifest) = editor.check() else {
            return true;
        };
        let text = editor.text();
        let original = check_manifest(&editor.original).ok().map(|c| c.manifest);
        let dialog = match &editor.target {
            EditorTarget::New => confirm_deploy(&manifest, text, &known),
            EditorTarget::Edit { key, revision } => {
                match confirm_edit(key, *revision, original.as_ref(), &manifest, text) {
                    Ok(dialog) => dialog,
                    Err(message) => {
                        editor.agent_error = Some(message);
                        return true;
                    }
                }
            }
        };
        self.layers.push(Layer::Confirm(dialog));
        effects.redraw();
        true
    }

    /// Closes the editor, first asking when there are unsent changes.
    pub(super) fn close_editor(&mut self) -> bool {
        let Some(editor) = &self.editor else {
            return false;
        };
        if editor.is_modified() {
            self.layers.push(Layer::DiscardEdits);
        } else {
            self.discard_editor();
        }
        true
    }

    /// Drops the editor and its text.
    pub(super) fn discard_editor(&mut self) {
        self.editor = None;
        self.layers
            .retain(|layer| !matches!(layer, Layer::Editor | Layer::DiscardEdits));
    }

    /// Marks the editor as waiting when it sent `operation`.
    pub(super) fn editor_sent(&mut self, operation: &Operation) {
        if matches!(operation, Operation::Deploy { .. } | Operation::Edit { .. }) {
            if let Some(editor) = self.editor.as_mut() {
                editor.sending = true;
            }
        }
    }

    /// Closes the editor when the agent accepted what it sent, or shows
    /// the agent's error in it; returns whether the editor shows the error,
    /// which then needs no toast.
    pub(super) fn editor_finished(
        &mut self,
        operation: &Operation,
        result: &Result<String, String>,
    ) -> bool {
        if !matches!(operation, Operation::Deploy { .. } | Operation::Edit { .. }) {
            return false;
        }
        let Some(editor) = self.editor.as_mut().filter(|editor| editor.sending) else {
            return false;
        };
        editor.sending = false;
        match result {
            Ok(_) => {
                self.discard_editor();
                false
            }
            Err(message) => {
                editor.agent_error = Some(message.clone());
                true
            }
        }
    }
}

fn required_name(key: &DeploymentKey) -> Option<String> {
    (key.environment == PRODUCTION).then(|| key.name.clone())
}

fn confirm_deploy(manifest: &Manifest, text: String, known: &[DeploymentKey]) -> ConfirmDialog {
    let key = DeploymentKey::new(&manifest.name, &manifest.environment);
    let target = format!("{} ({})", key.name, key.environment);
    let what = match (&manifest.image, &manifest.run, &manifest.source) {
        (Some(image), _, _) => format!("image {image}"),
        (None, Some(run), _) => format!("command {}", run.command.join(" ")),
        (None, None, Some(source)) => format!("source {}", source.url),
        (None, None, None) => "no command".to_owned(),
    };
    let mut message = if known.contains(&key) {
        format!("{target} exists: deploying this manifest rolls out a new revision, and every replica restarts")
    } else {
        format!("Deploy {target} as a new deployment")
    };
    message.push_str(&format!(
        "\n{} replicas, {what}, env keys: {}",
        manifest.replicas,
        env_names(manifest)
    ));
    ConfirmDialog {
        required_name: required_name(&key),
        operation: Operation::Deploy {
            key,
            manifest: text,
        },
        message,
        typed: String::new(),
        error: None,
    }
}

fn env_names(manifest: &Manifest) -> String {
    if manifest.env.is_empty() {
        return "none".to_owned();
    }
    manifest.env.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn confirm_edit(
    key: &DeploymentKey,
    revision: u64,
    original: Option<&Manifest>,
    manifest: &Manifest,
    text: String,
) -> Result<ConfirmDialog, String> {
    if manifest.name != key.name || manifest.environment != key.environment {
        return Err(format!(
            "this manifest is for {} ({}), not {} ({}); keep the name and environment, or deploy it as a new manifest",
            manifest.name, manifest.environment, key.name, key.environment
        ));
    }
    let target = format!("{} ({})", key.name, key.environment);
    let changes = original
        .map(|original| change_summary(original, manifest))
        .unwrap_or_default();
    let detail = if changes.is_empty() {
        "no field changed: the same spec rolls out again and every replica restarts".to_owned()
    } else {
        changes.join("\n")
    };
    Ok(ConfirmDialog {
        required_name: required_name(key),
        operation: Operation::Edit {
            key: key.clone(),
            manifest: text,
        },
        message: format!(
            "Redeploy {target} from the edited manifest (revision {revision} → {})\n{detail}",
            revision + 1
        ),
        typed: String::new(),
        error: None,
    })
}

#[cfg(test)]
#[path = "editor_tests.rs"]
mod tests;
