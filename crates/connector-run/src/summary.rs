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
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>6}  {:>8}  {:>7}  {:>5}  {:>8}  {:>10}  status",
        "stream", "records", "pages", "requests", "retries", "429s", "elapsed", "records/s"
    );
    for s in &r.streams {
        let status = if s.error.is_some() { "FAILED" } else { "ok" };
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>6}  {:>8}  {:>7}  {:>5}  {:>8}  {:>10.0}  {status}",
            s.stream,
            s.records,
            s.pages,
            s.requests,
            s.retries,
            s.http_429,
            secs(s.elapsed),
            s.records_per_sec()
        );
    }
    let total: u64 = r.streams.iter().map(|s| s.records).sum();
    let _ = writeln!(
        out,
        "{total} records to {} in {}; rate-limit waits: {} ({})",
        r.destination,
        secs(r.elapsed),
        r.waits,
        secs(r.waited)
    );
    out
}
