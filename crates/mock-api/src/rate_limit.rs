//! Rate limiting of data requests: fixed window or token bucket, with the header dialects
//! real APIs use (`Retry-After`, `X-RateLimit-*`, IETF `RateLimit`/`RateLimit-Policy`).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::config::{HeaderStyle, RateLimitAlgorithm, RateLimitMode};
use crate::util::{json, lock};

/// The limiter's verdict for one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    pub(crate) remaining: u32,
    /// Until the quota is back (window end; for a bucket: until full, or until the next token
    /// when none is left).
    pub(crate) reset_after: Duration,
    /// Until a refused request may be retried.
    pub(crate) retry_after: Duration,
}

#[derive(Default)]
pub(crate) struct RateLimiter {
    state: Mutex<Option<State>>,
}

struct State {
    window_start: Instant,
    count: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub(crate) fn check(&self, mode: &RateLimitMode) -> Decision {
        let now = Instant::now();
        let window = mode.window.max(Duration::from_millis(1));
        let limit = mode.limit;
        let mut g = lock(&self.state);
        let st = g.get_or_insert_with(|| State {
            window_start: now,
            count: 0,
            tokens: f64::from(limit),
            last: now,
        });
        match mode.algorithm {
            RateLimitAlgorithm::FixedWindow => {
                let elapsed = now.duration_since(st.window_start);
                if elapsed >= window {
                    let periods = (elapsed.as_nanos() / window.as_nanos()) as u32;
                    st.window_start += window * periods;
                    st.count = 0;
                }
                let allowed = st.count < limit;
                if allowed {
                    st.count += 1;
                }
                let reset_after = (st.window_start + window).saturating_duration_since(now);
                Decision {
                    allowed,
                    remaining: limit.saturating_sub(st.count),
                    reset_after,
                    retry_after: reset_after,
                }
            }
            RateLimitAlgorithm::TokenBucket => {
                let rate = f64::from(limit) / window.as_secs_f64(); // tokens per second
                let elapsed = now.duration_since(st.last).as_secs_f64();
                st.tokens = (st.tokens + elapsed * rate).min(f64::from(limit));
                st.last = now;
                let allowed = st.tokens >= 1.0;
                if allowed {
                    st.tokens -= 1.0;
                }
                let remaining = st.tokens.floor() as u32;
                let secs = |s: f64| {
                    if rate > 0.0 {
                        Duration::from_secs_f64(s.max(0.0) / rate)
                    } else {
                        window
                    }
                };
                let retry_after = secs(1.0 - st.tokens);
                Decision {
                    allowed,
                    remaining,
                    reset_after: if remaining == 0 {
                        retry_after
                    } else {
                        secs(f64::from(limit) - st.tokens)
                    },
                    retry_after,
                }
            }
        }
    }
}

/// The verdict of the limiter of one imitated API (Zendesk, Slack, GitHub), which speaks its
/// own header dialect instead of [`HeaderStyle`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ApiLimit {
    /// The limit the numbers refer to (configured, or nominal).
    pub(crate) limit: u32,
    pub(crate) decision: Decision,
    /// Whether the request must be refused (only ever with a configured limit).
    pub(crate) refused: bool,
}

impl ApiLimit {
    /// Checks one request. A `configured` mode is enforced; without one the request is counted
    /// against `nominal` (`limit` per `window`, fixed window) only to fill the informational
    /// headers, and is never refused.
    pub(crate) fn check(
        limiter: &RateLimiter,
        configured: Option<&RateLimitMode>,
        nominal: (u32, Duration),
    ) -> ApiLimit {
        match configured {
            Some(mode) => {
                let decision = limiter.check(mode);
                ApiLimit {
                    limit: mode.limit,
                    decision,
                    refused: !decision.allowed,
                }
            }
            None => {
                let mode = RateLimitMode::new(nominal.0, nominal.1);
                ApiLimit {
                    limit: nominal.0,
                    decision: limiter.check(&mode),
                    refused: false,
                }
            }
        }
    }

    pub(crate) fn remaining(&self) -> u32 {
        self.decision.remaining
    }

    /// Seconds until the quota is back (rounded up, at least 1).
    pub(crate) fn reset_secs(&self) -> u64 {
        ceil_secs(self.decision.reset_after)
    }

    /// Unix time (seconds) when the quota is back.
    pub(crate) fn reset_epoch(&self) -> u64 {
        epoch_after(self.decision.reset_after)
    }

    /// Seconds a refused request should wait (rounded up, at least 1).
    pub(crate) fn retry_after_secs(&self) -> u64 {
        ceil_secs(self.decision.retry_after)
    }
}

/// Sets a header (ignored if the value is not a valid header value).
pub(crate) fn set_header(headers: &mut HeaderMap, name: &'static str, value: String) {
    set(headers, name, value)
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs_f64().ceil() as u64).max(1)
}

/// Unix time (whole seconds, rounded up) `d` from now.
fn epoch_after(d: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + d).as_secs_f64().ceil() as u64
}

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Adds the informational headers that go on every data response (`XRateLimit`, `Ietf`).
pub(crate) fn add_headers(mode: &RateLimitMode, d: &Decision, headers: &mut HeaderMap) {
    match mode.headers {
        HeaderStyle::XRateLimit => {
            set(headers, "x-ratelimit-limit", mode.limit.to_string());
            set(headers, "x-ratelimit-remaining", d.remaining.to_string());
            set(
                headers,
                "x-ratelimit-reset",
                epoch_after(d.reset_after).to_string(),
            );
        }
        HeaderStyle::Ietf => {
            set(
                headers,
                "ratelimit-policy",
                format!("\"default\";q={};w={}", mode.limit, ceil_secs(mode.window)),
            );
            set(
                headers,
                "ratelimit",
                format!(
                    "\"default\";r={};t={}",
                    d.remaining,
                    ceil_secs(d.reset_after)
                ),
            );
        }
        HeaderStyle::Shopify => {
            let used = u64::from(mode.limit).saturating_sub(u64::from(d.remaining));
            set(
                headers,
                "x-shopify-shop-api-call-limit",
                format!("{used}/{}", mode.limit),
            );
        }
        HeaderStyle::HubSpot => {
            set(headers, "x-hubspot-ratelimit-max", mode.limit.to_string());
            set(
                headers,
                "x-hubspot-ratelimit-remaining",
                d.remaining.to_string(),
            );
            set(
                headers,
                "x-hubspot-ratelimit-interval-milliseconds",
                mode.window.as_millis().to_string(),
            );
        }
        HeaderStyle::None | HeaderStyle::RetryAfter | HeaderStyle::RetryAfterHttpDate => {}
    }
}

/// The answer to a refused request: 429 (or GitHub's 403) with the configured headers.
pub(crate) fn refused(mode: &RateLimitMode, d: &Decision) -> Response {
    let mut resp = if mode.headers == HeaderStyle::HubSpot {
        json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "policyName": "SECONDLY",
            }),
        )
    } else if mode.headers == HeaderStyle::Shopify {
        json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({ "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service." }),
        )
    } else if mode.github_403 {
        json(
            StatusCode::FORBIDDEN,
            &json!({
                "message": "API rate limit exceeded",
                "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
            }),
        )
    } else {
        json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({ "error": "rate limit exceeded", "status": 429 }),
        )
    };
    let headers = resp.headers_mut();
    add_headers(mode, d, headers);
    match mode.headers {
        HeaderStyle::RetryAfter => {
            set(headers, "retry-after", ceil_secs(d.retry_after).to_string());
        }
        HeaderStyle::RetryAfterHttpDate => {
            let at = UNIX_EPOCH + Duration::from_secs(epoch_after(d.retry_after));
            set(headers, "retry-after", httpdate::fmt_http_date(at));
        }
        HeaderStyle::Shopify => {
            set(
                headers,
                "retry-after",
                format!("{:.1}", d.retry_after.as_secs_f64().max(0.1)),
            );
        }
        _ => {}
    }
    if mode.github_403 {
        set(headers, "x-ratelimit-limit", mode.limit.to_string());
        set(headers, "x-ratelimit-remaining", "0".to_string());
        set(
            headers,
            "x-ratelimit-reset",
            epoch_after(d.retry_after).to_string(),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_counts_and_resets() {
        let rl = RateLimiter::default();
        let mode = RateLimitMode::new(2, Duration::from_millis(200));
        assert!(rl.check(&mode).allowed);
        let d = rl.check(&mode);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert!(!rl.check(&mode).allowed);
        std::thread::sleep(Duration::from_millis(220));
        assert!(rl.check(&mode).allowed);
    }

    #[test]
    fn token_bucket_refills() {
        let rl = RateLimiter::default();
        let mode = RateLimitMode::new(2, Duration::from_millis(200))
            .algorithm(RateLimitAlgorithm::TokenBucket);
        assert!(rl.check(&mode).allowed);
        assert!(rl.check(&mode).allowed);
        let d = rl.check(&mode);
        assert!(!d.allowed);
        assert!(d.retry_after <= Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(110));
        assert!(rl.check(&mode).allowed);
    }
}
