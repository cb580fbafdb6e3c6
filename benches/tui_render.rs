//! Time to draw one dashboard frame into ratatui's `TestBackend` at
//! 200×50: the deployments view with 1,000 deployments, and the logs tab
//! over a history of 100,000 stored lines, with the window of lines the
//! tab keeps after scrolling back through it (the most it keeps). Results
//! and the command to rerun are in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use shipdeck::logs::{Level, LogEntry, Stream};
use shipdeck::manifest::BackendKind;
use shipdeck::model::{DeploymentKey, DeploymentStatus, DeploymentView, Health, ReplicaCounts};
use shipdeck::tui::action::{Action, Effect};
use shipdeck::tui::app::{
    App, AppOptions, FetchKind, LogsData, LogsEffect, ManualClock, WINDOW_LINES,
};
use shipdeck::tui::keymap::{parse_key, Keymap};
use shipdeck::tui::theme::Theme;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);
const WIDTH: u16 = 200;
const HEIGHT: u16 = 50;
const STORED_LINES: u64 = 100_000;

fn deployment(index: usize) -> DeploymentView {
    let status = DeploymentStatus::ALL[index % DeploymentStatus::ALL.len()];
    DeploymentView {
        id: format!("id-{index}"),
        name: format!("svc-{index:04}"),
        environment: if index.is_multiple_of(5) {
            "production"
        } else {
            "staging"
        }
        .to_owned(),
        backend: BackendKind::Process,
        status,
        status_reason: None,
        health: Health::Healthy,
        version: "1.4.0".to_owned(),
        revision: 3,
        replicas: ReplicaCounts {
            desired: 3,
            ready: 3,
        },
        autoscaling: None,
        endpoints: Vec::new(),
        tags: vec!["shop".to_owned()],
        replica_details: Vec::new(),
        metrics_unavailable: None,
        created_at: NOW - time::Duration::minutes(i64::try_from(index).unwrap_or(0)),
        updated_at: NOW,
    }
}

fn new_app() -> App {
    let options = AppOptions {
        keymap: Keymap::default(),
        read_only: false,
        socket: "/run/agent.sock".to_owned(),
    };
    let mut app = App::new(options, Arc::new(ManualClock::at(NOW)));
    app.apply(Action::Resize {
        width: WIDTH,
        height: HEIGHT,
    });
    app.apply(Action::ConnectionRestored);
    app
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    keys.split(' ')
        .flat_map(|key| app.apply(Action::Key(parse_key(key).expect("a valid key"))))
        .collect()
}

/// Line `id` of the history: three replicas, mixed levels, some long.
fn line(id: u64) -> LogEntry {
    let (level, message) = match id % 10 {
        0 => (
            Level::Error,
            format!("order {id} failed: payment timeout after 30 s"),
        ),
        3 => (
            Level::Warn,
            format!("slow upstream response for order {id}: 254 ms"),
        ),
        7 => (
            Level::Info,
            format!("GET /orders/{id} 200 {} ms {}", id % 90, "x".repeat(300)),
        ),
        _ => (
            Level::Info,
            format!("processed batch {id} with {} items", id % 50),
        ),
    };
    LogEntry {
        id,
        time: NOW - time::Duration::milliseconds(i64::try_from(STORED_LINES - id).unwrap_or(0)),
        level,
        source: format!("svc-0001-{}", id % 3),
        stream: Stream::Stdout,
        revision: 3,
        build: false,
        message,
        context: false,
    }
}

/// Returns pages of the history for the tab's requests, as the agent
/// would.
fn answer(app: &mut App, key: &DeploymentKey, effects: Vec<Effect>) {
    for effect in effects {
        let Effect::Logs(LogsEffect::Fetch(fetch)) = effect else {
            continue;
        };
        let FetchKind::Older { before } = fetch.kind else {
            continue;
        };
        let start = before.saturating_sub(1000).max(1);
        let data = LogsData::Page {
            generation: fetch.generation,
            kind: fetch.kind,
            entries: (start..before).map(line).collect(),
        };
        app.apply(Action::Logs {
            key: key.clone(),
            data: Box::new(data),
        });
    }
}

/// Builds the logs tab scrolled back until its window is full, with a
/// search highlighting on every line shown.
fn logs_app() -> App {
    let mut app = new_app();
    app.apply(Action::Deployments(vec![deployment(1)]));
    press(&mut app, "enter 6");
    let key = app
        .detail
        .as_ref()
        .expect("the detail view opened")
        .key
        .clone();
    let generation = app
        .detail
        .as_ref()
        .map_or(0, |detail| detail.logs.generation);
    let tail = (STORED_LINES - 999..=STORED_LINES).map(line).collect();
    app.apply(Action::Logs {
        key: key.clone(),
        data: Box::new(LogsData::Tail {
            generation,
            entries: tail,
        }),
    });
    let held = |app: &App| {
        app.detail
            .as_ref()
            .map_or(0, |detail| detail.logs.window.len())
    };
    while held(&app) < WINDOW_LINES {
        let effects = press(&mut app, "pageup");
        answer(&mut app, &key, effects);
    }
    assert_eq!(held(&app), WINDOW_LINES, "the window is full");
    press(&mut app, "/");
    for character in "order".chars() {
        app.apply(Action::Key(shipdeck::tui::action::KeyPress::char(
            character,
        )));
    }
    press(&mut app, "enter");
    app
}

fn frames(c: &mut Criterion) {
    let theme = Theme::dark();
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("a test terminal");

    let mut deployments = new_app();
    deployments.apply(Action::Deployments((0..1000).map(deployment).collect()));
    c.bench_function("deployments view, 1,000 deployments, 200x50", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| shipdeck::tui::view::draw(frame, black_box(&deployments), &theme))
                .expect("a frame");
        });
    });

    let logs = logs_app();
    c.bench_function("logs tab, 100,000 stored lines, 200x50", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| shipdeck::tui::view::draw(frame, black_box(&logs), &theme))
                .expect("a frame");
        });
    });

    let mut wrapped = logs_app();
    press(&mut wrapped, "w");
    c.bench_function("logs tab wrapped, 100,000 stored lines, 200x50", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| shipdeck::tui::view::draw(frame, black_box(&wrapped), &theme))
                .expect("a frame");
        });
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
