//! The deployment manifest: YAML parsing with positions, validation, quantities and durations.
//!
//! [`parse`] runs four stages, and each reports problems as a [`ManifestError`]
//! with the field path and the line and column:
//!
//! 1. `yaml` builds a node tree from `saphyr-parser` events (YAML 1.2, so no
//!    1.1 coercions of `no`, `010` or `2122:22`), rejecting duplicate keys, tabs
//!    in indentation, anchors and a second document.
//! 2. `overrides` applies `--set KEY=VALUE` to the tree.
//! 3. `de` types the tree into [`Manifest`]; the field type decides how a
//!    scalar is read, so strings keep the text as written.
//! 4. `validate` checks the rules that span fields, finding positions by path.
//!
//! [`to_yaml`] writes a manifest back in a form that [`parse`] reads to an equal value.

mod de;
pub mod duration;
mod emit;
mod overrides;
mod positions;
pub mod quantity;
mod scalar;
mod serde_impls;
mod suggest;
pub mod types;
mod validate;
mod yaml;

pub use duration::ManifestDuration;
pub use quantity::{decimal_quantity, quantity_value, CpuQuantity, MemoryQuantity};
pub use suggest::closest;
pub use types::*;
pub use validate::{
    dns_label_problem, is_env_name, metric_group, validate_alert_rule, validate_environment_name,
    Problem, BUILT_IN_METRICS, METRIC_GROUPS,
};

use positions::Positions;
use yaml::Site;

/// Origin of errors that come from a `--set` override instead of the manifest text.
pub const OVERRIDE_ORIGIN: &str = "--set";

/// A manifest problem, located by field path and by line and column in the source.
///
/// For a value that came from a `--set` override, `origin` is `--set`, `line` is 1,
/// `column` points at the value inside `KEY=VALUE`, and the message names the override.
///
/// Displayed as `origin:line:column: path: message`, leaving out `path: ` when the
/// problem is with the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {}{message}", path_prefix(path))]
pub struct ManifestError {
    /// Where the text came from: a file name, `--set`, or `stored revision`.
    pub origin: String,
    /// Field path such as `ports[0].containerPort`; empty for the document itself.
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl ManifestError {
    fn at_site(origin: &str, path: &str, site: &Site, message: &str) -> Self {
        match site {
            Site::Text { line, column } => ManifestError {
                origin: origin.to_owned(),
                path: path.to_owned(),
                line: *line,
                column: *column,
                message: message.to_owned(),
            },
            Site::Override { text, column } => ManifestError {
                origin: OVERRIDE_ORIGIN.to_owned(),
                path: path.to_owned(),
                line: 1,
                column: *column,
                message: format!("{message} (from `--set {text}`)"),
            },
        }
    }
}

/// One `--set KEY=VALUE` override, applied to the document before it is typed.
///
/// `KEY` is a field path such as `replicas`, `env.GREETING`, `ports[0].hostPort`
/// or `tags[1]`. `VALUE` is read as a plain YAML scalar, exactly as if it were
/// written after `KEY:` in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub path: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((path, value)) = text.split_once('=') else {
            return Err(format!(
                "invalid override `{text}`: expected KEY=VALUE, such as replicas=3"
            ));
        };
        overrides::parse_path(path)?;
        Ok(Override {
            path: path.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Parses and validates one manifest, applying `overrides` in order.
///
/// `origin` names the text in error messages, usually the file name.
pub fn parse(text: &str, origin: &str, overrides: &[Override]) -> Result<Manifest, ManifestError> {
    parse_typed::<Manifest>(text, origin, overrides)?.validate()
}

/// A document typed from its text but not yet checked by the rules that
/// span fields, with the positions of its fields for locating errors.
///
/// The engine merges a template's fields into a manifest before it checks
/// the rules, because a probe may name a port that only the template has.
pub struct Parsed<T> {
    pub value: T,
    positions: Positions,
    origin: String,
}

impl<T> Parsed<T> {
    /// Builds the error for a problem at `path`, at the line and column of
    /// that field or of its nearest ancestor that the text contains.
    pub fn error_at(&self, path: &str, message: &str) -> ManifestError {
        let site = self.positions.site_of(path);
        ManifestError::at_site(&self.origin, path, &site, message)
    }
}

impl Parsed<Manifest> {
    /// Checks the rules that span fields and returns the manifest.
    pub fn validate(self) -> Result<Manifest, ManifestError> {
        match validate::validate(&self.value) {
            Ok(()) => Ok(self.value),
            Err(problem) => Err(self.error_at(&problem.path, &problem.message)),
        }
    }
}

/// Parses a YAML document into `T` with the manifest's rules for scalars
/// and unknown keys, applying `overrides` first, without the rules that
/// span fields.
pub fn parse_typed<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    overrides: &[Override],
) -> Result<Parsed<T>, ManifestError> {
    let mut root = read_tree(text, origin)?;
    apply_overrides(&mut root, overrides)?;
    let value = type_tree(&root, origin)?;
    Ok(Parsed {
        value,
        positions: Positions::from_tree(&root),
        origin: origin.to_owned(),
    })
}

/// Checks the rules that span fields on a manifest assembled in code, such
/// as one with a template merged in.
pub fn check_rules(manifest: &Manifest) -> Result<(), Problem> {
    validate::validate(manifest)
}

fn read_tree(text: &str, origin: &str) -> Result<yaml::Node, ManifestError> {
    yaml::parse_document(text).map_err(|error| ManifestError {
        origin: origin.to_owned(),
        path: error.path,
        line: error.line,
        column: error.column,
        message: error.message,
    })
}

fn apply_overrides(root: &mut yaml::Node, overrides: &[Override]) -> Result<(), ManifestError> {
    for item in overrides {
        overrides::apply(root, &item.path, &item.value).map_err(|message| ManifestError {
            origin: OVERRIDE_ORIGIN.to_owned(),
            path: item.path.clone(),
            line: 1,
            column: 1,
            message: format!("{message} (from `--set {}={}`)", item.path, item.value),
        })?;
    }
    Ok(())
}

fn type_tree<T: serde::de::DeserializeOwned>(
    root: &yaml::Node,
    origin: &str,
) -> Result<T, ManifestError> {
    de::from_node(root).map_err(|error| {
        let path = error.path.clone().unwrap_or_default();
        let site = error.site.clone().unwrap_or_else(|| root.site.clone());
        ManifestError::at_site(origin, &path, &site, &error.message)
    })
}

/// Writes a manifest back as YAML that [`parse`] reads to an equal value.
///
/// Only manifests that pass validation round-trip, because [`parse`] validates.
pub fn to_yaml(manifest: &Manifest) -> String {
    emit::to_yaml(manifest)
}
