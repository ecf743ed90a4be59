//! Destinations end to end: the real binary against the mock on 127.0.0.1,
//! writing real SQLite files, CSV and Parquet files, and a real PostgreSQL
//! (`CONNECTOR_RUN_TEST_POSTGRES`, started by `.ci/run`).

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const STREAMS: [&str; 6] = ["posts", "comments", "albums", "photos", "todos", "users"];

/// A spec over the mock's generated dataset. `items` can be pointed at another
/// path and filtered by id; `evolving` gains fields and changes their types
/// part-way through (pages of 10 records).
fn gen_spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: gen
config:
  base_url: {{ default: "{base}" }}
  path: {{ default: /gen/offset }}
  max_id: {{ type: integer, default: 100000 }}
base_url: "{{{{ config.base_url }}}}"
pagination: {{ type: offset, page_size: 10, stop: {{ total_path: $.total }} }}
retry: {{ max_attempts: 1 }}
streams:
  items:
    path: "{{{{ config.path }}}}"
    primary_key: id
    records:
      path: $.data
      filter: record.id <= config.max_id
  evolving:
    path: /gen/offset
    primary_key: id
    records:
      path: $.data
      add_fields:
        late: "{{{{ record.id * 10 if record.id > 15 else none }}}}"
        late_obj: "{{{{ {{'a': record.id, 'b': {{'c': 'x'}} }} if record.id > 25 else none }}}}"
        widen_real: "{{{{ record.id if record.id <= 10 else record.id / 4 }}}}"
        widen_text: "{{{{ record.id if record.id <= 20 else 'v' ~ record.id }}}}"
        flag: "{{{{ true if record.id <= 30 else 'maybe' }}}}"
"#
    )
}

/// `connector-run ARGS` in `cwd`, with the repository's connectors.
fn cr(cwd: &Path, args: &[&str]) -> std::process::Output {
    let dir = repo_root().join("connectors");
    let mut all = vec!["--connectors-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    run(cwd, &all, &[])
}

fn open_db(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap()
}

fn count(db: &Connection, table: &str) -> i64 {
    db.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .unwrap()
}

fn column_types(db: &Connection, table: &str) -> BTreeMap<String, String> {
    let mut st = db
        .prepare(&format!("PRAGMA table_info(\"{table}\")"))
        .unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn table_exists(db: &Connection, table: &str) -> bool {
    db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        > 0
}

fn saved_state(db: &Connection, connector: &str) -> Value {
    let text: String = db
        .query_row(
            "SELECT state FROM _connector_state WHERE connector = ?1",
            [connector],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Rows of a table as JSON objects keyed by column (JSON columns parsed back
/// per `_connector_streams`), without the metadata columns, by id.
fn rows(db: &Connection, table: &str) -> Vec<Value> {
    let kinds: BTreeMap<String, String> = {
        let cols: String = db
            .query_row(
                "SELECT columns FROM _connector_streams WHERE table_name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str::<Vec<Value>>(&cols)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let mut st = db
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY id"))
        .unwrap();
    let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
    st.query_map([], |r| {
        let mut obj = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            if n.starts_with('_') {
                continue;
            }
            let v: rusqlite::types::Value = r.get(i)?;
            let j = match v {
                rusqlite::types::Value::Null => continue,
                rusqlite::types::Value::Integer(x) if kinds[n] == "boolean" => json!(x != 0),
                rusqlite::types::Value::Integer(x) => json!(x),
                rusqlite::types::Value::Real(x) => json!(x),
                rusqlite::types::Value::Text(t) if kinds[n] == "json" => {
                    serde_json::from_str(&t).unwrap()
                }
                rusqlite::types::Value::Text(t) => json!(t),
                rusqlite::types::Value::Blob(_) => unreachable!(),
            };
            obj.insert(n.clone(), j);
        }
        Ok(Value::Object(obj))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn default_destination_is_sqlite_with_typed_tables_for_every_stream() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let out = cr(tmp.path(), &["sync", "jsonplaceholder", "--set", &set]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = tmp.path().join("data/jsonplaceholder.db");
    assert!(path.is_file(), "the default is ./data/<connector>.db");
    let summary = stderr(&out);
    assert!(
        summary.contains("sqlite:./data/jsonplaceholder.db"),
        "{summary}"
    );

    let db = open_db(&path);
    let fixture = jsonplaceholder_db();
    for stream in STREAMS {
        let want = fixture[stream].as_array().unwrap();
        assert_eq!(count(&db, stream), want.len() as i64, "{stream}: rows");
        assert_eq!(&rows(&db, stream), want, "{stream}: same records, typed");
    }
    assert_eq!(count(&db, "post_comments"), 500);

    let users = column_types(&db, "users");
    assert_eq!(users["id"], "INTEGER");
    assert_eq!(users["name"], "TEXT");
    assert_eq!(users["address"], "TEXT", "nested objects are JSON text");
    assert_eq!(users["_synced_at"], "TIMESTAMP");
    assert_eq!(users["_run_id"], "TEXT");
    assert_eq!(column_types(&db, "todos")["completed"], "BOOLEAN");
    assert_eq!(column_types(&db, "comments")["postId"], "INTEGER");
    let lat: String = db
        .query_row(
            "SELECT json_extract(address, '$.geo.lat') FROM users WHERE username = 'Bret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lat, "-37.3159");

    // Metadata: stream → table, primary key, column kinds; run id and time.
    let (table, pk, mode): (String, String, String) = db
        .query_row(
            "SELECT table_name, primary_key, write_mode FROM _connector_streams WHERE connector = 'jsonplaceholder' AND stream = 'post_comments'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (table.as_str(), pk.as_str(), mode.as_str()),
        ("post_comments", "[\"id\"]", "merge")
    );
    let (synced, run_ids): (String, i64) = db
        .query_row(
            "SELECT max(_synced_at), count(DISTINCT _run_id) FROM photos",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(run_ids, 1);
    assert!(
        synced.len() == 20 && synced.ends_with('Z') && synced.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {synced}"
    );
    let state = saved_state(&db, "jsonplaceholder");
    assert_eq!(state["version"], 1);
    assert!(state["streams"]["photos"].get("in_progress").is_none());
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn merge_reruns_do_not_duplicate() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let args = ["sync", "jsonplaceholder", "users", "todos", "--set", &set];
    assert!(cr(tmp.path(), &args).status.success());
    let db_path = tmp.path().join("data/jsonplaceholder.db");
    let first_run: String = open_db(&db_path)
        .query_row("SELECT _run_id FROM users LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let out = cr(tmp.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = open_db(&db_path);
    assert_eq!(count(&db, "users"), 10);
    assert_eq!(count(&db, "todos"), 200);
    let (n, run): (i64, String) = db
        .query_row(
            "SELECT count(DISTINCT _run_id), max(_run_id) FROM users",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, 1, "every row was upserted by the second run");
    assert_ne!(run, first_run);
    // Appending to a merged table would duplicate its keys: refused before
    // any request.
    server.clear_requests();
    let out = cr(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "--set",
            &set,
            "--write-mode",
            "append",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unique index"), "{}", stderr(&out));
    assert!(server.requests().is_empty());
    assert_eq!(count(&open_db(&db_path), "users"), 10);
    // `--write-mode append` into a table of its own adds the rows again.
    let dest = format!("sqlite:{}", tmp.path().join("append.db").display());
    for _ in 0..2 {
        let out = cr(
            tmp.path(),
            &[
                "sync",
                "jsonplaceholder",
                "users",
                "--set",
                &set,
                "--write-mode",
                "append",
                "--dest",
                &dest,
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(count(&open_db(&tmp.path().join("append.db")), "users"), 20);
}

#[test]
fn replace_swaps_the_table_only_when_the_stream_completes() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let db_path = tmp.path().join("gen.db");
    let dest = format!("sqlite:{}", db_path.display());
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "gen",
            "items",
            "--dest",
            &dest,
            "--write-mode",
            "replace",
        ];
        args.extend_from_slice(extra);
        run(tmp.path(), &args, &[])
    };
    let out = sync(&["--set", "max_id=50"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count(&open_db(&db_path), "items"), 50);

    let out = sync(&["--set", "max_id=20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = open_db(&db_path);
    assert_eq!(count(&db, "items"), 20, "the old rows are gone");
    assert!(!table_exists(&db, "_tmp_items"), "no staging table is left");
    drop(db);

    // A replace that fails part-way leaves the table as it was; the next
    // run resumes the staging table and swaps it in when it completes.
    let out = sync(&["--set", "path=/bad/after/3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let db = open_db(&db_path);
    assert_eq!(count(&db, "items"), 20, "readers still see the old table");
    assert_eq!(count(&db, "_tmp_items"), 30, "three pages staged");
    let state = saved_state(&db, "gen");
    assert_eq!(state["streams"]["items"]["in_progress"], true);
    assert_eq!(
        state["streams"]["items"]["destination"]["table"],
        "_tmp_items"
    );
    drop(db);
    let out = sync(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = open_db(&db_path);
    assert_eq!(count(&db, "items"), 250);
    let distinct: i64 = db
        .query_row("SELECT count(DISTINCT id) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(distinct, 250);
    assert!(!table_exists(&db, "_tmp_items"));
}

#[test]
fn new_fields_add_columns_and_conflicts_widen_without_losing_values() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let db_path = tmp.path().join("gen.db");
    let dest = format!("sqlite:{}", db_path.display());
    let out = run_ok(
        tmp.path(),
        &["sync", "gen", "evolving", "--dest", &dest, "-v"],
        &[],
    );
    assert!(stderr(&out).contains("widened"), "{}", stderr(&out));
    let db = open_db(&db_path);
    assert_eq!(count(&db, "evolving"), 250);
    let types = column_types(&db, "evolving");
    assert_eq!(types["id"], "INTEGER");
    assert_eq!(types["late"], "INTEGER", "added on page 2");
    assert_eq!(types["late_obj"], "TEXT", "an object: JSON text");
    assert_eq!(types["widen_real"], "REAL");
    assert_eq!(types["widen_text"], "TEXT");
    assert_eq!(types["flag"], "TEXT");
    let got = rows(&db, "evolving");
    for r in &got {
        let id = r["id"].as_i64().unwrap();
        let f = id as f64;
        assert_eq!(
            r["widen_real"],
            json!(if id <= 10 { f } else { f / 4.0 }),
            "{r}"
        );
        let text = if id <= 20 {
            id.to_string()
        } else {
            format!("v{id}")
        };
        assert_eq!(r["widen_text"], json!(text), "{r}");
        assert_eq!(
            r["flag"],
            json!(if id <= 30 { "true" } else { "maybe" }),
            "{r}"
        );
        assert_eq!(
            r.get("late"),
            (id > 15).then(|| json!(id * 10)).as_ref(),
            "{r}"
        );
        assert_eq!(
            r.get("late_obj"),
            (id > 25)
                .then(|| json!({"a": id, "b": {"c": "x"}}))
                .as_ref(),
            "{r}"
        );
    }
    drop(db);

    // A field a later run brings is added to the existing table.
    std::fs::write(
        tmp.path().join("connectors/gen.yaml"),
        gen_spec(&server.url()).replace(
            "flag:",
            "brand_new: \"{{ 'n' ~ record.id }}\"\n        flag:",
        ),
    )
    .unwrap();
    run_ok(
        tmp.path(),
        &["sync", "gen", "evolving", "--dest", &dest],
        &[],
    );
    let db = open_db(&db_path);
    assert_eq!(count(&db, "evolving"), 250);
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM evolving WHERE brand_new = 'n' || id AND late_obj IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 225);
}

/// Records and state are committed in one transaction: after a SIGKILL the
/// saved state describes exactly the rows in the table, and a rerun in
/// `append` mode (no deduplication) ends with every record exactly once.
#[test]
fn a_killed_sync_loses_nothing_and_duplicates_nothing() {
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(30),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let db_path = tmp.path().join("gen.db");
    let dest = format!("sqlite:{}", db_path.display());
    let args = [
        "sync",
        "gen",
        "items",
        "--dest",
        &dest,
        "--write-mode",
        "append",
    ];
    let mut child = bin()
        .current_dir(tmp.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        let pages = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()
            .and_then(|db| {
                db.query_row("SELECT state FROM _connector_state", [], |r| {
                    r.get::<_, String>(0)
                })
                .ok()
            })
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|s| s["streams"]["items"]["partitions"][""]["pages"].as_u64())
            .unwrap_or(0);
        if pages >= 5 {
            child.kill().unwrap(); // SIGKILL, mid-transaction
            child.wait().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let db = open_db(&db_path);
    let state = saved_state(&db, "gen");
    let items = &state["streams"]["items"];
    assert_eq!(items["in_progress"], true, "{state}");
    let saved = items["partitions"][""]["records"].as_i64().unwrap();
    assert!((50..250).contains(&saved), "killed mid-sync: {state}");
    assert_eq!(
        count(&db, "items"),
        saved,
        "the state and the rows were committed together"
    );
    drop(db);

    run_ok(tmp.path(), &args, &[]);
    let db = open_db(&db_path);
    let (n, distinct, min, max): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM items",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((n, distinct, min, max), (250, 250, 1, 250));
    let state = saved_state(&db, "gen");
    assert!(
        state["streams"]["items"].get("in_progress").is_none(),
        "{state}"
    );
    assert!(
        state["streams"]["items"].get("partitions").is_none(),
        "{state}"
    );
}

#[test]
fn bad_destinations_fail_before_any_request() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let cases: &[(&[&str], &str)] = &[
        (&["--dest", "sqlit:out.db"], "did you mean `sqlite:`?"),
        (&["--dest", "out.db"], "did you mean `sqlite:out.db`?"),
        (&["--dest", "parket:out"], "did you mean `parquet:`?"),
        (&["--dest", "csv:"], "`csv:` needs a folder"),
        (
            &["--dest", "csv:out", "--write-mode", "merge"],
            "--write-mode merge needs a database destination",
        ),
        (
            &["--dest", "sqlite:out.db", "--state", "s.json"],
            "keeps the state in its `_connector_state` table",
        ),
        (
            &["--dest", "postgres://me:hunter22@127.0.0.1:1/db"],
            "cannot connect to postgres://me:***@127.0.0.1:1/db",
        ),
    ];
    for (extra, want) in cases {
        if extra[1].starts_with("postgres") && !cfg!(feature = "postgres") {
            continue;
        }
        let mut args = vec!["sync", "jsonplaceholder", "users", "--set", &set];
        args.extend_from_slice(extra);
        let out = cr(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("hunter22"), "{err}");
    }
    assert!(server.requests().is_empty(), "no request was made");
    let out = cr(
        tmp.path(),
        &["sync", "jsonplaceholder", "users", "--write-mode", "upsert"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("append"), "{}", stderr(&out));
}

#[cfg(not(feature = "parquet"))]
#[test]
fn a_lean_build_names_the_missing_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cr(
        tmp.path(),
        &["sync", "jsonplaceholder", "--dest", "parquet:out"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("built without the `parquet` feature"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn csv_flattens_nested_objects_into_dotted_columns() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let dir = tmp.path().join("csv");
    let dest = format!("csv:{}", dir.display());
    let out = cr(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "posts",
            "--set",
            &set,
            "--dest",
            &dest,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut rdr = csv::Reader::from_path(dir.join("users.csv")).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "id",
            "name",
            "username",
            "email",
            "address.street",
            "address.suite",
            "address.city",
            "address.zipcode",
            "address.geo.lat",
            "address.geo.lng",
            "phone",
            "website",
            "company.name",
            "company.catchPhrase",
            "company.bs"
        ]
    );
    let users: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(users.len(), 10);
    assert_eq!(&users[0][8], "-37.3159");
    assert_eq!(&users[0][12], "Romaguera-Crona");
    let posts: Vec<csv::StringRecord> = csv::Reader::from_path(dir.join("posts.csv"))
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(posts.len(), 100);
    assert!(
        posts[0][3].contains('\n'),
        "line breaks inside quoted fields"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[test]
fn csv_header_grows_with_fields_that_appear_late() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let dir = tmp.path().join("csv");
    let dest = format!("csv:{}", dir.display());
    run_ok(
        tmp.path(),
        &["sync", "gen", "evolving", "--dest", &dest],
        &[],
    );
    // The strict reader fails on a row with another number of fields.
    let mut rdr = csv::Reader::from_path(dir.join("evolving.csv")).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "id",
        "nested.x",
        "tags",
        "late",
        "late_obj.a",
        "late_obj.b.c",
    ] {
        assert!(header.contains(&col.to_string()), "{col} in {header:?}");
    }
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let recs: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 250);
    assert_eq!(&recs[0][at("tags")], r#"["a","b"]"#, "arrays are JSON text");
    assert_eq!(&recs[0][at("late_obj.b.c")], "", "padded");
    assert_eq!(&recs[29][at("late_obj.b.c")], "x");
    assert_eq!(&recs[29][at("late")], "300");
    assert_eq!(&recs[29][at("widen_real")], "7.5");
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_files_read_back_typed() {
    use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let dir = tmp.path().join("pq");
    let dest = format!("parquet:{}", dir.display());
    let out = cr(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "todos",
            "--set",
            &set,
            "--dest",
            &dest,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let read = |name: &str| {
        let f = std::fs::File::open(dir.join(name)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        reader.map(Result::unwrap).collect::<Vec<_>>()
    };
    let users = read("users.parquet");
    let schema = users[0].schema();
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &arrow_schema::DataType::Int64
    );
    let address = schema.field_with_name("address").unwrap();
    assert_eq!(address.metadata()["connector_run.kind"], "json");
    assert_eq!(users.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
    let b = &users[0];
    let col = |n: &str| b.column(schema.index_of(n).unwrap()).clone();
    let ids = col("id");
    let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.values().to_vec(), (1..=10).collect::<Vec<i64>>());
    let addr = col("address");
    let addr = addr.as_any().downcast_ref::<StringArray>().unwrap();
    let a0: Value = serde_json::from_str(addr.value(0)).unwrap();
    assert_eq!(a0, jsonplaceholder_db()["users"][0]["address"]);

    let todos = read("todos.parquet");
    let completed = todos[0]
        .column(todos[0].schema().index_of("completed").unwrap())
        .clone();
    let completed = completed.as_any().downcast_ref::<BooleanArray>().unwrap();
    assert_eq!(completed.len(), 200);
    assert!(!completed.value(0) && completed.value(3));

    // Row groups, and widening over the whole stream.
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    run_ok(
        tmp.path(),
        &["sync", "gen", "evolving", "--dest", &dest],
        &[],
    );
    let f = std::fs::File::open(dir.join("evolving.parquet")).unwrap();
    let meta = SerializedFileReader::new(f).unwrap();
    assert_eq!(meta.metadata().file_metadata().num_rows(), 250);
    assert!(
        meta.metadata()
            .file_metadata()
            .created_by()
            .unwrap()
            .starts_with("connector-run")
    );
    let ev = read("evolving.parquet");
    let s = ev[0].schema();
    let wr = ev[0].column(s.index_of("widen_real").unwrap()).clone();
    let wr = wr.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((wr.value(0), wr.value(29)), (1.0, 7.5));
    let wt = ev[0].column(s.index_of("widen_text").unwrap()).clone();
    let wt = wt.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!((wt.value(0), wt.value(29)), ("1", "v30"));
    assert!(!dir.join(".evolving.parquet.spill").exists());
}

// ---------------------------------------------------------------- Postgres

/// The test database, or `None` (with a note) when none is configured
/// locally. CI must configure one.
#[cfg(feature = "postgres")]
fn postgres() -> Option<String> {
    match std::env::var("CONNECTOR_RUN_TEST_POSTGRES") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set CONNECTOR_RUN_TEST_POSTGRES (.ci/run starts PostgreSQL)"
            );
            eprintln!(
                "skipped: CONNECTOR_RUN_TEST_POSTGRES is not set (bash .ci/run starts a throwaway PostgreSQL)"
            );
            None
        }
    }
}

#[cfg(feature = "postgres")]
struct Pg {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    schema: String,
}

#[cfg(feature = "postgres")]
impl Pg {
    fn connect(uri: &str) -> Pg {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
        });
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        Pg { rt, client, schema }
    }

    fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        self.rt.block_on(self.client.query(sql, &[])).unwrap()
    }

    fn count(&self, table: &str) -> i64 {
        self.query(&format!(
            "SELECT count(*) FROM \"{}\".\"{table}\"",
            self.schema
        ))[0]
            .get(0)
    }

    fn types(&self, table: &str) -> BTreeMap<String, String> {
        self.query(&format!(
            "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = '{}' AND table_name = '{table}'",
            self.schema
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }
}

#[cfg(feature = "postgres")]
impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            self.schema
        )));
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_gets_the_same_tables_as_sqlite() {
    let Some(uri) = postgres() else { return };
    let pg = Pg::connect(&uri);
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let set = format!("base_url={}", server.url());
    let dest = format!("{uri}?schema={}", pg.schema);
    let out = cr(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "--set",
            &set,
            "--dest",
            &dest,
            "-vv",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let password = uri.split(':').nth(2).unwrap().split('@').next().unwrap();
    assert!(password.len() >= 3);
    assert!(
        !stderr(&out).contains(password) && !stdout(&out).contains(password),
        "the password never appears"
    );
    assert!(stderr(&out).contains(":***@127.0.0.1"), "{}", stderr(&out));
    let fixture = jsonplaceholder_db();
    for stream in STREAMS {
        assert_eq!(
            pg.count(stream),
            fixture[stream].as_array().unwrap().len() as i64,
            "{stream}"
        );
    }
    assert_eq!(pg.count("post_comments"), 500);
    let users = pg.types("users");
    assert_eq!(users["id"], "bigint");
    assert_eq!(users["address"], "jsonb");
    assert_eq!(users["_synced_at"], "timestamp with time zone");
    assert_eq!(pg.types("todos")["completed"], "boolean");
    let lat: String = pg.query(&format!(
        "SELECT address->'geo'->>'lat' FROM \"{}\".users WHERE username = 'Bret'",
        pg.schema
    ))[0]
        .get(0);
    assert_eq!(lat, "-37.3159");
    // Same records as the fixture, typed.
    let posts = pg.query(&format!(
        "SELECT to_jsonb(p) - '_synced_at' - '_run_id' FROM \"{}\".posts p ORDER BY id",
        pg.schema
    ));
    let got: Vec<Value> = posts.iter().map(|r| r.get::<_, Value>(0)).collect();
    assert_eq!(&got, fixture["posts"].as_array().unwrap());

    // Merge: a rerun does not duplicate.
    let out = cr(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "--set",
            &set,
            "--dest",
            &dest,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.count("users"), 10);
    let state: Value = pg.query(&format!(
        "SELECT state FROM \"{}\"._connector_state WHERE connector = 'jsonplaceholder'",
        pg.schema
    ))[0]
        .get(0);
    assert_eq!(state["version"], 1);
    let tables: Vec<String> = pg
        .query(&format!(
            "SELECT table_name FROM \"{}\"._connector_streams ORDER BY stream",
            pg.schema
        ))
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables.len(), 7);
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_widening_replace_and_state_with_the_rows() {
    let Some(uri) = postgres() else { return };
    let pg = Pg::connect(&uri);
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let dest = format!("{uri}?schema={}", pg.schema);
    let sync = |extra: &[&str]| {
        let mut args = vec!["sync", "gen", "--dest", &dest];
        args.extend_from_slice(extra);
        run(tmp.path(), &args, &[])
    };
    let out = sync(&["evolving"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.count("evolving"), 250);
    let types = pg.types("evolving");
    assert_eq!(types["late"], "bigint");
    assert_eq!(types["late_obj"], "jsonb");
    assert_eq!(types["widen_real"], "double precision");
    assert_eq!(types["widen_text"], "text");
    assert_eq!(types["flag"], "text");
    let r = pg.query(&format!(
        "SELECT widen_real, widen_text, flag, late_obj FROM \"{}\".evolving WHERE id IN (1, 30) ORDER BY id",
        pg.schema
    ));
    assert_eq!(r[0].get::<_, f64>(0), 1.0);
    assert_eq!(r[0].get::<_, String>(1), "1");
    assert_eq!(r[0].get::<_, String>(2), "true");
    assert_eq!(r[1].get::<_, f64>(0), 7.5);
    assert_eq!(r[1].get::<_, String>(1), "v30");
    assert_eq!(r[1].get::<_, Value>(3), json!({"a": 30, "b": {"c": "x"}}));

    // Replace: a failed run keeps the old table; the resumed run swaps.
    let out = sync(&["items", "--write-mode", "replace", "--set", "max_id=20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.count("items"), 20);
    let out = sync(&[
        "items",
        "--write-mode",
        "replace",
        "--set",
        "path=/bad/after/3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pg.count("items"), 20);
    assert_eq!(pg.count("_tmp_items"), 30);
    let state: Value = pg.query(&format!(
        "SELECT state FROM \"{}\"._connector_state WHERE connector = 'gen'",
        pg.schema
    ))[0]
        .get(0);
    assert_eq!(
        state["streams"]["items"]["partitions"][""]["records"], 30,
        "state committed with the rows: {state}"
    );
    let out = sync(&["items", "--write-mode", "replace"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.count("items"), 250);
    let left = pg.query(&format!(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = '_tmp_items'",
        pg.schema
    ));
    assert_eq!(left[0].get::<_, i64>(0), 0);
}

/// CSV and Parquet checkpoint their body/spill with the state: a stream that
/// fails part-way keeps what it wrote, and the next run resumes it without
/// writing any record twice.
#[test]
fn file_destinations_resume_a_failed_stream_exactly() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let mut dests = vec![("csv", tmp.path().join("csv"))];
    if cfg!(feature = "parquet") {
        dests.push(("parquet", tmp.path().join("pq")));
    }
    for (scheme, dir) in dests {
        let dest = format!("{scheme}:{}", dir.display());
        let out = run(
            tmp.path(),
            &[
                "sync",
                "gen",
                "items",
                "--dest",
                &dest,
                "--set",
                "path=/bad/after/3",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{scheme}: {}", stderr(&out));
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("_state.json")).unwrap())
                .unwrap();
        assert_eq!(
            state["streams"]["items"]["partitions"][""]["records"], 30,
            "{state}"
        );
        let out = run(tmp.path(), &["sync", "gen", "items", "--dest", &dest], &[]);
        assert!(out.status.success(), "{scheme}: {}", stderr(&out));
        let ids: Vec<i64> = if scheme == "csv" {
            csv::Reader::from_path(dir.join("items.csv"))
                .unwrap()
                .records()
                .map(|r| r.unwrap()[0].parse().unwrap())
                .collect()
        } else {
            parquet_ids(&dir.join("items.parquet"))
        };
        assert_eq!(ids, (1..=250).collect::<Vec<i64>>(), "{scheme}");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{scheme}: {leftovers:?}");
    }
}

#[cfg(feature = "parquet")]
fn parquet_ids(path: &Path) -> Vec<i64> {
    use arrow_array::{Array, Int64Array};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut ids = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let col = b.column(b.schema().index_of("id").unwrap()).clone();
        let col = col.as_any().downcast_ref::<Int64Array>().unwrap();
        ids.extend((0..col.len()).map(|i| col.value(i)));
    }
    ids
}

#[cfg(not(feature = "parquet"))]
fn parquet_ids(_: &Path) -> Vec<i64> {
    unreachable!()
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_holds_one_run_per_schema_and_connector() {
    let Some(uri) = postgres() else { return };
    let pg = Pg::connect(&uri);
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(40),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let dest = format!("{uri}?schema={}", pg.schema);
    let mut first = bin()
        .current_dir(tmp.path())
        .args(["sync", "gen", "items", "--dest", &dest, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first run holds its advisory lock once it has connected.
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = format!(
        "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'connector-run/{}'",
        first.id()
    );
    while pg.query(&held).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(tmp.path(), &["sync", "gen", "items", "--dest", &dest], &[]);
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "is being synced by another run (pid {})",
            first.id()
        )),
        "{err}"
    );
    assert!(!err.contains(&uri), "the password stays masked: {err}");
    assert!(first.wait().unwrap().success());
    assert_eq!(pg.count("items"), 250);
}

/// Values that `COPY`'s text format must escape (tab, newline, carriage
/// return, backslash, a literal `\N`), in text and JSON columns, arrive
/// exactly; a merge page with the same key many times keeps the last record.
#[cfg(feature = "postgres")]
#[test]
fn postgres_copy_keeps_every_byte_and_the_last_record_per_key() {
    let Some(uri) = postgres() else { return };
    let pg = Pg::connect(&uri);
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: tricky
base_url: "{}"
pagination: {{ type: offset, page_size: 50, stop: {{ total_path: $.total }} }}
records:
  path: $.data
  add_fields:
    key: "{{{{ record.id % 7 }}}}"
    text: '{{{{ "a\tb\nc\rd \\N e\\\\f é ☃ " ~ record.id }}}}'
    doc: '{{{{ {{"t": "x\ty\\N", "n": record.id}} }}}}'
streams:
  merged:
    path: /gen/offset
    primary_key: key
  appended:
    path: /gen/offset
"#,
        server.url()
    );
    write_spec(tmp.path(), "tricky", &spec);
    let dest = format!("{uri}?schema={}", pg.schema);
    let out = run(
        tmp.path(),
        &["sync", "tricky", "--dest", &dest, "--write-mode", "merge"],
        &[],
    );
    // `appended` has no key: merge is refused for it, so sync it apart.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    run_ok(
        tmp.path(),
        &["sync", "tricky", "merged", "--dest", &dest],
        &[],
    );
    run_ok(
        tmp.path(),
        &[
            "sync",
            "tricky",
            "appended",
            "--dest",
            &dest,
            "--write-mode",
            "append",
        ],
        &[],
    );
    let text = |id: i64| format!("a\tb\nc\rd \\N e\\\\f é ☃ {id}");
    assert_eq!(pg.count("appended"), 250);
    assert_eq!(pg.count("merged"), 7);
    let rows = pg.query(&format!(
        "SELECT key, id, text, doc FROM \"{}\".merged ORDER BY key",
        pg.schema
    ));
    for r in &rows {
        let (key, id): (i64, i64) = (r.get(0), r.get(1));
        // The last record with this key: the largest id ≤ 250.
        assert_eq!(id, 250 - (250 - key).rem_euclid(7), "key {key}");
        assert_eq!(r.get::<_, String>(2), text(id));
        assert_eq!(r.get::<_, Value>(3), json!({"t": "x\ty\\N", "n": id}));
    }
    let all = pg.query(&format!(
        "SELECT to_jsonb(a) - '_synced_at' - '_run_id' FROM \"{}\".appended a ORDER BY id",
        pg.schema
    ));
    let first: Value = all[0].get(0);
    assert_eq!(first["text"], text(1));
    assert_eq!(first["tags"], json!(["a", "b"]));
    assert_eq!(first["nested"], json!({"x": 1}));
    // A rerun merges onto the same seven rows.
    run_ok(
        tmp.path(),
        &["sync", "tricky", "merged", "--dest", &dest],
        &[],
    );
    assert_eq!(pg.count("merged"), 7);
}

/// Batches are written on the destination's thread while the sync reads
/// on: a batch the server refuses (a trigger, here) fails its stream only,
/// its saved position stops before the refused page, and the next run
/// resumes there: no record lost, none twice.
#[cfg(feature = "postgres")]
#[test]
fn postgres_a_refused_batch_fails_its_stream_only_and_resumes_exactly() {
    let Some(uri) = postgres() else { return };
    let pg = Pg::connect(&uri);
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: twin
base_url: "{}"
pagination: {{ type: offset, page_size: 10, stop: {{ total_path: $.total }} }}
records:
  path: $.data
streams:
  refused:
    path: /gen/offset
  fine:
    path: /gen/offset
"#,
        server.url()
    );
    write_spec(tmp.path(), "twin", &spec);
    let dest = format!("{uri}?schema={}", pg.schema);
    let sync = || {
        run(
            tmp.path(),
            &[
                "sync",
                "twin",
                "--dest",
                &dest,
                "--write-mode",
                "append",
                "--concurrency",
                "1",
            ],
            &[],
        )
    };
    // A trigger on `refused` that refuses the record with this id.
    let refuse = |id: u64| {
        pg.query(&format!(
            r#"CREATE OR REPLACE FUNCTION "{s}".refuse() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN IF NEW.id = {id} THEN RAISE EXCEPTION 'id {id} is refused'; END IF; RETURN NEW; END $$"#,
            s = pg.schema
        ));
        pg.query(&format!(
            r#"CREATE TRIGGER refuse BEFORE INSERT ON "{s}".refused FOR EACH ROW EXECUTE FUNCTION "{s}".refuse()"#,
            s = pg.schema
        ));
    };
    // A first run creates the tables; the trigger then refuses id 120.
    let out = sync();
    assert!(out.status.success(), "{}", stderr(&out));
    refuse(120);
    let out = sync();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("id 120 is refused"), "{err}");
    // The error names the refused page (ids 111 to 120), not the one
    // being written when the refusal came back.
    assert!(
        err.contains("stream `refused`, page 12, http://127.0.0.1:")
            && err.contains("/gen/offset?offset=110&limit=10: writing to postgres://")
            && !err.contains("destination: destination:"),
        "{err}"
    );
    // The other stream completed; the refused one kept pages 1 to 11 (many
    // small pages, so the sync runs ahead of the destination's thread and
    // commits are coalesced around the refused batch).
    assert_eq!(pg.count("fine"), 500);
    assert_eq!(pg.count("refused"), 360);
    let state: Value = pg.query(&format!(
        "SELECT state FROM \"{}\"._connector_state WHERE connector = 'twin'",
        pg.schema
    ))[0]
        .get(0);
    let saved = &state["streams"]["refused"];
    assert_eq!(saved["in_progress"], true, "{state}");
    assert_eq!(saved["partitions"][""]["pages"], 11, "{state}");
    assert_eq!(saved["partitions"][""]["records"], 110, "{state}");
    assert_ne!(state["streams"]["fine"]["in_progress"], true, "{state}");
    // Without the trigger the next run resumes at page 12 and completes.
    pg.query(&format!(
        r#"DROP TRIGGER refuse ON "{}".refused"#,
        pg.schema
    ));
    let out = sync();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.count("refused"), 500);
    let dupes = pg.query(&format!(
        r#"SELECT count(*) FROM (SELECT id FROM "{}".refused GROUP BY id HAVING count(*) <> 2) d"#,
        pg.schema
    ));
    assert_eq!(
        dupes[0].get::<_, i64>(0),
        0,
        "every id exactly twice (two runs)"
    );
    // A refusal of the last page comes back when the stream closes: the
    // error still names that page.
    refuse(250);
    let out = sync();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: stream `refused`, page 25, http://127.0.0.1:")
            && err.contains("/gen/offset?offset=240&limit=10: writing to postgres://")
            && err.contains("id 250 is refused"),
        "{err}"
    );
    assert_eq!(pg.count("refused"), 500 + 240);
}

/// `CONNECTOR_RUN_TEST_POSTGRES_TLS` (a role that may connect only over
/// TLS) and `CONNECTOR_RUN_TEST_POSTGRES_TLS_DIR` (`ca.crt`, which signed
/// the server's certificate for 127.0.0.1 and pg.connector-run.test, and
/// `other-ca.crt`), as `.ci/run` sets them up.
#[cfg(feature = "postgres")]
fn postgres_tls() -> Option<(String, std::path::PathBuf)> {
    let uri = std::env::var("CONNECTOR_RUN_TEST_POSTGRES_TLS").ok();
    let dir = std::env::var_os("CONNECTOR_RUN_TEST_POSTGRES_TLS_DIR");
    match (uri, dir) {
        (Some(uri), Some(dir)) if !uri.is_empty() => Some((uri, dir.into())),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set CONNECTOR_RUN_TEST_POSTGRES_TLS and _TLS_DIR (.ci/run)"
            );
            eprintln!("skipped: CONNECTOR_RUN_TEST_POSTGRES_TLS is not set (bash .ci/run)");
            None
        }
    }
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_over_tls_require_and_verify_full() {
    let (Some(admin), Some((tls, certs))) = (postgres(), postgres_tls()) else {
        return;
    };
    let pg = Pg::connect(&admin);
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &gen_spec(&server.url()));
    let ca = certs.join("ca.crt");
    let other = certs.join("other-ca.crt");
    let password = tls.split(':').nth(2).unwrap().split('@').next().unwrap();
    // No ~/.postgresql/root.crt to fall back on.
    let home = tmp.path().to_str().unwrap();
    let sync = |dest: &str| {
        let out = run(
            tmp.path(),
            &["sync", "gen", "items", "--dest", dest, "--full-refresh"],
            &[("HOME", home)],
        );
        let err = stderr(&out);
        assert!(!err.contains(password), "the password never shows: {err}");
        (out.status.code(), err)
    };
    let with = |q: &str| format!("{tls}?schema={}&{q}", pg.schema);

    // The role is refused without TLS: the runs below really use it.
    let (code, err) = sync(&with("sslmode=disable"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no encryption"), "{err}");

    for ok in [
        with("sslmode=require"),
        format!("{tls}?schema={}", pg.schema), // prefer, the default
        with(&format!("sslmode=verify-full&sslrootcert={}", ca.display())),
        with(&format!("sslmode=verify-ca&sslrootcert={}", ca.display())),
        with(&format!("sslmode=require&sslrootcert={}", ca.display())),
    ] {
        let (code, err) = sync(&ok);
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
    assert_eq!(pg.count("items"), 250);

    // A certificate from another CA.
    let (code, err) = sync(&with(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other.display()
    )));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the server's certificate is not signed by a CA in sslrootcert"),
        "{err}"
    );
    // The system's roots do not hold the test CA either.
    let (code, err) = sync(&with("sslmode=verify-full&sslrootcert=system"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("not signed by a CA in sslrootcert (the system's roots)")
            || err.contains("sslrootcert=system: no CA certificates found"),
        "{err}"
    );
    // verify-ca also checks the chain; require with a root behaves like it.
    for mode in ["verify-ca", "require"] {
        let (code, err) = sync(&with(&format!(
            "sslmode={mode}&sslrootcert={}",
            other.display()
        )));
        assert_eq!(code, Some(2), "{mode}: {err}");
    }
    // The right CA, but the certificate names another host.
    let wrong_host = tls.replacen("@127.0.0.1:", "@wrong.connector-run.test:", 1);
    let named = |mode: &str| {
        format!(
            "{wrong_host}?schema={}&hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            pg.schema,
            ca.display()
        )
    };
    let (code, err) = sync(&named("verify-full"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("the server's certificate is not valid for wrong.connector-run.test, only for 127.0.0.1, pg.connector-run.test"),
        "{err}"
    );
    let (code, err) = sync(&named("verify-ca"));
    assert_eq!(code, Some(0), "verify-ca does not compare names: {err}");
    // Verifying needs a root.
    let (code, err) = sync(&with("sslmode=verify-full"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("sslmode=verify-full needs the CA"), "{err}");
    let (code, err) = sync(&with("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot read sslrootcert /nonexistent/ca.pem"),
        "{err}"
    );
}

/// A declared schema's `format: date-time` and `format: date` become
/// timestamp and date columns: SQLite `TIMESTAMP`/`DATE` (RFC 3339 UTC
/// text), Parquet `Timestamp(µs, UTC)`/`Date32`, Postgres `timestamptz`/`date`;
/// nested values carry Parquet's JSON logical type, and Parquet files end
/// with `_synced_at` and `_run_id` as the tables do. A declared date-time
/// that a record breaks (`soon`) becomes text, keeping every value.
#[cfg(feature = "parquet")]
#[test]
fn declared_times_become_timestamp_and_date_columns() {
    use arrow_array::{Array, Date32Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "times",
        &format!(
            r#"
version: 1
name: times
base_url: "{}"
pagination: {{ type: offset, page_size: 100, stop: {{ total_path: $.total }} }}
streams:
  items:
    path: /gen/offset
    primary_key: id
    records:
      path: $.data
      add_fields:
        day: "{{{{ format_datetime(record.updated_at, '%Y-%m-%d') }}}}"
        shifted: "{{{{ record.updated_at | replace('Z', '+02:00') }}}}"
        breaks: "{{{{ record.updated_at if record.id < 200 else 'soon' }}}}"
"#,
            server.url()
        ),
    );
    let schemas = tmp.path().join("schemas/times");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(
        schemas.join("items.json"),
        json!({"type": "object", "properties": {
            "id": {"type": "integer"},
            "updated_at": {"type": "string", "format": "date-time"},
            "shifted": {"type": ["string", "null"], "format": "date-time"},
            "breaks": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "nested": {"type": "object"},
        }})
        .to_string(),
    )
    .unwrap();
    // 2024-01-01T00:01:00Z + 1 minute per id.
    let at = |id: i64| (1_704_067_200 + 60 * id) * 1_000_000;

    // SQLite.
    run_ok(tmp.path(), &["sync", "times", "--dest", "sqlite:t.db"], &[]);
    let db = open_db(&tmp.path().join("t.db"));
    let types = column_types(&db, "items");
    assert_eq!(types["updated_at"], "TIMESTAMP");
    assert_eq!(types["shifted"], "TIMESTAMP");
    assert_eq!(types["day"], "DATE");
    assert_eq!(types["breaks"], "TEXT");
    assert_eq!(types["_synced_at"], "TIMESTAMP");
    let (u, s, d, b): (String, String, String, String) = db
        .query_row(
            "SELECT updated_at, shifted, day, breaks FROM items WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (u.as_str(), s.as_str(), d.as_str(), b.as_str()),
        // Offsets become UTC, so the text sorts and compares as instants.
        (
            "2024-01-01T00:01:00Z",
            "2023-12-31T22:01:00Z",
            "2024-01-01",
            "2024-01-01T00:01:00Z"
        )
    );
    let unix: i64 = db
        .query_row(
            "SELECT unixepoch(shifted) FROM items WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unix * 1_000_000, at(1) - 7_200_000_000);
    let soon: String = db
        .query_row("SELECT breaks FROM items WHERE id = 250", [], |r| r.get(0))
        .unwrap();
    assert_eq!(soon, "soon");

    // Parquet, read by the parquet crate.
    run_ok(tmp.path(), &["sync", "times", "--dest", "parquet:pq"], &[]);
    let path = tmp.path().join("pq/items.parquet");
    let batches: Vec<_> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let schema = batches[0].schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert_eq!(ty("updated_at"), utc);
    assert_eq!(ty("shifted"), utc);
    assert_eq!(ty("day"), DataType::Date32);
    assert_eq!(ty("breaks"), DataType::Utf8);
    assert_eq!(ty("_synced_at"), utc);
    assert_eq!(ty("_run_id"), DataType::Utf8);
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[names.len() - 2..], ["_synced_at", "_run_id"]);
    assert_eq!(
        schema
            .field_with_name("nested")
            .unwrap()
            .extension_type_name(),
        Some("arrow.json")
    );
    let b0 = &batches[0];
    let col = |n: &str| b0.column(schema.index_of(n).unwrap()).clone();
    let ts = col("shifted");
    let ts = ts
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(ts.value(0), at(1) - 7_200_000_000);
    let days = col("day");
    let days = days.as_any().downcast_ref::<Date32Array>().unwrap();
    assert_eq!(days.value(0), 19_723); // 2024-01-01
    let run_ids = col("_run_id");
    let run_ids = run_ids.as_any().downcast_ref::<StringArray>().unwrap();
    let first_run = run_ids.value(0).to_string();
    assert!(!first_run.is_empty());

    // Appending keeps the earlier rows' `_synced_at` and `_run_id`.
    run_ok(
        tmp.path(),
        &[
            "sync",
            "times",
            "--dest",
            "parquet:pq",
            "--write-mode",
            "append",
        ],
        &[],
    );
    let batches: Vec<_> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut rows = 0;
    for b in &batches {
        let r = b.column(b.schema().index_of("_run_id").unwrap()).clone();
        let r = r.as_any().downcast_ref::<StringArray>().unwrap();
        let t = b.column(b.schema().index_of("_synced_at").unwrap()).clone();
        assert_eq!(t.null_count(), 0);
        rows += r.len();
        ids.extend(r.iter().map(|x| x.unwrap().to_string()));
    }
    assert_eq!(rows, 500);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&first_run));

    // The same file as DuckDB and pyarrow read it.
    if let Some(python) = duckdb_python() {
        let script = r#"
import sys, json, duckdb, pyarrow.parquet as pq
path = sys.argv[1]
described = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE FROM '{path}'").fetchall()}
shifted, day, nested = duckdb.sql(
    f"SELECT epoch_us(shifted), day::VARCHAR, nested->>'$.x' FROM '{path}' WHERE id = 1 LIMIT 1").fetchall()[0]
arrow = {f.name: str(f.type) for f in pq.read_schema(path)}
logical = {c.name: str(c.logical_type) for c in pq.ParquetFile(path).schema}
print(json.dumps({"duckdb": described, "arrow": arrow, "logical": logical,
                  "shifted": shifted, "day": day, "nested_x": nested}))
"#;
        let out = std::process::Command::new(&python)
            .args(["-c", script, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            got["duckdb"]["updated_at"], "TIMESTAMP WITH TIME ZONE",
            "{got}"
        );
        assert_eq!(got["duckdb"]["day"], "DATE");
        assert_eq!(got["duckdb"]["nested"], "JSON");
        assert_eq!(got["duckdb"]["breaks"], "VARCHAR");
        assert_eq!(got["duckdb"]["_synced_at"], "TIMESTAMP WITH TIME ZONE");
        assert_eq!(got["duckdb"]["_run_id"], "VARCHAR");
        assert_eq!(got["shifted"], at(1) - 7_200_000_000);
        assert_eq!(got["day"], "2024-01-01");
        assert_eq!(got["nested_x"], "1");
        assert_eq!(got["arrow"]["updated_at"], "timestamp[us, tz=UTC]");
        assert_eq!(got["arrow"]["day"], "date32[day]");
        assert_eq!(got["arrow"]["nested"], "extension<arrow.json>");
        assert_eq!(got["logical"]["nested"], "JSON");
    }

    // Postgres.
    #[cfg(feature = "postgres")]
    if let Some(uri) = postgres() {
        let pg = Pg::connect(&uri);
        let dest = format!("{uri}?schema={}", pg.schema);
        run_ok(tmp.path(), &["sync", "times", "--dest", &dest], &[]);
        let types = pg.types("items");
        assert_eq!(types["updated_at"], "timestamp with time zone");
        assert_eq!(types["day"], "date");
        assert_eq!(types["breaks"], "text");
        let row = &pg.query(&format!(
            "SELECT (extract(epoch FROM shifted) * 1000000)::bigint, day::text, breaks FROM \"{}\".items WHERE id IN (1, 250) ORDER BY id",
            pg.schema
        ));
        assert_eq!(row[0].get::<_, i64>(0), at(1) - 7_200_000_000);
        assert_eq!(row[0].get::<_, String>(1), "2024-01-01");
        // Widened from timestamptz when `soon` came: ISO 8601, in UTC.
        assert_eq!(row[0].get::<_, String>(2), "2024-01-01T00:01:00+00:00");
        assert_eq!(row[1].get::<_, String>(2), "soon");
    }
}

/// The Python with `duckdb` and `pyarrow` (`CONNECTOR_RUN_TEST_DUCKDB_PYTHON`,
/// installed by `.ci/run`), or `None` with a note. CI must have it.
fn duckdb_python() -> Option<String> {
    match std::env::var("CONNECTOR_RUN_TEST_DUCKDB_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set CONNECTOR_RUN_TEST_DUCKDB_PYTHON (.ci/run installs duckdb and pyarrow)"
            );
            eprintln!(
                "skipped the DuckDB/pyarrow checks: CONNECTOR_RUN_TEST_DUCKDB_PYTHON is not set"
            );
            None
        }
    }
}
