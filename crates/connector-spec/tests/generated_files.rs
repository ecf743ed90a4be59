//! The committed schema and reference docs must match the types.

use std::path::PathBuf;

fn repo_file(rel: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (path, text)
}

#[test]
fn schema_file_is_current() {
    let (path, committed) = repo_file("schemas/connector.schema.json");
    assert!(
        committed == connector_spec::json_schema_text(),
        "{} is stale; regenerate it with:\n  cargo run -p connector-run -- schema > schemas/connector.schema.json",
        path.display()
    );
}

#[test]
fn reference_docs_are_current() {
    let (path, committed) = repo_file("docs/spec.md");
    assert!(
        committed == connector_spec::reference_markdown(),
        "{} is stale; regenerate it with:\n  cargo run -p connector-run -- docs > docs/spec.md",
        path.display()
    );
}

#[test]
fn every_connector_file_names_the_schema_and_parses() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../connectors");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/connector.schema.json\n"),
            "{} must start with the yaml-language-server schema comment",
            path.display()
        );
        if let Err(diags) = connector_spec::parse(&text, &path.display().to_string()) {
            panic!(
                "{}",
                diags
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    assert!(n >= 1, "no connector files found in {}", dir.display());
}
