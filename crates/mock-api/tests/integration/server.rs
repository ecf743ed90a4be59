use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mock_api::{MockConfig, MockServer, Origin};

use crate::client::{get, get_with, post};

#[test]
fn request_log_and_counters() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with('/'));
    get_with(&format!("{base}/gen/offset?limit=2"), &[("X-Test", "yes")]);
    post(
        &format!("{base}/gen/cursor_body"),
        &[("Content-Type", "application/json")],
        "{\"limit\":1}",
    );
    get(&format!("{}/gen/single", s.other_origin_url()));

    let log = s.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("GET", "/gen/offset")
    );
    assert_eq!(log[0].query.as_deref(), Some("limit=2"));
    assert_eq!(log[0].uri, "/gen/offset?limit=2");
    assert_eq!(log[0].header("x-test"), Some("yes"));
    assert_eq!((log[0].status, log[0].origin), (200, Origin::Main));
    assert_eq!(log[0].body, None);
    assert_eq!(log[1].body.as_deref(), Some("{\"limit\":1}"));
    assert_eq!(log[2].origin, Origin::Other);
    assert!(log[0].at <= log[1].at && log[1].at <= log[2].at);

    let c = s.counters();
    assert_eq!(
        (c.total_requests, c.main_requests, c.other_requests),
        (3, 2, 1)
    );
    s.clear_requests();
    assert!(s.requests().is_empty());
    assert_eq!(s.counters().total_requests, 3);
}

#[test]
fn gzip_when_asked() {
    let s = MockServer::start(MockConfig::default());
    let url = format!("{}/comments", s.url());
    let r = get_with(&url, &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
    let r = get(&url);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.json().as_array().unwrap().len(), 500);
    let log = s.requests();
    assert!(log[0].response_gzip && !log[1].response_gzip);
    assert_eq!(log[0].header("accept-encoding"), Some("gzip"));
}

#[tokio::test]
async fn works_inside_a_tokio_runtime() {
    let s = MockServer::start(MockConfig::default().generated_records(5));
    let url = format!("{}/gen/offset", s.url());
    let r = tokio::task::spawn_blocking(move || get(&url))
        .await
        .unwrap();
    assert_eq!(r.json()["total"], 5);
    drop(s); // must not panic or hang inside the runtime
}

#[test]
fn binary_prints_its_url_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-api"))
        .args(["--records", "3", "--latency-ms", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    let result =
        std::panic::catch_unwind(|| get(&format!("{url}/gen/offset")).json()["total"].clone());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(result.unwrap(), 3);
}

#[test]
fn index_and_fallback() {
    let s = MockServer::start(MockConfig::default());
    let r = get(&format!("{}/", s.url()));
    assert_eq!(r.json()["name"], "mock-api");
    assert_eq!(
        get(&format!("{}/gen/nope/deeper/still", s.url())).status,
        404
    );
    assert_eq!(get(&format!("{}/posts", s.other_origin_url())).status, 404);
}
