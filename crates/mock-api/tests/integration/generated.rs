use mock_api::{MockConfig, MockServer};
use serde_json::json;

use crate::client::{get, ids, post};

const N: u64 = 95;

/// Walks one pagination style to the end; returns the ids in the order received.
fn walk(base: &str, style: &str, extra: &str) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut guard = || {
        pages += 1;
        assert!(pages < 100, "{style}: does not terminate");
    };
    match style {
        "offset" => {
            let mut offset = 0;
            loop {
                guard();
                let r = get(&format!("{base}/gen/offset?offset={offset}&limit=7{extra}"));
                let body = r.json();
                let total = body["total"].as_u64().unwrap();
                assert_eq!(r.header("x-total-count"), Some(total.to_string().as_str()));
                seen.extend(ids(&body["data"]));
                offset += 7;
                if offset >= total {
                    break;
                }
            }
        }
        "page" => {
            let mut page = 1;
            loop {
                guard();
                let body = get(&format!("{base}/gen/page?page={page}&per_page=7{extra}")).json();
                assert_eq!(body["page"], page);
                seen.extend(ids(&body["results"]));
                if page >= body["total_pages"].as_u64().unwrap() {
                    break;
                }
                page += 1;
            }
        }
        "page0" => {
            for page in 0.. {
                guard();
                let got = ids(&get(&format!("{base}/gen/page0?page={page}&size=7{extra}")).json());
                let short = got.len() < 7;
                seen.extend(got);
                if short {
                    break;
                }
            }
        }
        "cursor" => {
            let mut cursor = String::new();
            loop {
                guard();
                let body = get(&format!("{base}/gen/cursor?cursor={cursor}&limit=7{extra}")).json();
                seen.extend(ids(&body["items"]));
                assert_eq!(body["has_more"], !body["next_cursor"].is_null());
                match body["next_cursor"].as_str() {
                    Some(c) => cursor = c.to_string(),
                    None => break,
                }
            }
        }
        "cursor_header" => {
            let mut cursor = String::new();
            loop {
                guard();
                let r = get(&format!(
                    "{base}/gen/cursor_header?cursor={cursor}&limit=7{extra}"
                ));
                seen.extend(ids(&r.json()));
                match r.header("x-next-cursor") {
                    Some(c) => cursor = c.to_string(),
                    None => break,
                }
            }
        }
        "cursor_body" => {
            let mut cursor = serde_json::Value::Null;
            loop {
                guard();
                let r = post(
                    &format!("{base}/gen/cursor_body?x=1{extra}"),
                    &[("Content-Type", "application/json")],
                    &json!({ "cursor": cursor, "limit": 7 }).to_string(),
                );
                let body = r.json();
                seen.extend(ids(&body["records"]));
                if body["next"].is_null() {
                    break;
                }
                cursor = body["next"].clone();
            }
        }
        "next_absolute" => {
            let mut url = format!("{base}/gen/next_absolute?limit=7{extra}");
            loop {
                guard();
                let body = get(&url).json();
                seen.extend(ids(&body["data"]));
                match body["links"]["next"].as_str() {
                    Some(n) => {
                        assert!(n.starts_with(&format!("{base}/gen/next_absolute?")), "{n}");
                        url = n.to_string();
                    }
                    None => break,
                }
            }
        }
        "next_relative" => {
            let mut url = format!("{base}/gen/next_relative?limit=7{extra}");
            loop {
                guard();
                let body = get(&url).json();
                seen.extend(ids(&body["data"]));
                match body["next"].as_str() {
                    Some(n) => {
                        assert!(n.starts_with("/gen/next_relative?"), "{n}");
                        url = format!("{base}{n}");
                    }
                    None => break,
                }
            }
        }
        "next_relative_dot" => {
            let mut url = format!("{base}/gen/next_relative_dot?limit=7{extra}");
            loop {
                guard();
                let body = get(&url).json();
                seen.extend(ids(&body["data"]));
                match body["next"].as_str() {
                    Some(n) => {
                        assert!(n.starts_with("next_relative_dot?"), "{n}");
                        url = format!("{base}/gen/{n}");
                    }
                    None => break,
                }
            }
        }
        "link" => {
            let mut url = Some(format!("{base}/gen/link?per_page=7{extra}"));
            while let Some(u) = url {
                guard();
                let r = get(&u);
                seen.extend(ids(&r.json()));
                url = r.link("next");
                if let Some(n) = &url {
                    assert!(r.link("last").is_some());
                    assert!(n.starts_with(&format!("{base}/gen/link?")), "{n}");
                }
            }
        }
        "odata" => {
            let mut url = Some(format!("{base}/gen/odata?$top=7{extra}"));
            while let Some(u) = url {
                guard();
                let body = get(&u).json();
                seen.extend(ids(&body["value"]));
                url = body["@odata.nextLink"].as_str().map(str::to_string);
            }
        }
        other => panic!("unknown style {other}"),
    }
    seen
}

const STYLES: [&str; 11] = [
    "offset",
    "page",
    "page0",
    "cursor",
    "cursor_header",
    "cursor_body",
    "next_absolute",
    "next_relative",
    "next_relative_dot",
    "link",
    "odata",
];

#[test]
fn every_style_yields_every_record_exactly_once() {
    let s = MockServer::start(MockConfig::default().generated_records(N as usize));
    for style in STYLES {
        assert_eq!(
            walk(&s.url(), style, ""),
            (1..=N).collect::<Vec<_>>(),
            "{style}"
        );
    }
    // The other origin serves the same dataset, links pointing at itself.
    assert_eq!(
        walk(&s.other_origin_url(), "next_absolute", ""),
        (1..=N).collect::<Vec<_>>()
    );
}

#[test]
fn record_shape_defaults_and_single() {
    let s = MockServer::start(MockConfig::default());
    let body = get(&format!("{}/gen/offset", s.url())).json();
    assert_eq!(body["total"], 250);
    assert_eq!(ids(&body["data"]), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        body["data"][2],
        json!({"id":3,"name":"item-3","value":21,"updated_at":"2024-01-01T00:03:00Z","tags":["a","b"],"nested":{"x":3}})
    );
    let r = get(&format!("{}/gen/single", s.url()));
    assert_eq!(r.json()["id"], 1);
    assert_eq!(
        get(&format!("{}/gen/single?id=7", s.url())).json()["name"],
        "item-7"
    );
    assert_eq!(
        get(&format!("{}/gen/offset?limit=abc", s.url())).status,
        400
    );
    assert_eq!(
        get(&format!("{}/gen/cursor?cursor=%21%21", s.url())).status,
        400
    );
    assert_eq!(
        get(&format!("{}/gen/cursor?updated_since=yesterday", s.url())).status,
        400
    );
}

#[test]
fn updated_since_sees_touched_and_added_records() {
    let s = MockServer::start(MockConfig::default().generated_records(N as usize));
    let since = "&updated_since=2025-01-01T00:00:00Z";
    for style in STYLES {
        assert_eq!(walk(&s.url(), style, since), Vec::<u64>::new(), "{style}");
    }
    s.touch_records(&[3, 50, 9999]);
    s.add_records(12);
    let expected: Vec<u64> = [3, 50].into_iter().chain(N + 1..=N + 12).collect();
    for style in STYLES {
        assert_eq!(walk(&s.url(), style, since), expected, "{style}");
    }
    // Without the filter: everything, still in id order.
    assert_eq!(
        walk(&s.url(), "cursor", ""),
        (1..=N + 12).collect::<Vec<_>>()
    );
    // A partial filter on the initial timestamps (record N at 2024-01-01T00:00:00Z + N min).
    let r = get(&format!(
        "{}/gen/offset?limit=100&updated_since=2024-01-01T01:30:00Z",
        s.url()
    ));
    let got = ids(&r.json()["data"]);
    assert_eq!(got[0], 3);
    assert!(got.contains(&90) && !got.contains(&89));
}

#[test]
fn updated_after_is_exclusive_where_updated_since_is_inclusive() {
    let s = MockServer::start(MockConfig::default().generated_records(N as usize));
    // Record 90 is at 2024-01-01T01:30:00Z.
    let at_90 = "2024-01-01T01:30:00Z";
    for style in STYLES {
        assert_eq!(
            walk(&s.url(), style, &format!("&updated_since={at_90}")),
            (90..=N).collect::<Vec<_>>(),
            "{style}"
        );
        assert_eq!(
            walk(&s.url(), style, &format!("&updated_after={at_90}")),
            (91..=N).collect::<Vec<_>>(),
            "{style}"
        );
    }
    let offset =
        |q: &str| ids(&get(&format!("{}/gen/offset?limit=100&{q}", s.url())).json()["data"]);
    // Any offset, and fractions: compared as instants.
    assert_eq!(offset("updated_after=2024-01-01T02:30:00%2B01:00")[0], 91);
    assert_eq!(offset("updated_after=2024-01-01T01:29:59.5Z")[0], 90);
    assert_eq!(offset("updated_since=2024-01-01T01:29:59.5Z")[0], 90);
    assert_eq!(offset("updated_after=2024-01-01T01:30:00.001Z")[0], 91);
    // Both: the stricter one wins.
    assert_eq!(
        offset("updated_since=2024-01-01T01:30:00Z&updated_after=2024-01-01T01:31:00Z")[0],
        92
    );
    assert!(
        offset(&format!(
            "updated_after=2024-01-01T{:02}:{:02}:00Z",
            N / 60,
            N % 60
        ))
        .is_empty()
    );
    // The POST cursor endpoint takes it from the JSON body.
    let r = post(
        &format!("{}/gen/cursor_body", s.url()),
        &[("Content-Type", "application/json")],
        &format!("{{\"limit\": 3, \"updated_after\": \"{at_90}\"}}"),
    );
    assert_eq!(ids(&r.json()["records"]), vec![91, 92, 93]);
    assert_eq!(
        get(&format!("{}/gen/cursor?updated_after=yesterday", s.url())).status,
        400
    );
    // Touched records are after the old timestamps.
    s.touch_records(&[5]);
    assert_eq!(offset(&format!("updated_after={at_90}"))[0], 5);
}
