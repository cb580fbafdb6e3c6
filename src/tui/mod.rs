//! The terminal dashboard: `shipdeck` with no command.
//!
//! The parts, and who may talk to whom:
//!
//! - [`worker`] polls the agent's API and sends owned results as
//!   [`Action`](action::Action)s over a bounded channel; its detail task
//!   reads what the open detail tab shows. The workers are the only part
//!   that does I/O with the agent.
//! - [`app`] owns the state; `App::apply` turns each action into state
//!   changes and [`Effect`](action::Effect)s, with no I/O.
//! - [`view`] draws a frame from `&App`; views never fetch and never lock.
//! - [`keymap`] maps keys to commands per context, [`theme`] maps meanings
//!   to styles, [`sanitize`] makes application text safe to draw.
//! - [`terminal`] sets the terminal up and restores it on every exit path;
//!   [`run`] wires everything into one event loop.
//!
//! To add a view: a state struct in `app/`, an entry in
//! [`Pane`](app::Pane) or [`Layer`](app::Layer), a keymap
//! [`Context`](keymap::Context) with its commands and defaults, and a
//! module in `view/` that draws it from `&App`. To add a key: a
//! [`Command`](action::Command) variant with its name and description, a
//! row in the keymap defaults, and its handling in `App::on_command`. To
//! fetch something new: an [`Action`](action::Action) variant for the
//! result and a request in [`worker`], driven by an
//! [`Effect`](action::Effect) when the state decides what to fetch.
//!
//! A change to a deployment (scale, rollback, redeploy, undeploy) starts
//! as a key or a `:` palette line and becomes an
//! [`Operation`](action::Operation). A destructive one opens a
//! confirmation [`Layer`](app::Layer) first. Once accepted, the operation
//! leaves `App::apply` as an [`Effect::Execute`](action::Effect::Execute),
//! which the worker sends to the agent.
//!
//! The manifest editor and the secrets view are [`Layer`](app::Layer)s
//! over the body; their reads and the secret changes go to the worker as
//! [`Effect::Request`](action::Effect::Request)s, so that no value typed
//! into a masked field is ever part of an [`Action`](action::Action).
//!
//! The logs tab reads through its own worker ([`logs_worker`]): a follow
//! stream of new lines, and pages of the stored history fetched as the
//! operator scrolls, so that it holds a bounded window of any history.

pub mod action;
pub mod app;
mod detail_worker;
pub mod keymap;
pub mod layout;
mod logs_worker;
mod request_worker;
mod run;
pub mod sanitize;
pub mod terminal;
pub mod theme;
pub mod view;
pub mod worker;

use std::path::PathBuf;

pub use run::{run, DashboardError, DashboardOptions};

/// The directory of `keymap.toml` and `themes/`: `$XDG_CONFIG_HOME/shipdeck`
/// or `~/.config/shipdeck`; `None` when neither variable is set.
pub fn config_dir() -> Option<PathBuf> {
    let from = |variable: &str| std::env::var_os(variable).filter(|value| !value.is_empty());
    if let Some(config) = from("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(config).join("shipdeck"));
    }
    from("HOME").map(|home| PathBuf::from(home).join(".config/shipdeck"))
}
