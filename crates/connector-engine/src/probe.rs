//! Single requests outside a sync, for the authoring commands.
//!
//! - [`Prober`] sends a bare GET before any spec exists (`init`): the caller
//!   gives the URL and headers, and gets the status, headers and JSON back.
//! - [`first_request`] builds a stream's first request exactly as a sync
//!   would (same plan, paginator, incremental lower bound of a first run),
//!   for `sync --dry-run`, which only shows it.
//! - [`StreamProber`] reads the first pages with the same
//!   [`PartitionReader`] and [`RecordShaper`] as a sync, through the same
//!   [`Runtime`] (auth only to the API's origin, rate limiter, retry
//!   policy), for `check` and `discover`.
//!
//! Failures carry a [`FailureKind`] so the CLI can give a precise hint
//! (credentials, path, base_url, DNS, TLS, timeout).

use crate::auth::AuthPlan;
use crate::error::EngineError;
use crate::http::{FetchErrorKind, HttpSettings, PageRequest};
use crate::pagination;
use crate::plan::{Plan, StreamPlan};
use crate::reader::{PageCall, PageRecords, PartitionReader};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::secret::Redactor;
use crate::shape::RecordShaper;
use crate::stats::StreamStats;
use crate::template::{Context, to_value};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use url::Url;

/// What went wrong with a probe, coarse enough to pick a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with this non-success status.
    Status(u16),
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer in time (connect or whole-request timeout).
    Timeout,
    /// Nothing listens at that address.
    Refused,
    /// Another transport failure: reset, dropped, truncated.
    Connection,
    /// The body is not JSON, or the records path finds nothing in it.
    Body,
    /// The request could not be built (template, URL).
    Request,
}

/// A failed probe. The message and URL are redacted.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct ProbeError {
    pub kind: FailureKind,
    pub url: String,
    pub message: String,
}

impl From<&FetchErrorKind> for FailureKind {
    fn from(k: &FetchErrorKind) -> FailureKind {
        match k {
            FetchErrorKind::Status(s) => FailureKind::Status(*s),
            FetchErrorKind::Timeout | FetchErrorKind::WaitTooLong => FailureKind::Timeout,
            FetchErrorKind::Dns => FailureKind::Dns,
            FetchErrorKind::Tls => FailureKind::Tls,
            FetchErrorKind::Refused => FailureKind::Refused,
            FetchErrorKind::Connect | FetchErrorKind::Other => FailureKind::Connection,
            FetchErrorKind::Body | FetchErrorKind::TooLarge => FailureKind::Body,
            FetchErrorKind::NotSent | FetchErrorKind::Auth => FailureKind::Request,
        }
    }
}

/// Drops the "gave up after 1 attempts; last error:" preamble of a request
/// that was only ever meant to be tried once.
fn single_attempt(message: String, max_attempts: u32) -> String {
    const MARK: &str = "last error: ";
    match message.find(MARK) {
        Some(i) if max_attempts == 1 && message.starts_with("gave up after 1 attempt") => {
            message[i + MARK.len()..].to_string()
        }
        _ => message,
    }
}

/// One raw response, as `init` sees it.
#[derive(Debug, Clone)]
pub struct ProbeResponse {
    /// The URL that answered (after same-origin redirects).
    pub url: Url,
    pub status: u16,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body, when it is JSON.
    pub json: Option<Value>,
    /// The start of the body on one line, for messages.
    pub excerpt: String,
    pub elapsed: Duration,
}

impl ProbeResponse {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target of `rel` in the `Link` headers, resolved against the URL.
    pub fn link(&self, rel: &str) -> Option<Url> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "link")
            .find_map(|(_, v)| pagination::find_rel(v, rel))
            .and_then(|t| self.url.join(&t).ok())
    }
}

/// Sends bare GET requests with the engine's client settings (rustls,
/// compression, same-origin redirects only). Used before a spec exists.
pub struct Prober {
    client: reqwest::Client,
    redactor: Redactor,
}

impl Prober {
    /// `redactor` masks the credentials the caller passes in headers or the URL.
    pub fn new(settings: &HttpSettings, redactor: Redactor) -> Result<Prober, ProbeError> {
        let client = crate::http::build_client(settings).map_err(|message| ProbeError {
            kind: FailureKind::Request,
            url: String::new(),
            message,
        })?;
        Ok(Prober { client, redactor })
    }

    /// One GET. Any status is a response; only transport failures are errors.
    pub async fn get(
        &self,
        url: &Url,
        headers: &[(String, String)],
    ) -> Result<ProbeResponse, ProbeError> {
        let mut rb = self.client.get(url.clone());
        for (k, v) in headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let started = Instant::now();
        let shown = self.redactor.url(url);
        let fail = |e: reqwest::Error| {
            let chain = crate::http::error_chain(&e);
            ProbeError {
                kind: FailureKind::from(&crate::http::classify(&e)),
                url: shown.clone(),
                message: self.redactor.redact(&chain),
            }
        };
        let resp = rb.send().await.map_err(fail)?;
        let status = resp.status().as_u16();
        let final_url = resp.url().clone();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_ascii_lowercase(), v)
            })
            .collect();
        let body = resp.bytes().await.map_err(fail)?;
        Ok(ProbeResponse {
            url: final_url,
            status,
            headers,
            json: serde_json::from_slice(&body).ok(),
            excerpt: self.redactor.redact(&crate::http::excerpt(&body)),
            elapsed: started.elapsed(),
        })
    }
}

/// The parent a child stream's first request is built for.
#[derive(Debug, Clone, Copy)]
pub enum Parent<'a> {
    /// A root stream.
    None,
    /// One parent record, as a sync would pass it.
    Record(&'a Value),
    /// For display only: `{{ parent.id }}` renders as `{parent.id}`.
    Placeholder,
}

/// A stream's first request and the reader of the pages that follow it.
pub struct FirstRequest<'a> {
    /// The request, before auth (credentials are added when sent).
    pub request: PageRequest,
    pub reader: PartitionReader<'a>,
    pub call: PageCall,
    /// The template context (config, parent, state) of the partition.
    pub context: Context,
    /// The incremental lower bound of a first run (the start value).
    pub lower: Option<Value>,
}

/// Builds the first request of one partition of `stream` as a first run of
/// `sync` would: no saved state, the incremental start value as lower bound.
pub fn first_request<'a>(
    plan: &'a Plan,
    stream: &str,
    parent: Parent<'_>,
) -> Result<FirstRequest<'a>, ProbeError> {
    let request_err = |message: String| ProbeError {
        kind: FailureKind::Request,
        url: String::new(),
        message: plan.redactor.redact(&message),
    };
    let sp: &StreamPlan = plan
        .streams
        .get(stream)
        .ok_or_else(|| request_err(format!("no stream `{stream}`")))?;
    let mut context = Context {
        parent: match parent {
            Parent::None if !sp.partitions_from.is_empty() => Some(minijinja::Value::from(())),
            Parent::None => None,
            Parent::Record(v) => Some(to_value(v)),
            Parent::Placeholder => {
                Some(minijinja::Value::from_object(Placeholder("parent".into())))
            }
        },
        ..plan.context()
    };
    if matches!(parent, Parent::Placeholder) {
        context.parent_partition = Some(minijinja::Value::from_object(Placeholder(
            "parent_partition".into(),
        )));
    }
    let lower = sp
        .incremental
        .as_ref()
        .and_then(|inc| inc.lower_bound(None).ok().flatten());
    // The first partition: a config list's first value, the first window.
    if let Some((n, v)) = sp
        .partitions
        .as_ref()
        .and_then(|(n, vs)| vs.first().map(|v| (n, v)))
    {
        context.partition = Some(to_value(&serde_json::json!({ n.as_str(): v })));
    } else if let (Parent::Record(rec), Some(first)) = (&parent, sp.parent_streams().first()) {
        // A union's first partition: the value the parent's record gives.
        let ctx = Context {
            parent: Some(to_value(*rec)),
            ..plan.context()
        };
        if let Some((n, v)) = sp
            .partition_from(&plan.templates, first, &ctx.to_value())
            .map_err(|e| request_err(e.to_string()))?
        {
            context.partition = Some(to_value(&serde_json::json!({ n.as_str(): v })));
        }
    } else if matches!(parent, Parent::Placeholder) && !sp.partitions_from.is_empty() {
        context.partition = Some(minijinja::Value::from_object(Placeholder(
            "partition".into(),
        )));
    }
    let first_window = match (&sp.incremental, &lower) {
        (Some(inc), Some(l)) => inc
            .upper_bound()
            .and_then(|u| inc.windows(l, &u).ok())
            .and_then(|w| w.first().copied()),
        _ => None,
    };
    let sent = match (&sp.incremental, &lower, &first_window) {
        (Some(inc), _, Some(w)) => Some(inc.request_format.write(w.start)),
        (Some(inc), Some(l), None) => inc.request_value(l).ok(),
        _ => None,
    };
    if let (Some(inc), Some(w)) = (&sp.incremental, &first_window) {
        context.window = Some(to_value(&serde_json::json!({
            "start": inc.request_format.write(w.start),
            "end": inc.request_format.write(w.end),
        })));
    }
    if sp.incremental.is_some() || !sp.response_state.is_empty() {
        context.state = Some(to_value(&sp.state_value([], sent.clone())));
    }
    let mut parts = plan
        .base_request(sp, &context.to_value())
        .map_err(request_err)?;
    if let (Some(inc), Some(lb)) = (&sp.incremental, &sent)
        && let Some(param) = &inc.param
    {
        let text = lb
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| lb.to_string());
        parts.set_query(param, text);
    }
    let mut reader = PartitionReader::new(plan, sp, parts, false, None);
    let call = reader
        .next_call()
        .map_err(|e| request_err(e.to_string()))?
        .ok_or_else(|| request_err("no first page".into()))?;
    Ok(FirstRequest {
        request: call.request.clone(),
        reader,
        call,
        context,
        lower,
    })
}

/// Renders as `{parent.field}` for any field path, so a child stream's
/// request can be shown without a parent record.
#[derive(Debug)]
struct Placeholder(String);

impl minijinja::value::Object for Placeholder {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        Some(minijinja::Value::from_object(Placeholder(format!(
            "{}.{key}",
            self.0
        ))))
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

/// Where credentials go, by name only: for showing a request without them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialNames {
    pub headers: Vec<String>,
    pub query: Vec<String>,
}

/// The header and query names the plan's auth adds to API requests.
pub fn credential_names(auth: &AuthPlan) -> CredentialNames {
    match auth {
        AuthPlan::Static(s) => CredentialNames {
            headers: s.headers.iter().map(|(k, _)| k.clone()).collect(),
            query: s.query.iter().map(|(k, _)| k.clone()).collect(),
        },
        AuthPlan::OAuth2(_) => CredentialNames {
            headers: vec!["Authorization".into()],
            query: vec![],
        },
    }
}

/// Records of the first pages of one partition.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The records, after the stream's filter and reshaping.
    pub records: Vec<Value>,
    pub pages: u64,
    /// The first request's URL, redacted.
    pub url: String,
    /// Time for all pages, including any token fetch.
    pub elapsed: Duration,
}

/// Reads streams' first pages as a sync would.
pub struct StreamProber {
    plan: Plan,
    rt: Runtime,
}

impl StreamProber {
    pub fn new(plan: Plan, verbose: u8) -> Result<StreamProber, EngineError> {
        let rt = Runtime::start(
            &plan,
            RuntimeOptions {
                verbose,
                ..Default::default()
            },
        )?;
        Ok(StreamProber { plan, rt })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Points the plan at the base URL a token response names, before the
    /// first probe (see [`Runtime::resolve_base_url`]).
    pub async fn resolve_base_url(&mut self) -> Result<(), EngineError> {
        self.rt.resolve_base_url(&mut self.plan).await
    }

    /// Exactly one request: the first page, no retries.
    pub async fn first_page(
        &self,
        stream: &str,
        parent: Option<&Value>,
    ) -> Result<Sample, ProbeError> {
        self.sample(stream, parent, 1, false).await
    }

    /// Up to `pages` pages of one partition, read and shaped as a first run
    /// of `sync` would (the start value's bound applies). `retries` applies
    /// the stream's retry policy; without it each request is tried once.
    pub async fn sample(
        &self,
        stream: &str,
        parent: Option<&Value>,
        pages: u64,
        retries: bool,
    ) -> Result<Sample, ProbeError> {
        let started = Instant::now();
        let FirstRequest {
            mut reader,
            call,
            context,
            lower,
            ..
        } = first_request(
            &self.plan,
            stream,
            parent.map_or(Parent::None, Parent::Record),
        )?;
        let sp = &self.plan.streams[stream];
        let mut policy = sp.retry.clone();
        if !retries {
            policy.max_attempts = 1;
        }
        let shaper = RecordShaper {
            plan: &self.plan,
            sp,
            ctx: context,
            lower,
            boundary: None,
            feed_all: false,
            any_json: true,
        };
        let stats = StreamStats::default();
        let first_url = call.shown.clone();
        let mut records = Vec::new();
        let mut next = Some(call);
        let mut read = 0u64;
        while let Some(call) = next.take() {
            let fetched = self
                .rt
                .http
                .fetch(&call.request, &policy, &stats)
                .await
                .map_err(|e| ProbeError {
                    kind: FailureKind::from(&e.kind),
                    url: e.url,
                    message: single_attempt(e.message, policy.max_attempts),
                })?;
            let body_err = |e: EngineError| ProbeError {
                kind: FailureKind::Body,
                url: call.shown.clone(),
                message: e.to_string(),
            };
            let Some(page) = reader.read(&call, fetched).map_err(body_err)? else {
                break;
            };
            read += 1;
            let values = match page.records {
                PageRecords::Values(v) => v,
                PageRecords::Raw(r) => r.to_values().map_err(|e| ProbeError {
                    kind: FailureKind::Body,
                    url: call.shown.clone(),
                    message: e.to_string(),
                })?,
            };
            let shaped = shaper
                .shape(page.page_no, &call.shown, values, &stats.skipped)
                .map_err(|e| ProbeError {
                    kind: FailureKind::Request,
                    url: call.shown.clone(),
                    message: e.to_string(),
                })?;
            records.extend(shaped.write);
            if read < pages.max(1) {
                next = reader.next_call().map_err(body_err)?;
            }
        }
        Ok(Sample {
            records,
            pages: read,
            url: first_url,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_kinds_map_to_probe_kinds() {
        assert_eq!(FailureKind::from(&FetchErrorKind::Dns), FailureKind::Dns);
        assert_eq!(
            FailureKind::from(&FetchErrorKind::Refused),
            FailureKind::Refused
        );
        assert_eq!(
            FailureKind::from(&FetchErrorKind::Status(404)),
            FailureKind::Status(404)
        );
    }
}
