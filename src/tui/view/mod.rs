//! Drawing a frame from `&App`. Views only read the state: they never
//! fetch, lock or change anything, so a frame is a pure function of the
//! state, the theme and the terminal size, which the snapshot tests pin.

mod alerts;
mod deployments;
mod detail;
mod dialogs;
mod editor;
mod footer;
mod header;
mod help;
mod secrets;
mod toasts;

use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::action::Command;
use super::app::{status_level, App, Layer, ToastLevel};
use super::keymap::Context;
use super::layout::{self, Areas, MIN_HEIGHT, MIN_WIDTH};
use super::theme::Theme;
use crate::model::{DeploymentStatus, Health};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    if !layout::fits(area.width, area.height) {
        draw_too_small(frame, area, app, theme);
        return;
    }
    let areas = Areas::new(area, app.alerts.shown);
    header::draw(frame, areas.header, app, theme);
    match &app.detail {
        Some(state) => detail::draw(frame, areas.table, app, theme, state),
        None => deployments::draw(frame, areas.table, app, theme),
    }
    if let Some(alerts_area) = areas.alerts {
        alerts::draw(frame, alerts_area, app, theme);
    }
    footer::draw(frame, areas.footer, app, theme);
    // The editor and the secrets view cover the body, under any dialog.
    let body = Areas::new(area, false).table;
    for layer in &app.layers {
        match (layer, &app.editor, &app.secrets) {
            (Layer::Editor, Some(editor), _) => editor::draw(frame, body, app, theme, editor),
            (Layer::Secrets, _, Some(secrets)) => secrets::draw(frame, body, app, theme, secrets),
            _ => {}
        }
    }
    toasts::draw(frame, areas.footer, app, theme);
    match app.layers.last() {
        Some(Layer::Help { context, cursor }) => {
            help::draw(frame, area, app, theme, *context, *cursor)
        }
        Some(Layer::Confirm(dialog)) => dialogs::draw_confirm(frame, area, app, theme, dialog),
        Some(Layer::Prompt(prompt)) => dialogs::draw_prompt(frame, area, app, theme, prompt),
        Some(Layer::Form(form)) => dialogs::draw_form(frame, area, app, theme, form),
        Some(Layer::DiscardEdits) => dialogs::draw_question(
            frame,
            area,
            app,
            theme,
            " unsent changes ",
            "Discard the changes to this manifest? They are not sent.".to_owned(),
        ),
        Some(Layer::DeleteSecret { name }) => dialogs::draw_question(
            frame,
            area,
            app,
            theme,
            " delete secret ",
            format!(
                "Delete secret {}? Deployments that name it fail to start new replicas until it is set again.",
                super::sanitize::clean(name)
            ),
        ),
        // The logs tab draws its input line in place of its status line.
        Some(Layer::Filter { .. } | Layer::LogsInput(_) | Layer::Editor | Layer::Secrets) | None => {}
    }
}

fn draw_too_small(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let advice = match app.keymap.first_key(Context::Global, Command::Quit) {
        Some(key) => format!("Enlarge the window, or press {key} to quit."),
        None => "Enlarge the window.".to_owned(),
    };
    let text = vec![
        Line::from(Span::styled("shipdeck", theme.title)),
        Line::from(format!(
            "The terminal is {}×{}; the dashboard needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from(Span::styled(advice, theme.muted)),
    ];
    let lines = u16::try_from(text.len()).unwrap_or(u16::MAX);
    // Centre vertically when the text fits without wrapping.
    let top = area.height.saturating_sub(lines) / 2;
    let inner = Rect {
        y: area.y + top,
        height: area.height - top,
        ..area
    };
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        inner,
    );
}

/// Returns the style of a status, by meaning.
fn status_style(status: DeploymentStatus, theme: &Theme) -> Style {
    level_style(status_level(status), theme)
}

fn level_style(level: ToastLevel, theme: &Theme) -> Style {
    match level {
        ToastLevel::Ok => theme.ok,
        ToastLevel::Warning => theme.warning,
        ToastLevel::Error => theme.error,
        ToastLevel::Info => theme.text,
    }
}

fn health_style(health: Health, theme: &Theme) -> Style {
    match health {
        Health::Healthy => theme.ok,
        Health::Unhealthy => theme.error,
        Health::Unknown => theme.muted,
    }
}

/// Returns the style of an environment name: `production` in the warning
/// colour, so that it stands apart from test environments.
fn environment_style(environment: &str, theme: &Theme) -> Style {
    if environment == "production" {
        theme.warning
    } else {
        theme.text
    }
}

#[cfg(test)]
mod tests;
