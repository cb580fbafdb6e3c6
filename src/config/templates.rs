//! Config templates: partial manifests that a manifest names with
//! `template: NAME` to start from.
//!
//! A template may carry `description`, `template` (a parent template that
//! it extends), `env`, `ports`, `healthCheck`, `livenessCheck`, `resources`
//! and `monitoring`. Any other key is an error, because a template should
//! not decide what runs (`run`, `image`, `source`) or where (`name`,
//! `environment`).
//!
//! Merging: the manifest's own value wins. `ports`, `healthCheck`,
//! `livenessCheck` and `monitoring` come from the nearest template in the
//! chain that sets them, whole, when the manifest leaves them out; each
//! quantity of `resources` is filled in the same way; `env` is merged key by
//! key (see `crate::engine` for the order of all layers).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::interpolate::check_syntax;
use super::ConfigError;
use crate::manifest::{
    self, dns_label_problem, is_env_name, Manifest, Monitoring, Parsed, Port, Probe, ResourceList,
    Resources,
};

/// The fields a template may carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The parent template, whose fields this one extends and overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_check: Option<Probe>,
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
}

const WEB_APP: &str = r#"# A web application: one HTTP port with a health check, a session
# secret and a database URL.
description: web application with sessions and a database
ports:
  - { name: http, containerPort: 8080, appProtocol: http }
env:
  NODE_ENV: ${ENVIRONMENT}
  LOG_LEVEL: info
  SESSION_SECRET: ${SECRET:session_secret}
  DATABASE_URL: ${SECRET:database_url}
healthCheck:
  type: http
  path: /healthz
  port: http
"#;

const API_SERVICE: &str = r#"# An HTTP API: one port with a health check, a database URL, an
# API signing key, and requests sized for a small service.
description: HTTP API with a database and resource requests
ports:
  - { name: http, containerPort: 8080, appProtocol: http }
env:
  NODE_ENV: ${ENVIRONMENT}
  LOG_LEVEL: info
  DATABASE_URL: ${SECRET:database_url}
  API_SIGNING_KEY: ${SECRET:api_signing_key}
healthCheck:
  type: http
  path: /healthz
  port: http
resources:
  requests: { cpu: 250m, memory: 128Mi }
  limits: { memory: 512Mi }
monitoring:
  enabled: true
  metrics: [cpu, memory]
"#;

/// Returns the names and texts of the built-in templates.
pub fn built_in_templates() -> [(&'static str, &'static str); 2] {
    [("web-app", WEB_APP), ("api-service", API_SERVICE)]
}

/// Checks a template name: a DNS-1123 label, like deployment names.
pub fn check_template_name(name: &str) -> Result<(), ConfigError> {
    match dns_label_problem(name) {
        Some(problem) => Err(ConfigError::InvalidTemplateName {
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Parses and checks the text of template `name`: unknown keys, value
/// types, `env` keys and placeholders, and the rules that a manifest with
/// these fields would have to pass. Errors carry the line and column.
pub fn parse_template(name: &str, text: &str) -> Result<TemplateSpec, ConfigError> {
    check_template_name(name)?;
    let origin = format!("template {name}");
    let parsed = manifest::parse_typed::<TemplateSpec>(text, &origin, &[])?;
    check_env(&parsed)?;
    if parsed.value.template.as_deref() == Some(name) {
        return Err(ConfigError::TemplateCycle {
            chain: vec![name.to_owned(), name.to_owned()],
        });
    }
    if let Some(parent) = &parsed.value.template {
        check_template_name(parent)?;
    }
    check_as_manifest(&parsed)?;
    Ok(parsed.value)
}

fn check_env(parsed: &Parsed<TemplateSpec>) -> Result<(), ConfigError> {
    for (key, value) in &parsed.value.env {
        let path = format!("env.{key}");
        if !is_env_name(key) {
            let message = format!(
                "invalid environment variable name `{key}`; use letters, digits and `_`, \
                 not starting with a digit"
            );
            return Err(parsed.error_at(&path, &message).into());
        }
        if let Err(error) = check_syntax(&path, value) {
            let message = error.to_string();
            let message = message
                .strip_prefix(&format!("{path}: "))
                .unwrap_or(&message);
            return Err(parsed.error_at(&path, message).into());
        }
    }
    Ok(())
}

/// Checks the template's fields with the manifest's rules, on a manifest
/// that has nothing else, so a port a probe names must be in the template.
fn check_as_manifest(parsed: &Parsed<TemplateSpec>) -> Result<(), ConfigError> {
    let mut probe = manifest::parse(
        "name: template-check\nrun:\n  command: [\"true\"]\n",
        "template check",
        &[],
    )?;
    fill_from(&mut probe, &parsed.value);
    match manifest::check_rules(&probe) {
        Ok(()) => Ok(()),
        Err(problem) => Err(parsed.error_at(&problem.path, &problem.message).into()),
    }
}

/// Follows `template:` links from `first`, loading each template with
/// `load(name, referenced_by)`. Returns the chain nearest first. A link back
/// to a template already in the chain is an error that names the cycle.
pub fn resolve_chain(
    first: &str,
    mut load: impl FnMut(&str, Option<&str>) -> Result<TemplateSpec, ConfigError>,
) -> Result<Vec<(String, TemplateSpec)>, ConfigError> {
    let mut chain: Vec<(String, TemplateSpec)> = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(name) = next {
        if chain.iter().any(|(seen, _)| *seen == name) {
            let mut names: Vec<String> = chain.into_iter().map(|(seen, _)| seen).collect();
            names.push(name);
            return Err(ConfigError::TemplateCycle { chain: names });
        }
        let referenced_by = chain.last().map(|(parent, _)| parent.as_str());
        let spec = load(&name, referenced_by)?;
        next = spec.template.clone();
        chain.push((name, spec));
    }
    Ok(chain)
}

/// Fills the fields the manifest leaves out from a chain, nearest template
/// first. `env` is left to the caller, which layers it with the other
/// sources.
pub fn apply_chain(manifest: &mut Manifest, chain: &[(String, TemplateSpec)]) {
    for (_, spec) in chain {
        fill_from(manifest, spec);
    }
}

fn fill_from(manifest: &mut Manifest, spec: &TemplateSpec) {
    if manifest.ports.is_empty() {
        manifest.ports = spec.ports.clone();
    }
    fill_option(&mut manifest.health_check, &spec.health_check);
    fill_option(&mut manifest.liveness_check, &spec.liveness_check);
    fill_option(&mut manifest.monitoring, &spec.monitoring);
    fill_resources(&mut manifest.resources, &spec.resources);
}

/// Returns the fields of a chain other than `env`, merged the way a
/// manifest is filled, for showing what a template contributes.
pub fn merged_fields(chain: &[(String, TemplateSpec)]) -> TemplateSpec {
    let mut merged = TemplateSpec::default();
    for (_, spec) in chain {
        if merged.ports.is_empty() {
            merged.ports = spec.ports.clone();
        }
        fill_option(&mut merged.health_check, &spec.health_check);
        fill_option(&mut merged.liveness_check, &spec.liveness_check);
        fill_option(&mut merged.monitoring, &spec.monitoring);
        fill_resources(&mut merged.resources, &spec.resources);
    }
    merged
}

fn fill_option<T: Clone>(target: &mut Option<T>, source: &Option<T>) {
    if target.is_none() {
        target.clone_from(source);
    }
}

fn fill_resources(target: &mut Resources, source: &Resources) {
    fill_list(&mut target.requests, source.requests.as_ref());
    fill_list(&mut target.limits, source.limits.as_ref());
}

fn fill_list(target: &mut Option<ResourceList>, source: Option<&ResourceList>) {
    let Some(source) = source else { return };
    let list = target.get_or_insert_with(ResourceList::default);
    fill_option(&mut list.cpu, &source.cpu);
    fill_option(&mut list.memory, &source.memory);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_manifest(text: &str) -> Manifest {
        manifest::parse(text, "test", &[]).unwrap()
    }

    #[test]
    fn built_ins_parse() {
        for (name, text) in built_in_templates() {
            let spec = parse_template(name, text).unwrap();
            assert_eq!(spec.env["NODE_ENV"], "${ENVIRONMENT}", "{name}");
            assert!(spec.env["DATABASE_URL"].contains("${SECRET:"), "{name}");
            assert_eq!(spec.ports.len(), 1, "{name}");
        }
    }

    #[test]
    fn unknown_field_located_with_suggestion() {
        let error = parse_template("t", "env:\n  A: b\nhealthChek:\n  type: tcp\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("template t:3:1"), "{error}");
        assert!(error.contains("healthCheck"), "{error}");
    }

    #[test]
    fn field_outside_template_rejected() {
        let error = parse_template("t", "replicas: 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `replicas`"), "{error}");
    }

    #[test]
    fn probe_port_must_exist() {
        let error = parse_template("t", "healthCheck:\n  type: tcp\n  port: web\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("healthCheck.port"), "{error}");
    }

    #[test]
    fn env_placeholder_errors_located() {
        let error = parse_template("t", "env:\n  A: \"x ${OPEN\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("template t:2:6: env.A"), "{error}");
        assert!(error.contains("not closed"), "{error}");
    }

    #[test]
    fn self_reference_is_a_cycle() {
        let error = parse_template("loop", "template: loop\n").unwrap_err();
        assert_eq!(error.to_string().matches("loop").count(), 2, "{error}");
        assert!(matches!(error, ConfigError::TemplateCycle { .. }));
    }

    #[test]
    fn chain_cycle_named_in_order() {
        let specs = BTreeMap::from([("a", Some("b")), ("b", Some("c")), ("c", Some("a"))]);
        let error = resolve_chain("a", |name, _| {
            Ok(TemplateSpec {
                template: specs[name].map(str::to_owned),
                ..TemplateSpec::default()
            })
        })
        .unwrap_err();
        assert!(error.to_string().contains("a -> b -> c -> a"), "{error}");
    }

    #[test]
    fn nearest_template_wins() {
        let parent = TemplateSpec {
            ports: parse_template("p", "ports: [{ containerPort: 1 }]\n")
                .unwrap()
                .ports,
            ..TemplateSpec::default()
        };
        let child = TemplateSpec {
            template: Some("parent".into()),
            ports: parse_template("c", "ports: [{ containerPort: 2 }]\n")
                .unwrap()
                .ports,
            ..TemplateSpec::default()
        };
        let chain = vec![("child".to_owned(), child), ("parent".to_owned(), parent)];

        let mut spec = parse_manifest("name: w\nrun: { command: [x] }\n");
        apply_chain(&mut spec, &chain);
        assert_eq!(spec.ports[0].container_port, 2);
        assert_eq!(merged_fields(&chain).ports[0].container_port, 2);
    }

    #[test]
    fn manifest_fields_win_and_resources_fill() {
        let template = parse_template(
            "t",
            "ports: [{ containerPort: 1 }]\nresources:\n  requests: { cpu: 100m, memory: 64Mi }\n",
        )
        .unwrap();
        let mut spec = parse_manifest(
            "name: w\nrun: { command: [x] }\nports: [{ containerPort: 2 }]\nresources:\n  requests: { cpu: 500m }\n",
        );
        apply_chain(&mut spec, &[("t".to_owned(), template)]);
        assert_eq!(spec.ports[0].container_port, 2);
        let requests = spec.resources.requests.unwrap();
        assert_eq!(requests.cpu.unwrap().millicores, 500);
        assert_eq!(requests.memory.unwrap().bytes, 64 << 20);
    }
}
