//! Every part of the screen rendered into ratatui's `TestBackend` from
//! fixed data and compared with the snapshots in `snapshots/`. Run with
//! `INSTA_UPDATE=always cargo test tui::view` to accept a deliberate
//! change, and review the diff of the `.snap` files before committing.

use std::sync::Arc;

use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use time::macros::datetime;
use time::OffsetDateTime;

use crate::manifest::BackendKind;
use crate::model::{
    DeploymentKey, DeploymentStatus, DeploymentView, Health, PointView, ReplicaCounts, SeriesView,
};
use crate::monitor::alerts::{Acknowledgement, AlertState, AlertView};
use crate::tui::action::{Action, AgentInfo, KeyPress};
use crate::tui::app::{App, AppOptions, ManualClock, ToastLevel};
use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;

const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

fn deployment(
    name: &str,
    environment: &str,
    status: DeploymentStatus,
    age_minutes: i64,
) -> DeploymentView {
    DeploymentView {
        id: format!("id-{name}-{environment}"),
        name: name.to_owned(),
        environment: environment.to_owned(),
        backend: BackendKind::Process,
        status,
        status_reason: None,
        health: match status {
            DeploymentStatus::Deployed => Health::Healthy,
            DeploymentStatus::Failed | DeploymentStatus::Degraded => Health::Unhealthy,
            _ => Health::Unknown,
        },
        version: "1.4.0".to_owned(),
        revision: 3,
        replicas: ReplicaCounts {
            desired: 2,
            ready: if status == DeploymentStatus::Deployed {
                2
            } else {
                1
            },
        },
        autoscaling: None,
        endpoints: Vec::new(),
        tags: vec!["shop".to_owned()],
        replica_details: Vec::new(),
        metrics_unavailable: None,
        created_at: NOW - time::Duration::minutes(age_minutes),
        updated_at: NOW,
    }
}

/// Builds a fleet with the hard cases: CJK, emoji, an escape-laden name, a bidi
/// override, production and every common status.
fn fleet() -> Vec<DeploymentView> {
    let mut docker = deployment("api", "production", DeploymentStatus::Deployed, 60 * 30);
    docker.backend = BackendKind::Docker;
    docker.version = "2.0.0-rc.1+build.5".to_owned();
    docker.revision = 12;
    vec![
        deployment("web", "staging", DeploymentStatus::Deployed, 5),
        docker,
        deployment("worker", "development", DeploymentStatus::Degraded, 90),
        deployment("ウェブショップ", "staging", DeploymentStatus::Deploying, 0),
        deployment(
            "🚀-launch-pad",
            "production",
            DeploymentStatus::Failed,
            60 * 24 * 3,
        ),
        deployment(
            "evil\u{1b}[2J\u{1b}]0;owned\u{7}name",
            "staging",
            DeploymentStatus::Pending,
            2,
        ),
        deployment(
            "gnp.\u{202e}exe",
            "staging",
            DeploymentStatus::Undeploying,
            60 * 24 * 40,
        ),
    ]
}

fn cpu_series(values: &[Option<f64>]) -> Vec<SeriesView> {
    let points = |values: &[Option<f64>]| -> Vec<PointView> {
        values
            .iter()
            .enumerate()
            .map(|(index, value)| PointView {
                time: NOW - time::Duration::seconds(10 * (values.len() - index) as i64),
                value: *value,
                sum: None,
                min: None,
                max: None,
            })
            .collect()
    };
    vec![
        SeriesView {
            name: "cpu_percentage".to_owned(),
            step_ms: 10_000,
            points: points(values),
        },
        SeriesView {
            name: "memory_usage".to_owned(),
            step_ms: 10_000,
            points: points(&[Some(96.0 * 1024.0 * 1024.0)]),
        },
        SeriesView {
            name: "requests_per_second".to_owned(),
            step_ms: 10_000,
            points: points(&[Some(12.5)]),
        },
    ]
}

fn alert(deployment: &str, environment: &str, rule: &str, minutes_ago: i64) -> AlertView {
    let since = NOW - time::Duration::minutes(minutes_ago);
    AlertView {
        deployment: deployment.to_owned(),
        environment: environment.to_owned(),
        rule: rule.to_owned(),
        silenced: false,
        silenced_until: None,
        state: AlertState::Firing {
            since,
            last_sample: NOW,
            last_notified: Some(since),
            muted: false,
            acknowledged: None,
        },
    }
}

fn alerts() -> Vec<AlertView> {
    let mut acknowledged = alert("api", "production", "latency-p95", 42);
    if let AlertState::Firing {
        acknowledged: ack, ..
    } = &mut acknowledged.state
    {
        *ack = Some(Acknowledgement {
            author: "dana".to_owned(),
            at: NOW,
        });
    }
    let mut silenced = alert("worker", "development", "queue-depth", 3);
    silenced.silenced = true;
    vec![
        alert("🚀-launch-pad", "production", "high-cpu", 1),
        acknowledged,
        silenced,
        AlertView {
            state: AlertState::Inactive,
            ..alert("web", "staging", "errors", 0)
        },
    ]
}

fn new_app(width: u16, height: u16) -> App {
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::default(),
            read_only: false,
            socket: "/home/op/.local/share/shipdeck/run/agent.sock".to_owned(),
        },
        Arc::new(ManualClock::at(NOW)),
    );
    app.apply(Action::Resize { width, height });
    app
}

/// Builds an app connected to an agent, with the fleet, alerts and some
/// metrics.
fn watching(width: u16, height: u16) -> App {
    let mut app = new_app(width, height);
    app.apply(Action::ConnectionRestored);
    app.apply(Action::AgentInfo(AgentInfo {
        socket: "/home/op/.local/share/shipdeck/run/agent.sock".to_owned(),
        home: "/home/op/.local/share/shipdeck".to_owned(),
        version: "0.1.0".to_owned(),
        pid: 4242,
    }));
    app.apply(Action::Deployments(fleet()));
    app.apply(Action::Alerts(alerts()));
    let rising: Vec<Option<f64>> = (0..30).map(|step| Some(f64::from(step) * 3.0)).collect();
    app.apply(Action::Metrics {
        key: DeploymentKey::new("web", "staging"),
        series: cpu_series(&rising),
    });
    let gappy = [Some(20.0), None, Some(45.5), Some(60.0), None, Some(10.0)];
    app.apply(Action::Metrics {
        key: DeploymentKey::new("api", "production"),
        series: cpu_series(&gappy),
    });
    app
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| super::draw(frame, app, &Theme::dark()))
        .unwrap();
    terminal
}

fn snapshot(name: &str, app: &App, width: u16, height: u16) {
    let terminal = render(app, width, height);
    insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend());
}

fn press(app: &mut App, keys: &str) {
    for key in keys.split(' ') {
        app.apply(Action::Key(crate::tui::keymap::parse_key(key).unwrap()));
    }
}

#[test]
fn deployments_view() {
    for (width, height) in SIZES {
        snapshot("deployments", &watching(width, height), width, height);
    }
}

/// Two rows autoscale: the table gains a column with their ranges, and
/// at 80 columns it takes the place of the age.
#[test]
fn deployments_show_autoscale_column() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        let mut listed = fleet();
        listed[0].autoscaling = Some(crate::model::ReplicaRange { min: 1, max: 5 });
        listed[1].autoscaling = Some(crate::model::ReplicaRange {
            min: 100,
            max: 1000,
        });
        app.apply(Action::Deployments(listed));
        snapshot("deployments_autoscaled", &app, width, height);
    }
}

#[test]
fn deployments_without_any() {
    for (width, height) in SIZES {
        let mut app = new_app(width, height);
        app.apply(Action::ConnectionRestored);
        app.apply(Action::Deployments(Vec::new()));
        app.apply(Action::Alerts(Vec::new()));
        snapshot("empty", &app, width, height);
    }
}

#[test]
fn deployments_thousand_scrolled() {
    let fleet: Vec<DeploymentView> = (0..1000)
        .map(|index| {
            let status = DeploymentStatus::ALL[index % DeploymentStatus::ALL.len()];
            deployment(&format!("svc-{index:04}"), "staging", status, index as i64)
        })
        .collect();
    for (width, height) in SIZES {
        let mut app = new_app(width, height);
        app.apply(Action::ConnectionRestored);
        app.apply(Action::Deployments(fleet.clone()));
        app.apply(Action::Alerts(Vec::new()));
        press(&mut app, "pagedown pagedown j j o o");
        snapshot("thousand", &app, width, height);
    }
}

#[test]
fn alerts_pane() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "a tab");
        snapshot("alerts", &app, width, height);
    }
}

#[test]
fn help_popup() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "?");
        snapshot("help", &app, width, height);
    }
}

#[test]
fn filter_being_typed() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "/");
        for character in "env:production status:nope".chars() {
            app.apply(Action::Key(KeyPress::char(character)));
        }
        snapshot("filter", &app, width, height);
    }
}

#[test]
fn connection_lost_banner() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        app.apply(Action::ConnectionLost {
            reason: "cannot reach the agent at /run/agent.sock: Connection refused (os error 111)"
                .to_owned(),
        });
        snapshot("disconnected", &app, width, height);
    }
}

#[test]
fn toasts_stack() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        let mut changed = fleet();
        changed[0].status = DeploymentStatus::Failed;
        app.apply(Action::Deployments(changed));
        app.toast(
            ToastLevel::Info,
            "ウェブ \u{1b}[31mred\u{1b}[0m 🚀".to_owned(),
        );
        snapshot("toasts", &app, width, height);
    }
}

#[test]
fn long_toast_wraps() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        app.toast(
            ToastLevel::Error,
            "rollback of web (staging) failed: no earlier revision with a different spec was \
             healthy; choose one in the history tab (6) and press r to roll back to it"
                .to_owned(),
        );
        snapshot("long_toast", &app, width, height);
    }
}

#[test]
fn too_small_message() {
    let app = watching(59, 14);
    snapshot("too_small", &app, 59, 14);
    let app = watching(20, 5);
    snapshot("too_small", &app, 20, 5);
}

#[test]
fn degenerate_sizes_do_not_panic() {
    for (width, height) in [(0, 0), (1, 1), (0, 24), (80, 0), (60, 15), (61, 16)] {
        let mut app = watching(width, height);
        press(&mut app, "? j G esc a tab / x");
        render(&app, width, height);
    }
}

#[test]
fn escapes_never_reach_the_buffer() {
    let terminal = render(&watching(200, 50), 200, 50);
    for cell in terminal.backend().buffer().content() {
        let symbol = cell.symbol();
        assert!(
            !symbol.chars().any(|character| character.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&character)),
            "control character {symbol:?} in the buffer"
        );
    }
}

#[test]
fn colours_follow_meaning() {
    let app = watching(200, 50);
    let terminal = render(&app, 200, 50);
    let buffer = terminal.backend().buffer();
    let find = |text: &str| -> (u16, u16) {
        for y in 0..buffer.area.height {
            let line: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_owned())
                .collect();
            if let Some(column) = line.find(text) {
                let x = line[..column].chars().count();
                return (u16::try_from(x).unwrap(), y);
            }
        }
        panic!("{text} is not on screen");
    };
    let theme = Theme::dark();
    let (x, y) = find("production  process");
    assert_eq!(
        buffer[(x, y)].fg,
        theme.warning.fg.unwrap(),
        "production in the warning colour"
    );
    let (x, y) = find("failed");
    assert_eq!(buffer[(x, y)].fg, theme.error.fg.unwrap());
    let (x, y) = find("degraded");
    assert_eq!(buffer[(x, y)].fg, Color::Yellow);
}

#[test]
fn no_color_theme_draws_without_colours() {
    let app = watching(80, 24);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let theme = Theme::dark().monochrome();
    terminal
        .draw(|frame| super::draw(frame, &app, &theme))
        .unwrap();
    for cell in terminal.backend().buffer().content() {
        assert_eq!(cell.fg, Color::Reset);
        assert_eq!(cell.bg, Color::Reset);
    }
}
mod detail;
mod features;

#[test]
fn confirm_dialog() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        // Sorted by name, the fourth row is web in staging, with 2 replicas.
        press(&mut app, "g j j j -");
        snapshot("confirm", &app, width, height);
    }
}

#[test]
fn confirm_dialog_in_production() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, ": u n d e p l o y space a p i enter");
        for character in "apx".chars() {
            app.apply(Action::Key(KeyPress::char(character)));
        }
        press(&mut app, "enter");
        snapshot("confirm_production", &app, width, height);
    }
}

#[test]
fn scale_input() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, "g s 1 2 x enter");
        snapshot("scale_input", &app, width, height);
    }
}

#[test]
fn command_palette() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        press(&mut app, ": r o l l b a c k space w e b space t w o enter");
        snapshot("palette", &app, width, height);
    }
}

#[test]
fn help_popup_read_only() {
    for (width, height) in SIZES {
        let mut app = watching(width, height);
        app.read_only = true;
        press(&mut app, "?");
        snapshot("help_read_only", &app, width, height);
    }
}
