//! The alerts tab: the deployment's rules, their states and its silences.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Block;
use ratatui::Frame;

use super::{cells, draw_scrolled, format_time, heading, muted, wire_name, TIME_WIDTH};
use crate::model::AlertRuleView;
use crate::monitor::alerts::{AlertState, AlertView, SilenceTarget, SilenceView};
use crate::tui::app::DetailState;
use crate::tui::theme::Theme;

pub(super) fn draw(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    theme: &Theme,
    detail: &DetailState,
) {
    let mut lines = rules(detail.alert_rules.as_deref(), theme);
    lines.extend(states(detail.alert_states.as_deref(), theme));
    lines.extend(silences(detail.silences.as_deref(), theme));
    // The selected rule or silence is what `silence`, `ack` and
    // `unsilence` act on.
    if let Some(line) = detail
        .selected_alerts_row()
        .and_then(|row| lines.get_mut(row))
    {
        mark_selected(line, theme);
    }
    draw_scrolled(frame, area, block, lines, detail.alerts_scroll);
}

/// Puts the selection marker in a row's first cell and the selection
/// style on it.
fn mark_selected(line: &mut Line<'_>, theme: &Theme) {
    for span in &mut line.spans {
        span.style = span.style.patch(theme.selection);
    }
    if let Some(first) = line.spans.first_mut() {
        if let Some(rest) = first.content.strip_prefix(' ') {
            first.content = format!("▶{rest}").into();
        }
    }
}

/// Builds the rows under a section's header: `loading…`, `empty`, or the rows.
fn section<'a, T>(
    items: Option<&[T]>,
    empty: &str,
    theme: &Theme,
    row: impl Fn(&T) -> Line<'a>,
) -> Vec<Line<'a>> {
    match items {
        None => vec![muted("loading…", theme)],
        Some([]) => vec![muted(empty, theme)],
        Some(items) => items.iter().map(row).collect(),
    }
}

fn rules<'a>(rules: Option<&[AlertRuleView]>, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" rules".to_owned(), theme),
        cells(
            &[
                ("  name", 20),
                ("condition", 32),
                ("severity", 10),
                ("source", 0),
            ],
            theme.muted,
        ),
    ];
    lines.extend(section(rules, "no alert rule", theme, |view| {
        let rule = &view.rule;
        let for_duration = rule
            .for_duration
            .map(|duration| format!(" for {}", String::from(duration)))
            .unwrap_or_default();
        let condition = format!(
            "{} {} {}{for_duration}",
            rule.metric,
            wire_name(&rule.condition),
            rule.threshold
        );
        let source = if view.active {
            view.source.as_str().to_owned()
        } else {
            format!("{} (replaced)", view.source.as_str())
        };
        let style = if view.active { theme.text } else { theme.muted };
        cells(
            &[
                (&format!("  {}", rule.name), 20),
                (&condition, 32),
                (rule.severity.as_deref().unwrap_or("-"), 10),
                (&source, 0),
            ],
            style,
        )
    }));
    lines
}

fn states<'a>(alerts: Option<&[AlertView]>, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" states".to_owned(), theme),
        cells(
            &[
                ("  rule", 20),
                ("state", 10),
                ("since", TIME_WIDTH),
                ("note", 0),
            ],
            theme.muted,
        ),
    ];
    lines.extend(section(alerts, "no alert evaluated yet", theme, |alert| {
        let (state, since, style, acknowledged) = match &alert.state {
            AlertState::Inactive => ("inactive", None, theme.muted, None),
            AlertState::Pending { since, .. } => ("pending", Some(*since), theme.warning, None),
            AlertState::Firing {
                since,
                acknowledged,
                ..
            } => (
                "firing",
                Some(*since),
                theme.error,
                acknowledged.as_ref().map(|ack| ack.author.clone()),
            ),
            AlertState::Resolved { at, .. } => ("resolved", Some(*at), theme.ok, None),
        };
        let mut notes = Vec::new();
        if alert.silenced {
            notes.push("silenced".to_owned());
        }
        if let Some(author) = acknowledged {
            notes.push(format!("acknowledged by {author}"));
        }
        cells(
            &[
                (&format!("  {}", alert.rule), 20),
                (state, 10),
                (
                    &since.map(format_time).unwrap_or_else(|| "-".to_owned()),
                    TIME_WIDTH,
                ),
                (&notes.join(", "), 0),
            ],
            style,
        )
    }));
    lines
}

fn silences<'a>(silences: Option<&[SilenceView]>, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        heading(" silences".to_owned(), theme),
        cells(
            &[
                ("  target", 20),
                ("until", TIME_WIDTH),
                ("author", 12),
                ("comment", 0),
            ],
            theme.muted,
        ),
    ];
    lines.extend(section(silences, "no silence", theme, |view| {
        let silence = &view.silence;
        let target = match &silence.target {
            SilenceTarget::Rule(rule) => rule.clone(),
            SilenceTarget::Deployment => "every rule".to_owned(),
        };
        cells(
            &[
                (&format!("  {target}"), 20),
                (&format_time(silence.until), TIME_WIDTH),
                (&silence.author, 12),
                (&silence.comment, 0),
            ],
            theme.text,
        )
    }));
    lines
}
