//! `connector-run test CONNECTOR`: the connector's cassettes replayed, and
//! the records compared with the expected ones. Offline, hermetic (no
//! environment is read), in milliseconds.
//!
//! `tests/cassettes/<connector>/` (beside the connectors folder) holds a
//! scenario, and each subfolder with cassettes another (`auth_error/`,
//! `rate_limited/`). A scenario is:
//!
//! - cassettes, `*.jsonl` as `sync --record` writes them or `*.json`
//!   arrays written by hand from the API's documentation;
//! - `config.json`, optional: config values for the run (secrets need none:
//!   each gets a placeholder, which the cassettes show as `***`);
//! - `expected/<stream>.jsonl`, the records each stream must give, and
//!   `expected/outcome.txt`, each stream's status and error.
//!
//! The top folder must hold a cassette for every stream; a subfolder runs
//! the streams it holds cassettes for.
//!
//! `--update` writes `expected/` from the run instead of comparing.

use crate::cli::{Global, TestArgs};
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome, context};
use connector_engine::cassette::Tape;
use connector_engine::config::ConfigSources;
use connector_engine::destination::DestinationOptions;
use connector_engine::{DestinationUri, Plan, SyncOptions, SyncReport};
use connector_spec::Spec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn run(global: &Global, args: &TestArgs) -> Outcome {
    crate::logging::init(global);
    let (spec_path, spec) = context::spec(global, &args.connector)?;
    let dir = match &args.cassettes {
        Some(d) => d.clone(),
        None => default_dir(&spec_path, &spec.name),
    };
    let scenarios = scenarios(&dir);
    if scenarios.is_empty() {
        return Err(Failure::usage(format!(
            "no cassettes for `{}` in {}: record some with `connector-run sync {} --record {}`",
            spec.name,
            dir.display(),
            spec.name,
            dir.display()
        )));
    }
    let mut failed = 0;
    for (name, path) in &scenarios {
        let shown = if name.is_empty() {
            "default"
        } else {
            name.as_str()
        };
        match scenario(&spec, path, args, name.is_empty()) {
            Ok(Verdict::Same(summary)) => crate::outln!("{} {shown}: ok ({summary})", spec.name),
            Ok(Verdict::Updated(summary)) => {
                crate::outln!("{} {shown}: expected/ written ({summary})", spec.name)
            }
            Ok(Verdict::Differs(why)) => {
                failed += 1;
                crate::outln!("{} {shown}: FAILED\n{why}", spec.name);
            }
            Err(e) => {
                failed += 1;
                crate::outln!("{} {shown}: FAILED: {e}", spec.name);
            }
        }
    }
    Ok(if failed == 0 { EXIT_OK } else { EXIT_FAILURE })
}

/// `tests/cassettes/<name>` beside the connectors folder.
fn default_dir(spec_path: &Path, name: &str) -> PathBuf {
    let connectors = spec_path.parent().unwrap_or(Path::new("."));
    let root = connectors.parent().unwrap_or(Path::new("."));
    root.join("tests").join("cassettes").join(name)
}

fn has_cassettes(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            let p = e.path();
            p.is_file()
                && p.extension().is_some_and(|x| x == "jsonl" || x == "json")
                && p.file_name().is_some_and(|n| n != "config.json")
        })
    })
}

/// The scenarios under `dir`: itself and each subfolder with cassettes.
fn scenarios(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if has_cassettes(dir) {
        out.push((String::new(), dir.to_path_buf()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "expected"))
            .filter(|p| has_cassettes(p))
            .collect();
        subs.sort();
        for p in subs {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            out.push((name, p));
        }
    }
    out
}

enum Verdict {
    Same(String),
    Updated(String),
    Differs(String),
}

/// Config of a scenario: `config.json`, then `--set`, and a placeholder for
/// every secret still without a value.
fn sources(spec: &Spec, dir: &Path, args: &TestArgs) -> Result<ConfigSources, Failure> {
    let mut sources = ConfigSources::default();
    let file = dir.join("config.json");
    let mut values = if file.exists() {
        ConfigSources::read_file(&file)?
    } else {
        serde_json::Map::new()
    };
    for s in &args.config.sets {
        let (k, v) = ConfigSources::parse_set(s)?;
        values.insert(k, serde_json::Value::String(v));
    }
    for (key, param) in &spec.config {
        if param.secret && param.default.is_none() && !values.contains_key(key) {
            values.insert(
                key.clone(),
                serde_json::Value::String(format!("replay-{key}")),
            );
        }
    }
    sources.file = Some(values);
    Ok(sources)
}

/// Replays one scenario; `main` (the top folder) must hold a cassette for
/// every stream.
fn scenario(spec: &Spec, dir: &Path, args: &TestArgs, main: bool) -> Result<Verdict, Failure> {
    let plan = Plan::compile(spec, &sources(spec, dir, args)?, None)?;
    // The main scenario runs every stream; another one the streams it has
    // cassettes for (with their parents).
    let has = |s: &String| {
        dir.join(format!("{s}.json")).exists() || dir.join(format!("{s}.jsonl")).exists()
    };
    let streams: Vec<String> = if main {
        plan.streams.keys().cloned().collect()
    } else {
        plan.streams.keys().filter(|s| has(s)).cloned().collect()
    };
    let out = std::env::temp_dir().join(format!(
        "connector-run-test-{}-{}",
        std::process::id(),
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let dest = DestinationUri::parse(&format!("jsonl:{}", out.display()))?.open_with(
        &DestinationOptions {
            connector: spec.name.clone(),
            streams: streams.clone(),
            state_file: Some(out.join("_state.json")),
            write_mode: None,
            schemas: Default::default(),
        },
    )?;
    let opts = SyncOptions {
        streams: streams.clone(),
        // One partition at a time: records come in a stable order.
        concurrency: Some(1),
        full_refresh: true,
        tape: Some(Arc::new(Tape::replay(dir)?)),
        ..Default::default()
    };
    // The main scenario covers every stream: each has a cassette of its own.
    if main {
        let missing: Vec<&String> = streams.iter().filter(|s| !has(s)).collect();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|s| format!("`{s}`")).collect();
            return Ok(Verdict::Differs(format!(
                "  no cassette for {} in {} (`<stream>.json` or `.jsonl`)",
                names.join(", "),
                dir.display()
            )));
        }
    }
    let report = context::runtime()?.block_on(connector_engine::sync(plan, dest, opts));
    let report = report.map_err(Failure::Engine)?;
    let outcome = outcome(&report, dir);
    let mut actual: Vec<(String, String)> = Vec::new();
    for s in &streams {
        let text = std::fs::read_to_string(out.join(format!("{s}.jsonl"))).unwrap_or_default();
        actual.push((s.clone(), text));
    }
    let _ = std::fs::remove_dir_all(&out);
    let summary = actual
        .iter()
        .map(|(s, t)| format!("{s} {}", t.lines().count()))
        .collect::<Vec<_>>()
        .join(", ");
    let expected = dir.join("expected");
    if args.update {
        std::fs::create_dir_all(&expected)
            .map_err(|e| Failure::usage(format!("{}: {e}", expected.display())))?;
        for (s, text) in &actual {
            write(&expected.join(format!("{s}.jsonl")), text)?;
        }
        write(&expected.join("outcome.txt"), &outcome)?;
        return Ok(Verdict::Updated(summary));
    }
    let mut why = Vec::new();
    let want_outcome = std::fs::read_to_string(expected.join("outcome.txt")).unwrap_or_default();
    if want_outcome != outcome {
        why.push(format!(
            "  outcome differs:\n    expected: {}\n    actual:   {}",
            want_outcome.trim_end().replace('\n', "\n              "),
            outcome.trim_end().replace('\n', "\n              ")
        ));
    }
    for (s, text) in &actual {
        let path = expected.join(format!("{s}.jsonl"));
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(d) = first_difference(&want, text) {
            why.push(format!("  stream `{s}`: {d}"));
        }
    }
    Ok(if why.is_empty() {
        Verdict::Same(summary)
    } else {
        why.push("  (run with --update to accept the new records)".into());
        Verdict::Differs(why.join("\n"))
    })
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
}

/// Each stream's records, requests, retries and status, one a line, with the cassette folder's path
/// written as `<cassettes>` so the file does not depend on where it runs.
fn outcome(report: &SyncReport, dir: &Path) -> String {
    let mut out = String::new();
    for s in &report.streams {
        let status = match &s.error {
            Some(e) => format!(
                "FAILED: {}",
                e.replace(&dir.display().to_string(), "<cassettes>")
            ),
            None => "ok".into(),
        };
        out.push_str(&format!(
            "{}: {} records, {} requests, {} retries ({} 429s), {status}\n",
            s.stream, s.records, s.requests, s.retries, s.http_429
        ));
    }
    out
}

/// Where two record files first differ, as a line number and both lines.
fn first_difference(want: &str, got: &str) -> Option<String> {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        match (w.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                let cut = |s: Option<&&str>| match s {
                    None => "(none)".to_string(),
                    Some(s) if s.len() > 300 => format!("{}…", &s[..s.floor_char_boundary(300)]),
                    Some(s) => s.to_string(),
                };
                return Some(format!(
                    "{} records expected, {} replayed; record {} differs:\n    expected: {}\n    actual:   {}",
                    w.len(),
                    g.len(),
                    i + 1,
                    cut(a),
                    cut(b)
                ));
            }
        }
    }
    None
}
