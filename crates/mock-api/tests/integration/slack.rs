//! The Slack imitation: `conversations.list`.

use std::collections::HashSet;
use std::time::Duration;

use mock_api::{MockConfig, MockServer, RateLimitMode, SLACK_TOKEN};
use serde_json::{Value, json};

use crate::client::{Resp, get, get_with, post};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn bearer() -> String {
    format!("Bearer {SLACK_TOKEN}")
}

fn list(base: &str, form: &str) -> Resp {
    post(
        &format!("{base}/api/conversations.list"),
        &[("Authorization", &bearer()), FORM],
        form,
    )
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    v
}

fn err(r: Resp) -> String {
    assert_eq!(
        r.status,
        200,
        "Slack answers errors with HTTP 200: {}",
        r.text()
    );
    let v = r.json();
    assert_eq!(v["ok"], false, "{v}");
    v["error"].as_str().unwrap().to_string()
}

fn enc(c: &str) -> String {
    c.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The documented dataset: conversation `k` is a DM when `k % 40 == 0`, a group DM when
/// `k % 40 == 20`, else private when `k % 5 == 3`, else public; channels `k % 9 == 4` are
/// archived.
fn kind(k: u64) -> &'static str {
    match (k % 40, k % 5) {
        (0, _) => "im",
        (20, _) => "mpim",
        (_, 3) => "private_channel",
        _ => "public_channel",
    }
}

fn archived(k: u64) -> bool {
    kind(k).ends_with("channel") && k % 9 == 4
}

/// Walks with `extra` form fields; returns the conversations and the page sizes.
fn walk(base: &str, extra: &str) -> (Vec<Value>, Vec<usize>) {
    let (mut all, mut sizes) = (Vec::new(), Vec::new());
    let mut cursor = String::new();
    loop {
        assert!(sizes.len() < 1000, "does not terminate");
        let p = ok(list(base, &format!("cursor={}{extra}", enc(&cursor))));
        let channels = p["channels"].as_array().unwrap();
        sizes.push(channels.len());
        all.extend(channels.iter().cloned());
        cursor = p["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        if cursor.is_empty() {
            return (all, sizes);
        }
    }
}

fn names(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn slack_conversations_list_paginates_to_an_empty_next_cursor() {
    let s = MockServer::start(MockConfig::default());
    assert_eq!(s.slack_channels_len(), 345);
    let base = s.url();
    let public = (1..=345).filter(|&k| kind(k) == "public_channel").count();

    // Default: public channels only, 100 per page.
    let (all, sizes) = walk(&base, "");
    assert_eq!(all.len(), public);
    assert_eq!(sizes, vec![100, 100, public - 200]);
    let ids: HashSet<String> = names(&all).into_iter().collect();
    assert_eq!(ids.len(), public, "unique ids");
    for c in &all {
        assert_eq!(
            (c["is_channel"].clone(), c["is_private"].clone()),
            (json!(true), json!(false)),
            "{c}"
        );
        let id = c["id"].as_str().unwrap();
        assert!(id.starts_with('C') && id.len() == 11, "{id}");
        assert_eq!(c["name"], c["name_normalized"]);
        assert!(c["created"].is_i64() && c["num_members"].is_u64());
        assert!(c["topic"]["value"].is_string() && c["purpose"]["value"].is_string());
    }
    assert_eq!(all[0]["name"], "general");
    assert_eq!(all[0]["is_general"], true);
    assert_eq!(all[1]["name"], "random");

    // Every type, in pages of 1000 at most: one page holds everything.
    let every = "&types=public_channel,private_channel,mpim,im";
    let (everything, sizes) = walk(&base, &format!("&limit=1000{every}"));
    assert_eq!((everything.len(), sizes), (345, vec![345]));
    let (same, sizes) = walk(&base, &format!("&limit=50{every}"));
    assert_eq!(names(&same), names(&everything));
    assert_eq!(sizes, vec![50, 50, 50, 50, 50, 50, 45]);
    for (i, c) in everything.iter().enumerate() {
        let k = i as u64 + 1;
        let want = kind(k);
        assert_eq!(c["is_im"] == true, want == "im", "{c}");
        assert_eq!(c["is_mpim"] == true, want == "mpim", "{c}");
        if want.ends_with("channel") {
            assert_eq!(c["is_private"] == true, want == "private_channel", "{c}");
            assert_eq!(c["is_archived"] == true, archived(k), "{c}");
        }
        if want == "im" {
            assert!(c["id"].as_str().unwrap().starts_with('D'));
            assert!(c["user"].as_str().unwrap().starts_with('U'));
        }
    }
    let (private, _) = walk(&base, "&types=private_channel");
    assert_eq!(
        private.len(),
        (1..=345).filter(|&k| kind(k) == "private_channel").count()
    );
    assert!(private.iter().all(|c| c["is_private"] == true));

    // The request log keeps the form body and its Content-Type.
    let logged = s
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api/conversations.list")
        .unwrap();
    assert_eq!(logged.method, "POST");
    assert_eq!(
        logged.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        logged
            .body
            .as_deref()
            .unwrap()
            .contains("types=private_channel"),
        "{:?}",
        logged.body
    );
}

#[test]
fn slack_get_query_and_form_token() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let url = format!("{base}/api/conversations.list");
    let by_post = ok(list(&base, "limit=5&types=im,mpim"));
    assert_eq!(by_post["channels"].as_array().unwrap().len(), 5);

    // GET with query parameters.
    let by_get = ok(get_with(
        &format!("{url}?limit=5&types=im%2Cmpim"),
        &[("Authorization", &bearer())],
    ));
    assert_eq!(by_get, by_post);

    // The token as a form field.
    let by_form = ok(post(
        &url,
        &[FORM],
        &format!("token={SLACK_TOKEN}&limit=5&types=im,mpim"),
    ));
    assert_eq!(by_form, by_post);

    // A mix: the query string and the body both count, the body wins.
    let mixed = ok(post(
        &format!("{url}?types=im,mpim&limit=100"),
        &[("Authorization", &bearer()), FORM],
        "limit=5",
    ));
    assert_eq!(mixed, by_post);

    // Not a form: the body is not read.
    let json_body = ok(post(
        &url,
        &[
            ("Authorization", &bearer()),
            ("Content-Type", "application/json"),
        ],
        r#"{"limit": 5, "types": "im,mpim"}"#,
    ));
    assert_eq!(json_body["channels"].as_array().unwrap().len(), 100);

    // A token in the query string is not accepted.
    assert_eq!(
        err(get(&format!("{url}?token={SLACK_TOKEN}"))),
        "not_authed"
    );
}

#[test]
fn slack_errors_are_http_200_with_ok_false() {
    let s = MockServer::start(MockConfig::default().slack_channels(30));
    let base = s.url();
    let url = format!("{base}/api/conversations.list");

    assert_eq!(err(post(&url, &[FORM], "limit=5")), "not_authed");
    assert_eq!(err(get(&url)), "not_authed");
    assert_eq!(
        err(post(
            &url,
            &[("Authorization", "Bearer xoxb-wrong"), FORM],
            ""
        )),
        "invalid_auth"
    );
    assert_eq!(err(post(&url, &[FORM], "token=xoxb-wrong")), "invalid_auth");
    assert_eq!(
        err(get_with(&url, &[("Authorization", "Basic eDp5")])),
        "not_authed"
    );
    assert_eq!(s.counters().auth_failures, 5);

    for bad in ["limit=1001", "limit=0", "limit=ten", "limit=-1"] {
        assert_eq!(err(list(&base, bad)), "invalid_limit", "{bad}");
    }
    let public = (1..=30).filter(|&k| kind(k) == "public_channel").count();
    assert_eq!(public, 23);
    assert_eq!(
        ok(list(&base, "limit=1000"))["channels"]
            .as_array()
            .unwrap()
            .len(),
        public
    );
    assert_eq!(
        err(list(&base, "types=public_channel,channels")),
        "invalid_types"
    );
    assert_eq!(
        err(list(&base, "cursor=dGVhbTpDMDYxRkE1UEI%3D")),
        "invalid_cursor"
    );
    assert_eq!(err(list(&base, "cursor=not-base64!")), "invalid_cursor");
    // An empty cursor is the first page.
    assert_eq!(ok(list(&base, "cursor=")), ok(list(&base, "")));
}

#[test]
fn slack_exclude_archived_gives_short_pages_before_the_end() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let want: Vec<u64> = (1..=345)
        .filter(|&k| kind(k) == "public_channel" && !archived(k))
        .collect();
    let (all, sizes) = walk(&base, "&limit=10&exclude_archived=true");
    assert_eq!(all.len(), want.len());
    assert!(all.iter().all(|c| c["is_archived"] == false));
    // Pages are cut first, then archived channels dropped: short pages before the end.
    let last = sizes.len() - 1;
    assert!(
        sizes[..last].iter().any(|&n| n < 10),
        "a short page that is not the last: {sizes:?}"
    );
    assert!(sizes.iter().all(|&n| n <= 10));
    let (with_archived, _) = walk(&base, "&limit=10");
    let kept: Vec<&Value> = with_archived
        .iter()
        .filter(|c| c["is_archived"] == false)
        .collect();
    assert_eq!(kept.len(), all.len());
    assert!(kept.iter().zip(&all).all(|(a, b)| *a == b));
    // With limit=1, a page may even be empty while next_cursor is not.
    let mut cursor = String::new();
    let mut empty_before_end = false;
    loop {
        let p = ok(list(
            &base,
            &format!("limit=1&exclude_archived=1&cursor={}", enc(&cursor)),
        ));
        cursor = p["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        if cursor.is_empty() {
            break;
        }
        empty_before_end |= p["channels"] == json!([]);
    }
    assert!(empty_before_end);
}

#[test]
fn slack_rate_limit_is_a_429_with_retry_after() {
    let s = MockServer::start(
        MockConfig::default()
            .slack_channels(10)
            .slack_rate_limit(RateLimitMode::new(2, Duration::from_secs(30))),
    );
    let base = s.url();
    let first = list(&base, "");
    assert!(first.header("retry-after").is_none());
    assert!(first.header("x-ratelimit-limit").is_none());
    ok(first);
    ok(list(&base, ""));
    let r = list(&base, "");
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&secs), "{secs}");
    assert_eq!(r.json(), json!({"ok": false, "error": "ratelimited"}));
    assert_eq!(s.counters().rate_limited, 1);
    // Authentication comes first: a bad token is still invalid_auth.
    assert_eq!(
        err(post(
            &format!("{base}/api/conversations.list"),
            &[("Authorization", "Bearer nope")],
            ""
        )),
        "invalid_auth"
    );
}
