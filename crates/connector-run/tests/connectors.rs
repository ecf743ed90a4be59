//! The connectors we ship (#14): each validates, names its docs, lets
//! `base_url` be pointed elsewhere, declares a schema per stream, and passes
//! `connector-run test` on its cassettes, offline.

mod common;
use common::*;
use std::path::PathBuf;

fn shipped() -> Vec<(String, PathBuf)> {
    let dir = repo_root().join("connectors");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().to_string(), p))
        .collect();
    out.sort();
    out
}

#[test]
fn every_shipped_connector_validates_and_passes_its_cassette_test() {
    let root = repo_root();
    let connectors = shipped();
    assert!(!connectors.is_empty());
    let mut failures = Vec::new();
    for (name, path) in &connectors {
        let text = std::fs::read_to_string(path).unwrap();
        let spec = connector_spec::parse(&text, &path.display().to_string())
            .unwrap_or_else(|d| panic!("{name}: {d:?}"));
        if !text.starts_with("# yaml-language-server: $schema=../schemas/connector.schema.json") {
            failures.push(format!("{name}: no schema modeline"));
        }
        if spec.description.is_none() || spec.docs_url.is_none() {
            failures.push(format!("{name}: `description` and `docs_url` are required"));
        }
        if !spec.config.contains_key("base_url") || !spec.base_url.as_str().contains("config.base_url") {
            failures.push(format!("{name}: `base_url` must come from a `base_url` config parameter"));
        }
        for stream in spec.streams.keys() {
            let schema = root.join("schemas").join(name).join(format!("{stream}.json"));
            if !schema.exists() {
                failures.push(format!("{name}: no declared schema {}", schema.display()));
            }
        }
        let o = run(&root, &["validate", name], &[]);
        if !o.status.success() {
            failures.push(format!("{name}: validate: {}{}", stdout(&o), stderr(&o)));
        }
        let o = run(&root, &["-q", "test", name], &[]);
        if !o.status.success() {
            failures.push(format!("{name}: test: {}{}", stdout(&o), stderr(&o)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn list_shows_every_shipped_connector() {
    let o = run(&repo_root(), &["list"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (name, _) in shipped() {
        assert!(out.contains(&name), "`list` does not show {name}:\n{out}");
    }
}
