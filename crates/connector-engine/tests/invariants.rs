//! The invariants ARCHITECTURE.md states that a test can check.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The `[dependencies]` names of a Cargo.toml.
fn dependencies(toml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in toml.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            inside = l == "[dependencies]";
            continue;
        }
        if inside
            && !l.is_empty()
            && !l.starts_with('#')
            && let Some((name, _)) = l.split_once('=')
        {
            let name = name.trim();
            out.push(name.strip_suffix(".workspace").unwrap_or(name).to_string());
        }
    }
    out
}

#[test]
fn the_spec_crate_does_no_io() {
    // Parsing, schema, templates, JSONPaths, dates: no network, files, clock.
    let allowed = [
        "serde",
        "serde_json",
        "serde-saphyr",
        "serde_json_path",
        "minijinja",
        "schemars",
        "indexmap",
        "thiserror",
        "base64",
        "regex-lite",
        "strsim",
        "humantime",
        "url",
        "chrono",
    ];
    for dep in dependencies(&read("crates/connector-spec/Cargo.toml")) {
        assert!(
            allowed.contains(&dep.as_str()),
            "connector-spec depends on `{dep}`"
        );
    }
    let mut files = Vec::new();
    rust_files(&repo().join("crates/connector-spec/src"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "std::fs",
            "std::net",
            "std::env",
            "SystemTime::now",
            "Utc::now",
            "Instant::now",
            "std::process",
        ] {
            assert!(!text.contains(banned), "{} uses `{banned}`", path.display());
        }
    }
}

/// Every `.rs` file under `dir`, subfolders included.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The bodies of the `struct` and `enum` definitions in a source file.
fn type_bodies(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = ["pub struct ", "struct ", "pub enum ", "enum "]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
        .min()
    {
        let after = &rest[i.0 + i.1..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = after.find(['{', ';']) else {
            break;
        };
        if after.as_bytes()[open] == b';' {
            rest = &after[open + 1..];
            continue;
        }
        let mut depth = 0;
        let mut end = open;
        for (j, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((name, after[open..=end].to_string()));
        rest = &after[end..];
    }
    out
}

#[test]
fn the_plan_holds_no_spec_types() {
    // The Plan and every type it holds, down to the paginators.
    let files = [
        "plan.rs",
        "extract.rs",
        "incremental.rs",
        "retry.rs",
        "rate_limit.rs",
        "auth/mod.rs",
        "auth/oauth2.rs",
        "pagination/mod.rs",
        "pagination/cursor.rs",
        "pagination/offset.rs",
        "pagination/page_number.rs",
        "pagination/next_url.rs",
        "pagination/link_header.rs",
        "pagination/none.rs",
        "http/mod.rs",
        "template.rs",
        "secret.rs",
    ];
    // The detector finds a spec type where there is one.
    let planted =
        type_bodies("pub struct X {\n    p: connector_spec::Pagination,\n}\nenum Y { A }");
    assert_eq!(planted.len(), 2);
    assert!(planted[0].1.contains("connector_spec"));
    let plan = type_bodies(&read("crates/connector-engine/src/plan.rs"));
    for t in ["Plan", "StreamPlan"] {
        assert!(plan.iter().any(|(n, _)| n == t), "plan.rs defines `{t}`");
    }
    for f in files {
        let text = read(&format!("crates/connector-engine/src/{f}"));
        for (name, body) in type_bodies(&text) {
            assert!(
                !body.contains("connector_spec"),
                "{f}: `{name}` holds a spec type:\n{body}"
            );
        }
    }
}

#[test]
fn exit_codes_are_mapped_in_one_place() {
    let dir = repo().join("crates/connector-run/src");
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if !path.ends_with("main.rs") {
                assert!(
                    !text.contains("ExitCode::from"),
                    "{} makes exit codes",
                    path.display()
                );
            }
        }
    }
}
