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
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
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
    let o = run(
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
    assert!(o.status.success(), "{}", stderr(&o));
    let all = ids(&read_jsonl(&tmp.path().join("out"), "changes"));
    assert_eq!(all.len(), 250, "exactly the rest: {:?}", &all[239..]);
    let first = queries(&server, "/gen/offset")[0].clone();
    assert!(
        first.contains("updated_since=2024-01-01T04%3A00%3A00Z"),
        "{first}"
    );
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
        let o = run(tmp.path(), &args, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
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
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
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
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let q = &queries(&server, "/gen/offset")[0];
    assert!(
        q.contains("updated_since=2024-01-01T00%3A01%3A00Z") && q.contains("limit=120"),
        "{q}"
    );
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 120);
}
