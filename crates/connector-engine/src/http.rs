//! HTTP: one reqwest client per run (rustls, gzip/brotli/deflate, keep-alive
//! pool, timeouts), the run's rate limiter, auth for the API's own origin,
//! and the retry loop. A page is fetched, read whole and parsed inside the
//! retry loop, so a truncated body or garbage JSON retries like a 503.

use crate::auth::Authenticator;
use crate::rate_limit::{RateLimiter, human};
use crate::raw_records::RawRecords;
use crate::retry::RetryPolicy;
use crate::secret::{Redactor, is_sensitive_name};
use crate::stats::StreamStats;
use bytes::Bytes;
use connector_spec::Action;
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
}

/// Why a fetch failed, after retries.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
    pub status: Option<u16>,
    pub url: String,
}

pub struct HttpClient {
    pub client: reqwest::Client,
    origin: url::Origin,
    extra_origin: Option<url::Origin>,
    pub auth: Authenticator,
    pub limiter: Arc<RateLimiter>,
    pub redactor: Redactor,
    verbose: u8,
}

/// Settings for building the client.
pub struct HttpSettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
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
        wait: Option<Duration>,
        status: Option<u16>,
    },
    Fail {
        message: String,
        status: Option<u16>,
    },
}

impl HttpClient {
    pub fn new(
        client: reqwest::Client,
        base: &Url,
        auth: Authenticator,
        limiter: Arc<RateLimiter>,
        redactor: Redactor,
        verbose: u8,
    ) -> Self {
        let extra_origin = match &auth {
            Authenticator::OAuth2(o) => Url::parse(o.token_url()).ok().map(|u| u.origin()),
            _ => None,
        };
        HttpClient {
            client,
            origin: base.origin(),
            extra_origin,
            auth,
            limiter,
            redactor,
            verbose,
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
            let (reason, wait, status) = match outcome {
                Outcome::Done(f) => return Ok(f),
                Outcome::Fail { message, status } => {
                    if status == Some(401) && !reauthed && self.auth.invalidate() {
                        reauthed = true;
                        tracing::info!(
                            "401 from {shown_url}: fetching a new token and retrying once"
                        );
                        continue;
                    }
                    return Err(FetchError {
                        message: self.redactor.redact(&message),
                        status,
                        url: shown_url,
                    });
                }
                Outcome::Retry {
                    reason,
                    wait,
                    status,
                } => (reason, wait, status),
            };
            if attempt >= policy.max_attempts {
                let last = status
                    .map(|s| format!(" (last status {s})"))
                    .unwrap_or_default();
                let message =
                    format!("gave up after {attempt} attempts{last}; last error: {reason}");
                return Err(FetchError {
                    message: self.redactor.redact(&message),
                    status,
                    url: shown_url,
                });
            }
            stats.retrying.store(true, Ordering::Relaxed);
            stats.retries.fetch_add(1, Ordering::Relaxed);
            // The server's wait (already applied run-wide by the limiter) wins
            // over the computed backoff.
            let sleep = match wait {
                Some(_) => Duration::ZERO,
                None => policy.backoff(attempt - 1),
            };
            tracing::warn!(
                "retrying {shown_url} in {} (attempt {}/{}): {}",
                human(wait.unwrap_or(sleep)),
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

    async fn try_once(
        &self,
        req: &PageRequest,
        policy: &RetryPolicy,
        stats: &StreamStats,
    ) -> Outcome {
        let (permit, waited) = self.limiter.acquire().await;
        stats
            .waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
        let mut headers = req.headers.clone();
        let mut url = req.url.clone();
        if self.is_api_origin(&url) || self.extra_origin.as_ref() == Some(&url.origin()) {
            let mut query = Vec::new();
            if let Err(e) = self
                .auth
                .apply(&self.client, &mut headers, &mut query)
                .await
            {
                return Outcome::Fail {
                    message: e,
                    status: None,
                };
            }
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
        }
        let mut rb = self.client.request(req.method.clone(), url.clone());
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(body) = &req.body {
            rb = rb
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(body).unwrap_or_default());
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
                return self.transport_error(&e, policy);
            }
        };
        let status = resp.status().as_u16();
        let final_url = resp.url().clone();
        let resp_headers = resp.headers().clone();
        let server_wait = self.limiter.observe(status, &resp_headers);
        if status == 429 {
            stats.http_429.fetch_add(1, Ordering::Relaxed);
        }
        let body: Bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                drop(permit);
                return self.transport_error(&e, policy);
            }
        };
        drop(permit);
        stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        tracing::debug!(
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
                        status: Some(status),
                    };
                }
                Action::Retry => {
                    return Outcome::Retry {
                        reason: format!("HTTP {status} matched a `retry` response action"),
                        wait: server_wait,
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
                return if retry {
                    Outcome::Retry {
                        reason: message,
                        wait: None,
                        status: Some(status),
                    }
                } else {
                    Outcome::Fail {
                        message,
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

    fn transport_error(&self, e: &reqwest::Error, policy: &RetryPolicy) -> Outcome {
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
        let (kind, retry) = if e.is_timeout() {
            ("timeout", policy.on_timeout)
        } else if e.is_redirect() {
            ("redirect", false)
        } else if e.is_body() || e.is_decode() {
            ("truncated or broken body", policy.on_connection_error)
        } else if e.is_connect() || e.is_request() {
            ("connection error", policy.on_connection_error)
        } else {
            ("request error", policy.on_connection_error)
        };
        let message = format!("{kind}: {chain}");
        if retry {
            Outcome::Retry {
                reason: message,
                wait: None,
                status: None,
            }
        } else {
            Outcome::Fail {
                message,
                status: None,
            }
        }
    }
}
