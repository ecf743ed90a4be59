//! Retry policy: which failures retry, and exponential backoff with full
//! jitter between tries. A server's `Retry-After` wins over the backoff.

use crate::error::Result;
use connector_spec::{Action, Retry};
use rand::Rng;
use std::time::Duration;

/// A compiled response action.
#[derive(Debug, Clone)]
pub struct ResponseRule {
    pub status: Vec<u16>,
    pub body_contains: Option<String>,
    pub body_path: Option<serde_json_path::JsonPath>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Longest single wait, asked by a server or backoff.
    pub max_wait: Duration,
    pub statuses: Vec<u16>,
    pub on_timeout: bool,
    pub on_connection_error: bool,
    pub on_invalid_json: bool,
    pub rules: Vec<ResponseRule>,
}

impl RetryPolicy {
    pub fn compile(r: &Retry) -> Result<Self> {
        let rules = r
            .response_actions
            .iter()
            .map(|a| ResponseRule {
                status: a.status.clone(),
                body_contains: a.body_contains.clone(),
                body_path: a
                    .body_path
                    .as_ref()
                    .and_then(|p| serde_json_path::JsonPath::parse(p.as_str()).ok()),
                action: a.action,
            })
            .collect();
        Ok(RetryPolicy {
            max_attempts: r.max_attempts.max(1),
            base: r.backoff_base.parse().unwrap_or(Duration::from_millis(500)),
            cap: r.backoff_cap.parse().unwrap_or(Duration::from_secs(30)),
            max_wait: r.max_wait.parse().unwrap_or(Duration::from_secs(600)),
            statuses: r.statuses.clone(),
            on_timeout: r.on_timeout,
            on_connection_error: r.on_connection_error,
            on_invalid_json: r.on_invalid_json,
            rules,
        })
    }

    /// Full jitter: a random wait in `[0, min(cap, base * 2^retry))`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(rand::rng().random_range(0.0..ceiling.as_secs_f64()))
    }

    /// The first rule matching a response, if any.
    pub fn action_for(
        &self,
        status: u16,
        body: &[u8],
        json: Option<&serde_json::Value>,
    ) -> Option<Action> {
        self.rules.iter().find_map(|r| {
            let status_ok = r.status.is_empty() || r.status.contains(&status);
            let contains_ok = r
                .body_contains
                .as_ref()
                .is_none_or(|needle| String::from_utf8_lossy(body).contains(needle.as_str()));
            let path_ok = r
                .body_path
                .as_ref()
                .is_none_or(|p| json.is_some_and(|j| !p.query(j).is_empty()));
            (status_ok && contains_ok && path_ok).then_some(r.action)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::compile(&Retry::default()).unwrap();
        for retry in 0..30 {
            assert!(p.backoff(retry) <= p.cap);
        }
        let waits: std::collections::HashSet<u128> =
            (0..20).map(|_| p.backoff(3).as_micros()).collect();
        assert!(waits.len() > 1, "jitter varies the wait");
    }
}
