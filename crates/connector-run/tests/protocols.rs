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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tool the test needs, from the environment; `None` with a note locally,
/// a failure in CI.
fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set {var} (.ci/run installs it)"
            );
            eprintln!("skipped: {var} is not set (bash .ci/run installs it)");
            None
        }
    }
}

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
    assert_eq!(trace["trace"]["error"]["failure_type"], "system_error");
    assert_eq!(
        trace["trace"]["error"]["stream_descriptor"]["name"],
        "broken"
    );

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
    let out = run(
        tmp.path(),
        &["sync", "gen", "evolving", "--dest", "singer:-", "--quiet"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let msgs = messages(&stdout(&out));
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
