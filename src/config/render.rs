//! `${SECRET:name}` references in a manifest's `env`, checked at deploy
//! time and replaced by the current values when a replica starts.
//!
//! Revisions keep the references, never the values, so history shows no
//! secret and a rollback starts with the values current at that time.
//! `$${` stands for a literal `${`, as in `run.command`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::secret::{check_name, SecretRuleError, SecretValue};
use super::vault::VaultError;
use crate::manifest::Manifest;

const SECRET_PREFIX: &str = "SECRET:";

/// Finds secret values by name.
pub trait SecretLookup {
    fn lookup(&self, name: &str) -> Result<Option<SecretValue>, VaultError>;
}

impl SecretLookup for BTreeMap<String, SecretValue> {
    fn lookup(&self, name: &str) -> Result<Option<SecretValue>, VaultError> {
        Ok(self.get(name).cloned())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{field}: `${{` is not closed by `}}`; close it, or write `$${{` for a literal `${{`")]
    Unterminated { field: String },
    #[error("{field}: {source}")]
    InvalidReference {
        field: String,
        #[source]
        source: SecretRuleError,
    },
    #[error(
        "{field} refers to a secret, but secrets reach a replica only through its \
         environment; put the reference in env and read the variable in the program"
    )]
    InArguments { field: String },
    #[error(
        "{field} expands ${{{variable}}}, whose value refers to a secret, and command-line \
         arguments are visible to every user of the host; read the variable in the \
         program instead"
    )]
    ExpandsSecret { field: String, variable: String },
    #[error(
        "missing secrets: {}; create each with `shipdeck secrets set NAME` (the value is \
         read from standard input)",
        .names.join(", ")
    )]
    Missing { names: Vec<String> },
    #[error(
        "env.{key} refers to secret {name:?}, which does not exist; create it with \
         `shipdeck secrets set {name}`"
    )]
    NotFound { key: String, name: String },
    #[error(
        "{field} uses ${{{name}}}, which is not defined; pass a value with \
         `--set var.{name}=VALUE`, or write `$${{{name}}}` for a literal `${{{name}}}`"
    )]
    UnknownVariable { field: String, name: String },
    #[error(
        "{field}: `${{{text}}}` is not a valid placeholder; write ${{ENVIRONMENT}}, \
         ${{SECRET:name}} or ${{NAME}} (letters, digits and `_`), or `$${{` for a literal `${{`"
    )]
    InvalidPlaceholder { field: String, text: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A piece of an env value.
enum Piece<'a> {
    Text(&'a str),
    Secret(&'a str),
}

/// Splits an env value into text and secret references. Other `${...}`
/// placeholders stay as they are.
fn parse<'a>(field: &str, value: &'a str) -> Result<Vec<Piece<'a>>, RenderError> {
    let mut pieces = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            pieces.push(Piece::Text(&rest[..start - 1]));
            pieces.push(Piece::Text("${"));
            rest = &rest[start + 2..];
            continue;
        }
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| RenderError::Unterminated {
            field: field.to_owned(),
        })?;
        let inner = &after[..end];
        match inner.strip_prefix(SECRET_PREFIX) {
            Some(name) => {
                check_name(name).map_err(|source| RenderError::InvalidReference {
                    field: field.to_owned(),
                    source,
                })?;
                pieces.push(Piece::Secret(name));
            }
            // NOTE: other placeholders are passed through unchanged, for the
            // environment and variable substitution that renders them.
            None => pieces.push(Piece::Text(&rest[start..start + 3 + end])),
        }
        rest = &after[end + 1..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Lists the secrets that `env` refers to, checking the syntax of every value.
pub fn secret_references(env: &BTreeMap<String, String>) -> Result<BTreeSet<String>, RenderError> {
    let mut names = BTreeSet::new();
    for (key, value) in env {
        for piece in parse(&format!("env.{key}"), value)? {
            if let Piece::Secret(name) = piece {
                names.insert(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// Checks a spec's secret references and returns the names it uses.
/// Secrets may appear only in `env`: a command line (of the replica, its
/// build or its exec probes) may neither name one nor expand a variable
/// whose value contains one.
pub fn check_spec(spec: &Manifest) -> Result<BTreeSet<String>, RenderError> {
    let names = secret_references(&spec.env)?;
    let secret_vars: BTreeSet<&str> = spec
        .env
        .iter()
        .filter(|(_, value)| value.contains("${SECRET:"))
        .map(|(key, _)| key.as_str())
        .collect();

    let commands = [
        ("run.command", spec.run.as_ref().map(|run| &run.command)),
        (
            "build.command",
            spec.build.as_ref().map(|build| &build.command),
        ),
        (
            "healthCheck.command",
            spec.health_check
                .as_ref()
                .and_then(|probe| probe.command.as_ref()),
        ),
        (
            "livenessCheck.command",
            spec.liveness_check
                .as_ref()
                .and_then(|probe| probe.command.as_ref()),
        ),
    ];
    for (field, command) in commands {
        for (index, arg) in command.into_iter().flatten().enumerate() {
            check_argument(&format!("{field}[{index}]"), arg, &secret_vars)?;
        }
    }
    Ok(names)
}

fn check_argument(field: &str, arg: &str, secret_vars: &BTreeSet<&str>) -> Result<(), RenderError> {
    for variable in placeholders(arg) {
        if variable.starts_with(SECRET_PREFIX) {
            return Err(RenderError::InArguments {
                field: field.to_owned(),
            });
        }
        if secret_vars.contains(variable) {
            return Err(RenderError::ExpandsSecret {
                field: field.to_owned(),
                variable: variable.to_owned(),
            });
        }
    }
    Ok(())
}

/// Returns the names inside `${...}` in `text`, skipping `$${` escapes and
/// an unterminated `${`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let escaped = rest[..start].ends_with('$');
        let after = &rest[start + 2..];
        if escaped {
            rest = after;
            continue;
        }
        let Some(end) = after.find('}') else { break };
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    found
}

/// An environment with its secret references replaced, and the values
/// that went into it (for masking them in captured output).
pub struct RenderedEnv {
    pub env: BTreeMap<String, String>,
    pub secret_values: Vec<SecretValue>,
}

impl fmt::Debug for RenderedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedEnv")
            .field("keys", &self.env.keys().collect::<Vec<_>>())
            .field("secret_values", &self.secret_values)
            .finish()
    }
}

/// Replaces every `${SECRET:name}` in `env` with the current value and
/// every `$${` with `${`.
// NOTE: the rendered values are plain `String`s in the map, because the
// replica's environment and its exec probes need them for its whole life.
// Only the vault's own copies are zeroed.
pub fn render_env(
    env: &BTreeMap<String, String>,
    secrets: &dyn SecretLookup,
) -> Result<RenderedEnv, RenderError> {
    let mut rendered = BTreeMap::new();
    let mut values: BTreeMap<String, SecretValue> = BTreeMap::new();
    for (key, value) in env {
        let mut out = String::with_capacity(value.len());
        for piece in parse(&format!("env.{key}"), value)? {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Secret(name) => {
                    let secret = match values.get(name) {
                        Some(secret) => secret.clone(),
                        None => secrets.lookup(name)?.ok_or_else(|| RenderError::NotFound {
                            key: key.clone(),
                            name: name.to_owned(),
                        })?,
                    };
                    out.push_str(secret.expose());
                    values.insert(name.to_owned(), secret);
                }
            }
        }
        rendered.insert(key.clone(), out);
    }
    Ok(RenderedEnv {
        env: rendered,
        secret_values: values.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn vault(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretValue::new(v.to_string())))
            .collect()
    }

    #[test]
    fn references_replaced_with_values() {
        let env = env(&[
            ("URL", "postgres://app:${SECRET:db_pass}@db/app"),
            ("TOKEN", "${SECRET:token}"),
            ("PLAIN", "hello"),
        ]);
        let secrets = vault(&[("db_pass", "p4ss"), ("token", "t0k")]);
        let rendered = render_env(&env, &secrets).unwrap();
        assert_eq!(rendered.env["URL"], "postgres://app:p4ss@db/app");
        assert_eq!(rendered.env["TOKEN"], "t0k");
        assert_eq!(rendered.env["PLAIN"], "hello");
        let mut values: Vec<&str> = rendered.secret_values.iter().map(|v| v.expose()).collect();
        values.sort();
        assert_eq!(values, ["p4ss", "t0k"]);
    }

    #[test]
    fn escaped_placeholder_stays_literal() {
        let env = env(&[("A", "$${SECRET:x} and $${HOME}")]);
        let rendered = render_env(&env, &vault(&[])).unwrap();
        assert_eq!(rendered.env["A"], "${SECRET:x} and ${HOME}");
        assert!(rendered.secret_values.is_empty());
        assert!(secret_references(&env).unwrap().is_empty());
    }

    #[test]
    fn other_placeholders_pass_through() {
        let env = env(&[("A", "${ENVIRONMENT}-${SECRET:s}")]);
        let rendered = render_env(&env, &vault(&[("s", "v")])).unwrap();
        assert_eq!(rendered.env["A"], "${ENVIRONMENT}-v");
    }

    #[test]
    fn unterminated_placeholder_names_the_key() {
        let env = env(&[("BROKEN", "x ${SECRET:db")]);
        let message = secret_references(&env).unwrap_err().to_string();
        assert!(message.contains("env.BROKEN"), "{message}");
        assert!(message.contains("$${"), "{message}");
    }

    #[test]
    fn invalid_reference_name_is_rejected() {
        let env = env(&[("A", "${SECRET:bad name}")]);
        let message = secret_references(&env).unwrap_err().to_string();
        assert!(message.contains("env.A"), "{message}");
        assert!(message.contains("\"bad name\""), "{message}");
    }

    #[test]
    fn missing_secret_at_launch_names_it() {
        let env = env(&[("A", "${SECRET:gone}")]);
        let error = render_env(&env, &vault(&[])).unwrap_err();
        assert!(matches!(error, RenderError::NotFound { ref name, .. } if name == "gone"));
    }

    #[test]
    fn debug_output_hides_values() {
        let env = env(&[("A", "${SECRET:s}")]);
        let rendered = render_env(&env, &vault(&[("s", "visible-canary")])).unwrap();
        let debug = format!("{rendered:?}");
        assert!(!debug.contains("visible-canary"), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
    }

    #[test]
    fn placeholders_skip_escapes() {
        assert_eq!(placeholders("${A}-$${B}-${C}"), ["A", "C"]);
        assert_eq!(placeholders("${open"), Vec::<&str>::new());
    }

    fn spec_with(command: &[&str], env_pairs: &[(&str, &str)]) -> Manifest {
        let mut spec =
            crate::manifest::parse("name: web\nrun:\n  command: [\"true\"]\n", "test", &[])
                .unwrap();
        if let Some(run) = spec.run.as_mut() {
            run.command = command.iter().map(|s| s.to_string()).collect();
        }
        spec.env = env(env_pairs);
        spec
    }

    #[test]
    fn secret_in_command_is_rejected() {
        let spec = spec_with(&["app", "--token=${SECRET:t}"], &[]);
        let message = check_spec(&spec).unwrap_err().to_string();
        assert!(message.contains("run.command[1]"), "{message}");
    }

    #[test]
    fn command_expanding_secret_variable_is_rejected() {
        let spec = spec_with(&["app", "${TOKEN}", "${PORT}"], &[("TOKEN", "${SECRET:t}")]);
        let error = check_spec(&spec).unwrap_err();
        assert!(
            matches!(error, RenderError::ExpandsSecret { ref variable, .. } if variable == "TOKEN"),
            "{error}"
        );
        let fine = spec_with(
            &["app", "$${TOKEN}", "${PORT}"],
            &[("TOKEN", "${SECRET:t}")],
        );
        let names = check_spec(&fine).unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["t"]);
    }
}
