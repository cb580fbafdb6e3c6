use time::macros::datetime;

use super::*;
use crate::model::RevisionStatus;

fn key() -> DeploymentKey {
    DeploymentKey::new("web", "staging")
}

fn entry(revision: u64) -> HistoryEntry {
    HistoryEntry {
        revision,
        version: format!("1.{revision}.0"),
        status: RevisionStatus::Superseded,
        created_at: datetime!(2025-03-01 12:00:00 UTC),
        reason: "deploy".to_owned(),
    }
}

fn revision(number: u64, replicas: u32) -> Revision {
    let yaml = format!(
        "name: web\nenvironment: staging\nreplicas: {replicas}\nrun:\n  command: [\"python3\", \"-m\", \"http.server\"]\nenv:\n  TOKEN: ${{SECRET:token}}\n"
    );
    Revision {
        deployment_id: "id-web".to_owned(),
        revision: number,
        version: format!("1.{number}.0"),
        status: RevisionStatus::Superseded,
        reason: "deploy".to_owned(),
        created_at: datetime!(2025-03-01 12:00:00 UTC),
        spec: crate::manifest::parse(&yaml, "test", &[]).unwrap(),
        submitted: None,
    }
}

/// Builds a detail state on the history tab with revisions 5 (newest) to 1.
fn with_history() -> DetailState {
    let mut state = DetailState::new(key());
    state.command(Command::ShowHistory, 10);
    state.receive(DetailData::History((1..=5).rev().map(entry).collect()));
    state
}

#[test]
fn tabs_cycle_both_ways() {
    let mut state = DetailState::new(key());
    assert_eq!(state.tab, DetailTab::Overview);
    for expected in [
        DetailTab::Metrics,
        DetailTab::History,
        DetailTab::Alerts,
        DetailTab::Timeline,
        DetailTab::Logs,
        DetailTab::Autoscale,
        DetailTab::Overview,
    ] {
        assert!(state.command(Command::NextTab, 10));
        assert_eq!(state.tab, expected);
    }
    assert!(state.command(Command::PreviousTab, 10));
    assert_eq!(state.tab, DetailTab::Autoscale);
}

#[test]
fn number_commands_select_tabs() {
    let mut state = DetailState::new(key());
    assert!(state.command(Command::ShowAlerts, 10));
    assert_eq!(state.tab, DetailTab::Alerts);
    assert!(!state.command(Command::ShowAlerts, 10), "already shown");
}

#[test]
fn window_switch_drops_old_series() {
    let mut state = DetailState::new(key());
    assert!(!state.command(Command::NextWindow, 10), "only on metrics");
    state.command(Command::ShowMetrics, 10);
    state.receive(DetailData::Metrics {
        window: MetricsWindow::FiveMinutes,
        series: Vec::new(),
    });
    assert!(state.metrics.is_some());
    assert!(state.command(Command::NextWindow, 10));
    assert_eq!(state.window, MetricsWindow::OneHour);
    assert_eq!(state.metrics, None);
    assert_eq!(state.request().window, MetricsWindow::OneHour);

    let stale = DetailData::Metrics {
        window: MetricsWindow::FiveMinutes,
        series: Vec::new(),
    };
    assert!(
        !state.receive(stale),
        "series of the old window are ignored"
    );
    assert_eq!(state.metrics, None);

    state.command(Command::NextWindow, 10);
    state.command(Command::NextWindow, 10);
    assert_eq!(state.window, MetricsWindow::FiveMinutes);
}

#[test]
fn marking_requests_both_specs() {
    let mut state = with_history();
    assert_eq!(state.selected_revision(), Some(5));
    assert!(state.command(Command::MarkRevision, 10));
    assert_eq!(state.marked, Some(5));
    assert!(state.request().revisions.is_empty(), "one revision only");

    state.command(Command::MoveDown, 10);
    state.command(Command::MoveDown, 10);
    assert_eq!(state.selected_revision(), Some(3));
    assert_eq!(state.request().revisions, [5, 3]);

    state.receive(DetailData::Revision(Box::new(revision(5, 3))));
    assert_eq!(state.request().revisions, [3]);
    assert_eq!(state.diff, None);
    state.receive(DetailData::Revision(Box::new(revision(3, 1))));
    assert!(state.request().revisions.is_empty());

    let diff = state
        .diff
        .as_ref()
        .expect("a diff once both specs are held");
    assert_eq!((diff.from, diff.to), (3, 5));
    let changed: Vec<(similar::ChangeTag, &str)> = diff
        .lines
        .iter()
        .filter(|line| line.change != similar::ChangeTag::Equal)
        .map(|line| (line.change, line.text.as_str()))
        .collect();
    assert_eq!(
        changed,
        [
            (similar::ChangeTag::Delete, "replicas: 1"),
            (similar::ChangeTag::Insert, "replicas: 3"),
        ]
    );
    assert!(
        diff.lines
            .iter()
            .any(|line| line.text.contains("${SECRET:token}")),
        "secrets stay references"
    );
}

#[test]
fn unmarking_clears_the_diff() {
    let mut state = with_history();
    state.receive(DetailData::Revision(Box::new(revision(5, 3))));
    state.receive(DetailData::Revision(Box::new(revision(4, 2))));
    state.command(Command::MarkRevision, 10);
    state.command(Command::MoveDown, 10);
    assert!(state.diff.is_some());
    state.command(Command::MoveUp, 10);
    assert_eq!(state.diff, None, "the marked revision against itself");
    assert!(state.command(Command::MarkRevision, 10));
    assert_eq!(state.marked, None);
}

#[test]
fn mark_needs_history_tab_and_rows() {
    let mut state = DetailState::new(key());
    assert!(!state.command(Command::MarkRevision, 10));
    state.command(Command::ShowHistory, 10);
    assert!(!state.command(Command::MarkRevision, 10), "no history yet");
    state.receive(DetailData::History(Vec::new()));
    assert!(!state.command(Command::MarkRevision, 10), "zero revisions");
    assert_eq!(state.selected_revision(), None);
}

#[test]
fn diff_scroll_stays_in_bounds() {
    let mut state = with_history();
    state.receive(DetailData::Revision(Box::new(revision(5, 3))));
    state.receive(DetailData::Revision(Box::new(revision(4, 2))));
    state.command(Command::MarkRevision, 10);
    state.command(Command::MoveDown, 10);
    let len = state.diff.as_ref().map_or(0, |diff| diff.lines.len());
    assert!(len > 3);
    let first_change = state.diff.as_ref().and_then(|diff| {
        diff.lines
            .iter()
            .position(|line| line.change != similar::ChangeTag::Equal)
    });
    assert_eq!(
        Some(state.diff_scroll),
        first_change.map(|first| first.saturating_sub(3)),
        "opens just above the first change"
    );
    for _ in 0..len {
        state.command(Command::ScrollDiffUp, 3);
    }
    assert_eq!(state.diff_scroll, 0);
    assert!(!state.command(Command::ScrollDiffUp, 3));
    for _ in 0..len * 2 {
        state.command(Command::ScrollDiffDown, 3);
    }
    assert_eq!(state.diff_scroll, len - 3);
}

#[test]
fn timeline_scrolls_with_cursor() {
    let mut state = DetailState::new(key());
    state.command(Command::ShowTimeline, 10);
    let events: Vec<Event> = (0..50)
        .map(|seq| Event {
            seq,
            time: datetime!(2025-03-01 12:00:00 UTC),
            deployment: Some(key()),
            user: "op".to_owned(),
            action: "scale".to_owned(),
            outcome: crate::model::EventOutcome::Ok,
            message: format!("event {seq}"),
        })
        .collect();
    assert!(state.receive(DetailData::Timeline(events.clone())));
    assert!(!state.receive(DetailData::Timeline(events)), "same list");
    state.command(Command::PageDown, 10);
    state.command(Command::PageDown, 10);
    assert_eq!(state.timeline_cursor.selected, 20);
    assert_eq!(state.timeline_cursor.offset, 11);
    state.command(Command::Last, 10);
    assert_eq!(state.timeline_cursor.selected, 49);
    state.receive(DetailData::Timeline(Vec::new()));
    assert_eq!(state.timeline_cursor.selected, 0, "clamped to the new list");
}

#[test]
fn overview_scroll_bounded_by_rows() {
    let mut state = DetailState::new(key());
    let rows = state.overview_rows();
    for _ in 0..100 {
        state.command(Command::MoveDown, 5);
    }
    assert_eq!(state.overview_scroll, rows - 5);
    state.command(Command::First, 5);
    assert_eq!(state.overview_scroll, 0);
    assert!(!state.command(Command::MoveUp, 5));
}

#[test]
fn overview_requests_current_spec() {
    let mut state = DetailState::new(key());
    assert!(state.request().revisions.is_empty(), "revision unknown yet");
    let view = crate::model::DeploymentView {
        id: "id-web".to_owned(),
        name: "web".to_owned(),
        environment: "staging".to_owned(),
        backend: crate::manifest::BackendKind::Process,
        status: crate::model::DeploymentStatus::Deployed,
        status_reason: None,
        health: crate::model::Health::Healthy,
        version: "1.7.0".to_owned(),
        revision: 7,
        replicas: crate::model::ReplicaCounts {
            desired: 1,
            ready: 1,
        },
        autoscaling: None,
        endpoints: Vec::new(),
        tags: Vec::new(),
        replica_details: Vec::new(),
        metrics_unavailable: None,
        created_at: datetime!(2025-03-01 12:00:00 UTC),
        updated_at: datetime!(2025-03-01 12:00:00 UTC),
    };
    assert!(state.receive(DetailData::Deployment(Box::new(view.clone()))));
    assert!(
        !state.receive(DetailData::Deployment(Box::new(view))),
        "no change"
    );
    assert_eq!(state.request().revisions, [7]);
    state.command(Command::ShowTimeline, 10);
    assert!(state.request().revisions.is_empty(), "only the overview");
}

#[test]
fn failed_read_shown_until_success() {
    let mut state = DetailState::new(key());
    let failed = || DetailData::Failed {
        what: "the deployment".to_owned(),
        message: "deployment web not found".to_owned(),
    };
    assert!(state.receive(failed()));
    assert_eq!(
        state.error.as_deref(),
        Some("reading the deployment failed: deployment web not found")
    );
    assert!(!state.receive(failed()), "the same error again");
    assert!(state.receive(DetailData::Timeline(Vec::new())));
    assert_eq!(state.error, None);
}
