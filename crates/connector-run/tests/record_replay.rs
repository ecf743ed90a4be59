//! Record and replay (#14): a run's exchanges kept as cassettes, secrets
//! masked; a replay answers from them with the network gone and gives the
//! same records; `connector-run test` compares them with expected ones.

mod common;
use common::*;
use mock_api::{FaultConfig, FaultKind, MockConfig, MockServer};
use std::path::Path;

fn spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: rec
config:
  base_url: {{ default: "{base}" }}
  token: {{ secret: true }}
base_url: "{{{{ config.base_url }}}}"
auth: {{ type: bearer, token: "{{{{ config.token }}}}" }}
retry: {{ max_attempts: 5, backoff_base: 10ms }}
streams:
  items:
    path: /auth/bearer
    primary_key: id
    records: {{ path: $.data }}
    pagination: {{ type: offset, page_size: 40, stop: {{ total_path: $.total }} }}
"#
    )
}

fn cassette_text(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    all
}

#[test]
fn a_recorded_run_replays_offline_with_the_same_records() {
    // The first two requests fail (a 503, then a 500): the cassette keeps
    // them, and the replay retries through them without waiting.
    let server = MockServer::start(MockConfig {
        faults: FaultConfig::first(2, vec![FaultKind::Status503, FaultKind::Status500]),
        ..MockConfig::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "rec", &spec(&server.url()));
    let env = [("CONNECTOR_REC_TOKEN", mock_api::TOKEN)];
    run_ok(
        tmp.path(),
        &[
            "sync",
            "rec",
            "--dest",
            "jsonl:live",
            "--record",
            "cassettes",
        ],
        &env,
    );
    let live = read_jsonl(&tmp.path().join("live"), "items");
    assert_eq!(live.len(), 250);
    let tape = cassette_text(&tmp.path().join("cassettes"));
    assert_eq!(
        tape.lines().count(),
        7 + 2,
        "7 pages and 2 failures:\n{tape}"
    );
    assert!(
        !tape.contains(mock_api::TOKEN),
        "no credential in a cassette"
    );
    assert!(tape.contains("\"status\":503"));
    let requests = server.counters().main_requests;
    drop(server);

    // The network is gone: the replay answers every request.
    let o = run_ok(
        tmp.path(),
        &[
            "sync",
            "rec",
            "--dest",
            "jsonl:replayed",
            "--replay",
            "cassettes",
        ],
        &env,
    );
    assert_eq!(read_jsonl(&tmp.path().join("replayed"), "items"), live);
    assert!(stderr(&o).contains("items"), "{}", stderr(&o));
    assert!(requests >= 9);

    // A request the cassettes do not hold is an error that names it.
    let changed = spec("http://127.0.0.1:9").replace("page_size: 40", "page_size: 50");
    write_spec(tmp.path(), "rec", &changed);
    let o = run(
        tmp.path(),
        &[
            "sync",
            "rec",
            "--dest",
            "jsonl:bad",
            "--replay",
            "cassettes",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = error_lines(&o);
    assert!(
        err.contains("hold no response to GET http://127.0.0.1:9/auth/bearer?offset=0&limit=50"),
        "{err}"
    );
}

#[test]
fn oauth2_token_exchanges_are_recorded_masked_and_replayed() {
    let server = MockServer::start(MockConfig::default().oauth_salesforce(true));
    let login = server.url();
    let yaml = format!(
        r#"
version: 1
name: sf
config:
  client_id: {{ default: client-1 }}
  client_secret: {{ secret: true }}
  refresh: {{ secret: true }}
base_url: "https://placeholder.invalid"
auth:
  type: oauth2
  grant_type: refresh_token
  token_url: "{login}/oauth/token"
  client_id: "{{{{ config.client_id }}}}"
  client_secret: "{{{{ config.client_secret }}}}"
  refresh_token: "{{{{ config.refresh }}}}"
  base_url_path: $.instance_url
streams:
  items:
    path: /auth/oauth2
    records: {{ path: $.data }}
    pagination: {{ type: offset, page_size: 100, stop: {{ total_path: $.total }} }}
"#
    );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "sf", &yaml);
    let env = [
        ("CONNECTOR_SF_CLIENT_SECRET", mock_api::CLIENT_SECRET),
        ("CONNECTOR_SF_REFRESH", mock_api::REFRESH_TOKEN),
    ];
    run_ok(
        tmp.path(),
        &["sync", "sf", "--dest", "jsonl:live", "--record", "tape"],
        &env,
    );
    let tape = cassette_text(&tmp.path().join("tape"));
    assert!(tmp.path().join("tape/_auth.jsonl").exists());
    for secret in [mock_api::CLIENT_SECRET, mock_api::REFRESH_TOKEN] {
        assert!(!tape.contains(secret), "{secret} in the cassette:\n{tape}");
    }
    assert!(tape.contains("\"access_token\":\"***\""), "{tape}");
    drop(server);
    run_ok(
        tmp.path(),
        &["sync", "sf", "--dest", "jsonl:again", "--replay", "tape"],
        &env,
    );
    assert_eq!(
        read_jsonl(&tmp.path().join("again"), "items"),
        read_jsonl(&tmp.path().join("live"), "items")
    );
}

#[test]
fn the_test_command_compares_replayed_records_with_the_expected_ones() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "rec", &spec(&server.url()));
    let cassettes = tmp.path().join("tests/cassettes/rec");
    run_ok(
        tmp.path(),
        &[
            "sync",
            "rec",
            "--dest",
            "jsonl:live",
            "--record",
            cassettes.to_str().unwrap(),
        ],
        &[("CONNECTOR_REC_TOKEN", mock_api::TOKEN)],
    );
    drop(server);

    // No environment is read: the secret gets a placeholder.
    let o = run(tmp.path(), &["test", "rec", "--update"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "rec default: expected/ written (items 250)"
    );
    assert_eq!(
        std::fs::read_to_string(cassettes.join("expected/outcome.txt")).unwrap(),
        "items: 250 records, 7 requests, 0 retries (0 429s), ok\n"
    );
    let o = run(tmp.path(), &["test", "rec"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "rec default: ok (items 250)");

    // A changed record is a failure that shows it.
    let expected = cassettes.join("expected/items.jsonl");
    let text = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, text.replacen("item-3\"", "item-three\"", 1)).unwrap();
    let o = run(tmp.path(), &["test", "rec"], &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("rec default: FAILED") && out.contains("record 3 differs"),
        "{out}"
    );
    assert!(
        out.contains("item-three") && out.contains("\"item-3\""),
        "{out}"
    );

    // A scenario in a subfolder: an auth error as the API answers it.
    let auth = cassettes.join("auth_error");
    std::fs::create_dir_all(&auth).unwrap();
    let base = "http://127.0.0.1:1";
    std::fs::write(
        auth.join("items.json"),
        format!(
            r#"[{{"request": {{"method": "GET", "url": "{base}/auth/bearer?offset=0&limit=40"}},
                "response": {{"status": 401, "body": {{"error": "invalid token"}}}}}}]"#
        ),
    )
    .unwrap();
    std::fs::write(
        auth.join("config.json"),
        format!(r#"{{"base_url": "{base}"}}"#),
    )
    .unwrap();
    std::fs::write(&expected, text).unwrap();
    let o = run(tmp.path(), &["test", "rec", "--update"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let outcome = std::fs::read_to_string(auth.join("expected/outcome.txt")).unwrap();
    assert!(
        outcome.starts_with("items: 0 records, 1 requests, 0 retries (0 429s), FAILED: ")
            && outcome.contains("401"),
        "{outcome}"
    );
    let o = run(tmp.path(), &["test", "rec"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("rec auth_error: ok (items 0)"),
        "{}",
        stdout(&o)
    );
}
