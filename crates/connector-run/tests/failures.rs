//! Every failure explained, in the right words, with the documented exit
//! code (issue #10): non-retryable errors, full disks, signals, closed pipes,
//! OAuth2 token endpoints, the connectors folder, logs, config files.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn one_stream(base: &str, path: &str, extra: &str) -> String {
    format!(
        r#"
version: 1
name: t
base_url: "{base}"
streams:
  items:
    path: {path}
{extra}
"#
    )
}

/// The records and offset pagination of `/gen/offset`, as stream lines.
fn offset_pages(page_size: u64) -> String {
    format!(
        "    records: {{ path: $.data }}\n    pagination: {{ type: offset, page_size: {page_size}, stop: {{ total_path: $.total }} }}"
    )
}

fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Masks digits after `page ` (where an interrupt lands varies).
fn mask_page_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("page ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let n = rest.chars().take_while(char::is_ascii_digit).count();
        if n > 0 {
            out.push('N');
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

#[test]
fn errors_that_cannot_get_better_fail_at_once() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    for (name, path, pagination) in [
        (
            "next_url_scheme",
            "/hostile/next_scheme",
            "    records: { path: $.data }\n    pagination: { type: next_url, next_url_path: $.next }",
        ),
        ("recursion_limit", "/hostile/deep", ""),
    ] {
        write_spec(
            tmp.path(),
            "t",
            &one_stream(&server.url(), path, pagination),
        );
        server.clear_requests();
        let o = run(tmp.path(), &["sync", "t", "--dest", "jsonl:out"], &[]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert_eq!(server.requests().len(), 1, "{name}: not retried");
        insta::assert_snapshot!(
            format!("at_once_{name}"),
            stable(&error_lines(&o), tmp.path())
        );
    }
}

/// Runs the binary with a file size limit, so writes past it fail as a full
/// disk would.
fn with_file_limit(cmd: &mut Command, bytes: u64) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn a_full_disk_names_the_destination_and_the_stream_and_exits_1() {
    let server = MockServer::start(MockConfig::default().generated_records(20_000));
    let tmp = tempfile::tempdir().unwrap();
    let spec = one_stream(&server.url(), "/gen/offset", &offset_pages(500));
    write_spec(tmp.path(), "t", &spec);
    for dest in ["jsonl:out", "sqlite:out/t.db"] {
        let mut cmd = bin();
        cmd.current_dir(tmp.path())
            .args(["sync", "t", "--dest", dest])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        with_file_limit(&mut cmd, 400_000);
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(1), "{dest}: {err}");
        assert!(err.contains("stream `items`"), "{dest}: {err}");
        assert!(err.contains("out/"), "{dest}: names the destination: {err}");
        assert!(
            err.contains("FAILED"),
            "{dest}: the summary is printed: {err}"
        );
        if dest.starts_with("jsonl") {
            // The summary counts what was written, no more.
            let written = lines(&tmp.path().join("out/items.jsonl"));
            let summary = err
                .lines()
                .find(|l| l.starts_with("items"))
                .unwrap()
                .to_string();
            let counted: usize = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!(
                counted <= written,
                "counted {counted}, written {written}: {summary}"
            );
        }
    }
}

fn spawn_slow_sync(tmp: &std::path::Path, base: &str, dest: &str) -> std::process::Child {
    let spec = one_stream(
        base,
        "/hostile/slow_pages",
        "    params: { delay_ms: \"150\" }\n    records: { path: $.data }\n    pagination: { type: offset, page_size: 10, stop: { total_path: $.total } }",
    );
    write_spec(tmp, "t", &spec);
    bin()
        .current_dir(tmp)
        .args(["sync", "t", "--dest", dest])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigint_and_sigterm_stop_within_a_second_and_the_rerun_resumes() {
    let server = MockServer::start(MockConfig::default());
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = spawn_slow_sync(tmp.path(), &server.url(), "jsonl:out");
        let state = tmp.path().join("out/_state.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&state).is_ok_and(|t| t.contains("\"pages\": 3")) {
            assert!(Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        let sent = Instant::now();
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let status = child.wait().unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "stopped in {:?}",
            sent.elapsed()
        );
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(code), "{err}");
        let last = err.lines().last().unwrap_or_default();
        insta::assert_snapshot!(format!("interrupted_{code}"), mask_page_numbers(last));
        assert!(err.contains("stopped"), "the summary is printed: {err}");
        // Nothing half-written: the file holds whole pages, as the state says.
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        let bytes = saved["streams"]["items"]["destination"]["bytes"]
            .as_u64()
            .unwrap();
        let file = std::fs::read(tmp.path().join("out/items.jsonl")).unwrap();
        assert!(file.len() as u64 >= bytes);
        run_ok(tmp.path(), &["sync", "t", "--dest", "jsonl:out"], &[]);
        let got = ids(&read_jsonl(&tmp.path().join("out"), "items"));
        assert_eq!(got, (1..=1000).collect::<Vec<u64>>(), "resumed exactly");
    }
}

/// Reads `n` bytes of a child's stdout, then closes it.
fn read_then_close(mut cmd: Command, n: usize) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; n];
    out.read_exact(&mut buf).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    let server = MockServer::start(MockConfig::default().generated_records(20_000));
    let tmp = tempfile::tempdir().unwrap();
    let spec = one_stream(&server.url(), "/gen/offset", &offset_pages(100));
    write_spec(tmp.path(), "t", &spec);
    for dest in ["-", "singer:-"] {
        let mut cmd = bin();
        cmd.current_dir(tmp.path())
            .args(["sync", "t", "--dest", dest]);
        let (status, err) = read_then_close(cmd, 10);
        assert_eq!(status.code(), Some(141), "{dest}: {err}");
        assert!(!err.contains("error"), "{dest}: quiet: {err}");
    }
    for args in [
        vec!["completions", "fish"],
        vec!["completions", "bash"],
        vec!["schema"],
        vec!["docs"],
    ] {
        let mut cmd = bin();
        cmd.current_dir(tmp.path()).args(&args);
        let (status, err) = read_then_close(cmd, 1);
        // A short output may fit the pipe before the reader leaves (0);
        // otherwise the write fails (141). Never a panic (101).
        assert!(
            matches!(status.code(), Some(0 | 141)),
            "{args:?}: {status} {err}"
        );
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn oauth2_short_tokens_and_token_endpoint_errors() {
    let server = MockServer::start(MockConfig {
        oauth_token_ttl: Duration::from_secs(30),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
version: 1
name: oauth
config:
  client_secret: {{ secret: true }}
base_url: "{base}"
auth:
  type: oauth2
  grant_type: client_credentials
  token_url: "{base}/oauth/token"
  client_id: {id}
  client_secret: "{{{{ config.client_secret }}}}"
streams:
  items:
    path: /auth/oauth2
    pagination: {{ type: offset, page_size: 10 }}
    records: {{ path: $.data }}
"#,
        base = server.url(),
        id = mock_api::CLIENT_ID
    );
    write_spec(tmp.path(), "oauth", &spec);
    run_ok(
        tmp.path(),
        &["sync", "oauth", "--dest", "jsonl:out"],
        &[("CONNECTOR_OAUTH_CLIENT_SECRET", mock_api::CLIENT_SECRET)],
    );
    let data_requests = server
        .requests()
        .iter()
        .filter(|r| r.path == "/auth/oauth2")
        .count();
    assert!(data_requests > 5);
    assert_eq!(
        server.counters().tokens_issued,
        1,
        "one token for a 30 s run"
    );
    let o = run(
        tmp.path(),
        &["sync", "oauth", "--dest", "jsonl:bad"],
        &[("CONNECTOR_OAUTH_CLIENT_SECRET", "wrong-secret")],
    );
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("oauth2_token_error", stable(&error_lines(&o), tmp.path()));
}

#[test]
fn list_outside_a_connectors_folder_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(tmp.path(), &["list"], &[]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!("list_no_folder", stable(&stderr(&o), tmp.path()));
}

#[test]
fn logs_are_as_documented() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = one_stream(&server.url(), "/gen/offset", &offset_pages(100));
    write_spec(tmp.path(), "t", &spec);
    let v = run(tmp.path(), &["sync", "t", "--dest", "jsonl:a", "-v"], &[]);
    let text = stderr(&v);
    assert!(
        text.contains("GET http://127.0.0.1:") && text.contains("-> 200 in"),
        "-v logs requests: {text}"
    );
    assert!(!text.contains("headers:"), "-v has no headers: {text}");
    let vv = run(tmp.path(), &["sync", "t", "--dest", "jsonl:b", "-vv"], &[]);
    let text = stderr(&vv);
    assert!(text.contains("headers:"), "-vv adds headers: {text}");
    assert!(!text.contains('\u{1b}'), "no colour codes off a terminal");
    // Every log line starts with a UTC timestamp.
    for l in text
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" DEBUG "))
    {
        assert!(
            l.starts_with("20") && l.as_bytes().get(10) == Some(&b'T'),
            "{l}"
        );
    }
    let json = run(
        tmp.path(),
        &[
            "sync",
            "t",
            "--dest",
            "jsonl:c",
            "-v",
            "--log-format",
            "json",
            "--quiet",
        ],
        &[],
    );
    assert!(json.status.success());
    let json = run(
        tmp.path(),
        &[
            "sync",
            "t",
            "--dest",
            "jsonl:d",
            "-v",
            "--log-format",
            "json",
        ],
        &[],
    );
    let mut n = 0;
    for l in stderr(&json).lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        for k in ["time", "level", "message", "fields"] {
            assert!(v.get(k).is_some(), "{k} in {l}");
        }
        n += 1;
    }
    assert!(n >= 3, "json log lines: {}", stderr(&json));
}

#[test]
fn an_unknown_key_in_a_config_file_is_an_error_with_a_hint() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        "version: 1\nname: t\nconfig:\n  page_size: {{ type: integer, default: 10 }}\nbase_url: \"{}\"\nstreams:\n  items:\n    path: /gen/offset\n    records: {{ path: $.data }}\n",
        server.url()
    );
    write_spec(tmp.path(), "t", &spec);
    std::fs::write(tmp.path().join("config.json"), r#"{"page_sise": 20}"#).unwrap();
    let o = run(
        tmp.path(),
        &[
            "sync",
            "t",
            "--config",
            "config.json",
            "--dest",
            "jsonl:out",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(server.requests().is_empty());
    insta::assert_snapshot!(
        "config_file_unknown_key",
        stable(&error_lines(&o), tmp.path())
    );
}

#[test]
fn spec_files_that_are_not_utf8_are_located() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("connectors");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("latin1.yaml"),
        b"version: 1\nname: t\ndescription: caf\xe9\nbase_url: https://x\n".as_slice(),
    )
    .unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    for c in "version: 1\n".encode_utf16() {
        utf16.extend(c.to_le_bytes());
    }
    std::fs::write(dir.join("utf16.yaml"), utf16).unwrap();
    let o = run(tmp.path(), &["validate", "latin1", "utf16"], &[]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("not_utf8", stable(&stderr(&o), tmp.path()));
}

#[test]
fn every_documented_exit_code() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let ok = one_stream(
        &server.url(),
        "/gen/offset",
        "    records: { path: $.data }",
    );
    write_spec(tmp.path(), "t", &ok);
    assert_eq!(
        run(tmp.path(), &["sync", "t", "--dest", "jsonl:o"], &[])
            .status
            .code(),
        Some(0)
    );
    write_spec(
        tmp.path(),
        "f",
        &one_stream(&server.url(), "/bad/status/404", ""),
    );
    assert_eq!(
        run(tmp.path(), &["sync", "f", "--dest", "jsonl:o"], &[])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(tmp.path(), &["sync", "t", "--dest", "nope:x"], &[])
            .status
            .code(),
        Some(2)
    );
    // 130, 143 and 141 are checked above, by the tests that cause them.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for code in ["`0`", "`1`", "`2`", "`130`", "`141`", "`143`"] {
        assert!(readme.contains(code), "README lists exit code {code}");
    }
}
