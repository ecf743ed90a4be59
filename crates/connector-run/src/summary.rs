//! The end-of-run summary table, printed on stderr.

use connector_engine::SyncReport;
use std::fmt::Write;

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
        let status = if s.error.is_some() {
            "FAILED"
        } else if s.interrupted {
            "stopped"
        } else {
            "ok"
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
