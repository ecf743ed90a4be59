//! The README tutorial: `connector-run sync jsonplaceholder users posts
//! comments`, then `examples/engagement_report.sql` over the default SQLite
//! database, and the same script in DuckDB over `--dest parquet:` files.
//! Its numbers are checked against the same numbers computed here from the
//! JSON the mock served, on the real dataset and on a reshuffled one where
//! users differ.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use rusqlite::Connection;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
struct UserRow {
    user_id: i64,
    username: String,
    posts: i64,
    comments: i64,
    comments_per_post: f64,
}

/// Per user, in id order, from the raw JSON.
fn expected(db: &Value) -> Vec<UserRow> {
    let mut comments_per_post: BTreeMap<i64, i64> = BTreeMap::new();
    for c in db["comments"].as_array().unwrap() {
        *comments_per_post
            .entry(c["postId"].as_i64().unwrap())
            .or_default() += 1;
    }
    let mut users: Vec<UserRow> = db["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let id = u["id"].as_i64().unwrap();
            let posts: Vec<i64> = db["posts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["userId"].as_i64() == Some(id))
                .map(|p| p["id"].as_i64().unwrap())
                .collect();
            let comments: i64 = posts
                .iter()
                .map(|p| comments_per_post.get(p).copied().unwrap_or(0))
                .sum();
            UserRow {
                user_id: id,
                username: u["username"].as_str().unwrap().to_string(),
                posts: posts.len() as i64,
                comments,
                comments_per_post: if posts.is_empty() {
                    0.0
                } else {
                    comments as f64 / posts.len() as f64
                },
            }
        })
        .collect();
    users.sort_by_key(|u| u.user_id);
    users
}

fn top5(users: &[UserRow]) -> Vec<String> {
    let mut v = users.to_vec();
    v.sort_by(|a, b| {
        b.comments
            .cmp(&a.comments)
            .then(b.comments_per_post.total_cmp(&a.comments_per_post))
            .then(a.user_id.cmp(&b.user_id))
    });
    v.into_iter().take(5).map(|u| u.username).collect()
}

/// Runs the report's statements (without the sqlite3 dot-commands); returns
/// the rows of each SELECT.
fn run_report(db: &Path) -> Vec<Vec<BTreeMap<String, rusqlite::types::Value>>> {
    let sql = std::fs::read_to_string(repo_root().join("examples/engagement_report.sql")).unwrap();
    let sql: String = sql
        .lines()
        .filter(|l| !l.starts_with('.'))
        .map(|l| format!("{l}\n"))
        .collect();
    let conn = Connection::open(db).unwrap();
    let mut results = Vec::new();
    for stmt in sql.split(';') {
        let code: String = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        if !code.to_uppercase().starts_with("SELECT") {
            conn.execute_batch(code).unwrap();
            continue;
        }
        let mut st = conn.prepare(code).unwrap();
        let names: Vec<String> = st.column_names().map(String::from).collect();
        let rows = st
            .query_map([], |r| {
                Ok(names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<BTreeMap<_, _>>())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        results.push(rows);
    }
    results
}

fn int(v: &rusqlite::types::Value) -> i64 {
    match v {
        rusqlite::types::Value::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn real(v: &rusqlite::types::Value) -> f64 {
    match v {
        rusqlite::types::Value::Real(f) => *f,
        rusqlite::types::Value::Integer(i) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn text(v: &rusqlite::types::Value) -> String {
    match v {
        rusqlite::types::Value::Text(t) => t.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn check_report(fixture: &Value, config: MockConfig) {
    let server = MockServer::start(config);
    let tmp = tempfile::tempdir().unwrap();
    let connectors = repo_root().join("connectors");
    let set = format!("base_url={}", server.url());
    run_ok(
        tmp.path(),
        &[
            "--connectors-dir",
            connectors.to_str().unwrap(),
            "sync",
            "jsonplaceholder",
            "users",
            "posts",
            "comments",
            "--set",
            &set,
        ],
        &[],
    );
    let db = tmp.path().join("data/jsonplaceholder.db");
    let want = expected(fixture);
    let results = run_report(&db);
    assert_eq!(results.len(), 2, "per-user table and top 5");

    let per_user = &results[0];
    assert_eq!(per_user.len(), want.len());
    for (row, w) in per_user.iter().zip(&want) {
        assert_eq!(int(&row["user_id"]), w.user_id);
        assert_eq!(text(&row["username"]), w.username);
        assert_eq!(int(&row["posts"]), w.posts, "{}", w.username);
        assert_eq!(int(&row["comments"]), w.comments, "{}", w.username);
        let got = real(&row["comments_per_post"]);
        assert!(
            (got - w.comments_per_post).abs() <= 0.005 + 1e-9,
            "{}: {got} vs {}",
            w.username,
            w.comments_per_post
        );
    }
    let top: Vec<String> = results[1].iter().map(|r| text(&r["username"])).collect();
    assert_eq!(top, top5(&want));
    let ranks: Vec<i64> = results[1].iter().map(|r| int(&r["rank"])).collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5]);

    // And through the sqlite3 shell, as the README says.
    match std::process::Command::new("sqlite3")
        .arg(&db)
        .stdin(std::fs::File::open(repo_root().join("examples/engagement_report.sql")).unwrap())
        .output()
    {
        Ok(o) => {
            let printed = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(printed.contains("Top 5 most engaged users"), "{printed}");
            let top_line = printed
                .lines()
                .skip_while(|l| !l.starts_with("Top 5"))
                .nth(3)
                .unwrap_or_default();
            assert!(
                top_line.starts_with('1') && top_line.contains(&top5(&want)[0]),
                "{printed}"
            );
        }
        Err(_) => eprintln!("note: no sqlite3 shell here; checked the report with rusqlite only"),
    }

    // The same script, unchanged, in DuckDB over the Parquet files.
    let Some(python) = duckdb_python() else {
        return;
    };
    run_ok(
        tmp.path(),
        &[
            "--connectors-dir",
            connectors.to_str().unwrap(),
            "sync",
            "jsonplaceholder",
            "users",
            "posts",
            "comments",
            "--set",
            &set,
            "--dest",
            "parquet:pq",
        ],
        &[],
    );
    let out = std::process::Command::new(&python)
        .args(["-c", DUCKDB_REPORT])
        .arg(tmp.path().join("pq"))
        .arg(repo_root().join("examples/engagement_report.sql"))
        .output()
        .unwrap();
    assert!(out.status.success(), "DuckDB: {}", stderr(&out));
    let results: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results.len(), 2, "per-user table and top 5");
    assert_eq!(results[0].len(), want.len());
    for (row, w) in results[0].iter().zip(&want) {
        assert_eq!(row["user_id"], w.user_id);
        assert_eq!(row["username"], w.username.as_str());
        assert_eq!(row["posts"], w.posts, "{}", w.username);
        assert_eq!(row["comments"], w.comments, "{}", w.username);
        let got = row["comments_per_post"].as_f64().unwrap();
        assert!(
            (got - w.comments_per_post).abs() <= 0.005 + 1e-9,
            "{}",
            w.username
        );
    }
    let top: Vec<&str> = results[1]
        .iter()
        .map(|r| r["username"].as_str().unwrap())
        .collect();
    assert_eq!(top, top5(&want));
}

/// Runs `examples/engagement_report.sql` in DuckDB over `DIR/<table>.parquet`
/// (argv: DIR, the script), as the script's header shows, without the
/// shell's dot-commands; prints each SELECT's rows as JSON.
const DUCKDB_REPORT: &str = r#"
import duckdb, json, sys
folder, script = sys.argv[1], sys.argv[2]
con = duckdb.connect()
for t in ["users", "posts", "comments"]:
    con.execute(f"CREATE VIEW {t} AS FROM '{folder}/{t}.parquet'")
sql = "".join(l for l in open(script) if not l.startswith("."))
results = []
for stmt in sql.split(";"):
    code = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--")).strip()
    if not code:
        continue
    cur = con.execute(code)
    if code.upper().startswith("SELECT"):
        names = [d[0] for d in cur.description]
        results.append([dict(zip(names, r)) for r in cur.fetchall()])
print(json.dumps(results))
"#;

/// The Python with `duckdb` (`CONNECTOR_RUN_TEST_DUCKDB_PYTHON`, installed
/// by `.ci/run`), or `None` with a note. CI must have it.
fn duckdb_python() -> Option<String> {
    match std::env::var("CONNECTOR_RUN_TEST_DUCKDB_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set CONNECTOR_RUN_TEST_DUCKDB_PYTHON (.ci/run installs duckdb)"
            );
            eprintln!("skipped the DuckDB run: CONNECTOR_RUN_TEST_DUCKDB_PYTHON is not set");
            None
        }
    }
}

#[test]
fn engagement_report_on_the_real_dataset() {
    let fixture = jsonplaceholder_db();
    check_report(&fixture, MockConfig::default());
}

#[test]
fn engagement_report_ranks_users_that_differ() {
    // The real dataset is uniform (10 posts and 50 comments each), so also
    // check a reshuffled copy: user 3 keeps two posts, some posts lose
    // comments, user 11 has no posts.
    let mut db = jsonplaceholder_db();
    let posts: Vec<Value> = db["posts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["userId"] != 3 || p["id"].as_i64().unwrap() % 10 < 3)
        .cloned()
        .collect();
    db["posts"] = Value::Array(posts);
    let comments: Vec<Value> = db["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let (post, id) = (c["postId"].as_i64().unwrap(), c["id"].as_i64().unwrap());
            let few = post % 3 == 0 && id % 5 != 0;
            let half = (61..=70).contains(&post) && id % 2 == 0;
            !(few || half)
        })
        .cloned()
        .collect();
    db["comments"] = Value::Array(comments);
    let mut extra = db["users"][0].clone();
    extra["id"] = json!(11);
    extra["username"] = json!("Newcomer");
    db["users"].as_array_mut().unwrap().push(extra);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.json");
    std::fs::write(&path, serde_json::to_vec(&db).unwrap()).unwrap();
    let want = expected(&db);
    assert!(
        want.iter()
            .map(|u| u.comments)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 3,
        "the users differ: {want:?}"
    );
    check_report(&db, MockConfig::default().jsonplaceholder(&path));
}
