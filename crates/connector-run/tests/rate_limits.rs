//! Rate limits and faults (counts, not wall time): no 429s when the limit is
//! declared, few when only headers tell, and the exact dataset through ~10%
//! injected faults of every kind.

mod common;
use common::*;
use mock_api::{
    FaultConfig, FaultKind, HeaderStyle, MockConfig, MockServer, RateLimitAlgorithm, RateLimitMode,
};
use std::time::{Duration, Instant};

fn spec(base: &str, rate_limit: &str, extra_retry: &str) -> String {
    format!(
        r#"
version: 1
name: limited
base_url: "{base}"
timeout: 400ms
rate_limit: {rate_limit}
retry: {{ max_attempts: 12, backoff_base: 20ms, backoff_cap: 1s{extra_retry} }}
streams:
  offset:
    path: /gen/offset
    pagination: {{ type: offset, page_size: 5, stop: {{ total_path: $.total }} }}
    records: {{ path: $.data }}
  cursor:
    path: /gen/cursor
    pagination: {{ type: cursor, cursor_path: $.next_cursor, size_param: limit, page_size: 5 }}
    records: {{ path: $.items }}
  next:
    path: /gen/next_relative
    params: {{ limit: "5" }}
    pagination: {{ type: next_url, next_url_path: $.next }}
    records: {{ path: $.data }}
"#
    )
}

/// Syncs `streams` and checks every record arrived exactly once.
fn sync_exact(
    server: &MockServer,
    yaml: &str,
    streams: &[&str],
    extra: &[&str],
) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "limited", yaml);
    let out_dir = tmp.path().join("out");
    let dest = format!("jsonl:{}", out_dir.display());
    let mut args = vec!["sync", "limited"];
    args.extend_from_slice(streams);
    args.extend_from_slice(&["--dest", &dest]);
    args.extend_from_slice(extra);
    let out = run_ok(tmp.path(), &args, &[]);
    let n = server.generated_len() as u64;
    for s in streams {
        assert_eq!(
            ids(&read_jsonl(&out_dir, s)),
            (1..=n).collect::<Vec<u64>>(),
            "stream {s}: exact dataset"
        );
    }
    out
}

/// Most requests that fell into one of the server's fixed windows.
fn busiest_window(server: &MockServer, window: Duration) -> usize {
    let times: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    let Some(first) = times.first().copied() else {
        return 0;
    };
    let mut counts = std::collections::HashMap::new();
    for t in times {
        *counts
            .entry(((t - first).as_nanos() / window.as_nanos()) as u64)
            .or_insert(0) += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

#[test]
fn a_declared_limit_is_never_exceeded() {
    // 300 requests at the server's limit of 50 per second, fixed windows.
    let limit = RateLimitMode::new(50, Duration::from_secs(1))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(HeaderStyle::RetryAfter);
    let server = MockServer::start(MockConfig {
        generated_records: 500,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(&server.url(), "{ requests: 50/s, max_concurrency: 4 }", "");
    let out = sync_exact(&server, &yaml, &["offset", "cursor", "next"], &[]);
    let c = server.counters();
    assert!(c.main_requests >= 300, "{c:?}");
    assert_eq!(
        c.rate_limited,
        0,
        "zero 429s with the limit declared: {c:?}\n{}",
        stderr(&out)
    );
    assert!(busiest_window(&server, Duration::from_secs(1)) <= 50);
}

#[test]
fn the_command_line_overrides_the_declared_rate() {
    let limit = RateLimitMode::new(10, Duration::from_millis(500))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(HeaderStyle::None);
    let server = MockServer::start(MockConfig {
        generated_records: 100,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(&server.url(), "{ requests: 1000/s }", "");
    sync_exact(
        &server,
        &yaml,
        &["offset"],
        &["--rate-limit", "20/s", "--concurrency", "2"],
    );
    assert_eq!(server.counters().rate_limited, 0);
}

/// Undeclared limit: only the server's headers tell. Bounds per style:
/// `X-RateLimit-*`, IETF and GitHub's 403 announce the budget, so the run
/// paces itself (at most 2 refusals); `Retry-After` only speaks after a
/// refusal, so at most one 429 per server window (+2).
fn undeclared(headers: HeaderStyle, github_403: bool, max_refusals: u64) {
    let mut limit = RateLimitMode::new(10, Duration::from_millis(500))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(headers);
    if github_403 {
        limit = limit.github_403(true);
    }
    let server = MockServer::start(MockConfig {
        generated_records: 300,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(
        &server.url(),
        "{ max_concurrency: 2 }",
        ", statuses: [429, 500, 502, 503, 504]",
    );
    let out = sync_exact(&server, &yaml, &["offset"], &[]);
    let c = server.counters();
    eprintln!(
        "{headers:?} github_403={github_403}: {} refusals in {} requests",
        c.rate_limited, c.main_requests
    );
    assert!(
        c.rate_limited <= max_refusals,
        "{headers:?}: {} refusals for {} requests (bound {max_refusals})\n{}",
        c.rate_limited,
        c.main_requests,
        stderr(&out)
    );
    // The summary counts every rate-limit answer, GitHub's 403s included.
    let row = stderr(&out)
        .lines()
        .find(|l| l.starts_with("offset "))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(
        row.get(5).map(String::as_str),
        Some(c.rate_limited.to_string().as_str()),
        "{row:?}"
    );
}

#[test]
fn undeclared_limit_with_x_ratelimit_headers() {
    undeclared(HeaderStyle::XRateLimit, false, 2);
}

#[test]
fn undeclared_limit_with_ietf_headers() {
    undeclared(HeaderStyle::Ietf, false, 2);
}

#[test]
fn undeclared_limit_with_github_403() {
    undeclared(HeaderStyle::XRateLimit, true, 2);
}

#[test]
fn undeclared_limit_with_retry_after_seconds() {
    // 61 requests in windows of 10: about 7 windows.
    undeclared(HeaderStyle::RetryAfter, false, 9);
}

#[test]
fn undeclared_limit_with_retry_after_http_date() {
    undeclared(HeaderStyle::RetryAfterHttpDate, false, 9);
}

#[test]
fn undeclared_limit_without_headers_backs_off() {
    // No hint at all: exponential backoff; the bound is loose but finite.
    undeclared(HeaderStyle::None, false, 61);
}

#[test]
fn ten_percent_faults_of_every_kind_lose_and_duplicate_nothing() {
    let kinds = vec![
        FaultKind::Status500,
        FaultKind::Status502,
        FaultKind::Status503,
        FaultKind::DropConnection,
        FaultKind::Slow(Duration::from_secs(2)),
        FaultKind::TruncatedBody,
        FaultKind::GarbageJson,
        FaultKind::Html200,
    ];
    let server = MockServer::start(MockConfig {
        faults: FaultConfig::random(0.10, kinds.clone(), 7),
        ..MockConfig::default()
    });
    let yaml = spec(&server.url(), "{ max_concurrency: 4 }", "");
    let out = sync_exact(&server, &yaml, &["offset", "cursor", "next"], &[]);
    let c = server.counters();
    assert!(c.faults_injected >= 10, "{c:?}");
    for k in &kinds {
        assert!(
            c.faults_of(k) >= 1,
            "fault {} was injected: {c:?}",
            k.name()
        );
    }
    let summary = stderr(&out);
    assert!(summary.contains("retries"), "{summary}");
}

#[test]
fn exhausted_retries_name_the_last_status_and_keep_what_was_written() {
    let server = MockServer::start(MockConfig {
        faults: FaultConfig::random(1.0, vec![FaultKind::Status503], 1),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let yaml = spec(&server.url(), "{}", "").replace("max_attempts: 12", "max_attempts: 3");
    write_spec(tmp.path(), "limited", &yaml);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let out = run(
        tmp.path(),
        &["sync", "limited", "offset", "--dest", &dest],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        server.counters().main_requests,
        3,
        "three attempts, then it gives up"
    );
    insta::assert_snapshot!("exhausted_retries", stable(&error_lines(&out), tmp.path()));
}

#[test]
fn a_streams_own_quota_paces_that_stream_only() {
    let server = MockServer::start(MockConfig::default().generated_records(60));
    let yaml = format!(
        r#"
version: 1
name: limited
base_url: "{}"
streams:
  slow:
    path: /gen/offset
    rate_limit: {{ requests: 5/s }}
    pagination: {{ type: offset, page_size: 5, stop: {{ total_path: $.total }} }}
    records: {{ path: $.data }}
  fast:
    path: /gen/page
    pagination: {{ type: page_number, page_size: 5 }}
    records: {{ path: $.results }}
"#,
        server.url()
    );
    sync_exact(&server, &yaml, &["slow", "fast"], &[]);
    let reqs = server.requests();
    let times = |path: &str| -> Vec<Instant> {
        reqs.iter()
            .filter(|r| r.path == path)
            .map(|r| r.at)
            .collect()
    };
    let slow = times("/gen/offset");
    assert_eq!(slow.len(), 12);
    for w in slow.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(180), "a gap of {gap:?} at 5/s");
    }
    // The other stream is not held to it: it finishes long before.
    let fast = times("/gen/page");
    assert!(fast.last().unwrap() < slow.last().unwrap());
}

/// An API's own rate-limit headers, declared in `custom_headers`: the run
/// paces itself before any refusal, as it does for `X-RateLimit-*`.
fn undeclared_custom(headers: HeaderStyle, rate_limit: &str) -> u64 {
    let limit = RateLimitMode::new(10, Duration::from_millis(500))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(headers);
    let server = MockServer::start(MockConfig {
        generated_records: 300,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(
        &server.url(),
        rate_limit,
        ", statuses: [429, 500, 502, 503, 504]",
    );
    sync_exact(&server, &yaml, &["offset"], &[]);
    let c = server.counters();
    eprintln!(
        "{headers:?}: {} refusals in {} requests",
        c.rate_limited, c.main_requests
    );
    c.rate_limited
}

#[test]
fn shopify_call_limit_header() {
    let declared = "{ max_concurrency: 2, custom_headers: [ { used_of_limit: X-Shopify-Shop-Api-Call-Limit, window: 500ms } ] }";
    assert!(undeclared_custom(HeaderStyle::Shopify, declared) <= 1);
    // Unread, the same headers leave only the 429s to learn from: the
    // first is inevitable.
    assert!(undeclared_custom(HeaderStyle::Shopify, "{ max_concurrency: 2 }") >= 1);
}

#[test]
fn hubspot_remaining_header() {
    let declared = "{ max_concurrency: 2, custom_headers: [ { remaining: X-HubSpot-RateLimit-Remaining, limit: X-HubSpot-RateLimit-Max, window: 500ms } ] }";
    assert!(undeclared_custom(HeaderStyle::HubSpot, declared) <= 1);
    assert!(undeclared_custom(HeaderStyle::HubSpot, "{ max_concurrency: 2 }") >= 1);
}

/// A large budget is not spread thin: GitHub's 5,000 an hour leaves a
/// short sync at full speed (no pacing waits), where spreading the budget
/// over the hour would space requests 0.7 s apart.
#[test]
fn a_large_remaining_budget_is_not_paced() {
    let limit = RateLimitMode::new(5000, Duration::from_secs(3600))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(HeaderStyle::XRateLimit);
    let server = MockServer::start(MockConfig {
        generated_records: 300,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(&server.url(), "{ max_concurrency: 2 }", "");
    let out = sync_exact(&server, &yaml, &["offset"], &[]);
    assert_eq!(server.counters().rate_limited, 0);
    assert!(
        stdout(&out).contains("rate-limit waits: 0 ")
            || stderr(&out).contains("rate-limit waits: 0 "),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A fault's `Retry-After` (a 503 while a server sheds load) delays only
/// its own request: the run never pauses for it (no rate-limit waits), and
/// every record arrives once. A 429's still pauses the run.
#[test]
fn a_faults_retry_after_delays_only_its_request() {
    let server = MockServer::start(MockConfig {
        faults: FaultConfig::first(3, vec![FaultKind::Status503RetryAfter]),
        ..MockConfig::default()
    });
    let yaml = spec(&server.url(), "{ max_concurrency: 4 }", "");
    let out = sync_exact(&server, &yaml, &["offset", "cursor"], &[]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("rate-limit waits: 0 "), "{text}");
    assert_eq!(server.counters().rate_limited, 0);
}

/// A quota that depends on the user's plan comes from config (Stripe's
/// 100/s live against 25/s test mode): `requests` is a template.
#[test]
fn a_declared_limit_may_come_from_config() {
    let limit = RateLimitMode::new(20, Duration::from_secs(1))
        .algorithm(RateLimitAlgorithm::FixedWindow)
        .headers(HeaderStyle::None);
    let server = MockServer::start(MockConfig {
        generated_records: 150,
        rate_limit: Some(limit),
        ..MockConfig::default()
    });
    let yaml = spec(
        &server.url(),
        "{ requests: \"{{ config.rps }}/s\", max_concurrency: 4 }",
        "",
    )
    .replace(
        "base_url:",
        "config:\n  rps: { type: integer, default: 50 }\nbase_url:",
    );
    // The default (50/s) is more than the server allows; the plan's 20 is not.
    sync_exact(&server, &yaml, &["offset"], &["--set", "rps=20"]);
    assert_eq!(server.counters().rate_limited, 0, "{:?}", server.counters());
    assert!(busiest_window(&server, Duration::from_secs(1)) <= 20);
}

/// While partitions wait out a 503's `Retry-After`, the others go on: with
/// the first 4 requests refused at concurrency 4, every worker used to sleep
/// and nothing was sent until the waits ended; now the other partitions'
/// requests go out in the meantime (the limiter still allows 4 in flight).
#[test]
fn partitions_waiting_out_a_retry_after_do_not_stall_the_others() {
    let server = MockServer::start(MockConfig {
        faults: FaultConfig::first(4, vec![FaultKind::Status503RetryAfter]),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
version: 1
name: waits
base_url: "{}"
rate_limit: {{ max_concurrency: 4 }}
streams:
  user_posts:
    path: "/users/{{{{ partition.user }}}}/posts"
    partitions: {{ values: "{{{{ [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }}}}", as: user }}
    primary_key: id
"#,
        server.url()
    );
    write_spec(tmp.path(), "waits", &yaml);
    run_ok(tmp.path(), &["sync", "waits", "--dest", "jsonl:out"], &[]);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "user_posts").len(), 100);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 14, "{paths:?}");
    let refused: Vec<&String> = paths[..4].iter().collect();
    let first_retry = paths
        .iter()
        .enumerate()
        .skip(4)
        .find(|(_, p)| refused.contains(p))
        .map(|(i, _)| i)
        .unwrap();
    // The six partitions no one refused were all asked before any retry.
    assert_eq!(first_retry, 10, "{paths:?}");
}
