//! Per-stream counters, shared by the stream's partitions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct StreamStats {
    pub records: AtomicU64,
    pub pages: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub http_429: AtomicU64,
    pub bytes: AtomicU64,
    pub partitions: AtomicU64,
}

/// A finished stream's figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamSummary {
    pub stream: String,
    pub records: u64,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub http_429: u64,
    pub bytes: u64,
    pub partitions: u64,
    pub elapsed: Duration,
    pub error: Option<String>,
}

impl StreamStats {
    pub fn summary(&self, stream: &str, elapsed: Duration, error: Option<String>) -> StreamSummary {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StreamSummary {
            stream: stream.to_string(),
            records: g(&self.records),
            pages: g(&self.pages),
            requests: g(&self.requests),
            retries: g(&self.retries),
            http_429: g(&self.http_429),
            bytes: g(&self.bytes),
            partitions: g(&self.partitions),
            elapsed,
            error,
        }
    }
}

impl StreamSummary {
    pub fn records_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.records as f64 / s
        } else {
            0.0
        }
    }
}
