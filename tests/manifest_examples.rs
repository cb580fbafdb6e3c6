//! Every manifest shipped in `assets/examples/` parses and validates, so the
//! README's quick start and the examples never drift from the schema.

use std::path::Path;

#[test]
fn examples_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let origin = path.display().to_string();
        if let Err(error) = shipdeck::manifest::parse(&text, &origin, &[]) {
            panic!("{error}");
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} examples found in {}",
        dir.display()
    );
}
