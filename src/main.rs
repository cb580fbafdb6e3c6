//! The `shipdeck` binary: parses arguments, then runs the agent or a client
//! command. Errors end here as one line on standard error and exit code 1.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use shipdeck::agent::{self, AgentOptions};
use shipdeck::cli::{self, Cli, Command, DashboardArgs};
use shipdeck::config::KeySource;
use shipdeck::home::Home;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => return usage_error(&error),
        // --help and --version print to standard output and exit 0.
        Err(error) => error.exit(),
    };
    let home = match Home::resolve(cli.home.as_deref()) {
        Ok(home) => home,
        Err(error) => return fail(&error.to_string()),
    };

    let command = match cli.command {
        None => Command::Dashboard(cli.dashboard),
        Some(Command::Dashboard(args)) => Command::Dashboard(DashboardArgs {
            read_only: args.read_only || cli.dashboard.read_only,
            theme: args.theme.or(cli.dashboard.theme),
        }),
        Some(_) if cli.dashboard.read_only => {
            eprintln!("shipdeck: --read-only applies to the dashboard only; write `shipdeck --read-only` or `shipdeck dashboard --read-only`");
            return ExitCode::from(2);
        }
        Some(command) => command,
    };
    let result = match command {
        Command::Agent(args) if args.action.is_none() && !args.detach => {
            run_agent(home, args.listen)
        }
        command => run_client(home, command),
    };
    match result {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`shipdeck ls | head`) is not an error worth reporting.
            let _ = stdout.write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("shipdeck: {message}");
    ExitCode::FAILURE
}

/// Reports a command-line error in one line, as every other failure is,
/// instead of clap's several lines of usage and tips. Exit status 2 keeps
/// clap's convention for usage errors.
fn usage_error(error: &clap::Error) -> ExitCode {
    let rendered = error.render().to_string();
    // The first paragraph is the error; some errors list their values on
    // indented lines below it ("required arguments were not provided:").
    let paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = paragraph.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    eprintln!("shipdeck: {message}; see `shipdeck --help`");
    ExitCode::from(2)
}

/// Runs the agent in the foreground with its log on standard error (the
/// agent log file when a client started it).
fn run_agent(home: Home, listen: Option<std::net::SocketAddr>) -> Result<String, String> {
    init_agent_logging();
    // Read before the runtime starts its threads, because reading the key
    // also removes it from the environment that children inherit.
    let key_source = KeySource::from_environment(&home).map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime
        .block_on(agent::run(
            home,
            AgentOptions {
                listen,
                key_source: Some(key_source),
            },
        ))
        .map(|()| String::new())
        .map_err(|error| error.to_string())
}

fn run_client(home: Home, command: Command) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(async {
        if let Command::Agent(args) = &command {
            if args.detach && args.action.is_none() {
                return detach(&home, args.listen).await;
            }
        }
        cli::run(&home, command)
            .await
            .map_err(|error| error.to_string())
    })
}

async fn detach(home: &Home, listen: Option<std::net::SocketAddr>) -> Result<String, String> {
    let client = shipdeck::api::client::Client::new(&home.socket_path());
    if let Ok(status) = client
        .get::<shipdeck::api::wire::AgentStatus>("/v1/agent")
        .await
    {
        return Ok(format!("agent already running (pid {})\n", status.pid));
    }
    let pid = agent::start_detached(home, listen)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("agent started (pid {pid})\n"))
}

/// Logs to standard error; the level comes from `SHIPDECK_LOG` (default info).
fn init_agent_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
