//! `--set KEY=VALUE` overrides, applied to the node tree before it is typed.
//!
//! Overrides change the tree instead of the typed manifest, so an override value
//! is read exactly like the same text in the file. For example, `replicas=3` is a
//! number for an integer field and `env.X=no` stays the string "no". The value
//! then goes through the same type checks and validation.

use super::yaml::{Entry, Node, Site, Value};

/// One step of an override path: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `ports[0].hostPort` into `[Key("ports"), Index(0), Key("hostPort")]`.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        parse_part(path, part, &mut segments)?;
    }
    Ok(segments)
}

fn parse_part(path: &str, part: &str, segments: &mut Vec<Segment>) -> Result<(), String> {
    let key_len = part.find('[').unwrap_or(part.len());
    let (key, mut indexes) = part.split_at(key_len);
    if key.is_empty() {
        return Err(format!(
            "invalid override path `{path}`: every `.` must be followed by a key name, \
             as in ports[0].hostPort"
        ));
    }
    segments.push(Segment::Key(key.to_owned()));

    while !indexes.is_empty() {
        let close = indexes.find(']').ok_or_else(|| unclosed_index(path))?;
        let index = indexes[1..close]
            .parse::<usize>()
            .map_err(|_| bad_index(path, &indexes[1..close]))?;
        segments.push(Segment::Index(index));

        indexes = &indexes[close + 1..];
        if !indexes.is_empty() && !indexes.starts_with('[') {
            return Err(unclosed_index(path));
        }
    }
    Ok(())
}

fn unclosed_index(path: &str) -> String {
    format!("invalid override path `{path}`: write list indexes as [N], as in tags[1]")
}

fn bad_index(path: &str, index: &str) -> String {
    format!("invalid override path `{path}`: list index `{index}` is not a whole number")
}

/// Sets the node at `path` to the plain scalar `value`, creating missing mappings and list items.
pub fn apply(root: &mut Node, path: &str, value: &str) -> Result<(), String> {
    let segments = parse_path(path)?;
    let site = Site::Override {
        text: format!("{path}={value}"),
        column: path.chars().count() + 2,
    };
    let new_value = Node::scalar(value, site.clone());
    set(root, &segments, new_value, &site, "")
}

fn set(
    node: &mut Node,
    segments: &[Segment],
    value: Node,
    site: &Site,
    walked: &str,
) -> Result<(), String> {
    let Some((segment, rest)) = segments.split_first() else {
        *node = value;
        return Ok(());
    };

    match segment {
        Segment::Key(key) => {
            let child = mapping_child(node, key, site, walked)?;
            set(
                child,
                rest,
                value,
                site,
                &super::de::child_path(walked, key),
            )
        }
        Segment::Index(index) => {
            let child = sequence_child(node, *index, site, walked)?;
            set(child, rest, value, site, &format!("{walked}[{index}]"))
        }
    }
}

fn mapping_child<'a>(
    node: &'a mut Node,
    key: &str,
    site: &Site,
    walked: &str,
) -> Result<&'a mut Node, String> {
    if node.is_null() {
        node.value = Value::Mapping(Vec::new());
    }
    let description = node.describe();
    let Value::Mapping(entries) = &mut node.value else {
        return Err(format!(
            "cannot set key `{key}` inside `{walked}`, because `{walked}` is {}, not a mapping",
            description
        ));
    };

    let position = match entries.iter().position(|entry| entry.key == key) {
        Some(position) => position,
        None => {
            entries.push(Entry {
                key: key.to_owned(),
                key_site: site.clone(),
                value: Node::scalar("", site.clone()),
            });
            entries.len() - 1
        }
    };
    Ok(&mut entries[position].value)
}

fn sequence_child<'a>(
    node: &'a mut Node,
    index: usize,
    site: &Site,
    walked: &str,
) -> Result<&'a mut Node, String> {
    if node.is_null() {
        node.value = Value::Sequence(Vec::new());
    }
    let description = node.describe();
    let Value::Sequence(items) = &mut node.value else {
        return Err(format!(
            "cannot set item [{index}] of `{walked}`, because `{walked}` is {}, not a list",
            description
        ));
    };

    let len = items.len();
    if index > len {
        return Err(format!(
            "index [{index}] is past the end of `{walked}`, which has {len} items; \
             use [{len}] to append an item"
        ));
    }
    if index == len {
        items.push(Node::scalar("", site.clone()));
    }
    Ok(&mut items[index])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::{parse_document, Style};

    fn scalar_at<'a>(node: &'a Node, path: &[Segment]) -> &'a str {
        let mut node = node;
        for segment in path {
            node = match (segment, &node.value) {
                (Segment::Key(key), Value::Mapping(entries)) => {
                    &entries
                        .iter()
                        .find(|entry| &entry.key == key)
                        .expect("key")
                        .value
                }
                (Segment::Index(index), Value::Sequence(items)) => &items[*index],
                _ => panic!("path does not match the tree"),
            };
        }
        match &node.value {
            Value::Scalar { text, .. } => text,
            _ => panic!("not a scalar"),
        }
    }

    #[test]
    fn path_with_indexes_is_split() {
        assert_eq!(
            parse_path("ports[0].hostPort"),
            Ok(vec![
                Segment::Key("ports".to_owned()),
                Segment::Index(0),
                Segment::Key("hostPort".to_owned()),
            ])
        );
    }

    #[test]
    fn bad_paths_are_rejected() {
        for path in ["", "a..b", "a[", "a[x]", "a[0]b", ".a", "[0]"] {
            assert!(parse_path(path).is_err(), "{path}");
        }
    }

    #[test]
    fn existing_value_is_replaced() {
        let mut root = parse_document("replicas: 1\n").expect("valid");
        apply(&mut root, "replicas", "3").expect("applies");
        assert_eq!(
            scalar_at(&root, &parse_path("replicas").expect("path")),
            "3"
        );
    }

    #[test]
    fn missing_mappings_are_created() {
        let mut root = parse_document("name: web\n").expect("valid");
        apply(&mut root, "env.GREETING", "no").expect("applies");
        assert_eq!(
            scalar_at(&root, &parse_path("env.GREETING").expect("path")),
            "no"
        );
    }

    #[test]
    fn list_item_can_be_appended() {
        let mut root = parse_document("tags: [a]\n").expect("valid");
        apply(&mut root, "tags[1]", "x").expect("applies");
        assert_eq!(scalar_at(&root, &parse_path("tags[1]").expect("path")), "x");
    }

    #[test]
    fn index_past_end_is_rejected() {
        let mut root = parse_document("tags: [a]\n").expect("valid");
        let message = apply(&mut root, "tags[2]", "x").expect_err("past the end");
        assert!(message.contains("use [1]"), "{message}");
    }

    #[test]
    fn key_inside_scalar_is_rejected() {
        let mut root = parse_document("name: web\n").expect("valid");
        assert!(apply(&mut root, "name.first", "x").is_err());
    }

    #[test]
    fn value_is_plain_scalar_from_override() {
        let mut root = parse_document("name: web\n").expect("valid");
        apply(&mut root, "replicas", "3").expect("applies");
        let Value::Mapping(entries) = &root.value else {
            panic!("root is not a mapping")
        };
        let node = &entries[1].value;
        assert_eq!(
            node.site,
            Site::Override {
                text: "replicas=3".to_owned(),
                column: 10
            }
        );
        assert!(matches!(
            node.value,
            Value::Scalar {
                style: Style::Plain,
                ..
            }
        ));
    }
}
