//! [`MockConfig`] and the knobs it holds: rate limiting and fault injection.

use std::path::PathBuf;
use std::time::Duration;

/// How to start a [`MockServer`](crate::MockServer). `MockConfig::default()` is a well-behaved
/// server: no latency, no rate limit, no faults, 250 generated records, 2345 Stripe
/// customers, 2345 Zendesk tickets, 345 Slack conversations and the GitHub repositories
/// `acme/api` (250 issues), `acme/web` (120) and `acme/empty` (0).
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The json-server database; `None` loads the repository's
    /// `tests/fixtures/jsonplaceholder/db.json`.
    pub jsonplaceholder: Option<PathBuf>,
    /// Number of records in the `/gen/*` dataset (ids `1..=generated_records`).
    pub generated_records: usize,
    /// Number of customers served by the Stripe imitation `/stripe/v1/customers`.
    pub stripe_customers: usize,
    /// Number of tickets of the Zendesk imitation `/api/v2/incremental/tickets/cursor.json`
    /// (ids `1..=zendesk_tickets`).
    pub zendesk_tickets: usize,
    /// Rate limit of the Zendesk imitation (answered Zendesk's way: `429` + `Retry-After`);
    /// `None` never refuses, and the headers then report a nominal 700 requests per minute.
    /// Only `limit`, `window` and `algorithm` are used.
    pub zendesk_rate_limit: Option<RateLimitMode>,
    /// Contacts of the HubSpot search imitation (`POST /crm/v3/objects/contacts/search`), ids
    /// `1..=hubspot_contacts`. Default 0.
    pub hubspot_contacts: usize,
    /// Pages of the Notion search imitation (`POST /v1/search`). Default 0.
    pub notion_pages: usize,
    /// Number of conversations of the Slack imitation `/api/conversations.list`.
    pub slack_channels: usize,
    /// Rate limit of the Slack imitation (`429`, `Retry-After`,
    /// `{"ok": false, "error": "ratelimited"}`); `None` never refuses. Only `limit`, `window`
    /// and `algorithm` are used.
    pub slack_rate_limit: Option<RateLimitMode>,
    /// Repositories of the GitHub imitation `/repos/{owner}/{repo}/issues`: full name
    /// (`owner/repo`) and number of issues (pull requests included), in the order of their
    /// repository ids (`700001`, `700002`, …).
    pub github_repos: Vec<(String, usize)>,
    /// Rate limit of the GitHub imitation (`403` when `github_403` is set, else `429`, with
    /// `X-RateLimit-Remaining: 0`); `None` never refuses, and the headers then report a nominal
    /// 5000 requests per hour. `limit`, `window`, `algorithm` and `github_403` are used.
    pub github_rate_limit: Option<RateLimitMode>,
    /// Delay added before answering each data request.
    pub latency: Duration,
    /// Rate limiting of data requests; `None` for unlimited.
    pub rate_limit: Option<RateLimitMode>,
    /// Random fault injection on data requests.
    pub faults: FaultConfig,
    /// `expires_in` of tokens issued by `POST /oauth/token`; tokens older than this get 401.
    pub oauth_token_ttl: Duration,
    /// Each `refresh_token` grant answers a new refresh token and voids the
    /// one it used (rotation, as Xero, QuickBooks and Zoho do).
    pub oauth_rotate_refresh_tokens: bool,
    /// Token responses in Salesforce's shape: `instance_url` (the other
    /// origin's URL), `id`, `issued_at`, `signature`, and no `expires_in`.
    pub oauth_salesforce: bool,
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
            zendesk_tickets: 2345,
            zendesk_rate_limit: None,
            hubspot_contacts: 0,
            notion_pages: 0,
            slack_channels: 345,
            slack_rate_limit: None,
            github_repos: vec![
                ("acme/api".to_string(), 250),
                ("acme/web".to_string(), 120),
                ("acme/empty".to_string(), 0),
            ],
            github_rate_limit: None,
            latency: Duration::ZERO,
            rate_limit: None,
            faults: FaultConfig::default(),
            oauth_token_ttl: Duration::from_secs(3600),
            oauth_rotate_refresh_tokens: false,
            oauth_salesforce: false,
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

    /// Sets [`MockConfig::zendesk_tickets`].
    pub fn zendesk_tickets(mut self, n: usize) -> Self {
        self.zendesk_tickets = n;
        self
    }

    /// Sets [`MockConfig::zendesk_rate_limit`].
    pub fn zendesk_rate_limit(mut self, mode: RateLimitMode) -> Self {
        self.zendesk_rate_limit = Some(mode);
        self
    }

    /// Sets [`MockConfig::hubspot_contacts`].
    pub fn hubspot_contacts(mut self, n: usize) -> Self {
        self.hubspot_contacts = n;
        self
    }

    /// Sets [`MockConfig::notion_pages`].
    pub fn notion_pages(mut self, n: usize) -> Self {
        self.notion_pages = n;
        self
    }

    /// Sets [`MockConfig::slack_channels`].
    pub fn slack_channels(mut self, n: usize) -> Self {
        self.slack_channels = n;
        self
    }

    /// Sets [`MockConfig::slack_rate_limit`].
    pub fn slack_rate_limit(mut self, mode: RateLimitMode) -> Self {
        self.slack_rate_limit = Some(mode);
        self
    }

    /// Adds the GitHub repository `full_name` (`owner/repo`) with `issues` issues to
    /// [`MockConfig::github_repos`], or changes its number of issues if it is already there.
    pub fn github_repo(mut self, full_name: impl Into<String>, issues: usize) -> Self {
        let name = full_name.into();
        match self
            .github_repos
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(r) => r.1 = issues,
            None => self.github_repos.push((name, issues)),
        }
        self
    }

    /// Replaces [`MockConfig::github_repos`].
    pub fn github_repos(mut self, repos: Vec<(String, usize)>) -> Self {
        self.github_repos = repos;
        self
    }

    /// Sets [`MockConfig::github_rate_limit`].
    pub fn github_rate_limit(mut self, mode: RateLimitMode) -> Self {
        self.github_rate_limit = Some(mode);
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

    /// Sets [`MockConfig::oauth_rotate_refresh_tokens`].
    pub fn oauth_rotate_refresh_tokens(mut self, yes: bool) -> Self {
        self.oauth_rotate_refresh_tokens = yes;
        self
    }

    /// Sets [`MockConfig::oauth_salesforce`].
    pub fn oauth_salesforce(mut self, yes: bool) -> Self {
        self.oauth_salesforce = yes;
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
    /// Shopify's REST Admin API: `X-Shopify-Shop-Api-Call-Limit: USED/LIMIT` on every data
    /// response, and `Retry-After: 2.0` on 429.
    Shopify,
    /// HubSpot: `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds` on every
    /// data response; a 429 carries only those and HubSpot's error body.
    HubSpot,
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
    /// `503` with `Retry-After: 1`, as a load balancer answers while it sheds load.
    Status503RetryAfter,
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
            FaultKind::Status503RetryAfter => "status503_retry_after",
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
            "503ra" | "status503_retry_after" => FaultKind::Status503RetryAfter,
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
