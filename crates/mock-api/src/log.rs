//! The request log and the counters that tests assert on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::FaultKind;
use crate::util::lock;

/// Which listener received a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// [`MockServer::url`](crate::MockServer::url).
    Main,
    /// [`MockServer::other_origin_url`](crate::MockServer::other_origin_url).
    Other,
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    /// Path without the query, e.g. `/gen/offset`.
    pub path: String,
    /// Raw (still percent-encoded) query string without `?`.
    pub query: Option<String>,
    /// Path and query as sent.
    pub uri: String,
    /// Request headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Request body (lossy UTF-8), `None` when empty.
    pub body: Option<String>,
    /// Status of the answer; `0` while in flight or when no response was sent
    /// (e.g. [`FaultKind::DropConnection`]).
    pub status: u16,
    /// Whether the response body was gzip-compressed.
    pub response_gzip: bool,
    /// When the request (head and body) had been received.
    pub at: Instant,
    pub origin: Origin,
}

impl RequestRecord {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Snapshot of the server's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request received, both listeners.
    pub total_requests: u64,
    /// Requests received by the main listener.
    pub main_requests: u64,
    /// Requests received by the other-origin listener.
    pub other_requests: u64,
    /// Requests refused by a rate limiter (429, or 403 in GitHub mode): the data endpoints'
    /// and the Zendesk, Slack and GitHub imitations' own.
    pub rate_limited: u64,
    /// Faults injected, all kinds.
    pub faults_injected: u64,
    /// Faults injected by [`FaultKind::name`].
    pub faults_by_kind: BTreeMap<&'static str, u64>,
    /// Access tokens issued by `POST /oauth/token`.
    pub tokens_issued: u64,
    /// Requests refused for their credentials: 401 from the `/auth/*` endpoints,
    /// `/oauth/token`, `/stripe/v1/customers`, the Zendesk and GitHub imitations or
    /// `/hostile/echo_token`; GitHub's 404 without credentials; Slack's `not_authed` /
    /// `invalid_auth`.
    pub auth_failures: u64,
}

impl Counters {
    /// Number of injected faults of `kind` (any duration for `Slow`).
    pub fn faults_of(&self, kind: &FaultKind) -> u64 {
        self.faults_by_kind.get(kind.name()).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct RequestLog {
    inner: Mutex<LogInner>,
}

#[derive(Default)]
struct LogInner {
    next_seq: u64,
    records: Vec<(u64, RequestRecord)>,
    counters: Counters,
}

impl RequestLog {
    /// Appends a record (status 0) and returns its sequence number.
    pub(crate) fn push(&self, record: RequestRecord) -> u64 {
        let mut g = lock(&self.inner);
        let seq = g.next_seq;
        g.next_seq += 1;
        g.counters.total_requests += 1;
        match record.origin {
            Origin::Main => g.counters.main_requests += 1,
            Origin::Other => g.counters.other_requests += 1,
        }
        g.records.push((seq, record));
        seq
    }

    /// Sets the status of record `seq` once the response is ready.
    pub(crate) fn finish(&self, seq: u64, status: u16, gzip: bool) {
        let mut g = lock(&self.inner);
        if let Some((_, r)) = g.records.iter_mut().rev().find(|(s, _)| *s == seq) {
            r.status = status;
            r.response_gzip = gzip;
        }
    }

    pub(crate) fn records(&self) -> Vec<RequestRecord> {
        lock(&self.inner)
            .records
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.inner).records.clear();
    }

    pub(crate) fn counters(&self) -> Counters {
        lock(&self.inner).counters.clone()
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.inner).counters)
    }
}
