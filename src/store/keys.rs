//! Byte layouts of the store's keys.
//!
//! Numbers are big-endian so that sled's lexicographic key order is numeric
//! order, and a deployment id followed by a NUL byte is the prefix of all of
//! that deployment's keys. Ids, names and environments therefore must not
//! contain NUL, which [`check_component`] enforces before any write.

use crate::model::DeploymentKey;

use super::StoreError;

const SEPARATOR: u8 = 0;

/// Rejects a key component that contains the separator byte.
pub(super) fn check_component(field: &'static str, value: &str) -> Result<(), StoreError> {
    if value.as_bytes().contains(&SEPARATOR) {
        return Err(StoreError::InvalidKey {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Key of the `deployment_keys` index: name first, so that a prefix scan on
/// the name finds the deployment in every environment.
pub(super) fn deployment_index(key: &DeploymentKey) -> Vec<u8> {
    join(key.name.as_bytes(), key.environment.as_bytes())
}

/// Prefix of the keys whose first component is `component`: a deployment's
/// `revisions` and `events_by_deployment` keys, or a name's `deployment_keys`.
pub(super) fn prefix(component: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(component.len() + 1);
    bytes.extend_from_slice(component.as_bytes());
    bytes.push(SEPARATOR);
    bytes
}

/// Key of a `revisions` or `events_by_deployment` entry: id, NUL, number.
pub(super) fn numbered(id: &str, number: u64) -> Vec<u8> {
    join(id.as_bytes(), &number.to_be_bytes())
}

/// Reads the big-endian number at the end of a key made by [`numbered`] or
/// [`sequence`], or `None` if the key is shorter than eight bytes.
pub(super) fn trailing_number(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let bytes: [u8; 8] = key[start..].try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// Key of the `events` tree.
pub(super) fn sequence(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Renders a raw key of `tree` for error messages.
pub(super) fn describe(tree: &str, key: &[u8]) -> String {
    match tree {
        super::REVISIONS | super::EVENTS_BY_DEPLOYMENT | super::LOGS => describe_numbered(key),
        super::EVENTS => match trailing_number(key) {
            Some(seq) if key.len() == 8 => format!("seq {seq}"),
            _ => format!("{key:?}"),
        },
        _ => String::from_utf8_lossy(key).replace('\0', "/"),
    }
}

fn describe_numbered(key: &[u8]) -> String {
    let number = trailing_number(key);
    let id_end = key.len().saturating_sub(9);
    let separated = key.get(id_end) == Some(&SEPARATOR);

    match number {
        Some(number) if separated => {
            format!("{}/{number}", String::from_utf8_lossy(&key[..id_end]))
        }
        _ => format!("{key:?}"),
    }
}

fn join(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(first.len() + 1 + second.len());
    bytes.extend_from_slice(first);
    bytes.push(SEPARATOR);
    bytes.extend_from_slice(second);
    bytes
}
