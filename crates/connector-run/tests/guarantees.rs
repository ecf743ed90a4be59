//! Nothing lost, nothing duplicated, nothing leaked (issue #9): each case
//! against a loopback server in a real API's shape or a hostile one.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer, Origin};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn read_state(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn sqlite_count(db: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

fn parquet_rows(path: &Path) -> usize {
    use parquet::file::reader::FileReader;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = parquet::file::reader::SerializedFileReader::new(f).unwrap();
    r.metadata().file_metadata().num_rows() as usize
}

/// Masks epoch seconds (ten digits).
fn mask_epochs(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() == 10 {
            "[EPOCH]"
        } else {
            &digits
        });
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// Masks process ids in `(pid N)`.
fn mask_pids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("(pid ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        out.push_str("[PID]");
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

// 1. Stripe: the cursor is the last record's id, read from the records array.

fn stripe_spec(base: &str, cursor_path: &str) -> String {
    format!(
        r#"
version: 1
name: stripe
config:
  base_url: {{ default: "{base}" }}
  api_key: {{ secret: true, required: true }}
base_url: "{{{{ config.base_url }}}}"
auth: {{ type: bearer, token: "{{{{ config.api_key }}}}" }}
streams:
  customers:
    path: /stripe/v1/customers
    primary_key: id
    records: {{ path: $.data }}
    pagination:
      type: cursor
      cursor_path: "{cursor_path}"
      cursor_param: starting_after
      size_param: limit
      page_size: 100
      stop: {{ has_more_path: $.has_more }}
"#
    )
}

#[test]
fn a_cursor_read_from_the_records_pages_to_the_end() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "stripe",
        &stripe_spec(&server.url(), "$.data[-1].id"),
    );
    let key = ("CONNECTOR_STRIPE_API_KEY", mock_api::STRIPE_KEY);
    for dest in ["jsonl:out", "sqlite:out/stripe.db"] {
        let o = run(tmp.path(), &["sync", "stripe", "--dest", dest], &[key]);
        assert!(o.status.success(), "{dest}: {}", stderr(&o));
    }
    let records = read_jsonl(&tmp.path().join("out"), "customers");
    let unique: BTreeSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(records.len(), 2345, "every customer");
    assert_eq!(unique.len(), 2345, "each once");
    assert_eq!(
        sqlite_count(&tmp.path().join("out/stripe.db"), "customers"),
        2345
    );
}

#[test]
fn has_more_without_a_token_is_an_error_not_a_clean_end() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    // A typo in the cursor path: it finds nothing while `has_more` is true.
    write_spec(
        tmp.path(),
        "stripe",
        &stripe_spec(&server.url(), "$.data[-1].idd"),
    );
    let o = run(
        tmp.path(),
        &["sync", "stripe", "--dest", "jsonl:out"],
        &[("CONNECTOR_STRIPE_API_KEY", mock_api::STRIPE_KEY)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!(
        "has_more_without_token",
        stable(&error_lines(&o), tmp.path())
    );
    // Where the next page is cannot be known, so the page is not committed:
    // a rerun after fixing the spec starts at it, and writes it once.
    let state = read_state(&tmp.path().join("out/_state.json"));
    assert_eq!(state["streams"]["customers"]["in_progress"], true);
    assert_eq!(lines(&tmp.path().join("out/customers.jsonl")), 0);
}

// 2. A full-refresh child of an incremental parent sees every parent.

const PARENT_CHILD: &str = r#"
version: 1
name: gen
config:
  base_url: {}
base_url: "{{ config.base_url }}"
streams:
  items:
    path: /gen/offset
    primary_key: id
    records: { path: $.data }
    pagination: { type: offset, page_size: 50, stop: { total_path: $.total } }
    incremental:
      cursor_field: updated_at
      start_value: "2024-01-01T00:00:00Z"
      param: updated_since
  item_details:
    parent: items
    path: /gen/single
    params: { id: "{{ parent.id }}" }
    primary_key: id
"#;

#[test]
fn a_full_refresh_child_of_an_incremental_parent_keeps_every_record() {
    let server = MockServer::start(MockConfig::default().generated_records(120));
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "gen",
        &PARENT_CHILD.replace(
            "base_url: {}",
            &format!("base_url: {{ default: \"{}\" }}", server.url()),
        ),
    );
    let sync = |dest: &str| {
        run_ok(tmp.path(), &["sync", "gen", "--dest", dest], &[]);
    };
    sync("jsonl:out");
    sync("sqlite:out/gen.db");
    assert_eq!(
        read_jsonl(&tmp.path().join("out"), "item_details").len(),
        120
    );
    server.touch_records(&[4, 9, 77]);
    sync("jsonl:out");
    sync("sqlite:out/gen.db");
    let out = tmp.path().join("out");
    // The child is a full refresh: replaced whole, never shrunk to the changes.
    assert_eq!(read_jsonl(&out, "item_details").len(), 120);
    assert_eq!(sqlite_count(&out.join("gen.db"), "item_details"), 120);
    // The parent is incremental: exactly the three changed records were added.
    let items = read_jsonl(&out, "items");
    assert_eq!(items.len(), 123, "{:?}", ids(&items[120..]));
    let added: BTreeSet<u64> = ids(&items[120..]).into_iter().collect();
    assert_eq!(added, [4, 9, 77].into_iter().collect());
    assert_eq!(sqlite_count(&out.join("gen.db"), "items"), 120);
}

/// The same with a windowed parent (Airbyte's `DatetimeBasedCursor` with a
/// `step`, as Lever's opportunities and their applications): the second
/// run's windows start at the parent's start, not at its cursor, so the
/// child still sees every parent.
#[test]
fn a_full_refresh_child_of_a_windowed_parent_keeps_every_record() {
    let server = MockServer::start(MockConfig::default().generated_records(120));
    let tmp = tempfile::tempdir().unwrap();
    let spec = PARENT_CHILD
        .replace(
            "base_url: {}",
            &format!("base_url: {{ default: \"{}\" }}", server.url()),
        )
        .replace(
            "      param: updated_since\n",
            "      windows: { step: 60d }\n    params: { updated_since: \"{{ window.start }}\", updated_before: \"{{ window.end }}\" }\n",
        );
    assert!(spec.contains("windows"), "{spec}");
    write_spec(tmp.path(), "gen", &spec);
    let sync = || {
        run_ok(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    };
    sync();
    let out = tmp.path().join("out");
    assert_eq!(read_jsonl(&out, "item_details").len(), 120);
    assert_eq!(read_jsonl(&out, "items").len(), 120);
    // The mock's clock has seconds. A range to now ends with the last whole
    // second before it: the touched records, in the first run's second or
    // later, are in the next range once their second has passed.
    server.touch_records(&[4, 9, 77]);
    std::thread::sleep(Duration::from_millis(1050));
    sync();
    assert_eq!(read_jsonl(&out, "item_details").len(), 120);
    let items = read_jsonl(&out, "items");
    assert_eq!(items.len(), 123);
    let added: BTreeSet<u64> = ids(&items[120..]).into_iter().collect();
    assert_eq!(added, [4, 9, 77].into_iter().collect());
}

// 3. Timestamps with offsets compare as instants.

const TZ: &str = r#"
version: 1
name: tz
config:
  base_url: {}
base_url: "{{ config.base_url }}"
streams:
  events:
    path: /tz/events
    primary_key: id
    records: { path: $.data }
    incremental:
      cursor_field: updated_at
      start_value: "2022-12-31T00:00:00Z"
      param: since
"#;

#[test]
fn offset_timestamps_compare_as_instants() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = TZ.replace(
        "base_url: {}",
        &format!("base_url: {{ default: \"{}\" }}", server.url()),
    );
    write_spec(tmp.path(), "tz", &spec);
    run_ok(tmp.path(), &["sync", "tz", "--dest", "jsonl:out"], &[]);
    let out = tmp.path().join("out");
    let first = read_jsonl(&out, "events");
    assert_eq!(first.len(), 30);
    // The saved cursor is the latest instant (record 30), not the largest text.
    let state = read_state(&out.join("_state.json"));
    assert_eq!(
        state["streams"]["events"]["cursor"],
        first[29]["updated_at"]
    );

    server.tz_touch(&[10]);
    run_ok(tmp.path(), &["sync", "tz", "--dest", "jsonl:out"], &[]);
    let all = read_jsonl(&out, "events");
    // The inclusive `since` sends record 30 again: it is not written twice.
    assert_eq!(ids(&all[30..]), vec![10], "only the changed record");
    let touched = all[30]["updated_at"].as_str().unwrap();
    assert!(touched.ends_with("-05:00"), "{touched}");
    let state = read_state(&out.join("_state.json"));
    assert_eq!(state["streams"]["events"]["cursor"], touched);

    // With a lookback the window is re-read from an hour before the cursor,
    // sent as UTC.
    server.clear_requests();
    let with_lookback = spec.replace("param: since", "param: since\n      lookback: 1h");
    write_spec(tmp.path(), "tz", &with_lookback);
    run_ok(tmp.path(), &["sync", "tz", "--dest", "jsonl:out"], &[]);
    let since = server.requests()[0].query.clone().unwrap();
    assert!(since.contains("since=") && since.contains('Z'), "{since}");
}

#[test]
fn an_unparseable_datetime_cursor_is_an_error_naming_the_field_and_value() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    // `name` holds `item-1`, not a datetime.
    let spec = format!(
        r#"
version: 1
name: gen
base_url: "{}"
streams:
  items:
    path: /gen/offset
    records: {{ path: $.data }}
    incremental: {{ cursor_field: name }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "gen", &spec);
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!("unparseable_cursor", stable(&error_lines(&o), tmp.path()));
}

// 4. Boundary records of inclusive and exclusive APIs are written once.

fn changes_spec(base: &str, param: &str) -> String {
    format!(
        r#"
version: 1
name: gen
base_url: "{base}"
streams:
  changes:
    path: /gen/offset
    records: {{ path: $.data }}
    pagination: {{ type: offset, page_size: 40, stop: {{ total_path: $.total }} }}
    incremental:
      cursor_field: updated_at
      start_value: "2024-01-01T00:00:00Z"
      param: {param}
"#
    )
}

#[test]
fn boundary_records_are_written_once_on_inclusive_and_exclusive_apis() {
    for (param, pk) in [
        ("updated_since", true),
        ("updated_since", false),
        ("updated_after", true),
    ] {
        let server = MockServer::start(MockConfig::default());
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = changes_spec(&server.url(), param);
        if pk {
            spec = spec.replace(
                "    path: /gen/offset",
                "    path: /gen/offset\n    primary_key: id",
            );
        }
        write_spec(tmp.path(), "gen", &spec);
        // Each destination keeps its own state.
        let dests = ["jsonl:j", "csv:c", "parquet:p", "sqlite:s/gen.db"];
        let sync = |dest: &str| {
            let mut args = vec!["sync", "gen", "--dest", dest];
            if dest.starts_with("sqlite") {
                args.extend(["--write-mode", "append"]);
            }
            let o = run(tmp.path(), &args, &[]);
            assert!(o.status.success(), "{param} {dest}: {}", stderr(&o));
        };
        for d in dests {
            sync(d);
        }
        let touched: Vec<u64> = (1..=15).map(|i| i * 11).collect();
        server.touch_records(&touched);
        for d in dests {
            sync(d);
        }
        let dir = tmp.path();
        let what = format!("{param}, primary key {pk}");
        let got = read_jsonl(&dir.join("j"), "changes");
        assert_eq!(got.len(), 250 + 15, "jsonl, {what}: {:?}", ids(&got[250..]));
        let added: BTreeSet<u64> = ids(&got[250..]).into_iter().collect();
        assert_eq!(added, touched.iter().copied().collect(), "{what}");
        assert_eq!(
            lines(&dir.join("c/changes.csv")),
            1 + 250 + 15,
            "csv, {what}"
        );
        assert_eq!(
            sqlite_count(&dir.join("s/gen.db"), "changes"),
            250 + 15,
            "sqlite append, {what}"
        );
        assert_eq!(
            parquet_rows(&dir.join("p/changes.parquet")),
            250 + 15,
            "parquet, {what}"
        );
        // A third run with nothing new writes nothing.
        sync("jsonl:j");
        assert_eq!(read_jsonl(&dir.join("j"), "changes").len(), 265, "{what}");
    }
}

// 5. A kill between the last page's checkpoint and the stream's end.

#[test]
fn a_kill_after_the_last_checkpoint_never_doubles_a_file() {
    let server = MockServer::start(MockConfig::default().generated_records(30_000));
    let tmp = tempfile::tempdir().unwrap();
    let spec = gen_items_spec(&server.url(), 1000);
    write_spec(tmp.path(), "gen", &spec);
    let mut landed = 0;
    for (dest, attempts) in [("parquet", 6), ("csv", 6), ("jsonl", 25)] {
        for attempt in 0..attempts {
            let out = tmp.path().join(format!("{dest}-{attempt}"));
            let uri = format!("{dest}:{}", out.display());
            let mut child = bin()
                .current_dir(tmp.path())
                .args(["sync", "gen", "--dest", &uri, "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Kill once the last page is checkpointed but the stream is not complete.
            let state_path = out.join("_state.json");
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut hit = false;
            loop {
                assert!(Instant::now() < deadline, "the sync did not finish");
                if let Some(s) = std::fs::read_to_string(&state_path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                {
                    let st = &s["streams"]["items"];
                    let open = st["partitions"].as_object().is_some_and(|p| !p.is_empty());
                    // Something was written: not the checkpoint at the start.
                    let written = st["destination"].as_object().is_some_and(|d| {
                        ["bytes", "body_bytes", "spill_bytes"]
                            .iter()
                            .any(|k| d.get(*k).and_then(Value::as_u64).is_some_and(|n| n > 0))
                    });
                    if st["in_progress"] == Value::Bool(true) && !open && written {
                        child.kill().unwrap();
                        hit = true;
                    }
                }
                if hit || child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            child.wait().unwrap();
            if !hit {
                continue;
            }
            landed += 1;
            run_ok(tmp.path(), &["sync", "gen", "--dest", &uri], &[]);
            let n = match dest {
                "jsonl" => read_jsonl(&out, "items").len(),
                "csv" => lines(&out.join("items.csv")) - 1,
                _ => parquet_rows(&out.join("items.parquet")),
            };
            assert_eq!(
                n, 30_000,
                "{dest} after a kill in the window (attempt {attempt})"
            );
        }
    }
    assert!(
        landed >= 2,
        "kills landed in the window only {landed} times"
    );
}

// 6. One run per destination.

#[test]
fn a_second_sync_into_the_same_destination_fails_at_once() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(40),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let spec = gen_items_spec(&server.url(), 5);
    write_spec(tmp.path(), "gen", &spec);
    for dest in ["jsonl:out", "sqlite:out/gen.db"] {
        let mut first = bin()
            .current_dir(tmp.path())
            .args(["sync", "gen", "--dest", dest, "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lock = if dest.starts_with("jsonl") {
            tmp.path().join("out/.connector-run.lock")
        } else {
            tmp.path().join("out/gen.db.lock")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&lock).is_ok_and(|t| !t.is_empty()) {
            assert!(
                Instant::now() < deadline,
                "the first run never took the lock"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        let second = run(tmp.path(), &["sync", "gen", "--dest", dest], &[]);
        assert!(started.elapsed() < Duration::from_secs(5), "failed at once");
        assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
        let msg = stderr(&second);
        assert!(
            msg.contains(&format!(
                "is being synced by another run (pid {})",
                first.id()
            )),
            "{msg}"
        );
        insta::assert_snapshot!(
            format!("locked_{}", dest.split(':').next().unwrap()),
            mask_pids(&stable(&error_lines(&second), tmp.path()))
        );
        assert!(first.wait().unwrap().success());
        assert!(!lock.exists(), "the lock file is removed at the end");
        let n = match dest {
            "jsonl:out" => read_jsonl(&tmp.path().join("out"), "items").len() as i64,
            _ => sqlite_count(&tmp.path().join("out/gen.db"), "items"),
        };
        assert_eq!(n, 250, "{dest}: the first run's data is intact");
    }
}

// 7. Records without their key, and records that are not objects.

fn hostile_spec(base: &str, path: &str, extra: &str) -> String {
    format!(
        r#"
version: 1
name: hostile
base_url: "{base}"
streams:
  things:
    path: {path}
    records: {{ path: $.data{extra} }}
"#
    )
}

#[test]
fn records_without_their_key_fail_or_are_skipped_never_null_rows() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = hostile_spec(&server.url(), "/hostile/missing_key", "").replace(
        "    path: /hostile/missing_key",
        "    path: /hostile/missing_key\n    primary_key: id",
    );
    write_spec(tmp.path(), "hostile", &spec);
    let o = run(
        tmp.path(),
        &["sync", "hostile", "--dest", "sqlite:out/h.db"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!("missing_key", stable(&error_lines(&o), tmp.path()));
    // Files too, where records stay raw JSON text: the same error.
    for dest in ["jsonl:out/j", "parquet:out/p"] {
        let f = run(tmp.path(), &["sync", "hostile", "--dest", dest], &[]);
        assert_eq!(f.status.code(), Some(1), "{dest}: {}", stderr(&f));
        assert_eq!(error_lines(&f), error_lines(&o), "{dest}");
    }

    let skip = spec.replace(
        "records: { path: $.data }",
        "records: { path: $.data, on_invalid: skip }",
    );
    write_spec(tmp.path(), "hostile", &skip);
    for _ in 0..2 {
        let o = run_ok(
            tmp.path(),
            &["sync", "hostile", "--dest", "sqlite:out/h.db"],
            &[],
        );
        assert!(
            stderr(&o).contains("things: 2 invalid records skipped"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(
        sqlite_count(&tmp.path().join("out/h.db"), "things"),
        2,
        "rows 1 and 4, once"
    );
    let o = run_ok(tmp.path(), &["sync", "hostile", "--dest", "jsonl:out"], &[]);
    assert!(
        stderr(&o).contains("things: 2 invalid records skipped"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        lines(&tmp.path().join("out/things.jsonl")),
        2,
        "rows 1 and 4"
    );

    // Values that are not objects cannot be rows; JSON Lines takes them as they are.
    let spec = hostile_spec(&server.url(), "/hostile/not_objects", "");
    write_spec(tmp.path(), "hostile", &spec);
    let o = run(
        tmp.path(),
        &["sync", "hostile", "--dest", "sqlite:out/n.db"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    insta::assert_snapshot!("not_objects", stable(&error_lines(&o), tmp.path()));
    run_ok(tmp.path(), &["sync", "hostile", "--dest", "jsonl:out"], &[]);
    assert_eq!(lines(&tmp.path().join("out/things.jsonl")), 4);
}

// 8. Saved state is checked before anything is written.

#[test]
fn bad_saved_state_is_an_error_and_nothing_is_written() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = gen_items_spec(&server.url(), 10);
    write_spec(tmp.path(), "gen", &spec);
    let out = tmp.path().join("out");
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert!(o.status.success());
    let before = std::fs::read(out.join("items.jsonl")).unwrap();
    let cases = [
        ("negative_offset", r#"{"offset": -5}"#, r#"{"bytes": 100}"#),
        ("text_offset", r#"{"offset": "ten"}"#, r#"{"bytes": 100}"#),
        (
            "bytes_past_the_end",
            r#"{"offset": 10}"#,
            r#"{"bytes": 1000000000}"#,
        ),
        ("negative_bytes", r#"{"offset": 10}"#, r#"{"bytes": -1}"#),
    ];
    for (name, position, destination) in cases {
        let state = format!(
            r#"{{"version": 1, "streams": {{"items": {{"in_progress": true,
                "partitions": {{"": {{"position": {position}, "pages": 1, "records": 10}}}},
                "destination": {destination}}}}}}}"#
        );
        std::fs::write(out.join("_state.json"), &state).unwrap();
        server.clear_requests();
        let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        insta::assert_snapshot!(
            format!("bad_state_{name}"),
            stable(&error_lines(&o), tmp.path())
        );
        assert!(server.requests().is_empty(), "{name}: no request");
        assert_eq!(
            std::fs::read(out.join("items.jsonl")).unwrap(),
            before,
            "{name}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("_state.json")).unwrap(),
            state,
            "{name}"
        );
    }
    std::fs::write(out.join("_state.json"), "{\"version\": 1, \"streams\": 7}").unwrap();
    let o = run(tmp.path(), &["sync", "gen", "--dest", "jsonl:out"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("connector-run state reset"),
        "{}",
        stderr(&o)
    );
}

// 9. Secrets in headers go only to the API's origin.

#[test]
fn secret_headers_never_reach_another_origin() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: dd
config:
  api_key: {{ secret: true, required: true }}
  app_key: {{ secret: true, required: true }}
base_url: "{}"
headers:
  DD-API-KEY: "{{{{ config.api_key }}}}"
streams:
  by_body:
    path: /hostile/next_other_origin
    headers: {{ DD-APPLICATION-KEY: "{{{{ config.app_key }}}}", X-Trace: plain }}
    records: {{ path: $.data }}
    pagination: {{ type: next_url, next_url_path: $.next }}
  by_link:
    path: /hostile/next_other_origin
    headers: {{ DD-APPLICATION-KEY: "{{{{ config.app_key }}}}" }}
    records: {{ path: $.data }}
    pagination: {{ type: link_header }}
"#,
        server.url()
    );
    write_spec(tmp.path(), "dd", &spec);
    run_ok(
        tmp.path(),
        &["sync", "dd", "--dest", "jsonl:out"],
        &[
            ("CONNECTOR_DD_API_KEY", "dd-api-123456"),
            ("CONNECTOR_DD_APP_KEY", "dd-app-654321"),
        ],
    );
    for stream in ["by_body", "by_link"] {
        assert_eq!(
            read_jsonl(&tmp.path().join("out"), stream).len(),
            15,
            "{stream}"
        );
    }
    let reqs = server.requests();
    let main: Vec<_> = reqs.iter().filter(|r| r.origin == Origin::Main).collect();
    let other: Vec<_> = reqs.iter().filter(|r| r.origin == Origin::Other).collect();
    assert!(!main.is_empty() && !other.is_empty());
    for r in &main {
        assert_eq!(r.header("dd-api-key"), Some("dd-api-123456"), "{}", r.uri);
        assert_eq!(
            r.header("dd-application-key"),
            Some("dd-app-654321"),
            "{}",
            r.uri
        );
    }
    for r in &other {
        let all = format!("{:?} {}", r.headers, r.uri);
        assert!(
            !all.contains("dd-api-123456") && !all.contains("dd-app-654321"),
            "a secret reached the other origin: {all}"
        );
        assert_eq!(r.header("dd-api-key"), None);
    }
    // A plain header still goes everywhere.
    assert!(other.iter().any(|r| r.header("x-trace") == Some("plain")));
}

// 10. A token the server puts into a next URL is never saved.

fn echo_spec(base: &str, auth: &str) -> String {
    format!(
        r#"
version: 1
name: echo
config:
  token: {{ secret: true }}
  client_secret: {{ secret: true }}
base_url: "{base}"
auth: {auth}
streams:
  pages:
    path: /hostile/echo_token
    params: {{ page: "1", delay_ms: "300" }}
    records: {{ path: $.data }}
    pagination: {{ type: next_url, next_url_path: $.next }}
"#
    )
}

#[test]
fn tokens_in_next_urls_are_never_saved_and_resume_still_works() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let token = "tok/en+with=odd&chars";
    let oauth = format!(
        "{{ type: oauth2, grant_type: client_credentials, token_url: \"{}/oauth/token\", client_id: {}, client_secret: \"{{{{ config.client_secret }}}}\" }}",
        server.url(),
        mock_api::CLIENT_ID
    );
    for (name, auth) in [
        (
            "bearer",
            "{ type: bearer, token: \"{{ config.token }}\" }".to_string(),
        ),
        ("oauth2", oauth),
    ] {
        write_spec(tmp.path(), "echo", &echo_spec(&server.url(), &auth));
        let env = [
            ("CONNECTOR_ECHO_TOKEN", token),
            ("CONNECTOR_ECHO_CLIENT_SECRET", mock_api::CLIENT_SECRET),
        ];
        let out = tmp.path().join(name);
        let dest = format!("jsonl:{}", out.display());
        // Kill after the first checkpoint, so a next URL is in the state.
        let log = tmp.path().join(format!("{name}.log"));
        let mut child = bin()
            .current_dir(tmp.path())
            .args(["sync", "echo", "--dest", &dest, "--quiet"])
            .envs(env)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let state_path = out.join("_state.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        let saved = loop {
            assert!(Instant::now() < deadline, "{name}: no checkpoint");
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{name}: the sync ended ({status}) before a checkpoint was seen: {}; state {:?}",
                    std::fs::read_to_string(&log).unwrap_or_default(),
                    std::fs::read_to_string(&state_path)
                );
            }
            if let Ok(text) = std::fs::read_to_string(&state_path)
                && text.contains("next_url")
            {
                child.kill().unwrap();
                child.wait().unwrap();
                break std::fs::read_to_string(&state_path).unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let issued: Vec<String> = server
            .requests()
            .iter()
            .filter_map(|r| {
                r.header("authorization")
                    .map(|a| a.trim_start_matches("Bearer ").to_string())
            })
            .collect();
        assert!(!issued.is_empty());
        for secret in issued.iter().map(String::as_str).chain([token]) {
            let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            assert!(
                !saved.contains(secret) && !saved.contains(&encoded),
                "{name}: the state holds a secret: {saved}"
            );
        }
        assert!(
            saved.contains("~secret"),
            "{name}: the secret is sealed: {saved}"
        );
        let shown = run(
            tmp.path(),
            &["state", "show", "echo", "--dest", &dest],
            &env,
        );
        assert!(!stdout(&shown).contains(token), "{}", stdout(&shown));
        // The resumed run puts the current credential back and finishes.
        let o = run(tmp.path(), &["sync", "echo", "--dest", &dest], &env);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(
            ids(&read_jsonl(&out, "pages")),
            (1..=15).collect::<Vec<u64>>(),
            "{name}"
        );
    }
    // The SQLite state table, Singer STATE messages and `state show` hold no
    // token either.
    write_spec(
        tmp.path(),
        "echo",
        &echo_spec(
            &server.url(),
            "{ type: bearer, token: \"{{ config.token }}\" }",
        ),
    );
    let db = tmp.path().join("db/echo.db");
    let db_dest = format!("sqlite:{}", db.display());
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["sync", "echo", "--dest", &db_dest, "--quiet"])
        .env("CONNECTOR_ECHO_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let saved = loop {
        assert!(Instant::now() < deadline, "sqlite: no checkpoint");
        let text: Option<String> = rusqlite::Connection::open(&db).ok().and_then(|c| {
            c.query_row("SELECT state FROM _connector_state", [], |r| r.get(0))
                .ok()
        });
        if let Some(t) = text.filter(|t| t.contains("next_url")) {
            child.kill().unwrap();
            child.wait().unwrap();
            break t;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    assert!(
        !saved.contains(token) && !saved.contains(&encoded),
        "{saved}"
    );
    run_ok(
        tmp.path(),
        &["sync", "echo", "--dest", &db_dest],
        &[("CONNECTOR_ECHO_TOKEN", token)],
    );

    write_spec(
        tmp.path(),
        "echo",
        &echo_spec(
            &server.url(),
            "{ type: bearer, token: \"{{ config.token }}\" }",
        ),
    );
    let env = [("CONNECTOR_ECHO_TOKEN", token)];
    let singer = run_ok(tmp.path(), &["sync", "echo", "--dest", "singer:-"], &env);
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    for line in stdout(&singer).lines().filter(|l| l.contains("\"STATE\"")) {
        assert!(!line.contains(token) && !line.contains(&encoded), "{line}");
    }
}

// 11. Encoded forms of secrets are masked.

#[test]
fn encoded_secrets_are_masked_in_errors() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let token = "s3cr3t/+ &=token";
    let spec = format!(
        r#"
version: 1
name: echo
config:
  token: {{ secret: true }}
base_url: "{}"
auth: {{ type: api_key, in: query, name: api_key, value: "{{{{ config.token }}}}" }}
streams:
  failing:
    path: /hostile/echo_error
"#,
        server.url()
    );
    write_spec(tmp.path(), "echo", &spec);
    let o = run(
        tmp.path(),
        &["sync", "echo", "--dest", "jsonl:out", "-vv"],
        &[("CONNECTOR_ECHO_TOKEN", token)],
    );
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", stderr(&o), stdout(&o));
    let pct: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let form: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    for form in [token.to_string(), pct.clone(), pct.to_lowercase(), form] {
        assert!(!all.contains(&form), "`{form}` leaked: {all}");
    }
    assert!(
        all.contains("got_token_percent"),
        "the body is shown: {all}"
    );
}

// 12. Bounded memory against gzip bombs and endless bodies.

fn peak_rss_kb(mut child: std::process::Child) -> (std::process::ExitStatus, u64) {
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            for l in text.lines() {
                if let Some(v) = l.strip_prefix("VmHWM:") {
                    peak = peak.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn gzip_bombs_and_endless_bodies_fail_in_bounded_memory() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    for (path, size) in [
        ("/hostile/gzip_bomb?gib=10", None),
        ("/hostile/endless", Some("16MiB")),
    ] {
        let mut spec = hostile_spec(&server.url(), path, "");
        if let Some(size) = size {
            spec = spec.replace("streams:", &format!("max_response_size: {size}\nstreams:"));
        }
        write_spec(tmp.path(), "hostile", &spec);
        let started = Instant::now();
        let child = bin()
            .current_dir(tmp.path())
            .args(["sync", "hostile", "--dest", "jsonl:out"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (status, peak_kb) = peak_rss_kb(child);
        assert_eq!(status.code(), Some(1), "{path}");
        assert!(peak_kb < 600 * 1024, "{path}: peak RSS {peak_kb} kB");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{path}: not retried for long"
        );
    }
    // The error says what happened, once (a body too large is not retried).
    let spec = hostile_spec(&server.url(), "/hostile/endless", "")
        .replace("streams:", "max_response_size: 4MiB\nstreams:");
    write_spec(tmp.path(), "hostile", &spec);
    server.clear_requests();
    let o = run(tmp.path(), &["sync", "hostile", "--dest", "jsonl:out"], &[]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("too_large", stable(&error_lines(&o), tmp.path()));
    assert_eq!(server.requests().len(), 1, "not retried");
}

// 13. A server that asks for an endless wait.

#[test]
fn absurd_waits_end_the_stream_with_the_header_named() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    for (name, path) in [
        ("retry_after_huge", "/hostile/retry_after?secs=999999999"),
        ("retry_after_hour", "/hostile/retry_after?secs=3600"),
        ("reset_far", "/hostile/reset_far?secs=86400"),
    ] {
        write_spec(
            tmp.path(),
            "hostile",
            &hostile_spec(&server.url(), path, ""),
        );
        let started = Instant::now();
        let o = run(tmp.path(), &["sync", "hostile", "--dest", "jsonl:out"], &[]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: no long sleep"
        );
        let text = mask_epochs(&stable(&error_lines(&o), tmp.path()));
        insta::assert_snapshot!(format!("wait_{name}"), text);
    }
    // Waits within `retry.max_wait` are honoured.
    let spec = hostile_spec(&server.url(), "/hostile/retry_after?secs=1", "").replace(
        "streams:",
        "retry: { max_wait: 2s, max_attempts: 2 }\nstreams:",
    );
    write_spec(tmp.path(), "hostile", &spec);
    server.clear_requests();
    let started = Instant::now();
    let o = run(tmp.path(), &["sync", "hostile", "--dest", "jsonl:out"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("gave up after 2 attempts"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    assert_eq!(server.requests().len(), 2);
}
