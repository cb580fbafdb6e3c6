//! Snapshots of the manifest editor, the secrets view and the forms and
//! questions they open, with CJK names, a long error and an escape-laden
//! name.

use crate::config::SecretInfo;
use crate::model::ManifestSource;
use crate::tui::action::SecretsReadError;
use crate::tui::app::{DetailData, Layer};

use super::*;

const CJK: &str = "ウェブショップ";

fn type_text(app: &mut App, text: &str) {
    for character in text.chars() {
        if character == '\n' {
            press(app, "enter");
        } else {
            app.apply(Action::Key(KeyPress::char(character)));
        }
    }
}

/// Selects the CJK deployment, which the filter leaves alone in the table.
fn select_cjk(app: &mut App) {
    press(app, "/");
    type_text(app, CJK);
    press(app, "enter");
}

fn cjk_manifest() -> String {
    format!(
        "name: {CJK}\nversion: \"2.0\"\nenvironment: staging\nrun:\n  command: [\"python3\", \"-m\", \"http.server\", \"${{PORT}}\"]\nreplicas: 2\nports:\n  - {{ name: http, containerPort: 8080 }}\nenv:\n  GREETING: こんにちは\n  TOKEN: ${{SECRET:api_token}}\n"
    )
}

/// Opens the editor on `name` in staging with a manifest of that name.
fn editing(width: u16, height: u16, name: &str) -> App {
    let mut app = watching(width, height);
    press(&mut app, "/");
    type_text(&mut app, name);
    press(&mut app, "enter e");
    app.apply(Action::ManifestLoaded {
        key: DeploymentKey::new(name, "staging"),
        result: Ok(Box::new(ManifestSource {
            name: name.to_owned(),
            environment: "staging".to_owned(),
            revision: 3,
            text: cjk_manifest().replace(CJK, name),
        })),
    });
    app
}

fn editing_cjk(width: u16, height: u16) -> App {
    editing(width, height, CJK)
}

#[test]
fn editor_new_manifest() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "N");
        snapshot("editor_new", &app, width, height);
    }
}

#[test]
fn editor_loading() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        select_cjk(&mut app);
        press(&mut app, "e");
        snapshot("editor_loading", &app, width, height);
    }
}

#[test]
fn editor_problem_marked() {
    for (width, height) in SIZES {
        let mut app = editing_cjk(width, height);
        // The port on line 8 becomes a word; the error names line and column.
        press(&mut app, "down down down down down down down end left left");
        press(&mut app, "backspace backspace backspace backspace");
        type_text(&mut app, "http-alt-port-that-is-not-a-number");
        press(&mut app, "ctrl-o");
        snapshot("editor_problem", &app, width, height);
    }
}

#[test]
fn editor_agent_error() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "N ctrl-o y");
        let operation = match app.layers.last() {
            Some(Layer::Editor) => crate::tui::action::Operation::Deploy {
                key: DeploymentKey::new("web", "development"),
                manifest: crate::tui::app::NEW_MANIFEST.to_owned(),
            },
            other => panic!("the editor waits: {other:?}"),
        };
        let long = format!(
            "manifest:7:5: ports[0].hostPort: host port 18080 is in use by another process; {}stop it or choose another hostPort \u{1b}[31mred\u{1b}[0m",
            "the agent tried to bind it for the stable endpoint of web and the kernel refused the address; ".repeat(3)
        );
        app.apply(Action::OperationFinished {
            operation,
            result: Err(long),
        });
        snapshot("editor_agent_error", &app, width, height);
    }
}

#[test]
fn editor_confirm_summary() {
    for (width, height) in SIZES {
        // A CJK name is no DNS-1123 label, so the manifest keeps `web`;
        // its env value stays CJK.
        let mut app = editing(width, height, "web");
        press(&mut app, "down down down down down end backspace");
        type_text(&mut app, "4");
        press(&mut app, "down down down down end");
        type_text(&mut app, "\n  MODE: fast");
        press(&mut app, "ctrl-o");
        snapshot("editor_confirm", &app, width, height);
    }
}

#[test]
fn editor_discard_question() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "N");
        type_text(&mut app, "# 変更");
        press(&mut app, "esc");
        snapshot("editor_discard", &app, width, height);
    }
}

#[test]
fn editor_help() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "N f1");
        snapshot("editor_help", &app, width, height);
    }
}

fn secrets() -> Vec<SecretInfo> {
    let at = |minutes: i64| NOW - time::Duration::minutes(minutes);
    vec![
        SecretInfo {
            name: "api_token".to_owned(),
            updated_at: at(5),
        },
        SecretInfo {
            name: "database_url".to_owned(),
            updated_at: at(60 * 30),
        },
        SecretInfo {
            name: format!("{CJK}_鍵"),
            updated_at: at(60 * 24 * 12),
        },
        SecretInfo {
            name: "evil\u{1b}[2Jname".to_owned(),
            updated_at: at(1),
        },
    ]
}

fn secrets_view(width: u16, height: u16) -> App {
    let mut app = watching(width, height);
    press(&mut app, "S");
    app.apply(Action::Secrets(Ok(secrets())));
    app
}

#[test]
fn secrets_list() {
    for (width, height) in SIZES {
        let mut app = secrets_view(width, height);
        press(&mut app, "j");
        snapshot("secrets", &app, width, height);
    }
}

#[test]
fn secrets_empty_and_read_only() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        app.read_only = true;
        press(&mut app, "S");
        app.apply(Action::Secrets(Ok(Vec::new())));
        snapshot("secrets_empty_read_only", &app, width, height);
    }
}

#[test]
fn secrets_locked() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "S");
        app.apply(Action::Secrets(Err(SecretsReadError::Locked(
            "cannot unlock the secret vault: the master key or passphrase is not the one the vault was created with; start the agent with that key or passphrase".to_owned(),
        ))));
        snapshot("secrets_locked", &app, width, height);
    }
}

#[test]
fn secret_form_masks_value() {
    for (width, height) in SIZES {
        let mut app = secrets_view(width, height);
        press(&mut app, "n");
        type_text(&mut app, "smtp_password");
        press(&mut app, "tab");
        type_text(&mut app, "correct horse 電池");
        let terminal = render(&app, width, height);
        let screen = format!("{:?}", terminal.backend());
        assert!(!screen.contains("horse"), "the value is drawn");
        snapshot("secret_form", &app, width, height);
    }
}

#[test]
fn secret_form_invalid_name() {
    for (width, height) in SIZES {
        let mut app = secrets_view(width, height);
        press(&mut app, "n");
        type_text(&mut app, "鍵 with spaces");
        press(&mut app, "tab");
        type_text(&mut app, "x");
        press(&mut app, "enter");
        snapshot("secret_form_invalid", &app, width, height);
    }
}

#[test]
fn secret_delete_question() {
    for (width, height) in SIZES {
        let mut app = secrets_view(width, height);
        press(&mut app, "G k D");
        snapshot("secret_delete", &app, width, height);
    }
}

fn alerts_tab(width: u16, height: u16) -> App {
    let mut app = watching(width, height);
    select_cjk(&mut app);
    press(&mut app, "enter 4");
    let key = DeploymentKey::new(CJK, "staging");
    let spec = serde_json::json!({
        "name": "高負荷", "metric": "cpu_percentage", "condition": "gt", "threshold": 80.0,
    });
    let rule = crate::model::AlertRuleView {
        deployment: CJK.to_owned(),
        environment: "staging".to_owned(),
        source: crate::model::AlertRuleSource::Manifest,
        active: true,
        rule: serde_json::from_value(spec).unwrap(),
    };
    app.apply(Action::Detail {
        key: key.clone(),
        data: DetailData::AlertRules(vec![rule]),
    });
    app.apply(Action::Detail {
        key,
        data: DetailData::Alerts(vec![alert(CJK, "staging", "高負荷", 5)]),
    });
    app
}

#[test]
fn silence_form() {
    for (width, height) in SIZES {
        let mut app = alerts_tab(width, height);
        press(&mut app, "z tab");
        type_text(&mut app, "メンテナンス window");
        snapshot("silence_form", &app, width, height);
    }
}

#[test]
fn silence_form_invalid_duration() {
    for (width, height) in SIZES {
        let mut app = alerts_tab(width, height);
        press(&mut app, "z ctrl-u");
        type_text(&mut app, "forever and a day");
        press(&mut app, "enter");
        snapshot("silence_form_invalid", &app, width, height);
    }
}

#[test]
fn restart_confirm_in_production() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, ":");
        type_text(&mut app, "restart api");
        press(&mut app, "enter");
        snapshot("restart_confirm", &app, width, height);
    }
}
