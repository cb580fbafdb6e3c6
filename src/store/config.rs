//! Environment configs and config templates, and the one-time seeding of
//! the built-in ones.

use sled::Transactional;

use super::{
    decode, encode, storage, transaction_error, Scan, Store, StoreError, ENV_CONFIGS, TEMPLATES,
};
use crate::model::{EnvironmentConfig, TemplateRecord};

/// Key in `meta` that records that the built-in environments and templates
/// were written once. Its presence keeps a user's deletion or change of a
/// built-in from being undone at the next start.
const SEEDED_KEY: &[u8] = b"config_defaults_seeded";

impl Store {
    /// Lists every environment, ordered by name.
    pub fn environments(&self) -> Scan<EnvironmentConfig> {
        let mut scan = Scan::default();
        for entry in self.env_configs.iter() {
            let result = entry
                .map_err(storage(ENV_CONFIGS))
                .and_then(|(key, value)| decode(ENV_CONFIGS, &key, &value));
            scan.push(result);
        }
        scan
    }

    /// Reads the environment `name`.
    pub fn environment(&self, name: &str) -> Result<Option<EnvironmentConfig>, StoreError> {
        let value = self.env_configs.get(name).map_err(storage(ENV_CONFIGS))?;
        value
            .map(|bytes| decode(ENV_CONFIGS, name.as_bytes(), &bytes))
            .transpose()
    }

    /// Inserts or replaces an environment and flushes it to disk.
    pub fn put_environment(&self, environment: &EnvironmentConfig) -> Result<(), StoreError> {
        let key = environment.name.as_bytes();
        let bytes = encode(ENV_CONFIGS, key, environment)?;
        self.env_configs
            .insert(key, bytes)
            .map_err(storage(ENV_CONFIGS))?;
        self.flush()
    }

    /// Removes the environment `name`; returns whether it existed.
    pub fn delete_environment(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .env_configs
            .remove(name)
            .map_err(storage(ENV_CONFIGS))?;
        self.flush()?;
        Ok(removed.is_some())
    }

    /// Lists every template, ordered by name.
    pub fn templates(&self) -> Scan<TemplateRecord> {
        let mut scan = Scan::default();
        for entry in self.templates.iter() {
            let result = entry
                .map_err(storage(TEMPLATES))
                .and_then(|(key, value)| decode(TEMPLATES, &key, &value));
            scan.push(result);
        }
        scan
    }

    /// Reads the template `name`.
    pub fn template(&self, name: &str) -> Result<Option<TemplateRecord>, StoreError> {
        let value = self.templates.get(name).map_err(storage(TEMPLATES))?;
        value
            .map(|bytes| decode(TEMPLATES, name.as_bytes(), &bytes))
            .transpose()
    }

    /// Inserts or replaces a template and flushes it to disk.
    pub fn put_template(&self, template: &TemplateRecord) -> Result<(), StoreError> {
        let key = template.name.as_bytes();
        let bytes = encode(TEMPLATES, key, template)?;
        self.templates
            .insert(key, bytes)
            .map_err(storage(TEMPLATES))?;
        self.flush()
    }

    /// Removes the template `name`; returns whether it existed.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self.templates.remove(name).map_err(storage(TEMPLATES))?;
        self.flush()?;
        Ok(removed.is_some())
    }

    /// Writes the built-in environments and templates unless this store was
    /// seeded before, in one transaction with the seeded mark. A record of
    /// the same name that already exists is kept. Returns whether it seeded.
    pub fn seed_config_defaults(
        &self,
        environments: &[EnvironmentConfig],
        templates: &[TemplateRecord],
    ) -> Result<bool, StoreError> {
        let mut encoded_environments = Vec::with_capacity(environments.len());
        for environment in environments {
            let key = environment.name.as_bytes();
            encoded_environments.push((key, encode(ENV_CONFIGS, key, environment)?));
        }
        let mut encoded_templates = Vec::with_capacity(templates.len());
        for template in templates {
            let key = template.name.as_bytes();
            encoded_templates.push((key, encode(TEMPLATES, key, template)?));
        }

        let seeded = (&self.meta, &self.env_configs, &self.templates)
            .transaction(|(meta, env_configs, stored_templates)| {
                if meta.get(SEEDED_KEY)?.is_some() {
                    return Ok(false);
                }
                for (key, value) in &encoded_environments {
                    if env_configs.get(key)?.is_none() {
                        env_configs.insert(*key, value.as_slice())?;
                    }
                }
                for (key, value) in &encoded_templates {
                    if stored_templates.get(key)?.is_none() {
                        stored_templates.insert(*key, value.as_slice())?;
                    }
                }
                meta.insert(SEEDED_KEY, b"1".as_slice())?;
                Ok(true)
            })
            .map_err(transaction_error("meta, env_configs, templates"))?;
        if seeded {
            self.flush()?;
        }
        Ok(seeded)
    }
}
