//! Helpers for end-to-end tests: run the real binary against servers on
//! 127.0.0.1 that the tests start.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_connector-run"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs `connector-run ARGS` in `cwd`.
pub fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.current_dir(cwd).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

/// [`run`], and the command must succeed (its output is shown if not).
pub fn run_ok(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let o = run(cwd, args, env);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    o
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Reads `DIR/<stream>.jsonl` as records.
pub fn read_jsonl(dir: &Path, stream: &str) -> Vec<Value> {
    let path = dir.join(format!("{stream}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l}: {e}", path.display()))
        })
        .collect()
}

/// The JSONPlaceholder fixture.
pub fn jsonplaceholder_db() -> Value {
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/jsonplaceholder/db.json"))
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Writes a spec into `dir/connectors/<name>.yaml` and returns its path.
pub fn write_spec(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let cdir = dir.join("connectors");
    std::fs::create_dir_all(&cdir).unwrap();
    let path = cdir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Ids of records, in order.
pub fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().expect("an integer id"))
        .collect()
}

/// Masks what changes between runs: ports, temp folders, timings.
pub fn stable(text: &str, tmp: &Path) -> String {
    mask_ports(&text.replace(&tmp.display().to_string(), "[TMP]"))
}

fn mask_ports(s: &str) -> String {
    // 127.0.0.1:PORT → 127.0.0.1:[PORT]
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = &rest[i + 10..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            out.push_str("[PORT]");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// The lines of stderr that are errors or hints (not the timing table).
pub fn error_lines(o: &Output) -> String {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("error") || l.trim_start().starts_with("hint"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Masks durations in milliseconds (`123ms` → `[MS]ms`), for `check` output.
pub fn mask_ms(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let is_ms = c == 'm' && chars.peek() == Some(&'s') && !digits.is_empty();
        out.push_str(if is_ms { "[MS]" } else { &digits });
        digits.clear();
        out.push(c);
    }
    out.push_str(&digits);
    out
}

/// A connector `gen` with one stream `items`: the mock's `/gen/offset`,
/// `page_size` records a page, to the total.
pub fn gen_items_spec(base: &str, page_size: u64) -> String {
    format!(
        r#"
version: 1
name: gen
base_url: "{base}"
streams:
  items:
    path: /gen/offset
    records: {{ path: $.data }}
    pagination: {{ type: offset, page_size: {page_size}, stop: {{ total_path: $.total }} }}
"#
    )
}

/// A tool the test needs, from the environment; `None` with a note locally,
/// a failure in CI.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set {var} (.ci/run installs it)"
            );
            eprintln!("skipped: {var} is not set (bash .ci/run installs it)");
            None
        }
    }
}
