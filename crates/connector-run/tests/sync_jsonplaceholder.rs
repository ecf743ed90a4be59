//! The jsonplaceholder connector end to end: against the mock serving the real
//! dataset with json-server semantics, and against the real json-server.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn assert_dataset(out: &Path) {
    let db = jsonplaceholder_db();
    for stream in ["posts", "comments", "albums", "photos", "todos", "users"] {
        let got = read_jsonl(out, stream);
        let want = db[stream].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{stream}: record count");
        assert_eq!(&got, want, "{stream}: same ids, order and content");
    }
    // post_comments: every comment exactly once, each with its post's id.
    let pc = read_jsonl(out, "post_comments");
    let comments = db["comments"].as_array().unwrap();
    assert_eq!(pc.len(), comments.len());
    let mut got_ids = ids(&pc);
    got_ids.sort();
    got_ids.dedup();
    assert_eq!(got_ids.len(), 500, "no duplicates");
    for r in &pc {
        assert_eq!(
            r["post_id"], r["postId"],
            "post_id copied from the parent, as a number"
        );
        assert!(r["post_id"].is_u64());
    }
}

fn sync_all(base_url: &str, tmp: &Path, extra: &[&str]) -> std::process::Output {
    let dest = format!("jsonl:{}", tmp.join("out").display());
    let set = format!("base_url={base_url}");
    let mut args = vec!["sync", "jsonplaceholder", "--set", &set, "--dest", &dest];
    args.extend_from_slice(extra);
    run(&repo_root(), &args, &[])
}

#[test]
fn all_streams_arrive_exactly_from_the_mock() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = sync_all(&server.url(), tmp.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_dataset(&tmp.path().join("out"));
    // Offset paging with _start/_limit, 20 per page: 5 pages, then X-Total-Count says done.
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/posts")
        .collect();
    assert_eq!(
        posts.len(),
        5,
        "{:?}",
        posts.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
    // The second page's request; the third's may reach the server before
    // it (requested on a guess while the second is read).
    assert!(
        posts
            .iter()
            .any(|r| r.uri.contains("_start=20") && r.uri.contains("_limit=20")),
        "{:?}",
        posts.iter().map(|r| &r.uri).collect::<Vec<_>>()
    );
    let summary = stderr(&out);
    assert!(
        summary.contains("posts") && summary.contains("6410 records"),
        "{summary}"
    );
}

#[test]
fn page_size_comes_from_config() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let dest = format!("jsonl:{}", tmp.path().display());
    let set = format!("base_url={}", server.url());
    run_ok(
        &repo_root(),
        &[
            "sync",
            "jsonplaceholder",
            "posts",
            "--set",
            &set,
            "--set",
            "page_size=100",
            "--dest",
            &dest,
        ],
        &[],
    );
    assert_eq!(read_jsonl(tmp.path(), "posts").len(), 100);
    // 100 per page: one full page holds the whole total.
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn all_streams_arrive_exactly_from_real_json_server() {
    let Some(bin) = std::env::var_os("JSON_SERVER_BIN") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set JSON_SERVER_BIN (.ci/run installs json-server)"
        );
        eprintln!("skipped: JSON_SERVER_BIN is not set (bash .ci/run installs json-server 0.17.4)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.json");
    std::fs::copy(
        repo_root().join("tests/fixtures/jsonplaceholder/db.json"),
        &db,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--host",
            "127.0.0.1",
            "--quiet",
            "--no-watch",
        ])
        .arg(&db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("json-server starts");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "json-server did not start"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("json-server exited: {status}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Kill(child)
    };
    let out = sync_all(&format!("http://127.0.0.1:{port}"), tmp.path(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_dataset(&tmp.path().join("out"));
}

#[test]
fn stdout_destination_tags_records_only_with_several_streams() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let set = format!("base_url={}", server.url());
    let one = run_ok(
        &repo_root(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "--set",
            &set,
            "--dest",
            "-",
            "--quiet",
        ],
        &[],
    );
    let lines: Vec<Value> = stdout(&one)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0]["username"], "Bret");
    let two = run_ok(
        &repo_root(),
        &[
            "sync",
            "jsonplaceholder",
            "users",
            "posts",
            "--set",
            &set,
            "--dest",
            "-",
            "--quiet",
        ],
        &[],
    );
    let lines: Vec<Value> = stdout(&two)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 110);
    assert!(
        lines
            .iter()
            .all(|l| l["stream"].is_string() && l["record"].is_object())
    );
    assert_eq!(lines.iter().filter(|l| l["stream"] == "users").count(), 10);
}

#[test]
fn limit_and_max_pages_preview() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = sync_all(&server.url(), tmp.path(), &["photos", "--limit", "30"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "photos")),
        (1..=30).collect::<Vec<u64>>()
    );
    let tmp2 = tempfile::tempdir().unwrap();
    let out = sync_all(&server.url(), tmp2.path(), &["photos", "--max-pages", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_jsonl(&tmp2.path().join("out"), "photos").len(), 60);
}
