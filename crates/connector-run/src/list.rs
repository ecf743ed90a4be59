//! `connector-run list`: the connectors in the connectors folder, their
//! streams (with parents) and config parameters (type, default, required,
//! secret, environment variable). An invalid file is listed as such and
//! makes the exit code 1; `validate` tells why.

use crate::cli::Global;
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome, connectors};
use connector_spec::Spec;
use std::fmt::Write;

/// Pads every column but the last to its widest cell.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = indent.to_string();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            } else {
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn describe(spec: &Spec) -> String {
    let mut out = String::new();
    if let Some(d) = &spec.description {
        let _ = writeln!(out, "  {d}");
    }
    let _ = writeln!(out, "  streams:");
    let streams: Vec<Vec<String>> = spec
        .streams
        .iter()
        .map(|(name, s)| {
            let mut row = vec![name.clone()];
            if s.internal {
                row.push("(internal)".into());
            }
            let parents = s.parent_streams();
            match parents.as_slice() {
                [] => {}
                [p] if s.parent.is_some() => row.push(format!("(parent: {p})")),
                ps => row.push(format!("(partitions from: {})", ps.join(", "))),
            }
            row
        })
        .collect();
    out.push_str(&table(&streams, "    "));
    if spec.config.is_empty() {
        let _ = writeln!(out, "  config: none");
        return out;
    }
    let _ = writeln!(out, "  config:");
    let params: Vec<Vec<String>> = spec
        .config
        .iter()
        .map(|(key, p)| {
            let mut notes = Vec::new();
            if p.required {
                notes.push("required".to_string());
            }
            if p.secret {
                notes.push("secret".to_string());
            }
            if let Some(d) = &p.default {
                notes.push(format!("default {d}"));
            }
            if let Some(values) = &p.allowed {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                notes.push(format!("one of {}", list.join(", ")));
            }
            if notes.is_empty() {
                notes.push("optional".into());
            }
            let env = p
                .env
                .clone()
                .unwrap_or_else(|| connector_engine::config::env_name(&spec.name, key));
            vec![
                key.clone(),
                p.kind.name().to_string(),
                notes.join(", "),
                format!("${env}"),
            ]
        })
        .collect();
    out.push_str(&table(&params, "    "));
    out
}

pub fn run(global: &Global) -> Outcome {
    let dir = &global.connectors_dir;
    let files = match connectors::all(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| ".".into());
            return Err(Failure::Usage(format!(
                "there is no connectors folder `{}` here ({cwd})\n  hint: run from a folder that has `connectors/`, or pass `--connectors-dir DIR` (or set $CONNECTOR_RUN_CONNECTORS_DIR)",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Usage(format!(
                "cannot list {}: {e}",
                dir.display()
            )));
        }
    };
    if files.is_empty() {
        crate::outln!(
            "no connectors in {} (write one with `connector-run init NAME URL`)",
            dir.display()
        );
        return Ok(EXIT_OK);
    }
    let mut invalid = 0;
    for (i, path) in files.iter().enumerate() {
        if i > 0 {
            crate::outln!();
        }
        let shown = path.display().to_string();
        match connectors::load(dir, &shown) {
            Ok((_, spec)) => {
                crate::outln!("{}  {shown}", spec.name);
                crate::out!("{}", describe(&spec));
            }
            Err(_) => {
                invalid += 1;
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                crate::outln!("{stem}  {shown}: invalid (see `connector-run validate {stem}`)");
            }
        }
    }
    if invalid > 0 {
        Ok(EXIT_FAILURE)
    } else {
        Ok(EXIT_OK)
    }
}
