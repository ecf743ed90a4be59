//! Client-side quotas and which server rate-limit headers to honour.

use crate::Rate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request quota and concurrency bound. At connector level it is shared by
/// every stream of a run; on a stream it adds a second, stream-only quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Allowed request rate, e.g. `20/s`, `600/min`. Default: no client-side quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Rate>,
    /// Requests that may go at once before the rate applies. Default `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Most requests in flight at once. Default `4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Server headers to honour. Default: all of them.
    #[serde(default = "all_headers")]
    pub honor_headers: Vec<RateLimitHeaders>,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests: None,
            burst: None,
            max_concurrency: None,
            honor_headers: all_headers(),
        }
    }
}

/// A family of rate-limit response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitHeaders {
    /// `Retry-After`, as delta-seconds or an HTTP date.
    RetryAfter,
    /// `X-RateLimit-Limit`/`-Remaining`/`-Reset` (reset as epoch or delta seconds).
    XRatelimit,
    /// IETF `RateLimit`/`RateLimit-Policy`, and the older `RateLimit-Limit`/`-Remaining`/`-Reset`.
    Ietf,
}

fn all_headers() -> Vec<RateLimitHeaders> {
    vec![
        RateLimitHeaders::RetryAfter,
        RateLimitHeaders::XRatelimit,
        RateLimitHeaders::Ietf,
    ]
}
