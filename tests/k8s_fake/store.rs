//! The object store: objects by resource, namespace and name, one
//! resource-version counter for all of them (as etcd has), and a bounded
//! history of changes that watches replay from.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::resources::ResourceType;

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One stored change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub revision: u64,
    pub resource: &'static ResourceType,
    pub namespace: String,
    pub change: ChangeType,
    pub object: Value,
}

type Key = (&'static str, &'static str, String, String);

fn key(resource: &'static ResourceType, namespace: &str, name: &str) -> Key {
    (
        resource.group,
        resource.plural,
        namespace.to_owned(),
        name.to_owned(),
    )
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    next_uid: u64,
    changes: broadcast::Sender<Change>,
}

impl Store {
    pub fn new(history_limit: usize, changes: broadcast::Sender<Change>) -> Self {
        Store {
            objects: BTreeMap::new(),
            revision: 1,
            history: VecDeque::new(),
            history_limit,
            next_uid: 1,
            changes,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Returns the oldest revision a watch can resume from. Older ones get
    /// 410 Gone.
    pub fn oldest_watchable(&self) -> u64 {
        self.history
            .front()
            .map_or(self.revision, |change| change.revision.saturating_sub(1))
    }

    /// Changes after `revision`, oldest first.
    pub fn history_after(&self, revision: u64) -> Vec<Change> {
        self.history
            .iter()
            .filter(|change| change.revision > revision)
            .cloned()
            .collect()
    }

    /// Drops all history up to the current revision, as an etcd compaction
    /// does, so that watches from older revisions get 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
    }

    pub fn get(
        &self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<&Value> {
        self.objects.get(&key(resource, namespace, name))
    }

    /// Objects of a resource, in one namespace or (with `None`) in all.
    pub fn list(&self, resource: &'static ResourceType, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((group, plural, ns, _), _)| {
                *group == resource.group
                    && *plural == resource.plural
                    && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, object)| object)
            .collect()
    }

    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects.keys().any(|(group, plural, _, object)| {
            group.is_empty() && *plural == "namespaces" && object == name
        })
    }

    /// Stores a new object, filling in the server's metadata.
    pub fn create(
        &mut self,
        resource: &'static ResourceType,
        mut object: Value,
        now: &str,
    ) -> Value {
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        self.next_uid += 1;
        let namespace = namespace_of(&object);
        let name = name_of(&object);
        self.revision += 1;
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(uid);
        metadata["creationTimestamp"] = json!(now);
        metadata["resourceVersion"] = json!(self.revision.to_string());
        if resource.has_generation() {
            metadata["generation"] = json!(1);
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        self.objects
            .insert(key(resource, &namespace, &name), object.clone());
        self.record(resource, &namespace, ChangeType::Added, &object);
        object
    }

    /// Replaces a stored object. When the new object equals the stored one,
    /// nothing is written and the resource version stays. Otherwise the
    /// resource version moves, and so does the generation if the spec changed.
    pub fn update(&mut self, resource: &'static ResourceType, mut object: Value) -> Value {
        let namespace = namespace_of(&object);
        let name = name_of(&object);
        let storage_key = key(resource, &namespace, &name);
        let Some(old) = self.objects.get(&storage_key) else {
            return object;
        };
        object["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        match old["metadata"].get("generation") {
            Some(generation) => object["metadata"]["generation"] = generation.clone(),
            None => {
                if let Some(metadata) = object["metadata"].as_object_mut() {
                    metadata.remove("generation");
                }
            }
        }
        if object == *old {
            return object;
        }
        if resource.has_generation() && object.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_u64().unwrap_or(1);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.objects.insert(storage_key, object.clone());
        self.record(resource, &namespace, ChangeType::Modified, &object);
        object
    }

    pub fn delete(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let mut object = self.objects.remove(&key(resource, namespace, name))?;
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.record(resource, namespace, ChangeType::Deleted, &object);
        Some(object)
    }

    fn record(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        change: ChangeType,
        object: &Value,
    ) {
        let change = Change {
            revision: self.revision,
            resource,
            namespace: namespace.to_owned(),
            change,
            object: object.clone(),
        };
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            self.history.pop_front();
        }
        // No receiver only means that no watch is open.
        let _ = self.changes.send(change);
    }
}

pub fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn namespace_of(object: &Value) -> String {
    object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
