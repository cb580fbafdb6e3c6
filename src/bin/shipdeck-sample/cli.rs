//! Command-line interface: flags, their environment fallbacks and value parsers.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Endpoints (serve):
  GET  /                      200 with a greeting: $GREETING, replica ($SHIPDECK_REPLICA) and version
  GET  /healthz               200 \"ok\", or 503 while failing or before --ready-delay has passed
  GET  /metrics               Prometheus text exposition format (version 0.0.4)
  POST /fail-health           make /healthz return 503
  POST /recover-health        make /healthz return 200 again
  POST /exit?code=N           answer, then exit with status N (0-255, default 0)
  POST /burn-cpu?seconds=S    keep one core busy for S seconds (required, at most 86400)
  GET  /status/CODE           answer with status CODE (200-599), for testing error counts
  Other paths return 404 and wrong methods 405. HEAD works wherever GET does.

Environment:
  PORT               port to listen on when --port is not given
  GREETING           first word of the greeting on / (default \"hello\")
  SHIPDECK_REPLICA   replica index shown on / and in log lines
  APP_VERSION        version shown on / when --version-label is not given

Signals: SIGTERM and SIGINT stop accepting connections, log \"shutting down\",
wait up to 500 ms for requests in progress and exit with status 0.

Logs: info and debug lines go to stdout, warn and error lines to stderr, in
three formats: plain (`INFO msg`), JSON (`{\"level\":\"warn\",\"msg\":...}`)
and logfmt (`level=error msg=...`).

Durations are written as 500ms, 30s, 5m, 1h or a plain number of seconds.";

/// A small HTTP workload for shipdeck's examples, tests and benchmarks.
#[derive(Debug, Parser)]
#[command(
    name = "shipdeck-sample",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of `serve`, accepted without the subcommand name because `serve` is the default.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP on 0.0.0.0:$PORT (the default subcommand).
    #[command(after_help = AFTER_HELP)]
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on (1-65535). Overrides the PORT environment variable.
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Version shown on / [default: $APP_VERSION, else "unknown"].
    #[arg(long, value_name = "TEXT")]
    pub version_label: Option<String>,

    /// Start with /healthz returning 503, as after POST /fail-health.
    #[arg(long)]
    pub fail_health: bool,

    /// Exit on its own after this duration, with the status from --exit-code.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub exit_after: Option<Duration>,

    /// Exit status used by --exit-after (0-255).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "exit_after")]
    pub exit_code: u8,

    /// Keep one core busy until the process exits.
    #[arg(long)]
    pub burn_cpu: bool,

    /// Synthetic log lines per second, at mixed levels and formats. 0 turns them off.
    #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_log_rate)]
    pub log_rate: f64,

    /// At start, write N numbered lines to stdout as fast as the pipe takes them
    /// (`emit 000000001 xxx...`), for log capture tests and benchmarks.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub emit_lines: u64,

    /// Length of each --emit-lines line in bytes, newline excluded (16-65536).
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub emit_bytes: u32,

    /// Fill --emit-lines lines with hex digits that differ in every line
    /// (about as compressible as random data) instead of `x`.
    #[arg(long, requires = "emit_lines")]
    pub emit_varied: bool,

    /// Report /healthz as 503 until this long after start. The port is open at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ready_delay: Option<Duration>,
}

impl Cli {
    /// Returns the serve options, whether or not `serve` was written out.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a plain number of seconds. Fractions such as `1.5s` are allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split_at = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split_at);

    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {unit:?}; use ms, s, m or h, as in 500ms or 30s"
            ))
        }
    };

    let value: f64 = number.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected a number followed by ms, s, m or h, as in 30s")
    })?;

    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: too large; use at most a few days"))
}

/// Parses a non-negative log rate of at most 10000 lines per second.
fn parse_log_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text.trim().parse().map_err(|_| {
        format!("invalid log rate {text:?}: expected lines per second, such as 2 or 0.5")
    })?;

    if !(0.0..=10_000.0).contains(&rate) {
        return Err(format!(
            "invalid log rate {text:?}: must be between 0 and 10000 lines per second"
        ));
    }
    Ok(rate)
}

/// Picks the port from `--port`, else from `PORT`, with an error that names the value.
pub fn resolve_port(flag: Option<&str>, env_value: Option<String>) -> Result<u16, String> {
    let (text, source) = match (flag, env_value) {
        (Some(flag), _) => (flag.to_string(), "--port"),
        (None, Some(env)) => (env, "PORT"),
        (None, None) => return Err(
            "PORT is not set: set the PORT environment variable or pass --port, as in --port 8080"
                .to_string(),
        ),
    };

    match text.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "{source}={text:?} is not a valid port: use a whole number from 1 to 65535"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn duration_rejects_bad_text() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn port_sources_and_errors() {
        assert_eq!(resolve_port(Some("81"), Some("80".into())), Ok(81));
        assert_eq!(resolve_port(None, Some("80".into())), Ok(80));

        let missing = resolve_port(None, None).expect_err("no port given");
        assert!(missing.contains("PORT is not set"), "{missing}");

        let zero = resolve_port(None, Some("0".into())).expect_err("port 0");
        assert!(zero.contains("PORT=\"0\""), "{zero}");

        let text = resolve_port(Some("http"), None).expect_err("port name");
        assert!(text.contains("--port=\"http\""), "{text}");
    }

    #[test]
    fn log_rate_bounds() {
        assert_eq!(parse_log_rate("0"), Ok(0.0));
        assert_eq!(parse_log_rate("2.5"), Ok(2.5));
        assert!(parse_log_rate("-1").is_err());
        assert!(parse_log_rate("NaN").is_err());
    }
}
