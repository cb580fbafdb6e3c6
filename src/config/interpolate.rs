//! Deploy-time placeholders in `env` values: `${ENVIRONMENT}` and the
//! `${NAME}` variables given with `--set var.NAME=VALUE`.
//!
//! Interpolation replaces those two kinds and keeps `${SECRET:name}` and
//! `$${` exactly as written. The result is what a revision stores, so
//! history shows secret references and never values, and the launch-time
//! rendering in [`super::render`] later turns each reference into the
//! current value and each `$${` into `${`. A variable's value is escaped on
//! the way in, so text that a user passes through `--set var.X=...` is
//! never read as a placeholder.

use std::collections::BTreeMap;

use super::render::RenderError;
use super::secret::check_name;
use crate::manifest::is_env_name;

/// Name of the placeholder that stands for the deployment's environment.
pub const ENVIRONMENT_VARIABLE: &str = "ENVIRONMENT";

const SECRET_PREFIX: &str = "SECRET:";

/// Values that placeholders take in one deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    pub environment: String,
    /// From `--set var.NAME=VALUE`, by name.
    pub vars: BTreeMap<String, String>,
}

impl Variables {
    pub fn new(environment: &str) -> Self {
        Self {
            environment: environment.to_owned(),
            vars: BTreeMap::new(),
        }
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        if name == ENVIRONMENT_VARIABLE {
            return Some(&self.environment);
        }
        self.vars.get(name).map(String::as_str)
    }
}

/// One piece of a value, as the scanner finds it.
enum Token<'a> {
    Text(&'a str),
    /// `$${`, kept for the launch-time rendering to unescape.
    Escape,
    Secret(&'a str),
    Variable(&'a str),
}

/// Splits `value` into tokens, checking that every placeholder is closed
/// and well formed. `field` names the value in errors.
fn scan<'a>(field: &str, value: &'a str) -> Result<Vec<Token<'a>>, RenderError> {
    let mut tokens = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            tokens.push(Token::Text(&rest[..start - 1]));
            tokens.push(Token::Escape);
            rest = &rest[start + 2..];
            continue;
        }
        tokens.push(Token::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| RenderError::Unterminated {
            field: field.to_owned(),
        })?;
        tokens.push(placeholder(field, &after[..end])?);
        rest = &after[end + 1..];
    }
    tokens.push(Token::Text(rest));
    Ok(tokens)
}

fn placeholder<'a>(field: &str, inner: &'a str) -> Result<Token<'a>, RenderError> {
    if let Some(name) = inner.strip_prefix(SECRET_PREFIX) {
        check_name(name).map_err(|source| RenderError::InvalidReference {
            field: field.to_owned(),
            source,
        })?;
        return Ok(Token::Secret(name));
    }
    if !is_env_name(inner) {
        return Err(RenderError::InvalidPlaceholder {
            field: field.to_owned(),
            text: inner.to_owned(),
        });
    }
    Ok(Token::Variable(inner))
}

/// Checks the placeholders of a value that is stored now and interpolated
/// at deploy time, such as an environment config value or a template's
/// `env`. Variables are not resolved, because `--set var.*` comes later.
pub fn check_syntax(field: &str, value: &str) -> Result<(), RenderError> {
    scan(field, value).map(|_| ())
}

/// Replaces `${ENVIRONMENT}` and `${NAME}` in `value`, keeping secret
/// references and `$${` escapes. An undefined variable is an error that
/// names it and says how to define it.
pub fn interpolate(field: &str, value: &str, variables: &Variables) -> Result<String, RenderError> {
    let mut out = String::with_capacity(value.len());
    for token in scan(field, value)? {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Escape => out.push_str("$${"),
            Token::Secret(name) => {
                out.push_str("${SECRET:");
                out.push_str(name);
                out.push('}');
            }
            Token::Variable(name) => {
                let found = variables
                    .lookup(name)
                    .ok_or_else(|| RenderError::UnknownVariable {
                        field: field.to_owned(),
                        name: name.to_owned(),
                    })?;
                out.push_str(&escape(found));
            }
        }
    }
    Ok(out)
}

/// Escapes every `${` in `text` as `$${`, so that the launch-time rendering
/// turns it back into the same text.
fn escape(text: &str) -> String {
    text.replace("${", "$${")
}

/// Replaces every secret reference in an interpolated value with `mask`,
/// and unescapes `$${`, for showing a rendered value without its secrets.
pub fn mask_secrets(field: &str, value: &str, mask: &str) -> Result<String, RenderError> {
    let mut out = String::with_capacity(value.len());
    for token in scan(field, value)? {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Escape => out.push_str("${"),
            Token::Secret(_) => out.push_str(mask),
            // Interpolation has already replaced every variable.
            Token::Variable(name) => {
                out.push_str("${");
                out.push_str(name);
                out.push('}');
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::render_env;
    use crate::config::SecretValue;

    fn variables(pairs: &[(&str, &str)]) -> Variables {
        let mut variables = Variables::new("staging");
        for (name, value) in pairs {
            variables.vars.insert(name.to_string(), value.to_string());
        }
        variables
    }

    #[test]
    fn environment_and_variables_replaced() {
        let out = interpolate(
            "env.A",
            "${ENVIRONMENT}-${REGION}-x",
            &variables(&[("REGION", "eu")]),
        )
        .unwrap();
        assert_eq!(out, "staging-eu-x");
    }

    #[test]
    fn secrets_and_escapes_kept() {
        let out = interpolate(
            "env.A",
            "u:${SECRET:db}@$${HOME}",
            &variables(&[("HOME", "no")]),
        )
        .unwrap();
        assert_eq!(out, "u:${SECRET:db}@$${HOME}");
    }

    #[test]
    fn unknown_variable_named_with_fix() {
        let error = interpolate("env.A", "${NOPE}", &variables(&[])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("env.A"), "{message}");
        assert!(message.contains("${NOPE}"), "{message}");
        assert!(message.contains("--set var.NOPE="), "{message}");
        assert!(message.contains("$${NOPE}"), "{message}");
    }

    #[test]
    fn unterminated_placeholder_rejected() {
        let error = check_syntax("env.A", "x ${REGION").unwrap_err();
        assert!(matches!(error, RenderError::Unterminated { .. }), "{error}");
    }

    #[test]
    fn malformed_placeholder_rejected() {
        for text in ["${}", "${a b}", "${1X}", "${SECRET:Bad Name}"] {
            assert!(check_syntax("env.A", text).is_err(), "{text}");
        }
    }

    #[test]
    fn variable_value_stays_literal_at_launch() {
        let vars = variables(&[("X", "${SECRET:db} and $${y}")]);
        let stored = interpolate("env.A", "${X}", &vars).unwrap();
        let env = BTreeMap::from([("A".to_owned(), stored)]);
        let secrets = BTreeMap::from([("db".to_owned(), SecretValue::new("hidden".to_owned()))]);
        let launched = render_env(&env, &secrets).unwrap();
        assert_eq!(launched.env["A"], "${SECRET:db} and $${y}");
        assert!(launched.secret_values.is_empty());
    }

    #[test]
    fn interpolation_is_idempotent() {
        let vars = variables(&[("X", "1")]);
        let once = interpolate("env.A", "${X}/${SECRET:s}/$${Y}", &vars).unwrap();
        let twice = interpolate("env.A", &once, &Variables::new("other")).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn masking_hides_references() {
        let masked = mask_secrets("env.A", "pg://u:${SECRET:db}@h/$${x}", "****").unwrap();
        assert_eq!(masked, "pg://u:****@h/${x}");
    }
}
