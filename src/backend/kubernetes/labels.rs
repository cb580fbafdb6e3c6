//! Names and labels of the objects shipdeck creates in a cluster.
//!
//! Every object carries the deployment, environment, revision and a label
//! for the agent's home, so that two agents (two homes) sharing a namespace
//! never list, change or delete each other's objects. The selector of a
//! Deployment leaves out the revision, because a selector is immutable.

use std::collections::BTreeMap;

use crate::model::DeploymentKey;

pub const LABEL_DEPLOYMENT: &str = "shipdeck/deployment";
pub const LABEL_ENVIRONMENT: &str = "shipdeck/environment";
pub const LABEL_REVISION: &str = "shipdeck/revision";
/// A hash of the agent's home path; label values cannot hold a path.
pub const LABEL_HOME: &str = "shipdeck/home";
/// The agent's home path itself, for people reading the object.
pub const ANNOTATION_HOME: &str = "shipdeck/home-path";
pub const ANNOTATION_VERSION: &str = "shipdeck/version";

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const APP_NAME: &str = "app.kubernetes.io/name";
const APP_INSTANCE: &str = "app.kubernetes.io/instance";

/// Maximum length of a name shipdeck gives an object: a DNS-1035 label, which a
/// Service name must be.
const MAX_NAME: usize = 63;

/// The identity of one deployment's objects in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentity {
    pub key: DeploymentKey,
    /// The name of the Deployment, Service and autoscaler.
    pub name: String,
    /// [`LABEL_HOME`]'s value.
    pub home_label: String,
}

impl ObjectIdentity {
    pub fn new(key: &DeploymentKey, home: &str) -> Self {
        ObjectIdentity {
            key: key.clone(),
            name: object_name(key),
            home_label: home_label(home),
        }
    }

    /// Labels that select the deployment's pods: every revision's.
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_DEPLOYMENT.to_owned(), self.key.name.clone()),
            (LABEL_ENVIRONMENT.to_owned(), self.key.environment.clone()),
            (LABEL_HOME.to_owned(), self.home_label.clone()),
        ])
    }

    /// All labels of one revision's objects.
    pub fn labels(&self, revision: u64) -> BTreeMap<String, String> {
        let mut labels = self.selector();
        labels.insert(LABEL_REVISION.to_owned(), revision.to_string());
        labels.insert(MANAGED_BY.to_owned(), "shipdeck".to_owned());
        labels.insert(APP_NAME.to_owned(), self.key.name.clone());
        labels.insert(APP_INSTANCE.to_owned(), self.name.clone());
        labels
    }

    /// The selector as a `labelSelector` query value, for listing and
    /// deleting this deployment's objects only.
    pub fn selector_text(&self) -> String {
        let terms: Vec<String> = self
            .selector()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        terms.join(",")
    }

    /// Returns the name of the Secret that contains one revision's secret env values.
    /// Each revision has its own, so pods of an older revision keep the
    /// values they started with.
    pub fn secret_name(&self, revision: u64) -> String {
        format!("{}-env-r{revision}", self.name)
    }
}

/// `NAME-ENVIRONMENT`, made a DNS-1035 label: it starts with a letter and
/// has at most 63 characters, a hash of the whole replacing the end when
/// it is longer.
pub fn object_name(key: &DeploymentKey) -> String {
    let joined = format!("{}-{}", key.name, key.environment);
    let joined = if joined.starts_with(|c: char| c.is_ascii_lowercase()) {
        joined
    } else {
        format!("sd-{joined}")
    };
    shorten(&joined, MAX_NAME)
}

fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let hash = format!("{:010x}", fnv1a(name.as_bytes()) & 0xff_ffff_ffff);
    let keep = name[..max - hash.len() - 1].trim_end_matches('-');
    format!("{keep}-{hash}")
}

/// The [`LABEL_HOME`] value of a home path: 16 hex digits.
pub fn home_label(home: &str) -> String {
    format!("{:016x}", fnv1a(home.as_bytes()))
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike
/// std's hasher. It distinguishes names and is not a security boundary.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_name_joins_name_and_environment() {
        let key = DeploymentKey::new("web", "staging");
        assert_eq!(object_name(&key), "web-staging");
    }

    #[test]
    fn object_name_starts_with_letter() {
        let key = DeploymentKey::new("3d", "production");
        assert_eq!(object_name(&key), "sd-3d-production");
    }

    #[test]
    fn long_object_name_shortened_with_hash() {
        let long = "a".repeat(63);
        let first = object_name(&DeploymentKey::new(&long, "staging"));
        let second = object_name(&DeploymentKey::new(&long, "production"));
        assert_eq!(first.len(), 63);
        assert_ne!(first, second, "the hash keeps shortened names apart");
        assert!(first.starts_with("aaaa"));
    }

    #[test]
    fn home_label_is_valid_label_value() {
        let label = home_label("/home/someone/.local/share/shipdeck");
        assert_eq!(label.len(), 16);
        assert!(label.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(label, home_label("/srv/shipdeck"));
    }

    #[test]
    fn selector_leaves_out_revision() {
        let identity = ObjectIdentity::new(&DeploymentKey::new("web", "staging"), "/srv/a");
        assert!(!identity.selector().contains_key(LABEL_REVISION));
        assert_eq!(identity.labels(4)[LABEL_REVISION], "4");
        assert_eq!(
            identity.selector_text(),
            format!(
                "shipdeck/deployment=web,shipdeck/environment=staging,shipdeck/home={}",
                identity.home_label
            )
        );
    }
}
