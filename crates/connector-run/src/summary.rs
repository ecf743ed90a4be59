//! The end-of-run summary: a table on stderr, and as JSON for
//! `sync --summary-json FILE`.

use connector_engine::stats::StreamSummary;
use connector_engine::{StopReason, SyncReport};
use serde_json::{Value, json};
use std::fmt::Write;
use std::path::Path;

fn secs(d: std::time::Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

pub fn render(r: &SyncReport) -> String {
    let mut out = String::new();
    let w = r
        .streams
        .iter()
        .map(|s| s.stream.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let header = [
        "records",
        "pages",
        "requests",
        "retries",
        "429s",
        "waited",
        "elapsed",
        "records/s",
    ];
    let _ = write!(out, "{:<w$}", "stream");
    for h in header {
        let _ = write!(out, "  {h:>9}");
    }
    let _ = writeln!(out, "  status");
    for s in &r.streams {
        let status = match status(s) {
            "failed" => "FAILED",
            other => other,
        };
        let cells = [
            s.records.to_string(),
            s.pages.to_string(),
            s.requests.to_string(),
            s.retries.to_string(),
            s.http_429.to_string(),
            secs(s.waited),
            secs(s.elapsed),
            format!("{:.0}", s.records_per_sec()),
        ];
        let _ = write!(out, "{:<w$}", s.stream);
        for c in cells {
            let _ = write!(out, "  {c:>9}");
        }
        let _ = writeln!(out, "  {status}");
    }
    for s in r.streams.iter().filter(|s| s.skipped > 0) {
        let _ = writeln!(
            out,
            "{}: {} invalid records skipped (records.on_invalid: skip)",
            s.stream, s.skipped
        );
    }
    let total: u64 = r.streams.iter().map(|s| s.records).sum();
    let _ = writeln!(
        out,
        "{total} records to {} in {}; rate-limit waits: {} ({} in all)",
        r.destination,
        secs(r.elapsed),
        r.waits,
        secs(r.waited)
    );
    out
}

/// A stream's status: `ok`, `failed` or `stopped` (a signal, a closed
/// output; its state resumes it).
fn status(s: &StreamSummary) -> &'static str {
    if s.error.is_some() {
        "failed"
    } else if s.interrupted {
        "stopped"
    } else {
        "ok"
    }
}

/// Seconds, to the millisecond.
fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The run's summary as JSON: `status` is `ok`, `failed` (a stream or the
/// destination failed), `stopped` (a signal or a closed output) or `error`
/// (nothing ran: usage, spec, config, state or destination); `exit_code` is
/// the process's. `report` is `None` when the run never started.
pub fn json(
    connector: &str,
    report: Option<&SyncReport>,
    exit_code: u8,
    error: Option<&str>,
) -> Value {
    let Some(r) = report else {
        return json!({
            "connector": connector,
            "status": if exit_code == 0 { "ok" } else { "error" },
            "exit_code": exit_code,
            "error": error,
            "streams": [],
        });
    };
    let streams: Vec<Value> = r
        .streams
        .iter()
        .map(|s| {
            json!({
                "stream": s.stream,
                "status": status(s),
                "records": s.records,
                "pages": s.pages,
                "requests": s.requests,
                "retries": s.retries,
                "http_429": s.http_429,
                "skipped": s.skipped,
                "partitions": s.partitions,
                "bytes": s.bytes,
                "waited_s": seconds(s.waited),
                "elapsed_s": seconds(s.elapsed),
                "records_per_s": s.records_per_sec().round() as u64,
                "error": s.error,
            })
        })
        .collect();
    let stopped = r.stopped.as_ref().map(|s| match s {
        StopReason::Signal(name) => name.as_str(),
        StopReason::OutputClosed => "output closed",
    });
    let status = if r.failed() {
        "failed"
    } else if stopped.is_some() {
        "stopped"
    } else {
        "ok"
    };
    json!({
        "connector": connector,
        "destination": r.destination,
        "status": status,
        "exit_code": exit_code,
        "error": r.error.as_deref().or(error),
        "stopped": stopped,
        "records": r.streams.iter().map(|s| s.records).sum::<u64>(),
        "elapsed_s": seconds(r.elapsed),
        "waits": r.waits,
        "waited_s": seconds(r.waited),
        "streams": streams,
    })
}

/// Writes `summary` to `to` (`-`: stdout), a file atomically.
pub fn write_json(to: &Path, summary: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(summary).map_err(std::io::Error::from)?;
    text.push('\n');
    if to == Path::new("-") {
        crate::output::write_bytes(text.as_bytes());
        return Ok(());
    }
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = to.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, to)
}
