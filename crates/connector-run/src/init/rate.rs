//! Rate limits announced by the first response. Only the IETF
//! `RateLimit-Policy` header states a window, so only it becomes a
//! `requests:` quota; the standard dialects are honoured by the engine
//! anyway and are named in a comment; an API's own dialect that init knows
//! (Shopify's call limit, HubSpot's headers) becomes a `custom_headers`
//! entry.

use connector_engine::probe::ProbeResponse;

/// What the headers say about the rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateFinding {
    /// A quota for `rate_limit.requests`, when the server states one.
    pub requests: Option<String>,
    /// A `rate_limit.custom_headers` entry (flow YAML), for a dialect the
    /// engine reads only when told.
    pub custom: Option<String>,
    pub why: String,
}

/// Shopify's and HubSpot's own headers, as a `custom_headers` entry.
fn custom_dialect(resp: &ProbeResponse) -> Option<(String, String)> {
    if let Some(v) = resp.header("x-shopify-shop-api-call-limit") {
        return Some((
            "{ used_of_limit: X-Shopify-Shop-Api-Call-Limit, window: 20s }".into(),
            format!(
                "the first response had `X-Shopify-Shop-Api-Call-Limit: {v}` (used/limit of Shopify's leaky bucket, which drains in about 20s), read through `custom_headers`"
            ),
        ));
    }
    if let Some(v) = resp.header("x-hubspot-ratelimit-remaining") {
        let window = resp
            .header("x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map(|ms| format!("{ms}ms"))
            .unwrap_or_else(|| "10s".into());
        let limit = resp
            .header("x-hubspot-ratelimit-max")
            .map(|_| ", limit: X-HubSpot-RateLimit-Max")
            .unwrap_or_default();
        return Some((
            format!("{{ remaining: X-HubSpot-RateLimit-Remaining{limit}, window: {window} }}"),
            format!(
                "the first response had `X-HubSpot-RateLimit-Remaining: {v}` with an interval of {window}, read through `custom_headers`"
            ),
        ));
    }
    None
}

/// `q=5` and `w=1` of the first policy item; the older draft writes `100;w=60`.
fn policy(value: &str) -> Option<(u64, u64)> {
    let item = value.split(',').next()?;
    let mut q = None;
    let mut w = None;
    for (i, part) in item.split(';').enumerate() {
        let part = part.trim();
        match part.split_once('=') {
            Some(("q", v)) => q = v.trim().parse().ok(),
            Some(("w", v)) => w = v.trim().parse().ok(),
            None if i == 0 => q = part.parse().ok(),
            _ => {}
        }
    }
    Some((q?, w?)).filter(|(q, w)| *q > 0 && *w > 0)
}

/// A rate in the spec's notation: `5/s`, `600/min`, `100/15s`.
fn rate(q: u64, w: u64) -> String {
    match w {
        1 => format!("{q}/s"),
        60 => format!("{q}/min"),
        3600 => format!("{q}/h"),
        _ => format!("{q}/{w}s"),
    }
}

fn quoted(headers: &[(&str, &str)]) -> String {
    let parts: Vec<String> = headers.iter().map(|(k, v)| format!("`{k}: {v}`")).collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub fn find(resp: &ProbeResponse) -> RateFinding {
    if let Some((custom, why)) = custom_dialect(resp) {
        return RateFinding {
            requests: None,
            custom: Some(custom),
            why,
        };
    }
    let get = |name: &'static str, shown: &'static str| resp.header(name).map(|v| (shown, v));
    if let Some((shown, v)) = get("ratelimit-policy", "RateLimit-Policy")
        && let Some((q, w)) = policy(v)
    {
        let r = rate(q, w);
        return RateFinding {
            why: format!(
                "the first response had {}: {q} requests per {w}s, so the quota is `{r}`; the server's `RateLimit` headers are honoured too",
                quoted(&[(shown, v)])
            ),
            requests: Some(r),
            custom: None,
        };
    }
    let seen: Vec<(&str, &str)> = [
        get("x-ratelimit-limit", "X-RateLimit-Limit"),
        get("x-ratelimit-remaining", "X-RateLimit-Remaining"),
        get("x-rate-limit-limit", "X-Rate-Limit-Limit"),
        get("x-rate-limit-remaining", "X-Rate-Limit-Remaining"),
        get("ratelimit-limit", "RateLimit-Limit"),
        get("ratelimit", "RateLimit"),
        get("ratelimit-policy", "RateLimit-Policy"),
        get("retry-after", "Retry-After"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if seen.is_empty() {
        return RateFinding {
            requests: None,
            custom: None,
            why: "none announced — no `X-RateLimit-*`, `RateLimit*` or `Retry-After` header on the first response; server rate-limit headers are honoured by default if they appear".into(),
        };
    }
    let limit = resp
        .header("x-ratelimit-limit")
        .or_else(|| resp.header("x-rate-limit-limit"))
        .or_else(|| resp.header("x-rate-limit"))
        .or_else(|| resp.header("ratelimit-limit"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let example = limit
        .map(|l| format!(" (e.g. `requests: {l}/h` if the window is an hour)"))
        .unwrap_or_default();
    RateFinding {
        requests: None,
        custom: None,
        why: format!(
            "the first response had {}; the engine honours these headers by default, but they do not state the window, so no quota is written: add `rate_limit: {{ requests: … }}` from the API's docs{example}",
            quoted(&seen)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(policy("\"default\";q=5;w=1"), Some((5, 1)));
        assert_eq!(policy("100;w=60"), Some((100, 60)));
        assert_eq!(policy("\"x\";w=60"), None);
        assert_eq!(rate(5, 1), "5/s");
        assert_eq!(rate(100, 900), "100/900s");
    }
}
