//! The autoscale tab: where the count comes from, what each target reads
//! and the count it recommends, the HPA-style conditions and the recent
//! decisions with their reasons. Its row count matches [`DetailState::autoscale_rows`],
//! which bounds the scroll.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use time::OffsetDateTime;

use super::{cells, draw_scrolled, format_time, heading, muted, TIME_WIDTH};
use crate::autoscale::{
    AutoscaleSource, AutoscaleView, Condition, Decision, LimitReason, MetricReading, Target,
};
use crate::tui::action::Command;
use crate::tui::app::{App, DetailState, AUTOSCALE_SUMMARY_ROWS};
use crate::tui::keymap::Context;
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Cells of the decisions' limit column. It contains the HPA's name of the
/// limit and the rule that applied, such as `ScaleUpLimit (Pods 4 per 15s)`.
const LIMIT_WIDTH: usize = 32;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    app: &App,
    theme: &Theme,
    detail: &DetailState,
) {
    let row = app
        .deployments
        .all()
        .iter()
        .find(|row| row.key == detail.key);
    if row.is_some_and(|row| row.autoscaling.is_none()) {
        draw_off(frame, area, block, app, theme, detail);
        return;
    }
    let Some(view) = &detail.autoscale else {
        let lines = vec![muted("loading the autoscaling…", theme)];
        draw_scrolled(frame, area, block, lines, 0);
        return;
    };
    let mut lines = summary(view, theme);
    debug_assert_eq!(lines.len(), AUTOSCALE_SUMMARY_ROWS);
    lines.extend(targets(view, theme));
    lines.extend(conditions(&view.conditions, theme));
    lines.extend(decisions(view, theme));
    debug_assert_eq!(lines.len(), detail.autoscale_rows());
    draw_scrolled(frame, area, block, lines, detail.autoscale_scroll);
}

/// Says that autoscaling is off and how to turn it on.
fn draw_off(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    app: &App,
    theme: &Theme,
    detail: &DetailState,
) {
    let key = &detail.key;
    let name = clean(&app.palette_target(key)).into_owned();
    let line = |text: String, style| Line::from(Span::styled(text, style));
    let mut lines = vec![
        line(
            format!(
                " autoscaling is off for {} ({})",
                clean(&key.name),
                clean(&key.environment)
            ),
            theme.text,
        ),
        Line::default(),
    ];
    if app.read_only {
        // The palette rejects changes under --read-only; the CLI does not.
        lines.push(line(
            " the dashboard runs with --read-only; turn it on with".to_owned(),
            theme.muted,
        ));
        lines.push(line(
            format!(
                "   shipdeck autoscale {} --min 1 --max 5 --cpu 70",
                clean(&key.name)
            ),
            theme.accent,
        ));
    } else {
        let press = app
            .keymap
            .first_key(Context::Detail, Command::Autoscale)
            .map(|key| format!("press {key}, or "))
            .unwrap_or_default();
        lines.push(line(
            format!(" to turn it on, {press}type in the palette"),
            theme.muted,
        ));
        lines.push(line(
            "   :autoscale NAME MIN MAX [cpu=PERCENT] [memory=PERCENT] [METRIC=VALUE]..."
                .to_owned(),
            theme.accent,
        ));
        lines.push(line(
            format!("   as in :autoscale {name} 1 5 cpu=70"),
            theme.muted,
        ));
    }
    lines.push(Line::default());
    lines.push(line(
        " Autoscaling keeps the replica count between MIN and MAX, deciding as a".to_owned(),
        theme.muted,
    ));
    lines.push(line(
        " Kubernetes HorizontalPodAutoscaler does, and records why in this tab.".to_owned(),
        theme.muted,
    ));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn field<'a>(label: &str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!(" {label:<9} "), theme.muted),
        Span::styled(value, theme.text),
    ])
}

fn summary<'a>(view: &AutoscaleView, theme: &Theme) -> Vec<Line<'a>> {
    let source = match view.source {
        AutoscaleSource::Shipdeck => "shipdeck's autoscaler",
        AutoscaleSource::Cluster => "the cluster's HorizontalPodAutoscaler",
    };
    let last = view
        .last_scale_ms
        .and_then(time_of)
        .map_or_else(|| "never".to_owned(), format_time);
    let replicas = format!(
        "{}..{} · now {} → desired {} · last scaled {last}",
        view.min_replicas, view.max_replicas, view.current_replicas, view.desired_replicas
    );
    vec![
        field("source", source.to_owned(), theme),
        field("replicas", replicas, theme),
        Line::default(),
    ]
}

fn targets<'a>(view: &AutoscaleView, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" targets".to_owned(), theme),
        cells(
            &[
                ("  metric", 22),
                ("current", 9),
                ("target", 10),
                ("ready", 6),
                ("missing", 8),
                ("unready", 8),
                ("asks", 0),
            ],
            theme.muted,
        ),
    ];
    if view.targets.is_empty() {
        lines.push(muted("no target", theme));
    }
    for target in &view.targets {
        let reading = view
            .metrics
            .iter()
            .find(|reading| &reading.target == target);
        lines.push(target_line(target, reading, theme));
        if let Some(problem) = reading.and_then(|reading| reading.problem.as_deref()) {
            lines.push(Line::from(Span::styled(
                format!("    {}", clean(problem)),
                theme.warning,
            )));
        }
    }
    lines
}

fn target_line<'a>(target: &Target, reading: Option<&MetricReading>, theme: &Theme) -> Line<'a> {
    let (metric, wanted, percent) = match target {
        Target::CpuUtilization { percent } => ("cpu".to_owned(), format!("{percent}%"), true),
        Target::MemoryUtilization { percent } => ("memory".to_owned(), format!("{percent}%"), true),
        Target::AverageValue { metric, value } => (metric.clone(), format!("{value}"), false),
    };
    let current = reading.and_then(|reading| reading.current).map_or_else(
        || "-".to_owned(),
        |value| {
            if percent {
                format!("{value:.0}%")
            } else {
                format!("{value:.2}")
            }
        },
    );
    let count = |value: Option<u32>| value.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let style = if reading.is_some_and(|reading| reading.problem.is_some()) {
        theme.warning
    } else {
        theme.text
    };
    cells(
        &[
            (&format!("  {metric}"), 22),
            (&current, 9),
            (&wanted, 10),
            (&count(reading.map(|reading| reading.ready)), 6),
            (&count(reading.map(|reading| reading.missing)), 8),
            (&count(reading.map(|reading| reading.unready)), 8),
            (
                &count(reading.and_then(|reading| reading.recommendation)),
                0,
            ),
        ],
        style,
    )
}

fn conditions<'a>(conditions: &[Condition], theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" conditions".to_owned(), theme),
        cells(
            &[
                ("  type", 16),
                ("status", 7),
                ("reason", 24),
                ("message", 0),
            ],
            theme.muted,
        ),
    ];
    if conditions.is_empty() {
        lines.push(muted("none reported yet", theme));
    }
    for condition in conditions {
        let style = if condition.status {
            theme.text
        } else {
            theme.warning
        };
        let status = if condition.status { "True" } else { "False" };
        lines.push(cells(
            &[
                (&format!("  {}", condition.kind), 16),
                (status, 7),
                (&condition.reason, 24),
                (&condition.message, 0),
            ],
            style,
        ));
    }
    lines
}

fn decisions<'a>(view: &AutoscaleView, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" decisions, newest first".to_owned(), theme),
        cells(
            &[
                ("  time", TIME_WIDTH + 2),
                ("from", 4),
                ("asked", 5),
                ("stable", 6),
                ("limit", LIMIT_WIDTH),
                ("to", 0),
            ],
            theme.muted,
        ),
    ];
    match view.source {
        AutoscaleSource::Cluster => lines.push(muted(
            "the cluster keeps no decisions, only the status above",
            theme,
        )),
        AutoscaleSource::Shipdeck if view.decisions.is_empty() => lines.push(muted(
            "no decision yet; the first comes at the next evaluation",
            theme,
        )),
        AutoscaleSource::Shipdeck => {
            for decision in &view.decisions {
                lines.extend(decision_lines(decision, theme));
            }
        }
    }
    lines
}

/// Builds two rows: the numbers, then the reason under them.
fn decision_lines<'a>(decision: &Decision, theme: &Theme) -> [Line<'a>; 2] {
    let time = time_of(decision.at_ms).map_or_else(|| decision.at_ms.to_string(), format_time);
    let recommendation = decision
        .recommendation
        .map_or_else(|| "-".to_owned(), |count| count.to_string());
    let limit = match &decision.limiting_rule {
        Some(rule) => format!("{} ({rule})", limit_name(decision.limit)),
        None => limit_name(decision.limit).to_owned(),
    };
    // Decisions that changed the count are drawn in the accent colour.
    let style = if decision.scales() {
        theme.accent
    } else {
        theme.text
    };
    let numbers = cells(
        &[
            (&format!("  {time}"), TIME_WIDTH + 2),
            (&decision.current_replicas.to_string(), 4),
            (&recommendation, 5),
            (&decision.stabilized.to_string(), 6),
            (&limit, LIMIT_WIDTH),
            (&decision.desired.to_string(), 0),
        ],
        style,
    );
    let reason = Line::from(Span::styled(
        format!("    {}", clean(&decision.reason)),
        theme.muted,
    ));
    [numbers, reason]
}

/// Returns the HPA's name of a limit, as its `ScalingLimited` condition
/// gives it.
fn limit_name(limit: LimitReason) -> &'static str {
    match limit {
        LimitReason::DesiredWithinRange => "DesiredWithinRange",
        LimitReason::ScaleUpLimit => "ScaleUpLimit",
        LimitReason::ScaleDownLimit => "ScaleDownLimit",
        LimitReason::TooManyReplicas => "TooManyReplicas",
        LimitReason::TooFewReplicas => "TooFewReplicas",
        LimitReason::ScalingDisabled => "ScalingDisabled",
    }
}

fn time_of(ms: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
