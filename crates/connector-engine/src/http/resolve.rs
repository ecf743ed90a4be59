//! What a response means, from its status, headers and body alone: one
//! resolver for every request. Response actions are checked first, then
//! redirects (never followed to another origin), rate-limit answers and the
//! retry statuses, then other failures with a hint. Pure: testable without
//! a network.

use super::{FetchErrorKind, excerpt};
use crate::rate_limit::ServerWait;
use crate::retry::{Action, RetryPolicy};
use reqwest::header::HeaderMap;

/// What to do with a response.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    /// A success: decode the body.
    Ok,
    /// Ask again, after the server's wait if it named one.
    Retry {
        reason: String,
        wait: Option<ServerWait>,
    },
    /// Treat as an empty page (`ignore` action).
    Ignore,
    /// End the partition cleanly (`stop` action).
    Stop,
    /// Give up on this request.
    Fail {
        kind: FetchErrorKind,
        message: String,
    },
}

/// Resolves a response. `json` is the body parsed, when response actions
/// need it; `wait` is what the server asked for (`Retry-After`, a reset).
pub fn resolve(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    json: Option<&serde_json::Value>,
    policy: &RetryPolicy,
    wait: Option<ServerWait>,
) -> Resolution {
    if let Some(action) = policy.action_for(status, headers, body, json) {
        return match action {
            Action::Ignore => Resolution::Ignore,
            Action::Stop => Resolution::Stop,
            Action::Success => Resolution::Ok,
            Action::Fail => Resolution::Fail {
                kind: FetchErrorKind::Status(status),
                message: format!(
                    "HTTP {status} matched a `fail` response action; body: {}",
                    excerpt(body)
                ),
            },
            Action::Retry => Resolution::Retry {
                reason: format!("HTTP {status} matched a `retry` response action"),
                wait,
            },
        };
    }
    if (300..400).contains(&status) {
        let to = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        return Resolution::Fail {
            kind: FetchErrorKind::Status(status),
            message: format!(
                "HTTP {status}: redirect to another origin ({to}) not followed, so credentials stay with the API"
            ),
        };
    }
    if (200..300).contains(&status) {
        return Resolution::Ok;
    }
    // GitHub answers an exhausted rate limit with 403 and remaining 0.
    let github_403 = status == 403
        && headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            == Some("0");
    if policy.statuses.contains(&status) || github_403 {
        return Resolution::Retry {
            reason: format!("HTTP {status}; body: {}", excerpt(body)),
            wait,
        };
    }
    let hint = match status {
        401 | 403 => " (check the credentials: the auth config values)",
        404 => " (check the stream's path and the base_url)",
        _ => "",
    };
    Resolution::Fail {
        kind: FetchErrorKind::Status(status),
        message: format!("HTTP {status}{hint}; body: {}", excerpt(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_spec::Retry;

    fn policy(yaml: &str) -> RetryPolicy {
        let r: Retry = serde_saphyr::from_str(yaml).unwrap();
        RetryPolicy::compile(&r).unwrap()
    }

    #[test]
    fn statuses_resolve_by_the_policy() {
        let p = policy("{}");
        let h = HeaderMap::new();
        assert_eq!(resolve(200, &h, b"{}", None, &p, None), Resolution::Ok);
        assert!(matches!(
            resolve(503, &h, b"x", None, &p, None),
            Resolution::Retry { .. }
        ));
        match resolve(404, &h, b"no", None, &p, None) {
            Resolution::Fail { kind, message } => {
                assert_eq!(kind, FetchErrorKind::Status(404));
                assert!(message.contains("check the stream's path"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let mut gh = HeaderMap::new();
        gh.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert!(matches!(
            resolve(403, &gh, b"", None, &p, None),
            Resolution::Retry { .. }
        ));
        let mut redirect = HeaderMap::new();
        redirect.insert("location", "https://elsewhere/".parse().unwrap());
        assert!(matches!(
            resolve(302, &redirect, b"", None, &p, None),
            Resolution::Fail { .. }
        ));
    }

    #[test]
    fn response_actions_come_first() {
        let p = policy(
            "response_actions:\n  - { status: [404], action: ignore }\n  - { body_contains: done, action: stop }\n  - { body_path: $.error, action: retry }\n",
        );
        let h = HeaderMap::new();
        assert_eq!(resolve(404, &h, b"", None, &p, None), Resolution::Ignore);
        assert_eq!(
            resolve(200, &h, b"all done", None, &p, None),
            Resolution::Stop
        );
        let json = serde_json::json!({"error": "busy"});
        assert!(matches!(
            resolve(200, &h, b"{}", Some(&json), &p, None),
            Resolution::Retry { .. }
        ));
    }

    #[test]
    fn a_success_action_reads_the_page_whatever_later_rules_say() {
        // GitHub's manifest: 200 is SUCCESS before filters that would match
        // a 200's body; the page must be read, not dropped.
        let p = policy(
            "response_actions:\n  - { status: [200], action: success }\n  - { body_contains: rate limit, action: retry }\n  - { status: [200], action: ignore }\n",
        );
        let h = HeaderMap::new();
        assert_eq!(
            resolve(
                200,
                &h,
                b"[{\"note\": \"rate limit docs\"}]",
                None,
                &p,
                None
            ),
            Resolution::Ok
        );
        let p = policy("response_actions:\n  - { status: [409], action: success }\n");
        assert_eq!(resolve(409, &h, b"[]", None, &p, None), Resolution::Ok);
    }
}
