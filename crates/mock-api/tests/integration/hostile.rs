//! `/hostile/*`: every body of unbounded size is read only up to a bound, then dropped.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mock_api::{MockConfig, MockServer, Origin, TOKEN};
use serde_json::{Value, json};

use crate::client::{get, get_with, ids, open};

const MIB: usize = 1 << 20;

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    n: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n;
        Ok(n)
    }
}

/// The server still answers promptly (it is not busy feeding a client that went away).
fn still_responsive(s: &MockServer) {
    let t = Instant::now();
    assert_eq!(get(&format!("{}/gen/single", s.url())).status, 200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the server took {:?} to answer",
        t.elapsed()
    );
}

#[test]
fn gzip_bomb_streams_a_huge_valid_json_prefix() {
    let s = MockServer::start(MockConfig::default());
    let mut r = open(&format!("{}/hostile/gzip_bomb", s.url()), &[]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));

    // Decode a bounded prefix (16 MiB of the advertised 10 GiB).
    let body = std::mem::replace(&mut r.body, Box::new(std::io::empty()));
    let mut counting = Counting { inner: body, n: 0 };
    let want = 16 * MIB;
    let mut decoded = vec![0u8; want];
    flate2::read::GzDecoder::new(&mut counting)
        .read_exact(&mut decoded)
        .unwrap();
    assert!(decoded.starts_with(b"{\"data\":["));
    assert!(decoded[9..].iter().all(|&b| b == b' '));
    let compressed = counting.n;
    assert!(
        compressed * 500 < want,
        "{compressed} compressed bytes for {want} decoded"
    );
    drop(counting);
    drop(r);
    still_responsive(&s);
    assert_eq!(s.requests()[0].path, "/hostile/gzip_bomb");
    assert!(s.requests()[0].response_gzip);
}

#[test]
fn small_gzip_bomb_is_one_complete_gzip_stream() {
    let s = MockServer::start(MockConfig::default());
    let r = get(&format!("{}/hostile/gzip_bomb?mib=3", s.url()));
    assert!(r.complete);
    assert!(r.body.len() * 500 < 3 * MIB, "{} bytes", r.body.len());
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 9 + 3 * MIB);
    assert!(out.starts_with(b"{\"data\":[") && out[9..].iter().all(|&b| b == b' '));
    assert!(
        serde_json::from_slice::<Value>(&out).is_err(),
        "never valid JSON"
    );

    let r = get(&format!("{}/hostile/gzip_bomb?gib=0", s.url()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, b"{\"data\":[");
    assert_eq!(
        get(&format!("{}/hostile/gzip_bomb?gib=x", s.url())).status,
        400
    );
}

#[test]
fn endless_keeps_sending_records() {
    let s = MockServer::start(MockConfig::default());
    let mut r = open(
        &format!("{}/hostile/endless", s.url()),
        &[("Accept-Encoding", "gzip")],
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-encoding"), None, "not compressed");
    assert_eq!(r.header("content-type"), Some("application/json"));

    let first = r.read_exact(64 * 1024);
    let text = String::from_utf8(first).unwrap();
    assert!(
        text.starts_with("{\"data\":[{\"id\":1,\"pad\":\"xxxx"),
        "{}",
        &text[..40]
    );
    let rec_len = text.find("},").unwrap() + 2 - "{\"data\":[".len();
    assert!((1000..1100).contains(&rec_len), "record of {rec_len} bytes");
    assert!(text.contains("{\"id\":2,\"pad\":\""));

    // Well past 5 MiB, and still going.
    let mut seen = 64 * 1024;
    let mut buf = vec![0u8; 256 * 1024];
    let mut last = Vec::new();
    while seen < 6 * MIB {
        let n = r.body.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended after {seen} bytes");
        seen += n;
        last = buf[..n].to_vec();
    }
    let tail = String::from_utf8_lossy(&last);
    assert!(!tail.contains("]}"), "the JSON never closes");
    assert!(tail.contains("\"pad\":\"xxx"));
    drop(r);
    still_responsive(&s);
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn absurd_rate_limit_waits() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    for (q, want) in [
        ("?secs=999999999", "999999999"),
        ("?secs=3", "3"),
        ("", "999999999"),
    ] {
        let r = get(&format!("{base}/hostile/retry_after{q}"));
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some(want));
        assert_eq!(r.json()["status"], 429);
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(
        get(&format!("{base}/hostile/retry_after?secs=-1")).status,
        400
    );

    let before = epoch();
    let r = get(&format!("{base}/hostile/reset_far?secs=86400"));
    let after = epoch();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-ratelimit-limit"), Some("100"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((before + 86400..=after + 86400).contains(&reset), "{reset}");
    assert!(r.json()["error"].is_string());
    let r = get(&format!("{base}/hostile/reset_far"));
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset >= before + 999_999_999);
}

#[test]
fn echo_token_puts_the_credential_into_next_links() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let url = format!("{base}/hostile/echo_token");
    let r = get(&url);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());

    // Bearer header: the next link carries it as `access_token`.
    let auth = format!("Bearer {TOKEN}");
    let p1 = get_with(&url, &[("Authorization", &auth)]).json();
    assert_eq!(ids(&p1["data"]), vec![1, 2, 3, 4, 5]);
    let next = p1["next"].as_str().unwrap().to_string();
    assert_eq!(
        next,
        format!("{base}/hostile/echo_token?page=2&access_token={TOKEN}")
    );
    // Following it needs no header: the credential is in the URL.
    let p2 = get(&next).json();
    assert_eq!(ids(&p2["data"]), vec![6, 7, 8, 9, 10]);
    let next = p2["next"].as_str().unwrap().to_string();
    assert!(next.ends_with(&format!("page=3&access_token={TOKEN}")));
    let p3 = get(&next).json();
    assert_eq!(ids(&p3["data"]), vec![11, 12, 13, 14, 15]);
    assert_eq!(p3["next"], Value::Null);

    // From `api_key`, percent-encoded in the link, and decoded again by the server.
    let p1 = get(&format!("{url}?api_key=a%20b%2Fc%2Bd%26e")).json();
    let next = p1["next"].as_str().unwrap();
    assert_eq!(
        next,
        format!("{base}/hostile/echo_token?page=2&access_token=a%20b%2Fc%2Bd%26e")
    );
    let p2 = get(next).json();
    assert!(
        p2["next"]
            .as_str()
            .unwrap()
            .ends_with("access_token=a%20b%2Fc%2Bd%26e")
    );

    assert_eq!(get(&format!("{url}?page=0&access_token=x")).status, 400);
    let past = get(&format!("{url}?page=4&access_token=x")).json();
    assert_eq!(past, json!({"data": [], "next": null}));
}

#[test]
fn echo_error_echoes_the_credential() {
    let s = MockServer::start(MockConfig::default());
    let url = format!("{}/hostile/echo_error", s.url());

    let r = get_with(&url, &[("Authorization", "Bearer tok en/+=é")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({
            "error": "bad request",
            "got_token": "tok en/+=é",
            "got_token_percent": "tok%20en%2F%2B%3D%C3%A9",
            "got_query": "",
        })
    );

    let r = get(&format!("{url}?api_key=k3y%2B123&x=1"));
    let body = r.json();
    assert_eq!(body["got_token"], "k3y+123");
    assert_eq!(body["got_token_percent"], "k3y%2B123");
    assert_eq!(body["got_query"], "api_key=k3y%2B123&x=1");

    let body = get(&format!("{url}?access_token={TOKEN}")).json();
    assert_eq!(body["got_token"], TOKEN);
    assert_eq!(body["got_query"], format!("access_token={TOKEN}"));

    let body = get(&url).json();
    assert_eq!(body["got_token"], Value::Null);
    assert_eq!(body["got_token_percent"], Value::Null);
}

#[test]
fn records_that_are_not_records() {
    let s = MockServer::start(MockConfig::default());
    let r = get_with(
        &format!("{}/hostile/not_objects", s.url()),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.json(), json!({"data": [1, "two", null, {"id": 4}]}));
    let r = get(&format!("{}/hostile/missing_key", s.url()));
    assert_eq!(
        r.json(),
        json!({"data": [{"id": 1}, {"name": "no id"}, {"id": null}, {"id": 4}]})
    );
}

#[test]
fn next_links_alternate_between_the_two_origins() {
    let s = MockServer::start(MockConfig::default());
    let (main, other) = (s.url(), s.other_origin_url());
    let mut url = format!("{main}/hostile/next_other_origin");
    let mut seen = Vec::new();
    let mut hosts = Vec::new();
    for page in 1..=4 {
        assert!(page <= 3, "more than 3 pages");
        hosts.push(url.clone());
        // A secret only for the main origin, a harmless header everywhere.
        let secret = url.starts_with(&main);
        let mut headers = vec![("X-Probe", "page")];
        if secret {
            headers.push(("Authorization", "Bearer s3cr3t-token"));
        }
        let r = get_with(&url, &headers);
        assert_eq!(r.status, 200);
        let body = r.json();
        seen.extend(ids(&body["data"]));
        match body["next"].as_str() {
            Some(n) => {
                assert_eq!(r.link("next").as_deref(), Some(n));
                url = n.to_string();
            }
            None => {
                assert_eq!(r.header("link"), None);
                break;
            }
        }
    }
    assert_eq!(seen, (1..=15).collect::<Vec<_>>());
    assert_eq!(
        hosts,
        vec![
            format!("{main}/hostile/next_other_origin"),
            format!("{other}/hostile/next_other_origin?page=2"),
            format!("{main}/hostile/next_other_origin?page=3"),
        ]
    );

    // The request log shows which headers reached which origin.
    let log = s.requests();
    let origins: Vec<Origin> = log.iter().map(|r| r.origin).collect();
    assert_eq!(origins, vec![Origin::Main, Origin::Other, Origin::Main]);
    assert_eq!(log[1].header("x-probe"), Some("page"));
    assert_eq!(log[1].header("authorization"), None);
    assert_eq!(log[0].header("authorization"), Some("Bearer s3cr3t-token"));

    // Every /hostile endpoint is on the other origin too; the APIs are not.
    let o = get(&format!("{other}/hostile/not_objects"));
    assert_eq!(o.json()["data"][1], "two");
    assert_eq!(get(&format!("{other}/stripe/v1/customers")).status, 404);
    assert_eq!(get(&format!("{other}/tz/events")).status, 404);
}
