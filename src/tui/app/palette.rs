//! The `:` command palette: parsing a typed line into a command.
//!
//! The syntax is `VERB NAME [ARGUMENT] [env:ENV | --env ENV]`, for example
//! `scale web 3`, `rollback web 2 env:production`, `redeploy web --env
//! staging`, `silence web high-cpu 2h deploying the fix` or `autoscale web
//! 1 5 cpu=70`; `deploy` and `secrets` take no name. The environment is
//! needed only when the name exists in more than one; the state resolves
//! that against the deployments it lists.

use super::autoscale::{AutoscaleSetting, MetricTarget, PerReplica};
use crate::engine::MAX_REPLICAS;

/// The verbs, in the order completion offers them.
pub const VERBS: [&str; 12] = [
    "scale",
    "autoscale",
    "rollback",
    "redeploy",
    "restart",
    "undeploy",
    "deploy",
    "edit",
    "secrets",
    "silence",
    "ack",
    "quit",
];

/// The usage line of `autoscale`, for its errors.
pub const AUTOSCALE_USAGE: &str =
    "autoscale NAME MIN MAX [cpu=PERCENT] [memory=PERCENT] [METRIC=VALUE]..., or autoscale off NAME";

/// The forms of the targets after MIN and MAX, for the errors about them.
const TARGET_FORMS: &str = "cpu=PERCENT, memory=PERCENT or METRIC=VALUE";

/// Verbs that take no deployment name, so completion offers none after them.
const NAMELESS: [&str; 3] = ["quit", "deploy", "secrets"];

/// A parsed palette line, before the name is resolved to a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaletteCommand {
    Quit,
    /// With `force`, autoscaling is turned off first where it is on.
    Scale {
        target: Target,
        replicas: u32,
        force: bool,
    },
    Autoscale {
        target: Target,
        setting: AutoscaleSetting,
    },
    AutoscaleOff {
        target: Target,
    },
    Rollback {
        target: Target,
        to_revision: Option<u64>,
    },
    Redeploy {
        target: Target,
    },
    Undeploy {
        target: Target,
    },
    /// Open the editor on a new manifest.
    Deploy,
    /// Open the editor on the deployment's manifest.
    Edit {
        target: Target,
    },
    Secrets,
    Silence {
        target: Target,
        rule: String,
        duration: String,
        comment: Option<String>,
    },
    Ack {
        target: Target,
        rule: String,
    },
    Restart {
        target: Target,
        replica: Option<u32>,
    },
}

impl PaletteCommand {
    /// Returns whether the command changes the agent, which `--read-only`
    /// rejects.
    pub fn changes_agent(&self) -> bool {
        !matches!(self, Self::Quit | Self::Secrets)
    }
}

/// A deployment as typed: a name and, optionally, its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub environment: Option<String>,
}

/// An invalid palette line, with a message that fits the palette's own line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaletteError {
    #[error("type a command: {}", VERBS.join(", "))]
    Empty,
    #[error("unknown command {verb:?}{}; the commands are {}", did_you_mean(.suggestion), VERBS.join(", "))]
    UnknownVerb {
        verb: String,
        suggestion: Option<&'static str>,
    },
    #[error("{verb}: missing {what}; type {usage}")]
    Missing {
        verb: &'static str,
        what: &'static str,
        usage: &'static str,
    },
    #[error("invalid replica count {0:?}: expected a whole number from 0 to {MAX_REPLICAS}")]
    InvalidCount(String),
    #[error("invalid revision {0:?}: expected a revision number such as 2")]
    InvalidRevision(String),
    #[error("{verb}: unexpected {word:?}; type {usage}")]
    Extra {
        verb: &'static str,
        word: String,
        usage: &'static str,
    },
    #[error("--env needs an environment name, as in --env staging")]
    MissingEnvironment,
    #[error("invalid replica {0:?}: expected a replica number such as 0")]
    InvalidReplica(String),
    #[error("{0}")]
    InvalidDuration(String),
    #[error(
        "invalid {bound} replica count {text:?}: expected a whole number from 1 to {MAX_REPLICAS}"
    )]
    InvalidBound { bound: &'static str, text: String },
    #[error("the minimum {min} is above the maximum {max}; type MIN before MAX, as in autoscale NAME {max} {min}")]
    MinAboveMax { min: u32, max: u32 },
    #[error("invalid {key}={text}: expected a whole percentage of the request of at least 1, as in {key}=70")]
    InvalidPercent { key: &'static str, text: String },
    #[error("invalid {metric}={text}: expected the value per replica to hold, a number above 0, as in {metric}=50")]
    InvalidTargetValue { metric: String, text: String },
    #[error("autoscale: {0:?} is not a target; after MIN and MAX write {TARGET_FORMS}")]
    NotATarget(String),
    #[error("autoscale: unknown key {key:?}{}; write {TARGET_FORMS}, where METRIC is a series name such as requests_per_second", did_you_mean(.suggestion))]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("autoscale: {0} is given twice; give each target once")]
    RepeatedTarget(String),
}

fn did_you_mean(verb: &Option<&'static str>) -> String {
    verb.map(|verb| format!(" (did you mean {verb}?)"))
        .unwrap_or_default()
}

/// Parses one palette line.
pub fn parse(line: &str) -> Result<PaletteCommand, PaletteError> {
    let (words, environment) = split_environment(line)?;
    let Some((verb, rest)) = words.split_first() else {
        return Err(PaletteError::Empty);
    };
    match verb.as_str() {
        "quit" | "q" => no_more("quit", rest, "quit").map(|()| PaletteCommand::Quit),
        "scale" | "scale!" => parse_scale(verb == "scale!", rest, environment),
        "autoscale" => parse_autoscale(rest, environment),
        "rollback" => {
            let usage = "rollback NAME [REVISION]";
            let target = target("rollback", rest, environment, usage)?;
            let to_revision = rest.get(1).map(|text| parse_revision(text)).transpose()?;
            no_more("rollback", rest.get(2..).unwrap_or_default(), usage)?;
            Ok(PaletteCommand::Rollback {
                target,
                to_revision,
            })
        }
        "redeploy" => {
            let usage = "redeploy NAME";
            let target = target("redeploy", rest, environment, usage)?;
            no_more("redeploy", &rest[1..], usage)?;
            Ok(PaletteCommand::Redeploy { target })
        }
        "undeploy" => {
            let usage = "undeploy NAME";
            let target = target("undeploy", rest, environment, usage)?;
            no_more("undeploy", &rest[1..], usage)?;
            Ok(PaletteCommand::Undeploy { target })
        }
        "deploy" => no_more("deploy", rest, "deploy").map(|()| PaletteCommand::Deploy),
        "secrets" => no_more("secrets", rest, "secrets").map(|()| PaletteCommand::Secrets),
        "edit" => {
            let usage = "edit NAME";
            let target = target("edit", rest, environment, usage)?;
            no_more("edit", &rest[1..], usage)?;
            Ok(PaletteCommand::Edit { target })
        }
        "restart" => {
            let usage = "restart NAME [REPLICA]";
            let target = target("restart", rest, environment, usage)?;
            let replica = rest
                .get(1)
                .map(|text| {
                    text.parse::<u32>()
                        .map_err(|_| PaletteError::InvalidReplica(text.clone()))
                })
                .transpose()?;
            no_more("restart", rest.get(2..).unwrap_or_default(), usage)?;
            Ok(PaletteCommand::Restart { target, replica })
        }
        "silence" => parse_silence(rest, environment),
        "ack" => {
            let usage = "ack NAME RULE";
            let target = target("ack", rest, environment, usage)?;
            let rule = rest.get(1).ok_or(PaletteError::Missing {
                verb: "ack",
                what: "the rule",
                usage,
            })?;
            no_more("ack", &rest[2..], usage)?;
            Ok(PaletteCommand::Ack {
                target,
                rule: rule.clone(),
            })
        }
        unknown => Err(PaletteError::UnknownVerb {
            verb: unknown.to_owned(),
            suggestion: closest_verb(unknown),
        }),
    }
}

/// Parses `scale NAME COUNT [--force | !]`; `forced` when the verb was
/// typed as `scale!`.
fn parse_scale(
    forced: bool,
    rest: &[String],
    environment: Option<String>,
) -> Result<PaletteCommand, PaletteError> {
    let usage = "scale NAME COUNT [--force]";
    let (rest, flagged) = take_force(rest);
    let target = target("scale", &rest, environment, usage)?;
    let count = rest.get(1).ok_or(PaletteError::Missing {
        verb: "scale",
        what: "the replica count",
        usage,
    })?;
    no_more("scale", &rest[2..], usage)?;
    Ok(PaletteCommand::Scale {
        target,
        replicas: parse_count(count)?,
        force: forced || flagged,
    })
}

/// Takes `--force` and `!` out of the words; returns whether either was there.
fn take_force(words: &[String]) -> (Vec<String>, bool) {
    let is_flag = |word: &String| word == "--force" || word == "!";
    let remaining = words
        .iter()
        .filter(|word| !is_flag(word))
        .cloned()
        .collect();
    (remaining, words.iter().any(is_flag))
}

/// Parses `autoscale NAME MIN MAX [KEY=VALUE]...` and `autoscale off NAME`.
/// A deployment named `off` is set with `autoscale off MIN MAX`.
fn parse_autoscale(
    rest: &[String],
    environment: Option<String>,
) -> Result<PaletteCommand, PaletteError> {
    if rest.first().is_some_and(|word| word == "off") && rest.len() <= 2 {
        let target = target("autoscale", &rest[1..], environment, AUTOSCALE_USAGE)?;
        return Ok(PaletteCommand::AutoscaleOff { target });
    }
    let target = target("autoscale", rest, environment, AUTOSCALE_USAGE)?;
    let missing = |what| PaletteError::Missing {
        verb: "autoscale",
        what,
        usage: AUTOSCALE_USAGE,
    };
    let min = rest
        .get(1)
        .ok_or_else(|| missing("the minimum replica count"))?;
    let max = rest
        .get(2)
        .ok_or_else(|| missing("the maximum replica count"))?;
    let min_replicas = parse_bound("minimum", min)?;
    let max_replicas = parse_bound("maximum", max)?;
    if min_replicas > max_replicas {
        return Err(PaletteError::MinAboveMax {
            min: min_replicas,
            max: max_replicas,
        });
    }
    let mut setting = AutoscaleSetting {
        min_replicas,
        max_replicas,
        cpu_percent: None,
        memory_percent: None,
        metrics: Vec::new(),
    };
    for word in &rest[3..] {
        add_target(&mut setting, word)?;
    }
    Ok(PaletteCommand::Autoscale { target, setting })
}

/// Parses a replica bound of autoscaling, which is at least 1.
fn parse_bound(bound: &'static str, text: &str) -> Result<u32, PaletteError> {
    text.parse::<u32>()
        .ok()
        .filter(|count| (1..=MAX_REPLICAS).contains(count))
        .ok_or_else(|| PaletteError::InvalidBound {
            bound,
            text: text.to_owned(),
        })
}

/// Adds one `KEY=VALUE` target to `setting`.
fn add_target(setting: &mut AutoscaleSetting, word: &str) -> Result<(), PaletteError> {
    let (key, value) = word
        .split_once('=')
        .ok_or_else(|| PaletteError::NotATarget(word.to_owned()))?;
    let repeated = || PaletteError::RepeatedTarget(key.to_owned());
    match key {
        "cpu" | "memory" => {
            let key = if key == "cpu" { "cpu" } else { "memory" };
            let percent = value
                .parse::<u32>()
                .ok()
                .filter(|percent| *percent >= 1)
                .ok_or_else(|| PaletteError::InvalidPercent {
                    key,
                    text: value.to_owned(),
                })?;
            let slot = if key == "cpu" {
                &mut setting.cpu_percent
            } else {
                &mut setting.memory_percent
            };
            if slot.replace(percent).is_some() {
                return Err(repeated());
            }
        }
        metric => {
            check_metric_key(metric)?;
            let per_replica = value
                .parse::<f64>()
                .ok()
                .and_then(PerReplica::new)
                .ok_or_else(|| PaletteError::InvalidTargetValue {
                    metric: metric.to_owned(),
                    text: value.to_owned(),
                })?;
            if setting.metrics.iter().any(|target| target.name == metric) {
                return Err(repeated());
            }
            setting.metrics.push(MetricTarget {
                name: metric.to_owned(),
                per_replica,
            });
        }
    }
    Ok(())
}

/// Rejects a key that is a mistyped `cpu` or `memory`, or that cannot be
/// a series name (Prometheus' `[a-zA-Z_:][a-zA-Z0-9_:]*`).
fn check_metric_key(key: &str) -> Result<(), PaletteError> {
    let lower = key.to_ascii_lowercase();
    let suggestion = match lower.trim_end_matches('%') {
        "cpu" | "cpus" => Some("cpu"),
        "memory" | "mem" => Some("memory"),
        _ => None,
    };
    let mut characters = key.chars();
    let series_name = characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|rest| rest.is_ascii_alphanumeric() || rest == '_' || rest == ':');
    if suggestion.is_some() || !series_name {
        return Err(PaletteError::UnknownKey {
            key: key.to_owned(),
            suggestion,
        });
    }
    Ok(())
}

/// Parses `silence NAME RULE [DURATION] [COMMENT...]`; the duration is
/// 1h when left out.
fn parse_silence(
    rest: &[String],
    environment: Option<String>,
) -> Result<PaletteCommand, PaletteError> {
    let usage = "silence NAME RULE [DURATION] [COMMENT]";
    let target = target("silence", rest, environment, usage)?;
    let rule = rest.get(1).ok_or(PaletteError::Missing {
        verb: "silence",
        what: "the rule",
        usage,
    })?;
    let duration = rest
        .get(2)
        .cloned()
        .unwrap_or_else(|| super::DEFAULT_SILENCE.to_owned());
    super::check_silence_duration(&duration).map_err(PaletteError::InvalidDuration)?;
    let comment = rest.get(3..).filter(|words| !words.is_empty());
    Ok(PaletteCommand::Silence {
        target,
        rule: rule.clone(),
        duration,
        comment: comment.map(|words| words.join(" ")),
    })
}

/// Splits the line into words and takes out `env:ENV`, `--env ENV` and
/// `--env=ENV`, wherever they are.
fn split_environment(line: &str) -> Result<(Vec<String>, Option<String>), PaletteError> {
    let mut words = Vec::new();
    let mut environment = None;
    let mut tokens = line.split_whitespace();
    while let Some(token) = tokens.next() {
        if let Some(value) = token
            .strip_prefix("env:")
            .or_else(|| token.strip_prefix("--env="))
        {
            if value.is_empty() {
                return Err(PaletteError::MissingEnvironment);
            }
            environment = Some(value.to_owned());
        } else if token == "--env" {
            let value = tokens.next().ok_or(PaletteError::MissingEnvironment)?;
            environment = Some(value.to_owned());
        } else {
            words.push(token.to_owned());
        }
    }
    Ok((words, environment))
}

fn target(
    verb: &'static str,
    rest: &[String],
    environment: Option<String>,
    usage: &'static str,
) -> Result<Target, PaletteError> {
    let name = rest.first().ok_or(PaletteError::Missing {
        verb,
        what: "the deployment name",
        usage,
    })?;
    Ok(Target {
        name: name.clone(),
        environment,
    })
}

fn no_more(verb: &'static str, rest: &[String], usage: &'static str) -> Result<(), PaletteError> {
    match rest.first() {
        Some(word) => Err(PaletteError::Extra {
            verb,
            word: word.clone(),
            usage,
        }),
        None => Ok(()),
    }
}

/// Parses a replica count in `0..=MAX_REPLICAS`.
pub fn parse_count(text: &str) -> Result<u32, PaletteError> {
    text.parse::<u32>()
        .ok()
        .filter(|count| *count <= MAX_REPLICAS)
        .ok_or_else(|| PaletteError::InvalidCount(text.to_owned()))
}

/// Parses the scale prompt's text: a replica count, with `!` or
/// ` --force` after it to turn autoscaling off first.
pub fn parse_forced_count(text: &str) -> Result<(u32, bool), PaletteError> {
    let stripped = text
        .strip_suffix('!')
        .or_else(|| text.strip_suffix("--force"))
        .map(str::trim_end);
    match stripped {
        Some(count) => Ok((parse_count(count)?, true)),
        None => Ok((parse_count(text)?, false)),
    }
}

fn parse_revision(text: &str) -> Result<u64, PaletteError> {
    text.parse::<u64>()
        .ok()
        .filter(|revision| *revision > 0)
        .ok_or_else(|| PaletteError::InvalidRevision(text.to_owned()))
}

/// Returns the verb a mistyped one most likely meant: a verb it starts, or
/// one at most two edits away.
fn closest_verb(typed: &str) -> Option<&'static str> {
    let typed = typed.to_lowercase();
    VERBS
        .iter()
        .map(|verb| (strsim::levenshtein(&typed, verb), *verb))
        .filter(|(distance, verb)| *distance <= 2 || verb.starts_with(&typed))
        .min()
        .map(|(_, verb)| verb)
}

/// Completes the word being typed: a verb first, then a deployment name
/// from `names`. Returns the new line and, when several candidates remain,
/// them as a hint.
pub fn complete(line: &str, names: &[&str]) -> (String, Option<String>) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let typing_new_word = line.is_empty() || line.ends_with(' ');
    let (done, partial) = match (words.split_last(), typing_new_word) {
        (Some(_), true) | (None, _) => (words.as_slice(), ""),
        (Some((last, done)), false) => (done, *last),
    };
    let candidates: Vec<&str> = match done.len() {
        0 => VERBS.to_vec(),
        1 if done[0] == "autoscale" => names.iter().copied().chain(["off"]).collect(),
        1 if !NAMELESS.contains(&done[0]) => names.to_vec(),
        2 if done == ["autoscale", "off"] => names.to_vec(),
        _ => return (line.to_owned(), None),
    };
    let matching: Vec<&str> = candidates
        .into_iter()
        .filter(|candidate| candidate.starts_with(partial))
        .collect();
    let prefix = |word: &str| {
        let mut text = done.join(" ");
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
        text
    };
    match matching.as_slice() {
        [] => (line.to_owned(), None),
        [only] => (prefix(only) + " ", None),
        several => {
            let common = common_prefix(several);
            let hint = format!("matches: {}", several.join(", "));
            (prefix(common), Some(hint))
        }
    }
}

fn common_prefix<'a>(words: &[&'a str]) -> &'a str {
    let first = words[0];
    let mut end = first.len();
    for word in &words[1..] {
        end = first
            .char_indices()
            .zip(word.chars())
            .take_while(|((_, left), right)| left == right)
            .map(|((index, left), _)| index + left.len_utf8())
            .last()
            .unwrap_or(0)
            .min(end);
    }
    &first[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, environment: Option<&str>) -> Target {
        Target {
            name: name.to_owned(),
            environment: environment.map(str::to_owned),
        }
    }

    #[test]
    fn parse_accepts_each_verb() {
        let cases = [
            ("quit", PaletteCommand::Quit),
            (
                "scale web 3",
                PaletteCommand::Scale {
                    target: target("web", None),
                    replicas: 3,
                    force: false,
                },
            ),
            (
                "  scale   web 0 ",
                PaletteCommand::Scale {
                    target: target("web", None),
                    replicas: 0,
                    force: false,
                },
            ),
            (
                "scale web 1000 env:production",
                PaletteCommand::Scale {
                    target: target("web", Some("production")),
                    replicas: 1000,
                    force: false,
                },
            ),
            (
                "rollback web 2",
                PaletteCommand::Rollback {
                    target: target("web", None),
                    to_revision: Some(2),
                },
            ),
            (
                "rollback --env staging web",
                PaletteCommand::Rollback {
                    target: target("web", Some("staging")),
                    to_revision: None,
                },
            ),
            (
                "redeploy web --env=staging",
                PaletteCommand::Redeploy {
                    target: target("web", Some("staging")),
                },
            ),
            (
                "restart web",
                PaletteCommand::Restart {
                    target: target("web", None),
                    replica: None,
                },
            ),
            (
                "restart web 1 env:staging",
                PaletteCommand::Restart {
                    target: target("web", Some("staging")),
                    replica: Some(1),
                },
            ),
            ("deploy", PaletteCommand::Deploy),
            ("secrets", PaletteCommand::Secrets),
            (
                "edit web",
                PaletteCommand::Edit {
                    target: target("web", None),
                },
            ),
            (
                "silence web high-cpu",
                PaletteCommand::Silence {
                    target: target("web", None),
                    rule: "high-cpu".to_owned(),
                    duration: "1h".to_owned(),
                    comment: None,
                },
            ),
            (
                "silence web high-cpu 2h30m deploying the fix",
                PaletteCommand::Silence {
                    target: target("web", None),
                    rule: "high-cpu".to_owned(),
                    duration: "2h30m".to_owned(),
                    comment: Some("deploying the fix".to_owned()),
                },
            ),
            (
                "ack web high-cpu",
                PaletteCommand::Ack {
                    target: target("web", None),
                    rule: "high-cpu".to_owned(),
                },
            ),
            (
                "undeploy web",
                PaletteCommand::Undeploy {
                    target: target("web", None),
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line), Ok(expected), "{line}");
        }
    }

    #[test]
    fn parse_rejects_bad_input() {
        let cases = [
            ("", "type a command: scale"),
            (
                "scael web 3",
                "unknown command \"scael\" (did you mean scale?)",
            ),
            ("roll web", "(did you mean rollback?)"),
            ("fly", "unknown command \"fly\"; the commands are"),
            (
                "scale",
                "scale: missing the deployment name; type scale NAME COUNT",
            ),
            ("scale web", "scale: missing the replica count"),
            ("scale web three", "invalid replica count \"three\""),
            ("scale web -1", "invalid replica count \"-1\""),
            ("scale web 1001", "expected a whole number from 0 to 1000"),
            ("scale web 2.5", "invalid replica count \"2.5\""),
            ("scale web 3 4", "scale: unexpected \"4\""),
            ("rollback web two", "invalid revision \"two\""),
            ("rollback web 0", "invalid revision \"0\""),
            ("rollback", "rollback: missing the deployment name"),
            ("undeploy web now", "undeploy: unexpected \"now\""),
            ("redeploy web --env", "--env needs an environment name"),
            ("redeploy web env:", "--env needs an environment name"),
            ("quit now", "quit: unexpected \"now\""),
            ("deploy web", "deploy: unexpected \"web\""),
            ("edit", "edit: missing the deployment name"),
            ("silence web", "silence: missing the rule"),
            ("silence web high-cpu soon", "invalid duration `soon`"),
            ("silence web high-cpu 0s", "positive length"),
            ("ack web", "ack: missing the rule"),
            ("restart web two", "invalid replica \"two\""),
        ];
        for (line, expected) in cases {
            let error = parse(line).expect_err(line).to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    fn setting(min: u32, max: u32) -> AutoscaleSetting {
        AutoscaleSetting {
            min_replicas: min,
            max_replicas: max,
            cpu_percent: None,
            memory_percent: None,
            metrics: Vec::new(),
        }
    }

    fn metric(name: &str, value: f64) -> MetricTarget {
        MetricTarget {
            name: name.to_owned(),
            per_replica: PerReplica::new(value).unwrap(),
        }
    }

    #[test]
    fn parse_autoscale_and_force() {
        let web = || target("web", None);
        let cases = [
            (
                "autoscale web 1 5",
                PaletteCommand::Autoscale {
                    target: web(),
                    setting: setting(1, 5),
                },
            ),
            (
                "autoscale web 2 2 cpu=70 memory=150 env:staging",
                PaletteCommand::Autoscale {
                    target: target("web", Some("staging")),
                    setting: AutoscaleSetting {
                        cpu_percent: Some(70),
                        memory_percent: Some(150),
                        ..setting(2, 2)
                    },
                },
            ),
            (
                "autoscale web 1 10 requests_per_second=50 queue:depth=0.5",
                PaletteCommand::Autoscale {
                    target: web(),
                    setting: AutoscaleSetting {
                        metrics: vec![
                            metric("requests_per_second", 50.0),
                            metric("queue:depth", 0.5),
                        ],
                        ..setting(1, 10)
                    },
                },
            ),
            (
                "autoscale off web",
                PaletteCommand::AutoscaleOff { target: web() },
            ),
            (
                "autoscale off web --env production",
                PaletteCommand::AutoscaleOff {
                    target: target("web", Some("production")),
                },
            ),
            (
                "autoscale off 1 3",
                PaletteCommand::Autoscale {
                    target: target("off", None),
                    setting: setting(1, 3),
                },
            ),
            (
                "scale web 3 --force",
                PaletteCommand::Scale {
                    target: web(),
                    replicas: 3,
                    force: true,
                },
            ),
            (
                "scale web ! 3",
                PaletteCommand::Scale {
                    target: web(),
                    replicas: 3,
                    force: true,
                },
            ),
            (
                "scale! web 3",
                PaletteCommand::Scale {
                    target: web(),
                    replicas: 3,
                    force: true,
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse(line), Ok(expected), "{line}");
        }
    }

    #[test]
    fn parse_autoscale_rejects_bad_input() {
        let cases = [
            ("autoscale", "autoscale: missing the deployment name; type autoscale NAME MIN MAX"),
            ("autoscale off", "autoscale: missing the deployment name"),
            ("autoscale web", "autoscale: missing the minimum replica count"),
            ("autoscale web 1", "autoscale: missing the maximum replica count"),
            (
                "autoscale web one 5",
                "invalid minimum replica count \"one\": expected a whole number from 1 to 1000",
            ),
            ("autoscale web 0 5", "invalid minimum replica count \"0\""),
            ("autoscale web 1 1001", "invalid maximum replica count \"1001\""),
            ("autoscale web 1 2.5", "invalid maximum replica count \"2.5\""),
            (
                "autoscale web 6 2",
                "the minimum 6 is above the maximum 2; type MIN before MAX, as in autoscale NAME 2 6",
            ),
            (
                "autoscale web 1 5 cpu=0",
                "invalid cpu=0: expected a whole percentage of the request of at least 1, as in cpu=70",
            ),
            ("autoscale web 1 5 memory=lots", "invalid memory=lots"),
            ("autoscale web 1 5 cpu=70.5", "invalid cpu=70.5"),
            (
                "autoscale web 1 5 rps=-3",
                "invalid rps=-3: expected the value per replica to hold, a number above 0, as in rps=50",
            ),
            ("autoscale web 1 5 rps=NaN", "invalid rps=NaN"),
            ("autoscale web 1 5 rps=inf", "invalid rps=inf"),
            (
                "autoscale web 1 5 cpu",
                "autoscale: \"cpu\" is not a target; after MIN and MAX write cpu=PERCENT, memory=PERCENT or METRIC=VALUE",
            ),
            ("autoscale web 1 5 mem=70", "unknown key \"mem\" (did you mean memory?)"),
            ("autoscale web 1 5 cpu%=70", "unknown key \"cpu%\" (did you mean cpu?)"),
            ("autoscale web 1 5 CPU=70", "unknown key \"CPU\" (did you mean cpu?)"),
            (
                "autoscale web 1 5 req/s=5",
                "unknown key \"req/s\"; write cpu=PERCENT, memory=PERCENT or METRIC=VALUE, where METRIC is a series name",
            ),
            ("autoscale web 1 5 =5", "unknown key \"\""),
            (
                "autoscale web 1 5 cpu=70 cpu=80",
                "autoscale: cpu is given twice; give each target once",
            ),
            ("autoscale web 1 5 rps=1 rps=2", "autoscale: rps is given twice"),
            ("scale web 3 --force 4", "scale: unexpected \"4\"; type scale NAME COUNT [--force]"),
        ];
        for (line, expected) in cases {
            let error = parse(line).expect_err(line).to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn forced_count_prompt() {
        assert_eq!(parse_forced_count("3"), Ok((3, false)));
        assert_eq!(parse_forced_count("3!"), Ok((3, true)));
        assert_eq!(parse_forced_count("3 !"), Ok((3, true)));
        assert_eq!(parse_forced_count("3 --force"), Ok((3, true)));
        assert_eq!(
            parse_forced_count("three!"),
            Err(PaletteError::InvalidCount("three".to_owned()))
        );
        assert_eq!(
            parse_forced_count("!"),
            Err(PaletteError::InvalidCount(String::new()))
        );
    }

    #[test]
    fn complete_verbs_and_names() {
        let names = ["web", "worker", "api"];
        let cases = [
            ("sc", "scale ", None),
            ("r", "r", Some("matches: rollback, redeploy, restart")),
            ("a", "a", Some("matches: autoscale, ack")),
            ("au", "autoscale ", None),
            ("autoscale o", "autoscale off ", None),
            (
                "autoscale off w",
                "autoscale off w",
                Some("matches: web, worker"),
            ),
            ("re", "re", Some("matches: redeploy, restart")),
            ("res", "restart ", None),
            ("deploy ", "deploy ", None),
            ("ro", "rollback ", None),
            ("scale w", "scale w", Some("matches: web, worker")),
            ("scale a", "scale api ", None),
            ("scale web 3", "scale web 3", None),
            ("zz", "zz", None),
        ];
        for (line, expected, hint) in cases {
            let (completed, shown) = complete(line, &names);
            assert_eq!(completed, expected, "{line}");
            assert_eq!(shown.as_deref(), hint, "{line}");
        }
    }
}
