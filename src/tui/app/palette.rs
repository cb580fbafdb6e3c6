//! The `:` command palette: parsing a typed line into a command.
//!
//! The syntax is `VERB NAME [ARGUMENT] [env:ENV | --env ENV]`, for example
//! `scale web 3`, `rollback web 2 env:production`, `redeploy web --env
//! staging` or `silence web high-cpu 2h deploying the fix`; `deploy` and
//! `secrets` take no name. The environment is needed only when the name exists in more
//! than one; the state resolves that against the deployments it lists.

use crate::engine::MAX_REPLICAS;

/// The verbs, in the order completion offers them.
pub const VERBS: [&str; 11] = [
    "scale", "rollback", "redeploy", "restart", "undeploy", "deploy", "edit", "secrets", "silence",
    "ack", "quit",
];

/// Verbs that take no deployment name, so completion offers none after them.
const NAMELESS: [&str; 3] = ["quit", "deploy", "secrets"];

/// A parsed palette line, before the name is resolved to a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaletteCommand {
    Quit,
    Scale {
        target: Target,
        replicas: u32,
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
        "scale" => {
            let usage = "scale NAME COUNT";
            let target = target("scale", rest, environment, usage)?;
            let count = rest.get(1).ok_or(PaletteError::Missing {
                verb: "scale",
                what: "the replica count",
                usage,
            })?;
            no_more("scale", &rest[2..], usage)?;
            Ok(PaletteCommand::Scale {
                target,
                replicas: parse_count(count)?,
            })
        }
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
        1 if !NAMELESS.contains(&done[0]) => names.to_vec(),
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
                },
            ),
            (
                "  scale   web 0 ",
                PaletteCommand::Scale {
                    target: target("web", None),
                    replicas: 0,
                },
            ),
            (
                "scale web 1000 env:production",
                PaletteCommand::Scale {
                    target: target("web", Some("production")),
                    replicas: 1000,
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

    #[test]
    fn complete_verbs_and_names() {
        let names = ["web", "worker", "api"];
        let cases = [
            ("sc", "scale ", None),
            ("r", "r", Some("matches: rollback, redeploy, restart")),
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
