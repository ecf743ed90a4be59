//! What machines read of a run: `sync --summary-json`, progress lines off a
//! terminal, `--version` with the commit, and shell completions of connector
//! and stream names.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// `gen` with `items` (the mock's `/gen/offset`, pages of `page` records,
/// total known) and `missing` (a 404, failing at once).
fn spec(base: &str, page: u64) -> String {
    format!(
        r#"
version: 1
name: gen
base_url: "{base}"
retry: {{ max_attempts: 1 }}
records: {{ path: $.data }}
pagination: {{ type: offset, page_size: {page}, stop: {{ total_path: $.total }} }}
streams:
  items:
    path: /gen/offset
    primary_key: id
  missing:
    path: /no/such/path
"#
    )
}

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn summary_json_tells_orchestrators_how_each_stream_ended() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &spec(&server.url(), 100));
    let file = tmp.path().join("summary.json");

    // One stream ok, one failed: exit 1, and both in the summary.
    let out = run(
        tmp.path(),
        &[
            "sync",
            "gen",
            "--dest",
            "jsonl:out",
            "--summary-json",
            file.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = summary(&file);
    assert_eq!(s["connector"], "gen");
    assert_eq!(s["status"], "failed");
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["records"], 250);
    assert!(s["destination"].as_str().unwrap().starts_with("jsonl:"));
    let streams = s["streams"].as_array().unwrap();
    let items = streams.iter().find(|x| x["stream"] == "items").unwrap();
    let missing = streams.iter().find(|x| x["stream"] == "missing").unwrap();
    assert_eq!(items["status"], "ok");
    assert_eq!(items["records"], 250);
    assert_eq!(items["pages"], 3);
    assert_eq!(items["requests"], 3);
    assert_eq!(items["retries"], 0);
    assert_eq!(items["http_429"], 0);
    assert!(items["error"].is_null());
    for k in ["elapsed_s", "waited_s", "records_per_s"] {
        assert!(items[k].is_number(), "{k}: {items}");
    }
    assert_eq!(missing["status"], "failed");
    assert!(
        missing["error"].as_str().unwrap().contains("404"),
        "{missing}"
    );

    // `-`: on stdout, beside records written elsewhere.
    let out = run_ok(
        tmp.path(),
        &[
            "sync",
            "gen",
            "items",
            "--dest",
            "jsonl:out2",
            "--summary-json",
            "-",
        ],
        &[],
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["status"].as_str(), s["exit_code"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert_eq!(s["streams"][0]["records"], 250);

    // Not into the records on stdout.
    let out = run(
        tmp.path(),
        &["sync", "gen", "items", "--dest", "-", "--summary-json", "-"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("give it a FILE"), "{}", stderr(&out));

    // Nothing ran (a bad destination): still a summary, saying why.
    let out = run(
        tmp.path(),
        &[
            "sync",
            "gen",
            "--dest",
            "nosuch:x",
            "--summary-json",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let s = summary(&file);
    assert_eq!(s["status"], "error");
    assert_eq!(s["exit_code"], 2);
    assert!(s["error"].as_str().unwrap().contains("`nosuch:`"), "{s}");
}

#[test]
fn progress_off_a_terminal_shows_percent_and_eta() {
    // 50 pages of 5 records, 250 ms each, two requests in flight (the
    // total says where the page after next is): more than one 5 s progress
    // tick.
    let server = MockServer::start(MockConfig {
        latency: Duration::from_millis(250),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "gen", &spec(&server.url(), 5));
    let out = run_ok(
        tmp.path(),
        &["sync", "gen", "items", "--dest", "jsonl:out"],
        &[],
    );
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("progress: items: "))
        .unwrap_or_else(|| panic!("no progress line: {err}"));
    // `progress: items: 200 of 250 records (80%, ETA 2s), 20 pages, …`
    let re = regex_lite(line);
    assert!(re, "{line}");
}

/// `N of 250 records (P%, ETA …s)`, without a regex crate.
fn regex_lite(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("progress: items: ") else {
        return false;
    };
    let (n, rest) = rest.split_once(" of 250 records (").unwrap_or(("", ""));
    let (pct, rest) = rest.split_once("%, ETA ").unwrap_or(("", ""));
    n.parse::<u64>().is_ok_and(|n| n > 0 && n < 250)
        && pct.parse::<u64>().is_ok()
        && rest
            .split_once("), ")
            .is_some_and(|(eta, _)| eta.ends_with('s'))
}

#[test]
fn version_names_the_commit() {
    let out = run(&repo_root(), &["--version"], &[]);
    assert!(out.status.success());
    let v = stdout(&out);
    assert!(v.starts_with("connector-run 0.1.0"), "{v}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert!(v.contains(&format!("(commit {h}, ")), "{v} is not HEAD {h}"),
        None => eprintln!("no git here: {v}"),
    }
}

#[test]
fn completions_offer_connectors_and_their_streams() {
    let root = repo_root();
    let bin = env!("CARGO_BIN_EXE_connector-run");
    // As fish asks: the words so far, the last one being completed.
    let ask = |words: &[&str]| {
        let out = std::process::Command::new(bin)
            .current_dir(&root)
            .env("CONNECTOR_RUN_COMPLETE", "fish")
            .arg("--")
            .args(words)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ask(&["connector-run", "sync", "jsonpl"]),
        ["jsonplaceholder"]
    );
    let streams = ask(&["connector-run", "sync", "jsonplaceholder", "po"]);
    assert_eq!(streams, ["posts", "post_comments"]);
    assert_eq!(
        ask(&[
            "connector-run",
            "check",
            "--set",
            "a=b",
            "jsonplaceholder",
            "us"
        ]),
        ["users"]
    );
    assert_eq!(
        ask(&["connector-run", "state", "show", "jsonplaceholder", "todo"]),
        ["todos"]
    );
    // Another folder.
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "zeta_api", &spec("http://127.0.0.1:1", 10));
    let dir = tmp.path().join("connectors");
    assert_eq!(
        ask(&[
            "connector-run",
            "--connectors-dir",
            dir.to_str().unwrap(),
            "sync",
            "ze"
        ]),
        ["zeta_api"]
    );
    assert_eq!(
        ask(&[
            "connector-run",
            "sync",
            "--connectors-dir",
            dir.to_str().unwrap(),
            "zeta_api",
            "m"
        ]),
        ["missing"]
    );

    // A real bash, with the script `completions bash` prints.
    let out = run(&root, &["completions", "bash"], &[]);
    assert!(out.status.success());
    let script = tmp.path().join("complete.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let probe = format!(
        r#"source {script}
COMP_WORDS=(connector-run sync jsonplaceholder al); COMP_CWORD=3; COMP_TYPE=9
_clap_complete_connector_run connector-run al sync
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = script.display()
    );
    let out = std::process::Command::new("bash")
        .current_dir(&root)
        .args(["--norc", "-c", &probe])
        .output();
    match out {
        Ok(out) => {
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(
                stdout(&out).split_whitespace().collect::<Vec<_>>(),
                ["albums"]
            );
        }
        Err(e) => eprintln!("skipped the bash check: {e}"),
    }
}
