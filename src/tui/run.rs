//! The event loop: one channel of actions in, frames out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::Event;
use tokio::sync::mpsc;

use super::action::{Action, Effect, KeyPress};
use super::app::{App, AppOptions, SystemClock, ToastLevel};
use super::keymap::{Keymap, KeymapError};
use super::terminal::TerminalGuard;
use super::theme::{LoadedTheme, Theme, ThemeError, DEFAULT_THEME};
use super::view;
use super::worker::Workers;
use crate::home::Home;

/// Actions waiting for the event loop; workers wait when it is full.
const CHANNEL_CAPACITY: usize = 256;

/// How often the clock ticks, for toast expiry and ages.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default)]
pub struct DashboardOptions {
    /// Hide and reject every command that changes the agent's state.
    pub read_only: bool,
    /// Theme name; `None` for the default.
    pub theme: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Keymap(#[from] KeymapError),
    #[error(transparent)]
    Theme(#[from] ThemeError),
    #[error(transparent)]
    Agent(#[from] crate::cli::CliError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    #[error("the terminal failed: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("the dashboard needs a terminal on standard input and output; use `shipdeck ls` or another command in scripts")]
    NotATerminal,
}

/// Runs the dashboard until the operator quits. Reads the keymap and theme
/// and reaches (or starts) the agent before taking the terminal, so those
/// errors print as ordinary messages.
pub async fn run(home: &Home, options: DashboardOptions) -> Result<(), DashboardError> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(DashboardError::NotATerminal);
    }
    let (keymap, loaded) = load_settings(&options)?;
    let client = crate::agent::connect_or_start(home).await?;
    let _log_guard = init_logging(home)?;
    tracing::info!(
        theme = loaded.theme.name,
        read_only = options.read_only,
        "dashboard starts"
    );

    let socket = home.socket_path().display().to_string();
    let mut app = App::new(
        AppOptions {
            keymap,
            read_only: options.read_only,
            socket: socket.clone(),
        },
        Arc::new(SystemClock),
    );
    for warning in loaded.warnings {
        tracing::warn!(%warning, "theme");
        app.toast(ToastLevel::Warning, warning);
    }
    let themes = ThemeSource {
        dir: super::config_dir(),
        no_color: Theme::no_color_requested(),
    };
    app.set_themes(Theme::available(themes.dir.as_deref()), &loaded.theme.name);

    let mut guard = TerminalGuard::enter()?;
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    spawn_input(sender.clone());
    spawn_ticker(sender.clone());
    spawn_signals(sender.clone())?;
    let workers = Workers::start(client, socket, sender);
    app.local_zone = local_zone();
    let size = guard.terminal().size()?;
    app.apply(Action::Resize {
        width: size.width,
        height: size.height,
    });
    let result = event_loop(
        &mut guard,
        &mut app,
        loaded.theme,
        &themes,
        &workers,
        receiver,
    )
    .await;
    drop(workers);
    drop(guard);
    tracing::info!("dashboard ends");
    result
}

/// Reads the operator's time zone from `TZ` or `/etc/localtime`, for the
/// logs tab's local times; `None` (shown as UTC) when neither is readable.
fn local_zone() -> Option<Arc<tz::TimeZone>> {
    match tz::TimeZone::local() {
        Ok(zone) => Some(Arc::new(zone)),
        Err(error) => {
            tracing::warn!(%error, "the local time zone is unknown; the logs tab shows UTC");
            None
        }
    }
}

/// Reads the keymap and the theme from the config directory.
fn load_settings(options: &DashboardOptions) -> Result<(Keymap, LoadedTheme), DashboardError> {
    let config_dir = super::config_dir();
    let keymap = match &config_dir {
        Some(dir) => Keymap::load(dir)?,
        None => Keymap::default(),
    };
    let theme_name = options.theme.as_deref().unwrap_or(DEFAULT_THEME);
    let theme = Theme::load(
        config_dir.as_deref(),
        theme_name,
        Theme::no_color_requested(),
    )?;
    Ok((keymap, theme))
}

/// The config directory and `NO_COLOR` setting that themes switched at
/// run time load with.
struct ThemeSource {
    dir: Option<PathBuf>,
    no_color: bool,
}

impl ThemeSource {
    /// Loads theme `name`, or returns the action that reports why it failed.
    fn load(&self, name: String) -> Result<Theme, Action> {
        match Theme::load(self.dir.as_deref(), &name, self.no_color) {
            Ok(loaded) => {
                for warning in loaded.warnings {
                    tracing::warn!(%warning, theme = name, "theme");
                }
                Ok(loaded.theme)
            }
            Err(error) => {
                tracing::warn!(%error, theme = name, "loading a theme failed");
                Err(Action::ThemeFailed {
                    name,
                    message: error.to_string(),
                })
            }
        }
    }
}

async fn event_loop(
    guard: &mut TerminalGuard,
    app: &mut App,
    mut theme: Theme,
    themes: &ThemeSource,
    workers: &Workers,
    mut receiver: mpsc::Receiver<Action>,
) -> Result<(), DashboardError> {
    let mut dirty = true;
    let mut data_on_screen = false;
    // Actions that effects produce, applied before the next queued one.
    let mut follow_ups: Vec<Action> = Vec::new();
    loop {
        if dirty {
            guard
                .terminal()
                .draw(|frame| view::draw(frame, app, &theme))?;
            dirty = false;
            if !data_on_screen && app.deployments.loaded {
                data_on_screen = true;
                log_first_frame();
            }
        }
        let Some(first) = receiver.recv().await else {
            return Ok(());
        };
        // Apply everything already queued before drawing once.
        let mut next = Some(first);
        while let Some(action) = next {
            for effect in app.apply(action) {
                match effect {
                    Effect::Redraw => dirty = true,
                    Effect::Quit => return Ok(()),
                    Effect::WatchMetrics(keys) => workers.watch_metrics(keys),
                    Effect::Execute(operation) => workers.execute(operation),
                    Effect::LoadTheme(name) => match themes.load(name) {
                        Ok(loaded) => {
                            theme = loaded;
                            dirty = true;
                        }
                        Err(failed) => follow_ups.push(failed),
                    },
                    Effect::WatchDetail(request) => workers.watch_detail(request),
                    Effect::Request(request) => workers.request(request),
                    Effect::Logs(effect) => workers.logs(effect),
                    Effect::CopyToClipboard(text) => {
                        // A terminal that fails this write fails the next
                        // frame too, which ends the loop with the error.
                        if let Err(error) = guard.copy_to_clipboard(&text) {
                            tracing::warn!(%error, "writing the clipboard sequence failed");
                        }
                    }
                }
            }
            next = follow_ups.pop().or_else(|| receiver.try_recv().ok());
        }
    }
}

/// Logs when the first frame with the agent's data was drawn, as wall
/// clock time, so that `benches/dashboard_cpu.py` can measure the time
/// from the start of the process.
fn log_first_frame() {
    let at_unix_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    tracing::info!(at_unix_ns, "first frame with data");
}

/// Reads terminal events on a thread of its own, because crossterm's
/// reader blocks. The thread blocks in `read` until the process exits, so
/// an idle dashboard wakes for nothing.
fn spawn_input(sender: mpsc::Sender<Action>) {
    std::thread::spawn(move || loop {
        let action = match crossterm::event::read() {
            Ok(Event::Key(key)) => KeyPress::from_event(key).map(Action::Key),
            Ok(Event::Resize(width, height)) => Some(Action::Resize { width, height }),
            Ok(_) => None,
            Err(error) => {
                tracing::error!(%error, "reading the terminal failed; the dashboard quits");
                Some(Action::Quit)
            }
        };
        if let Some(action) = action {
            let quit = action == Action::Quit;
            if sender.blocking_send(action).is_err() || quit {
                return;
            }
        }
    });
}

fn spawn_ticker(sender: mpsc::Sender<Action>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if sender.send(Action::Tick).await.is_err() {
                return;
            }
        }
    });
}

/// Turns SIGTERM, SIGHUP (the SSH session closed) and SIGINT into a quit,
/// so the terminal is restored before the process ends.
fn spawn_signals(sender: mpsc::Sender<Action>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("a signal asked the dashboard to quit");
        // A closed channel means the loop has ended already.
        let _ = sender.send(Action::Quit).await;
    });
    Ok(())
}

/// Sends tracing to `dashboard.log` in the home while the dashboard owns
/// the screen; the level comes from `SHIPDECK_LOG` (default info).
fn init_logging(
    home: &Home,
) -> Result<tracing_appender::non_blocking::WorkerGuard, DashboardError> {
    home.prepare()?;
    let path: PathBuf = home.root().to_path_buf();
    let appender = tracing_appender::rolling::never(&path, "dashboard.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Another subscriber exists only in tests that run the dashboard twice;
    // the first one keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(guard)
}
