//! State: kill -9 and resume, incremental syncs, parent/child partitions at
//! several concurrencies, and `connector-run state show|reset`.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn gen_spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: gen
config:
  base_url: {{ default: "{base}" }}
  start_date: {{ default: "2024-01-01T00:00:00Z" }}
base_url: "{{{{ config.base_url }}}}"
pagination: {{ type: offset, page_size: 5, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
streams:
  items:
    path: /gen/offset
    primary_key: id
  changes:
    path: /gen/offset
    primary_key: id
    incremental:
      cursor_field: updated_at
      start_value: "{{{{ config.start_date }}}}"
      param: updated_since
"#
    )
}

fn read_state(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("_state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn offsets(server: &MockServer) -> Vec<u64> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/gen/offset")
        .filter_map(|r| {
            r.query.as_deref().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("offset="))
                    .and_then(|v| v.parse().ok())
            })
        })
        .collect()
}

#[test]
fn a_killed_sync_resumes_where_it_stopped() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(25),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let out = tmp.path().join("out");
    let dest = format!("jsonl:{}", out.display());
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["sync", "gen", "items", "--dest", &dest])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait until at least 10 pages are checkpointed, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(30);
    let saved_offset = loop {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        let pages = read_state(&out)
            .and_then(|s| s["streams"]["items"]["partitions"][""]["pages"].as_u64())
            .unwrap_or(0);
        if pages >= 10 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break read_state(&out).unwrap()["streams"]["items"]["partitions"][""]["position"]["offset"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        (50..250).contains(&saved_offset),
        "killed mid-sync at offset {saved_offset}"
    );
    let first_run = offsets(&server);
    server.clear_requests();

    run_ok(tmp.path(), &["sync", "gen", "items", "--dest", &dest], &[]);
    let got = ids(&read_jsonl(&out, "items"));
    assert_eq!(
        got,
        (1..=250).collect::<Vec<u64>>(),
        "exactly the dataset: no gaps, no duplicates"
    );

    let second_run = offsets(&server);
    assert!(
        second_run.iter().all(|o| *o >= saved_offset),
        "finished pages were not fetched again: {second_run:?} (checkpoint {saved_offset})"
    );
    assert_eq!(
        second_run.first(),
        Some(&saved_offset),
        "resumed at the checkpoint"
    );
    // 51 requests read the 250 records (the last at offset 250 finds none).
    // Fetched twice at most: the page being written when the kill came, the
    // next one in flight, and the one after it, requested on a guess where
    // the total says where it is.
    assert!(
        first_run.len() + second_run.len() <= 51 + 3,
        "at most the pages in flight are fetched twice: {first_run:?} then {second_run:?}"
    );
    let state = read_state(&out).unwrap();
    assert!(
        state["streams"]["items"].get("partitions").is_none(),
        "a completed stream keeps no partitions: {state}"
    );
}

#[test]
fn incremental_sync_fetches_only_what_changed() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "gen",
        &gen_spec(&server.url()).replace("page_size: 5", "page_size: 50"),
    );
    let out = tmp.path().join("out");
    let dest = format!("jsonl:{}", out.display());
    run_ok(
        tmp.path(),
        &["sync", "gen", "changes", "--dest", &dest],
        &[],
    );
    assert_eq!(read_jsonl(&out, "changes").len(), 250);
    let cursor1 = read_state(&out).unwrap()["streams"]["changes"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.uri.contains("updated_since=2024-01-01T00%3A00%3A00Z")),
        "first run sends the start value"
    );

    server.clear_requests();
    server.touch_records(&[3, 7]);
    server.add_records(5);
    run_ok(
        tmp.path(),
        &["sync", "gen", "changes", "--dest", &dest],
        &[],
    );
    let reqs = server.requests();
    let encoded = cursor1.replace(':', "%3A");
    assert!(
        reqs.iter()
            .all(|r| r.uri.contains(&format!("updated_since={encoded}"))),
        "second run asks for the window since {cursor1}: {:?}",
        reqs.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
    let all = read_jsonl(&out, "changes");
    let new: Vec<u64> = ids(&all[250..]);
    let expected: BTreeSet<u64> = [3, 7, 251, 252, 253, 254, 255].into_iter().collect();
    let got: BTreeSet<u64> = new.iter().copied().collect();
    // The record holding the previous cursor comes back (`>=` bound) but
    // was written already: exactly the changes land.
    assert_eq!(got, expected, "delivered {new:?}");
    assert_eq!(new.len(), expected.len(), "each once: {new:?}");
    let cursor2 = read_state(&out).unwrap()["streams"]["changes"]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cursor2 > cursor1,
        "the cursor advanced: {cursor1} -> {cursor2}"
    );

    // --full-refresh starts over from the start value.
    server.clear_requests();
    run_ok(
        tmp.path(),
        &["sync", "gen", "changes", "--dest", &dest, "--full-refresh"],
        &[],
    );
    assert_eq!(read_jsonl(&out, "changes").len(), 255);
}

fn post_comments(concurrency: &str) {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(2),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dest = format!("jsonl:{}", tmp.path().display());
    let set = format!("base_url={}", server.url());
    run_ok(
        &repo_root(),
        &[
            "sync",
            "jsonplaceholder",
            "posts",
            "post_comments",
            "--set",
            &set,
            "--dest",
            &dest,
            "--concurrency",
            concurrency,
        ],
        &[],
    );
    let comments = read_jsonl(tmp.path(), "post_comments");
    let db = jsonplaceholder_db();
    assert_eq!(comments.len(), 500);
    let mut got = comments.clone();
    got.sort_by_key(|c| c["id"].as_u64());
    for (c, want) in got.iter().zip(db["comments"].as_array().unwrap()) {
        assert_eq!(c["post_id"], want["postId"]);
        let mut c = c.clone();
        c.as_object_mut().unwrap().remove("post_id");
        assert_eq!(&c, want);
    }
    // Records of one partition keep their order.
    for w in comments.windows(2) {
        if w[0]["postId"] == w[1]["postId"] {
            assert!(w[0]["id"].as_u64() < w[1]["id"].as_u64());
        }
    }
    assert_eq!(read_jsonl(tmp.path(), "posts").len(), 100);
    // The parent was fetched once and fed its children.
    let reqs = server.requests();
    assert_eq!(reqs.iter().filter(|r| r.path == "/posts").count(), 5);
    assert_eq!(
        reqs.iter()
            .filter(|r| r.path.ends_with("/comments"))
            .count(),
        100
    );
}

#[test]
fn parent_child_at_concurrency_1() {
    post_comments("1");
}

#[test]
fn parent_child_at_concurrency_8() {
    post_comments("8");
}

#[test]
fn grandchildren_streams() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: nested
base_url: "{}"
streams:
  users:
    path: /users
    primary_key: id
  user_posts:
    parent: users
    path: /users/{{{{ parent.id }}}}/posts
    primary_key: id
  post_comments:
    parent: user_posts
    path: /posts/{{{{ parent.id }}}}/comments
    records:
      add_fields: {{ post_id: "{{{{ parent.id }}}}", author: "{{{{ parent.userId }}}}" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "nested", &spec);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    run_ok(
        tmp.path(),
        &[
            "sync",
            "nested",
            "post_comments",
            "--dest",
            &dest,
            "--concurrency",
            "4",
        ],
        &[],
    );
    let comments = read_jsonl(&tmp.path().join("out"), "post_comments");
    assert_eq!(comments.len(), 500);
    assert!(
        comments
            .iter()
            .all(|c| c["post_id"] == c["postId"] && c["author"].is_u64())
    );
    assert!(
        !tmp.path().join("out/users.jsonl").exists(),
        "unselected ancestors are fetched, not written"
    );
}

#[test]
fn state_show_and_reset() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "gen",
        &gen_spec(&server.url()).replace("page_size: 5", "page_size: 100"),
    );
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    assert!(
        run(
            tmp.path(),
            &["sync", "gen", "changes", "--dest", &dest],
            &[]
        )
        .status
        .success()
    );
    let show = run_ok(
        tmp.path(),
        &["state", "show", "gen", "changes", "--dest", &dest],
        &[],
    );
    let shown: Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert!(
        shown["cursor"]
            .as_str()
            .is_some_and(|c| c.starts_with("2024-01-01T04:10")),
        "{shown}"
    );
    run_ok(
        tmp.path(),
        &["state", "reset", "gen", "changes", "--dest", &dest],
        &[],
    );
    let show = run(tmp.path(), &["state", "show", "gen", "--dest", &dest], &[]);
    let shown: Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert!(shown["streams"].get("changes").is_none(), "{shown}");
    let bad = run(
        tmp.path(),
        &["state", "show", "gen", "chnages", "--dest", &dest],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("did you mean `changes`?"));
}

#[test]
fn a_preview_keeps_the_saved_state() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "gen",
        &gen_spec(&server.url()).replace("page_size: 5", "page_size: 100"),
    );
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    assert!(
        run(
            tmp.path(),
            &["sync", "gen", "changes", "--dest", &dest],
            &[]
        )
        .status
        .success()
    );
    let before =
        read_state(&tmp.path().join("out")).unwrap()["streams"]["changes"]["cursor"].clone();
    assert!(before.is_string(), "{before}");
    run_ok(
        tmp.path(),
        &[
            "sync",
            "gen",
            "changes",
            "--dest",
            &dest,
            "--limit",
            "3",
            "--full-refresh",
        ],
        &[],
    );
    let after = read_state(&tmp.path().join("out")).unwrap();
    assert_eq!(
        after["streams"]["changes"]["cursor"], before,
        "a --limit preview leaves the cursor alone: {after}"
    );
}

/// `connectors/hubspot.yaml` against the HubSpot search imitation, its
/// rate limits raised so the test runs fast.
fn hubspot_spec(tmp: &Path, edit: impl Fn(String) -> String) {
    let shipped = std::fs::read_to_string(repo_root().join("connectors/hubspot.yaml")).unwrap();
    let fast = shipped
        .replace("requests: 5/s", "requests: 1000/s")
        .replace("requests: 100/10s", "requests: 1000/s");
    assert_ne!(fast, shipped);
    write_spec(tmp, "hubspot", &edit(fast));
}

fn hubspot_sync(tmp: &Path, server: &MockServer) -> std::process::Output {
    run(
        tmp,
        &[
            "sync",
            "hubspot",
            "contacts_search",
            "--dest",
            "jsonl:out",
            "--set",
            &format!("base_url={}", server.url()),
            "--set",
            "access_token=pat-na1-test",
        ],
        &[],
    )
}

/// HubSpot's search returns at most 10,000 results for one query (the next
/// page is a 400). `restart_when` ends the query at the page before and
/// queries again from the cursor reached, in the same run: every contact
/// exactly once, though three contacts share each modification time and
/// each query ends inside such a group.
#[test]
fn a_query_at_the_apis_cap_starts_again_from_the_cursor_in_the_same_run() {
    let server = MockServer::start(MockConfig::default().hubspot_contacts(23_456));
    let tmp = tempfile::tempdir().unwrap();
    hubspot_spec(tmp.path(), |s| s);
    let o = hubspot_sync(tmp.path(), &server);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let ids: Vec<u64> = read_jsonl(&out, "contacts_search")
        .iter()
        .map(|r| r["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 23_456, "every contact once");
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>().len(), 23_456);
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "no page past the cap"
    );
    // Three queries: from the start date, then from the 10,000th contact's
    // time, then from the 19,998th's.
    let firsts: Vec<String> = requests
        .iter()
        .filter_map(|r| r.body.as_deref())
        .filter(|b| !b.contains("\"after\""))
        .map(|b| {
            let q: Value = serde_json::from_str(b).unwrap();
            q["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(firsts, ["1136073600000", "1704070533000", "1704073866000"]);
    let state = read_state(&out).unwrap();
    let ss = &state["streams"]["contacts_search"];
    assert_eq!(ss["cursor"], "2024-01-01T02:10:18.000Z", "{state}");
    assert_ne!(ss["in_progress"], true, "{state}");
    // The next run finds only the contacts at the cursor, already written.
    let o = hubspot_sync(tmp.path(), &server);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_jsonl(&out, "contacts_search").len(), 23_456);
}

/// Killed during the second query, the next run resumes that query: its
/// lower bound and the cursor reached were saved when it started. Every
/// contact once.
#[test]
fn a_sync_killed_after_a_restart_resumes_the_next_query() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(10),
        ..MockConfig::default().hubspot_contacts(23_456)
    });
    let tmp = tempfile::tempdir().unwrap();
    hubspot_spec(tmp.path(), |s| s);
    let out = tmp.path().join("out");
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["sync", "hubspot", "contacts_search", "--dest", "jsonl:out"])
        .args(["--set", &format!("base_url={}", server.url())])
        .args(["--set", "access_token=pat-na1-test"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the second query has checkpointed a few pages.
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        assert!(Instant::now() < deadline, "no second query appeared");
        let ss = read_state(&out).map(|s| s["streams"]["contacts_search"].clone());
        let pages = ss
            .as_ref()
            .and_then(|s| s["partitions"][""]["pages"].as_u64())
            .unwrap_or(0);
        if ss.as_ref().is_some_and(|s| s["cursor"].is_string()) && pages >= 5 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break read_state(&out).unwrap()["streams"]["contacts_search"].clone();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(killed_at["in_progress"], true, "{killed_at}");
    assert_eq!(
        killed_at["cursor"], "2024-01-01T00:55:33.000Z",
        "{killed_at}"
    );
    let o = hubspot_sync(tmp.path(), &server);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<String> = read_jsonl(&out, "contacts_search")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 23_456, "no contact lost, none twice");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 23_456);
}

/// A query that reaches the cap without moving the cursor would end at the
/// same place again: an error naming the page, with what was read written.
#[test]
fn a_query_at_the_cap_that_does_not_move_the_cursor_is_an_error() {
    let server = MockServer::start(MockConfig::default().hubspot_contacts(12_000));
    let tmp = tempfile::tempdir().unwrap();
    // A filter that ignores the cursor: each query reads the same records.
    hubspot_spec(tmp.path(), |s| {
        s.replace(r#"value: "{{ state.cursor | string }}""#, r#"value: "0""#)
    });
    let o = hubspot_sync(tmp.path(), &server);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!(stable(&error_lines(&o), tmp.path()));
    let written = read_jsonl(&tmp.path().join("out"), "contacts_search");
    assert_eq!(written.len(), 10_000);
    // The page at the cap was not written: the next run stops there again,
    // writing nothing twice.
    let again = hubspot_sync(tmp.path(), &server);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert_eq!(error_lines(&again), error_lines(&o));
    assert_eq!(
        read_jsonl(&tmp.path().join("out"), "contacts_search").len(),
        10_000
    );
}

/// Each query after the first starts at the cursor reached, not `lookback`
/// before it: what is before it was read by the query before. (With the
/// lookback, an hour of contacts, more than a query returns, would be read
/// again each time.)
#[test]
fn a_restarted_query_starts_at_the_cursor_without_lookback() {
    let server = MockServer::start(MockConfig::default().hubspot_contacts(23_456));
    let tmp = tempfile::tempdir().unwrap();
    hubspot_spec(tmp.path(), |s| {
        s.replace(
            "request_format: epoch_ms\n",
            "request_format: epoch_ms\n      lookback: 1h\n",
        )
    });
    let o = hubspot_sync(tmp.path(), &server);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: BTreeSet<String> = read_jsonl(&tmp.path().join("out"), "contacts_search")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 23_456);
    assert_eq!(
        read_jsonl(&tmp.path().join("out"), "contacts_search").len(),
        23_456,
        "none twice"
    );
}

/// An API with a `since` filter and a cap but no paging: each query is one
/// page, and `restart_when` reads on from the cursor reached.
#[test]
fn restart_when_reads_on_without_pagination() {
    let server = MockServer::start(MockConfig::default().hubspot_contacts(1_000));
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: capped
config:
  token: {{ secret: true, required: true }}
base_url: "{}"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
records: {{ path: $.results }}
streams:
  contacts:
    path: /crm/v3/objects/contacts/search
    method: POST
    primary_key: id
    body:
      filterGroups: [{{ filters: [{{ propertyName: lastmodifieddate, operator: GTE, value: "{{{{ state.cursor | string }}}}" }}] }}]
      sorts: [{{ propertyName: lastmodifieddate, direction: ASCENDING }}]
      limit: 200
    pagination: {{ type: none }}
    incremental:
      cursor_field: updatedAt
      start_value: "2024-01-01T00:00:00Z"
      request_format: epoch_ms
      restart_when: "page.records >= 200"
"#,
        server.url()
    );
    write_spec(tmp.path(), "capped", &spec);
    let o = run(
        tmp.path(),
        &["sync", "capped", "--dest", "jsonl:out", "--set", "token=t"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: BTreeSet<String> = read_jsonl(&tmp.path().join("out"), "contacts")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1_000);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "contacts").len(), 1_000);
}

/// Notion's search cannot filter by time: `connectors/notion.yaml` sorts it
/// newest edit first and stops at the first page that reaches back past the
/// saved cursor (`stop.when` reads `state.cursor`). The second run reads one
/// page and writes just the pages edited since.
#[test]
fn notion_search_reads_only_what_changed_newest_first() {
    let server = MockServer::start(MockConfig::default().notion_pages(250));
    let tmp = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(repo_root().join("connectors/notion.yaml")).unwrap();
    write_spec(
        tmp.path(),
        "notion",
        &shipped.replace("requests: 3/s", "requests: 100/s"),
    );
    let sync = || {
        run(
            tmp.path(),
            &[
                "sync",
                "notion",
                "pages_search",
                "--dest",
                "jsonl:out",
                "--set",
                &format!("base_url={}", server.url()),
                "--set",
                "token=ntn_test",
            ],
            &[],
        )
    };
    let o = sync();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    assert_eq!(read_jsonl(&out, "pages_search").len(), 250);
    assert_eq!(server.requests().len(), 3, "a first run reads every page");
    server.notion_touch(&[7, 120, 249]);
    server.clear_requests();
    let o = sync();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        server.requests().len(),
        1,
        "one page reaches back past the cursor"
    );
    let written = read_jsonl(&out, "pages_search");
    let edited: Vec<&str> = written[250..]
        .iter()
        .map(|r| {
            r["properties"]["title"]["title"][0]["plain_text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(edited.len(), 3, "{edited:?}");
    let mut edited = edited;
    edited.sort();
    assert_eq!(
        edited,
        ["Meeting notes 120", "Meeting notes 249", "Meeting notes 7"]
    );
}
