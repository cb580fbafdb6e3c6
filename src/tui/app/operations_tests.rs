//! Key sequences through the operation keys, the confirmation dialog and
//! the palette, down to the effect sent to the worker.

use std::sync::Arc;

use time::macros::datetime;

use super::super::deployments::tests::view;
use super::*;
use crate::model::{DeploymentStatus, DeploymentView};
use crate::tui::action::{Action, KeyPress};
use crate::tui::app::{AppOptions, ManualClock};
use crate::tui::keymap::{parse_key, Keymap};

fn app_with(read_only: bool, fleet: Vec<DeploymentView>) -> App {
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::default(),
            read_only,
            socket: "/run/agent.sock".to_owned(),
        },
        Arc::new(ManualClock::at(datetime!(2025-01-01 12:00:00 UTC))),
    );
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    app.apply(Action::Deployments(fleet));
    app
}

/// `web` in staging with 4 replicas, and `web` and `api` in production.
fn fleet() -> Vec<DeploymentView> {
    let mut staging = view("web", "staging", DeploymentStatus::Deployed);
    staging.replicas.desired = 4;
    staging.revision = 5;
    vec![
        staging,
        view("web", "production", DeploymentStatus::Deployed),
        view("api", "production", DeploymentStatus::Deployed),
    ]
}

fn app() -> App {
    app_with(false, fleet())
}

/// Presses keys written as in the keymap, separated by spaces, and returns
/// the operations sent to the worker.
fn press(app: &mut App, keys: &str) -> Vec<Operation> {
    keys.split(' ')
        .flat_map(|key| app.apply(Action::Key(parse_key(key).unwrap())))
        .filter_map(|effect| match effect {
            Effect::Execute(operation) => Some(operation),
            _ => None,
        })
        .collect()
}

fn type_text(app: &mut App, text: &str) -> Vec<Operation> {
    text.chars()
        .flat_map(|character| app.apply(Action::Key(KeyPress::char(character))))
        .filter_map(|effect| match effect {
            Effect::Execute(operation) => Some(operation),
            _ => None,
        })
        .collect()
}

/// Selects the row of `name` in `environment`.
fn select(app: &mut App, name: &str, environment: &str) {
    press(app, "g");
    for _ in 0..app.deployments.len() {
        let row = app.deployments.selected().unwrap();
        if row.name == name && row.environment == environment {
            return;
        }
        press(app, "j");
    }
    panic!("{name} ({environment}) is not in the table");
}

fn dialog(app: &App) -> &ConfirmDialog {
    match app.layers.last() {
        Some(Layer::Confirm(dialog)) => dialog,
        other => panic!("no confirmation dialog on top: {other:?}"),
    }
}

fn prompt_message(app: &App) -> Option<String> {
    match app.layers.last() {
        Some(Layer::Prompt(prompt)) => prompt
            .message
            .as_ref()
            .map(|message| message.text().to_owned()),
        other => panic!("no prompt on top: {other:?}"),
    }
}

fn key(name: &str, environment: &str) -> DeploymentKey {
    DeploymentKey::new(name, environment)
}

#[test]
fn plus_scales_up_without_asking() {
    let mut app = app();
    select(&mut app, "web", "staging");
    let sent = press(&mut app, "+");
    assert_eq!(
        sent,
        [Operation::Scale {
            key: key("web", "staging"),
            replicas: 5,
            force: false,
        }]
    );
    assert!(app.layers.is_empty());
}

#[test]
fn minus_asks_then_enter_confirms() {
    let mut app = app();
    select(&mut app, "web", "staging");
    assert!(press(&mut app, "-").is_empty());
    assert_eq!(
        dialog(&app).message,
        "Scale web (staging) from 4 to 3 replicas"
    );
    let sent = press(&mut app, "enter");
    assert_eq!(
        sent,
        [Operation::Scale {
            key: key("web", "staging"),
            replicas: 3,
            force: false,
        }]
    );
    assert!(app.layers.is_empty());
}

#[test]
fn confirm_with_y_cancel_with_n_or_esc() {
    let mut app = app();
    select(&mut app, "web", "staging");
    for cancel in ["n", "esc"] {
        press(&mut app, "r");
        assert!(dialog(&app).message.starts_with("Roll back web (staging)"));
        assert!(press(&mut app, cancel).is_empty(), "{cancel}");
        assert!(app.layers.is_empty(), "{cancel} closes the dialog");
    }
    press(&mut app, "R");
    assert_eq!(
        press(&mut app, "y"),
        [Operation::Redeploy {
            key: key("web", "staging")
        }]
    );
}

#[test]
fn dialogs_say_what_will_happen() {
    let mut app = app();
    select(&mut app, "web", "staging");
    let cases = [
        (
            "r",
            "Roll back web (staging) from revision 5 to the previous healthy revision",
        ),
        ("R", "Redeploy web (staging): all 4 replicas restart"),
        ("D", "Undeploy web (staging): all 4 replicas stop"),
    ];
    for (keys, message) in cases {
        press(&mut app, keys);
        assert_eq!(dialog(&app).message, message);
        assert_eq!(dialog(&app).required_name, None);
        press(&mut app, "esc");
    }
}

#[test]
fn production_requires_the_typed_name() {
    let mut app = app();
    select(&mut app, "api", "production");
    press(&mut app, "D");
    assert_eq!(dialog(&app).required_name.as_deref(), Some("api"));
    assert!(
        press(&mut app, "y").is_empty(),
        "y types rather than confirms in production"
    );
    assert_eq!(dialog(&app).typed, "y");

    press(&mut app, "backspace");
    type_text(&mut app, "apx");
    assert!(press(&mut app, "enter").is_empty(), "a wrong name");
    let error = dialog(&app).error.clone().unwrap();
    assert!(error.contains("type api exactly"), "{error}");

    press(&mut app, "backspace");
    type_text(&mut app, "i");
    assert_eq!(dialog(&app).error, None, "typing clears the error");
    assert_eq!(
        press(&mut app, "enter"),
        [Operation::Undeploy {
            key: key("api", "production")
        }]
    );
}

#[test]
fn production_cancel_sends_nothing() {
    let mut app = app();
    select(&mut app, "api", "production");
    press(&mut app, "-");
    type_text(&mut app, "api");
    assert!(press(&mut app, "esc").is_empty());
    assert!(app.layers.is_empty());
}

#[test]
fn scale_input_takes_a_number() {
    let mut app = app();
    select(&mut app, "web", "staging");
    press(&mut app, "s");
    type_text(&mut app, "x");
    assert!(press(&mut app, "enter").is_empty());
    let message = prompt_message(&app).unwrap();
    assert!(message.contains("invalid replica count \"x\""), "{message}");

    press(&mut app, "backspace");
    type_text(&mut app, "9");
    assert_eq!(
        press(&mut app, "enter"),
        [Operation::Scale {
            key: key("web", "staging"),
            replicas: 9,
            force: false,
        }],
        "scaling up needs no confirmation"
    );

    press(&mut app, "s");
    type_text(&mut app, "2");
    assert!(press(&mut app, "enter").is_empty());
    assert_eq!(
        dialog(&app).message,
        "Scale web (staging) from 4 to 2 replicas"
    );
}

#[test]
fn read_only_rejects_operation_keys() {
    let mut app = app_with(true, fleet());
    for keys in ["+", "-", "s", "r", "R", "D"] {
        assert!(press(&mut app, keys).is_empty(), "{keys}");
        assert!(app.layers.is_empty(), "{keys} opens nothing");
    }
    let last = app.toasts.iter().last().unwrap();
    assert!(last.message.contains("--read-only"), "{}", last.message);
}

#[test]
fn read_only_hides_operation_keys_from_help() {
    let keymap = Keymap::default();
    let hidden = super::super::help_lines(&keymap, Context::Deployments, true);
    let shown = super::super::help_lines(&keymap, Context::Deployments, false);
    let has_scale = |lines: &[super::super::HelpLine]| {
        lines.iter().any(|line| {
            matches!(line, super::super::HelpLine::Binding(binding)
                if binding.command == Command::ScaleTo)
        })
    };
    assert!(has_scale(&shown));
    assert!(!has_scale(&hidden));
}

#[test]
fn read_only_palette_rejects_changes() {
    let mut app = app_with(true, fleet());
    press(&mut app, ":");
    type_text(&mut app, "scale api 3");
    assert!(press(&mut app, "enter").is_empty());
    assert!(prompt_message(&app).unwrap().contains("--read-only"));
    press(&mut app, "ctrl-u");
    type_text(&mut app, "quit");
    let effects = app.apply(Action::Key(parse_key("enter").unwrap()));
    assert!(effects.contains(&Effect::Quit));
}

#[test]
fn palette_scales_and_rolls_back() {
    let mut app = app();
    press(&mut app, ":");
    type_text(&mut app, "scale api 3");
    assert_eq!(
        press(&mut app, "enter"),
        [Operation::Scale {
            key: key("api", "production"),
            replicas: 3,
            force: false,
        }]
    );
    press(&mut app, ":");
    type_text(&mut app, "rollback web 2 env:staging");
    assert!(press(&mut app, "enter").is_empty());
    assert_eq!(
        dialog(&app).message,
        "Roll back web (staging) from revision 5 to revision 2"
    );
    assert_eq!(
        press(&mut app, "y"),
        [Operation::Rollback {
            key: key("web", "staging"),
            to_revision: Some(2)
        }]
    );
}

#[test]
fn palette_errors_stay_in_the_palette() {
    let cases = [
        (
            "rollback web 2",
            "web is in staging, production; add env:ENV",
        ),
        ("scale nope 2", "no deployment named nope"),
        ("scale web 2 env:qa", "no deployment web in environment qa"),
        ("scael web 2", "did you mean scale?"),
        ("scale api -1", "invalid replica count \"-1\""),
        ("scale api 1001", "from 0 to 1000"),
        ("scale api", "missing the replica count"),
        (
            "rollback web 9 env:staging",
            "web is at revision 5; roll back to one of 1 to 4",
        ),
        ("rollback web 5 env:staging", "roll back to one of 1 to 4"),
        ("restart web 7 env:staging", "there is no replica 7"),
    ];
    for (line, expected) in cases {
        let mut app = app();
        press(&mut app, ":");
        type_text(&mut app, line);
        assert!(press(&mut app, "enter").is_empty(), "{line}");
        let message = prompt_message(&app).unwrap();
        assert!(message.contains(expected), "{line}: {message}");
    }
}

#[test]
fn palette_tab_completes() {
    let mut app = app();
    press(&mut app, ":");
    type_text(&mut app, "und");
    press(&mut app, "tab");
    type_text(&mut app, "a");
    press(&mut app, "tab");
    match app.layers.last() {
        Some(Layer::Prompt(prompt)) => assert_eq!(prompt.text, "undeploy api "),
        other => panic!("{other:?}"),
    }
}

#[test]
fn results_become_toasts() {
    let mut app = app();
    let operation = Operation::Redeploy {
        key: key("web", "staging"),
    };
    app.apply(Action::OperationFinished {
        operation: operation.clone(),
        result: Ok(operation.done()),
    });
    let long = format!("the agent failed: {}\nsecond line", "x".repeat(300));
    app.apply(Action::OperationFinished {
        operation,
        result: Err(long),
    });
    let toasts: Vec<&Toast> = app.toasts.iter().collect();
    assert_eq!(toasts[0].message, "redeploying web (staging)");
    assert_eq!(toasts[1].level, ToastLevel::Error);
    assert!(!toasts[1].message.contains("second line"));
    assert!(toasts[1].message.chars().count() < 200);
}

#[test]
fn theme_key_cycles_names() {
    let mut app = app();
    let names = ["dark", "high-contrast", "light"]
        .map(str::to_owned)
        .to_vec();
    app.set_themes(names, "light");
    let load = |app: &mut App| -> Vec<Effect> {
        app.apply(Action::Key(parse_key("T").unwrap()))
            .into_iter()
            .filter(|effect| matches!(effect, Effect::LoadTheme(_)))
            .collect()
    };
    assert_eq!(load(&mut app), [Effect::LoadTheme("dark".to_owned())]);
    assert_eq!(
        load(&mut app),
        [Effect::LoadTheme("high-contrast".to_owned())]
    );
    app.apply(Action::ThemeFailed {
        name: "high-contrast".to_owned(),
        message: "invalid colour".to_owned(),
    });
    let last = app.toasts.iter().last().unwrap();
    assert_eq!(last.level, ToastLevel::Error);
    assert!(last.message.contains("invalid colour"), "{}", last.message);
    assert_eq!(
        load(&mut app),
        [Effect::LoadTheme("light".to_owned())],
        "the next key moves past the failed theme"
    );
}

#[test]
fn theme_key_without_themes_does_nothing() {
    let mut app = app();
    let effects = app.apply(Action::Key(parse_key("T").unwrap()));
    assert!(effects.is_empty());
}

#[test]
fn operation_keys_resolve_on_the_table() {
    let keymap = Keymap::default();
    let contexts = [Context::Deployments, Context::Global];
    let cases = [
        ("+", Command::ScaleUp),
        ("-", Command::ScaleDown),
        ("s", Command::ScaleTo),
        ("r", Command::Rollback),
        ("R", Command::Redeploy),
        ("D", Command::Undeploy),
        (":", Command::OpenPalette),
        ("T", Command::NextTheme),
        ("o", Command::NextSort),
        ("O", Command::ReverseSort),
    ];
    for (key, command) in cases {
        let press = parse_key(key).unwrap();
        assert_eq!(keymap.resolve(&contexts, press), Some(command), "{key}");
        let changes = matches!(
            command,
            Command::ScaleUp
                | Command::ScaleDown
                | Command::ScaleTo
                | Command::Rollback
                | Command::Redeploy
                | Command::Undeploy
        );
        assert_eq!(command.changes_agent(), changes, "{key}");
    }
}

#[test]
fn palette_completes_shared_names_once() {
    let mut app = app();
    press(&mut app, ":");
    type_text(&mut app, "redeploy w");
    press(&mut app, "tab");
    match app.layers.last() {
        Some(Layer::Prompt(prompt)) => {
            assert_eq!(prompt.text, "redeploy web ");
            assert_eq!(prompt.message, None);
        }
        other => panic!("{other:?}"),
    }
}
