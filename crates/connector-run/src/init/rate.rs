//! Rate limits announced by the first response. Only the IETF
//! `RateLimit-Policy` header states a window, so only it becomes a
//! `requests:` quota; the other dialects are honoured by the engine anyway
//! and are named in a comment.

use connector_engine::probe::ProbeResponse;

/// What the headers say about the rate limit.
#[derive(Debug, Clone, PartialEq)]
pub struct RateFinding {
    /// A quota for `rate_limit.requests`, when the server states one.
    pub requests: Option<String>,
    pub why: String,
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
        };
    }
    let seen: Vec<(&str, &str)> = [
        get("x-ratelimit-limit", "X-RateLimit-Limit"),
        get("x-ratelimit-remaining", "X-RateLimit-Remaining"),
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
            why: "none announced — no `X-RateLimit-*`, `RateLimit*` or `Retry-After` header on the first response; server rate-limit headers are honoured by default if they appear".into(),
        };
    }
    let limit = resp
        .header("x-ratelimit-limit")
        .or_else(|| resp.header("ratelimit-limit"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let example = limit
        .map(|l| format!(" (e.g. `requests: {l}/h` if the window is an hour)"))
        .unwrap_or_default();
    RateFinding {
        requests: None,
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
