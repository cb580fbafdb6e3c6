//! Writes that merge into a stored object: server-side apply with a simple
//! field-ownership model, JSON merge patches, and an approximation of
//! strategic merge patches.
//!
//! # Field ownership
//!
//! A field is a path of map keys from the object's root. Lists and scalars
//! are leaves: a list is owned as a whole (atomic), where a real server
//! merges lists such as `containers` or `ports` by their keys. Ownership is
//! kept in `metadata.managedFields` in the `FieldsV1` encoding, one entry
//! per manager and operation, so clients read it as they would from a real
//! server.
//!
//! An apply by manager M with fields F:
//! 1. conflicts where another manager owns a field of F (or a field inside
//!    or around it) whose stored value differs from the applied one; the
//!    apply fails with 409 unless `force=true`, which moves the field to M;
//! 2. removes the fields M applied last time, left out of F now, and owned
//!    by no other manager;
//! 3. sets every field of F and records F as M's set.
//!
//! Other writes (create, update, merge patches) give their manager the
//! fields they changed and take those fields from every other manager,
//! without conflicts, as on a real server.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

pub type FieldPath = Vec<String>;
pub type FieldSet = BTreeSet<FieldPath>;

/// Fields that belong to the server, not to any manager.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
];

/// Lists the leaf fields of a configuration, leaving out `apiVersion`,
/// `kind`, `status` and the server's metadata.
pub fn leaf_fields(value: &Value) -> FieldSet {
    let mut fields = FieldSet::new();
    let Some(object) = value.as_object() else {
        return fields;
    };
    for (key, child) in object {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for (meta_key, meta_value) in child.as_object().into_iter().flatten() {
                    if !SERVER_METADATA.contains(&meta_key.as_str()) {
                        collect(
                            meta_value,
                            vec!["metadata".to_owned(), meta_key.clone()],
                            &mut fields,
                        );
                    }
                }
            }
            _ => collect(child, vec![key.clone()], &mut fields),
        }
    }
    fields
}

fn collect(value: &Value, path: FieldPath, fields: &mut FieldSet) {
    match value.as_object() {
        Some(object) if !object.is_empty() => {
            for (key, child) in object {
                let mut child_path = path.clone();
                child_path.push(key.clone());
                collect(child, child_path, fields);
            }
        }
        _ => {
            fields.insert(path);
        }
    }
}

pub fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.as_object()?.get(key)?;
    }
    Some(current)
}

pub fn set_path(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        *value = new;
        return;
    };
    let mut current = value;
    for key in parents {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(object) = current.as_object_mut() else {
            return;
        };
        current = object.entry(key.clone()).or_insert_with(|| json!({}));
    }
    if !current.is_object() {
        *current = json!({});
    }
    if let Some(object) = current.as_object_mut() {
        object.insert(last.clone(), new);
    }
}

/// Removes a field, and then each parent map that it left empty.
pub fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = &mut *value;
    for key in parents {
        match current.as_object_mut().and_then(|o| o.get_mut(key)) {
            Some(child) => current = child,
            None => return,
        }
    }
    if let Some(object) = current.as_object_mut() {
        object.remove(last);
        if object.is_empty() && !parents.is_empty() {
            remove_path(value, parents);
        }
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone)]
pub struct Manager {
    pub name: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

pub fn managers(object: &Value) -> Vec<Manager> {
    let entries = get_path(object, &["metadata".to_owned(), "managedFields".to_owned()]);
    let mut managers = Vec::new();
    for entry in entries.and_then(Value::as_array).into_iter().flatten() {
        let text = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut fields = FieldSet::new();
        if let Some(tree) = entry.get("fieldsV1") {
            decode_fields(tree, Vec::new(), &mut fields);
        }
        managers.push(Manager {
            name: text("manager"),
            operation: text("operation"),
            api_version: text("apiVersion"),
            time: text("time"),
            subresource: entry
                .get("subresource")
                .and_then(Value::as_str)
                .map(str::to_owned),
            fields,
        });
    }
    managers
}

pub fn set_managers(object: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(|m| {
            let mut entry = json!({
                "manager": m.name,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode_fields(&m.fields),
            });
            if let Some(sub) = &m.subresource {
                entry["subresource"] = json!(sub);
            }
            entry
        })
        .collect();
    let path = ["metadata".to_owned(), "managedFields".to_owned()];
    if entries.is_empty() {
        remove_path(object, &path);
    } else {
        set_path(object, &path, Value::Array(entries));
    }
}

fn encode_fields(fields: &FieldSet) -> Value {
    let mut tree = json!({});
    for path in fields {
        let keys: Vec<String> = path.iter().map(|key| format!("f:{key}")).collect();
        set_path(&mut tree, &keys, json!({}));
    }
    tree
}

fn decode_fields(tree: &Value, path: FieldPath, fields: &mut FieldSet) {
    let children: Vec<(&String, &Value)> = tree
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with("f:"))
        .collect();
    if children.is_empty() {
        if !path.is_empty() {
            fields.insert(path);
        }
        return;
    }
    for (key, child) in children {
        let mut child_path = path.clone();
        child_path.push(key["f:".len()..].to_owned());
        decode_fields(child, child_path, fields);
    }
}

/// A field that another manager owns with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub manager: String,
    pub field: FieldPath,
}

impl Conflict {
    /// The field as the API server prints it: `.spec.replicas`.
    pub fn field_text(&self) -> String {
        self.field.iter().map(|key| format!(".{key}")).collect()
    }
}

/// Who applies and when.
pub struct ApplyContext<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub now: &'a str,
    pub subresource: Option<&'a str>,
}

/// Applies `applied` over `object` (an empty object for a create), and
/// returns the conflicts instead when there are any and force is off.
pub fn apply(
    object: &mut Value,
    applied: &Value,
    context: &ApplyContext<'_>,
) -> Result<(), Vec<Conflict>> {
    let applied_fields = scoped_fields(applied, context.subresource);
    let before = object.clone();
    let mut all = managers(object);

    let mut conflicts = Vec::new();
    for other in all.iter().filter(|m| !is_same(m, context, "Apply")) {
        for field in &applied_fields {
            let owned = other.fields.iter().any(|owned| overlaps(owned, field));
            if owned && get_path(object, field) != get_path(applied, field) {
                conflicts.push(Conflict {
                    manager: other.name.clone(),
                    field: field.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !context.force {
        return Err(conflicts);
    }
    for other in all.iter_mut().filter(|m| !is_same(m, context, "Apply")) {
        for conflict in &conflicts {
            other
                .fields
                .retain(|owned| !overlaps(owned, &conflict.field));
        }
    }

    let previous = all
        .iter()
        .find(|m| is_same(m, context, "Apply"))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    for field in previous.difference(&applied_fields) {
        let kept_by_other = all
            .iter()
            .filter(|m| !is_same(m, context, "Apply"))
            .any(|m| m.fields.iter().any(|owned| overlaps(owned, field)));
        if !kept_by_other {
            remove_path(object, field);
        }
    }
    for field in &applied_fields {
        if let Some(value) = get_path(applied, field) {
            set_path(object, field, value.clone());
        }
    }

    let unchanged_set = previous == applied_fields;
    all.retain(|m| !is_same(m, context, "Apply"));
    all.push(Manager {
        name: context.manager.to_owned(),
        operation: "Apply".to_owned(),
        api_version: context.api_version.to_owned(),
        time: context.now.to_owned(),
        subresource: context.subresource.map(str::to_owned),
        fields: applied_fields,
    });
    set_managers(object, &all);
    // An apply that changes nothing leaves the object as it was, down to
    // the time in its managed fields, so it writes nothing.
    if unchanged_set && without_managed_fields(object) == without_managed_fields(&before) {
        *object = before;
    }
    Ok(())
}

fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    remove_path(
        &mut copy,
        &["metadata".to_owned(), "managedFields".to_owned()],
    );
    copy
}

/// The applied fields inside the part of the object that the request may
/// change: only `status` for the status subresource, all but `status`
/// for the main resource.
fn scoped_fields(applied: &Value, subresource: Option<&str>) -> FieldSet {
    match subresource {
        Some("status") => {
            let mut fields = FieldSet::new();
            if let Some(status) = applied.get("status") {
                collect(status, vec!["status".to_owned()], &mut fields);
            }
            fields
        }
        _ => leaf_fields(applied),
    }
}

fn is_same(manager: &Manager, context: &ApplyContext<'_>, operation: &str) -> bool {
    manager.name == context.manager
        && manager.operation == operation
        && manager.subresource.as_deref() == context.subresource
}

/// Records a non-apply write from `old` to `new` by `context.manager`: the
/// manager owns what changed, and other managers lose it.
pub fn record_update(old: &Value, new: &mut Value, context: &ApplyContext<'_>) {
    let mut candidates = leaf_fields(old);
    candidates.extend(leaf_fields(new));
    if context.subresource == Some("status") {
        for source in [old, &*new] {
            if let Some(status) = source.get("status") {
                collect(status, vec!["status".to_owned()], &mut candidates);
            }
        }
    }
    let changed: FieldSet = candidates
        .into_iter()
        .filter(|field| get_path(old, field) != get_path(new, field))
        .collect();
    if changed.is_empty() {
        return;
    }

    let mut all = managers(old);
    for manager in all.iter_mut() {
        manager
            .fields
            .retain(|owned| !changed.iter().any(|c| overlaps(owned, c)));
    }
    let present: FieldSet = changed
        .into_iter()
        .filter(|f| get_path(new, f).is_some())
        .collect();
    match all.iter_mut().find(|m| is_same(m, context, "Update")) {
        Some(entry) => {
            entry.fields.extend(present);
            entry.time = context.now.to_owned();
        }
        None => all.push(Manager {
            name: context.manager.to_owned(),
            operation: "Update".to_owned(),
            api_version: context.api_version.to_owned(),
            time: context.now.to_owned(),
            subresource: context.subresource.map(str::to_owned),
            fields: present,
        }),
    }
    set_managers(new, &all);
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_object) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_object) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch_object {
        if value.is_null() {
            target_object.remove(key);
        } else {
            merge_patch(
                target_object.entry(key.clone()).or_insert(Value::Null),
                value,
            );
        }
    }
}

/// Keys that strategic merge patches merge lists of objects by.
const MERGE_KEYS: &[&str] = &["name", "containerPort", "mountPath", "port", "type", "ip"];

/// Applies a strategic merge patch, approximately: maps merge as in a
/// merge patch, lists of objects merge by the first merge key both sides
/// carry (`name`, `containerPort`, `mountPath`, ...), `$patch: delete`
/// removes a list element, and other directives (`$setElementOrder`,
/// `$retainKeys`, `$deleteFromPrimitiveList`) are ignored.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Some(patch_object) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(target_object) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch_object {
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target_object.remove(key);
            }
            Value::Array(items) => {
                let slot = target_object.entry(key.clone()).or_insert(Value::Null);
                merge_list(slot, items);
            }
            _ => strategic_merge_patch(
                target_object.entry(key.clone()).or_insert(Value::Null),
                value,
            ),
        }
    }
}

fn merge_list(target: &mut Value, items: &[Value]) {
    let key = MERGE_KEYS
        .iter()
        .find(|key| !items.is_empty() && items.iter().all(|item| item.get(**key).is_some()));
    let (Some(key), Some(existing)) = (key, target.as_array_mut()) else {
        *target = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return;
    };
    for item in items {
        let position = existing.iter().position(|e| e.get(*key) == item.get(*key));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(index), true) => {
                existing.remove(index);
            }
            (Some(index), false) => strategic_merge_patch(&mut existing[index], item),
            (None, false) => existing.push(item.clone()),
            (None, true) => {}
        }
    }
}
