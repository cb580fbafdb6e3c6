//! `--set KEY=VALUE` overrides applied through `parse`.

use shipdeck::manifest::{parse, Manifest, ManifestError, Override};

const BASE: &str = "name: web\nrun:\n  command: [app]\nports:\n  - { name: http, containerPort: 8080 }\ntags: [a]\n";

fn overrides(items: &[&str]) -> Vec<Override> {
    items
        .iter()
        .map(|item| item.parse().expect("valid override"))
        .collect()
}

fn parse_with(items: &[&str]) -> Manifest {
    match parse(BASE, "web.yaml", &overrides(items)) {
        Ok(manifest) => manifest,
        Err(error) => panic!("expected a valid manifest, got: {error}"),
    }
}

fn error_with(items: &[&str]) -> ManifestError {
    match parse(BASE, "web.yaml", &overrides(items)) {
        Ok(manifest) => panic!("expected an error, got: {manifest:?}"),
        Err(error) => error,
    }
}

#[test]
fn override_splits_at_first_equals() {
    let item: Override = "env.URL=a=b".parse().expect("valid");
    assert_eq!(item.path, "env.URL");
    assert_eq!(item.value, "a=b");
}

#[test]
fn override_allows_empty_value() {
    let item: Override = "image=".parse().expect("valid");
    assert_eq!(item.value, "");
}

#[test]
fn override_without_equals_is_rejected() {
    let message = "replicas".parse::<Override>().expect_err("no =");
    assert!(message.contains("KEY=VALUE"), "{message}");
}

#[test]
fn override_with_bad_path_is_rejected() {
    for text in ["=3", "a..b=1", "tags[x]=1", "tags[0=1"] {
        assert!(text.parse::<Override>().is_err(), "{text}");
    }
}

#[test]
fn replicas_override_is_typed() {
    assert_eq!(parse_with(&["replicas=3"]).replicas, 3);
}

#[test]
fn env_override_creates_mapping() {
    assert_eq!(parse_with(&["env.GREETING=hi"]).env["GREETING"], "hi");
}

#[test]
fn env_override_keeps_no_as_string() {
    assert_eq!(parse_with(&["env.X=no"]).env["X"], "no");
}

#[test]
fn list_item_field_override() {
    assert_eq!(
        parse_with(&["ports[0].hostPort=18081"]).ports[0].host_port,
        Some(18081)
    );
}

#[test]
fn list_item_append_override() {
    assert_eq!(parse_with(&["tags[1]=x"]).tags, vec!["a", "x"]);
}

#[test]
fn list_item_replace_override() {
    assert_eq!(parse_with(&["tags[0]=z"]).tags, vec!["z"]);
}

#[test]
fn nested_mappings_are_created() {
    let manifest = parse_with(&["resources.limits.cpu=2"]);
    let cpu = manifest.resources.limits.and_then(|limits| limits.cpu);
    assert_eq!(cpu.map(|q| q.millicores), Some(2000));
}

#[test]
fn later_override_wins() {
    assert_eq!(parse_with(&["replicas=3", "replicas=4"]).replicas, 4);
}

#[test]
fn index_past_end_is_rejected() {
    let error = error_with(&["tags[5]=x"]);
    assert_eq!(error.origin, "--set");
    assert_eq!(error.path, "tags[5]");
    assert!(error.message.contains("use [1]"), "{error}");
}

#[test]
fn bad_value_names_override() {
    let error = error_with(&["replicas=abc"]);
    assert_eq!(error.origin, "--set");
    assert_eq!(error.path, "replicas");
    assert_eq!((error.line, error.column), (1, 10));
    assert!(error.message.contains("`--set replicas=abc`"), "{error}");
}

#[test]
fn validation_error_names_override() {
    let error = error_with(&["replicas=5000"]);
    assert_eq!(error.origin, "--set");
    assert!(error.message.contains("limit of 1000"), "{error}");
    assert!(error.message.contains("`--set replicas=5000`"), "{error}");
}

#[test]
fn unknown_key_override_is_rejected() {
    let error = error_with(&["replica=3"]);
    assert_eq!(error.origin, "--set");
    assert!(
        error.message.contains("did you mean `replicas`?"),
        "{error}"
    );
}

#[test]
fn override_into_scalar_is_rejected() {
    let error = error_with(&["name.first=x"]);
    assert_eq!(error.origin, "--set");
    assert!(error.message.contains("not a mapping"), "{error}");
}

#[test]
fn file_errors_keep_file_origin() {
    let error = parse(
        "name: Web\nrun: { command: [app] }\n",
        "web.yaml",
        &overrides(&["replicas=2"]),
    )
    .expect_err("invalid name");
    assert_eq!(error.origin, "web.yaml");
}
