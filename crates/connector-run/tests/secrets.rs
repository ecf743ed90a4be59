//! A known secret never appears anywhere: stdout, stderr at -vv (and at
//! RUST_LOG=trace), error messages, the state file, or the destination.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};

fn spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: leaky
config:
  base_url: {{ default: "{base}" }}
  token: {{ secret: true, required: true }}
  api_key: {{ secret: true, required: true }}
base_url: "{{{{ config.base_url }}}}"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
params:
  q: "{{{{ config.api_key }}}}"
pagination: {{ type: offset, page_size: 100, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
streams:
  items:
    path: /auth/bearer
  failing:
    path: /bad/status/500
    retry: {{ max_attempts: 2, backoff_base: 1ms, backoff_cap: 2ms }}
"#
    )
}

fn all_files(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
    text
}

#[test]
fn secrets_appear_nowhere() {
    let server = MockServer::start(MockConfig::default());
    for rust_log in [None, Some("trace")] {
        let tmp = tempfile::tempdir().unwrap();
        write_spec(tmp.path(), "leaky", &spec(&server.url()));
        let out_dir = tmp.path().join("out");
        let dest = format!("jsonl:{}", out_dir.display());
        let mut env = vec![
            ("CONNECTOR_LEAKY_TOKEN", mock_api::TOKEN),
            ("CONNECTOR_LEAKY_API_KEY", "qk-0123456789-secret"),
        ];
        if let Some(l) = rust_log {
            env.push(("RUST_LOG", l));
        }
        let out = run(tmp.path(), &["sync", "leaky", "--dest", &dest, "-vv"], &env);
        assert_eq!(
            out.status.code(),
            Some(1),
            "the failing stream fails: {}",
            stderr(&out)
        );
        assert_eq!(read_jsonl(&out_dir, "items").len(), 250, "{}", stderr(&out));
        let everything = format!(
            "{}\n{}\n{}",
            stdout(&out),
            stderr(&out),
            all_files(&out_dir)
        );
        assert!(
            stderr(&out).contains("/auth/bearer"),
            "the -vv trace logs requests"
        );
        assert!(
            stderr(&out).contains("q=***"),
            "the secret query value is masked, not dropped"
        );
        for secret in [mock_api::TOKEN, "qk-0123456789-secret"] {
            assert!(
                !everything.contains(secret),
                "RUST_LOG={rust_log:?}: `{secret}` leaked:\n{everything}"
            );
        }
        // The server did receive them: the masking is ours, not a missing credential.
        let reqs = server.requests();
        assert!(
            reqs.iter()
                .any(|r| r.header("authorization") == Some(&format!("Bearer {}", mock_api::TOKEN)))
        );
        server.clear_requests();
    }
}
