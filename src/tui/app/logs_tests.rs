//! The logs tab's state driven by key presses and by reads answered from a
//! history held in the test: follow and pause, paging a bounded window
//! through a long history, search, filter and the settings.

use std::sync::Arc;

use time::macros::datetime;
use time::OffsetDateTime;

use super::super::deployments::tests::view;
use super::*;
use crate::logs::{LogEntry, Stream};
use crate::model::DeploymentStatus;
use crate::tui::action::{Action, Effect};
use crate::tui::app::{App, AppOptions, HelpLine, Layer, ManualClock, WINDOW_LINES};
use crate::tui::keymap::Keymap;

const NOW: OffsetDateTime = datetime!(2025-01-01 12:00:00 UTC);

fn key() -> DeploymentKey {
    DeploymentKey::new("web", "staging")
}

fn entry(id: u64, message: &str) -> LogEntry {
    LogEntry {
        id,
        time: crate::logs::time_of(1_735_732_800_000_000_000 + id * 1_000_000),
        level: if message.contains("error") {
            Level::Error
        } else {
            Level::Info
        },
        source: format!("web-{}", id % 3),
        stream: Stream::Stdout,
        revision: 1,
        build: false,
        message: message.to_owned(),
        context: false,
    }
}

/// A history of `count` lines with ids 1 to `count`; every 1,000th says
/// `error`.
fn history(count: u64) -> Vec<LogEntry> {
    (1..=count)
        .map(|id| {
            let message = if id % 1000 == 500 {
                format!("request {id} failed: error")
            } else {
                format!("request {id} ok")
            };
            entry(id, &message)
        })
        .collect()
}

/// Builds an app of 80×24 with the logs tab of web (staging) open.
fn logs_app() -> (App, Vec<Effect>) {
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::default(),
            read_only: false,
            socket: "/run/agent.sock".to_owned(),
        },
        Arc::new(ManualClock::at(NOW)),
    );
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    app.apply(Action::Deployments(vec![view(
        "web",
        "staging",
        DeploymentStatus::Deployed,
    )]));
    let mut effects = press(&mut app, "enter 6");
    effects.retain(|effect| matches!(effect, Effect::Logs(_)));
    (app, effects)
}

fn press(app: &mut App, keys: &str) -> Vec<Effect> {
    keys.split(' ')
        .flat_map(|key| app.apply(Action::Key(crate::tui::keymap::parse_key(key).unwrap())))
        .collect()
}

fn logs(app: &App) -> &LogsState {
    &app.detail.as_ref().unwrap().logs
}

fn send(app: &mut App, data: LogsData) -> Vec<Effect> {
    app.apply(Action::Logs {
        key: key(),
        data: Box::new(data),
    })
}

fn generation(app: &App) -> u64 {
    logs(app).generation
}

fn tail(app: &mut App, entries: &[LogEntry]) -> Vec<Effect> {
    let generation = generation(app);
    send(
        app,
        LogsData::Tail {
            generation,
            entries: entries.to_vec(),
        },
    )
}

fn fetches(effects: &[Effect]) -> Vec<LogsFetch> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Logs(LogsEffect::Fetch(fetch)) => Some(fetch.clone()),
            _ => None,
        })
        .collect()
}

/// Answers every fetch in `effects` from `history`, as the agent would
/// without a filter, and the fetches those answers cause, in turn.
fn serve(app: &mut App, history: &[LogEntry], mut effects: Vec<Effect>) {
    for _ in 0..1000 {
        let requests = fetches(&effects);
        if requests.is_empty() {
            return;
        }
        effects = Vec::new();
        for fetch in requests {
            let data = answer(history, &fetch);
            effects.extend(send(app, data));
        }
    }
    panic!("fetches never stopped");
}

fn answer(history: &[LogEntry], fetch: &LogsFetch) -> LogsData {
    let page = |range: std::ops::Range<usize>| history[range].to_vec();
    let index_of = |id: u64| history.partition_point(|entry| entry.id < id);
    let generation = fetch.generation;
    let kind = fetch.kind.clone();
    let around = |id: u64| {
        let at = index_of(id);
        let half = PAGE_LINES / 2;
        LogsData::Around {
            generation,
            kind: kind.clone(),
            before: page(at.saturating_sub(half)..at),
            after: page(at..(at + half).min(history.len())),
        }
    };
    match &fetch.kind {
        FetchKind::Older { before } => {
            let end = index_of(*before);
            LogsData::Page {
                generation,
                kind: kind.clone(),
                entries: page(end.saturating_sub(PAGE_LINES)..end),
            }
        }
        FetchKind::Newer { after } => {
            let start = index_of(after + 1);
            LogsData::Page {
                generation,
                kind: kind.clone(),
                entries: page(start..(start + PAGE_LINES).min(history.len())),
            }
        }
        FetchKind::First => LogsData::Page {
            generation,
            kind: kind.clone(),
            entries: page(0..PAGE_LINES.min(history.len())),
        },
        FetchKind::Around { id } => around(*id),
        FetchKind::FindNext { after, search, .. } => {
            let found = history
                .iter()
                .find(|entry| entry.id > *after && entry.message.contains(search.as_str()));
            match found {
                Some(entry) => around(entry.id),
                None => LogsData::NotFound { generation, kind },
            }
        }
        FetchKind::FindPrevious { before, search, .. } => {
            let found = history
                .iter()
                .rev()
                .find(|entry| entry.id < *before && entry.message.contains(search.as_str()));
            match found {
                Some(entry) => around(entry.id),
                None => LogsData::NotFound { generation, kind },
            }
        }
    }
}

fn newest_page(history: &[LogEntry]) -> &[LogEntry] {
    &history[history.len().saturating_sub(PAGE_LINES)..]
}

fn selected_id(app: &App) -> u64 {
    logs(app).window.selected_line().unwrap().id
}

#[test]
fn opening_the_tab_watches_the_stream() {
    let (app, effects) = logs_app();
    let watch = LogsWatch {
        key: key(),
        query: LogsQuery::default(),
        generation: 1,
    };
    assert!(
        effects.contains(&Effect::Logs(LogsEffect::Watch(Some(watch)))),
        "{effects:?}"
    );
    assert!(logs(&app).loading);
    assert!(logs(&app).following);
}

#[test]
fn follow_appends_and_pause_counts() {
    let (mut app, _) = logs_app();
    let lines = history(30);
    tail(&mut app, &lines[..20]);
    assert_eq!(logs(&app).window.len(), 20);
    assert_eq!(selected_id(&app), 20);
    assert!(
        logs(&app).window.at_start,
        "fewer than a page: the whole history"
    );

    let first = generation(&app);
    send(
        &mut app,
        LogsData::Live {
            generation: first,
            entries: lines[15..25].to_vec(),
        },
    );
    assert_eq!(
        logs(&app).window.len(),
        25,
        "lines held already are dropped by id"
    );
    assert_eq!(selected_id(&app), 25, "following keeps the newest selected");

    press(&mut app, "p");
    assert!(!logs(&app).following);
    send(
        &mut app,
        LogsData::Live {
            generation: first,
            entries: lines[25..30].to_vec(),
        },
    );
    assert_eq!(logs(&app).unseen, 5);
    assert_eq!(logs(&app).window.len(), 25, "a paused view stays still");
    assert_eq!(selected_id(&app), 25);

    // Resuming starts over from the newest page, on a new stream.
    let effects = press(&mut app, "p");
    assert!(logs(&app).following);
    assert_eq!(logs(&app).unseen, 0);
    assert_eq!(generation(&app), first + 1);
    let watch = effects.iter().find_map(|effect| match effect {
        Effect::Logs(LogsEffect::Watch(Some(watch))) => Some(watch.generation),
        _ => None,
    });
    assert_eq!(watch, Some(first + 1));
    tail(&mut app, &lines);
    assert_eq!(selected_id(&app), 30);
}

#[test]
fn moving_up_pauses_and_last_resumes_without_reload() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(50));
    press(&mut app, "k k");
    assert!(!logs(&app).following);
    assert_eq!(selected_id(&app), 48);
    let before = generation(&app);
    press(&mut app, "G");
    assert!(logs(&app).following);
    assert_eq!(selected_id(&app), 50);
    assert_eq!(generation(&app), before, "nothing new arrived: no reload");
}

#[test]
fn stale_generation_is_dropped() {
    let (mut app, _) = logs_app();
    let current = generation(&app);
    send(
        &mut app,
        LogsData::Tail {
            generation: current + 7,
            entries: history(5),
        },
    );
    assert!(logs(&app).window.is_empty());
}

#[test]
fn scrolls_to_the_top_of_a_long_history_in_pages() {
    let (mut app, _) = logs_app();
    let lines = history(100_000);
    let effects = tail(&mut app, newest_page(&lines));
    serve(&mut app, &lines, effects);
    assert!(!logs(&app).window.at_start);

    let mut largest = 0;
    for _ in 0..20_000 {
        let effects = press(&mut app, "pageup");
        serve(&mut app, &lines, effects);
        largest = largest.max(logs(&app).window.len());
        if selected_id(&app) == 1 {
            break;
        }
    }
    assert_eq!(selected_id(&app), 1, "page up reaches the oldest line");
    assert!(logs(&app).window.at_start);
    assert!(largest <= WINDOW_LINES, "the window held {largest} lines");
    assert!(
        !logs(&app).window.at_end,
        "the newest lines fell off the far end"
    );

    // Back down: newer pages join at the end until the newest line.
    for _ in 0..20_000 {
        let effects = press(&mut app, "pagedown");
        serve(&mut app, &lines, effects);
        if selected_id(&app) == 100_000 {
            break;
        }
    }
    assert_eq!(selected_id(&app), 100_000);
    assert!(logs(&app).window.len() <= WINDOW_LINES);
}

#[test]
fn first_jumps_to_the_oldest_page() {
    let (mut app, _) = logs_app();
    let lines = history(100_000);
    tail(&mut app, newest_page(&lines));
    let effects = press(&mut app, "g");
    let requested = fetches(&effects);
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].kind, FetchKind::First);
    serve(&mut app, &lines, effects);
    assert_eq!(selected_id(&app), 1);
    assert!(logs(&app).window.at_start);
    assert_eq!(logs(&app).window.len(), PAGE_LINES);
}

fn search(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = press(app, "/");
    for character in text.chars() {
        effects.extend(app.apply(Action::Key(crate::tui::action::KeyPress::char(character))));
    }
    effects.extend(press(app, "enter"));
    effects
}

#[test]
fn search_highlights_and_navigates_the_window() {
    let (mut app, _) = logs_app();
    let lines = history(3000);
    tail(&mut app, &lines[..2000]);
    // Following: Enter selects the newest match, searching back.
    search(&mut app, "ERROR");
    assert_eq!(selected_id(&app), 1500);
    assert!(!logs(&app).following);
    press(&mut app, "N");
    assert_eq!(selected_id(&app), 500);
    press(&mut app, "n");
    assert_eq!(selected_id(&app), 1500);
    assert_eq!(
        logs(&app).query(),
        LogsQuery::default(),
        "searching filters nothing"
    );
}

#[test]
fn next_match_beyond_the_window_asks_the_agent() {
    let (mut app, _) = logs_app();
    let lines = history(100_000);
    let effects = tail(&mut app, newest_page(&lines));
    serve(&mut app, &lines, effects);
    let effects = search(&mut app, "error");
    serve(&mut app, &lines, effects);
    assert_eq!(selected_id(&app), 99_500);
    // The window starts at 99,001 with 500 lines on either side loaded;
    // the previous match lies beyond it.
    let effects = press(&mut app, "N");
    let kinds: Vec<FetchKind> = fetches(&effects)
        .into_iter()
        .map(|fetch| fetch.kind)
        .collect();
    let first = logs(&app).window.first_id().unwrap();
    assert!(
        kinds.contains(&FetchKind::FindPrevious {
            before: first,
            search: "error".to_owned(),
            regex: false,
        }),
        "{kinds:?}"
    );
    serve(&mut app, &lines, effects);
    assert_eq!(selected_id(&app), 98_500);
    let effects = press(&mut app, "n");
    serve(&mut app, &lines, effects);
    assert_eq!(selected_id(&app), 99_500);
}

#[test]
fn search_finds_the_selected_newest_line() {
    let (mut app, _) = logs_app();
    tail(&mut app, &[entry(1, "boot"), entry(2, "listening on 8080")]);
    search(&mut app, "listening");
    assert_eq!(selected_id(&app), 2);
    assert_eq!(logs(&app).notice, None);
}

#[test]
fn no_match_left_is_a_notice() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(100));
    search(&mut app, "nothing like this");
    assert_eq!(logs(&app).notice.as_deref(), Some("no earlier match"));
}

#[test]
fn invalid_regex_shows_an_error_and_filters_nothing() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(10));
    press(&mut app, "r");
    assert!(logs(&app).settings.regex);
    search(&mut app, "(unclosed");
    let error = logs(&app).search.as_ref().and_then(Search::error).unwrap();
    assert!(error.starts_with("invalid regex"), "{error}");
    press(&mut app, "f");
    assert!(
        !logs(&app).settings.filter,
        "no filter from an invalid pattern"
    );
    assert_eq!(
        logs(&app).notice.as_deref(),
        Some("type a search with / first")
    );
}

#[test]
fn filter_mode_asks_the_agent_with_context() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(10));
    search(&mut app, "error");
    let before = generation(&app);
    let effects = press(&mut app, "f");
    let query = logs(&app).query();
    assert_eq!(query.search.as_deref(), Some("error"));
    assert_eq!(query.context, 2);
    assert!(!query.invert);
    assert_eq!(generation(&app), before + 1);
    let watched = effects.iter().any(|effect| {
        matches!(effect, Effect::Logs(LogsEffect::Watch(Some(watch))) if watch.query == query)
    });
    assert!(watched, "the stream reopens with the filter: {effects:?}");

    press(&mut app, "] ] [");
    assert_eq!(logs(&app).query().context, 3);
    press(&mut app, "v");
    assert!(logs(&app).query().invert);
    press(&mut app, "f");
    assert_eq!(logs(&app).query(), LogsQuery::default(), "filter off");
    assert!(logs(&app).search.is_some(), "the search still highlights");
}

#[test]
fn paused_filter_change_reloads_around_the_selection() {
    let (mut app, _) = logs_app();
    let lines = history(3000);
    tail(&mut app, &lines[..2000]);
    search(&mut app, "error");
    let anchor = selected_id(&app);
    let effects = press(&mut app, "f");
    let kinds: Vec<FetchKind> = fetches(&effects)
        .into_iter()
        .map(|fetch| fetch.kind)
        .collect();
    assert_eq!(kinds, [FetchKind::Around { id: anchor }]);
}

#[test]
fn inverse_filter_needs_a_search() {
    let (mut app, _) = logs_app();
    press(&mut app, "v");
    assert!(!logs(&app).settings.invert);
    search(&mut app, "ok");
    press(&mut app, "v");
    let query = logs(&app).query();
    assert!(query.invert);
    assert_eq!(query.search.as_deref(), Some("ok"));
}

#[test]
fn level_and_replica_cycle() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(9));
    press(&mut app, "l l l");
    assert_eq!(logs(&app).query().level, Some(Level::Warn));
    press(&mut app, "l l l");
    assert_eq!(logs(&app).query().level, None, "after fatal, every level");
    // The tail holds web-0, web-1 and web-2.
    press(&mut app, "c");
    assert_eq!(logs(&app).query().replica, Some(0));
    press(&mut app, "c c");
    assert_eq!(logs(&app).query().replica, Some(2));
    press(&mut app, "c");
    assert_eq!(logs(&app).query().replica, None);
}

#[test]
fn escape_clears_the_search_then_goes_back() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(10));
    search(&mut app, "ok");
    press(&mut app, "esc");
    assert!(logs(&app).search.is_none());
    assert!(app.detail.is_some());
    press(&mut app, "esc");
    assert!(app.detail.is_none());
}

#[test]
fn cancelled_search_restores_the_previous_one() {
    let (mut app, _) = logs_app();
    search(&mut app, "ok");
    press(&mut app, "/ x esc");
    assert_eq!(logs(&app).search.as_ref().unwrap().text, "ok");
    assert!(app.layers.is_empty());
}

#[test]
fn save_prompts_for_a_path_and_reports() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(10));
    press(&mut app, "S");
    let Some(Layer::LogsInput(input)) = app.layers.last() else {
        panic!("no input line: {:?}", app.layers);
    };
    assert_eq!(input.text, "web-staging-20250101-120000.log");
    let effects = press(&mut app, "enter");
    let save = effects.iter().find_map(|effect| match effect {
        Effect::Logs(LogsEffect::Save(save)) => Some(save.clone()),
        _ => None,
    });
    assert_eq!(
        save.map(|save| save.path),
        Some(std::path::PathBuf::from("web-staging-20250101-120000.log"))
    );
    send(
        &mut app,
        LogsData::Saved {
            path: "/home/op/web-staging.log".into(),
            result: Ok(10),
        },
    );
    let toast = app.toasts.iter().last().unwrap();
    assert_eq!(toast.message, "saved 10 lines to /home/op/web-staging.log");
    assert!(logs(&app).saving.is_none());
}

#[test]
fn empty_save_path_is_rejected() {
    let (mut app, _) = logs_app();
    press(&mut app, "S ctrl-u enter");
    let Some(Layer::LogsInput(input)) = app.layers.last() else {
        panic!("the input line closed");
    };
    assert!(input.error.as_deref().unwrap().contains("type a path"));
}

#[test]
fn copy_sends_the_sanitised_line() {
    let (mut app, _) = logs_app();
    tail(
        &mut app,
        &[entry(1, "token \u{1b}[31mred\u{1b}[0m\u{7} done")],
    );
    let effects = press(&mut app, "y");
    assert!(
        effects.contains(&Effect::CopyToClipboard("token red done".to_owned())),
        "{effects:?}"
    );
}

#[test]
fn missed_lines_reload_the_follow() {
    let (mut app, _) = logs_app();
    tail(&mut app, &history(10));
    let first = generation(&app);
    send(
        &mut app,
        LogsData::Missed {
            generation: first,
            count: 42,
        },
    );
    assert_eq!(generation(&app), first + 1);
    assert!(logs(&app)
        .notice
        .as_deref()
        .unwrap()
        .contains("skipped 42 lines"));
}

#[test]
fn help_lists_logs_detail_and_global_keys() {
    let (app, _) = logs_app();
    let lines = crate::tui::app::help_lines(&app.keymap, crate::tui::keymap::Context::Logs, false);
    let headings: Vec<&HelpLine> = lines
        .iter()
        .filter(|line| matches!(line, HelpLine::Heading(_)))
        .collect();
    assert_eq!(headings.len(), 3);
    let bound = |command: Command| {
        lines.iter().any(|line| {
            matches!(line, HelpLine::Binding(binding) if binding.command == command && !binding.keys.is_empty())
        })
    };
    assert!(bound(Command::Logs(LogsCommand::ToggleFilter)));
    assert!(bound(Command::Logs(LogsCommand::Copy)));
    assert!(
        !bound(Command::CloseDetail),
        "esc clears the search first in the logs tab"
    );
    assert!(bound(Command::NextTab));
}
