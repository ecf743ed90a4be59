//! Retry policy and response actions.

use crate::{HumanDuration, JsonPath};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What retries, how often, and how long to wait between tries. The wait is
/// exponential backoff with full jitter; a server's `Retry-After` wins over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries per request, the first included. Default `5`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Backoff base: the first retry waits up to this long. Default `500ms`.
    #[serde(default = "default_base")]
    pub backoff_base: HumanDuration,
    /// Longest single wait between tries. Default `30s`.
    #[serde(default = "default_cap")]
    pub backoff_cap: HumanDuration,
    /// Longest single wait a server may ask for (`Retry-After`, a rate-limit
    /// reset) or backoff may take. A server that asks for longer ends the
    /// stream with an error naming the header and the wait; the state is
    /// saved, so a later run resumes. Default `10m`.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
    /// HTTP statuses that retry, each 100–599. Default `[429, 500, 502, 503, 504]`.
    #[serde(default = "default_statuses")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub statuses: Vec<u16>,
    /// Retry timeouts. Default `true`.
    #[serde(default = "yes")]
    pub on_timeout: bool,
    /// Retry refused, reset and dropped connections and truncated bodies. Default `true`.
    #[serde(default = "yes")]
    pub on_connection_error: bool,
    /// Retry a body that is not valid JSON. Default `true`.
    #[serde(default = "yes")]
    pub on_invalid_json: bool,
    /// Actions for matching responses, checked in order before the rules above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_actions: Vec<ResponseAction>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: default_attempts(),
            backoff_base: default_base(),
            backoff_cap: default_cap(),
            max_wait: default_max_wait(),
            statuses: default_statuses(),
            on_timeout: true,
            on_connection_error: true,
            on_invalid_json: true,
            response_actions: Vec::new(),
        }
    }
}

/// A rule matched on a response. All given conditions must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseAction {
    /// Statuses that match, each 100–599, e.g. `[404]`. Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub status: Vec<u16>,
    /// Matches when the body contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Matches when this JSONPath finds a value in the body. A filter tests
    /// the children of what it is applied to: `$[?@.ok == false]` never
    /// matches the top-level `ok`; write `when: "response.ok == false"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_path: Option<JsonPath>,
    /// Matches when this expression is true, over `response` (the JSON body;
    /// `none` when it is not JSON), `status` and `headers` (lower-case
    /// names), e.g. `response.ok == false` (Slack answers errors with HTTP
    /// 200) or `response.success == false and response.error is defined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// What to do: `retry`, `ignore` (treat as an empty page), `fail`, `stop`
    /// (end the partition cleanly) or `success` (read it as a page, whatever
    /// later rules and the status say; Airbyte's `SUCCESS`).
    pub action: Action,
}

/// What a response action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Retry,
    Ignore,
    Fail,
    Stop,
    Success,
}

fn yes() -> bool {
    true
}
fn default_attempts() -> u32 {
    5
}
fn default_base() -> HumanDuration {
    HumanDuration::new("500ms")
}
fn default_cap() -> HumanDuration {
    HumanDuration::new("30s")
}
fn default_max_wait() -> HumanDuration {
    HumanDuration::new("10m")
}
fn default_statuses() -> Vec<u16> {
    vec![429, 500, 502, 503, 504]
}
