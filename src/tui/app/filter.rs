//! The deployments filter typed after `/`.
//!
//! Terms are separated by spaces. `env:E`, `status:S` and `tag:T` select by
//! environment, status and tag; any other term is text that the name must
//! contain, ignoring case. A row must match every kind of term given, and
//! any one value of each kind: `env:staging env:production status:failed`
//! shows the failed deployments of both environments.

use crate::model::DeploymentStatus;

use super::deployments::DeploymentRow;

/// A parsed filter; the default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lowercased text that the name must contain, every one of them.
    pub text: Vec<String>,
    pub environments: Vec<String>,
    pub statuses: Vec<DeploymentStatus>,
    pub tags: Vec<String>,
}

impl Filter {
    /// Parses what the operator typed.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut filter = Self::default();
        for term in input.split_whitespace() {
            let Some((key, value)) = term.split_once(':') else {
                filter.text.push(term.to_lowercase());
                continue;
            };
            if value.is_empty() {
                return Err(format!(
                    "{key}: needs a value, such as {key}:{}",
                    example(key)
                ));
            }
            match key {
                "env" => filter.environments.push(value.to_owned()),
                "tag" => filter.tags.push(value.to_owned()),
                "status" => filter.statuses.push(value.to_lowercase().parse()?),
                other => {
                    return Err(format!(
                    "unknown filter {other}:; use env:, status: or tag:, or text without a colon"
                ))
                }
            }
        }
        Ok(filter)
    }

    /// Undeployed deployments show only when a `status:` term names
    /// them, as `shipdeck ls` shows them only with `--status`.
    fn status_matches(&self, status: DeploymentStatus) -> bool {
        if self.statuses.is_empty() {
            return status != DeploymentStatus::Undeployed;
        }
        self.statuses.contains(&status)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, row: &DeploymentRow) -> bool {
        let name = row.name.to_lowercase();
        self.text.iter().all(|text| name.contains(text.as_str()))
            && any_or_none(&self.environments, |env| *env == row.environment)
            && self.status_matches(row.status)
            && any_or_none(&self.tags, |tag| row.tags.contains(tag))
    }
}

fn any_or_none<T>(wanted: &[T], matches: impl Fn(&T) -> bool) -> bool {
    wanted.is_empty() || wanted.iter().any(matches)
}

fn example(key: &str) -> &'static str {
    match key {
        "env" => "staging",
        "status" => "failed",
        "tag" => "shop",
        _ => "value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::deployments::tests::row;

    #[test]
    fn parses_terms() {
        let filter = Filter::parse("  Web env:staging status:failed tag:shop env:prod ").unwrap();
        assert_eq!(filter.text, vec!["web"]);
        assert_eq!(filter.environments, vec!["staging", "prod"]);
        assert_eq!(filter.statuses, vec![DeploymentStatus::Failed]);
        assert_eq!(filter.tags, vec!["shop"]);
        assert!(Filter::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_terms() {
        let cases = [
            ("status:broken", "unknown status \"broken\""),
            ("env:", "env: needs a value, such as env:staging"),
            ("owner:me", "unknown filter owner:"),
        ];
        for (input, expected) in cases {
            let error = Filter::parse(input).unwrap_err();
            assert!(error.contains(expected), "{input}: {error}");
        }
    }

    #[test]
    fn undeployed_only_when_named() {
        let gone = row("old", "staging", DeploymentStatus::Undeployed, &[]);
        assert!(!Filter::default().matches(&gone));
        assert!(!Filter::parse("old").unwrap().matches(&gone));
        assert!(Filter::parse("status:undeployed").unwrap().matches(&gone));
        assert!(Filter::parse("status:Undeployed").unwrap().matches(&gone));
    }

    #[test]
    fn matches_every_kind_and_any_value() {
        let web = row("web", "staging", DeploymentStatus::Failed, &["shop"]);
        let api = row("api", "production", DeploymentStatus::Deployed, &[]);
        let filter = Filter::parse("env:staging env:production status:failed").unwrap();
        assert!(filter.matches(&web));
        assert!(!filter.matches(&api));
        assert!(Filter::parse("WE tag:shop").unwrap().matches(&web));
        assert!(!Filter::parse("we tag:cart").unwrap().matches(&web));
        assert!(Filter::parse("").unwrap().matches(&api));
    }
}
