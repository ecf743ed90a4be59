//! Every pagination style of the mock, walked to the end: all records exactly
//! once, in order.

mod common;
use common::*;

const SPEC: &str = r#"
version: 1
name: gen
config:
  base_url: {}
base_url: "{{ config.base_url }}"
streams:
  offset:
    path: /gen/offset
    pagination: { type: offset, page_size: 7, stop: { total_path: $.total } }
    records: { path: $.data }
  offset_header_total:
    path: /gen/offset
    pagination: { type: offset, page_size: 25, stop: { short_page: false, total_header: X-Total-Count } }
    records: { path: "$.data[*]" }
  page:
    path: /gen/page
    pagination: { type: page_number, page_size: 20 }
    records: { path: $.results }
  page0:
    path: /gen/page0
    pagination: { type: page_number, start: 0, size_param: size, page_size: 30 }
  cursor:
    path: /gen/cursor
    pagination: { type: cursor, cursor_path: $.next_cursor, size_param: limit, page_size: 40, stop: { has_more_path: $.has_more } }
    records: { path: $.items }
  cursor_header:
    path: /gen/cursor_header
    pagination: { type: cursor, cursor_header: X-Next-Cursor, size_param: limit, page_size: 33 }
  cursor_body:
    path: /gen/cursor_body
    method: POST
    body: { limit: 50 }
    pagination: { type: cursor, cursor_path: $.next, send_in: body }
    records: { path: $.records }
  next_absolute:
    path: /gen/next_absolute
    params: { limit: "21" }
    pagination: { type: next_url, next_url_path: $.links.next }
    records: { path: $.data }
  next_relative:
    path: /gen/next_relative
    params: { limit: "19" }
    pagination: { type: next_url, next_url_path: $.next }
    records: { path: $.data }
  next_relative_dot:
    path: /gen/next_relative_dot
    params: { limit: "23" }
    pagination: { type: next_url, next_url_path: $.next }
    records: { path: $.data }
  link:
    path: /gen/link
    params: { per_page: "30" }
    pagination: { type: link_header }
  odata:
    path: /gen/odata
    pagination: { type: next_url, next_url_path: "$['@odata.nextLink']" }
    records: { path: $.value }
  single:
    path: /gen/single
    params: { id: "7" }
"#;

#[test]
fn every_style_yields_every_record_once() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "gen",
        &SPEC.replace(
            "base_url: {}",
            &format!("base_url: {{ default: \"{}\" }}", server.url()),
        ),
    );
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    run_ok(tmp.path(), &["sync", "gen", "--dest", &dest], &[]);
    let all: Vec<u64> = (1..=250).collect();
    for stream in [
        "offset",
        "offset_header_total",
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
    ] {
        let got = read_jsonl(&tmp.path().join("out"), stream);
        assert_eq!(ids(&got), all, "stream {stream}");
        assert_eq!(
            got[0]["name"], "item-1",
            "stream {stream}: records as the API returned them"
        );
    }
    let single = read_jsonl(&tmp.path().join("out"), "single");
    assert_eq!(ids(&single), vec![7], "a single object is one record");

    let reqs = server.requests();
    let count = |p: &str| reqs.iter().filter(|r| r.path == p).count();
    // 250 records at 7 per page: 36 pages; the total stops it without an extra request.
    assert_eq!(
        count("/gen/offset"),
        36 + 10,
        "offset (36) + offset_header_total (10)"
    );
    assert_eq!(count("/gen/page"), 13, "13 pages of 20, the last one short");
    assert_eq!(count("/gen/cursor"), 7, "has_more false on page 7");
    let body_reqs: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/gen/cursor_body")
        .collect();
    assert_eq!(body_reqs.len(), 5);
    assert!(
        body_reqs[1]
            .body
            .as_deref()
            .unwrap_or("")
            .contains("\"cursor\""),
        "token sent in the JSON body"
    );
    assert!(
        reqs.iter()
            .all(|r| r.method != "POST" || r.path == "/gen/cursor_body")
    );
}

#[test]
fn a_repeated_next_token_is_a_loop_error() {
    // /gen/single ignores the cursor, so the token never changes: page 3
    // would repeat page 2 forever.
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let (tmp, out) = sync_items(
        &server,
        "    path: /gen/single\n    params: { id: \"1\" }\n    pagination: { type: cursor, cursor_path: $.name, send_in: header, cursor_param: X-Cursor }\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = error_lines(&out);
    assert!(
        err.contains("pagination loop: page 3 repeats the request of page 2"),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "the repeated request is never sent"
    );
    assert_eq!(
        read_jsonl(&tmp.path().join("out"), "items").len(),
        2,
        "pages before the loop stay written"
    );
}

#[test]
fn parallel_pages_keep_order_and_lose_nothing() {
    let server = mock_api::MockServer::start(mock_api::MockConfig {
        latency: std::time::Duration::from_millis(5),
        ..Default::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: par
base_url: "{}"
streams:
  offset:
    path: /gen/offset
    pagination: {{ type: offset, page_size: 9, parallel: true, stop: {{ total_path: $.total }} }}
    records: {{ path: $.data }}
  page:
    path: /gen/page
    pagination: {{ type: page_number, page_size: 11, parallel: true, stop: {{ total_path: $.total }} }}
    records: {{ path: $.results }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "par", &spec);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    run_ok(
        tmp.path(),
        &["sync", "par", "--dest", &dest, "--concurrency", "6"],
        &[],
    );
    for s in ["offset", "page"] {
        assert_eq!(
            ids(&read_jsonl(&tmp.path().join("out"), s)),
            (1..=250).collect::<Vec<u64>>(),
            "{s}: in order, exactly once"
        );
    }
    let reqs = server.requests();
    assert_eq!(
        reqs.iter().filter(|r| r.path == "/gen/offset").count(),
        28,
        "ceil(250/9) pages, no extra request"
    );
    assert_eq!(
        reqs.iter().filter(|r| r.path == "/gen/page").count(),
        23,
        "ceil(250/11) pages"
    );
}

#[test]
fn a_limit_preview_sends_no_request_past_the_limit() {
    // Sequential partitions fetch the next page while writing the current
    // one; a preview must not, or it would ask for a page it never uses.
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let (tmp, out) = sync_items(
        &server,
        "    path: /gen/offset\n    pagination: { type: offset, page_size: 5 }\n    records: { path: $.data }\n",
        &["--limit", "10"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "items")),
        (1..=10).collect::<Vec<u64>>()
    );
    assert_eq!(server.requests().len(), 2, "two pages of 5, nothing after");
}

#[test]
fn a_limit_preview_does_not_fetch_parallel_pages() {
    // With latency, pages fetched in parallel would reach the server while
    // the second page is still on its way.
    let server = mock_api::MockServer::start(mock_api::MockConfig {
        latency: std::time::Duration::from_millis(30),
        ..Default::default()
    });
    let (tmp, out) = sync_items(
        &server,
        "    path: /gen/offset\n    pagination: { type: offset, page_size: 5, parallel: true, stop: { total_path: $.total } }\n    records: { path: $.data }\n",
        &["--limit", "10", "--concurrency", "8"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "items")),
        (1..=10).collect::<Vec<u64>>()
    );
    assert_eq!(server.requests().len(), 2, "no page past the limit");
}

/// Syncs a spec whose one stream, `items`, is `stream` (its indented body)
/// into `jsonl:<tmp>/out`.
fn sync_items(
    server: &mock_api::MockServer,
    stream: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::process::Output) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        "version: 1\nname: items\nbase_url: {}\nstreams:\n  items:\n{stream}",
        server.url()
    );
    write_spec(tmp.path(), "items", &spec);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let mut args = vec!["sync", "items", "--dest", &dest];
    args.extend_from_slice(extra);
    let out = run(tmp.path(), &args, &[]);
    (tmp, out)
}

/// The fast path leaves a page's records out of the body the paginator
/// sees; a stop rule or a kept value that reads the records must see them.
/// (Both once saw an empty array when writing JSON Lines: `stop.when` ended
/// the stream after its first page, with exit 0.)
#[test]
fn stop_rules_and_kept_values_that_read_records_see_them() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let (tmp, out) = sync_items(
        &server,
        r#"    path: /gen/offset
    pagination: { type: offset, page_size: 50, stop: { when: "response.data | length < 50" } }
    records: { path: $.data }
    response_state: { last_name: "$.data[-1:].name" }
"#,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = read_jsonl(&tmp.path().join("out"), "items");
    assert_eq!(ids(&got), (1..=250).collect::<Vec<u64>>());
    let state = std::fs::read_to_string(tmp.path().join("out/_state.json")).unwrap();
    assert!(
        state.contains("item-250"),
        "the last page's last name is kept: {state}"
    );

    // A kept value alone (paging by the total) reads the records too.
    let (tmp, out) = sync_items(
        &server,
        r#"    path: /gen/offset
    pagination: { type: offset, page_size: 50, stop: { total_path: $.total } }
    records: { path: $.data }
    response_state: { last_name: "$.data[-1:].name" }
"#,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let state = std::fs::read_to_string(tmp.path().join("out/_state.json")).unwrap();
    assert!(state.contains("item-250"), "{state}");
}

/// Where the total says where the page after next is, its request goes out
/// while the next page is parsed. Pages shorter than asked (an API's own
/// cap) make the guess wrong: it is dropped, the partition stops guessing,
/// and every record still lands once, in order.
#[test]
fn a_wrong_guess_at_the_page_after_next_costs_one_request_at_most() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let (tmp, out) = sync_items(
        &server,
        r#"    path: /gen/offset
    params: { max_limit: "25" }
    pagination: { type: offset, page_size: 40, stop: { short_page: false, total_path: $.total } }
    records: { path: $.data }
"#,
        &[],
    );
    let sent = every_record_once(&server, &tmp, &out);
    // Ten pages of 25; the one guess (offset 80 after offset 0) may have
    // reached the server before it was dropped.
    assert!((10..=11).contains(&sent.len()), "{sent:?}");
}

/// With an exact total the guesses are right: one request per page, none
/// past the total, and the pages land in order.
#[test]
fn guessed_pages_are_the_pages_and_none_past_the_total() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let (tmp, out) = sync_items(
        &server,
        r#"    path: /gen/offset
    pagination: { type: offset, page_size: 10, stop: { total_path: $.total } }
    records: { path: $.data }
"#,
        &[],
    );
    let mut offsets: Vec<u64> = every_record_once(&server, &tmp, &out)
        .iter()
        .map(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    offsets.sort();
    assert_eq!(offsets, (0..25).map(|p| p * 10).collect::<Vec<u64>>());
}

/// Requires a successful sync of all 250 of the mock's records, once and in
/// order; returns the queries of the requests `/gen/offset` received.
fn every_record_once(
    server: &mock_api::MockServer,
    tmp: &tempfile::TempDir,
    out: &std::process::Output,
) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    let got = read_jsonl(&tmp.path().join("out"), "items");
    assert_eq!(ids(&got), (1..=250).collect::<Vec<u64>>());
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/gen/offset")
        .map(|r| r.query.clone().unwrap_or_default())
        .collect()
}
