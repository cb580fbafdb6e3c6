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
pub use quantity::{CpuQuantity, MemoryQuantity};
pub use types::*;
pub use validate::{metric_group, validate_alert_rule, Problem, BUILT_IN_METRICS, METRIC_GROUPS};

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
    let mut root = read_tree(text, origin)?;
    apply_overrides(&mut root, overrides)?;
    let manifest = type_tree(&root, origin)?;

    let positions = Positions::from_tree(&root);
    validate::validate(&manifest).map_err(|problem| {
        let site = positions.site_of(&problem.path);
        ManifestError::at_site(origin, &problem.path, &site, &problem.message)
    })?;
    Ok(manifest)
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

fn type_tree(root: &yaml::Node, origin: &str) -> Result<Manifest, ManifestError> {
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
