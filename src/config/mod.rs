//! Configuration that deployments draw on: environment configs, config
//! templates, the encrypted secret vault, and the `${...}` placeholders in
//! `env` that tie them together.
//!
//! Secret values are kept in [`SecretValue`], which zeroes its memory when
//! dropped and prints as `[REDACTED]` in debug output. Errors name secrets,
//! never their values.

pub mod cipher;
pub mod environments;
pub mod interpolate;
pub mod keys;
pub mod render;
pub mod secret;
pub mod templates;
pub mod vault;

#[cfg(test)]
mod tests;

pub use interpolate::{interpolate, mask_secrets, Variables, ENVIRONMENT_VARIABLE};
pub use keys::{KeyError, KeySource};
pub use render::{check_spec, render_env, RenderError, RenderedEnv, SecretLookup};
pub use secret::{SecretRuleError, SecretValue, MAX_VALUE_LEN};
pub use templates::TemplateSpec;
pub use vault::{Rotation, SecretInfo, Vault, VaultError};

use crate::manifest::ManifestError;

/// An invalid environment or template, or one that does not exist or is in use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid environment name {name:?}: {problem}")]
    InvalidEnvironmentName { name: String, problem: String },
    #[error(
        "invalid config key {key:?} in environment {environment}: use letters, digits and \
         `_`, not starting with a digit, as in LOG_LEVEL"
    )]
    InvalidKey { environment: String, key: String },
    #[error(
        "environment {environment} has no key {}; list its keys with `shipdeck env show {environment}`",
        .keys.join(", ")
    )]
    KeysNotSet {
        environment: String,
        keys: Vec<String>,
    },
    #[error(
        "environment {name:?} does not exist{}; the environments are {}; create it with \
         `shipdeck env set {name} KEY=VALUE`",
        did_you_mean(.suggestion),
        .known.join(", ")
    )]
    UnknownEnvironment {
        name: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
    #[error(
        "environment {name:?} is used by deployments {}; undeploy them first with \
         `shipdeck undeploy NAME --env {name}`",
        .deployments.join(", ")
    )]
    EnvironmentInUse {
        name: String,
        deployments: Vec<String>,
    },
    #[error("environment {name:?} not found; list environments with `shipdeck env ls`")]
    EnvironmentNotFound { name: String },
    #[error("invalid template name {name:?}: {problem}")]
    InvalidTemplateName { name: String, problem: String },
    #[error(
        "template {name:?} not found{}{}; list templates with `shipdeck template ls`",
        referenced_by.as_ref().map(|parent| format!(" (the parent of template {parent:?})")).unwrap_or_default(),
        did_you_mean(.suggestion)
    )]
    TemplateNotFound {
        name: String,
        referenced_by: Option<String>,
        suggestion: Option<String>,
    },
    #[error(
        "template {name:?} already exists; change it with `shipdeck template update {name} -f FILE`"
    )]
    TemplateExists { name: String },
    #[error(
        "templates form a cycle: {}; remove the `template:` field of one of them",
        .chain.join(" -> ")
    )]
    TemplateCycle { chain: Vec<String> },
    #[error(
        "template {name:?} is the parent of {}; change their `template:` field or remove them first",
        .children.join(", ")
    )]
    TemplateInUse { name: String, children: Vec<String> },
    #[error(transparent)]
    InvalidTemplate(#[from] ManifestError),
    #[error(transparent)]
    Value(#[from] RenderError),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|name| format!(" (did you mean {name:?}?)"))
        .unwrap_or_default()
}
