//! The imitations of real APIs: Stripe's customer list and timestamps with UTC offsets (the
//! Zendesk, Slack and GitHub imitations have their own files).

use std::collections::HashSet;

use mock_api::{MockConfig, MockServer, STRIPE_KEY};
use serde_json::{Value, json};

use crate::client::{Resp, get, get_with};

fn bearer() -> String {
    format!("Bearer {STRIPE_KEY}")
}

fn stripe(base: &str, query: &str) -> Resp {
    get_with(
        &format!("{base}/stripe/v1/customers?{query}"),
        &[("Authorization", &bearer())],
    )
}

fn created(list: &Value) -> Vec<i64> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["created"].as_i64().unwrap())
        .collect()
}

fn cus_ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Walks the whole list with `starting_after`; returns every customer in the order received
/// and the number of pages.
fn walk(base: &str, extra: &str) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 1000, "does not terminate");
        let cursor = after
            .as_ref()
            .map(|a| format!("&starting_after={a}"))
            .unwrap_or_default();
        let r = stripe(base, &format!("limit=100{cursor}{extra}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let body = r.json();
        assert_eq!(body["object"], "list");
        assert_eq!(body["url"], "/stripe/v1/customers");
        let data = body["data"].as_array().unwrap().clone();
        let more = body["has_more"].as_bool().unwrap();
        if more {
            assert_eq!(data.len(), 100, "a page that is not the last one is full");
        }
        after = data.last().map(|c| c["id"].as_str().unwrap().to_string());
        all.extend(data);
        if !more {
            break;
        }
    }
    (all, pages)
}

#[test]
fn stripe_pagination_visits_every_customer_once_newest_first() {
    let s = MockServer::start(MockConfig::default());
    assert_eq!(s.stripe_customers_len(), 2345);
    let base = s.url();

    let (all, pages) = walk(&base, "");
    assert_eq!((all.len(), pages), (2345, 24));
    let ids: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2345, "every id is unique");
    let created: Vec<i64> = all.iter().map(|c| c["created"].as_i64().unwrap()).collect();
    assert!(
        created.windows(2).all(|w| w[0] > w[1]),
        "strictly newest first"
    );
    assert_eq!(created[0], 1_700_000_000 + 60 * 2345);
    assert_eq!(*created.last().unwrap(), 1_700_000_000 + 60);
    for c in &all {
        let id = c["id"].as_str().unwrap();
        assert!(id.starts_with("cus_") && id.len() == 18, "{id}");
        assert_eq!(c["object"], "customer");
        assert_eq!(c["livemode"], false);
        assert_eq!(c["metadata"], json!({}));
        assert_eq!(c["description"], Value::Null);
        assert!(c["email"].as_str().unwrap().ends_with("@example.com"));
        assert!(c["name"].as_str().unwrap().starts_with("Customer "));
    }

    // Ids are stable across requests.
    let (again, _) = walk(&base, "");
    assert_eq!(again, all);

    // The default limit is 10, and the first page is the newest ten.
    let first = stripe(&base, "").json();
    assert_eq!(cus_ids(&first).len(), 10);
    assert_eq!(first["has_more"], true);
    let want: Vec<String> = all[..10]
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cus_ids(&first), want);

    // Small pages agree with the big ones.
    let p = stripe(&base, &format!("limit=3&starting_after={}", want[4])).json();
    assert_eq!(cus_ids(&p), want[5..8].to_vec());

    // `ending_before` returns the page just before the cursor, still newest first.
    let p = stripe(&base, &format!("limit=3&ending_before={}", want[5])).json();
    assert_eq!(cus_ids(&p), want[2..5].to_vec());
    assert_eq!(p["has_more"], true);
    let p = stripe(&base, &format!("limit=10&ending_before={}", want[2])).json();
    assert_eq!(cus_ids(&p), want[..2].to_vec());
    assert_eq!(p["has_more"], false);

    // The last page: has_more is false, and after the oldest there is nothing.
    let oldest = all.last().unwrap()["id"].as_str().unwrap();
    let p = stripe(&base, &format!("starting_after={oldest}")).json();
    assert_eq!(
        (p["data"].clone(), p["has_more"].clone()),
        (json!([]), json!(false))
    );
}

#[test]
fn stripe_created_filters() {
    let s = MockServer::start(MockConfig::default().stripe_customers(50));
    let base = s.url();
    // Customer k is created at 1_700_000_000 + 60 k.
    let at = |k: i64| 1_700_000_000 + 60 * k;
    let page = |q: &str| {
        let r = stripe(&base, q);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.json()
    };

    let b = page(&format!("limit=100&created[gte]={}", at(40)));
    assert_eq!(created(&b), (40..=50).rev().map(at).collect::<Vec<_>>());
    let b = page(&format!("limit=100&created[gt]={}", at(40)));
    assert_eq!(created(&b), (41..=50).rev().map(at).collect::<Vec<_>>());
    let b = page(&format!("limit=100&created[lte]={}", at(3)));
    assert_eq!(created(&b), vec![at(3), at(2), at(1)]);
    let b = page(&format!("limit=100&created[lt]={}", at(3)));
    assert_eq!(created(&b), vec![at(2), at(1)]);
    let b = page(&format!(
        "limit=100&created[gt]={}&created[lte]={}",
        at(10),
        at(13)
    ));
    assert_eq!(created(&b), vec![at(13), at(12), at(11)]);
    // Between two customers: gt and gte agree.
    let b = page(&format!("limit=100&created[gte]={}", at(48) + 1));
    assert_eq!(created(&b), vec![at(50), at(49)]);
    // Percent-encoded brackets are the same parameter.
    let b = page(&format!("limit=100&created%5Bgte%5D={}", at(48)));
    assert_eq!(created(&b), vec![at(50), at(49), at(48)]);
    let b = page(&format!("created={}", at(7)));
    assert_eq!(created(&b), vec![at(7)]);

    // Filters and pagination together: every match exactly once.
    let (all, pages) = walk(&base, &format!("&created[gte]={}", at(5)));
    assert_eq!((all.len(), pages), (46, 1));
    let b = page(&format!("limit=4&created[lt]={}", at(11)));
    assert_eq!(created(&b), vec![at(10), at(9), at(8), at(7)]);
    assert_eq!(b["has_more"], true);
    let last = cus_ids(&b).pop().unwrap();
    let b = page(&format!(
        "limit=4&created[lt]={}&starting_after={last}",
        at(11)
    ));
    assert_eq!(created(&b), vec![at(6), at(5), at(4), at(3)]);
    let last = cus_ids(&b).pop().unwrap();
    let b = page(&format!(
        "limit=4&created[lt]={}&starting_after={last}",
        at(11)
    ));
    assert_eq!(created(&b), vec![at(2), at(1)]);
    assert_eq!(b["has_more"], false);
}

fn stripe_err(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let e = r.json()["error"].clone();
    assert_eq!(e["type"], "invalid_request_error", "{e}");
    assert!(e["message"].is_string(), "{e}");
    e
}

#[test]
fn stripe_errors_and_auth() {
    let s = MockServer::start(MockConfig::default().stripe_customers(20));
    let base = s.url();
    let url = format!("{base}/stripe/v1/customers");

    // No key.
    let r = get(&url);
    let e = stripe_err(&r, 401);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key.")
    );
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Stripe\""));
    let e = stripe_err(&get_with(&url, &[("Authorization", "Bearer ")]), 401);
    assert!(e["message"].as_str().unwrap().starts_with("You did not"));

    // A wrong key is reported masked.
    let wrong = "sk_test_ThisIsNotTheRightKey9876";
    let r = get_with(&url, &[("Authorization", &format!("Bearer {wrong}"))]);
    let e = stripe_err(&r, 401);
    let msg = e["message"].as_str().unwrap();
    let masked = format!("sk_test_{}9876", "*".repeat("ThisIsNotTheRightKey".len()));
    assert_eq!(msg, format!("Invalid API Key provided: {masked}"));
    assert!(!r.text().contains("ThisIsNot"));
    assert!(!r.text().contains(wrong));
    assert!(s.counters().auth_failures >= 3);

    // Basic auth with the key as user name and an empty password.
    let basic = |user: &str| format!("Basic {}", b64(&format!("{user}:")));
    let r = get_with(&url, &[("Authorization", &basic(STRIPE_KEY))]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 10);
    let e = stripe_err(
        &get_with(&url, &[("Authorization", &basic("sk_test_nope"))]),
        401,
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid API Key provided: ")
    );

    // Bad limits.
    for q in ["limit=0", "limit=101", "limit=-1"] {
        let e = stripe_err(&stripe(&base, q), 400);
        assert_eq!(e["param"], "limit", "{q}");
    }
    let e = stripe_err(&stripe(&base, "limit=abc"), 400);
    assert_eq!(
        (e["param"].clone(), e["message"].clone()),
        (json!("limit"), json!("Invalid integer: abc"))
    );
    assert_eq!(stripe(&base, "limit=1").status, 200);
    assert_eq!(stripe(&base, "limit=100").status, 200);

    // Unknown cursor.
    let e = stripe_err(&stripe(&base, "starting_after=cus_x"), 400);
    assert_eq!(e["message"], "No such customer: 'cus_x'");
    assert_eq!(e["param"], "starting_after");
    assert_eq!(e["code"], "resource_missing");
    let e = stripe_err(&stripe(&base, "ending_before=cus_x"), 400);
    assert_eq!(e["param"], "ending_before");

    // Both cursors, unknown parameters, bad filter values.
    let first = cus_ids(&stripe(&base, "limit=2").json());
    let e = stripe_err(
        &stripe(
            &base,
            &format!("starting_after={}&ending_before={}", first[1], first[0]),
        ),
        400,
    );
    assert!(e["message"].as_str().unwrap().contains("only specify one"));
    let e = stripe_err(&stripe(&base, "page=2"), 400);
    assert_eq!(e["message"], "Received unknown parameter: page");
    let e = stripe_err(&stripe(&base, "created[gte]=yesterday"), 400);
    assert_eq!(e["param"], "created[gte]");
}

pub fn b64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn stripe_add_customers_are_newer_than_all_others() {
    let s = MockServer::start(MockConfig::default().stripe_customers(30));
    let base = s.url();
    let (before, _) = walk(&base, "");
    let newest = before[0]["created"].as_i64().unwrap();

    s.stripe_add_customers(3);
    assert_eq!(s.stripe_customers_len(), 33);
    let new = stripe(&base, &format!("created[gt]={newest}")).json();
    let c = created(&new);
    assert_eq!(c, vec![newest + 180, newest + 120, newest + 60]);
    assert_eq!(new["has_more"], false);

    let (after, _) = walk(&base, "");
    assert_eq!(after.len(), 33);
    assert_eq!(
        after[3..],
        before[..],
        "old customers unchanged, after the new ones"
    );
    let ids: HashSet<&str> = after.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 33);
}

// ---------------------------------------------------------------------------------------------

/// RFC 3339 (with fraction and offset) to Unix microseconds: the test's own parser.
pub fn instant(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, mo, d) = (n(0..4), n(5..7), n(8..10));
    let (h, mi, se) = (n(11..13), n(14..16), n(17..19));
    let mut i = 19;
    let mut micros = 0;
    if s.as_bytes()[i] == b'.' {
        let digits: String = s[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        i += 1 + digits.len();
        micros = format!("{digits:0<6}")[..6].parse::<i64>().unwrap();
    }
    let offset = match &s[i..] {
        "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().unwrap() * 3600 + o[4..6].parse::<i64>().unwrap() * 60)
        }
    };
    // Days from civil (Howard Hinnant).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + h * 3600 + mi * 60 + se - offset) * 1_000_000 + micros
}

fn tz(base: &str, query: &str) -> Vec<(u64, String)> {
    let r = get(&format!("{base}/tz/events?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["updated_at"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A query value with `+` and `:` percent-encoded.
fn q(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn tz_events_instants_increase_but_their_text_does_not() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let recs = tz(&base, "");
    assert_eq!(recs.len(), 30);
    assert_eq!(
        recs.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    let instants: Vec<i64> = recs.iter().map(|r| instant(&r.1)).collect();
    assert!(
        instants.windows(2).all(|w| w[0] < w[1]),
        "instants increase with id"
    );

    let mut by_text = recs.clone();
    by_text.sort_by(|a, b| a.1.cmp(&b.1));
    assert_ne!(
        by_text.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>(),
        "the text does not sort like the instants"
    );
    assert_eq!(recs[8].1, "2023-01-02T01:00:00+00:00");
    assert_eq!(recs[9].1, "2023-01-01T23:00:00-05:00");
    assert!(recs[9].1 < recs[8].1 && instants[9] > instants[8]);
    assert_eq!(instants[9] - instants[8], 3 * 3600 * 1_000_000);

    for suffix in ["-05:00", "+02:00", "Z", "+05:30", "+00:00"] {
        assert!(recs.iter().any(|r| r.1.ends_with(suffix)), "{suffix}");
    }
    assert!(recs.iter().any(|r| r.1.contains(".250+00:00")));
    assert!(recs.iter().any(|r| r.1.contains(".123456")));

    // Offset paging.
    let page = tz(&base, "offset=25&limit=10");
    assert_eq!(
        page.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![26, 27, 28, 29, 30]
    );
    assert_eq!(tz(&base, "offset=2&limit=2"), recs[2..4].to_vec());
    assert_eq!(get(&format!("{base}/tz/events?limit=0")).status, 400);
}

#[test]
fn tz_since_compares_instants_not_text() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let ids_since = |since: &str| -> Vec<u64> {
        tz(&base, &format!("since={}", q(since)))
            .into_iter()
            .map(|r| r.0)
            .collect()
    };
    let from = |first: u64| (first..=30).collect::<Vec<u64>>();

    // Record 10 is 2023-01-02T04:00:00Z, whatever the offset `since` is written with.
    for since in [
        "2023-01-01T23:00:00-05:00",
        "2023-01-02T04:00:00Z",
        "2023-01-02T04:00:00+00:00",
        "2023-01-02T09:30:00+05:30",
        "2023-01-02T06:00:00.000+02:00",
    ] {
        assert_eq!(ids_since(since), from(10), "{since}");
    }
    assert_eq!(ids_since("2023-01-02T04:00:00.000001Z"), from(11));
    assert_eq!(ids_since("2023-01-02T03:59:59.999999Z"), from(10));
    // Record 11 is at 07:00:00.250Z: inclusive to the microsecond.
    let r11 = tz(&base, "")[10].1.clone();
    assert!(r11.contains(".250"), "{r11}");
    assert_eq!(ids_since(&r11), from(11));
    assert_eq!(ids_since("2023-01-02T07:00:00.251Z"), from(12));
    assert_eq!(ids_since("2023-01-02T07:00:00.25Z"), from(11));
    assert_eq!(ids_since("2000-01-01T00:00:00Z"), from(1));
    assert!(ids_since("2099-01-01T00:00:00Z").is_empty());

    // An unencoded `+` is a space in a query string: that is not a timestamp.
    let r = get(&format!("{base}/tz/events?since=2023-01-02T09:30:00+05:30"));
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&format!("{base}/tz/events?since=yesterday")).status,
        400
    );
}

#[test]
fn tz_touch_moves_records_to_a_later_instant_written_at_minus_five() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let before = tz(&base, "");
    let newest = before.iter().map(|r| instant(&r.1)).max().unwrap();
    let newest_text = before.iter().map(|r| r.1.clone()).max().unwrap();

    s.tz_touch(&[3, 7, 999]);
    let after = tz(&base, "");
    assert_eq!(after.len(), 30);
    for (b, a) in before.iter().zip(&after) {
        if [3, 7].contains(&a.0) {
            assert!(a.1.ends_with("-05:00"), "{}", a.1);
            assert_eq!(instant(&a.1), newest + 3600 * 1_000_000);
            // Later as an instant, but not the greatest text.
            assert!(a.1 < newest_text, "{} vs {newest_text}", a.1);
        } else {
            assert_eq!(a, b);
        }
    }
    // The touched records are exactly those after the previous newest instant.
    let since = q(&after[29].1);
    let got: Vec<u64> = tz(&base, &format!("since={since}"))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, vec![3, 7, 30]);
    let just_after = "2023-01-04T16:00:00.000001Z";
    assert_eq!(instant(just_after), newest + 1);
    let got: Vec<u64> = tz(&base, &format!("since={}", q(just_after)))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, vec![3, 7]);
}

#[test]
fn index_lists_the_new_endpoints() {
    let s = MockServer::start(MockConfig::default().stripe_customers(7));
    let index = get(&format!("{}/", s.url())).json();
    assert_eq!(
        index["apis"],
        json!([
            "/stripe/v1/customers",
            "/tz/events",
            "/api/v2/incremental/tickets/cursor.json",
            "/api/conversations.list",
            "/repos/{owner}/{repo}/issues",
            "/repositories/{id}/issues"
        ])
    );
    assert_eq!(index["stripe_customers"], 7);
    assert_eq!(index["zendesk_tickets"], 2345);
    assert_eq!(index["slack_channels"], 345);
    assert_eq!(
        index["github_repos"],
        json!([
            {"full_name": "acme/api", "id": 700001, "issues": 250},
            {"full_name": "acme/web", "id": 700002, "issues": 120},
            {"full_name": "acme/empty", "id": 700003, "issues": 0}
        ])
    );
    let hostile: Vec<&str> = index["hostile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for path in &hostile {
        assert!(path.starts_with("/hostile/"), "{path}");
        let r = crate::client::open(&format!("{}{path}", s.url()), &[]).unwrap();
        assert_ne!(r.status, 404, "{path}");
    }
    assert_eq!(hostile.len(), 9);
}
