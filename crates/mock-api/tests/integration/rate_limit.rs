use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_api::{HeaderStyle, MockConfig, MockServer, RateLimitAlgorithm, RateLimitMode};

use crate::client::get;

fn server(mode: RateLimitMode) -> MockServer {
    MockServer::start(MockConfig::default().rate_limit(mode))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn fixed_window_x_ratelimit_headers() {
    let s = server(RateLimitMode::new(3, Duration::from_secs(30)).headers(HeaderStyle::XRateLimit));
    let url = format!("{}/gen/offset", s.url());
    for remaining in ["2", "1", "0"] {
        let r = get(&url);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(remaining));
    }
    let r = get(&url);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > now() && reset <= now() + 31, "{reset}");
    assert_eq!(r.header("retry-after"), None);
    // Non-data endpoints are not limited.
    assert_eq!(get(&format!("{}/bad/wrong_shape", s.url())).status, 200);
    assert_eq!(s.counters().rate_limited, 1);
}

#[test]
fn retry_after_seconds_and_recovery() {
    let s = server(RateLimitMode::new(2, Duration::from_millis(1500)));
    let url = format!("{}/posts/1", s.url());
    assert_eq!(get(&url).status, 200);
    assert_eq!(get(&url).status, 200);
    let r = get(&url);
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    assert_eq!(r.header("x-ratelimit-limit"), None);
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(get(&url).status, 200);
}

#[test]
fn retry_after_http_date() {
    let s = server(
        RateLimitMode::new(1, Duration::from_secs(5)).headers(HeaderStyle::RetryAfterHttpDate),
    );
    let url = format!("{}/gen/single", s.url());
    assert_eq!(get(&url).status, 200);
    let r = get(&url);
    assert_eq!(r.status, 429);
    let at = httpdate::parse_http_date(r.header("retry-after").unwrap()).unwrap();
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(secs > now() && secs <= now() + 6, "{secs}");
}

#[test]
fn ietf_headers_with_token_bucket() {
    let s = server(
        RateLimitMode::new(2, Duration::from_secs(10))
            .algorithm(RateLimitAlgorithm::TokenBucket)
            .headers(HeaderStyle::Ietf),
    );
    let url = format!("{}/gen/single", s.url());
    let r = get(&url);
    assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=2;w=10"));
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with("\"default\";r=1;t=")
    );
    get(&url);
    let r = get(&url);
    assert_eq!(r.status, 429);
    let rl = r.header("ratelimit").unwrap();
    assert!(rl.starts_with("\"default\";r=0;t="), "{rl}");
    let t: u64 = rl.rsplit("t=").next().unwrap().parse().unwrap();
    assert!((1..=5).contains(&t), "{t}");
}

#[test]
fn github_style_403() {
    let s = server(
        RateLimitMode::new(1, Duration::from_secs(60))
            .headers(HeaderStyle::XRateLimit)
            .github_403(true),
    );
    let url = format!("{}/gen/single", s.url());
    assert_eq!(get(&url).status, 200);
    let r = get(&url);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert!(r.header("x-ratelimit-reset").is_some());
    assert_eq!(s.counters().rate_limited, 1);
}
