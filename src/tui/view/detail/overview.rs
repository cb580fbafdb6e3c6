//! The overview tab: the spec summary, the replicas, the health checks and
//! the latest events. Its row count matches
//! [`DetailState::overview_rows`], which bounds the scroll.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;
use ratatui::Frame;

use super::{cells, draw_scrolled, format_time, heading, muted, wire_name, TIME_WIDTH};
use crate::manifest::{Manifest, ResourceList};
use crate::model::{DeploymentView, Event, EventOutcome, HealthView, ReplicaState, ReplicaView};
use crate::tui::app::{DetailState, OVERVIEW_SUMMARY_ROWS};
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    theme: &Theme,
    detail: &DetailState,
) {
    let Some(deployment) = &detail.deployment else {
        let lines = vec![muted("loading the deployment…", theme)];
        draw_scrolled(frame, area, block, lines, 0);
        return;
    };
    let spec = detail
        .revisions
        .get(&deployment.revision)
        .map(|revision| &revision.spec);
    let mut lines = summary(deployment, spec, theme);
    debug_assert_eq!(lines.len(), OVERVIEW_SUMMARY_ROWS);
    lines.extend(replicas(deployment, detail.replica_cursor, theme));
    lines.extend(checks(detail.health.as_ref(), theme));
    lines.extend(events(detail.recent_events.as_deref(), theme));
    draw_scrolled(frame, area, block, lines, detail.overview_scroll);
}

fn field<'a>(label: &str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!(" {label:<10} "), theme.muted),
        Span::styled(clean(&value).into_owned(), theme.text),
    ])
}

fn summary<'a>(view: &DeploymentView, spec: Option<&Manifest>, theme: &Theme) -> Vec<Line<'a>> {
    let status = format!(
        "{} · health {} · replicas {}/{} · version {}",
        view.status, view.health, view.replicas.ready, view.replicas.desired, view.version
    );
    let endpoints = if view.endpoints.is_empty() {
        "none".to_owned()
    } else {
        view.endpoints.join(", ")
    };
    let mut lines = vec![field("status", status, theme)];
    match spec {
        Some(spec) => lines.extend(spec_lines(spec, theme)),
        None => lines.extend(
            ["run", "ports", "env", "resources", "strategy"]
                .map(|label| field(label, "loading…".to_owned(), theme)),
        ),
    }
    lines.push(field("endpoints", endpoints, theme));
    lines.push(Line::default());
    lines
}

/// Five rows: what runs, ports, env names, resources, strategy. Env values
/// stay out because they may hold configuration an operator must not see
/// over a shoulder; secrets are references either way.
fn spec_lines<'a>(spec: &Manifest, theme: &Theme) -> Vec<Line<'a>> {
    let run = match (&spec.image, &spec.run) {
        (Some(image), _) => format!("image {image}"),
        (None, Some(run)) => format!("command {}", run.command.join(" ")),
        (None, None) => "from source".to_owned(),
    };
    let ports: Vec<String> = spec
        .ports
        .iter()
        .map(|port| {
            let name = port
                .name
                .as_deref()
                .map(|name| format!("{name} "))
                .unwrap_or_default();
            format!(
                "{name}{}/{}",
                port.container_port,
                wire_name(&port.protocol)
            )
        })
        .collect();
    let env: Vec<&str> = spec.env.keys().map(String::as_str).collect();
    let strategy = format!(
        "{} (max surge {}, max unavailable {})",
        wire_name(&spec.strategy.kind),
        wire_name(&spec.strategy.max_surge),
        wire_name(&spec.strategy.max_unavailable)
    );
    vec![
        field("run", run, theme),
        field("ports", or_none(ports.join(", ")), theme),
        field("env", or_none(env.join(", ")), theme),
        field("resources", resources(spec), theme),
        field("strategy", strategy, theme),
    ]
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "none".to_owned()
    } else {
        text
    }
}

fn resources(spec: &Manifest) -> String {
    let list = |label: &str, list: &Option<ResourceList>| {
        list.as_ref().map(|list| {
            let cpu = list
                .cpu
                .as_ref()
                .map(wire_name)
                .unwrap_or_else(|| "-".to_owned());
            let memory = list
                .memory
                .as_ref()
                .map(wire_name)
                .unwrap_or_else(|| "-".to_owned());
            format!("{label} cpu {cpu} memory {memory}")
        })
    };
    let parts: Vec<String> = [
        list("requests", &spec.resources.requests),
        list("limits", &spec.resources.limits),
    ]
    .into_iter()
    .flatten()
    .collect();
    or_none(parts.join(" · "))
}

/// Builds the replica rows, with the one at `selected` marked as the
/// target of a restart.
fn replicas<'a>(view: &DeploymentView, selected: usize, theme: &Theme) -> Vec<Line<'a>> {
    // Containers get a column with the state of the image's HEALTHCHECK.
    let containers = view.replica_details.iter().any(|r| r.container.is_some());
    let mut header = vec![
        ("  #", 4),
        ("pid", 8),
        ("port", 6),
        ("state", 9),
        ("ready", 5),
        ("restarts", 8),
    ];
    if containers {
        header.push(("healthcheck", 11));
    }
    header.push(("last exit", 0));
    let mut lines = vec![
        heading(" replicas".to_owned(), theme),
        cells(&header, theme.muted),
    ];
    if view.replica_details.is_empty() {
        lines.push(muted("no replica", theme));
    }
    for (position, replica) in view.replica_details.iter().enumerate() {
        lines.push(replica_line(
            replica,
            position == selected,
            containers,
            theme,
        ));
    }
    lines
}

fn replica_line<'a>(
    replica: &ReplicaView,
    selected: bool,
    containers: bool,
    theme: &Theme,
) -> Line<'a> {
    let mut style = match replica.state {
        ReplicaState::Ready | ReplicaState::Running => theme.ok,
        ReplicaState::Failed => theme.error,
        _ => theme.warning,
    };
    let marker = if selected {
        style = style.patch(theme.selection);
        "▶"
    } else {
        " "
    };
    let dash = || "-".to_owned();
    let index = format!("{marker} {}", replica.index);
    let pid = replica.pid.map_or_else(dash, |pid| pid.to_string());
    let port = replica.port.map_or_else(dash, |port| port.to_string());
    let state = replica.state.to_string();
    let restarts = replica.restarts.to_string();
    let health = replica
        .container_health
        .map_or_else(dash, |h| h.to_string());
    let mut row: Vec<(&str, usize)> = vec![
        (&index, 4),
        (&pid, 8),
        (&port, 6),
        (&state, 9),
        (if replica.ready { "yes" } else { "no" }, 5),
        (&restarts, 8),
    ];
    if containers {
        row.push((&health, 11));
    }
    row.push((replica.last_exit.as_deref().unwrap_or("-"), 0));
    cells(&row, style)
}

fn checks<'a>(health: Option<&HealthView>, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" health checks".to_owned(), theme),
        cells(
            &[("  name", 26), ("status", 10), ("message", 0)],
            theme.muted,
        ),
    ];
    let Some(health) = health else {
        lines.push(muted("loading…", theme));
        return lines;
    };
    if health.checks.is_empty() {
        lines.push(muted("no health check", theme));
    }
    for check in &health.checks {
        let style = super::super::health_style(check.status, theme);
        lines.push(cells(
            &[
                (&format!("  {}", check.name), 26),
                (&check.status.to_string(), 10),
                (&check.message, 0),
            ],
            style,
        ));
    }
    lines
}

fn events<'a>(events: Option<&[Event]>, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" latest events".to_owned(), theme),
        event_header(theme),
    ];
    match events {
        None => lines.push(muted("loading…", theme)),
        Some([]) => lines.push(muted("no event", theme)),
        Some(events) => lines.extend(events.iter().map(|event| event_line(event, theme))),
    }
    lines
}

pub(super) fn event_header<'a>(theme: &Theme) -> Line<'a> {
    cells(
        &[
            ("  time", TIME_WIDTH + 2),
            ("user", 10),
            ("action", 12),
            ("result", 6),
            ("message", 0),
        ],
        theme.muted,
    )
}

pub(super) fn event_line<'a>(event: &Event, theme: &Theme) -> Line<'a> {
    let (outcome, style) = match event.outcome {
        EventOutcome::Ok => ("ok", theme.text),
        EventOutcome::Error => ("error", theme.error),
    };
    cells(
        &[
            (&format!("  {}", format_time(event.time)), TIME_WIDTH + 2),
            (&event.user, 10),
            (&event.action, 12),
            (outcome, 6),
            (&event.message, 0),
        ],
        style,
    )
}
