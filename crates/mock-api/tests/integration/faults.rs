use std::time::{Duration, Instant};

use mock_api::{FaultConfig, FaultKind, MockConfig, MockServer};

use crate::client::{get, ids, request};

fn failing_first(kinds: Vec<FaultKind>) -> MockServer {
    let n = kinds.len() as u32;
    MockServer::start(MockConfig::default().faults(FaultConfig::first(n, kinds)))
}

#[test]
fn drop_connection_sends_nothing() {
    let s = failing_first(vec![FaultKind::DropConnection]);
    let url = format!("{}/gen/offset", s.url());
    let err = request("GET", &url, &[], None).expect_err("a dropped connection, not a response");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
    // The next request is fine.
    assert_eq!(get(&url).status, 200);
    let c = s.counters();
    assert_eq!(
        (c.faults_injected, c.faults_of(&FaultKind::DropConnection)),
        (1, 1)
    );
    let log = s.requests();
    assert_eq!((log[0].status, log[1].status), (0, 200));
}

#[test]
fn truncated_body_is_short_of_its_content_length() {
    let s = failing_first(vec![FaultKind::TruncatedBody]);
    let url = format!("{}/gen/offset?limit=20", s.url());
    let r = request("GET", &url, &[("Accept-Encoding", "gzip")], None).unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.complete, "body must be cut short");
    let declared: usize = r.header("content-length").unwrap().parse().unwrap();
    assert!(r.body.len() < declared);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = get(&url);
    assert!(r.complete);
    assert_eq!(ids(&r.json()["data"]).len(), 20);
}

#[test]
fn status_garbage_html_and_slow_faults() {
    let s = failing_first(vec![
        FaultKind::Status500,
        FaultKind::Status502,
        FaultKind::Status503,
        FaultKind::GarbageJson,
        FaultKind::Html200,
        FaultKind::Slow(Duration::from_millis(300)),
    ]);
    let url = format!("{}/posts?_limit=1", s.url());
    assert_eq!(get(&url).status, 500);
    assert_eq!(get(&url).status, 502);
    assert_eq!(get(&url).status, 503);
    let r = get(&url);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
    let r = get(&url);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let t = Instant::now();
    let r = get(&url);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(ids(&r.json()), vec![1]);
    assert_eq!(get(&url).status, 200);
    let c = s.counters();
    assert_eq!(c.faults_injected, 6);
    for k in [
        "status500",
        "status502",
        "status503",
        "garbage_json",
        "html200",
        "slow",
    ] {
        assert_eq!(c.faults_by_kind.get(k), Some(&1), "{k}");
    }
}

#[test]
fn random_faults_are_seeded_and_skip_the_token_endpoint() {
    let statuses = |seed: u64| -> Vec<u16> {
        let s = MockServer::start(MockConfig::default().faults(FaultConfig::random(
            0.5,
            vec![FaultKind::Status503],
            seed,
        )));
        let v: Vec<u16> = (0..30)
            .map(|_| get(&format!("{}/gen/single", s.url())).status)
            .collect();
        assert_eq!(
            s.counters().faults_injected,
            v.iter().filter(|&&x| x == 503).count() as u64
        );
        // Never on /oauth/token (a 400 here means the handler ran) nor on /bad/*.
        for _ in 0..10 {
            let r = crate::client::post(&format!("{}/oauth/token", s.url()), &[], "grant_type=x");
            assert_eq!(r.status, 400);
            assert_eq!(get(&format!("{}/bad/wrong_shape", s.url())).status, 200);
        }
        v
    };
    let a = statuses(7);
    assert_eq!(a, statuses(7));
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[test]
fn latency_is_applied_to_data_endpoints() {
    let s = MockServer::start(MockConfig::default().latency(Duration::from_millis(200)));
    let t = Instant::now();
    assert_eq!(get(&format!("{}/gen/single", s.url())).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
}
