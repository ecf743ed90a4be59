//! The Airbyte and Singer protocols, checked by the real thing: every line
//! `connector-run airbyte …` prints is parsed by the Airbyte CDK's protocol
//! models (`CONNECTOR_RUN_TEST_AIRBYTE_PYTHON`, a python with `airbyte-cdk`),
//! and `--dest singer:-` is piped into the PyPI Singer target `target-jsonl`
//! (`CONNECTOR_RUN_TEST_TARGET_JSONL`). `.ci/run` installs both.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn gen_spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: gen
docs_url: https://example.com/gen
config:
  base_url: {{ default: "{base}" }}
  api_token: {{ secret: true, description: "Not needed by the mock." }}
  start_date: {{ default: "2024-01-01T00:00:00Z" }}
  fail_path: {{ default: /bad/after/2 }}
base_url: "{{{{ config.base_url }}}}"
pagination: {{ type: offset, page_size: 20, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
retry: {{ max_attempts: 1 }}
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
  broken:
    path: "{{{{ config.fail_path }}}}"
"#
    )
}

/// Parses every line with `AirbyteMessageSerializer.load` and returns, per
/// line, the message type the CDK read (or the error it raised).
fn cdk_parse(python: &Path, stdout: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
from airbyte_cdk.models import AirbyteMessageSerializer
for line in sys.stdin:
    try:
        m = AirbyteMessageSerializer.load(json.loads(line))
        print(m.type.value)
    except Exception as e:
        print("INVALID: %r: %s" % (e, line.strip()[:200]))
"#;
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let types: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let bad: Vec<&String> = types.iter().filter(|t| t.starts_with("INVALID")).collect();
    assert!(bad.is_empty(), "the CDK rejects: {bad:#?}");
    assert_eq!(types.len(), stdout.lines().count());
    types
}

fn messages(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn airbyte(tmp: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["airbyte", "gen"];
    all.extend_from_slice(args);
    run(tmp, &all, &[])
}

fn write_json(path: &Path, v: &Value) -> String {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn airbyte_source_protocol_parsed_by_the_cdk() {
    let Some(python) = tool("CONNECTOR_RUN_TEST_AIRBYTE_PYTHON") else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let config = write_json(
        &tmp.path().join("config.json"),
        &json!({ "base_url": server.url(), "api_token": "tok-123456" }),
    );
    let mut all_types = BTreeSet::new();

    // spec
    let out = airbyte(tmp.path(), &["spec"]);
    assert!(out.status.success(), "{}", stderr(&out));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let spec = &messages(&stdout(&out))[0]["spec"];
    let props = &spec["connectionSpecification"]["properties"];
    assert_eq!(props["api_token"]["airbyte_secret"], true);
    assert_eq!(props["start_date"]["default"], "2024-01-01T00:00:00Z");
    assert_eq!(spec["documentationUrl"], "https://example.com/gen");
    assert_eq!(spec["supportsIncremental"], true);

    // check: good and bad config
    let out = airbyte(tmp.path(), &["check", "--config", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let status = messages(&stdout(&out)).pop().unwrap();
    assert_eq!(
        status["connectionStatus"]["status"], "SUCCEEDED",
        "{status}"
    );
    let bad = write_json(
        &tmp.path().join("bad.json"),
        &json!({ "base_url": "http://127.0.0.1:1" }),
    );
    let out = airbyte(tmp.path(), &["check", "--config", &bad]);
    cdk_parse(&python, &stdout(&out));
    let status = messages(&stdout(&out)).pop().unwrap();
    assert_eq!(status["connectionStatus"]["status"], "FAILED", "{status}");

    // discover
    let out = airbyte(tmp.path(), &["discover", "--config", &config]);
    assert!(out.status.success(), "{}", stderr(&out));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let catalog = messages(&stdout(&out))
        .into_iter()
        .find(|m| m["type"] == "CATALOG")
        .unwrap();
    let streams: BTreeMap<String, Value> = catalog["catalog"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(streams.len(), 3);
    let changes = &streams["changes"];
    assert_eq!(
        changes["supported_sync_modes"],
        json!(["full_refresh", "incremental"])
    );
    assert_eq!(changes["default_cursor_field"], json!(["updated_at"]));
    assert_eq!(changes["source_defined_primary_key"], json!([["id"]]));
    assert_eq!(
        changes["json_schema"]["properties"]["id"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(
        streams["broken"]["supported_sync_modes"],
        json!(["full_refresh"])
    );

    // read: the configured catalog picks streams and modes.
    let catalog = write_json(
        &tmp.path().join("catalog.json"),
        &json!({ "streams": [
            { "stream": streams["items"], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite" },
            { "stream": streams["changes"], "sync_mode": "incremental", "destination_sync_mode": "append_dedup", "cursor_field": ["updated_at"] },
        ]}),
    );
    let out = airbyte(
        tmp.path(),
        &["read", "--config", &config, "--catalog", &catalog],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("tok-123456"),
        "secrets never printed"
    );
    let types = cdk_parse(&python, &stdout(&out));
    all_types.extend(types);
    let msgs = messages(&stdout(&out));
    let records = |msgs: &[Value], stream: &str| -> Vec<u64> {
        msgs.iter()
            .filter(|m| m["type"] == "RECORD" && m["record"]["stream"] == stream)
            .map(|m| m["record"]["data"]["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(records(&msgs, "items"), (1..=250).collect::<Vec<_>>());
    assert_eq!(records(&msgs, "changes").len(), 250);
    // STREAM_STATUS: STARTED, RUNNING before the first record, COMPLETE after
    // the last STATE, per stream.
    for stream in ["items", "changes"] {
        let mut seq: Vec<String> = msgs
            .iter()
            .filter_map(|m| match m["type"].as_str() {
                Some("TRACE") if m["trace"]["type"] == "STREAM_STATUS" => {
                    let st = &m["trace"]["stream_status"];
                    (st["stream_descriptor"]["name"] == stream)
                        .then(|| st["status"].as_str().unwrap().to_string())
                }
                Some("RECORD") if m["record"]["stream"] == stream => Some("record".into()),
                Some("STATE") if m["state"]["stream"]["stream_descriptor"]["name"] == stream => {
                    Some("state".into())
                }
                _ => None,
            })
            .collect();
        seq.dedup();
        assert_eq!(
            seq.first().map(String::as_str),
            Some("STARTED"),
            "{stream}: {seq:?}"
        );
        let running = seq.iter().position(|m| m == "RUNNING");
        let first_record = seq.iter().position(|m| m == "record");
        assert_eq!(running.map(|i| i + 1), first_record, "{stream}: {seq:?}");
        assert_eq!(seq.iter().filter(|m| m.as_str() == "RUNNING").count(), 1);
        assert_eq!(
            seq.last().map(String::as_str),
            Some("COMPLETE"),
            "{stream}: {seq:?}"
        );
        assert_eq!(seq[seq.len() - 2], "state", "{stream}: {seq:?}");
    }
    assert!(msgs.iter().all(|m| m["record"]["stream"] != "broken"));
    let emitted_at = msgs.iter().find(|m| m["type"] == "RECORD").unwrap()["record"]["emitted_at"]
        .as_u64()
        .unwrap();
    assert!(emitted_at > 1_600_000_000_000, "milliseconds");
    // A STATE message follows the records it covers: the last one per stream.
    let states: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "STATE").collect();
    assert!(states.len() >= 2);
    let last_changes = states
        .iter()
        .rev()
        .find(|m| m["state"]["stream"]["stream_descriptor"]["name"] == "changes")
        .unwrap();
    assert_eq!(last_changes["state"]["type"], "STREAM");
    let cursor = last_changes["state"]["stream"]["stream_state"]["cursor"].clone();
    assert_eq!(cursor, json!("2024-01-01T04:10:00Z"), "{last_changes}");
    assert!(msgs.iter().any(|m| m["type"] == "LOG"));

    // An incremental read from that state gets only what changed.
    let state_file = write_json(
        &tmp.path().join("state.json"),
        &json!([last_changes["state"]]),
    );
    server.touch_records(&[3, 5]);
    let out = airbyte(
        tmp.path(),
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            &catalog,
            "--state",
            &state_file,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let msgs = messages(&stdout(&out));
    assert_eq!(
        records(&msgs, "items").len(),
        250,
        "full refresh ignores state"
    );

    // A stream without `incremental:` asked for `incremental` (as PyAirbyte
    // asks every stream) is read in full, with a LOG line saying so.
    let inc_items = write_json(
        &tmp.path().join("inc-items.json"),
        &json!({ "streams": [{ "stream": streams["items"], "sync_mode": "incremental", "destination_sync_mode": "append" }]}),
    );
    let out = airbyte(
        tmp.path(),
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            &inc_items,
            "--state",
            &state_file,
        ],
    );
    assert!(out.status.success(), "{}", stdout(&out));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let inc_msgs = messages(&stdout(&out));
    assert_eq!(records(&inc_msgs, "items").len(), 250);
    assert!(
        inc_msgs.iter().any(|m| m["type"] == "LOG"
            && m["log"]["message"]
                .as_str()
                .unwrap()
                .contains("stream `items` supports only full_refresh")),
        "{}",
        stdout(&out)
    );
    let changed: BTreeSet<u64> = records(&msgs, "changes").into_iter().collect();
    assert!(
        changed.contains(&3) && changed.contains(&5) && changed.len() <= 3,
        "{changed:?}"
    );

    // A failing stream: a TRACE error message, exit code 1.
    let catalog = write_json(
        &tmp.path().join("broken.json"),
        &json!({ "streams": [{ "stream": streams["broken"], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite" }]}),
    );
    let out = airbyte(
        tmp.path(),
        &["read", "--config", &config, "--catalog", &catalog],
    );
    assert_eq!(out.status.code(), Some(1));
    all_types.extend(cdk_parse(&python, &stdout(&out)));
    let trace = messages(&stdout(&out))
        .into_iter()
        .find(|m| m["type"] == "TRACE")
        .unwrap();
    let trace = messages(&stdout(&out))
        .into_iter()
        .find(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .unwrap_or(trace);
    assert_eq!(trace["trace"]["error"]["failure_type"], "system_error");
    assert_eq!(
        trace["trace"]["error"]["stream_descriptor"]["name"],
        "broken"
    );
    // The message carries the cause, not only the stream's name.
    let message = trace["trace"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("HTTP 500"), "{message}");
    let statuses: Vec<String> = messages(&stdout(&out))
        .iter()
        .filter(|m| m["trace"]["type"] == "STREAM_STATUS")
        .map(|m| {
            m["trace"]["stream_status"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["STARTED", "RUNNING", "INCOMPLETE"]);

    let want: BTreeSet<String> = [
        "SPEC",
        "CONNECTION_STATUS",
        "CATALOG",
        "RECORD",
        "STATE",
        "LOG",
        "TRACE",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert!(want.is_subset(&all_types), "{all_types:?}");
}

/// Runs `connector-run sync gen STREAMS --dest singer:- [--state FILE]` into
/// `target-jsonl`; returns the records it wrote per stream and the state it
/// printed.
fn singer_run(
    target: &Path,
    tmp: &Path,
    streams: &[&str],
    state: Option<&str>,
    out_dir: &Path,
) -> (BTreeMap<String, Vec<Value>>, Value) {
    let _ = std::fs::remove_dir_all(out_dir);
    let config = write_json(
        &tmp.join("target.json"),
        &json!({ "destination_path": out_dir, "do_timestamp_file": false }),
    );
    let mut args = vec!["sync", "gen"];
    args.extend_from_slice(streams);
    args.extend_from_slice(&["--dest", "singer:-", "--quiet"]);
    if let Some(s) = state {
        args.extend_from_slice(&["--state", s]);
    }
    let mut tap = bin()
        .current_dir(tmp)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let target_out = Command::new(target)
        .args(["--config", &config])
        .stdin(tap.stdout.take().unwrap())
        .output()
        .expect("target-jsonl runs");
    let tap_out = tap.wait_with_output().unwrap();
    assert!(tap_out.status.success(), "{}", stderr(&tap_out));
    assert!(
        target_out.status.success(),
        "target-jsonl: {}",
        String::from_utf8_lossy(&target_out.stderr)
    );
    let mut written = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(out_dir) {
        for e in entries {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            let recs: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            written.insert(name, recs);
        }
    }
    let state_line = String::from_utf8(target_out.stdout).unwrap();
    let state: Value = serde_json::from_str(state_line.trim()).unwrap_or(Value::Null);
    (written, state)
}

#[test]
fn singer_tap_output_goes_through_a_real_target() {
    let Some(target) = tool("CONNECTOR_RUN_TEST_TARGET_JSONL") else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let out_dir = tmp.path().join("singer-out");

    let (written, state) = singer_run(&target, tmp.path(), &["items", "changes"], None, &out_dir);
    let ids = |recs: &[Value]| {
        recs.iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&written["items"]), (1..=250).collect::<Vec<_>>());
    assert_eq!(written["changes"].len(), 250);
    assert_eq!(
        written["items"][0]["nested"],
        json!({"x": 1}),
        "records as extracted"
    );
    assert_eq!(
        state["bookmarks"]["changes"]["cursor"], "2024-01-01T04:10:00Z",
        "the target hands back the last STATE: {state}"
    );

    // The target's state, as Meltano would pass it back, drives an
    // incremental run.
    let state_file = tmp.path().join("singer-state.json");
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    server.touch_records(&[7]);
    let (written, _) = singer_run(
        &target,
        tmp.path(),
        &["changes"],
        Some(state_file.to_str().unwrap()),
        &out_dir,
    );
    let changed: BTreeSet<u64> = ids(&written["changes"]).into_iter().collect();
    assert!(changed.contains(&7) && changed.len() <= 2, "{changed:?}");
    // The state file is only read.
    assert_eq!(
        serde_json::from_slice::<Value>(&std::fs::read(&state_file).unwrap()).unwrap(),
        state
    );
}

#[test]
fn singer_messages_for_nested_records_and_schema_changes() {
    let Some(target) = tool("CONNECTOR_RUN_TEST_TARGET_JSONL") else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = gen_spec(&server.url()).replace(
        "  broken:",
        "  evolving:\n    path: /gen/offset\n    primary_key: id\n    records:\n      path: $.data\n      add_fields:\n        v: \"{{ record.id if record.id <= 30 else 'v' ~ record.id }}\"\n  broken:",
    );
    write_spec(tmp.path(), "gen", &spec);
    // A sample of one page: `v` widens after the first SCHEMA.
    let config = write_json(
        &tmp.path().join("config.json"),
        &json!({ "fail_path": "/gen/offset" }),
    );
    let out = run_ok(
        tmp.path(),
        &[
            "singer",
            "gen",
            "--sample-pages",
            "1",
            "--quiet",
            "--config",
            &config,
        ],
        &[],
    );
    let msgs: Vec<Value> = messages(&stdout(&out))
        .into_iter()
        .filter(|m| m["stream"] == "evolving" || m["type"] == "STATE")
        .collect();
    let schemas: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "SCHEMA").collect();
    assert_eq!(schemas.len(), 2, "sent again when `v` widens");
    assert_eq!(schemas[0]["key_properties"], json!(["id"]));
    assert_eq!(
        schemas[0]["schema"]["properties"]["v"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(
        schemas[1]["schema"]["properties"]["v"]["type"],
        json!(["integer", "null", "string"]),
        "the records keep their types"
    );
    let first_record = msgs.iter().position(|m| m["type"] == "RECORD").unwrap();
    assert!(msgs[..first_record].iter().any(|m| m["type"] == "SCHEMA"));
    assert!(msgs.iter().any(|m| m["type"] == "STATE"));
    // The real target accepts it: every record validates against the schema
    // in force.
    let out_dir = tmp.path().join("out");
    let (written, _) = singer_run(&target, tmp.path(), &["evolving"], None, &out_dir);
    assert_eq!(written["evolving"].len(), 250);
    assert_eq!(written["evolving"][40]["v"], "v41");
}

/// The first trace error of an Airbyte command's output.
fn trace_error_of(out: &std::process::Output) -> Value {
    messages(&stdout(out))
        .into_iter()
        .find(|m| m["type"] == "TRACE" && m["trace"]["type"] == "ERROR")
        .unwrap_or_else(|| panic!("no TRACE error in {}", stdout(out)))
}

#[test]
fn airbyte_discover_that_cannot_sample_is_an_error() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    // Nothing listens: a config error, with the cause, exit 1, no catalog.
    let down = write_json(
        &tmp.path().join("down.json"),
        &json!({ "base_url": "http://127.0.0.1:1" }),
    );
    let out = airbyte(tmp.path(), &["discover", "--config", &down]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stdout(&out).contains("\"CATALOG\""), "{}", stdout(&out));
    let error = trace_error_of(&out)["trace"]["error"].clone();
    assert_eq!(error["failure_type"], "config_error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{error}"
    );
    // A path the server does not have: 404, the user's to fix.
    let missing = write_json(
        &tmp.path().join("missing.json"),
        &json!({ "base_url": format!("{}/nowhere", server.url()) }),
    );
    let out = airbyte(tmp.path(), &["discover", "--config", &missing]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let error = trace_error_of(&out)["trace"]["error"].clone();
    assert_eq!(error["failure_type"], "config_error", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("HTTP 404"),
        "{error}"
    );
    assert!(error["stream_descriptor"]["name"].is_string(), "{error}");
    if let Some(python) = tool("CONNECTOR_RUN_TEST_AIRBYTE_PYTHON") {
        cdk_parse(&python, &stdout(&out));
    }
}

/// `gen` with a stream whose `v` is an integer on page 1 and a string from
/// page 2 on, and whose `late` field first appears on page 3 (pages of 20).
fn evolving_spec(base: &str) -> String {
    gen_spec(base).replace(
        "  broken:",
        r#"  evolving:
    path: /gen/offset
    primary_key: id
    records:
      path: $.data
      add_fields:
        v: "{{ record.id if record.id <= 20 else 'v' ~ record.id }}"
      transforms:
        - when: "record.id > 45"
          add_fields: { late: "{{ record.id }}" }
  broken:"#,
    )
}

#[test]
fn protocol_schemas_hold_for_the_whole_stream() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &evolving_spec(&server.url()));
    let config = write_json(
        &tmp.path().join("config.json"),
        &json!({ "base_url": server.url(), "fail_path": "/gen/offset" }),
    );
    let catalog_props = |out: &std::process::Output| -> Value {
        assert!(out.status.success(), "{}", stdout(out));
        let cat = messages(&stdout(out))
            .into_iter()
            .find(|m| m["type"] == "CATALOG")
            .unwrap();
        cat["catalog"]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "evolving")
            .unwrap()["json_schema"]["properties"]
            .clone()
    };
    // The default sample (5 pages) sees both types and the late field.
    let p = catalog_props(&airbyte(tmp.path(), &["discover", "--config", &config]));
    assert_eq!(p["v"]["type"], json!(["integer", "null", "string"]), "{p}");
    assert_eq!(p["late"]["type"], json!(["integer", "null"]), "{p}");
    assert_eq!(
        p["updated_at"],
        json!({"type": ["null", "string"], "format": "date-time"})
    );
    // One page sees neither.
    let p = catalog_props(&airbyte(
        tmp.path(),
        &["discover", "--config", &config, "--sample-pages", "1"],
    ));
    assert_eq!(p["v"]["type"], json!(["integer", "null"]), "{p}");
    assert!(p.get("late").is_none(), "{p}");

    // Singer: `--discover` says the same, and a sync's first SCHEMA holds
    // every record (the first pages are held back until it is known).
    let out = run_ok(
        tmp.path(),
        &["singer", "gen", "--discover", "--config", &config],
        &[],
    );
    let cat: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ev = cat["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == "evolving")
        .unwrap();
    assert_eq!(
        ev["schema"]["properties"]["v"]["type"],
        json!(["integer", "null", "string"])
    );
    let out = run_ok(
        tmp.path(),
        &[
            "sync", "gen", "evolving", "--dest", "singer:-", "--quiet", "--config", &config,
        ],
        &[],
    );
    let msgs = messages(&stdout(&out));
    let schemas: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "SCHEMA").collect();
    assert_eq!(schemas.len(), 1, "{schemas:#?}");
    let p = &schemas[0]["schema"]["properties"];
    assert_eq!(p["v"]["type"], json!(["integer", "null", "string"]));
    assert_eq!(p["late"]["type"], json!(["integer", "null"]));
    assert_eq!(p["updated_at"]["format"], "date-time");
    let first_record = msgs.iter().position(|m| m["type"] == "RECORD").unwrap();
    let first_state_after = msgs[first_record..]
        .iter()
        .position(|m| m["type"] == "STATE")
        .unwrap();
    assert_eq!(
        first_state_after, 100,
        "the 5 pages held back come before the state that covers them"
    );
    assert_eq!(msgs.iter().filter(|m| m["type"] == "RECORD").count(), 250);
}

/// The messages of `connector-run ARGS` (exit code checked against `code`).
fn tap_messages(tmp: &Path, args: &[&str], code: i32) -> Vec<Value> {
    let out = run(tmp, args, &[]);
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    messages(&stdout(&out))
}

/// The types of a stream's messages in order, runs of RECORDs as one.
fn message_kinds(msgs: &[Value], stream: &str) -> Vec<String> {
    let mut kinds: Vec<String> = msgs
        .iter()
        .filter(|m| m["stream"] == stream)
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect();
    kinds.dedup();
    kinds
}

#[test]
fn singer_tap_about_discover_and_catalog_selection() {
    let Some(target) = tool("CONNECTOR_RUN_TEST_TARGET_JSONL") else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let config = write_json(
        &tmp.path().join("config.json"),
        &json!({ "base_url": server.url() }),
    );

    let out = run_ok(
        tmp.path(),
        &["singer", "gen", "--about", "--format", "json"],
        &[],
    );
    let about: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(about["name"], "tap-gen");
    for c in ["about", "catalog", "discover", "state"] {
        assert!(
            about["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!(c)),
            "{about}"
        );
    }
    let token = about["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api_token")
        .unwrap();
    assert_eq!(token["sensitive"], true);

    let out = run_ok(
        tmp.path(),
        &["singer", "gen", "--discover", "--config", &config],
        &[],
    );
    let mut catalog: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let entry = |c: &Value, name: &str| -> Value {
        c["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["tap_stream_id"] == name)
            .unwrap()
            .clone()
    };
    let changes = entry(&catalog, "changes");
    assert_eq!(changes["key_properties"], json!(["id"]));
    assert_eq!(changes["replication_method"], "INCREMENTAL");
    assert_eq!(changes["replication_key"], "updated_at");
    assert_eq!(entry(&catalog, "items")["replication_method"], "FULL_TABLE");
    let md = changes["metadata"].as_array().unwrap();
    let top = md.iter().find(|m| m["breadcrumb"] == json!([])).unwrap();
    assert_eq!(top["metadata"]["selected"], true);
    assert_eq!(
        top["metadata"]["valid-replication-keys"],
        json!(["updated_at"])
    );
    let id = md
        .iter()
        .find(|m| m["breadcrumb"] == json!(["properties", "id"]))
        .unwrap();
    assert_eq!(id["metadata"]["inclusion"], "automatic");
    assert_eq!(
        changes["schema"]["properties"]["updated_at"]["format"],
        "date-time"
    );

    // Select `changes` with `name` only (its key and cursor come along), and
    // not `items` or `broken`, as `meltano select` writes it.
    for s in catalog["streams"].as_array_mut().unwrap() {
        let name = s["tap_stream_id"].as_str().unwrap().to_string();
        for m in s["metadata"].as_array_mut().unwrap() {
            let crumb = m["breadcrumb"].clone();
            let on = if crumb == json!([]) {
                name == "changes"
            } else {
                crumb == json!(["properties", "name"])
            };
            m["metadata"]["selected"] = json!(on);
        }
    }
    let catalog_file = write_json(&tmp.path().join("catalog.json"), &catalog);
    let out_dir = tmp.path().join("out");
    let target_config = write_json(
        &tmp.path().join("target.json"),
        &json!({ "destination_path": out_dir, "do_timestamp_file": false }),
    );
    let mut tap = bin()
        .current_dir(tmp.path())
        .args([
            "singer",
            "gen",
            "--config",
            &config,
            "--catalog",
            &catalog_file,
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let target_out = Command::new(&target)
        .args(["--config", &target_config])
        .stdin(tap.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tap.wait().unwrap().success());
    assert!(
        target_out.status.success(),
        "{}",
        String::from_utf8_lossy(&target_out.stderr)
    );
    let files: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, BTreeSet::from(["changes.jsonl".to_string()]));
    let recs = read_jsonl(&out_dir, "changes");
    assert_eq!(recs.len(), 250);
    let keys: BTreeSet<&String> = recs[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        BTreeSet::from([&"id".into(), &"name".into(), &"updated_at".into()])
    );
}

#[test]
fn singer_activate_version_for_full_refresh_streams() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let config = write_json(
        &tmp.path().join("config.json"),
        &json!({ "base_url": server.url() }),
    );
    // First run: `broken` fails on its third page.
    let msgs = tap_messages(
        tmp.path(),
        &["singer", "gen", "--config", &config, "--quiet"],
        1,
    );
    assert_eq!(
        message_kinds(&msgs, "items"),
        ["SCHEMA", "ACTIVATE_VERSION", "RECORD", "ACTIVATE_VERSION"]
    );
    let version = |msgs: &[Value], stream: &str| -> Vec<u64> {
        msgs.iter()
            .filter(|m| m["stream"] == stream && m["type"] == "ACTIVATE_VERSION")
            .map(|m| m["version"].as_u64().unwrap())
            .collect()
    };
    let v = version(&msgs, "items");
    assert_eq!(v[0], v[1]);
    assert!(
        msgs.iter()
            .filter(|m| m["stream"] == "items" && m["type"] == "RECORD")
            .all(|m| m["version"] == v[0])
    );
    // Incremental streams have no versions.
    assert_eq!(message_kinds(&msgs, "changes"), ["SCHEMA", "RECORD"]);
    assert!(
        msgs.iter()
            .all(|m| m["stream"] != "changes" || m.get("version").is_none())
    );
    // A failed full-refresh stream is not activated; its bookmark keeps the
    // version for the resume.
    assert_eq!(
        message_kinds(&msgs, "broken"),
        ["SCHEMA", "ACTIVATE_VERSION", "RECORD"]
    );
    let broken_v = version(&msgs, "broken")[0];
    let state = msgs.iter().rev().find(|m| m["type"] == "STATE").unwrap()["value"].clone();
    assert_eq!(
        state["bookmarks"]["broken"]["destination"]["version"], broken_v,
        "{state}"
    );
    let state_file = write_json(&tmp.path().join("state.json"), &state);

    // Second run, from that state, with `broken` fixed: no activation at
    // the start (the target keeps showing the last version meanwhile), one
    // at the end; `broken` resumes in its version and completes it.
    let fixed = write_json(
        &tmp.path().join("fixed.json"),
        &json!({ "base_url": server.url(), "fail_path": "/gen/offset" }),
    );
    let msgs = tap_messages(
        tmp.path(),
        &[
            "singer",
            "gen",
            "--config",
            &fixed,
            "--state",
            &state_file,
            "--quiet",
        ],
        0,
    );
    assert_eq!(
        message_kinds(&msgs, "items"),
        ["SCHEMA", "RECORD", "ACTIVATE_VERSION"]
    );
    assert!(version(&msgs, "items")[0] > v[0]);
    assert_eq!(
        message_kinds(&msgs, "broken"),
        ["SCHEMA", "RECORD", "ACTIVATE_VERSION"]
    );
    assert_eq!(version(&msgs, "broken"), [broken_v]);
    let broken_ids: Vec<u64> = msgs
        .iter()
        .filter(|m| m["stream"] == "broken" && m["type"] == "RECORD")
        .map(|m| m["record"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        broken_ids,
        (41..=250).collect::<Vec<_>>(),
        "resumed after page 2"
    );

    // A preview (`--limit`) never activates its cut-down table.
    let msgs = tap_messages(
        tmp.path(),
        &[
            "sync", "gen", "items", "--dest", "singer:-", "--limit", "30", "--quiet",
        ],
        0,
    );
    assert_eq!(
        message_kinds(&msgs, "items"),
        ["SCHEMA", "ACTIVATE_VERSION", "RECORD"]
    );
}

/// Writes an executable shell script.
fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The README's Meltano recipe, run by a real Meltano (`CONNECTOR_RUN_TEST_MELTANO`)
/// into the real `target-jsonl`: a wrapper script as a custom extractor,
/// `select:` honoured, and the state Meltano keeps passed back.
#[test]
fn meltano_runs_the_tap_twice_with_selection_and_state() {
    let (Some(meltano), Some(target)) = (
        tool("CONNECTOR_RUN_TEST_MELTANO"),
        tool("CONNECTOR_RUN_TEST_TARGET_JSONL"),
    ) else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // The wrapper, as in the README: the binary, the connectors folder, the
    // tap; in the project folder, named by a relative path.
    let wrapper = project.join("tap-gen");
    write_script(
        &wrapper,
        &format!(
            "exec {} --connectors-dir {} singer gen \"$@\"",
            env!("CARGO_BIN_EXE_connector-run"),
            tmp.path().join("connectors").display()
        ),
    );
    let yml = format!(
        r#"default_environment: dev
project_id: connector-run-test
send_anonymous_usage_stats: false
environments:
- name: dev
plugins:
  extractors:
  - name: tap-gen
    namespace: tap_gen
    executable: ./tap-gen
    capabilities: [about, catalog, discover, state]
    settings:
    - name: base_url
    config:
      base_url: {base}
    select:
    - changes.name
  loaders:
  - name: target-jsonl
    namespace: target_jsonl
    executable: {target}
    config:
      destination_path: out
      do_timestamp_file: false
"#,
        base = server.url(),
        target = target.display(),
    );
    std::fs::write(project.join("meltano.yml"), yml).unwrap();
    let meltano_run = |args: &[&str]| {
        let out = Command::new(&meltano)
            .current_dir(&project)
            .args(args)
            .env("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false")
            .env("NO_COLOR", "1")
            .output()
            .expect("meltano runs");
        assert!(
            out.status.success(),
            "meltano {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    meltano_run(&["run", "tap-gen", "target-jsonl"]);
    let out_dir = project.join("out");
    let files: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["changes.jsonl".to_string()]),
        "select: changes only"
    );
    let recs = read_jsonl(&out_dir, "changes");
    assert_eq!(ids(&recs), (1..=250).collect::<Vec<_>>());
    let keys: BTreeSet<&String> = recs[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        BTreeSet::from([&"id".into(), &"name".into(), &"updated_at".into()]),
        "the selected field, with the key and the cursor"
    );
    let selected = meltano_run(&["select", "tap-gen", "--list", "--all"]);
    assert!(
        selected.contains("[selected   ] changes.name"),
        "{selected}"
    );
    assert!(selected.contains("[excluded   ] items.name"), "{selected}");
    let state = meltano_run(&["state", "get", "dev:tap-gen-to-target-jsonl"]);
    assert!(state.contains("2024-01-01T04:10:00Z"), "{state}");

    // The second run gets Meltano's state back: only what changed.
    server.touch_records(&[3, 5]);
    meltano_run(&["run", "tap-gen", "target-jsonl"]);
    let recs = read_jsonl(&out_dir, "changes");
    assert_eq!(recs.len(), 252, "target-jsonl appends");
    assert_eq!(ids(&recs[250..]), [3, 5]);
}

/// PyAirbyte's side of [`pyairbyte_reads_into_its_duckdb_cache_twice`].
const PYAIRBYTE_SCRIPT: &str = r#"
import json, sys
import airbyte as ab
from airbyte.caches import DuckDBCache

exe, base, db = sys.argv[1:4]
source = ab.get_source(
    "source-gen", local_executable=exe, config={"base_url": base}, install_if_missing=False
)
source.check()
source.select_streams(["items", "changes"])
cache = DuckDBCache(db_path=db)
result = source.read(cache=cache)
changes = list(cache["changes"])
states = cache.get_state_provider(source_name="source-gen").stream_state_artifacts
print(json.dumps({
    "processed": result.processed_records,
    "items": len(list(cache["items"])),
    "changes": len(changes),
    "updated_at_3": str(next(r["updated_at"] for r in changes if r["id"] == 3)),
    "cursor": {s.stream_descriptor.name: (s.stream_state.cursor if s.stream_state and hasattr(s.stream_state, "cursor") else None) for s in states},
}))
"#;

/// `connector-run airbyte` as a PyAirbyte source (`get_source(...,
/// local_executable=...)`, `CONNECTOR_RUN_TEST_PYAIRBYTE_PYTHON`) into its
/// DuckDB cache, twice: exact counts, and the state PyAirbyte keeps makes
/// the second read incremental.
#[test]
fn pyairbyte_reads_into_its_duckdb_cache_twice() {
    let Some(python) = tool("CONNECTOR_RUN_TEST_PYAIRBYTE_PYTHON") else {
        return;
    };
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let wrapper = tmp.path().join("source-gen");
    write_script(
        &wrapper,
        &format!(
            "exec {} --connectors-dir {} airbyte gen \"$@\"",
            env!("CARGO_BIN_EXE_connector-run"),
            tmp.path().join("connectors").display()
        ),
    );
    let script = tmp.path().join("read.py");
    std::fs::write(&script, PYAIRBYTE_SCRIPT).unwrap();
    let db = tmp.path().join("cache.duckdb");
    let read = || -> Value {
        let out = Command::new(&python)
            .current_dir(tmp.path())
            .arg(&script)
            .args([
                wrapper.to_str().unwrap(),
                &server.url(),
                db.to_str().unwrap(),
            ])
            .env("AIRBYTE_OFFLINE_MODE", "1")
            .env("DO_NOT_TRACK", "1")
            .env("AIRBYTE_LOGGING_ROOT", tmp.path().join("logs"))
            .env("NO_COLOR", "1")
            .output()
            .expect("python runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "PyAirbyte: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = text.lines().rev().find(|l| l.starts_with('{')).unwrap();
        serde_json::from_str(last).unwrap()
    };
    let first = read();
    assert_eq!(first["processed"], 500, "{first}");
    assert_eq!(first["items"], 250, "{first}");
    assert_eq!(first["changes"], 250, "{first}");
    assert_eq!(
        first["cursor"]["changes"], "2024-01-01T04:10:00Z",
        "{first}"
    );
    let before = first["updated_at_3"].clone();

    server.touch_records(&[3, 5]);
    let second = read();
    assert_eq!(
        second["processed"], 252,
        "items in full, 2 changes: {second}"
    );
    assert_eq!(second["items"], 250, "merged on the primary key: {second}");
    assert_eq!(
        second["changes"], 250,
        "merged on the primary key: {second}"
    );
    assert_ne!(second["updated_at_3"], before, "{second}");
}
