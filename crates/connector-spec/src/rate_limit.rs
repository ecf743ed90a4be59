//! Client-side quotas and which server rate-limit headers to honour.

use crate::{HumanDuration, Rate};
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
    /// This API's own rate-limit headers, read besides `honor_headers`
    /// (Shopify's `X-Shopify-Shop-Api-Call-Limit: 32/40`, HubSpot's
    /// `X-HubSpot-RateLimit-Remaining`, a wait in any named header).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_headers: Vec<CustomRateHeaders>,
}

/// One API's own rate-limit headers: the budget left (`remaining`, or
/// `used_of_limit`) with when it renews (`reset`, or a fixed `window`),
/// and/or a wait to honour (`wait`). Requests go at full speed until the
/// budget runs low (a tenth of the limit, or twice the concurrency), are
/// then spread over the time left, and pause at zero until it renews.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRateHeaders {
    /// Header with the requests left in the current window, e.g.
    /// `X-HubSpot-RateLimit-Remaining`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<String>,
    /// Header with the budget as `used/limit`, e.g. Shopify's
    /// `X-Shopify-Shop-Api-Call-Limit: 32/40` (8 left of 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_of_limit: Option<String>,
    /// Header with the window's whole budget, e.g. `X-HubSpot-RateLimit-Max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Header with when the budget renews: seconds from now, or a Unix time
    /// (a value above 10^9), e.g. `X-RateLimit-Reset-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
    /// How long the budget takes to renew when no `reset` header says, e.g.
    /// `10s` (HubSpot's interval) or `20s` (Shopify's bucket of 40 drains at
    /// 2 a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// Header with a wait in seconds before the next request, honoured like
    /// `Retry-After`, e.g. `X-Retry-In`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests: None,
            burst: None,
            max_concurrency: None,
            honor_headers: all_headers(),
            custom_headers: Vec::new(),
        }
    }
}

/// A family of rate-limit response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitHeaders {
    /// `Retry-After`, as delta-seconds or an HTTP date.
    RetryAfter,
    /// `X-RateLimit-Limit`/`-Remaining`/`-Reset` (reset as epoch or delta
    /// seconds), also spelt `X-Rate-Limit-*` (Zendesk, X).
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
