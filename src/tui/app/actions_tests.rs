//! Key sequences through the secrets view and its masked field, the
//! detail view's alert actions, and restart, down to what is sent.

use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::super::deployments::tests::view;
use super::*;
use crate::config::SecretInfo;
use crate::model::{
    AlertRuleSource, AlertRuleView, DeploymentStatus, DeploymentView, ReplicaState, ReplicaView,
};
use crate::monitor::alerts::{AlertView, Silence, SilenceView};
use crate::tui::action::KeyPress;
use crate::tui::action::{Action, Effect, Request, SecretsReadError};
use crate::tui::app::help_lines;
use crate::tui::app::{AppOptions, DetailData, ManualClock};
use crate::tui::keymap::{parse_key, Keymap};

const NOW: OffsetDateTime = datetime!(2025-01-01 12:00:00 UTC);

fn app_with(read_only: bool) -> App {
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::default(),
            read_only,
            socket: "/run/agent.sock".to_owned(),
        },
        Arc::new(ManualClock::at(NOW)),
    );
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    app.apply(Action::Deployments(fleet()));
    app
}

/// `api` in production and `web` in staging, each with 2 replicas.
fn fleet() -> Vec<DeploymentView> {
    vec![
        view("api", "production", DeploymentStatus::Deployed),
        view("web", "staging", DeploymentStatus::Deployed),
    ]
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    keys.split(' ')
        .flat_map(|key| app.apply(Action::Key(parse_key(key).unwrap())))
        .collect()
}

fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|character| app.apply(Action::Key(KeyPress::char(character))))
        .collect()
}

fn requests(effects: &[Effect]) -> Vec<Request> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Request(request) => Some(request.clone()),
            _ => None,
        })
        .collect()
}

fn executed(effects: &[Effect]) -> Vec<Operation> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Execute(operation) => Some(operation.clone()),
            _ => None,
        })
        .collect()
}

fn secrets() -> Vec<SecretInfo> {
    ["database_url", "api_token"]
        .into_iter()
        .map(|name| SecretInfo {
            name: name.to_owned(),
            updated_at: NOW,
        })
        .collect()
}

fn open_secrets(app: &mut App) {
    let effects = press(app, "S");
    assert_eq!(requests(&effects), vec![Request::ReadSecrets]);
    app.apply(Action::Secrets(Ok(secrets())));
}

#[test]
fn secrets_view_lists_and_moves() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    assert_eq!(app.layers.last(), Some(&Layer::Secrets));
    press(&mut app, "j");
    let selected = app.secrets.as_ref().and_then(|s| s.selected()).unwrap();
    assert_eq!(selected.name, "api_token");
    let effects = app.apply(Action::Tick);
    assert!(
        requests(&effects).contains(&Request::ReadSecrets),
        "refreshed"
    );
    press(&mut app, "esc");
    assert!(app.secrets.is_none());
    assert_eq!(app.layers.last(), None);
}

#[test]
fn palette_opens_secrets_even_read_only() {
    let mut app = app_with(true);
    press(&mut app, ":");
    type_text(&mut app, "secrets");
    let effects = press(&mut app, "enter");
    assert_eq!(requests(&effects), vec![Request::ReadSecrets]);
    assert_eq!(app.layers.last(), Some(&Layer::Secrets));
}

#[test]
fn add_secret_masks_and_sends_value() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    press(&mut app, "n");
    type_text(&mut app, "smtp_password");
    press(&mut app, "tab");
    type_text(&mut app, "pa55 word");
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("no form: {:?}", app.layers.last());
    };
    assert_eq!(form.fields[0].text(), "smtp_password");
    assert_eq!(
        form.fields[1].text(),
        "",
        "a masked field never returns its text"
    );
    assert_eq!(form.fields[1].chars(), 9);
    let debug = format!("{:?}", app.layers);
    assert!(!debug.contains("pa55"), "{debug}");

    let effects = press(&mut app, "enter");
    let sent = requests(&effects);
    let [Request::ChangeSecret(SecretChange::Set { name, value })] = sent.as_slice() else {
        panic!("expected one secret change: {sent:?}");
    };
    assert_eq!(name, "smtp_password");
    assert_eq!(value.expose(), "pa55 word");
    let debug = format!("{effects:?}");
    assert!(!debug.contains("pa55"), "{debug}");
    assert_eq!(app.layers.last(), Some(&Layer::Secrets));

    let effects = app.apply(Action::SecretChanged {
        name: "smtp_password".to_owned(),
        deleted: false,
        result: Ok(()),
    });
    assert!(requests(&effects).contains(&Request::ReadSecrets));
    let toast = &app.toasts.iter().last().unwrap().message;
    assert_eq!(toast, "secret smtp_password saved");
}

#[test]
fn add_secret_checks_name_and_value() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    press(&mut app, "n");
    type_text(&mut app, "bad name");
    press(&mut app, "tab");
    type_text(&mut app, "x");
    assert!(requests(&press(&mut app, "enter")).is_empty());
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("the form stays open");
    };
    assert!(form
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("bad name"));

    press(&mut app, "tab ctrl-u");
    type_text(&mut app, "good_name");
    press(&mut app, "tab ctrl-u");
    assert!(requests(&press(&mut app, "enter")).is_empty());
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("the form stays open");
    };
    assert!(form
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("type the value"));
    press(&mut app, "esc");
    assert_eq!(app.layers.last(), Some(&Layer::Secrets));
}

#[test]
fn replace_and_delete_secret() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    press(&mut app, "enter");
    type_text(&mut app, "new");
    let sent = requests(&press(&mut app, "enter"));
    let [Request::ChangeSecret(SecretChange::Set { name, .. })] = sent.as_slice() else {
        panic!("expected a replacement: {sent:?}");
    };
    assert_eq!(name, "database_url");

    press(&mut app, "D");
    assert_eq!(
        app.layers.last(),
        Some(&Layer::DeleteSecret {
            name: "database_url".to_owned()
        })
    );
    assert!(requests(&press(&mut app, "n")).is_empty(), "n keeps it");
    press(&mut app, "D");
    let sent = requests(&press(&mut app, "y"));
    assert_eq!(
        sent,
        vec![Request::ChangeSecret(SecretChange::Delete {
            name: "database_url".to_owned()
        })]
    );
}

#[test]
fn read_only_secrets_list_only() {
    let mut app = app_with(true);
    open_secrets(&mut app);
    for keys in ["n", "enter", "D"] {
        let effects = press(&mut app, keys);
        assert!(requests(&effects).is_empty(), "{keys}");
        assert_eq!(app.layers.last(), Some(&Layer::Secrets), "{keys}");
    }
}

#[test]
fn locked_vault_is_kept() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    app.apply(Action::Secrets(Err(SecretsReadError::Locked(
        "cannot unlock the secret vault".to_owned(),
    ))));
    let state = app.secrets.as_ref().unwrap();
    assert!(matches!(state.error, Some(SecretsReadError::Locked(_))));
}

fn rule(name: &str) -> AlertRuleView {
    let spec = serde_json::json!({
        "name": name, "metric": "cpu_percentage", "condition": "gt", "threshold": 80.0,
    });
    AlertRuleView {
        deployment: "web".to_owned(),
        environment: "staging".to_owned(),
        source: AlertRuleSource::Manifest,
        active: true,
        rule: serde_json::from_value(spec).unwrap(),
    }
}

fn firing(rule: &str) -> AlertView {
    AlertView {
        deployment: "web".to_owned(),
        environment: "staging".to_owned(),
        rule: rule.to_owned(),
        silenced: false,
        silenced_until: None,
        state: AlertState::Firing {
            since: NOW,
            last_sample: NOW,
            last_notified: Some(NOW),
            muted: false,
            acknowledged: None,
        },
    }
}

/// Opens web's detail view on the alerts tab with two rules, the first
/// firing, and one silence.
fn alerts_tab() -> App {
    let mut app = app_with(false);
    press(&mut app, "G enter 4");
    let key = DeploymentKey::new("web", "staging");
    let send = |app: &mut App, data| {
        app.apply(Action::Detail {
            key: key.clone(),
            data,
        })
    };
    send(
        &mut app,
        DetailData::AlertRules(vec![rule("high-cpu"), rule("slow")]),
    );
    send(&mut app, DetailData::Alerts(vec![firing("high-cpu")]));
    send(
        &mut app,
        DetailData::Silences(vec![SilenceView {
            deployment: "web".to_owned(),
            environment: "staging".to_owned(),
            silence: Silence {
                id: "s1".to_owned(),
                target: SilenceTarget::Rule("slow".to_owned()),
                until: NOW + time::Duration::hours(1),
                comment: "noisy".to_owned(),
                author: "dana".to_owned(),
            },
        }]),
    );
    app
}

#[test]
fn silence_form_defaults_to_an_hour() {
    let mut app = alerts_tab();
    press(&mut app, "z");
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("no form: {:?}", app.layers.last());
    };
    assert_eq!(form.fields[0].text(), "1h");
    press(&mut app, "tab");
    type_text(&mut app, "deploying the fix");
    let sent = executed(&press(&mut app, "enter"));
    assert_eq!(
        sent,
        vec![Operation::Silence(Box::new(SilenceRequest {
            key: DeploymentKey::new("web", "staging"),
            rule: "high-cpu".to_owned(),
            duration: "1h".to_owned(),
            comment: "deploying the fix".to_owned(),
        }))]
    );
}

#[test]
fn silence_form_rejects_bad_duration() {
    let mut app = alerts_tab();
    press(&mut app, "z ctrl-u");
    type_text(&mut app, "soon");
    assert!(executed(&press(&mut app, "enter")).is_empty());
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("the form stays open");
    };
    assert!(form
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("invalid duration `soon`"));
    press(&mut app, "ctrl-u");
    type_text(&mut app, "30m");
    let sent = executed(&press(&mut app, "enter"));
    let [Operation::Silence(request)] = sent.as_slice() else {
        panic!("expected a silence: {sent:?}");
    };
    assert_eq!(request.comment, DEFAULT_SILENCE_COMMENT);
}

#[test]
fn acknowledge_only_a_firing_rule() {
    let mut app = alerts_tab();
    let sent = executed(&press(&mut app, "A"));
    assert_eq!(
        sent,
        vec![Operation::Acknowledge {
            key: DeploymentKey::new("web", "staging"),
            rule: "high-cpu".to_owned(),
        }]
    );
    // The second rule is not firing.
    assert!(executed(&press(&mut app, "j A")).is_empty());
    let toast = &app.toasts.iter().last().unwrap().message;
    assert!(toast.contains("slow is not firing"), "{toast}");
}

#[test]
fn end_silence_of_rule_or_row() {
    let mut app = alerts_tab();
    // high-cpu has no silence; slow has s1; the third row is s1 itself.
    assert!(executed(&press(&mut app, "Z")).is_empty());
    let expected = vec![Operation::EndSilence {
        key: DeploymentKey::new("web", "staging"),
        id: "s1".to_owned(),
    }];
    assert_eq!(executed(&press(&mut app, "j Z")), expected);
    assert_eq!(executed(&press(&mut app, "j Z")), expected);
    let detail = app.detail.as_ref().unwrap();
    assert_eq!(detail.alerts_cursor, 2);
    assert!(detail.selected_alerts_row().is_some());
}

#[test]
fn alert_keys_need_the_alerts_tab() {
    let mut app = alerts_tab();
    press(&mut app, "1");
    assert!(executed(&press(&mut app, "A")).is_empty());
    assert!(!matches!(app.layers.last(), Some(Layer::Form(_))));
    press(&mut app, "z");
    assert!(!matches!(app.layers.last(), Some(Layer::Form(_))));
}

#[test]
fn restart_all_from_table_confirms() {
    let mut app = app_with(false);
    // Sorted by name: api (production) first, then web (staging).
    press(&mut app, "G X");
    let Some(Layer::Confirm(dialog)) = app.layers.last() else {
        panic!("no confirmation: {:?}", app.layers.last());
    };
    assert!(
        dialog
            .message
            .starts_with("Restart web (staging): all 2 replicas"),
        "{}",
        dialog.message
    );
    let sent = executed(&press(&mut app, "y"));
    assert_eq!(
        sent,
        vec![Operation::Restart {
            key: DeploymentKey::new("web", "staging"),
            replica: None,
        }]
    );
}

#[test]
fn restart_selected_replica_in_production() {
    let mut app = app_with(false);
    press(&mut app, "g enter");
    let mut view = view("api", "production", DeploymentStatus::Deployed);
    view.replica_details = (0..3)
        .map(|index| ReplicaView {
            index,
            revision: 1,
            pid: Some(100 + index),
            port: None,
            state: ReplicaState::Ready,
            ready: true,
            restarts: 0,
            last_exit: None,
            started_at: None,
            container: None,
            container_health: None,
        })
        .collect();
    app.apply(Action::Detail {
        key: DeploymentKey::new("api", "production"),
        data: DetailData::Deployment(Box::new(view)),
    });
    press(&mut app, "j j");
    press(&mut app, "X");
    let Some(Layer::Confirm(dialog)) = app.layers.last() else {
        panic!("no confirmation: {:?}", app.layers.last());
    };
    assert!(
        dialog
            .message
            .starts_with("Restart replica 2 of api (production)"),
        "{}",
        dialog.message
    );
    assert!(
        executed(&press(&mut app, "enter")).is_empty(),
        "the name is needed"
    );
    type_text(&mut app, "api");
    let sent = executed(&press(&mut app, "enter"));
    assert_eq!(
        sent,
        vec![Operation::Restart {
            key: DeploymentKey::new("api", "production"),
            replica: Some(2),
        }]
    );
}

#[test]
fn palette_runs_alert_and_restart_commands() {
    let mut app = app_with(false);
    let run = |app: &mut App, line: &str| {
        press(app, ":");
        type_text(app, line);
        press(app, "enter")
    };
    let sent = executed(&run(&mut app, "silence web high-cpu 2h deploying"));
    assert_eq!(
        sent,
        vec![Operation::Silence(Box::new(SilenceRequest {
            key: DeploymentKey::new("web", "staging"),
            rule: "high-cpu".to_owned(),
            duration: "2h".to_owned(),
            comment: "deploying".to_owned(),
        }))]
    );
    let sent = executed(&run(&mut app, "ack web high-cpu"));
    assert_eq!(
        sent,
        vec![Operation::Acknowledge {
            key: DeploymentKey::new("web", "staging"),
            rule: "high-cpu".to_owned(),
        }]
    );
    run(&mut app, "restart web 1");
    let sent = executed(&press(&mut app, "y"));
    assert_eq!(
        sent,
        vec![Operation::Restart {
            key: DeploymentKey::new("web", "staging"),
            replica: Some(1),
        }]
    );
}

#[test]
fn read_only_rejects_new_commands() {
    let mut app = app_with(true);
    for keys in ["X", "N", "e"] {
        let effects = press(&mut app, keys);
        assert!(executed(&effects).is_empty(), "{keys}");
        assert_eq!(app.layers.last(), None, "{keys}");
    }
    let mut app = alerts_tab();
    app.read_only = true;
    for keys in ["z", "Z", "A", "X"] {
        let effects = press(&mut app, keys);
        assert!(executed(&effects).is_empty(), "{keys}");
        assert_eq!(app.layers.last(), None, "{keys}");
    }
}

#[test]
fn help_lists_new_keys_unless_read_only() {
    let keymap = Keymap::default();
    let listed = |context, read_only| -> Vec<Command> {
        help_lines(&keymap, context, read_only)
            .into_iter()
            .filter_map(|line| match line {
                super::super::HelpLine::Binding(binding) => Some(binding.command),
                _ => None,
            })
            .collect()
    };
    let deployments = listed(crate::tui::keymap::Context::Deployments, false);
    for command in [
        Command::NewManifest,
        Command::EditManifest,
        Command::Restart,
        Command::OpenSecrets,
    ] {
        assert!(deployments.contains(&command), "{command}");
    }
    let detail = listed(crate::tui::keymap::Context::Detail, false);
    for command in [
        Command::SilenceRule,
        Command::EndSilence,
        Command::Acknowledge,
    ] {
        assert!(detail.contains(&command), "{command}");
    }
    let read_only = listed(crate::tui::keymap::Context::Deployments, true);
    assert!(!read_only.contains(&Command::NewManifest));
    assert!(read_only.contains(&Command::OpenSecrets));
    let secrets = listed(crate::tui::keymap::Context::Secrets, true);
    assert!(!secrets.contains(&Command::AddSecret));
    let editor = listed(crate::tui::keymap::Context::Editor, false);
    assert!(editor.contains(&Command::SendManifest));
    assert!(
        !editor.contains(&Command::Quit),
        "global keys do not apply in the editor"
    );
}

#[test]
fn history_tab_rolls_back_to_selected() {
    let mut app = app_with(false);
    press(&mut app, "G enter 3");
    let history = (1..=3)
        .rev()
        .map(|revision| crate::model::HistoryEntry {
            revision,
            version: format!("1.{revision}.0"),
            status: crate::model::RevisionStatus::Superseded,
            created_at: NOW,
            reason: "deploy".to_owned(),
        })
        .collect();
    app.apply(Action::Detail {
        key: DeploymentKey::new("web", "staging"),
        data: DetailData::History(history),
    });

    // Newest first: j moves from revision 3 to revision 2.
    press(&mut app, "j r");
    let effects = press(&mut app, "y");
    assert_eq!(
        executed(&effects),
        [Operation::Rollback {
            key: DeploymentKey::new("web", "staging"),
            to_revision: Some(2),
        }]
    );
}

#[test]
fn add_secret_rejects_existing_name() {
    let mut app = app_with(false);
    open_secrets(&mut app);
    press(&mut app, "n");
    type_text(&mut app, "api_token");
    press(&mut app, "tab");
    type_text(&mut app, "x");
    assert!(requests(&press(&mut app, "enter")).is_empty());
    let Some(Layer::Form(form)) = app.layers.last() else {
        panic!("the form stays open");
    };
    let error = form.error.as_deref().unwrap_or_default();
    assert!(error.contains("api_token exists"), "{error}");
    assert!(error.contains("press e"), "{error}");
}
