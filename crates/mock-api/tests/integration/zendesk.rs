//! The Zendesk imitation: cursor-based incremental ticket export.

use std::collections::HashSet;
use std::time::Duration;

use mock_api::{MockConfig, MockServer, RateLimitMode, ZENDESK_EMAIL, ZENDESK_TOKEN};
use serde_json::{Value, json};

use crate::apis::{b64, instant};
use crate::client::{Resp, get, get_with};

const PATH: &str = "/api/v2/incremental/tickets/cursor.json";

fn auth() -> String {
    format!(
        "Basic {}",
        b64(&format!("{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}"))
    )
}

fn export_url(url: &str) -> Resp {
    get_with(url, &[("Authorization", &auth())])
}

fn export(base: &str, query: &str) -> Resp {
    export_url(&format!("{base}{PATH}?{query}"))
}

/// A base64 cursor as a query value.
fn enc(c: &str) -> String {
    c.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn ok(r: Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn ticket_ids(page: &Value) -> Vec<u64> {
    page["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect()
}

/// Follows `after_url` from `first` until `end_of_stream`; returns every ticket and every page.
fn walk(first: &str) -> (Vec<Value>, Vec<Value>) {
    let mut url = first.to_string();
    let (mut tickets, mut pages) = (Vec::new(), Vec::new());
    loop {
        assert!(pages.len() < 10_000, "does not terminate");
        let page = ok(export_url(&url));
        tickets.extend(page["tickets"].as_array().unwrap().iter().cloned());
        let end = page["end_of_stream"].as_bool().unwrap();
        url = page["after_url"].as_str().unwrap().to_string();
        pages.push(page);
        if end {
            return (tickets, pages);
        }
    }
}

/// `(generated_timestamp, id)` of each ticket.
fn order(tickets: &[Value]) -> Vec<(i64, u64)> {
    tickets
        .iter()
        .map(|t| {
            (
                t["generated_timestamp"].as_i64().unwrap(),
                t["id"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn zendesk_export_visits_every_ticket_once_in_change_order() {
    let s = MockServer::start(MockConfig::default());
    assert_eq!(s.zendesk_tickets_len(), 2345);
    let base = s.url();
    let (tickets, pages) = walk(&format!("{base}{PATH}?start_time=0"));

    // Default per_page 1000: three pages, only the last one says end_of_stream.
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["tickets"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![1000, 1000, 345]);
    let ends: Vec<bool> = pages
        .iter()
        .map(|p| p["end_of_stream"].as_bool().unwrap())
        .collect();
    assert_eq!(ends, vec![false, false, true]);

    let ids: HashSet<u64> = tickets.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=2345).collect::<HashSet<u64>>(),
        "each ticket once"
    );
    let ord = order(&tickets);
    assert!(
        ord.windows(2).all(|w| w[0] < w[1]),
        "ordered by generated_timestamp, then id"
    );
    assert!(
        ord.windows(2).any(|w| w[0].0 == w[1].0),
        "some tickets share a timestamp"
    );
    let by_id: Vec<u64> = tickets.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert!(
        !by_id.windows(2).all(|w| w[0] < w[1]),
        "not simply id order"
    );

    for t in &tickets {
        let updated = t["updated_at"].as_str().unwrap();
        let created = t["created_at"].as_str().unwrap();
        assert!(updated.ends_with('Z') && updated.len() == 20, "{updated}");
        assert_eq!(
            instant(updated) / 1_000_000,
            t["generated_timestamp"].as_i64().unwrap()
        );
        assert!(instant(created) <= instant(updated));
        assert!(
            t["subject"]
                .as_str()
                .unwrap()
                .contains(&format!("#{}", t["id"]))
        );
        let status = t["status"].as_str().unwrap();
        assert!(
            [
                "new", "open", "pending", "hold", "solved", "closed", "deleted"
            ]
            .contains(&status),
            "{status}"
        );
        assert_eq!(status == "deleted", t["id"].as_u64().unwrap() % 97 == 0);
        assert_eq!(
            t["url"],
            json!(format!("{base}/api/v2/tickets/{}.json", t["id"]))
        );
    }

    // Cursors: after_url is absolute and carries after_cursor; before_* is null on the first
    // page and the request's cursor afterwards.
    assert_eq!(pages[0]["before_cursor"], Value::Null);
    assert_eq!(pages[0]["before_url"], Value::Null);
    for (i, p) in pages.iter().enumerate() {
        let after = p["after_cursor"].as_str().unwrap();
        assert_eq!(
            p["after_url"],
            json!(format!("{base}{PATH}?cursor={}", enc(after))),
            "page {i}"
        );
        if i > 0 {
            assert_eq!(p["before_cursor"], pages[i - 1]["after_cursor"]);
        }
    }

    // The same walk with `cursor=` by hand, and the dataset is deterministic.
    let again = MockServer::start(MockConfig::default());
    let mut cursor = None::<String>;
    let mut all = Vec::new();
    loop {
        let q = match &cursor {
            None => "start_time=0".to_string(),
            Some(c) => format!("cursor={}", enc(c)),
        };
        let p = ok(export(&again.url(), &q));
        all.extend(p["tickets"].as_array().unwrap().iter().map(|t| {
            let mut t = t.clone();
            t["url"] = Value::Null;
            t
        }));
        cursor = p["after_cursor"].as_str().map(str::to_string);
        if p["end_of_stream"] == true {
            break;
        }
    }
    let mine: Vec<Value> = tickets
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t["url"] = Value::Null;
            t
        })
        .collect();
    assert_eq!(all, mine);
}

#[test]
fn zendesk_small_pages_start_time_and_exclude_deleted() {
    let s = MockServer::start(MockConfig::default().zendesk_tickets(300));
    let base = s.url();
    let (full, _) = walk(&format!("{base}{PATH}?start_time=0&per_page=1000"));
    assert_eq!(full.len(), 300);

    // Small pages cut through runs of equal timestamps without losing or repeating a ticket;
    // the next URLs keep per_page.
    let (small, pages) = walk(&format!("{base}{PATH}?per_page=7&start_time=0"));
    assert_eq!(order(&small), order(&full));
    assert_eq!(pages.len(), 43);
    assert!(
        pages[0]["after_url"]
            .as_str()
            .unwrap()
            .contains("per_page=7&cursor=")
    );
    let cut_in_a_tie = pages.windows(2).any(|w| {
        let a = w[0]["tickets"].as_array().unwrap().last().unwrap();
        let b = &w[1]["tickets"][0];
        a["generated_timestamp"] == b["generated_timestamp"]
    });
    assert!(
        cut_in_a_tie,
        "some page boundary falls between equal timestamps"
    );
    // A last page that is exactly full still says end_of_stream, and is the last.
    let (exact, pages) = walk(&format!("{base}{PATH}?start_time=0&per_page=100"));
    assert_eq!((exact.len(), pages.len()), (300, 3));

    // start_time keeps the tickets generated at or after it.
    let t = full[150]["generated_timestamp"].as_i64().unwrap();
    let want: Vec<(i64, u64)> = order(&full).into_iter().filter(|o| o.0 >= t).collect();
    let (since, _) = walk(&format!("{base}{PATH}?start_time={t}"));
    assert_eq!(order(&since), want);
    assert!(want.len() < 300 && want[0].0 == t);
    let (later, _) = walk(&format!("{base}{PATH}?start_time={}", t + 1));
    assert_eq!(
        order(&later),
        want.into_iter().filter(|o| o.0 > t).collect::<Vec<_>>()
    );

    // Past the newest change: nothing, end_of_stream, and a cursor to continue from.
    let far = ok(export(&base, "start_time=1720000000"));
    assert_eq!(far["tickets"], json!([]));
    assert_eq!(far["end_of_stream"], true);
    assert!(far["after_cursor"].is_string());

    // per_page above 1000 is 1000.
    let big = MockServer::start(MockConfig::default().zendesk_tickets(1500));
    let p = ok(export(&big.url(), "start_time=0&per_page=5000"));
    assert_eq!(p["tickets"].as_array().unwrap().len(), 1000);
    assert_eq!(p["end_of_stream"], false);

    // exclude_deleted drops tickets 97, 194 and 291.
    let (kept, _) = walk(&format!("{base}{PATH}?start_time=0&exclude_deleted=true"));
    assert_eq!(kept.len(), 297);
    assert!(kept.iter().all(|t| t["status"] != "deleted"));
    assert_eq!(full.iter().filter(|t| t["status"] == "deleted").count(), 3);
}

#[test]
fn zendesk_saved_after_cursor_returns_exactly_the_touched_tickets() {
    let s = MockServer::start(MockConfig::default().zendesk_tickets(400));
    let base = s.url();
    let (all, pages) = walk(&format!("{base}{PATH}?start_time=0&per_page=150"));
    assert_eq!(all.len(), 400);
    let last = pages.last().unwrap();
    let saved = last["after_cursor"].as_str().unwrap().to_string();
    let saved_url = last["after_url"].as_str().unwrap().to_string();

    // Nothing changed: an empty page, still at the end, with the same cursor.
    let p = ok(export(&base, &format!("cursor={}", enc(&saved))));
    assert_eq!(p["tickets"], json!([]));
    assert_eq!(p["end_of_stream"], true);
    assert_eq!(p["after_cursor"], json!(saved));

    let newest = all.last().unwrap()["generated_timestamp"].as_i64().unwrap();
    s.zendesk_touch(&[17, 5, 333, 99_999]);
    let p = ok(export_url(&saved_url));
    assert_eq!(ticket_ids(&p), vec![5, 17, 333]);
    assert_eq!(p["end_of_stream"], true);
    for t in p["tickets"].as_array().unwrap() {
        assert_eq!(t["generated_timestamp"], json!(newest + 60));
        assert_eq!(
            instant(t["updated_at"].as_str().unwrap()) / 1_000_000,
            newest + 60
        );
    }
    let next = p["after_cursor"].as_str().unwrap().to_string();
    assert_ne!(next, saved);
    assert_eq!(
        ok(export(&base, &format!("cursor={}", enc(&next))))["tickets"],
        json!([])
    );

    // A full export still has each ticket once, the touched ones last.
    let (again, _) = walk(&format!("{base}{PATH}?start_time=0"));
    assert_eq!(again.len(), 400);
    let tail: Vec<u64> = again[397..]
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(tail, vec![5, 17, 333]);
}

fn zendesk_err(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

#[test]
fn zendesk_auth_and_parameter_errors() {
    let s = MockServer::start(MockConfig::default().zendesk_tickets(10));
    let base = s.url();
    let url = format!("{base}{PATH}?start_time=0");

    let r = get(&url);
    assert_eq!(
        zendesk_err(&r, 401),
        json!({"error": "Couldn't authenticate you"})
    );
    assert!(r.header("www-authenticate").is_some());
    assert!(r.header("x-rate-limit").is_none());
    for creds in [
        format!("{ZENDESK_EMAIL}/token:wrong"),
        format!("{ZENDESK_EMAIL}:{ZENDESK_TOKEN}"),
        format!("other@example.com/token:{ZENDESK_TOKEN}"),
    ] {
        let r = get_with(
            &url,
            &[("Authorization", &format!("Basic {}", b64(&creds)))],
        );
        assert_eq!(
            zendesk_err(&r, 401)["error"],
            "Couldn't authenticate you",
            "{creds}"
        );
    }
    let r = get_with(
        &url,
        &[("Authorization", &format!("Bearer {ZENDESK_TOKEN}"))],
    );
    assert_eq!(r.status, 401);
    assert_eq!(s.counters().auth_failures, 5);

    // Without `.json` it is the same endpoint.
    let r = export_url(&format!(
        "{base}/api/v2/incremental/tickets/cursor?start_time=0"
    ));
    assert_eq!(ok(r)["tickets"].as_array().unwrap().len(), 10);

    let e = zendesk_err(&export(&base, ""), 400);
    assert_eq!(e["error"], "InvalidValue");
    assert!(e["description"].as_str().unwrap().contains("start_time"));
    let e = zendesk_err(&export(&base, "start_time=yesterday"), 400);
    assert_eq!(e["error"], "InvalidValue");
    let e = zendesk_err(&export(&base, "cursor=bm90LWEtY3Vyc29y"), 400);
    assert_eq!(e["error"], "InvalidValue");
    assert_eq!(export(&base, "start_time=0&per_page=0").status, 400);
    assert_eq!(export(&base, "start_time=0&per_page=x").status, 400);

    // start_time within the last minute (or in the future) is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for t in [now, now + 3600] {
        let e = zendesk_err(&export(&base, &format!("start_time={t}")), 422);
        assert_eq!(e["error"], "InvalidValue");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("Too recent start_time")
        );
    }
    assert_eq!(
        export(&base, &format!("start_time={}", now - 120)).status,
        200
    );

    // A cursor wins over start_time.
    let first = ok(export(&base, "start_time=0&per_page=4"));
    let c = first["after_cursor"].as_str().unwrap();
    let second = ok(export(
        &base,
        &format!("start_time=0&per_page=4&cursor={}", enc(c)),
    ));
    assert_eq!(second["before_cursor"], json!(c));
    assert_ne!(ticket_ids(&second), ticket_ids(&first));
}

#[test]
fn zendesk_rate_limit_headers_and_429() {
    let s = MockServer::start(MockConfig::default().zendesk_tickets(5));
    let base = s.url();
    // Without a configured limit: the nominal 700 per minute, counting down, never refused.
    let a = export(&base, "start_time=0");
    let b = export(&base, "start_time=0");
    for (r, remaining) in [(&a, "699"), (&b, "698")] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-rate-limit"), Some("700"));
        assert_eq!(r.header("ratelimit-limit"), Some("700"));
        assert_eq!(r.header("x-rate-limit-remaining"), Some(remaining));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
        let reset: u64 = r.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }

    let s = MockServer::start(
        MockConfig::default()
            .zendesk_tickets(5)
            .zendesk_rate_limit(RateLimitMode::new(2, Duration::from_secs(60))),
    );
    let base = s.url();
    assert_eq!(export(&base, "start_time=0").status, 200);
    let r = export(&base, "start_time=0");
    assert_eq!(
        (r.status, r.header("x-rate-limit-remaining")),
        (200, Some("0"))
    );
    let r = export(&base, "start_time=0");
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.header("x-rate-limit"), Some("2"));
    assert_eq!(r.header("x-rate-limit-remaining"), Some("0"));
    assert_eq!(r.json()["error"], "APIRateLimitExceeded");
    assert_eq!(s.counters().rate_limited, 1);
    // Bad credentials are answered before the limiter.
    assert_eq!(get(&format!("{base}{PATH}?start_time=0")).status, 401);
}
