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
//!
//! By role: `send.rs` (what goes out, what comes back), `resolve.rs`
//! (what a response means), `decode.rs` (a success's body), `error.rs`
//! (why a fetch failed); the retry loop is [`HttpClient::fetch`].

mod decode;
mod error;
mod resolve;
mod send;
pub mod tls;

pub use decode::{DecodeError, decode};
pub use error::{FetchError, FetchErrorKind, chain as error_chain, classify};
pub use resolve::{Resolution, resolve};
pub use send::encode_body;

use crate::auth::Authenticator;
use crate::rate_limit::{RateLimiter, ServerWait, human};
use crate::raw_records::RawRecords;
use crate::retry::RetryPolicy;
use crate::secret::{Redactor, is_sensitive_name};
use crate::stats::StreamStats;
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
    /// With `raw_path`: the top-level fields each raw record must give a
    /// value (the primary key), looked for while the body is decoded, off
    /// the page loop (`RawRecords::flag_keyless`).
    pub raw_keys: Option<std::sync::Arc<Vec<String>>>,
    /// The stream's own quota, waited for after the run's.
    pub quota: Option<Arc<crate::rate_limit::StreamQuota>>,
    /// Send `body` form-encoded (`application/x-www-form-urlencoded`).
    pub form: bool,
    /// The stream the request is for (a recorded exchange's cassette).
    pub stream: Arc<str>,
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

pub struct HttpClient {
    pub client: reqwest::Client,
    /// The API's origin: `base_url`'s, or the one a token response named.
    origin: std::sync::RwLock<url::Origin>,
    pub auth: Authenticator,
    pub limiter: Arc<RateLimiter>,
    pub redactor: Redactor,
    verbose: u8,
    max_response_size: u64,
    /// Records every exchange, or answers from cassettes instead of the network.
    tape: Option<Arc<crate::cassette::Tape>>,
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
    let (tls, _) = tls::client_config()?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
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
            origin: std::sync::RwLock::new(base.origin()),
            auth,
            limiter,
            redactor,
            verbose,
            max_response_size,
            tape: None,
        }
    }

    /// Records or replays this client's exchanges.
    pub fn with_tape(mut self, tape: Option<Arc<crate::cassette::Tape>>) -> Self {
        self.tape = tape;
        self
    }

    /// True when responses come from cassettes: nothing waits.
    pub fn is_replay(&self) -> bool {
        self.tape.as_ref().is_some_and(|t| t.is_replay())
    }

    /// Moves the API to another origin (the one a token response named):
    /// from now on it, and only it, receives credentials.
    pub fn set_origin(&self, base: &Url) {
        *self.origin.write().unwrap() = base.origin();
    }

    /// The API's base URL named by the token response (`base_url_path`),
    /// fetching a token when none was fetched yet.
    pub async fn token_base_url(&self) -> Result<Option<String>, String> {
        self.auth.base_url(&self.client).await
    }

    /// True when `url` belongs to the API's origin and may receive credentials.
    pub fn is_api_origin(&self, url: &Url) -> bool {
        url.origin() == *self.origin.read().unwrap()
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
            // The server's wait wins over the computed backoff.
            let sleep = match &wait {
                _ if self.is_replay() => Duration::ZERO,
                // A rate-limit answer's wait holds the whole run, in the limiter.
                Some(w) if w.run_wide => Duration::ZERO,
                // A fault's wait (a 503 with `Retry-After`) holds this request only.
                Some(w) => w.wait,
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
            Some(q) if !self.is_replay() => waited + q.acquire().await,
            _ => waited,
        };
        stats
            .waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
        let (url, headers, body) = match self.outgoing(req).await {
            Ok(x) => x,
            Err(outcome) => return outcome,
        };
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
        let recorded = self.tape.as_ref().map(|_| {
            crate::cassette::recorded_request(
                &self.redactor,
                req.method.as_str(),
                &url,
                body.as_deref(),
            )
        });
        let (status, final_url, resp_headers, server_wait, body) = match self.tape.as_deref() {
            Some(crate::cassette::Tape::Replay(player)) => {
                let answer = match player.answer(recorded.as_ref().expect("made for a tape")) {
                    Ok(a) => a,
                    Err(message) => {
                        return Outcome::Fail {
                            message,
                            kind: FetchErrorKind::Other,
                            status: None,
                        };
                    }
                };
                let headers = answer.header_map();
                let server_wait = self.limiter.observe(answer.status, &headers);
                let body = bytes::Bytes::from(answer.body_bytes());
                (answer.status, url.clone(), headers, server_wait, body)
            }
            _ => {
                let mut rb = self.client.request(req.method.clone(), url.clone());
                for (k, v) in &headers {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                if let Some(body) = body {
                    let ct = if req.form {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/json"
                    };
                    rb = rb.header("Content-Type", ct).body(body);
                }
                self.limiter.before_send().await;
                let resp = match rb.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        drop(permit);
                        return transport_error(&e, policy);
                    }
                };
                let status = resp.status().as_u16();
                let final_url = resp.url().clone();
                let resp_headers = resp.headers().clone();
                let server_wait = self.limiter.observe_sent(status, &resp_headers, started);
                let body = match self.read_body(resp, self.max_response_size).await {
                    Ok(b) => b,
                    Err(outcome) => {
                        drop(permit);
                        return match outcome {
                            Outcome::Retry { reason, .. } if !policy.on_connection_error => {
                                Outcome::Fail {
                                    message: reason,
                                    kind: FetchErrorKind::Body,
                                    status: Some(status),
                                }
                            }
                            Outcome::Fail { message, kind, .. } => Outcome::Fail {
                                message,
                                kind,
                                status: Some(status),
                            },
                            other => other,
                        };
                    }
                };
                if let (Some(crate::cassette::Tape::Record(rec)), Some(r)) =
                    (self.tape.as_deref(), recorded)
                    && let Err(e) =
                        rec.write(&self.redactor, &req.stream, r, status, &resp_headers, &body)
                {
                    return Outcome::Fail {
                        message: format!("recording the exchange failed: {e}"),
                        kind: FetchErrorKind::Other,
                        status: Some(status),
                    };
                }
                (status, final_url, resp_headers, server_wait, body)
            }
        };
        // Rate-limit answers: 429s, and GitHub's 403 with nothing remaining.
        if status == 429 || (status == 403 && server_wait.as_ref().is_some_and(|w| w.run_wide)) {
            stats.http_429.fetch_add(1, Ordering::Relaxed);
        }
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
        // once, by `decode`, after the status is resolved.
        let json: Option<serde_json::Value> = if policy.rules.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };
        let status_of = |kind: FetchErrorKind| (kind, Some(status));
        match resolve(
            status,
            &resp_headers,
            &body,
            json.as_ref(),
            policy,
            server_wait,
        ) {
            Resolution::Ok => {}
            Resolution::Ignore => return Outcome::Done(Fetched::Ignored),
            Resolution::Stop => return Outcome::Done(Fetched::Stop),
            Resolution::Retry { reason, wait } => {
                let (kind, status) = status_of(FetchErrorKind::Status(status));
                return Outcome::Retry {
                    reason,
                    wait,
                    kind,
                    status,
                };
            }
            Resolution::Fail { kind, message } => {
                return Outcome::Fail {
                    message: self.redactor.redact(&message),
                    kind,
                    status: Some(status),
                };
            }
        }
        match decode(
            &body,
            &resp_headers,
            json,
            req.raw_path.as_deref().map(Vec::as_slice),
            req.raw_keys.as_deref().map(Vec::as_slice),
            policy,
        ) {
            Ok((json, raw)) => Outcome::Done(Fetched::Page(PageResponse {
                url: final_url,
                status,
                headers: resp_headers,
                json,
                bytes: body.len(),
                raw,
            })),
            Err(DecodeError {
                message,
                retry: true,
                kind,
            }) => Outcome::Retry {
                reason: message,
                wait: None,
                kind,
                status: Some(status),
            },
            Err(DecodeError { message, kind, .. }) => Outcome::Fail {
                message,
                kind,
                status: Some(status),
            },
        }
    }
}

/// A transport error, retried or not by the policy. A redirect the client
/// refused fails.
fn transport_error(e: &reqwest::Error, policy: &RetryPolicy) -> Outcome {
    let chain = error::chain(e);
    let kind = classify(e);
    if kind == FetchErrorKind::Other && e.is_redirect() {
        return Outcome::Fail {
            message: format!("redirect: {chain}"),
            kind,
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
    let retry = match kind {
        FetchErrorKind::Timeout => policy.on_timeout,
        _ => policy.on_connection_error,
    };
    let message = format!("{what}: {chain}");
    if retry {
        Outcome::Retry {
            reason: message,
            wait: None,
            kind,
            status: None,
        }
    } else {
        Outcome::Fail {
            message,
            kind,
            status: None,
        }
    }
}

/// `268435456` → `256 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}
