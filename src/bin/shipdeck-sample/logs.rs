//! Log lines: the sample's own events and a synthetic stream at mixed levels and formats,
//! which gives shipdeck's log capture and level detection realistic input.

use std::io::Write;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The layout of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `INFO message replica=0`
    Plain,
    /// `{"level":"warn","msg":"message","replica":"0"}`
    Json,
    /// `level=error msg="message" replica=0`
    Logfmt,
}

/// Writes log lines, info and debug to stdout and warn and error to stderr, and counts them.
#[derive(Clone)]
pub struct Logger {
    metrics: Arc<Metrics>,
    replica: String,
}

impl Logger {
    pub fn new(metrics: Arc<Metrics>, replica: String) -> Self {
        Self { metrics, replica }
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, Format::Plain, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, Format::Plain, message);
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, Format::Plain, message);
    }

    pub fn log(&self, level: Level, format: Format, message: &str) {
        let line = format_line(level, format, message, &self.replica);

        // A closed or full output has nowhere to report to, so write errors are dropped.
        let _ = match level {
            Level::Debug | Level::Info => std::io::stdout().lock().write_all(line.as_bytes()),
            Level::Warn | Level::Error => std::io::stderr().lock().write_all(line.as_bytes()),
        };
        self.metrics.record_log_line(level);
    }
}

/// Formats one line, ending in a newline.
pub fn format_line(level: Level, format: Format, message: &str, replica: &str) -> String {
    match format {
        Format::Plain => {
            let level = level.name().to_ascii_uppercase();
            format!("{level} {message} replica={replica}\n")
        }
        Format::Json => {
            let object = serde_json::json!({
                "level": level.name(),
                "msg": message,
                "replica": replica,
            });
            format!("{object}\n")
        }
        Format::Logfmt => format!(
            "level={} msg={} replica={}\n",
            level.name(),
            logfmt_value(message),
            logfmt_value(replica)
        ),
    }
}

/// Quotes a logfmt value when it contains spaces, quotes, `=` or control characters.
fn logfmt_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        return value.to_string();
    }
    // Debug formatting of a str gives a double-quoted string with escapes that logfmt parsers accept.
    format!("{value:?}")
}

/// Levels of consecutive synthetic lines: mostly info, some debug, one warn and one error in ten.
const LEVEL_CYCLE: [Level; 10] = [
    Level::Info,
    Level::Info,
    Level::Debug,
    Level::Info,
    Level::Warn,
    Level::Info,
    Level::Info,
    Level::Debug,
    Level::Info,
    Level::Error,
];

/// Formats of consecutive synthetic lines. The cycle length (3) is coprime with the
/// level cycle (10), so every level appears in every format within 30 lines.
const FORMAT_CYCLE: [Format; 3] = [Format::Plain, Format::Json, Format::Logfmt];

/// Returns the level, format and text of synthetic line number `index`.
pub fn synthetic_line(index: u64) -> (Level, Format, String) {
    let level = LEVEL_CYCLE[(index % LEVEL_CYCLE.len() as u64) as usize];
    let format = FORMAT_CYCLE[(index % FORMAT_CYCLE.len() as u64) as usize];

    let message = match level {
        Level::Debug => format!(
            "cache lookup key=order:{} hit={}",
            index % 97,
            !index.is_multiple_of(4)
        ),
        Level::Info => format!("processed batch {index} with {} items", 10 + index % 40),
        Level::Warn => format!(
            "slow upstream response: {} ms, over the 250 ms budget",
            250 + index % 500
        ),
        Level::Error => format!(
            "upstream request failed: connection reset by peer (attempt {} of 3)",
            1 + index % 3
        ),
    };
    (level, format, message)
}

/// Starts a thread that writes `rate` synthetic lines per second until the process exits.
pub fn spawn_generator(logger: Logger, rate: f64) -> std::io::Result<()> {
    let interval = Duration::from_secs_f64(1.0 / rate);

    thread::Builder::new()
        .name("log-generator".into())
        .stack_size(crate::app::HELPER_STACK_BYTES)
        .spawn(move || {
            let mut next = Instant::now();
            for index in 0.. {
                let (level, format, message) = synthetic_line(index);
                logger.log(level, format, &message);

                // Scheduling from the previous deadline keeps the average rate even when a write is slow.
                next += interval;
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_formats() {
        assert_eq!(
            format_line(Level::Info, Format::Plain, "ready", "1"),
            "INFO ready replica=1\n"
        );
        assert_eq!(
            format_line(Level::Warn, Format::Json, "say \"hi\"", "1"),
            "{\"level\":\"warn\",\"msg\":\"say \\\"hi\\\"\",\"replica\":\"1\"}\n"
        );
        assert_eq!(
            format_line(Level::Error, Format::Logfmt, "disk full", "1"),
            "level=error msg=\"disk full\" replica=1\n"
        );
        assert_eq!(
            format_line(Level::Debug, Format::Logfmt, "x", ""),
            "level=debug msg=x replica=\"\"\n"
        );
    }

    #[test]
    fn synthetic_lines_cover_levels_and_formats() {
        let lines: Vec<_> = (0..30).map(synthetic_line).collect();
        for level in Level::ALL {
            for format in FORMAT_CYCLE {
                assert!(
                    lines.iter().any(|(l, f, _)| *l == level && *f == format),
                    "{level:?} in {format:?} missing"
                );
            }
        }

        let info = lines.iter().filter(|(l, _, _)| *l == Level::Info).count();
        assert_eq!(info, 18);
    }
}
