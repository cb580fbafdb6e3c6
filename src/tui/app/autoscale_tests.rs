//! Key sequences through the autoscale palette commands, their
//! confirmations, the rejected scale and its force, and the autoscale tab's
//! requests, down to the effects sent to the worker.

use std::sync::Arc;

use time::macros::datetime;

use super::super::deployments::tests::view;
use super::*;
use crate::autoscale::{AutoscaleSource, AutoscaleView};
use crate::engine::EngineError;
use crate::model::{DeploymentStatus, DeploymentView};
use crate::tui::action::{Action, Effect, KeyPress};
use crate::tui::app::{AppOptions, DetailData, DetailRequest, DetailTab, ManualClock};
use crate::tui::keymap::{parse_key, Keymap};

/// `web` in staging autoscaled between 1 and 5 with 4 replicas, `web` in
/// production, and `api` in production without autoscaling.
fn fleet() -> Vec<DeploymentView> {
    let mut staging = view("web", "staging", DeploymentStatus::Deployed);
    staging.replicas.desired = 4;
    staging.autoscaling = Some(ReplicaRange { min: 1, max: 5 });
    vec![
        staging,
        view("web", "production", DeploymentStatus::Deployed),
        view("api", "production", DeploymentStatus::Deployed),
    ]
}

fn app_with(read_only: bool) -> App {
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
    app.apply(Action::Deployments(fleet()));
    app
}

fn app() -> App {
    app_with(false)
}

fn operations(effects: Vec<Effect>) -> Vec<Operation> {
    effects
        .into_iter()
        .filter_map(|effect| match effect {
            Effect::Execute(operation) => Some(operation),
            _ => None,
        })
        .collect()
}

/// Presses keys written as in the keymap, separated by spaces, and returns
/// the operations sent to the worker.
fn press(app: &mut App, keys: &str) -> Vec<Operation> {
    keys.split(' ')
        .flat_map(|key| operations(app.apply(Action::Key(parse_key(key).unwrap()))))
        .collect()
}

fn type_text(app: &mut App, text: &str) -> Vec<Operation> {
    text.chars()
        .flat_map(|character| operations(app.apply(Action::Key(KeyPress::char(character)))))
        .collect()
}

/// Types `line` into the palette and presses Enter.
fn palette(app: &mut App, line: &str) -> Vec<Operation> {
    press(app, ":");
    type_text(app, line);
    press(app, "enter")
}

fn dialog(app: &App) -> &ConfirmDialog {
    match app.layers.last() {
        Some(Layer::Confirm(dialog)) => dialog,
        other => panic!("no confirmation dialog on top: {other:?}"),
    }
}

fn prompt(app: &App) -> &Prompt {
    match app.layers.last() {
        Some(Layer::Prompt(prompt)) => prompt,
        other => panic!("no prompt on top: {other:?}"),
    }
}

fn last_toast(app: &App) -> String {
    app.toasts
        .iter()
        .last()
        .map(|toast| toast.message.clone())
        .unwrap_or_default()
}

fn key(name: &str, environment: &str) -> DeploymentKey {
    DeploymentKey::new(name, environment)
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

fn setting(min: u32, max: u32, cpu: Option<u32>) -> AutoscaleSetting {
    AutoscaleSetting {
        min_replicas: min,
        max_replicas: max,
        cpu_percent: cpu,
        memory_percent: None,
        metrics: Vec::new(),
    }
}

#[test]
fn palette_autoscale_asks_then_sends() {
    let mut app = app();
    let sent = palette(&mut app, "autoscale api 2 6 cpu=70 requests_per_second=50");
    assert!(sent.is_empty(), "asks first");
    let dialog = dialog(&app);
    let lines: Vec<&str> = dialog.message.lines().collect();
    assert_eq!(
        lines[0],
        "Autoscale api (production) between 2 and 6 replicas (now 2)"
    );
    assert_eq!(
        lines[1],
        "targets: cpu at 70% of its request, requests_per_second at 50 per replica"
    );
    assert_eq!(dialog.required_name.as_deref(), Some("api"));

    type_text(&mut app, "api");
    let sent = press(&mut app, "enter");
    let expected = AutoscaleSetting {
        metrics: vec![MetricTarget {
            name: "requests_per_second".to_owned(),
            per_replica: PerReplica::new(50.0).unwrap(),
        }],
        ..setting(2, 6, Some(70))
    };
    assert_eq!(
        sent,
        [Operation::Autoscale {
            key: key("api", "production"),
            setting: Some(Box::new(expected)),
        }]
    );
}

#[test]
fn palette_changes_current_setting() {
    let mut app = app();
    palette(&mut app, "autoscale web 2 8 env:staging");
    let dialog = dialog(&app);
    assert!(
        dialog.message.starts_with(
            "Change the autoscaling of web (staging) from 1..5 to 2..8 replicas (now 4)"
        ),
        "{}",
        dialog.message
    );
    assert!(
        dialog
            .message
            .contains("targets: cpu at 80% of its request (the default)"),
        "{}",
        dialog.message
    );
    assert_eq!(dialog.required_name, None, "staging needs no typed name");
    assert_eq!(
        press(&mut app, "y"),
        [Operation::Autoscale {
            key: key("web", "staging"),
            setting: Some(Box::new(setting(2, 8, None))),
        }]
    );
}

#[test]
fn palette_turns_autoscaling_off() {
    let mut app = app();
    assert!(palette(&mut app, "autoscale off web env:staging").is_empty());
    assert_eq!(
        dialog(&app).message.lines().next(),
        Some("Turn autoscaling off for web (staging): the count stays at 4 replicas until you scale it")
    );
    assert_eq!(
        press(&mut app, "y"),
        [Operation::Autoscale {
            key: key("web", "staging"),
            setting: None,
        }]
    );

    assert!(palette(&mut app, "autoscale off api").is_empty());
    assert!(app.layers.is_empty(), "no question when already off");
    assert_eq!(
        last_toast(&app),
        "autoscaling is already off for api (production)"
    );
}

#[test]
fn palette_autoscale_errors_stay() {
    let cases = [
        (
            "autoscale api 5 2",
            "the minimum 5 is above the maximum 2; type MIN before MAX, as in autoscale NAME 2 5",
        ),
        (
            "autoscale api two 5",
            "invalid minimum replica count \"two\"",
        ),
        ("autoscale api 1 5 cpu=high", "invalid cpu=high"),
        (
            "autoscale api 1 5 CPU=70",
            "unknown key \"CPU\" (did you mean cpu?)",
        ),
        (
            "autoscale web 1 5",
            "web is in staging, production; add env:ENV",
        ),
        ("autoscale nope 1 5", "no deployment named nope"),
    ];
    for (line, expected) in cases {
        let mut app = app();
        assert!(palette(&mut app, line).is_empty(), "{line}");
        let message = prompt(&app)
            .message
            .as_ref()
            .map(|message| message.text().to_owned())
            .unwrap_or_default();
        assert!(message.contains(expected), "{line}: {message}");
    }
}

#[test]
fn read_only_rejects_autoscale() {
    let mut app = app_with(true);
    assert!(palette(&mut app, "autoscale api 1 3").is_empty());
    let message = prompt(&app).message.as_ref().map(|m| m.text().to_owned());
    assert!(message.unwrap_or_default().contains("--read-only"));
    press(&mut app, "esc");

    for key in ["u", "!"] {
        assert!(press(&mut app, key).is_empty(), "{key}");
        assert!(app.layers.is_empty(), "{key} opens nothing");
        assert!(last_toast(&app).contains("--read-only"), "{key}");
    }
}

fn rejection() -> String {
    EngineError::AutoscalingOn {
        name: "web".to_owned(),
        min: 1,
        max: 5,
    }
    .to_string()
}

#[test]
fn rejected_scale_offers_force() {
    let mut app = app();
    let operation = Operation::Scale {
        key: key("web", "staging"),
        replicas: 5,
        force: false,
    };
    app.apply(Action::ScaleRejected {
        operation,
        message: rejection(),
    });
    let toast = app.toasts.iter().last().unwrap();
    assert_eq!(toast.level, ToastLevel::Error);
    assert_eq!(
        toast.message,
        "scaling web (staging) to 5 replicas failed: autoscaling is on for \"web\" (1 to 5 \
         replicas), so it sets the count; press ! or type :scale web env:staging 5 --force to \
         turn it off and scale"
    );

    assert!(press(&mut app, "!").is_empty(), "asks first");
    let lines: Vec<&str> = dialog(&app).message.lines().collect();
    assert_eq!(
        lines[0],
        "Turn autoscaling off for web (staging) and scale it from 4 to 5 replicas"
    );
    assert!(lines[1].contains("between 1 and 5 replicas stays off"));
    assert_eq!(
        press(&mut app, "y"),
        [Operation::Scale {
            key: key("web", "staging"),
            replicas: 5,
            force: true,
        }]
    );

    assert!(press(&mut app, "!").is_empty());
    assert!(app.layers.is_empty(), "the rejected scale was used up");
    assert!(last_toast(&app).starts_with("no rejected scale to force"));
}

#[test]
fn forced_scale_by_palette_and_prompt() {
    let mut app = app();
    assert!(palette(&mut app, "scale web 2 --force env:staging").is_empty());
    assert!(dialog(&app)
        .message
        .starts_with("Turn autoscaling off for web (staging) and scale it from 4 to 2"));
    press(&mut app, "esc");

    select(&mut app, "web", "staging");
    press(&mut app, "s");
    type_text(&mut app, "3!");
    assert!(press(&mut app, "enter").is_empty());
    assert!(dialog(&app)
        .message
        .starts_with("Turn autoscaling off for web (staging) and scale it from 4 to 3"));
    press(&mut app, "esc");

    // Without autoscaling, a forced scale is a plain one: up goes at once.
    assert_eq!(
        palette(&mut app, "scale! api 3"),
        [Operation::Scale {
            key: key("api", "production"),
            replicas: 3,
            force: false,
        }]
    );
}

#[test]
fn autoscale_key_fills_palette() {
    let mut app = app();
    select(&mut app, "api", "production");
    press(&mut app, "u");
    let shown = prompt(&app);
    assert_eq!(shown.text, "autoscale api ");
    assert!(shown
        .message
        .as_ref()
        .is_some_and(|message| message.text().starts_with("MIN MAX")));
    press(&mut app, "esc");

    // In the detail view of an autoscaled deployment, the line contains
    // the setting the autoscale tab read.
    select(&mut app, "web", "staging");
    press(&mut app, "enter 7");
    let view = AutoscaleView {
        source: AutoscaleSource::Shipdeck,
        min_replicas: 1,
        max_replicas: 5,
        targets: vec![
            crate::autoscale::Target::CpuUtilization { percent: 70 },
            crate::autoscale::Target::AverageValue {
                metric: "requests_per_second".to_owned(),
                value: 12.5,
            },
        ],
        current_replicas: 4,
        desired_replicas: 4,
        metrics: Vec::new(),
        conditions: Vec::new(),
        last_scale_ms: None,
        decisions: Vec::new(),
    };
    app.apply(Action::Detail {
        key: key("web", "staging"),
        data: DetailData::Autoscale(Box::new(view)),
    });
    press(&mut app, "u");
    assert_eq!(
        prompt(&app).text,
        "autoscale web env:staging 1 5 cpu=70 requests_per_second=12.5"
    );
}

fn watched_detail(effects: &[Effect]) -> Option<DetailRequest> {
    effects.iter().find_map(|effect| match effect {
        Effect::WatchDetail(request) => request.clone(),
        _ => None,
    })
}

#[test]
fn autoscale_tab_reads_while_on() {
    let mut app = app();
    select(&mut app, "web", "staging");
    press(&mut app, "enter");
    let effects = app.apply(Action::Key(parse_key("7").unwrap()));
    let request = watched_detail(&effects).expect("a new request");
    assert_eq!(request.tab, DetailTab::Autoscale);
    assert!(request.autoscaled);

    app.apply(Action::Detail {
        key: key("web", "staging"),
        data: DetailData::Autoscale(Box::new(AutoscaleView {
            source: AutoscaleSource::Shipdeck,
            min_replicas: 1,
            max_replicas: 5,
            targets: Vec::new(),
            current_replicas: 4,
            desired_replicas: 4,
            metrics: Vec::new(),
            conditions: Vec::new(),
            last_scale_ms: None,
            decisions: Vec::new(),
        })),
    });
    assert!(app.detail.as_ref().unwrap().autoscale.is_some());

    // Once autoscaling is off, the tab drops the view and reads nothing.
    let mut off = fleet();
    off[0].autoscaling = None;
    let effects = app.apply(Action::Deployments(off));
    let request = watched_detail(&effects).expect("a new request");
    assert!(!request.autoscaled);
    assert!(app.detail.as_ref().unwrap().autoscale.is_none());
}
