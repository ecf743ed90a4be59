//! Every file in `tests/fixtures/invalid/` must be refused, and what the user
//! sees (every diagnostic, rendered) is pinned by an insta snapshot, one per
//! fixture: `snapshots/invalid_fixtures__<fixture>.snap`.
//!
//! To review a change: `INSTA_UPDATE=always cargo test -p connector-spec
//! --test invalid_fixtures`, then read the `.snap` diffs.

use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/invalid")
}

/// The fixture files, sorted by name.
fn fixtures() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures/invalid exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// The fixture's leading comment (what is wrong with it), if any.
fn description(source: &str) -> String {
    source
        .lines()
        .next()
        .and_then(|l| l.strip_prefix('#'))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "(no description: the file is empty)".into())
}

#[test]
fn there_are_enough_fixtures() {
    let n = fixtures().len();
    assert!(n >= 30, "expected at least 30 invalid fixtures, found {n}");
}

#[test]
fn every_fixture_except_the_empty_one_says_what_is_wrong() {
    for (name, source) in fixtures() {
        if source.is_empty() {
            continue;
        }
        assert!(
            source.starts_with("# "),
            "{name} must start with a comment saying what is wrong with it"
        );
    }
}

#[test]
fn invalid_fixtures_are_refused_with_located_diagnostics() {
    let mut failures = Vec::new();
    for (name, source) in fixtures() {
        let file = format!("tests/fixtures/invalid/{name}");
        let diags = match connector_spec::parse(&source, &file) {
            Ok(_) => {
                failures.push(format!("{name}: parsed OK but must be refused"));
                continue;
            }
            Err(diags) => diags,
        };
        if diags.is_empty() {
            failures.push(format!("{name}: refused with no diagnostic"));
            continue;
        }
        for d in &diags {
            if d.pos.line < 1 || d.pos.col < 1 {
                failures.push(format!("{name}: diagnostic without a position: {d}"));
            }
            if d.file != file {
                failures.push(format!("{name}: diagnostic names file `{}`", d.file));
            }
            let lines = source.lines().count().max(1) as u32;
            if d.pos.line > lines + 1 {
                failures.push(format!(
                    "{name}: diagnostic at line {} of a {lines}-line file: {d}",
                    d.pos.line
                ));
            }
        }
        let rendered = diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let snapshot = name.trim_end_matches(".yaml").to_string();
        let result = std::panic::catch_unwind(|| {
            insta::with_settings!({
                description => description(&source),
                omit_expression => true,
                prepend_module_to_snapshot => true,
            }, {
                insta::assert_snapshot!(snapshot, rendered);
            });
        });
        if result.is_err() {
            failures.push(format!("{name}: snapshot mismatch (see above)"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The "billion laughs" fixture must end with the budget error (not by
/// expanding a billion nodes, which would hang or exhaust memory).
#[test]
fn alias_bomb_is_refused_by_the_budget() {
    let text = std::fs::read_to_string(fixtures_dir().join("26_alias_bomb.yaml")).unwrap();
    let diags = connector_spec::parse(&text, "bomb.yaml").unwrap_err();
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].message.contains("more than 100000 nodes"),
        "{}",
        diags[0]
    );
}
