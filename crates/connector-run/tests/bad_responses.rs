//! Bad responses end the stream with an error naming the stream, page and
//! URL, with a body excerpt; earlier pages stay written; other streams go on.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};

fn spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: bad
config:
  base_url: {{ default: "{base}" }}
  api_key: {{ secret: true }}
base_url: "{{{{ config.base_url }}}}"
params:
  api_key: "{{{{ config.api_key }}}}"
retry: {{ max_attempts: 2, backoff_base: 1ms, backoff_cap: 5ms }}
pagination: {{ type: offset, page_size: 10, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
streams:
  good:
    path: /gen/offset
  not_json:
    path: /bad/not_json
  html:
    path: /bad/html
  truncated:
    path: /bad/truncated
  wrong_shape:
    path: /bad/wrong_shape
  not_found:
    path: /bad/status/404
  forbidden:
    path: /bad/status/403
  after_two_pages:
    path: /bad/after/2
  server_error:
    path: /bad/status/503
"#
    )
}

/// Syncs one bad stream plus the good one; returns the masked error lines.
fn sync_bad(server: &MockServer, stream: &str) -> (String, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "bad", &spec(&server.url()));
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let out = run(
        tmp.path(),
        &["sync", "bad", "good", stream, "--dest", &dest],
        &[("CONNECTOR_BAD_API_KEY", "sup3r-s3cret-key")],
    );
    assert_eq!(out.status.code(), Some(1), "{stream}: {}", stderr(&out));
    let all = stderr(&out);
    assert!(!all.contains("sup3r-s3cret-key"), "secret leaked: {all}");
    assert_eq!(
        read_jsonl(&tmp.path().join("out"), "good").len(),
        250,
        "{stream}: the other stream's records are kept"
    );
    (stable(&error_lines(&out), tmp.path()), tmp)
}

#[test]
fn each_bad_response_gets_a_clear_error() {
    let server = MockServer::start(MockConfig::default());
    for stream in [
        "not_json",
        "html",
        "truncated",
        "wrong_shape",
        "not_found",
        "forbidden",
        "server_error",
    ] {
        let (errors, tmp) = sync_bad(&server, stream);
        assert!(
            errors.contains(&format!("stream `{stream}`, page 1")),
            "{errors}"
        );
        assert_eq!(read_jsonl(&tmp.path().join("out"), stream).len(), 0);
        insta::assert_snapshot!(format!("bad_{stream}"), errors);
    }
}

#[test]
fn records_before_the_failure_stay_written() {
    let server = MockServer::start(MockConfig::default());
    let (errors, tmp) = sync_bad(&server, "after_two_pages");
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "after_two_pages")),
        (1..=20).collect::<Vec<u64>>()
    );
    assert!(errors.contains("page 3"), "{errors}");
    insta::assert_snapshot!("bad_after_two_pages", errors);
}
