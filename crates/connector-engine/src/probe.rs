//! Single requests outside a sync, for the authoring commands.
//!
//! - [`Prober`] sends a bare GET before any spec exists (`init`): the caller
//!   gives the URL and headers, and gets the status, headers and JSON back.
//! - [`first_request`] builds a stream's first request exactly as a sync
//!   would (same plan, paginator, incremental lower bound of a first run),
//!   for `sync --dry-run`, which only shows it.
//! - [`StreamProber`] sends it, and a few more pages, through the same
//!   [`HttpClient`] as a sync (auth only to the API's origin, rate limiter,
//!   retry policy), for `check` and `discover`.
//!
//! Failures carry a [`FailureKind`] so the CLI can give a precise hint
//! (credentials, path, base_url, DNS, TLS, timeout).

use crate::auth::Authenticator;
use crate::error::EngineError;
use crate::http::{Fetched, HttpClient, HttpSettings, PageRequest, PageResponse};
use crate::pagination::{self, PageView, Paginator, RequestParts, StopRules};
use crate::plan::{Plan, StreamPlan};
use crate::rate_limit::RateLimiter;
use crate::secret::Redactor;
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

/// Classifies a transport error from its text (reqwest and hyper put the
/// cause only in the message chain).
pub fn classify_transport(text: &str) -> FailureKind {
    let t = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if any(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "nodename nor servname",
    ]) {
        FailureKind::Dns
    } else if t.starts_with("timeout") || any(&["timed out", "last error: timeout"]) {
        FailureKind::Timeout
    } else if any(&[
        "connection refused",
        "os error 111",
        "os error 61",
        "os error 10061",
    ]) {
        FailureKind::Refused
    } else if any(&["certificate", "tls", "ssl", "handshake"]) {
        FailureKind::Tls
    } else {
        FailureKind::Connection
    }
}

/// The message chain of a reqwest error, without the URL reqwest adds.
fn error_chain(e: &reqwest::Error) -> String {
    let mut chain = match e.url() {
        Some(u) => e.to_string().replace(&format!(" for url ({u})"), ""),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        src = s.source();
    }
    chain
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
            let chain = error_chain(&e);
            let kind = if e.is_timeout() {
                FailureKind::Timeout
            } else {
                classify_transport(&chain)
            };
            ProbeError {
                kind,
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

/// A stream's first request and the paging state that follows it.
pub struct FirstRequest {
    /// The request, before auth (credentials are added when sent).
    pub request: PageRequest,
    /// The partition's request before pagination: later pages start here.
    pub base: RequestParts,
    pub paginator: Box<dyn Paginator>,
    pub stop: Option<StopRules>,
    /// The template context (config, parent, state) of the partition.
    pub context: Context,
}

/// Builds the first request of one partition of `stream` as a first run of
/// `sync` would: no saved state, the incremental start value as lower bound.
pub fn first_request(
    plan: &Plan,
    stream: &str,
    parent: Parent<'_>,
) -> Result<FirstRequest, ProbeError> {
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
            Parent::None => None,
            Parent::Record(v) => Some(to_value(v)),
            Parent::Placeholder => {
                Some(minijinja::Value::from_object(Placeholder("parent".into())))
            }
        },
        ..plan.context()
    };
    let lower = sp
        .incremental
        .as_ref()
        .and_then(|inc| inc.lower_bound(None).ok().flatten());
    if sp.incremental.is_some() {
        context.state = Some(to_value(&serde_json::json!({ "cursor": lower })));
    }
    let mut parts = plan
        .base_request(sp, &context.to_value())
        .map_err(request_err)?;
    if let (Some(inc), Some(lb)) = (&sp.incremental, &lower)
        && let Some(param) = &inc.param
    {
        let text = lb
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| lb.to_string());
        parts.set_query(param, text);
    }
    let (paginator, stop) = pagination::build(&sp.pagination, sp.page_size).map_err(request_err)?;
    let base = parts.clone();
    paginator.prepare(&mut parts);
    Ok(FirstRequest {
        request: PageRequest {
            method: sp.method.clone(),
            url: parts.full_url(),
            headers: parts.headers,
            body: parts.body,
            raw_path: None,
        },
        base,
        paginator,
        stop,
        context,
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
pub fn credential_names(auth: &Authenticator) -> CredentialNames {
    match auth {
        Authenticator::Static(s) => CredentialNames {
            headers: s.headers.iter().map(|(k, _)| k.clone()).collect(),
            query: s.query.iter().map(|(k, _)| k.clone()).collect(),
        },
        Authenticator::OAuth2(_) => CredentialNames {
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

/// Sends streams' first pages through the same HTTP client as a sync.
pub struct StreamProber {
    plan: Plan,
    http: HttpClient,
}

impl StreamProber {
    /// Takes the plan's credentials into its own HTTP client.
    pub fn new(mut plan: Plan, verbose: u8) -> Result<StreamProber, EngineError> {
        let limiter = Arc::new(RateLimiter::new(
            plan.rate,
            plan.burst,
            plan.max_concurrency,
            plan.honor_headers.clone(),
        ));
        let client = crate::http::build_client(&plan.http).map_err(EngineError::Plan)?;
        let auth = std::mem::replace(&mut plan.auth, Authenticator::Static(Default::default()));
        let http = HttpClient::new(
            client,
            &plan.base_url,
            auth,
            limiter,
            plan.redactor.clone(),
            verbose,
            plan.http.max_response_size,
        );
        Ok(StreamProber { plan, http })
    }

    /// The plan (its auth has moved into the client).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Exactly one request: the first page, no retries.
    pub async fn first_page(
        &self,
        stream: &str,
        parent: Option<&Value>,
    ) -> Result<Sample, ProbeError> {
        self.sample(stream, parent, 1, false).await
    }

    /// Up to `pages` pages of one partition. `retries` applies the stream's
    /// retry policy; without it each request is tried once.
    pub async fn sample(
        &self,
        stream: &str,
        parent: Option<&Value>,
        pages: u64,
        retries: bool,
    ) -> Result<Sample, ProbeError> {
        let started = Instant::now();
        let parent = parent.map_or(Parent::None, Parent::Record);
        let FirstRequest {
            request,
            base,
            mut paginator,
            stop,
            context,
        } = first_request(&self.plan, stream, parent)?;
        let sp = &self.plan.streams[stream];
        let mut policy = sp.retry.clone();
        if !retries {
            policy.max_attempts = 1;
        }
        let stats = StreamStats::default();
        let redactor = &self.plan.redactor;
        let first_url = redactor.url(&request.url);
        let mut req = request;
        let mut records = Vec::new();
        let mut received = 0u64;
        let mut page_no = 0u64;
        while page_no < pages.max(1) {
            page_no += 1;
            if page_no > 1 {
                let mut parts = base.clone();
                paginator.prepare(&mut parts);
                req.url = parts.full_url();
                req.headers = parts.headers;
                req.body = parts.body;
            }
            let shown = redactor.url(&req.url);
            let fetched = self
                .http
                .fetch(&req, &policy, &stats)
                .await
                .map_err(|e| ProbeError {
                    kind: match e.status {
                        Some(s) if !(200..300).contains(&s) => FailureKind::Status(s),
                        Some(_) => FailureKind::Body,
                        None => classify_transport(&e.message),
                    },
                    url: e.url,
                    message: single_attempt(e.message, policy.max_attempts),
                })?;
            let mut resp: PageResponse = match fetched {
                Fetched::Page(r) => r,
                Fetched::Ignored | Fetched::Stop | Fetched::Cancelled => break,
            };
            let mut page = sp.selector.select(&mut resp.json).map_err(|e| ProbeError {
                kind: FailureKind::Body,
                url: shown.clone(),
                message: redactor.redact(&e),
            })?;
            let raw_count = page.len();
            received += raw_count as u64;
            for mut r in page.drain(..) {
                let keep = sp
                    .selector
                    .transform(&mut r, &self.plan.templates, &context)
                    .map_err(|e| ProbeError {
                        kind: FailureKind::Request,
                        url: shown.clone(),
                        message: redactor.redact(&e.to_string()),
                    })?;
                if keep {
                    records.push(r);
                }
            }
            let view = PageView {
                response: Some(&resp),
                records: raw_count,
            };
            let more = paginator.advance(&view).map_err(|e| ProbeError {
                kind: FailureKind::Body,
                url: shown.clone(),
                message: redactor.redact(&e),
            })?;
            let stopped = stop
                .as_ref()
                .and_then(|s| {
                    s.stop_reason(&view, paginator.page_size(), received, page_no)
                        .ok()
                        .flatten()
                })
                .is_some();
            if !more || stopped {
                break;
            }
        }
        Ok(Sample {
            records,
            pages: page_no,
            url: first_url,
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_classified() {
        let dns = "connection error: error sending request: client error (Connect): dns error: failed to lookup address information: Name or service not known";
        assert_eq!(classify_transport(dns), FailureKind::Dns);
        let refused = "connection error: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert_eq!(classify_transport(refused), FailureKind::Refused);
        assert_eq!(
            classify_transport(
                "gave up after 1 attempts; last error: timeout: operation timed out"
            ),
            FailureKind::Timeout
        );
        assert_eq!(
            classify_transport("client error (Connect): invalid peer certificate: UnknownIssuer"),
            FailureKind::Tls
        );
    }
}
