//! `import airbyte MANIFEST [-o FILE]`: an Airbyte low-code manifest
//! translated into our YAML (`connector_spec::airbyte`), with the streams
//! that could not be translated and why on stderr. Also how `sync`,
//! `check` and the other commands load a manifest given in place of a
//! connector.

use crate::cli::{Global, ImportArgs};
use crate::{Failure, Outcome};
use connector_spec::airbyte::{self, Coverage, Translation};
use std::path::Path;

fn summary(t: &Translation) -> String {
    let total = t.streams.len();
    let approx = t
        .streams
        .iter()
        .filter(|s| s.status == Coverage::Approximated)
        .count();
    format!(
        "{} of {total} streams translated ({approx} approximated)",
        t.running()
    )
}

fn blocked_lines(streams: &[airbyte::StreamCoverage], origin: &str) -> Vec<String> {
    streams
        .iter()
        .filter_map(|s| match &s.status {
            Coverage::Blocked(b) => Some(format!(
                "{origin}:{}:{}: not translated: stream `{}`: {}",
                b.line, b.col, s.name, b.reason
            )),
            _ => None,
        })
        .collect()
}

/// Translates the manifest at `path` (its text already read).
pub fn load_manifest(path: &Path, text: &str) -> Result<connector_spec::Spec, Failure> {
    let origin = path.display().to_string();
    match airbyte::translate(text, &origin) {
        Ok(t) => {
            if t.running() < t.streams.len() {
                eprintln!(
                    "note: {origin} is an Airbyte manifest: {}; `connector-run import airbyte {origin}` says why",
                    summary(&t)
                );
            }
            Ok(t.spec)
        }
        Err(e) => {
            let mut lines = vec![e.to_string()];
            lines.extend(blocked_lines(&e.streams, &origin));
            Err(Failure::Spec(lines.join("\n")))
        }
    }
}

pub fn run(_global: &Global, args: &ImportArgs) -> Outcome {
    let origin = args.manifest.display().to_string();
    let bytes = std::fs::read(&args.manifest)
        .map_err(|e| Failure::Usage(format!("{origin}: cannot read: {e}")))?;
    let text = connector_spec::decode(&bytes, &origin).map_err(|d| Failure::Spec(d.to_string()))?;
    if !airbyte::is_manifest(&text) {
        return Err(Failure::Usage(format!(
            "{origin} is not an Airbyte manifest (no top-level `type: DeclarativeSource`)"
        )));
    }
    let t = match airbyte::translate(&text, &origin) {
        Ok(t) => t,
        Err(e) => {
            let mut lines = vec![e.to_string()];
            lines.extend(blocked_lines(&e.streams, &origin));
            return Err(Failure::Spec(lines.join("\n")));
        }
    };
    let yaml = airbyte::to_yaml(&t);
    match &args.out {
        Some(out) => std::fs::write(out, &yaml)
            .map_err(|e| Failure::Usage(format!("{}: cannot write: {e}", out.display())))?,
        None => crate::out!("{yaml}"),
    }
    for n in t
        .notes
        .iter()
        .filter(|n| n.kind == airbyte::NoteKind::Approximated)
    {
        eprintln!(
            "{origin}:{}:{}: approximated{}: {}",
            n.line,
            n.col,
            n.stream
                .as_ref()
                .map(|s| format!(" (stream `{s}`)"))
                .unwrap_or_default(),
            n.what
        );
    }
    for l in blocked_lines(&t.streams, &origin) {
        eprintln!("{l}");
    }
    eprintln!(
        "{}{}",
        summary(&t),
        args.out
            .as_ref()
            .map(|o| format!("; wrote {}", o.display()))
            .unwrap_or_default()
    );
    Ok(0)
}
