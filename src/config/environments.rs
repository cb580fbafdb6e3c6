//! Environment configs: the rules for their names and keys, and the three
//! built-in environments that a new home starts with.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::interpolate::check_syntax;
use super::ConfigError;
use crate::manifest::validate_environment_name;
use crate::model::EnvironmentConfig;

/// Names and defaults of the built-in environments: the log level each one
/// starts with. `NODE_ENV` is the environment's name.
const BUILT_IN: [(&str, &str); 3] = [
    ("development", "debug"),
    ("staging", "info"),
    ("production", "warn"),
];

/// Returns the built-in environments with their default config.
pub fn built_in_environments(now: OffsetDateTime) -> Vec<EnvironmentConfig> {
    BUILT_IN
        .iter()
        .map(|(name, level)| EnvironmentConfig {
            name: (*name).to_owned(),
            config: BTreeMap::from([
                ("LOG_LEVEL".to_owned(), (*level).to_owned()),
                ("NODE_ENV".to_owned(), (*name).to_owned()),
            ]),
            created_at: now,
            updated_at: now,
        })
        .collect()
}

/// Checks an environment name with the rules of the manifest's
/// `environment` field.
pub fn check_environment_name(name: &str) -> Result<(), ConfigError> {
    validate_environment_name(name).map_err(|problem| ConfigError::InvalidEnvironmentName {
        name: name.to_owned(),
        problem,
    })
}

/// Checks one config entry of environment `environment`: the key must be an
/// environment variable name and the value's placeholders well formed.
pub fn check_entry(environment: &str, key: &str, value: &str) -> Result<(), ConfigError> {
    if !crate::manifest::is_env_name(key) {
        return Err(ConfigError::InvalidKey {
            environment: environment.to_owned(),
            key: key.to_owned(),
        });
    }
    let field = format!("environment {environment}: {key}");
    check_syntax(&field, value)?;
    Ok(())
}

/// Applies `set` and then `unset` to a copy of `current`, or to a new
/// environment when `current` is `None`. Every key in `unset` must exist
/// after `set`, so a typo is reported instead of ignored.
pub fn change_config(
    name: &str,
    current: Option<EnvironmentConfig>,
    set: &BTreeMap<String, String>,
    unset: &[String],
    now: OffsetDateTime,
) -> Result<EnvironmentConfig, ConfigError> {
    check_environment_name(name)?;
    for (key, value) in set {
        check_entry(name, key, value)?;
    }
    let mut environment = current.unwrap_or_else(|| EnvironmentConfig {
        name: name.to_owned(),
        config: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    });
    environment
        .config
        .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));

    let missing: Vec<String> = unset
        .iter()
        .filter(|key| !environment.config.contains_key(key.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(ConfigError::KeysNotSet {
            environment: name.to_owned(),
            keys: missing,
        });
    }
    for key in unset {
        environment.config.remove(key);
    }
    environment.updated_at = now;
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn built_ins_have_levels_and_node_env() {
        let all = built_in_environments(now());
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["development", "staging", "production"]);
        assert_eq!(all[0].config["LOG_LEVEL"], "debug");
        assert_eq!(all[2].config["LOG_LEVEL"], "warn");
        for environment in &all {
            assert_eq!(environment.config["NODE_ENV"], environment.name);
        }
    }

    #[test]
    fn set_creates_and_unset_removes() {
        let set = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        let created = change_config("qa", None, &set, &[], now()).unwrap();
        assert_eq!(created.config["A"], "1");
        let removed =
            change_config("qa", Some(created), &BTreeMap::new(), &["A".into()], now()).unwrap();
        assert!(removed.config.is_empty());
    }

    #[test]
    fn unset_of_absent_key_named() {
        let error = change_config("qa", None, &BTreeMap::new(), &["NOPE".into()], now())
            .unwrap_err()
            .to_string();
        assert!(error.contains("NOPE"), "{error}");
        assert!(error.contains("qa"), "{error}");
    }

    #[test]
    fn bad_names_and_keys_rejected() {
        let set = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        let error = change_config("Prod", None, &set, &[], now()).unwrap_err();
        assert!(error.to_string().contains("\"Prod\""), "{error}");
        let bad_key = BTreeMap::from([("1A".to_owned(), "1".to_owned())]);
        let error = change_config("qa", None, &bad_key, &[], now()).unwrap_err();
        assert!(error.to_string().contains("\"1A\""), "{error}");
        let bad_value = BTreeMap::from([("A".to_owned(), "${OPEN".to_owned())]);
        let error = change_config("qa", None, &bad_value, &[], now()).unwrap_err();
        assert!(error.to_string().contains("environment qa: A"), "{error}");
    }
}
