//! [`MockConfig`] and the knobs it holds: rate limiting and fault injection.

use std::path::PathBuf;
use std::time::Duration;

/// How to start a [`MockServer`](crate::MockServer). `MockConfig::default()` is a well-behaved
/// server: no latency, no rate limit, no faults, 250 generated records, 2345 Stripe
/// customers.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The json-server database; `None` loads the repository's
    /// `tests/fixtures/jsonplaceholder/db.json`.
    pub jsonplaceholder: Option<PathBuf>,
    /// Number of records in the `/gen/*` dataset (ids `1..=generated_records`).
    pub generated_records: usize,
    /// Number of customers served by the Stripe imitation `/stripe/v1/customers`.
    pub stripe_customers: usize,
    /// Delay added before answering each data request.
    pub latency: Duration,
    /// Rate limiting of data requests; `None` for unlimited.
    pub rate_limit: Option<RateLimitMode>,
    /// Random fault injection on data requests.
    pub faults: FaultConfig,
    /// `expires_in` of tokens issued by `POST /oauth/token`; tokens older than this get 401.
    pub oauth_token_ttl: Duration,
    /// Port of the main listener on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Port of the second ("other origin") listener; 0 picks a free one.
    pub other_port: u16,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            jsonplaceholder: None,
            generated_records: 250,
            stripe_customers: 2345,
            latency: Duration::ZERO,
            rate_limit: None,
            faults: FaultConfig::default(),
            oauth_token_ttl: Duration::from_secs(3600),
            port: 0,
            other_port: 0,
        }
    }
}

impl MockConfig {
    /// Sets [`MockConfig::generated_records`].
    pub fn generated_records(mut self, n: usize) -> Self {
        self.generated_records = n;
        self
    }

    /// Sets [`MockConfig::stripe_customers`].
    pub fn stripe_customers(mut self, n: usize) -> Self {
        self.stripe_customers = n;
        self
    }

    /// Sets [`MockConfig::latency`].
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets [`MockConfig::rate_limit`].
    pub fn rate_limit(mut self, mode: RateLimitMode) -> Self {
        self.rate_limit = Some(mode);
        self
    }

    /// Sets [`MockConfig::faults`].
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets [`MockConfig::oauth_token_ttl`].
    pub fn oauth_token_ttl(mut self, ttl: Duration) -> Self {
        self.oauth_token_ttl = ttl;
        self
    }

    /// Sets [`MockConfig::jsonplaceholder`].
    pub fn jsonplaceholder(mut self, path: impl Into<PathBuf>) -> Self {
        self.jsonplaceholder = Some(path.into());
        self
    }
}

/// Rate limiting of data requests (shared by both listeners).
#[derive(Clone, Debug)]
pub struct RateLimitMode {
    /// Requests allowed per `window` (fixed window), or bucket capacity (token bucket).
    pub limit: u32,
    /// Window length, or the time the token bucket takes to refill completely.
    pub window: Duration,
    pub algorithm: RateLimitAlgorithm,
    /// Which rate-limit headers to send.
    pub headers: HeaderStyle,
    /// Answer `403` with `X-RateLimit-Remaining: 0` (GitHub style) instead of `429`.
    pub github_403: bool,
}

impl RateLimitMode {
    /// `limit` requests per `window`, fixed window, `Retry-After` on 429.
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimitMode {
            limit,
            window,
            algorithm: RateLimitAlgorithm::FixedWindow,
            headers: HeaderStyle::RetryAfter,
            github_403: false,
        }
    }

    pub fn algorithm(mut self, algorithm: RateLimitAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn headers(mut self, headers: HeaderStyle) -> Self {
        self.headers = headers;
        self
    }

    pub fn github_403(mut self, yes: bool) -> Self {
        self.github_403 = yes;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RateLimitAlgorithm {
    /// At most `limit` requests in each window; the first window starts at the first request.
    #[default]
    FixedWindow,
    /// A bucket of `limit` tokens refilled continuously at `limit / window`.
    TokenBucket,
}

/// Rate-limit headers the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeaderStyle {
    /// No headers at all, not even on 429.
    None,
    /// `Retry-After: <seconds>` on 429 (rounded up, at least 1).
    #[default]
    RetryAfter,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds) on
    /// every data response.
    XRateLimit,
    /// IETF draft: `RateLimit-Policy: "default";q=LIMIT;w=WINDOW` and
    /// `RateLimit: "default";r=REMAINING;t=SECONDS` on every data response.
    Ietf,
    /// `Retry-After: <HTTP-date>` on 429.
    RetryAfterHttpDate,
}

/// Random, seeded fault injection on data requests.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// Probability (0..=1) that a data request gets a fault.
    pub rate: f64,
    /// Faults to pick from (uniformly); empty means `[Status500, Status502, Status503]`.
    pub kinds: Vec<FaultKind>,
    /// Seed of the random generator: the same requests in the same order get the same faults.
    pub seed: u64,
    /// The first `fail_first` data requests always get a fault, taking `kinds` in turn
    /// (deterministic retry tests); the random `rate` applies after them.
    pub fail_first: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            rate: 0.0,
            kinds: Vec::new(),
            seed: 42,
            fail_first: 0,
        }
    }
}

impl FaultConfig {
    /// Faults of `kinds` with probability `rate`.
    pub fn random(rate: f64, kinds: Vec<FaultKind>, seed: u64) -> Self {
        FaultConfig {
            rate,
            kinds,
            seed,
            fail_first: 0,
        }
    }

    /// The first `n` data requests fail with `kinds` in turn, the rest succeed.
    pub fn first(n: u32, kinds: Vec<FaultKind>) -> Self {
        FaultConfig {
            fail_first: n,
            kinds,
            ..FaultConfig::default()
        }
    }

    pub(crate) fn effective_kinds(&self) -> Vec<FaultKind> {
        if self.kinds.is_empty() {
            vec![
                FaultKind::Status500,
                FaultKind::Status502,
                FaultKind::Status503,
            ]
        } else {
            self.kinds.clone()
        }
    }
}

/// One kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `500` with a JSON error body.
    Status500,
    /// `502` with a JSON error body.
    Status502,
    /// `503` with a JSON error body.
    Status503,
    /// Close the TCP connection without writing a single byte.
    DropConnection,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// The real response's headers with a `Content-Length` of the full body, but only half of
    /// the body is written before the connection is closed.
    TruncatedBody,
    /// `200`, `Content-Type: application/json`, a body that is not valid JSON.
    GarbageJson,
    /// `200`, `Content-Type: text/html`, a proxy error page.
    Html200,
}

impl FaultKind {
    /// Stable name, used as the key of [`Counters::faults_by_kind`](crate::Counters).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Status500 => "status500",
            FaultKind::Status502 => "status502",
            FaultKind::Status503 => "status503",
            FaultKind::DropConnection => "drop_connection",
            FaultKind::Slow(_) => "slow",
            FaultKind::TruncatedBody => "truncated_body",
            FaultKind::GarbageJson => "garbage_json",
            FaultKind::Html200 => "html200",
        }
    }

    /// Parses a name as printed by [`FaultKind::name`]; `slow` may carry milliseconds as
    /// `slow:250` (default 2000).
    pub fn parse(s: &str) -> Option<FaultKind> {
        let s = s.trim().to_ascii_lowercase();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.to_string(), Some(a.to_string())),
            None => (s, None),
        };
        Some(match name.as_str() {
            "500" | "status500" => FaultKind::Status500,
            "502" | "status502" => FaultKind::Status502,
            "503" | "status503" => FaultKind::Status503,
            "drop" | "drop_connection" => FaultKind::DropConnection,
            "slow" => FaultKind::Slow(Duration::from_millis(match arg {
                Some(a) => a.parse().ok()?,
                None => 2000,
            })),
            "truncated" | "truncated_body" => FaultKind::TruncatedBody,
            "garbage" | "garbage_json" => FaultKind::GarbageJson,
            "html" | "html200" => FaultKind::Html200,
            _ => return None,
        })
    }
}
