//! `cargo xtask airbyte-corpus [--cache DIR] [--list FILE] [--out FILE] [--dump DIR]`:
//! how much of Airbyte's low-code corpus connector-run translates (issue #13).
//!
//! Reads the pinned `package==version` list (default
//! `../shared/data/airbyte/manifests.txt` beside the checkout), downloads
//! each wheel with `pip download --no-deps` into the cache (default
//! `/var/tmp/connector-run/airbyte-manifests`; what is there is not fetched
//! again), takes `source_*/manifest.yaml` out of it (`unzip`, else Python's
//! `zipfile`), translates it with `connector_spec::airbyte::translate`, and
//! writes `docs/airbyte-coverage.md`: per connector the streams that
//! translate and validate, are approximated, blocked or need custom Python,
//! the totals, and every blocked stream's reason, grouped by the missing
//! feature. `--dump DIR` also writes each translation as `DIR/<name>.yaml`.
//! No manifest is written into the checkout.

use connector_spec::airbyte::{self, Coverage};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str =
    "usage: cargo xtask airbyte-corpus [--cache DIR] [--list FILE] [--out FILE] [--dump DIR]";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

struct Args(Vec<String>);

impl Args {
    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.0.iter().position(|a| a == name) {
            Some(i) if i + 1 < self.0.len() => {
                let v = self.0.remove(i + 1);
                self.0.remove(i);
                Ok(Some(v))
            }
            Some(_) => Err(format!("{name} needs a value\n{USAGE}")),
            None => Ok(None),
        }
    }
}

/// One connector's result.
struct Row {
    package: String,
    total: usize,
    runs: usize,
    approximated: usize,
    blocked: usize,
    custom: usize,
    error: Option<String>,
    /// Approximations, as countable texts (backquoted values elided), once per stream.
    approximations: Vec<String>,
    /// (stream, feature, reason, line, col, custom)
    blockers: Vec<(String, String, String, usize, usize, bool)>,
}

fn wheel_in(cache: &Path, package: &str, version: &str) -> Option<PathBuf> {
    let stem = format!("{}-{version}-", package.replace('-', "_"));
    std::fs::read_dir(cache)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&stem) && n.ends_with(".whl"))
        })
}

fn fetch(cache: &Path, spec: &str) -> Result<PathBuf, String> {
    let (package, version) = spec
        .split_once("==")
        .ok_or_else(|| format!("`{spec}` is not package==version"))?;
    if let Some(w) = wheel_in(cache, package, version) {
        return Ok(w);
    }
    let out = Command::new("pip")
        .args(["download", "--no-deps", "--quiet", "-d"])
        .arg(cache)
        .arg(spec)
        .output()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip download {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    wheel_in(cache, package, version)
        .ok_or_else(|| format!("pip download {spec} left no wheel in {}", cache.display()))
}

fn manifest_of(wheel: &Path) -> Result<String, String> {
    if let Ok(out) = Command::new("unzip")
        .arg("-p")
        .arg(wheel)
        .arg("source_*/manifest.yaml")
        .output()
        && out.status.success()
        && !out.stdout.is_empty()
    {
        return String::from_utf8(out.stdout)
            .map_err(|e| format!("{}: manifest is not UTF-8: {e}", wheel.display()));
    }
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nnames = [n for n in z.namelist() if n.startswith('source_') and n.endswith('/manifest.yaml') and n.count('/') == 1]\nsys.stdout.write(z.read(names[0]).decode('utf-8'))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(wheel)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: no source_*/manifest.yaml ({})",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout)
        .map_err(|e| format!("{}: manifest is not UTF-8: {e}", wheel.display()))
}

fn measure(spec: &str, text: &str, dump: Option<&Path>) -> Row {
    let mut row = Row {
        package: spec.to_string(),
        total: 0,
        runs: 0,
        approximated: 0,
        blocked: 0,
        custom: 0,
        error: None,
        approximations: Vec::new(),
        blockers: Vec::new(),
    };
    let (streams, yaml, name) = match airbyte::translate(text, spec) {
        Ok(t) => {
            let running: Vec<&str> = t
                .streams
                .iter()
                .filter(|s| !matches!(s.status, Coverage::Blocked(_)))
                .map(|s| s.name.as_str())
                .collect();
            let mut connector_level: Vec<String> = Vec::new();
            for n in t
                .notes
                .iter()
                .filter(|n| n.kind == airbyte::NoteKind::Approximated)
            {
                match &n.stream {
                    Some(_) => row.approximations.push(elide(&n.what)),
                    None if !connector_level.contains(&elide(&n.what)) => {
                        connector_level.push(elide(&n.what))
                    }
                    None => {}
                }
            }
            for c in connector_level {
                for _ in 0..running.len() {
                    row.approximations.push(c.clone());
                }
            }
            (
                t.streams.clone(),
                Some(airbyte::to_yaml(&t)),
                t.spec.name.clone(),
            )
        }
        Err(e) => {
            row.error = Some(e.message.clone());
            let name = spec
                .split("==")
                .next()
                .unwrap_or(spec)
                .trim_start_matches("airbyte-source-")
                .replace('-', "_");
            (e.streams.clone(), e.yaml.clone(), format!("{name}.invalid"))
        }
    };
    if let (Some(dir), Some(y)) = (dump, yaml) {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join(format!("{name}.yaml")), y);
    }
    for s in &streams {
        row.total += 1;
        match &s.status {
            Coverage::Runs => row.runs += 1,
            Coverage::Approximated => {
                row.runs += 1;
                row.approximated += 1;
            }
            Coverage::Blocked(b) => {
                if b.custom {
                    row.custom += 1;
                } else {
                    row.blocked += 1;
                }
                row.blockers.push((
                    s.name.clone(),
                    b.feature.clone(),
                    b.reason.clone(),
                    b.line,
                    b.col,
                    b.custom,
                ));
            }
        }
    }
    row
}

/// A note with its quoted values elided, so that notes group.
fn elide(s: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        if c == '`' {
            inside = !inside;
            if inside {
                out.push_str("`…`");
            }
        } else if !inside {
            out.push(c);
        }
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn report(rows: &[Row], list: &Path) -> String {
    let sum = |f: fn(&Row) -> usize| rows.iter().map(f).sum::<usize>();
    let (total, runs, approx, blocked, custom) = (
        sum(|r| r.total),
        sum(|r| r.runs),
        sum(|r| r.approximated),
        sum(|r| r.blocked),
        sum(|r| r.custom),
    );
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Airbyte low-code corpus: what connector-run translates\n"
    );
    let _ = writeln!(
        o,
        "<!-- Generated by `cargo xtask airbyte-corpus`; do not edit. Corpus: `{}`. -->\n",
        list.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manifests.txt")
    );
    let _ = writeln!(
        o,
        "Each manifest is translated by `connector_spec::airbyte::translate` and the result validated by our own parser. \
A stream **runs** when it translates and validates; **approximated** ones run with a noted difference (they are counted in *runs*); \
**blocked** ones need vocabulary we lack; **custom** ones need the connector's own Python code (`Custom*` components, `class_name`).\n"
    );
    let no_custom = total - custom;
    let _ = writeln!(
        o,
        "**Totals: {runs} of {total} streams run ({approx} approximated), {blocked} blocked, {custom} custom.** \
Of the {no_custom} streams that need no custom Python, {runs} run ({:.0}%).\n",
        if no_custom > 0 {
            100.0 * runs as f64 / no_custom as f64
        } else {
            0.0
        }
    );
    let _ = writeln!(
        o,
        "| connector | streams | run | approximated | blocked | custom |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let name = match &r.error {
            Some(e) if r.total == 0 => format!("{} (error: {})", r.package, md_escape(e)),
            _ => r.package.clone(),
        };
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} |",
            r.total, r.runs, r.approximated, r.blocked, r.custom
        );
    }
    let _ = writeln!(
        o,
        "| **total** | **{total}** | **{runs}** | **{approx}** | **{blocked}** | **{custom}** |\n"
    );
    let mut approx: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows {
        for a in &r.approximations {
            *approx.entry(a.clone()).or_default() += 1;
        }
    }
    let mut approx: Vec<_> = approx.into_iter().collect();
    approx.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let _ = writeln!(
        o,
        "## Approximations\n\nWhat the running streams do differently, by how many streams it concerns (a connector-level note counts once per running stream).\n\n| streams | approximation |\n|---:|---|"
    );
    for (a, n) in &approx {
        let _ = writeln!(o, "| {n} | {} |", md_escape(a));
    }
    let _ = writeln!(o);
    for (title, custom) in [
        ("Blocked streams, by missing feature", false),
        ("Custom streams, by component", true),
    ] {
        let mut groups: BTreeMap<
            String,
            Vec<(&Row, &(String, String, String, usize, usize, bool))>,
        > = BTreeMap::new();
        for r in rows {
            for b in &r.blockers {
                if b.5 == custom {
                    groups.entry(b.1.clone()).or_default().push((r, b));
                }
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        let _ = writeln!(o, "## {title}\n");
        let _ = writeln!(o, "| streams | feature |\n|---:|---|");
        for (f, items) in &groups {
            let _ = writeln!(o, "| {} | {} |", items.len(), md_escape(f));
        }
        let _ = writeln!(o);
        for (f, items) in &groups {
            let _ = writeln!(o, "### {} ({})\n", md_escape(f), items.len());
            for (r, b) in items {
                let pkg = r.package.split("==").next().unwrap_or(&r.package);
                let _ = writeln!(
                    o,
                    "- `{pkg}` `{}` (manifest {}:{}): {}",
                    b.0,
                    b.3,
                    b.4,
                    md_escape(&b.2)
                );
            }
            let _ = writeln!(o);
        }
    }
    o
}

pub fn main(rest: Vec<String>) -> Result<(), String> {
    let mut args = Args(rest);
    let cache = PathBuf::from(
        args.value("--cache")?
            .unwrap_or_else(|| "/var/tmp/connector-run/airbyte-manifests".into()),
    );
    let root = repo_root();
    let list = args
        .value("--list")?
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/airbyte/manifests.txt"));
    let out = args
        .value("--out")?
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("docs/airbyte-coverage.md"));
    let dump = args.value("--dump")?.map(PathBuf::from);
    if let Some(a) = args.0.first() {
        return Err(format!("unexpected argument `{a}`\n{USAGE}"));
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let text = std::fs::read_to_string(&list).map_err(|e| format!("{}: {e}", list.display()))?;
    let mut rows = Vec::new();
    for spec in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let row = match fetch(&cache, spec).and_then(|w| manifest_of(&w)) {
            Ok(m) => measure(spec, &m, dump.as_deref()),
            Err(e) => Row {
                package: spec.to_string(),
                total: 0,
                runs: 0,
                approximated: 0,
                blocked: 0,
                custom: 0,
                error: Some(e),
                approximations: Vec::new(),
                blockers: Vec::new(),
            },
        };
        eprintln!(
            "{spec}: {} of {} streams run ({} approximated, {} blocked, {} custom)",
            row.runs, row.total, row.approximated, row.blocked, row.custom
        );
        rows.push(row);
    }
    let md = report(&rows, &list);
    std::fs::write(&out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    let runs: usize = rows.iter().map(|r| r.runs).sum();
    let total: usize = rows.iter().map(|r| r.total).sum();
    eprintln!(
        "{runs} of {total} streams translate and validate; wrote {}",
        out.display()
    );
    Ok(())
}
