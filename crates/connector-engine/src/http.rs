//! HTTP: one reqwest client per run (rustls, gzip/brotli/deflate, keep-alive
//! pool, timeouts), the run's rate limiter, auth for the API's own origin,
//! and the retry loop. A page is fetched, read whole (up to
//! `max_response_size` after decompression) and parsed inside the retry
//! loop, so a truncated body or garbage JSON retries like a 503.
//!
//! Credentials go to the API's origin only, whatever field carries them: a
//! request to another origin (a next-page URL or `Link` the server chose)
//! gets no auth, no header or query value that holds a secret or has a
//! credential's name, and no body that holds a secret. Secrets sealed in
//! saved positions are put back for the API's origin only.

use crate::auth::Authenticator;
use crate::rate_limit::{RateLimiter, ServerWait, human};
use crate::raw_records::RawRecords;
use crate::retry::Action;
use crate::retry::RetryPolicy;
use crate::secret::{Redactor, is_sensitive_name};
use crate::stats::StreamStats;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use url::Url;

/// One request, fully built but for auth.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    /// Keep the records at this member path as raw JSON (the fast path).
    pub raw_path: Option<std::sync::Arc<Vec<String>>>,
    /// The stream's own quota, waited for after the run's.
    pub quota: Option<Arc<crate::rate_limit::StreamQuota>>,
}

/// A successful response with its parsed body.
#[derive(Debug)]
pub struct PageResponse {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
    pub bytes: usize,
    /// The records, cut out of `json`, when the request asked for raw ones.
    pub raw: Option<RawRecords>,
}

/// What a fetch produced.
#[derive(Debug)]
pub enum Fetched {
    Page(PageResponse),
    /// A response action said `ignore`: treat as an empty page.
    Ignored,
    /// A response action said `stop`: end the partition cleanly.
    Stop,
    /// The run was stopped while the request was out: nothing to land.
    Cancelled,
}

/// What kind of failure ended a fetch, classified where it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchErrorKind {
    /// The server answered with this status.
    Status(u16),
    Timeout,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// Nothing listens at that address.
    Refused,
    /// Another transport failure: reset, dropped connection.
    Connect,
    /// The body broke off, or is not the JSON expected.
    Body,
    /// The body is larger than `max_response_size`.
    TooLarge,
    /// The server asked for a longer wait than `retry.max_wait`.
    WaitTooLong,
    /// The request was not sent (a body with a secret for another origin).
    NotSent,
    /// Auth could not be obtained (the token endpoint failed).
    Auth,
    Other,
}

/// Why a fetch failed, after retries.
#[derive(Debug)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
    pub status: Option<u16>,
    pub url: String,
}

pub struct HttpClient {
    pub client: reqwest::Client,
    origin: url::Origin,
    pub auth: Authenticator,
    pub limiter: Arc<RateLimiter>,
    pub redactor: Redactor,
    verbose: u8,
    max_response_size: u64,
}

/// Settings for building the client.
pub struct HttpSettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
    /// Largest body accepted, after decompression, in bytes.
    pub max_response_size: u64,
}

/// Installs the ring crypto provider for rustls, once per process.
fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn build_client(s: &HttpSettings) -> Result<reqwest::Client, String> {
    install_crypto();
    reqwest::Client::builder()
        .user_agent(s.user_agent.clone())
        .timeout(s.timeout)
        .connect_timeout(s.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            // Only within the origin of the request that was redirected.
            let same = attempt
                .previous()
                .last()
                .is_some_and(|prev| prev.origin() == attempt.url().origin());
            if attempt.previous().len() > 10 {
                attempt.error("more than 10 redirects")
            } else if same {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 200 {
        format!("{one_line}…")
    } else {
        one_line
    }
}

enum Outcome {
    Done(Fetched),
    Retry {
        reason: String,
        wait: Option<ServerWait>,
        kind: FetchErrorKind,
        /// The response's status, when there was a response.
        status: Option<u16>,
    },
    Fail {
        message: String,
        kind: FetchErrorKind,
        status: Option<u16>,
    },
}

/// The error for a wait longer than `retry.max_wait`.
fn too_long(asked: &str, max: Duration) -> String {
    format!(
        "{asked}, longer than retry.max_wait ({}); the state is saved: rerun later to resume, or raise `retry.max_wait`",
        human(max)
    )
}

impl HttpClient {
    pub fn new(
        client: reqwest::Client,
        base: &Url,
        auth: Authenticator,
        limiter: Arc<RateLimiter>,
        redactor: Redactor,
        verbose: u8,
        max_response_size: u64,
    ) -> Self {
        HttpClient {
            client,
            origin: base.origin(),
            auth,
            limiter,
            redactor,
            verbose,
            max_response_size,
        }
    }

    /// True when `url` belongs to the API's origin and may receive credentials.
    pub fn is_api_origin(&self, url: &Url) -> bool {
        url.origin() == self.origin
    }

    /// Fetches one page with the retry policy; `stats` counts requests and retries.
    pub async fn fetch(
        &self,
        req: &PageRequest,
        policy: &RetryPolicy,
        stats: &StreamStats,
    ) -> Result<Fetched, FetchError> {
        let shown_url = self.redactor.url(&req.url);
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            attempt += 1;
            let outcome = self.try_once(req, policy, stats).await;
            let (reason, wait, kind, status) = match outcome {
                Outcome::Done(f) => return Ok(f),
                Outcome::Fail {
                    message,
                    kind,
                    status,
                } => {
                    if kind == FetchErrorKind::Status(401) && !reauthed && self.auth.invalidate() {
                        reauthed = true;
                        tracing::info!(
                            "401 from {shown_url}: fetching a new token and retrying once"
                        );
                        continue;
                    }
                    return Err(FetchError {
                        status,
                        kind,
                        message: self.redactor.redact(&message),
                        url: shown_url,
                    });
                }
                Outcome::Retry {
                    reason,
                    wait,
                    kind,
                    status,
                } => (reason, wait, kind, status),
            };
            if let Some(w) = wait.as_ref().filter(|w| w.wait > policy.max_wait) {
                let asked = format!(
                    "{reason}; the server asked to wait {} ({})",
                    human(w.wait),
                    w.header
                );
                return Err(FetchError {
                    status,
                    kind: FetchErrorKind::WaitTooLong,
                    message: self.redactor.redact(&too_long(&asked, policy.max_wait)),
                    url: shown_url,
                });
            }
            if attempt >= policy.max_attempts {
                let last = status
                    .map(|s| format!(" (last status {s})"))
                    .unwrap_or_default();
                let message =
                    format!("gave up after {attempt} attempts{last}; last error: {reason}");
                return Err(FetchError {
                    status,
                    kind,
                    message: self.redactor.redact(&message),
                    url: shown_url,
                });
            }
            stats.retrying.store(true, Ordering::Relaxed);
            stats.retries.fetch_add(1, Ordering::Relaxed);
            // The server's wait (already applied run-wide by the limiter) wins
            // over the computed backoff.
            let sleep = match &wait {
                Some(_) => Duration::ZERO,
                None => policy.backoff(attempt - 1).min(policy.max_wait),
            };
            tracing::warn!(
                "retrying {shown_url} in {} (attempt {}/{}): {}",
                human(wait.as_ref().map(|w| w.wait).unwrap_or(sleep)),
                attempt + 1,
                policy.max_attempts,
                self.redactor.redact(&reason)
            );
            if !sleep.is_zero() {
                tokio::time::sleep(sleep).await;
            }
            stats.retrying.store(false, Ordering::Relaxed);
        }
    }

    /// The request as it may go out: for the API's origin with auth and
    /// sealed secrets put back; for any other origin stripped of every
    /// credential, or refused when its body carries a secret.
    async fn outgoing(
        &self,
        req: &PageRequest,
    ) -> Result<(Url, Vec<(String, String)>, Option<Vec<u8>>), Outcome> {
        let mut headers = req.headers.clone();
        let body = req.body.as_ref();
        if self.is_api_origin(&req.url) {
            let mut url = Url::parse(&self.redactor.unseal(req.url.as_str()))
                .unwrap_or_else(|_| req.url.clone());
            for (_, v) in headers.iter_mut() {
                *v = self.redactor.unseal(v);
            }
            let mut query = Vec::new();
            if let Err(e) = self
                .auth
                .apply(&self.client, &mut headers, &mut query)
                .await
            {
                return Err(Outcome::Fail {
                    message: e,
                    kind: FetchErrorKind::Auth,
                    status: None,
                });
            }
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let body = body
                .map(|b| serde_json::to_vec(&self.redactor.unseal_value(b)).unwrap_or_default());
            return Ok((url, headers, body));
        }
        let foreign = req.url.origin().ascii_serialization();
        let mut dropped: Vec<String> = Vec::new();
        headers.retain(|(k, v)| {
            let keep = !is_sensitive_name(k) && !self.redactor.contains_secret(v);
            if !keep {
                dropped.push(k.clone());
            }
            keep
        });
        let mut url = req.url.clone();
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, v)| {
                    let keep =
                        !self.redactor.contains_secret(v) && !self.redactor.contains_secret(k);
                    if !keep {
                        dropped.push(format!("query `{k}`"));
                    }
                    keep
                })
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if pairs.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
        }
        if !dropped.is_empty() {
            tracing::debug!(
                "{foreign} is not the API's origin: not sending {}",
                dropped.join(", ")
            );
        }
        let body = match body {
            Some(b) => {
                let bytes = serde_json::to_vec(b).unwrap_or_default();
                if self
                    .redactor
                    .contains_secret(&String::from_utf8_lossy(&bytes))
                {
                    return Err(Outcome::Fail {
                        message: format!(
                            "refusing to send a request body that holds a secret to {foreign}, which is not the API's origin"
                        ),
                        kind: FetchErrorKind::NotSent,
                        status: None,
                    });
                }
                Some(bytes)
            }
            None => None,
        };
        Ok((url, headers, body))
    }

    /// Reads a body up to `limit` bytes (decompressed), so a gzip bomb or an
    /// endless stream costs bounded memory.
    async fn read_body(&self, mut resp: reqwest::Response, limit: u64) -> Result<Bytes, Outcome> {
        let hint = resp.content_length().unwrap_or(0).min(limit) as usize;
        let mut buf = bytes::BytesMut::with_capacity(hint.max(8 * 1024));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > limit {
                        return Err(Outcome::Fail {
                            message: format!(
                                "the response body is larger than max_response_size ({}) after decompression; it was not read further (raise `max_response_size` if the API sends pages this big)",
                                human_size(limit)
                            ),
                            kind: FetchErrorKind::TooLarge,
                            status: None,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err(e) => return Err(self.transport_error(&e)),
            }
        }
    }

    async fn try_once(
        &self,
        req: &PageRequest,
        policy: &RetryPolicy,
        stats: &StreamStats,
    ) -> Outcome {
        let (permit, waited) = match self.limiter.acquire(policy.max_wait).await {
            Ok(x) => x,
            Err(too) => {
                return Outcome::Fail {
                    message: too_long(&too.to_string(), policy.max_wait),
                    kind: FetchErrorKind::WaitTooLong,
                    status: None,
                };
            }
        };
        let waited = match &req.quota {
            Some(q) => waited + q.acquire().await,
            None => waited,
        };
        stats
            .waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
        let (url, headers, body) = match self.outgoing(req).await {
            Ok(x) => x,
            Err(outcome) => return outcome,
        };
        let mut rb = self.client.request(req.method.clone(), url.clone());
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(body) = body {
            rb = rb.header("Content-Type", "application/json").body(body);
        }
        let started = Instant::now();
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if self.verbose >= 2 {
            let shown: Vec<String> = headers
                .iter()
                .map(|(k, v)| {
                    if is_sensitive_name(k) {
                        format!("{k}: ***")
                    } else {
                        format!("{k}: {}", self.redactor.redact(v))
                    }
                })
                .collect();
            tracing::debug!(
                "{} {} headers: {}",
                req.method,
                self.redactor.url(&url),
                shown.join(", ")
            );
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                drop(permit);
                return self.transport_error_with(&e, policy);
            }
        };
        let status = resp.status().as_u16();
        let final_url = resp.url().clone();
        let resp_headers = resp.headers().clone();
        let server_wait = self.limiter.observe(status, &resp_headers);
        if status == 429 {
            stats.http_429.fetch_add(1, Ordering::Relaxed);
        }
        let body = match self.read_body(resp, self.max_response_size).await {
            Ok(b) => b,
            Err(outcome) => {
                drop(permit);
                return match outcome {
                    Outcome::Retry { reason, .. } if !policy.on_connection_error => Outcome::Fail {
                        message: reason,
                        kind: FetchErrorKind::Body,
                        status: Some(status),
                    },
                    Outcome::Fail { message, kind, .. } => Outcome::Fail {
                        message,
                        kind,
                        status: Some(status),
                    },
                    other => other,
                };
            }
        };
        drop(permit);
        stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        tracing::info!(
            "{} {} -> {} in {}ms, {} bytes",
            req.method,
            self.redactor.url(&url),
            status,
            started.elapsed().as_millis(),
            body.len()
        );
        // Response actions may look into the body; otherwise it is parsed
        // once, below, after the status checks.
        let json: Option<serde_json::Value> = if policy.rules.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };
        if let Some(action) = policy.action_for(status, &body, json.as_ref()) {
            match action {
                Action::Ignore => return Outcome::Done(Fetched::Ignored),
                Action::Stop => return Outcome::Done(Fetched::Stop),
                Action::Fail => {
                    return Outcome::Fail {
                        message: format!(
                            "HTTP {status} matched a `fail` response action; body: {}",
                            excerpt(&body)
                        ),
                        kind: FetchErrorKind::Status(status),
                        status: Some(status),
                    };
                }
                Action::Retry => {
                    return Outcome::Retry {
                        reason: format!("HTTP {status} matched a `retry` response action"),
                        wait: server_wait,
                        kind: FetchErrorKind::Status(status),
                        status: Some(status),
                    };
                }
            }
        }
        if (300..400).contains(&status) {
            let to = resp_headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            return Outcome::Fail {
                message: format!(
                    "HTTP {status}: redirect to another origin ({}) not followed, so credentials stay with the API",
                    self.redactor.redact(to)
                ),
                kind: FetchErrorKind::Status(status),
                status: Some(status),
            };
        }
        let github_403 = status == 403
            && resp_headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                == Some("0");
        if !(200..300).contains(&status) {
            if policy.statuses.contains(&status) || github_403 {
                return Outcome::Retry {
                    reason: format!("HTTP {status}; body: {}", excerpt(&body)),
                    wait: server_wait,
                    kind: FetchErrorKind::Status(status),
                    status: Some(status),
                };
            }
            let hint = match status {
                401 | 403 => " (check the credentials: the auth config values)",
                404 => " (check the stream's path and the base_url)",
                _ => "",
            };
            return Outcome::Fail {
                message: format!("HTTP {status}{hint}; body: {}", excerpt(&body)),
                kind: FetchErrorKind::Status(status),
                status: Some(status),
            };
        }
        let parsed = match (json, &req.raw_path) {
            (Some(j), _) => Ok((j, None)),
            (None, Some(keys)) => crate::raw_records::split(&body, keys),
            (None, None) => serde_json::from_slice(&body).map(|j| (j, None)),
        };
        let (json, raw) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                let ct = resp_headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none");
                let what = if e.is_eof() {
                    "the body is truncated JSON"
                } else {
                    "the body is not JSON"
                };
                let message = format!(
                    "{what} ({e}; content-type {ct}); body starts: {}",
                    excerpt(&body)
                );
                let retry = if e.is_eof() {
                    policy.on_connection_error || policy.on_invalid_json
                } else {
                    policy.on_invalid_json
                };
                // serde_json's recursion limit is a property of the body:
                // asking again gets the same body.
                let retry = retry && !e.to_string().contains("recursion limit");
                return if retry {
                    Outcome::Retry {
                        reason: message,
                        wait: None,
                        kind: FetchErrorKind::Body,
                        status: Some(status),
                    }
                } else {
                    Outcome::Fail {
                        message,
                        kind: FetchErrorKind::Body,
                        status: Some(status),
                    }
                };
            }
        };
        Outcome::Done(Fetched::Page(PageResponse {
            url: final_url,
            status,
            headers: resp_headers,
            json,
            bytes: body.len(),
            raw,
        }))
    }

    /// A transport error, retried or not by the policy.
    fn transport_error_with(&self, e: &reqwest::Error, policy: &RetryPolicy) -> Outcome {
        let outcome = self.transport_error(e);
        let retry = match &outcome {
            Outcome::Retry { kind, .. } => match kind {
                FetchErrorKind::Timeout => policy.on_timeout,
                _ => policy.on_connection_error,
            },
            _ => false,
        };
        match outcome {
            Outcome::Retry { reason, kind, .. } if !retry => Outcome::Fail {
                message: reason,
                kind,
                status: None,
            },
            other => other,
        }
    }

    /// Classifies a transport error: a redirect fails, anything else may retry.
    fn transport_error(&self, e: &reqwest::Error) -> Outcome {
        // reqwest names the URL; the stream error already does, redacted.
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
        let kind = classify(e);
        if kind == FetchErrorKind::Other && e.is_redirect() {
            return Outcome::Fail {
                message: format!("redirect: {chain}"),
                kind: FetchErrorKind::Other,
                status: None,
            };
        }
        let what = match kind {
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Body => "truncated or broken body",
            FetchErrorKind::Dns => "DNS error",
            FetchErrorKind::Tls => "TLS error",
            FetchErrorKind::Refused | FetchErrorKind::Connect => "connection error",
            _ => "request error",
        };
        Outcome::Retry {
            reason: format!("{what}: {chain}"),
            wait: None,
            kind,
            status: None,
        }
    }
}

/// Classifies a transport error where it happens, from the error types in
/// its source chain (an I/O error's kind, a rustls error) rather than its
/// text; only the resolver's error is known by its message.
pub fn classify(e: &reqwest::Error) -> FetchErrorKind {
    if e.is_timeout() {
        return FetchErrorKind::Timeout;
    }
    if e.is_body() || e.is_decode() {
        return FetchErrorKind::Body;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return FetchErrorKind::Tls;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return FetchErrorKind::Refused,
                std::io::ErrorKind::TimedOut => return FetchErrorKind::Timeout,
                _ => {}
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return FetchErrorKind::Tls;
            }
        }
        // hyper-util's resolver error is private; its message names it.
        if s.to_string().starts_with("dns error") {
            return FetchErrorKind::Dns;
        }
        src = s.source();
    }
    if e.is_connect() || e.is_request() {
        FetchErrorKind::Connect
    } else {
        FetchErrorKind::Other
    }
}

/// `268435456` → `256 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}
