//! Per-stream counters, shared by the stream's partitions, and the live view
//! of a run that progress displays poll.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct StreamStats {
    pub records: AtomicU64,
    pub pages: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub http_429: AtomicU64,
    pub bytes: AtomicU64,
    pub partitions: AtomicU64,
    /// Invalid records dropped (`records.on_invalid: skip`).
    pub skipped: AtomicU64,
    /// Time this stream's requests spent waiting for the rate limiter, in ms.
    pub waited_ms: AtomicU64,
    /// Total records announced by the API (`stop.total_*`), 0 when unknown.
    pub total: AtomicU64,
    /// A retry is waiting to go out.
    pub retrying: AtomicBool,
    pub finished: AtomicBool,
    pub failed: AtomicBool,
}

/// What a progress display can see of a running sync.
#[derive(Debug, Default)]
pub struct LiveRun {
    pub(crate) streams: Mutex<Vec<(String, Arc<StreamStats>)>>,
    pub(crate) pause: Mutex<Option<(Instant, &'static str)>>,
}

impl LiveRun {
    pub fn new() -> Arc<LiveRun> {
        Arc::new(LiveRun::default())
    }

    /// The streams of the run and their counters, in run order.
    pub fn streams(&self) -> Vec<(String, Arc<StreamStats>)> {
        self.streams.lock().unwrap().clone()
    }

    /// A run-wide rate-limit pause in force: time left and why.
    pub fn paused(&self) -> Option<(Duration, &'static str)> {
        let p = *self.pause.lock().unwrap();
        p.and_then(|(until, why)| {
            until
                .checked_duration_since(Instant::now())
                .map(|d| (d, why))
        })
    }
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
    /// Invalid records dropped (`records.on_invalid: skip`).
    pub skipped: u64,
    pub waited: Duration,
    pub elapsed: Duration,
    pub error: Option<String>,
    /// The run was stopped (a signal, a closed output) before this stream
    /// completed; its state resumes it.
    pub interrupted: bool,
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
            skipped: g(&self.skipped),
            waited: Duration::from_millis(g(&self.waited_ms)),
            elapsed,
            error,
            interrupted: false,
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
