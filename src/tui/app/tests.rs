//! Key sequences, data arrivals and clock ticks replayed against the state.

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;

use super::alerts::tests::firing;
use super::deployments::tests::view;
use super::*;
use crate::model::DeploymentView;
use crate::tui::action::KeyCodeKey;

const NOW: OffsetDateTime = datetime!(2025-01-01 12:00:00 UTC);

fn new_app() -> (App, ManualClock) {
    let clock = ManualClock::at(NOW);
    let mut app = App::new(
        AppOptions {
            keymap: Keymap::default(),
            read_only: false,
            socket: "/home/op/.local/share/shipdeck/run/agent.sock".to_owned(),
        },
        Arc::new(clock.clone()),
    );
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    (app, clock)
}

fn fleet(count: usize) -> Vec<DeploymentView> {
    (0..count)
        .map(|index| {
            view(
                &format!("app-{index:04}"),
                "staging",
                DeploymentStatus::Deployed,
            )
        })
        .collect()
}

/// Presses keys given as keymap text, one key per item.
fn press(app: &mut App, keys: &[&str]) -> Vec<Effect> {
    keys.iter()
        .flat_map(|key| {
            let press = crate::tui::keymap::parse_key(key).unwrap();
            app.apply(Action::Key(press))
        })
        .collect()
}

fn type_text(app: &mut App, text: &str) {
    for character in text.chars() {
        app.apply(Action::Key(KeyPress::char(character)));
    }
}

fn selected_name(app: &App) -> String {
    app.deployments.selected().unwrap().name.clone()
}

#[test]
fn movement_keys_move_the_selection() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(fleet(100)));
    press(&mut app, &["j", "j", "down"]);
    assert_eq!(selected_name(&app), "app-0003");
    press(&mut app, &["k"]);
    assert_eq!(selected_name(&app), "app-0002");
    press(&mut app, &["G"]);
    assert_eq!(selected_name(&app), "app-0099");
    press(&mut app, &["g"]);
    assert_eq!(selected_name(&app), "app-0000");
    press(&mut app, &["pagedown"]);
    assert_eq!(
        selected_name(&app),
        "app-0017",
        "a page is the 17 rows of an 80×24 table"
    );
}

#[test]
fn filter_is_typed_live_and_kept_with_enter() {
    let (mut app, _) = new_app();
    let mut views = fleet(3);
    views.push(view("web", "production", DeploymentStatus::Failed));
    app.apply(Action::Deployments(views));
    press(&mut app, &["/"]);
    assert_eq!(app.contexts(), [Context::Filter]);
    type_text(&mut app, "web status:failed");
    assert_eq!(app.deployments.len(), 1, "the filter applies while typing");
    press(&mut app, &["enter"]);
    assert!(app.layers.is_empty());
    assert_eq!(app.deployments.filter_text, "web status:failed");
    assert_eq!(selected_name(&app), "web");
    press(&mut app, &["esc"]);
    assert_eq!(
        app.deployments.len(),
        4,
        "esc in the table clears the filter"
    );
}

#[test]
fn filter_keys_type_instead_of_acting() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(fleet(3)));
    let effects = press(&mut app, &["/", "q", "j", "?"]);
    assert!(!effects.contains(&Effect::Quit), "q types a q");
    assert_eq!(app.deployments.filter_text, "qj?");
    press(&mut app, &["backspace"]);
    assert_eq!(app.deployments.filter_text, "qj");
    press(&mut app, &["ctrl-u"]);
    assert_eq!(app.deployments.filter_text, "");
}

#[test]
fn cancelled_filter_restores_the_previous_one() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(fleet(3)));
    press(&mut app, &["/"]);
    type_text(&mut app, "0001");
    press(&mut app, &["enter", "/"]);
    type_text(&mut app, "x");
    assert_eq!(app.deployments.len(), 0);
    press(&mut app, &["esc"]);
    assert_eq!(app.deployments.filter_text, "0001");
    assert_eq!(app.deployments.len(), 1);
}

#[test]
fn help_opens_over_the_table_and_q_closes_it() {
    let (mut app, _) = new_app();
    press(&mut app, &["?"]);
    assert!(matches!(
        app.layers.last(),
        Some(Layer::Help {
            context: Context::Deployments,
            ..
        })
    ));
    let effects = press(&mut app, &["q"]);
    assert!(!effects.contains(&Effect::Quit), "q closes the help first");
    assert!(app.layers.is_empty());
    let effects = press(&mut app, &["q"]);
    assert!(effects.contains(&Effect::Quit));
}

#[test]
fn help_lists_every_command_of_the_context() {
    let keymap = Keymap::default();
    let lines = help_lines(&keymap, Context::Deployments, false);
    for command in Context::Deployments
        .commands()
        .iter()
        .chain(Context::Global.commands())
    {
        assert!(
            lines.iter().any(
                |line| matches!(line, HelpLine::Binding(binding) if binding.command == *command)
            ),
            "{command} is in the help"
        );
    }
    assert!(lines.iter().any(
        |line| matches!(line, HelpLine::Binding(binding) if binding.command == Command::OpenDetail)
    ));
}

#[test]
fn tab_switches_focus_only_with_alerts_shown() {
    let (mut app, _) = new_app();
    press(&mut app, &["tab"]);
    assert_eq!(app.focus, Pane::Deployments);
    press(&mut app, &["a", "tab"]);
    assert_eq!(app.focus, Pane::Alerts);
    assert_eq!(app.contexts(), [Context::Alerts, Context::Global]);
    press(&mut app, &["a"]);
    assert_eq!(
        app.focus,
        Pane::Deployments,
        "hiding the pane returns the focus"
    );
}

#[test]
fn identical_poll_does_not_redraw() {
    let (mut app, _) = new_app();
    let effects = app.apply(Action::Deployments(fleet(5)));
    assert!(effects.contains(&Effect::Redraw));
    assert!(!app
        .apply(Action::Deployments(fleet(5)))
        .contains(&Effect::Redraw));
    let alerts = vec![firing("app-0001", "high-cpu", 1)];
    assert!(app
        .apply(Action::Alerts(alerts.clone()))
        .contains(&Effect::Redraw));
    assert!(!app.apply(Action::Alerts(alerts)).contains(&Effect::Redraw));
}

#[test]
fn visible_rows_are_watched_once() {
    let (mut app, _) = new_app();
    let effects = app.apply(Action::Deployments(fleet(100)));
    let watched = effects.iter().find_map(|effect| match effect {
        Effect::WatchMetrics(keys) => Some(keys.clone()),
        _ => None,
    });
    assert_eq!(watched.map(|keys| keys.len()), Some(17));
    let again = app.apply(Action::Deployments(fleet(100)));
    assert!(!again
        .iter()
        .any(|effect| matches!(effect, Effect::WatchMetrics(_))));
    let scrolled = press(&mut app, &["G"]);
    assert!(scrolled.iter().any(|effect| matches!(effect, Effect::WatchMetrics(keys) if keys.last().unwrap().name == "app-0099")));
}

#[test]
fn status_changes_and_alerts_become_toasts() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(vec![view(
        "web",
        "staging",
        DeploymentStatus::Deploying,
    )]));
    app.apply(Action::Alerts(Vec::new()));
    assert!(
        app.toasts.is_empty(),
        "the first lists are the starting point"
    );
    app.apply(Action::Deployments(vec![view(
        "web",
        "staging",
        DeploymentStatus::Failed,
    )]));
    app.apply(Action::Alerts(vec![firing("web", "high-cpu", 1)]));
    let messages: Vec<&str> = app
        .toasts
        .iter()
        .map(|toast| toast.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "web (staging): deploying → failed",
            "alert high-cpu firing on web (production)"
        ]
    );
    app.apply(Action::Alerts(Vec::new()));
    assert_eq!(
        app.toasts.iter().last().unwrap().message,
        "alert high-cpu resolved on web (production)"
    );
}

#[test]
fn toasts_expire_on_a_tick() {
    let (mut app, clock) = new_app();
    app.toast(ToastLevel::Info, "hello".to_owned());
    clock.advance(Duration::from_secs(4));
    app.apply(Action::Tick);
    assert!(!app.toasts.is_empty());
    clock.advance(Duration::from_secs(1));
    let effects = app.apply(Action::Tick);
    assert!(app.toasts.is_empty());
    assert!(effects.contains(&Effect::Redraw));
}

#[test]
fn tick_redraws_only_when_an_age_changes() {
    let (mut app, clock) = new_app();
    let mut young = view("young", "staging", DeploymentStatus::Deployed);
    young.created_at = NOW - time::Duration::seconds(30);
    app.apply(Action::Deployments(vec![young]));
    clock.advance(Duration::from_millis(400));
    assert!(
        !app.apply(Action::Tick).contains(&Effect::Redraw),
        "still 30s"
    );
    clock.advance(Duration::from_millis(700));
    assert!(app.apply(Action::Tick).contains(&Effect::Redraw), "now 31s");

    let (mut app, clock) = new_app();
    let mut old = view("old", "staging", DeploymentStatus::Deployed);
    old.created_at = NOW - time::Duration::hours(3);
    app.apply(Action::Deployments(vec![old]));
    clock.advance(Duration::from_secs(1));
    assert!(
        !app.apply(Action::Tick).contains(&Effect::Redraw),
        "3h stays 3h"
    );
}

#[test]
fn lost_connection_keeps_data_and_reconnects() {
    let (mut app, clock) = new_app();
    app.apply(Action::Deployments(fleet(2)));
    assert_eq!(app.connection, Connection::Connected);
    let effects = app.apply(Action::ConnectionLost {
        reason: "connection refused".to_owned(),
    });
    assert!(effects.contains(&Effect::Redraw));
    assert!(matches!(&app.connection, Connection::Lost { since, .. } if *since == NOW));
    assert_eq!(app.deployments.total(), 2, "the last data stays");
    clock.advance(Duration::from_secs(3));
    let again = app.apply(Action::ConnectionLost {
        reason: "connection refused".to_owned(),
    });
    assert!(
        !again.contains(&Effect::Redraw),
        "the same loss draws nothing new"
    );
    app.apply(Action::ConnectionRestored);
    assert_eq!(app.connection, Connection::Connected);
    assert_eq!(
        app.toasts.iter().last().unwrap().message,
        "reconnected to the agent"
    );
}

#[test]
fn fetch_errors_show_until_a_read_succeeds() {
    let (mut app, _) = new_app();
    app.apply(Action::FetchFailed {
        what: "the deployments".to_owned(),
        message: "the store is closed".to_owned(),
    });
    assert_eq!(
        app.last_error.as_deref(),
        Some("reading the deployments failed: the store is closed")
    );
    app.apply(Action::Deployments(fleet(1)));
    assert_eq!(app.last_error, None);
}

#[test]
fn sort_keys_cycle_and_reverse() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(fleet(3)));
    press(&mut app, &["O"]);
    assert_eq!(
        selected_name(&app),
        "app-0000",
        "the selection follows the deployment"
    );
    assert_eq!(app.deployments.page(3).next().unwrap().name, "app-0002");
    press(&mut app, &["o"]);
    assert_eq!(app.deployments.sort.column, SortColumn::Environment);
}

#[test]
fn unbound_keys_do_nothing() {
    let (mut app, _) = new_app();
    let effects = app.apply(Action::Key(KeyPress::plain(KeyCodeKey::F(9))));
    assert!(effects.is_empty());
    let effects = app.apply(Action::Key(KeyPress::plain(KeyCodeKey::Enter)));
    assert!(effects.is_empty(), "enter waits for the detail view");
}

#[test]
fn tiny_terminal_has_no_page() {
    let (mut app, _) = new_app();
    app.apply(Action::Resize {
        width: 0,
        height: 0,
    });
    app.apply(Action::Deployments(fleet(10)));
    assert_eq!(app.table_page(), 0);
    press(&mut app, &["j", "G", "pagedown"]);
    assert_eq!(app.deployments.page(app.table_page()).count(), 0);
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    assert_eq!(app.deployments.page(app.table_page()).count(), 10);
}

#[test]
fn ages_use_the_largest_unit() {
    assert_eq!(format_age(time::Duration::seconds(-5)), "0s");
    assert_eq!(format_age(time::Duration::seconds(59)), "59s");
    assert_eq!(format_age(time::Duration::seconds(60)), "1m");
    assert_eq!(format_age(time::Duration::hours(47)), "47h");
    assert_eq!(format_age(time::Duration::hours(48)), "2d");
}

#[test]
fn filter_commands_need_the_filter_open() {
    let (mut app, _) = new_app();
    app.apply(Action::Deployments(fleet(3)));
    press(&mut app, &["/"]);
    type_text(&mut app, "0001");
    press(&mut app, &["enter", "?"]);
    let effects = app.apply(Action::Command(Command::CancelFilter));
    assert!(effects.is_empty());
    assert!(
        matches!(app.layers.last(), Some(Layer::Help { .. })),
        "the help stays open"
    );
    app.apply(Action::Command(Command::DeleteChar));
    assert_eq!(app.deployments.filter_text, "0001");
}

#[test]
fn enter_opens_detail_and_esc_returns() {
    let (mut app, _clock) = new_app();
    app.apply(Action::Deployments(fleet(3)));
    press(&mut app, &["j"]);
    let effects = press(&mut app, &["enter"]);
    let detail = app.detail.as_ref().expect("enter opens the detail view");
    assert_eq!(detail.key, DeploymentKey::new("app-0001", "staging"));
    assert_eq!(app.focus, Pane::Detail);
    assert!(
        effects.contains(&Effect::WatchMetrics(Vec::new())),
        "table hidden"
    );
    assert!(effects.iter().any(|effect| matches!(
        effect,
        Effect::WatchDetail(Some(request)) if request.tab == DetailTab::Overview
    )));

    let effects = press(&mut app, &["tab", "3"]);
    assert_eq!(app.focus, Pane::Detail, "tab switches tabs, not the focus");
    assert_eq!(
        app.detail.as_ref().map(|detail| detail.tab),
        Some(DetailTab::History)
    );
    let tabs: Vec<DetailTab> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::WatchDetail(Some(request)) => Some(request.tab),
            _ => None,
        })
        .collect();
    assert_eq!(tabs, [DetailTab::Metrics, DetailTab::History]);

    let effects = press(&mut app, &["esc"]);
    assert!(app.detail.is_none());
    assert_eq!(app.focus, Pane::Deployments);
    assert!(effects.contains(&Effect::WatchDetail(None)));
    assert_eq!(
        app.deployments.selected().map(|row| row.name.as_str()),
        Some("app-0001")
    );
}

#[test]
fn detail_ignores_reads_for_other_deployments() {
    let (mut app, _clock) = new_app();
    app.apply(Action::Deployments(fleet(2)));
    press(&mut app, &["enter", "5"]);
    let effects = app.apply(Action::Detail {
        key: DeploymentKey::new("app-0001", "staging"),
        data: DetailData::Timeline(Vec::new()),
    });
    assert!(effects.is_empty());
    assert_eq!(
        app.detail
            .as_ref()
            .and_then(|detail| detail.timeline.clone()),
        None
    );
    let effects = app.apply(Action::Detail {
        key: DeploymentKey::new("app-0000", "staging"),
        data: DetailData::Timeline(Vec::new()),
    });
    assert_eq!(effects, [Effect::Redraw]);
}

#[test]
fn enter_on_empty_table_does_nothing() {
    let (mut app, _clock) = new_app();
    app.apply(Action::Deployments(Vec::new()));
    let effects = press(&mut app, &["enter"]);
    assert!(app.detail.is_none());
    assert!(effects.is_empty());
}

#[test]
fn resize_keeps_detail_selection_visible() {
    let (mut app, _clock) = new_app();
    app.apply(Action::Deployments(fleet(1)));
    press(&mut app, &["enter", "5"]);
    let events: Vec<crate::model::Event> = (0..100)
        .map(|seq| crate::model::Event {
            seq,
            time: NOW,
            deployment: None,
            user: "op".to_owned(),
            action: "scale".to_owned(),
            outcome: crate::model::EventOutcome::Ok,
            message: String::new(),
        })
        .collect();
    app.apply(Action::Detail {
        key: DeploymentKey::new("app-0000", "staging"),
        data: DetailData::Timeline(events),
    });
    app.apply(Action::Resize {
        width: 200,
        height: 50,
    });
    press(&mut app, &["G"]);
    app.apply(Action::Resize {
        width: 80,
        height: 24,
    });
    let page = app.detail_page(Command::MoveDown);
    let cursor = app.detail.as_ref().map(|detail| detail.timeline_cursor);
    let cursor = cursor.expect("the detail view is open");
    assert_eq!(cursor.selected, 99);
    assert!(
        cursor.visible(100, page).contains(&99),
        "{cursor:?} page {page}"
    );
    assert_eq!(cursor.offset, 100 - page, "the page is full");
}

#[test]
fn help_leaves_out_shadowed_global_keys() {
    let keymap = Keymap::default();
    let lines = help_lines(&keymap, Context::Detail, false);
    let focus = lines.iter().find_map(|line| match line {
        HelpLine::Binding(binding) if binding.command == Command::FocusNext => Some(binding),
        _ => None,
    });
    let focus = focus.expect("focus-next is listed");
    assert!(focus.keys.is_empty(), "tab switches tabs here: {focus:?}");
    let deployments = help_lines(&keymap, Context::Deployments, false);
    assert!(deployments.iter().any(|line| matches!(
        line,
        HelpLine::Binding(binding) if binding.command == Command::FocusNext && !binding.keys.is_empty()
    )));
}
