//! The secrets view: names and update times, never values.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use crate::tui::action::{Command, SecretsReadError};
use crate::tui::app::{format_age, App, SecretsState, SECRETS_NOTE_ROWS, UNLOCK_ADVICE};
use crate::tui::keymap::Context;
use crate::tui::sanitize::clean;
use crate::tui::theme::Theme;

/// Cells of the update time column: `2025-01-01 12:00:05 UTC`.
const TIME_WIDTH: u16 = 23;

pub(super) fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, state: &SecretsState) {
    frame.render_widget(Clear, area);
    let count = state
        .list
        .as_ref()
        .map(|list| format!(" · {}", list.len()))
        .unwrap_or_default();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent)
        .title(Span::styled(format!(" secrets{count} "), theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = u16::try_from(SECRETS_NOTE_ROWS).unwrap_or(1);
    let [table_area, note_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(rows)]).areas(inner);

    match (&state.error, &state.list) {
        (Some(SecretsReadError::Locked(message)), _) => {
            draw_locked(frame, table_area, theme, message)
        }
        (Some(SecretsReadError::Failed(message)), None) => frame.render_widget(
            Paragraph::new(Span::styled(
                format!("reading the secrets failed: {}", clean(message)),
                theme.error,
            ))
            .wrap(Wrap { trim: false }),
            table_area,
        ),
        (_, None) => frame.render_widget(
            Paragraph::new(Span::styled("  loading…", theme.muted)),
            table_area,
        ),
        (_, Some(list)) if list.is_empty() => {
            let key = app
                .keymap
                .first_key(Context::Secrets, Command::AddSecret)
                .filter(|_| !app.read_only)
                .map(|key| format!("; press {key} to add one"))
                .unwrap_or_default();
            frame.render_widget(
                Paragraph::new(Span::styled(
                    format!("  the vault has no secrets{key}"),
                    theme.muted,
                )),
                table_area,
            );
        }
        (_, Some(_)) => draw_table(frame, table_area, app, theme, state),
    }
    // The footer lists the keys.
    frame.render_widget(
        Paragraph::new(Span::styled(
            "values are never shown; manifests use a secret as ${SECRET:name} in env",
            theme.muted,
        )),
        note_area,
    );
}

fn draw_locked(frame: &mut Frame, area: Rect, theme: &Theme, message: &str) {
    let lines = vec![
        Line::from(Span::styled("The secret vault is locked.", theme.warning)),
        Line::from(Span::styled(clean(message).into_owned(), theme.text)),
        Line::default(),
        Line::from(Span::styled(UNLOCK_ADVICE, theme.muted)),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: &Theme, state: &SecretsState) {
    let Some(list) = &state.list else {
        return;
    };
    let page = usize::from(area.height.saturating_sub(1));
    let now = app.now();
    let rows = state.cursor.visible(list.len(), page).map(|index| {
        let info = &list[index];
        let style = if index == state.cursor.selected {
            theme.selection
        } else {
            theme.text
        };
        Row::new(vec![
            clean(&info.name).into_owned(),
            format_utc(info.updated_at),
            format!("{} ago", format_age(now - info.updated_at)),
        ])
        .style(style)
    });
    let header = Row::new(vec!["NAME", "UPDATED", "AGE"]).style(theme.muted);
    let table = Table::new(
        rows,
        [
            Constraint::Min(16),
            Constraint::Length(TIME_WIDTH),
            Constraint::Length(8),
        ],
    )
    .header(header);
    frame.render_widget(table, area);
}

fn format_utc(time: time::OffsetDateTime) -> String {
    let utc = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}
