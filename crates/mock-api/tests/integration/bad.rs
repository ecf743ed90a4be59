use mock_api::{MockConfig, MockServer};

use crate::client::{get, ids};

#[test]
fn bad_endpoints() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();

    let r = get(&format!("{base}/bad/not_json"));
    assert_eq!((r.status, r.text().as_str()), (200, "this is not json"));

    let r = get(&format!("{base}/bad/html"));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("<html>"));

    let r = get(&format!("{base}/bad/truncated"));
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(r.text().starts_with("{\"data\""));

    let r = get(&format!("{base}/bad/wrong_shape"));
    assert_eq!(r.json(), serde_json::json!({"unexpected": true}));

    for code in [400u16, 404, 418, 429, 500, 503] {
        let r = get(&format!("{base}/bad/status/{code}"));
        assert_eq!(r.status, code);
        assert_eq!(r.json()["status"], code);
    }
    assert_eq!(get(&format!("{base}/bad/status/abc")).status, 400);

    // Two good pages, then 500 forever.
    let page = |offset: u32| get(&format!("{base}/bad/after/2?offset={offset}&limit=5"));
    assert_eq!(ids(&page(0).json()["data"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(ids(&page(5).json()["data"]), vec![6, 7, 8, 9, 10]);
    assert_eq!(page(10).status, 500);
    assert_eq!(page(10).status, 500);
    assert_eq!(page(0).status, 200);
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_survives() {
    let s = MockServer::start(MockConfig::default());
    assert_eq!(get(&format!("{}/bad/panic", s.url())).status, 500);
    assert_eq!(get(&format!("{}/gen/single", s.url())).status, 200);
    assert_eq!(s.requests()[0].status, 500);
}
