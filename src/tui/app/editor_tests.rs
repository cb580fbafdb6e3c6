//! Key sequences through the manifest editor: checking as you type,
//! sending after the confirmation, the agent's answer, and closing with
//! unsent changes.

use std::sync::Arc;

use time::macros::datetime;

use super::super::deployments::tests::view;
use super::*;
use crate::model::{DeploymentStatus, DeploymentView};
use crate::tui::action::{Action, Effect, KeyPress, Request};
use crate::tui::app::{AppOptions, ManualClock};
use crate::tui::keymap::{parse_key, Keymap};

const EDITED: &str = "\
name: web
environment: production
run:
  command: [\"python3\", \"-m\", \"http.server\"]
replicas: 1
env:
  GREETING: hi
  TOKEN: ${SECRET:token}
";

struct Harness {
    app: App,
    clock: ManualClock,
}

impl Harness {
    fn new(read_only: bool) -> Self {
        let clock = ManualClock::at(datetime!(2025-01-01 12:00:00 UTC));
        let mut app = App::new(
            AppOptions {
                keymap: Keymap::default(),
                read_only,
                socket: "/run/agent.sock".to_owned(),
            },
            Arc::new(clock.clone()),
        );
        app.apply(Action::Resize {
            width: 80,
            height: 24,
        });
        app.apply(Action::Deployments(fleet()));
        Self { app, clock }
    }

    /// Presses keys written as in the keymap, separated by spaces, and
    /// returns every effect.
    fn press(&mut self, keys: &str) -> Vec<Effect> {
        keys.split(' ')
            .flat_map(|key| self.app.apply(Action::Key(parse_key(key).unwrap())))
            .collect()
    }

    fn type_text(&mut self, text: &str) -> Vec<Effect> {
        text.chars()
            .flat_map(|character| self.app.apply(Action::Key(KeyPress::char(character))))
            .collect()
    }

    /// Lets the text rest past the check delay, then ticks.
    fn rest(&mut self) {
        self.clock.advance(std::time::Duration::from_millis(500));
        self.app.apply(Action::Tick);
    }

    fn editor(&self) -> &EditorState {
        self.app.editor.as_ref().expect("the editor is open")
    }

    fn top(&self) -> Option<&Layer> {
        self.app.layers.last()
    }
}

/// `web` in production with revision 3.
fn fleet() -> Vec<DeploymentView> {
    let mut web = view("web", "production", DeploymentStatus::Deployed);
    web.revision = 3;
    vec![web]
}

fn operations(effects: &[Effect]) -> Vec<Operation> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Execute(operation) => Some(operation.clone()),
            _ => None,
        })
        .collect()
}

fn open_loaded_edit(harness: &mut Harness) {
    let effects = harness.press("e");
    let key = DeploymentKey::new("web", "production");
    assert!(effects.contains(&Effect::Request(Request::LoadManifest(key.clone()))));
    assert!(!harness.editor().loaded);
    harness.app.apply(Action::ManifestLoaded {
        key,
        result: Ok(Box::new(ManifestSource {
            name: "web".to_owned(),
            environment: "production".to_owned(),
            revision: 3,
            text: EDITED.to_owned(),
        })),
    });
    assert!(harness.editor().loaded);
}

#[test]
fn new_manifest_opens_valid_skeleton() {
    let mut harness = Harness::new(false);
    harness.press("N");
    assert_eq!(harness.top(), Some(&Layer::Editor));
    let editor = harness.editor();
    assert_eq!(editor.target, EditorTarget::New);
    assert!(editor.checked);
    assert_eq!(editor.problem, None);
    assert!(!editor.is_modified());
}

#[test]
fn typing_checks_after_a_pause() {
    let mut harness = Harness::new(false);
    harness.press("N");
    // Line 1 becomes `name: web:`, which is invalid YAML for a name.
    harness.press("end");
    harness.type_text(" x: [");
    assert!(!harness.editor().checked, "no check while typing");
    harness.rest();
    let editor = harness.editor();
    assert!(editor.checked);
    let problem = editor.problem.as_ref().expect("a problem");
    assert_eq!(problem.line, 1, "{problem}");
    assert!(problem.column >= 1, "{problem}");
    assert!(editor.is_modified());
}

#[test]
fn problem_names_line_column_and_field() {
    let mut harness = Harness::new(false);
    harness.press("N");
    // Go to the replicas line (line 6) and make the count negative.
    harness.press("down down down down down end backspace");
    harness.type_text("-2");
    harness.rest();
    let problem = harness.editor().problem.clone().expect("a problem");
    assert_eq!(problem.line, 6, "{problem}");
    assert_eq!(problem.path, "replicas", "{problem}");
    let shown = problem.to_string();
    assert!(shown.starts_with("line 6, column "), "{shown}");
}

#[test]
fn send_is_refused_while_a_problem_remains() {
    let mut harness = Harness::new(false);
    harness.press("N");
    harness.press("down down down down down end backspace");
    harness.type_text("many");
    // Sending checks at once, without waiting for the pause.
    let effects = harness.press("ctrl-o");
    assert!(operations(&effects).is_empty());
    assert_eq!(harness.top(), Some(&Layer::Editor));
    assert!(harness.editor().problem.is_some());
}

#[test]
fn new_manifest_deploys_after_confirmation() {
    let mut harness = Harness::new(false);
    harness.press("N");
    harness.press("ctrl-o");
    let Some(Layer::Confirm(dialog)) = harness.top() else {
        panic!("no confirmation: {:?}", harness.top());
    };
    assert!(
        dialog
            .message
            .starts_with("Deploy web (development) as a new deployment"),
        "{}",
        dialog.message
    );
    assert!(dialog.message.contains("1 replicas"), "{}", dialog.message);
    assert_eq!(dialog.required_name, None);
    let effects = harness.press("y");
    let sent = operations(&effects);
    let [Operation::Deploy { key, manifest, .. }] = sent.as_slice() else {
        panic!("expected one deploy: {sent:?}");
    };
    assert_eq!(*key, DeploymentKey::new("web", "development"));
    assert_eq!(manifest, NEW_MANIFEST);
    assert!(harness.editor().sending, "the editor waits for the agent");

    let operation = sent[0].clone();
    harness.app.apply(Action::OperationFinished {
        operation,
        result: Ok("deploying web (development)".to_owned()),
    });
    assert!(harness.app.editor.is_none());
    assert_eq!(harness.top(), None);
}

#[test]
fn agent_error_keeps_editor_open() {
    let mut harness = Harness::new(false);
    harness.press("N ctrl-o y");
    let operation = Operation::Deploy {
        key: DeploymentKey::new("web", "development"),
        manifest: NEW_MANIFEST.to_owned(),
    };
    harness.app.apply(Action::OperationFinished {
        operation,
        result: Err("host port 8080 is in use".to_owned()),
    });
    let editor = harness.editor();
    assert!(!editor.sending);
    assert_eq!(
        editor.agent_error.as_deref(),
        Some("host port 8080 is in use")
    );
    assert_eq!(harness.top(), Some(&Layer::Editor));
}

#[test]
fn edit_summarises_and_needs_name_in_production() {
    let mut harness = Harness::new(false);
    open_loaded_edit(&mut harness);
    assert_eq!(
        harness.editor().target,
        EditorTarget::Edit {
            key: DeploymentKey::new("web", "production"),
            revision: 3
        }
    );
    // replicas: 1 -> 3 on line 5, and a new env key on a new last line.
    harness.press("down down down down end backspace");
    harness.type_text("3");
    harness.press("down down down end enter");
    harness.type_text("  MODE: fast");
    let effects = harness.press("ctrl-o");
    assert!(operations(&effects).is_empty());
    let Some(Layer::Confirm(dialog)) = harness.top() else {
        panic!("no confirmation: {:?}", harness.top());
    };
    assert_eq!(dialog.required_name.as_deref(), Some("web"));
    let message = dialog.message.clone();
    assert!(
        message.starts_with("Redeploy web (production) from the edited manifest (revision 3 → 4)"),
        "{message}"
    );
    assert!(message.contains("replicas 1 → 3"), "{message}");
    assert!(message.contains("env keys added MODE"), "{message}");
    assert!(!message.contains("fast"), "env values stay out: {message}");

    assert!(
        operations(&harness.press("enter")).is_empty(),
        "the name is needed"
    );
    harness.type_text("web");
    let sent = operations(&harness.press("enter"));
    let [Operation::Edit { key, manifest }] = sent.as_slice() else {
        panic!("expected one edit: {sent:?}");
    };
    assert_eq!(*key, DeploymentKey::new("web", "production"));
    assert!(manifest.contains("replicas: 3"), "{manifest}");
    assert!(manifest.contains("${SECRET:token}"), "{manifest}");
}

#[test]
fn edit_rejects_renamed_manifest() {
    let mut harness = Harness::new(false);
    open_loaded_edit(&mut harness);
    harness.press("end");
    harness.type_text("2");
    harness.press("ctrl-o");
    assert_eq!(harness.top(), Some(&Layer::Editor));
    let error = harness.editor().agent_error.clone().expect("an error");
    assert!(
        error.contains("this manifest is for web2 (production)"),
        "{error}"
    );
}

#[test]
fn failed_load_shows_the_reason() {
    let mut harness = Harness::new(false);
    harness.press("e");
    harness.app.apply(Action::ManifestLoaded {
        key: DeploymentKey::new("web", "production"),
        result: Err("deployment \"web\" not found".to_owned()),
    });
    let editor = harness.editor();
    assert!(!editor.loaded);
    let error = editor.agent_error.as_deref().unwrap_or_default();
    assert!(error.contains("not found"), "{error}");
    // Keys do nothing to an editor without text, and esc closes it.
    harness.type_text("abc");
    harness.press("esc");
    assert!(harness.app.editor.is_none());
}

#[test]
fn esc_asks_before_discarding_changes() {
    let mut harness = Harness::new(false);
    harness.press("N");
    harness.type_text("# note");
    harness.press("esc");
    assert_eq!(harness.top(), Some(&Layer::DiscardEdits));
    harness.press("n");
    assert_eq!(harness.top(), Some(&Layer::Editor), "n keeps editing");
    assert!(harness.editor().is_modified());
    harness.press("esc y");
    assert!(harness.app.editor.is_none());
    assert_eq!(harness.top(), None);
}

#[test]
fn esc_without_changes_closes_at_once() {
    let mut harness = Harness::new(false);
    harness.press("N");
    harness.press("esc");
    assert!(harness.app.editor.is_none());
    assert_eq!(harness.top(), None);
}

#[test]
fn editor_keys_type_instead_of_acting() {
    let mut harness = Harness::new(false);
    harness.press("N");
    // q, ?, : and D act in the table; in the editor they are text.
    let effects = harness.type_text("q?:D");
    assert!(!effects.contains(&Effect::Quit));
    assert_eq!(harness.top(), Some(&Layer::Editor));
    assert!(harness.editor().textarea.lines()[0].starts_with("q?:D"));
}

#[test]
fn read_only_hides_the_editor() {
    let mut harness = Harness::new(true);
    harness.press("N");
    harness.press("e");
    assert!(harness.app.editor.is_none());
    assert_eq!(harness.top(), None);
    let effects = harness.press(":");
    assert!(operations(&effects).is_empty());
    harness.type_text("deploy");
    harness.press("enter");
    assert!(harness.app.editor.is_none());
}

#[test]
fn palette_opens_the_editor() {
    let mut harness = Harness::new(false);
    harness.press(":");
    harness.type_text("edit web");
    let effects = harness.press("enter");
    let key = DeploymentKey::new("web", "production");
    assert!(effects.contains(&Effect::Request(Request::LoadManifest(key))));
    assert_eq!(harness.top(), Some(&Layer::Editor));
}

#[test]
fn summary_lists_changed_fields() {
    let old = check_manifest(EDITED).unwrap().manifest;
    let text = EDITED
        .replace("replicas: 1", "replicas: 2")
        .replace("  GREETING: hi\n", "  GREETING: hello\n")
        .replace("  TOKEN: ${SECRET:token}\n", "")
        + "tags: [shop]\n";
    let new = check_manifest(&text).unwrap().manifest;
    let summary = change_summary(&old, &new);
    assert_eq!(
        summary,
        vec![
            "replicas 1 → 2".to_owned(),
            "env keys removed TOKEN; changed GREETING".to_owned(),
            "also changed: tags".to_owned(),
        ]
    );
    assert!(change_summary(&old, &old).is_empty());
}

#[test]
fn template_skips_cross_field_rules() {
    // The probe names a port that only the template defines.
    let text = "name: web\ntemplate: web-app\nrun:\n  command: [\"app\"]\nhealthCheck:\n  type: tcp\n  port: http\n";
    let checked = check_manifest(text).expect("the agent checks the rest");
    assert_eq!(checked.template.as_deref(), Some("web-app"));
    let without = text.replace("template: web-app\n", "");
    assert!(check_manifest(&without).is_err());
}
