//! Retry policy: which failures retry, and exponential backoff with full
//! jitter between tries. A server's `Retry-After` wins over the backoff.

use crate::error::{EngineError, Result};
use connector_spec::Retry;
use rand::Rng;
use std::time::Duration;

/// What a matching response rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    /// Treat the response as an empty page.
    Ignore,
    Fail,
    /// End the partition cleanly.
    Stop,
    /// Read the response as a page.
    Success,
}

impl From<connector_spec::Action> for Action {
    fn from(a: connector_spec::Action) -> Action {
        match a {
            connector_spec::Action::Retry => Action::Retry,
            connector_spec::Action::Ignore => Action::Ignore,
            connector_spec::Action::Fail => Action::Fail,
            connector_spec::Action::Stop => Action::Stop,
            connector_spec::Action::Success => Action::Success,
        }
    }
}

/// A compiled response action.
#[derive(Debug, Clone)]
pub struct ResponseRule {
    pub status: Vec<u16>,
    pub body_contains: Option<String>,
    pub body_path: Option<serde_json_path::JsonPath>,
    /// An expression over `response`, `status` and `headers`.
    pub when: Option<(
        crate::template::Templates,
        crate::template::CompiledTemplate,
    )>,
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
    /// Compiles a retry block; durations and JSONPaths that do not parse are
    /// errors (`validate` reports them first, with their lines).
    pub fn compile(r: &Retry) -> Result<Self> {
        let Retry {
            max_attempts,
            backoff_base,
            backoff_cap,
            max_wait,
            statuses,
            on_timeout,
            on_connection_error,
            on_invalid_json,
            response_actions,
        } = r;
        let bad = |what: &str, e: String| EngineError::Plan(format!("retry.{what}: {e}"));
        let rules = response_actions
            .iter()
            .map(|a| {
                Ok(ResponseRule {
                    status: a.status.clone(),
                    body_contains: a.body_contains.clone(),
                    body_path: a
                        .body_path
                        .as_ref()
                        .map(|p| {
                            serde_json_path::JsonPath::parse(p.as_str())
                                .map_err(|e| bad("response_actions.body_path", e.to_string()))
                        })
                        .transpose()?,
                    when: a
                        .when
                        .as_deref()
                        .map(|w| {
                            let mut b = crate::template::TemplatesBuilder::default();
                            let c = b.add_condition(w)?;
                            Ok::<_, EngineError>((b.build(), c))
                        })
                        .transpose()?,
                    action: a.action.into(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(RetryPolicy {
            max_attempts: (*max_attempts).max(1),
            base: backoff_base.parse().map_err(|e| bad("backoff_base", e))?,
            cap: backoff_cap.parse().map_err(|e| bad("backoff_cap", e))?,
            max_wait: max_wait.parse().map_err(|e| bad("max_wait", e))?,
            statuses: statuses.clone(),
            on_timeout: *on_timeout,
            on_connection_error: *on_connection_error,
            on_invalid_json: *on_invalid_json,
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

    /// The first rule matching a response, if any. A `when` that fails to
    /// evaluate does not match.
    pub fn action_for(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        json: Option<&serde_json::Value>,
    ) -> Option<Action> {
        self.rules.iter().find_map(|r| {
            let when_ok = r.when.as_ref().is_none_or(|(templates, c)| {
                let headers: std::collections::BTreeMap<&str, &str> = headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                    .collect();
                let ctx = minijinja::context! {
                    response => crate::template::to_value(&json),
                    status => status,
                    headers => crate::template::to_value(&headers),
                };
                templates.test(c, &ctx).unwrap_or(false)
            });
            if !when_ok {
                return None;
            }
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
