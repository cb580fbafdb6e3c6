//! Snapshots of every detail tab, with the hard cases: CJK and emoji,
//! escape sequences in messages, empty lists and long ones.

use crate::model::{AlertRuleSource, AlertRuleView};
use crate::model::{
    ContainerHealth, DeploymentView, Event, EventOutcome, HealthCheckView, HealthView,
    HistoryEntry, ReplicaState, ReplicaView, Revision, RevisionStatus,
};
use crate::monitor::alerts::{Silence, SilenceTarget, SilenceView};
use crate::tui::app::{DetailData, MetricsWindow};

use super::*;

const CJK: &str = "ウェブショップ";

fn key() -> DeploymentKey {
    DeploymentKey::new(CJK, "staging")
}

fn detail_view() -> DeploymentView {
    let mut view = deployment(CJK, "staging", DeploymentStatus::Deployed, 30);
    view.revision = 3;
    view.endpoints = vec!["http://127.0.0.1:41001".to_owned()];
    view.replica_details = vec![
        replica(0, ReplicaState::Ready, None),
        replica(
            1,
            ReplicaState::Ready,
            Some("exit code 1 \u{1b}[31m(restarted)\u{1b}[0m"),
        ),
        replica(2, ReplicaState::Starting, Some("signal 9 (SIGKILL) 🚀")),
    ];
    view
}

fn replica(index: u32, state: ReplicaState, last_exit: Option<&str>) -> ReplicaView {
    ReplicaView {
        index,
        revision: 3,
        pid: Some(31_000 + index),
        port: Some(41_001 + u16::try_from(index).unwrap()),
        state,
        ready: state == ReplicaState::Ready,
        restarts: index * 2,
        last_exit: last_exit.map(str::to_owned),
        started_at: Some(NOW),
        container: None,
        container_health: None,
    }
}

fn health() -> HealthView {
    HealthView {
        status: Health::Healthy,
        checks: vec![
            HealthCheckView {
                name: "http /healthz".to_owned(),
                status: Health::Healthy,
                message: "200 OK in 3 ms".to_owned(),
            },
            HealthCheckView {
                name: "liveness".to_owned(),
                status: Health::Unhealthy,
                message: "connection refused\u{1b}]0;pwned\u{7}".to_owned(),
            },
        ],
        last_checked: Some(NOW),
    }
}

fn event(seq: u64, action: &str, message: &str) -> Event {
    Event {
        seq,
        time: NOW - time::Duration::seconds(i64::try_from(seq).unwrap() * 37),
        deployment: Some(key()),
        user: if seq.is_multiple_of(3) {
            "agent"
        } else {
            "操作員"
        }
        .to_owned(),
        action: action.to_owned(),
        outcome: if seq % 5 == 4 {
            EventOutcome::Error
        } else {
            EventOutcome::Ok
        },
        message: message.to_owned(),
    }
}

fn events(count: u64) -> Vec<Event> {
    (0..count)
        .map(|seq| match seq % 4 {
            0 => event(seq, "scale", "scaled to 3 replicas: load 🚀"),
            1 => event(
                seq,
                "restart",
                "replica 1 exited with code 137\u{1b}[2J\u{1b}[H",
            ),
            2 => event(seq, "deploy", "revision 3 of ウェブショップ deployed"),
            _ => event(seq, "health", "unhealthy → healthy"),
        })
        .collect()
}

fn revision(number: u64, replicas: u32, image: &str) -> Revision {
    let yaml = format!(
        "name: shop\nenvironment: staging\nbackend: docker\nimage: {image}\nreplicas: {replicas}\nports:\n  - name: http\n    containerPort: 8080\nresources:\n  limits:\n    cpu: 500m\n    memory: 256Mi\nenv:\n  API_TOKEN: ${{SECRET:api-token}}\n  GREETING: こんにちは\n"
    );
    Revision {
        deployment_id: "id-shop".to_owned(),
        revision: number,
        version: format!("1.{number}.0"),
        status: RevisionStatus::Superseded,
        reason: "deploy".to_owned(),
        created_at: NOW,
        spec: crate::manifest::parse(&yaml, "fixture", &[]).unwrap(),
        submitted: None,
    }
}

fn history(count: u64) -> Vec<HistoryEntry> {
    (1..=count)
        .rev()
        .map(|revision| HistoryEntry {
            revision,
            version: format!("1.{revision}.0"),
            status: match revision {
                r if r == count => RevisionStatus::Deployed,
                r if r % 4 == 0 => RevisionStatus::Failed,
                _ => RevisionStatus::Superseded,
            },
            created_at: NOW - time::Duration::hours(i64::try_from(count - revision).unwrap()),
            reason: if revision % 4 == 0 {
                "health check failed: \u{1b}[31mtimeout\u{1b}[0m 🚨".to_owned()
            } else {
                format!("rollback to {}", revision.saturating_sub(1))
            },
        })
        .collect()
}

/// Builds the app with the detail view of the CJK deployment open.
fn opened(width: u16, height: u16) -> App {
    let mut app = watching(width, height);
    // The filter leaves one row, so Enter opens it at any size.
    press(&mut app, "/");
    for character in CJK.chars() {
        app.apply(Action::Key(KeyPress::char(character)));
    }
    press(&mut app, "enter enter");
    assert_eq!(
        app.detail.as_ref().map(|detail| detail.key.clone()),
        Some(key())
    );
    app
}

fn send(app: &mut App, data: DetailData) {
    app.apply(Action::Detail { key: key(), data });
}

fn series(name: &str, values: &[Option<f64>]) -> SeriesView {
    let mut view = cpu_series(values).remove(0);
    view.name = name.to_owned();
    view
}

#[test]
fn detail_overview() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        send(&mut app, DetailData::Deployment(Box::new(detail_view())));
        send(&mut app, DetailData::Health(health()));
        send(&mut app, DetailData::RecentEvents(events(20)));
        send(
            &mut app,
            DetailData::Revision(Box::new(revision(3, 3, "shop:1.3"))),
        );
        snapshot("detail_overview", &app, width, height);
    }
}

#[test]
fn detail_overview_containers() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        let mut view = detail_view();
        let states = [
            Some(ContainerHealth::Healthy),
            Some(ContainerHealth::Unhealthy),
            None,
        ];
        for (replica, health) in view.replica_details.iter_mut().zip(states) {
            replica.container = Some(format!("{:064x}", replica.index + 0xc0ffee));
            replica.container_health = health;
        }
        send(&mut app, DetailData::Deployment(Box::new(view)));
        send(&mut app, DetailData::Health(health()));
        send(&mut app, DetailData::RecentEvents(events(3)));
        snapshot("detail_overview_containers", &app, width, height);
    }
}

#[test]
fn detail_overview_loading_and_empty() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        let mut view = detail_view();
        view.replica_details.clear();
        send(&mut app, DetailData::Deployment(Box::new(view)));
        send(&mut app, DetailData::RecentEvents(Vec::new()));
        snapshot("detail_overview_empty", &app, width, height);
    }
}

#[test]
fn detail_metrics() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "2");
        let rising: Vec<Option<f64>> = (0..30).map(|step| Some(f64::from(step) * 3.0)).collect();
        let gappy: Vec<Option<f64>> = (0..30)
            .map(|step| (step % 7 > 1).then(|| f64::from(step % 5) * 1024.0 * 300.0))
            .collect();
        send(
            &mut app,
            DetailData::Metrics {
                window: MetricsWindow::FiveMinutes,
                series: vec![
                    series("cpu_percentage", &rising),
                    series("memory_usage", &[Some(96.0 * 1024.0 * 1024.0); 30]),
                    series("network_bytes_in", &gappy),
                    series("network_bytes_out", &[None; 30]),
                    series(
                        "requests_per_second",
                        &[Some(0.0), None, Some(12.5), Some(3.0)],
                    ),
                ],
            },
        );
        snapshot("detail_metrics", &app, width, height);
    }
}

#[test]
fn detail_metrics_unavailable() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "2");
        let mut view = detail_view();
        view.backend = crate::manifest::BackendKind::Kubernetes;
        view.metrics_unavailable = Some(
            "the cluster does not serve metrics.k8s.io; install metrics-server\u{1b}[2J".to_owned(),
        );
        send(&mut app, DetailData::Deployment(Box::new(view)));
        send(
            &mut app,
            DetailData::Metrics {
                window: MetricsWindow::FiveMinutes,
                series: Vec::new(),
            },
        );
        snapshot("detail_metrics_unavailable", &app, width, height);
    }
}

#[test]
fn detail_metrics_window_switched() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "2 w");
        snapshot("detail_metrics_loading_1h", &app, width, height);
    }
}

#[test]
fn detail_history_diff() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "3");
        send(&mut app, DetailData::History(history(40)));
        press(&mut app, "m j j");
        send(
            &mut app,
            DetailData::Revision(Box::new(revision(40, 3, "shop:1.40"))),
        );
        send(
            &mut app,
            DetailData::Revision(Box::new(revision(38, 1, "shop:1.38"))),
        );
        snapshot("detail_history", &app, width, height);
    }
}

#[test]
fn detail_history_empty() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "3");
        send(&mut app, DetailData::History(Vec::new()));
        snapshot("detail_history_empty", &app, width, height);
    }
}

fn rule(name: &str, active: bool) -> AlertRuleView {
    let spec = serde_json::json!({
        "name": name,
        "metric": "cpu_percentage",
        "condition": "gt",
        "threshold": 80.0,
        "for": "5m",
        "severity": "critical",
    });
    AlertRuleView {
        deployment: CJK.to_owned(),
        environment: "staging".to_owned(),
        source: if active {
            AlertRuleSource::Manifest
        } else {
            AlertRuleSource::Api
        },
        active,
        rule: serde_json::from_value(spec).unwrap(),
    }
}

#[test]
fn detail_alerts() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "4");
        send(
            &mut app,
            DetailData::AlertRules(vec![rule("high-cpu", true), rule("高負荷", false)]),
        );
        let mut firing = alert(CJK, "staging", "high-cpu", 12);
        firing.silenced = true;
        let pending = AlertView {
            state: AlertState::Pending {
                since: NOW,
                last_sample: NOW,
            },
            ..alert(CJK, "staging", "高負荷", 0)
        };
        send(&mut app, DetailData::Alerts(vec![firing, pending]));
        send(
            &mut app,
            DetailData::Silences(vec![SilenceView {
                deployment: CJK.to_owned(),
                environment: "staging".to_owned(),
                silence: Silence {
                    id: "s1".to_owned(),
                    target: SilenceTarget::Rule("high-cpu".to_owned()),
                    until: NOW + time::Duration::hours(2),
                    comment: "maintenance 🛠 \u{1b}[5mblink\u{1b}[0m".to_owned(),
                    author: "dana".to_owned(),
                },
            }]),
        );
        snapshot("detail_alerts", &app, width, height);
    }
}

#[test]
fn detail_alerts_empty() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "4");
        send(&mut app, DetailData::AlertRules(Vec::new()));
        send(&mut app, DetailData::Alerts(Vec::new()));
        send(&mut app, DetailData::Silences(Vec::new()));
        snapshot("detail_alerts_empty", &app, width, height);
    }
}

#[test]
fn detail_timeline_scrolled() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "5");
        send(&mut app, DetailData::Timeline(events(500)));
        press(&mut app, "pagedown j j");
        snapshot("detail_timeline", &app, width, height);
    }
}

#[test]
fn detail_timeline_empty() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "5");
        send(&mut app, DetailData::Timeline(Vec::new()));
        snapshot("detail_timeline_empty", &app, width, height);
    }
}

#[test]
fn detail_help() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "?");
        snapshot("detail_help", &app, width, height);
    }
}

#[test]
fn detail_escapes_never_reach_the_buffer() {
    let mut app = opened(200, 50);
    send(&mut app, DetailData::Deployment(Box::new(detail_view())));
    send(&mut app, DetailData::Health(health()));
    send(&mut app, DetailData::RecentEvents(events(20)));
    send(&mut app, DetailData::History(history(8)));
    send(&mut app, DetailData::Timeline(events(40)));
    for tab in ["1", "3", "5"] {
        press(&mut app, tab);
        let terminal = render(&app, 200, 50);
        for cell in terminal.backend().buffer().content() {
            let symbol = cell.symbol();
            assert!(
                !symbol.chars().any(char::is_control),
                "control character {symbol:?} in tab {tab}"
            );
        }
    }
}

#[test]
fn detail_degenerate_sizes_do_not_panic() {
    for (width, height) in [(0, 0), (1, 1), (60, 15), (61, 16)] {
        let mut app = opened(width, height);
        send(&mut app, DetailData::History(history(3)));
        for keys in ["1", "2 w", "3 m j J", "4", "5 G"] {
            press(&mut app, keys);
            render(&app, width, height);
        }
    }
}

#[test]
fn detail_read_failed() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        for tab in ["1", "3"] {
            press(&mut app, tab);
            send(
                &mut app,
                DetailData::Failed {
                    what: "the deployment".to_owned(),
                    message: "no deployment ウェブショップ\u{1b}[2J in staging; run `shipdeck ls`"
                        .to_owned(),
                },
            );
            snapshot(&format!("detail_failed_tab{tab}"), &app, width, height);
        }
    }
}

#[path = "logs.rs"]
mod logs;

#[path = "autoscale.rs"]
mod autoscale;
