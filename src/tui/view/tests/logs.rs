//! Snapshots of the logs tab with the hard cases: a line of escape
//! sequences, a 200,000-character line, CJK and emoji, context lines of a
//! filter, an invalid regex and an empty history.

use crate::logs::{Level, LogEntry, Stream};
use crate::tui::app::LogsData;

use super::*;

fn entry(seconds: i64, replica: u32, level: Level, message: &str, context: bool) -> LogEntry {
    let time = NOW - time::Duration::seconds(300 - seconds) + time::Duration::milliseconds(125);
    LogEntry {
        id: u64::try_from(time.unix_timestamp_nanos()).unwrap(),
        time,
        level,
        source: format!("{CJK}-{replica}"),
        stream: Stream::Stdout,
        revision: 3,
        build: false,
        message: message.to_owned(),
        context,
    }
}

/// Lines of three replicas with every hard case.
fn fixture() -> Vec<LogEntry> {
    let long = format!("long {} order tail", "x".repeat(199_980));
    vec![
        entry(1, 0, Level::Info, "listening on 0.0.0.0:41001 (version 1.3)", false),
        entry(2, 1, Level::Debug, "cache warm: 1,024 keys", false),
        entry(
            3,
            2,
            Level::Warn,
            "\u{1b}[2J\u{1b}[Hcleared? \u{1b}]0;pwned\u{7}title \u{1b}[31mred\u{1b}[0m \u{202e}gnp.exe",
            false,
        ),
        entry(4, 0, Level::Info, "注文 42 を受け付けました 🚀 order accepted", false),
        entry(5, 1, Level::Error, "order 43 failed: payment timeout 💥", false),
        entry(6, 2, Level::Info, &long, false),
        entry(7, 0, Level::Info, "GET /healthz 200 0.3ms", false),
        entry(8, 1, Level::Info, "配送 ウェブ 📦 shipped order 42", false),
        entry(9, 2, Level::Fatal, "out of memory\tin\nworker", false),
        entry(10, 0, Level::Info, "GET /orders 200 12ms", false),
    ]
}

fn send_logs(app: &mut App, data: LogsData) {
    app.apply(Action::Logs {
        key: key(),
        data: Box::new(data),
    });
}

fn generation(app: &App) -> u64 {
    app.detail.as_ref().unwrap().logs.generation
}

/// Builds the app with the logs tab of the CJK deployment open.
fn logs_tab(width: u16, height: u16, entries: Vec<LogEntry>) -> App {
    let mut app = opened(width, height);
    press(&mut app, "6");
    let generation = generation(&app);
    send_logs(
        &mut app,
        LogsData::Tail {
            generation,
            entries,
        },
    );
    app
}

fn type_search(app: &mut App, text: &str) {
    press(app, "/");
    for character in text.chars() {
        app.apply(Action::Key(KeyPress::char(character)));
    }
}

#[test]
fn logs_following() {
    for (width, height) in SIZES {
        let app = logs_tab(width, height, fixture());
        snapshot("logs", &app, width, height);
    }
}

#[test]
fn logs_search_paused() {
    for (width, height) in SIZES {
        let mut app = logs_tab(width, height, fixture());
        type_search(&mut app, "ORDER");
        press(&mut app, "enter N");
        let generation = generation(&app);
        send_logs(
            &mut app,
            LogsData::Live {
                generation,
                entries: vec![entry(11, 1, Level::Info, "order 44 accepted", false)],
            },
        );
        snapshot("logs_search", &app, width, height);
    }
}

#[test]
fn logs_wrapped_filter_with_context() {
    for (width, height) in SIZES {
        let mut app = logs_tab(width, height, fixture());
        type_search(&mut app, "order");
        // G follows again, so the filter's first page is the newest.
        press(&mut app, "enter G f w z");
        let mut lines = fixture();
        for line in &mut lines {
            line.context = !line.message.contains("order");
        }
        let generation = generation(&app);
        send_logs(
            &mut app,
            LogsData::Tail {
                generation,
                entries: lines,
            },
        );
        snapshot("logs_filter_wrapped", &app, width, height);
    }
}

#[test]
fn logs_invalid_regex_being_typed() {
    for (width, height) in SIZES {
        let mut app = logs_tab(width, height, fixture());
        press(&mut app, "r");
        type_search(&mut app, "order(");
        snapshot("logs_invalid_regex", &app, width, height);
    }
}

#[test]
fn logs_empty_history() {
    for (width, height) in SIZES {
        let app = logs_tab(width, height, Vec::new());
        snapshot("logs_empty", &app, width, height);
    }
}

#[test]
fn logs_help() {
    for (width, height) in SIZES {
        let mut app = logs_tab(width, height, fixture());
        press(&mut app, "?");
        snapshot("logs_help", &app, width, height);
    }
}

#[test]
fn logs_escapes_never_reach_the_buffer() {
    for keys in ["k", "w", "w k k k"] {
        let mut app = logs_tab(200, 50, fixture());
        press(&mut app, keys);
        let terminal = render(&app, 200, 50);
        for cell in terminal.backend().buffer().content() {
            let symbol = cell.symbol();
            assert!(
                !symbol.chars().any(|character| character.is_control()
                    || ('\u{202a}'..='\u{202e}').contains(&character)),
                "control character {symbol:?} after {keys}"
            );
        }
    }
}

#[test]
fn logs_degenerate_sizes_do_not_panic() {
    for (width, height) in [(0, 0), (1, 1), (60, 15), (61, 16), (80, 24)] {
        let mut app = logs_tab(width, height, fixture());
        for keys in ["w", "k k", "t", "/ x enter", "g", "f", "G", "S"] {
            press(&mut app, keys);
            render(&app, width, height);
        }
    }
}

#[test]
fn logs_matches_take_the_highlight() {
    let mut app = logs_tab(200, 50, fixture());
    type_search(&mut app, "ORDER");
    press(&mut app, "enter");
    let terminal = render(&app, 200, 50);
    let buffer = terminal.backend().buffer();
    let highlight = Theme::dark().highlight;
    let highlighted: String = buffer
        .content()
        .iter()
        .filter(|cell| cell.bg == highlight.bg.unwrap())
        .map(|cell| cell.symbol().to_owned())
        .collect();
    // Four lines show `order`; the fifth is past the long line's visible
    // start.
    assert_eq!(highlighted, "orderorderorderorder");
}

#[test]
fn logs_replicas_take_theme_colours() {
    let app = logs_tab(200, 50, fixture());
    let terminal = render(&app, 200, 50);
    let buffer = terminal.backend().buffer();
    let theme = Theme::dark();
    let row_of = |text: &str| {
        (0..buffer.area.height)
            .find(|y| {
                let line: String = (0..buffer.area.width)
                    .map(|x| buffer[(x, *y)].symbol().to_owned())
                    .collect();
                line.contains(text)
            })
            .unwrap_or_else(|| panic!("{text} is not on screen"))
    };
    // The source column starts after the border and the time.
    let source_x = 1 + 19;
    for (text, replica) in [("cache warm", 1), ("GET /healthz", 0), ("out of memory", 2)] {
        let y = row_of(text);
        assert_eq!(
            buffer[(source_x, y)].fg,
            theme.replica(replica).fg.unwrap(),
            "replica {replica} on the row of {text}"
        );
    }
}
