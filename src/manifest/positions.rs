//! Field path → source site, so validation of typed values can point at the text.

use std::collections::HashMap;

use super::de::child_path;
use super::yaml::{Node, Site, Value};

pub struct Positions {
    sites: HashMap<String, Site>,
    root: Site,
}

impl Positions {
    pub fn from_tree(root: &Node) -> Self {
        let mut sites = HashMap::new();
        record(root, String::new(), &mut sites);
        Positions {
            sites,
            root: root.site.clone(),
        }
    }

    /// Returns the site of `path`, or of its nearest ancestor for a field that was left out.
    pub fn site_of(&self, path: &str) -> Site {
        let mut path = path;
        loop {
            if let Some(site) = self.sites.get(path) {
                return site.clone();
            }
            match path.rfind(['.', '[']) {
                Some(end) => path = &path[..end],
                None => return self.root.clone(),
            }
        }
    }
}

fn record(node: &Node, path: String, sites: &mut HashMap<String, Site>) {
    match &node.value {
        Value::Scalar { .. } => {}
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                record(item, format!("{path}[{index}]"), sites);
            }
        }
        Value::Mapping(entries) => {
            for entry in entries {
                record(&entry.value, child_path(&path, &entry.key), sites);
            }
        }
    }
    sites.insert(path, node.site.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::parse_document;

    #[test]
    fn nested_path_is_found() {
        let root =
            parse_document("ports:\n  - name: http\n    containerPort: 80\n").expect("valid");
        let positions = Positions::from_tree(&root);
        assert_eq!(
            positions.site_of("ports[0].containerPort"),
            Site::Text {
                line: 3,
                column: 20
            }
        );
    }

    #[test]
    fn missing_path_falls_back_to_parent() {
        let root = parse_document("a: 1\nhealthCheck:\n  type: http\n").expect("valid");
        let positions = Positions::from_tree(&root);
        assert_eq!(
            positions.site_of("healthCheck.port"),
            Site::Text { line: 3, column: 3 }
        );
    }
}
