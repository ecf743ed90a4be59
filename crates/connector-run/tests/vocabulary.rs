//! The vocabulary real APIs need (issue #12): date windows, partitions from
//! config lists, state kept from the response, cursor formats, stops,
//! template functions, form bodies, transforms.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn read_state(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn queries(server: &MockServer, path: &str) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.query.clone().unwrap_or_default())
        .collect()
}

#[test]
fn date_windows_cover_the_range_once_and_the_cursor_moves_to_its_end() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    // 250 records, one a minute from 2024-01-01T00:01:00Z: about four hours.
    let spec = format!(
        r#"
version: 1
name: gen
config:
  end: {{ default: "2024-01-01T03:59:59Z" }}
base_url: "{}"
streams:
  changes:
    path: /gen/offset
    primary_key: id
    records: {{ path: $.data }}
    params:
      updated_since: "{{{{ window.start }}}}"
      updated_before: "{{{{ window.end }}}}"
    pagination: {{ type: offset, page_size: 25, stop: {{ total_path: $.total }} }}
    incremental:
      cursor_field: updated_at
      start_value: "2024-01-01T00:00:00Z"
      windows: {{ step: 1h, end: "{{{{ config.end }}}}" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    run_ok(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    let got = ids(&read_jsonl(&tmp.path().join("out"), "changes"));
    let unique: BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), 239, "records up to 03:59:59, once each");
    assert_eq!(unique, (1..=239).collect());
    // One window per hour, each sent as its own bounds.
    let starts: BTreeSet<String> = queries(&server, "/gen/offset")
        .iter()
        .filter_map(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("updated_since="))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(starts.len(), 4, "{starts:?}");
    assert!(starts.contains("2024-01-01T03%3A00%3A00Z"), "{starts:?}");
    let state = read_state(&tmp.path().join("out/_state.json"));
    assert_eq!(
        state["streams"]["changes"]["cursor"], "2024-01-01T03:59:59Z",
        "the cursor is the range's end"
    );

    // The next run starts a second after it: windows up to a later end.
    server.clear_requests();
    run_ok(
        tmp.path(),
        &[
            "sync",
            "gen",
            "--dest",
            "jsonl:out",
            "--set",
            "end=2024-01-01T05:00:00Z",
        ],
        &[],
    );
    let all = ids(&read_jsonl(&tmp.path().join("out"), "changes"));
    assert_eq!(all.len(), 250, "exactly the rest: {:?}", &all[239..]);
    // Windows run concurrently: the earliest bound sent is the first window's.
    let first = queries(&server, "/gen/offset")
        .iter()
        .filter_map(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("updated_since="))
                .map(str::to_string)
        })
        .min()
        .unwrap();
    assert_eq!(first, "2024-01-01T04%3A00%3A00Z");
}

#[test]
fn partitions_from_a_config_list() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: gen
config:
  ids: {{ type: array, default: [1, 2] }}
base_url: "{}"
streams:
  picked:
    path: /gen/single
    params: {{ id: "{{{{ partition.id }}}}" }}
    partitions: {{ values: "{{{{ config.ids }}}}", as: id }}
    records:
      add_fields: {{ picked_as: "{{{{ partition.id }}}}" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    for (set, want) in [
        (None, vec![1, 2]),
        (Some("ids=3,7,9"), vec![3, 7, 9]),
        (Some("ids=[11, 12]"), vec![11, 12]),
    ] {
        let mut args = vec!["sync", "gen", "--dest", "jsonl:out"];
        if let Some(s) = set {
            args.extend(["--set", s]);
        }
        run_ok(tmp.path(), &args, &[]);
        let records = read_jsonl(&tmp.path().join("out"), "picked");
        let mut got = ids(&records);
        got.sort();
        assert_eq!(got, want);
        // `--set a,b` gives strings, a JSON list or a default keeps types.
        for r in &records {
            let shown = |v: &Value| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            };
            assert_eq!(shown(&r["picked_as"]), shown(&r["id"]), "{r}");
        }
    }
}

#[test]
fn stop_when_an_expression_says_so() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: gen
base_url: "{}"
streams:
  items:
    path: /gen/offset
    records: {{ path: $.data }}
    pagination:
      type: offset
      page_size: 10
      stop: {{ when: "page.number >= 3 or response.total < 10" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    run_ok(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 30);
    assert_eq!(queries(&server, "/gen/offset").len(), 3);
}

#[test]
fn template_functions_in_requests() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: gen
base_url: "{}"
streams:
  items:
    path: /gen/offset
    records: {{ path: $.data }}
    params:
      updated_since: "{{{{ '1704067260' | str_to_datetime }}}}"
      limit: "{{{{ duration('PT2M') }}}}"
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    run_ok(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    let q = &queries(&server, "/gen/offset")[0];
    assert!(
        q.contains("updated_since=2024-01-01T00%3A01%3A00Z") && q.contains("limit=120"),
        "{q}"
    );
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 120);
}

/// Zendesk's incremental cursor export as its guide describes it: the first
/// request sends `start_time` in Unix seconds, later pages the previous
/// `after_cursor`, the end is `end_of_stream: true`, and the next run starts
/// from the saved `after_cursor`.
fn zendesk_spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: zendesk
config:
  email: {{ default: "{email}" }}
  api_token: {{ secret: true }}
base_url: "{base}"
auth:
  type: basic
  username: "{{{{ config.email }}}}/token"
  password: "{{{{ config.api_token }}}}"
streams:
  tickets:
    path: /api/v2/incremental/tickets/cursor.json
    primary_key: id
    records: {{ path: $.tickets }}
    params:
      start_time: "{{{{ state.cursor if state.after_cursor is none else none }}}}"
      cursor: "{{{{ state.after_cursor }}}}"
    pagination:
      type: cursor
      cursor_path: $.after_cursor
      size_param: per_page
      page_size: 100
      stop: {{ stop_path: $.end_of_stream }}
    incremental:
      cursor_field: updated_at
      start_value: "2024-01-01T00:00:00Z"
      request_format: epoch
    response_state:
      after_cursor: $.after_cursor
"#,
        email = mock_api::ZENDESK_EMAIL
    )
}

#[test]
fn zendesk_export_resumes_from_the_saved_after_cursor() {
    let server = MockServer::start(MockConfig::default().zendesk_tickets(345));
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "zendesk", &zendesk_spec(&server.url()));
    let env = [("CONNECTOR_ZENDESK_API_TOKEN", mock_api::ZENDESK_TOKEN)];
    // The first request as a dry run shows it: a kept value not yet saved is none.
    let o = run_ok(tmp.path(), &["sync", "zendesk", "--dry-run"], &env);
    assert!(
        stdout(&o).contains("cursor.json?start_time=1704067200&per_page=100\n"),
        "{}",
        stdout(&o)
    );
    run_ok(
        tmp.path(),
        &["sync", "zendesk", "--dest", "jsonl:out"],
        &env,
    );
    let got = ids(&read_jsonl(&tmp.path().join("out"), "tickets"));
    assert_eq!(got.len(), 345);
    assert_eq!(got.iter().copied().collect::<BTreeSet<u64>>().len(), 345);
    let q = queries(&server, "/api/v2/incremental/tickets/cursor.json");
    assert_eq!(q.len(), 4, "{q:?}");
    assert!(
        q[0].contains("start_time=1704067200") && !q[0].contains("cursor="),
        "{}",
        q[0]
    );
    // Later pages carry the token; Zendesk reads it before `start_time`.
    assert!(q[1].contains("cursor="), "{}", q[1]);
    let state = read_state(&tmp.path().join("out/_state.json"));
    let saved = state["streams"]["tickets"]["values"]["after_cursor"].clone();
    assert!(saved.is_string(), "{state}");
    assert!(
        !state.to_string().contains(mock_api::ZENDESK_TOKEN),
        "no credential in the state"
    );

    // The next run asks from the saved cursor and gets what changed since.
    server.zendesk_touch(&[3, 200]);
    server.clear_requests();
    run_ok(
        tmp.path(),
        &["sync", "zendesk", "--dest", "jsonl:out"],
        &env,
    );
    let q = queries(&server, "/api/v2/incremental/tickets/cursor.json");
    let sent = format!(
        "cursor={}",
        url::form_urlencoded::byte_serialize(saved.as_str().unwrap().as_bytes())
            .collect::<String>()
    );
    assert!(
        q[0].contains(&sent) && !q[0].contains("start_time"),
        "{q:?}"
    );
    let all = ids(&read_jsonl(&tmp.path().join("out"), "tickets"));
    assert_eq!(all.len(), 347, "the two touched tickets were appended");
    assert_eq!(&all[345..], &[3, 200]);
}

#[test]
fn slack_form_bodies_carry_the_cursor_and_empty_pages_do_not_end_the_list() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: slack
config:
  token: {{ secret: true }}
base_url: "{}/api"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
streams:
  channels:
    path: /conversations.list
    method: POST
    body_format: form
    body: {{ types: "public_channel,private_channel", exclude_archived: "true" }}
    primary_key: id
    records: {{ path: "$.channels" }}
    pagination:
      type: cursor
      cursor_path: $.response_metadata.next_cursor
      send_in: body
      size_param: limit
      page_size: 1
    retry:
      response_actions:
        - {{ when: "response.ok == false", action: fail }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "slack", &spec);
    let env = [("CONNECTOR_SLACK_TOKEN", mock_api::SLACK_TOKEN)];
    let o = run(tmp.path(), &["sync", "slack", "--dry-run"], &env);
    assert!(
        stdout(&o).contains("Content-Type: application/x-www-form-urlencoded\n\ntypes=public_channel%2Cprivate_channel&exclude_archived=true&limit=1"),
        "{}",
        stdout(&o)
    );
    run_ok(tmp.path(), &["sync", "slack", "--dest", "jsonl:out"], &env);
    let got = read_jsonl(&tmp.path().join("out"), "channels");
    let reqs: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/conversations.list")
        .collect();
    // Every unarchived public and private channel, though some pages held
    // none of them: the same set as one page of 1000 gives.
    let one_page = spec.replace("page_size: 1\n", "page_size: 1000\n");
    write_spec(tmp.path(), "slack", &one_page);
    run_ok(
        tmp.path(),
        &["sync", "slack", "--dest", "jsonl:whole"],
        &env,
    );
    let channel_ids = |dir: &str| -> Vec<String> {
        read_jsonl(&tmp.path().join(dir), "channels")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let whole = channel_ids("whole");
    assert!(whole.len() > 100, "{}", whole.len());
    assert_eq!(channel_ids("out"), whole);
    assert!(
        got.iter().all(|c| c["is_archived"] == false),
        "exclude_archived was sent"
    );
    assert!(
        got.iter().any(|c| c["is_private"] == true),
        "types was sent"
    );
    // Stopping on an empty page would have lost channels: there was one.
    let eager = spec.replace(
        "page_size: 1\n",
        "page_size: 1\n      stop: { empty_page: true }\n",
    );
    write_spec(tmp.path(), "slack", &eager);
    run_ok(
        tmp.path(),
        &["sync", "slack", "--dest", "jsonl:eager"],
        &env,
    );
    assert!(channel_ids("eager").len() < whole.len());
    write_spec(tmp.path(), "slack", &spec);

    let bodies: Vec<String> = reqs
        .iter()
        .map(|r| r.body.clone().unwrap_or_default())
        .collect();
    assert!(
        bodies[0].split('&').any(|kv| kv == "limit=1") && !bodies[0].contains("cursor="),
        "{}",
        bodies[0]
    );
    assert!(bodies[1].contains("cursor="), "{}", bodies[1]);

    // `ok: false` with HTTP 200 is an error, not an empty list.
    let o = run(
        tmp.path(),
        &["sync", "slack", "--dest", "jsonl:bad"],
        &[("CONNECTOR_SLACK_TOKEN", "xoxb-wrong")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = error_lines(&o);
    assert!(
        err.contains("stream `channels`")
            && err.contains("matched a `fail` response action")
            && err.contains("invalid_auth"),
        "{err}"
    );
    assert!(!stderr(&o).contains("xoxb-wrong"), "{}", stderr(&o));
}

/// GitHub's issues of several repositories: one partition each, the `Link`
/// header, `since` from each repository's own cursor, and the records
/// reshaped (a pull request marked, the author's login lifted out).
#[test]
fn github_issues_of_several_repositories_with_their_own_cursors() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: github
config:
  repositories: {{ type: array, default: ["acme/api", "acme/web", "acme/empty"] }}
  token: {{ secret: true }}
base_url: "{}"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
streams:
  issues:
    path: "/repos/{{{{ partition.repository }}}}/issues"
    partitions: {{ values: "{{{{ config.repositories }}}}", as: repository }}
    params: {{ state: all, sort: updated, direction: asc, per_page: "50" }}
    pagination: {{ type: link_header }}
    primary_key: id
    incremental:
      cursor_field: updated_at
      param: since
      start_value: "2020-01-01T00:00:00Z"
    records:
      rename_fields: {{ user.login: author }}
      remove_fields: [reactions, user]
      add_fields: {{ repository: "{{{{ partition.repository }}}}" }}
      transforms:
        - when: "record.pull_request is defined"
          add_fields: {{ kind: pull_request }}
          remove_fields: [pull_request]
        - when: "record.pull_request is not defined and record.kind is not defined"
          add_fields: {{ kind: issue }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "github", &spec);
    let env = [("CONNECTOR_GITHUB_TOKEN", mock_api::GITHUB_TOKEN)];
    run_ok(tmp.path(), &["sync", "github", "--dest", "jsonl:out"], &env);
    let got = read_jsonl(&tmp.path().join("out"), "issues");
    assert_eq!(got.len(), 370, "250 of acme/api and 120 of acme/web");
    let prs = got.iter().filter(|r| r["kind"] == "pull_request").count();
    assert!(prs >= 63, "{prs}");
    assert!(
        got.iter()
            .all(|r| r.get("pull_request").is_none() && r.get("user").is_none())
    );
    assert!(
        got.iter()
            .all(|r| r["author"].is_string() && r["kind"].is_string())
    );
    assert_eq!(
        got.iter().filter(|r| r["repository"] == "acme/web").count(),
        120
    );

    // Each repository asks from its own newest change: an update in the
    // quieter repository is not hidden behind the busier one's cursor.
    server.github_touch("acme/api", &[5]);
    server.github_touch("acme/web", &[7]);
    server.clear_requests();
    run_ok(tmp.path(), &["sync", "github", "--dest", "jsonl:out"], &env);
    let all = read_jsonl(&tmp.path().join("out"), "issues");
    let fresh: BTreeSet<(String, u64)> = all[370..]
        .iter()
        .map(|r| {
            (
                r["repository"].as_str().unwrap().to_string(),
                r["number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(fresh.contains(&("acme/api".into(), 5)), "{fresh:?}");
    assert!(fresh.contains(&("acme/web".into(), 7)), "{fresh:?}");
}

/// One record per label of each GitHub issue, with the issue's number and
/// id copied in.
#[test]
fn expand_makes_one_record_per_nested_item() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: github
config:
  token: {{ secret: true }}
base_url: "{}"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
pagination: {{ type: link_header }}
streams:
  issues:
    path: /repos/acme/api/issues
    params: {{ state: all, per_page: "100" }}
    primary_key: id
  issue_labels:
    path: /repos/acme/api/issues
    params: {{ state: all, per_page: "100" }}
    primary_key: [issue_id, name]
    records:
      expand: {{ path: labels, copy: {{ issue_number: number, issue_id: id }} }}
      remove_fields: [url, node_id]
"#,
        server.url()
    );
    write_spec(tmp.path(), "github", &spec);
    let env = [("CONNECTOR_GITHUB_TOKEN", mock_api::GITHUB_TOKEN)];
    run_ok(tmp.path(), &["sync", "github", "--dest", "jsonl:out"], &env);
    let issues = read_jsonl(&tmp.path().join("out"), "issues");
    let labels = read_jsonl(&tmp.path().join("out"), "issue_labels");
    let expected: usize = issues
        .iter()
        .map(|i| i["labels"].as_array().unwrap().len())
        .sum();
    assert!(expected > 0);
    assert_eq!(labels.len(), expected);
    let with_labels = issues
        .iter()
        .find(|i| !i["labels"].as_array().unwrap().is_empty())
        .unwrap();
    let first = labels
        .iter()
        .find(|l| l["issue_id"] == with_labels["id"])
        .unwrap();
    assert_eq!(first["issue_number"], with_labels["number"]);
    assert_eq!(first["name"], with_labels["labels"][0]["name"]);
    assert!(
        first.get("url").is_none() && first.get("color").is_some(),
        "{first}"
    );
}

/// Flattening lifts a nested object's fields; `default` fills a missing
/// field; a cursor may be a dotted path into the record.
#[test]
fn flatten_default_and_a_nested_cursor_field() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: gen
base_url: "{}"
pagination: {{ type: offset, page_size: 50, stop: {{ total_path: $.total }} }}
streams:
  flat:
    path: /gen/offset
    records:
      path: $.data
      flatten: [nested]
      add_fields:
        colour: "{{{{ record.colour | default('none') }}}}"
  by_nested:
    path: /gen/offset
    primary_key: id
    records: {{ path: $.data }}
    incremental:
      cursor_field: nested.x
      cursor_type: integer
      start_value: "200"
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    let o = run(tmp.path(), &["validate", "gen"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    run_ok(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    let flat = read_jsonl(&tmp.path().join("out"), "flat");
    assert_eq!(flat.len(), 250);
    assert!(
        flat.iter()
            .all(|r| r.get("nested").is_none() && r["x"] == r["id"] && r["colour"] == "none")
    );
    // Records from `nested.x` 200 on, and the cursor is the largest.
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "by_nested")),
        (200..=250).collect::<Vec<u64>>()
    );
    let state = read_state(&tmp.path().join("out/_state.json"));
    assert_eq!(state["streams"]["by_nested"]["cursor"], 250, "{state}");
}

/// Partitions from several sources (Airbyte's `UnionPartitionRouter`): the
/// users of a config list, of every post and of every todo, each distinct
/// user once: 10 requests for 10 users, however often each appears, and
/// every post of each exactly once. The sources are `internal`: read for
/// the partitions, not synced themselves.
#[test]
fn partitions_from_several_streams_are_their_union_each_value_once() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: union
config:
  users: {{ type: array, default: [3, 1] }}
base_url: "{}"
pagination: {{ type: offset, offset_param: _start, limit_param: _limit, page_size: 30 }}
streams:
  posts:
    path: /posts
    primary_key: id
    internal: true
  todos:
    path: /todos
    primary_key: id
    internal: true
  user_posts:
    path: "/users/{{{{ partition.user_id }}}}/posts"
    pagination: {{ type: none }}
    primary_key: id
    partitions:
      as: user_id
      values: "{{{{ config.users }}}}"
      from:
        - {{ stream: posts, value: "{{{{ parent.userId }}}}" }}
        - {{ stream: todos, value: "{{{{ parent.userId }}}}" }}
    records:
      add_fields: {{ from_post: "{{{{ parent.id if parent else none }}}}" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "union", &spec);
    let o = run(tmp.path(), &["list"], &[]);
    assert!(
        stdout(&o).contains("(partitions from: posts, todos)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.trim().starts_with("posts") && l.ends_with("(internal)")),
        "{}",
        stdout(&o)
    );
    run_ok(tmp.path(), &["sync", "union", "--dest", "jsonl:out"], &[]);
    let got = read_jsonl(&tmp.path().join("out"), "user_posts");
    assert_eq!(got.len(), 100, "every post once");
    assert_eq!(ids(&got).into_iter().collect::<BTreeSet<_>>().len(), 100);
    // Internal streams are read, not written.
    assert!(!tmp.path().join("out/posts.jsonl").exists());
    assert!(!tmp.path().join("out/todos.jsonl").exists());
    let per_user: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/users/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(per_user.len(), 10, "{per_user:?}");
    assert_eq!(
        per_user.iter().collect::<BTreeSet<_>>().len(),
        10,
        "{per_user:?}"
    );
    // A config value has no record; a value from a stream keeps its first.
    let of_3 = got.iter().find(|r| r["userId"] == 3).unwrap();
    assert!(of_3["from_post"].is_null(), "{of_3}");
    // Named, an internal stream syncs.
    run_ok(
        tmp.path(),
        &["sync", "union", "todos", "--dest", "jsonl:out2"],
        &[],
    );
    assert_eq!(read_jsonl(&tmp.path().join("out2"), "todos").len(), 200);
}

#[test]
fn partitions_from_an_unknown_stream_or_a_cycle_are_spec_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = r#"
version: 1
name: bad_union
base_url: "http://127.0.0.1:9"
streams:
  a:
    path: /a
    partitions: { as: x, from: [{ stream: b, value: "{{ parent.id }}" }] }
  b:
    path: /b
    partitions: { as: y, from: [{ stream: a, value: "{{ parent.id }}" }, { stream: nope, value: "{{ parent.id }}" }] }
  c:
    path: /c
    partitions: { as: z }
"#;
    write_spec(tmp.path(), "bad_union", spec);
    let o = run(tmp.path(), &["validate", "bad_union"], &[]);
    assert!(!o.status.success());
    insta::assert_snapshot!(stable(&stderr(&o), tmp.path()));
}

/// A grandchild reads what its parent record was read for
/// (`parent_partition`; Airbyte's `stream_slice.parent_slice`): each
/// comment knows the user whose post it is under.
#[test]
fn a_grandchild_reads_its_parents_partition() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: chain
base_url: "{}"
streams:
  users:
    path: /users
    primary_key: id
  posts:
    parent: users
    path: "/users/{{{{ parent.id }}}}/posts"
    primary_key: id
  comments:
    parent: posts
    path: "/posts/{{{{ parent.id }}}}/comments"
    primary_key: id
    records:
      add_fields: {{ user_id: "{{{{ parent_partition.parent.id }}}}" }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "chain", &spec);
    run_ok(
        tmp.path(),
        &["sync", "chain", "comments", "--dest", "jsonl:out"],
        &[],
    );
    let got = read_jsonl(&tmp.path().join("out"), "comments");
    assert_eq!(got.len(), 500);
    let db = jsonplaceholder_db();
    let post_user: std::collections::HashMap<u64, u64> = db["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_u64().unwrap(), p["userId"].as_u64().unwrap()))
        .collect();
    for c in &got {
        assert_eq!(
            c["user_id"].as_u64(),
            post_user.get(&c["postId"].as_u64().unwrap()).copied(),
            "{c}"
        );
    }
}
