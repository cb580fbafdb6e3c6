//! `shipdeck-sample`: a small HTTP workload that shipdeck's examples, tests and
//! benchmarks deploy. It serves a greeting, a health check that can be made to
//! fail, Prometheus metrics, and switches to exit, burn CPU and write logs, so
//! every path of a deployment can be driven from outside.

#[path = "shipdeck-sample/app.rs"]
mod app;
#[path = "shipdeck-sample/cli.rs"]
mod cli;
#[path = "shipdeck-sample/http.rs"]
mod http;
#[path = "shipdeck-sample/logs.rs"]
mod logs;
#[path = "shipdeck-sample/metrics.rs"]
mod metrics;
#[path = "shipdeck-sample/server.rs"]
mod server;
#[path = "shipdeck-sample/signals.rs"]
mod signals;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use clap::Parser;

use crate::app::{App, Identity, Stop};
use crate::cli::{Cli, ServeArgs};
use crate::logs::Logger;
use crate::metrics::Metrics;

/// How long a graceful shutdown waits for requests in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Exit status for invalid settings, the same one clap uses for usage errors.
const EXIT_INVALID_SETTINGS: u8 = 2;

fn main() -> ExitCode {
    let args = Cli::parse().into_serve_args();

    match serve(args) {
        Ok(never) => match never {},
        Err(error) => {
            eprintln!("shipdeck-sample: error: {}", error.message);
            ExitCode::from(error.exit_status)
        }
    }
}

/// A start-up failure, printed before exiting with `exit_status`.
struct StartError {
    message: String,
    exit_status: u8,
}

impl StartError {
    fn invalid_settings(message: String) -> Self {
        Self {
            message,
            exit_status: EXIT_INVALID_SETTINGS,
        }
    }

    fn failed(message: String) -> Self {
        Self {
            message,
            exit_status: 1,
        }
    }
}

/// Runs the server until a stop request, then ends the process with its status.
fn serve(args: ServeArgs) -> Result<std::convert::Infallible, StartError> {
    let port = cli::resolve_port(args.port.as_deref(), std::env::var("PORT").ok())
        .map_err(StartError::invalid_settings)?;

    // Must run before any thread starts, so that all threads inherit the blocked mask.
    let signals = signals::block_termination_signals().map_err(|error| {
        StartError::failed(format!("blocking SIGTERM and SIGINT failed: {error}"))
    })?;

    let listener = bind(port)?;

    let (stop_sender, stop_receiver) = mpsc::channel();
    let metrics = Arc::new(Metrics::new());
    let identity = read_identity(&args);
    let logger = Logger::new(Arc::clone(&metrics), identity.replica.clone());
    let app = Arc::new(App::new(
        identity,
        metrics,
        logger.clone(),
        args.ready_delay.unwrap_or_default(),
        stop_sender.clone(),
    ));
    if args.fail_health {
        app.set_health_failing(true);
    }

    start_threads(&args, listener, &app, signals, stop_sender)
        .map_err(|error| StartError::failed(format!("starting a thread failed: {error}")))?;
    log_start(&logger, port, &args, &app.identity);
    if args.emit_lines > 0 {
        start_emitter(args.emit_lines, args.emit_bytes, args.emit_varied)
            .map_err(|error| StartError::failed(format!("starting a thread failed: {error}")))?;
    }

    let code = wait_for_stop(&stop_receiver, &app, port);
    std::process::exit(i32::from(code))
}

/// Writes `count` numbered lines of `bytes` bytes each to stdout on a thread
/// of its own, so the server keeps serving while they are written. The rest of a
/// line after its number is `x` repeated, or with `varied`, hex digits that
/// differ in every line and barely compress.
fn start_emitter(count: u64, bytes: u32, varied: bool) -> io::Result<()> {
    thread::Builder::new()
        .name("emit".to_owned())
        .spawn(move || {
            use std::io::Write;

            let stdout = io::stdout();
            let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
            let same = "x".repeat(bytes as usize);
            let mut line = String::with_capacity(bytes as usize + 1);
            for index in 1..=count {
                line.clear();
                line.push_str(&format!("emit {index:09} "));
                let rest = (bytes as usize).saturating_sub(line.len());
                if varied {
                    push_hex(&mut line, index, rest);
                } else {
                    line.push_str(&same[..rest]);
                }
                line.push('\n');
                if out.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = out.flush();
        })
        .map(|_| ())
}

/// Appends `len` hex digits from SplitMix64 seeded with `seed`, so that a
/// reader can compute the exact line again.
fn push_hex(line: &mut String, seed: u64, len: usize) {
    let mut state = seed;
    let start = line.len();
    while line.len() - start < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        line.push_str(&format!("{z:016x}"));
    }
    line.truncate(start + len);
}

fn bind(port: u16) -> Result<TcpListener, StartError> {
    let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));

    TcpListener::bind(address).map_err(|error| {
        let hint = match error.kind() {
            io::ErrorKind::AddrInUse => {
                "another process is using it; stop that process or choose another port with --port or PORT"
            }
            io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges; choose a higher port with --port or PORT"
            }
            _ => "check the port number and the network configuration",
        };
        StartError::failed(format!("listening on port {port} ({address}) failed: {error}; {hint}"))
    })
}

fn read_identity(args: &ServeArgs) -> Identity {
    let env_or = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| default.to_string())
    };

    Identity {
        greeting: env_or("GREETING", "hello"),
        replica: env_or("SHIPDECK_REPLICA", "unknown"),
        version: args
            .version_label
            .clone()
            .unwrap_or_else(|| env_or("APP_VERSION", "unknown")),
    }
}

fn start_threads(
    args: &ServeArgs,
    listener: TcpListener,
    app: &Arc<App>,
    signals: nix::sys::signal::SigSet,
    stop: mpsc::Sender<Stop>,
) -> io::Result<()> {
    signals::spawn_waiter(signals, stop.clone())?;

    let accept_app = Arc::clone(app);
    thread::Builder::new()
        .name("accept".into())
        .stack_size(crate::app::HELPER_STACK_BYTES)
        .spawn(move || server::run_accept_loop(listener, accept_app))?;

    if args.log_rate > 0.0 {
        logs::spawn_generator(app.logger.clone(), args.log_rate)?;
    }
    if args.burn_cpu {
        app::spawn_cpu_burner(None)?;
    }
    if let Some(delay) = args.exit_after {
        spawn_exit_timer(delay, args.exit_code, stop)?;
    }
    Ok(())
}

fn spawn_exit_timer(delay: Duration, code: u8, stop: mpsc::Sender<Stop>) -> io::Result<()> {
    thread::Builder::new()
        .name("exit-after".into())
        .stack_size(crate::app::HELPER_STACK_BYTES)
        .spawn(move || {
            thread::sleep(delay);
            let reason = format!("--exit-after {} s elapsed", delay.as_secs_f64());
            let _ = stop.send(Stop::Exit { code, reason });
        })?;
    Ok(())
}

fn log_start(logger: &Logger, port: u16, args: &ServeArgs, identity: &Identity) {
    logger.info(&format!(
        "listening on 0.0.0.0:{port} (version {}, log rate {}/s)",
        identity.version, args.log_rate
    ));

    if args.fail_health {
        logger.warn("health check fails from start (--fail-health)");
    }
    if let Some(delay) = args.ready_delay {
        logger.info(&format!(
            "health check reports not ready for {} s (--ready-delay)",
            delay.as_secs_f64()
        ));
    }
    if args.burn_cpu {
        logger.info("burning one core until exit (--burn-cpu)");
    }
    if let Some(delay) = args.exit_after {
        logger.info(&format!(
            "will exit with status {} after {} s (--exit-after)",
            args.exit_code,
            delay.as_secs_f64()
        ));
    }
}

/// Blocks until a stop request arrives and returns the exit status to use.
fn wait_for_stop(stop: &Receiver<Stop>, app: &App, port: u16) -> u8 {
    // The app contains a sender, so the channel cannot close while the app is alive.
    let Ok(request) = stop.recv() else {
        return 1;
    };

    match request {
        Stop::Signal(signal) => {
            app.logger
                .info(&format!("received {signal}, shutting down"));
            shut_down(app, port);
            0
        }
        Stop::Exit { code, reason } => {
            app.logger
                .warn(&format!("exiting with status {code}: {reason}"));
            code
        }
    }
}

/// Stops accepting connections and waits briefly for requests in progress.
fn shut_down(app: &App, port: u16) {
    app.begin_shutdown();

    // The accept loop blocks in accept(), so a connection of our own wakes it to
    // see the shutdown flag and drop the listener.
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let _ = TcpStream::connect_timeout(&loopback, Duration::from_millis(100));

    if !app.wait_for_requests(SHUTDOWN_GRACE) {
        app.logger.warn(&format!(
            "requests still in progress after {} ms; exiting anyway",
            SHUTDOWN_GRACE.as_millis()
        ));
    }
}
