//! The authoring commands end to end against the mock API: `init` for every
//! pagination style (the spec it writes validates and syncs the whole
//! dataset), `list`, `check`, `discover`, `sync --dry-run` and `completions`.

mod common;
use common::*;
use mock_api::{HeaderStyle, MockConfig, MockServer, RateLimitMode};
use std::path::Path;
use std::time::Duration;

/// Runs `init NAME URL ARGS...` in `dir`; returns the file it wrote.
fn init(dir: &Path, name: &str, url: &str, args: &[&str]) -> String {
    let mut all = vec!["init", name, url];
    all.extend_from_slice(args);
    let out = run(dir, &all, &[]);
    assert_eq!(out.status.code(), Some(0), "init {url}: {}", stderr(&out));
    let path = dir.join("connectors").join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Syncs every stream of `name` into `dir/out`; returns the records of `stream`.
fn sync_all(dir: &Path, name: &str, stream: &str, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let dest = format!("jsonl:{}", dir.join("out").display());
    let out = run(dir, &["-q", "sync", name, "--dest", &dest], env);
    assert_eq!(out.status.code(), Some(0), "sync {name}: {}", stderr(&out));
    read_jsonl(&dir.join("out"), stream)
}

/// `init` on a mock endpoint writes a valid spec of the expected pagination
/// whose sync yields ids `1..=expected`, each once. Returns the YAML.
fn init_syncs_everything(path: &str, pagination: &str, stream: &str, expected: u64) -> String {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let yaml = init(tmp.path(), "api", &format!("{}{path}", server.url()), &[]);
    assert!(
        yaml.starts_with("# yaml-language-server: $schema=../schemas/connector.schema.json\n"),
        "{yaml}"
    );
    let spec = connector_spec::parse(&yaml, "api.yaml").unwrap_or_else(|d| panic!("{d:?}\n{yaml}"));
    let written = serde_json::to_value(&spec.pagination).unwrap();
    assert_eq!(written["type"], pagination, "{yaml}");
    let records = sync_all(tmp.path(), "api", stream, &[]);
    assert_eq!(ids(&records), (1..=expected).collect::<Vec<_>>(), "{yaml}");
    stable(&yaml, tmp.path())
}

#[test]
fn init_offset() {
    let yaml = init_syncs_everything("/gen/offset", "offset", "offset", 250);
    insta::assert_snapshot!("init_offset", yaml);
}

#[test]
fn init_page_number() {
    let yaml = init_syncs_everything("/gen/page", "page_number", "page", 250);
    insta::assert_snapshot!("init_page", yaml);
}

#[test]
fn init_cursor() {
    let yaml = init_syncs_everything("/gen/cursor", "cursor", "cursor", 250);
    insta::assert_snapshot!("init_cursor", yaml);
}

#[test]
fn init_cursor_header() {
    init_syncs_everything("/gen/cursor_header", "cursor", "cursor_header", 250);
}

#[test]
fn init_next_absolute() {
    init_syncs_everything("/gen/next_absolute", "next_url", "next_absolute", 250);
}

#[test]
fn init_next_relative() {
    init_syncs_everything("/gen/next_relative", "next_url", "next_relative", 250);
}

#[test]
fn init_link_header() {
    let yaml = init_syncs_everything("/gen/link", "link_header", "link", 250);
    insta::assert_snapshot!("init_link", yaml);
}

#[test]
fn init_odata() {
    let yaml = init_syncs_everything("/gen/odata", "next_url", "odata", 250);
    assert!(
        yaml.contains("next_url_path: \"$['@odata.nextLink']\""),
        "{yaml}"
    );
}

#[test]
fn init_single_object() {
    let yaml = init_syncs_everything("/gen/single", "none", "single", 1);
    insta::assert_snapshot!("init_single", yaml);
}

#[test]
fn init_json_server() {
    let yaml = init_syncs_everything("/posts", "offset", "posts", 100);
    assert!(yaml.contains("offset_param: _start"), "{yaml}");
    insta::assert_snapshot!("init_posts", yaml);
}

#[test]
fn init_keeps_credentials_out_of_the_file() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let bearer = format!("Authorization: Bearer {}", mock_api::TOKEN);
    let yaml = init(
        tmp.path(),
        "secured",
        &format!("{}/auth/bearer", server.url()),
        &["--header", &bearer, "--header", "Accept: application/json"],
    );
    assert!(!yaml.contains(mock_api::TOKEN), "{yaml}");
    let spec = connector_spec::parse(&yaml, "secured.yaml").unwrap();
    assert!(spec.config["api_token"].secret && spec.config["api_token"].default.is_none());
    assert_eq!(spec.headers["Accept"].as_str(), "application/json");
    let env = [("CONNECTOR_SECURED_API_TOKEN", mock_api::TOKEN)];
    assert_eq!(sync_all(tmp.path(), "secured", "bearer", &env).len(), 250);

    let url = format!(
        "{}/auth/api_key_query?api_key={}",
        server.url(),
        mock_api::API_KEY
    );
    let yaml = init(tmp.path(), "keyed", &url, &[]);
    assert!(!yaml.contains(mock_api::API_KEY), "{yaml}");
    assert!(yaml.contains("in: query"), "{yaml}");
    let env = [("CONNECTOR_KEYED_API_KEY", mock_api::API_KEY)];
    assert_eq!(
        sync_all(tmp.path(), "keyed", "api_key_query", &env).len(),
        250
    );
    insta::assert_snapshot!("init_api_key_query", stable(&yaml, tmp.path()));
}

#[test]
fn init_reports_rate_limits_and_refuses_to_overwrite() {
    let server = MockServer::start(
        MockConfig::default()
            .rate_limit(RateLimitMode::new(100, Duration::from_secs(1)).headers(HeaderStyle::Ietf)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/gen/cursor", server.url());
    let yaml = init(tmp.path(), "limited", &url, &[]);
    assert!(
        yaml.contains("rate_limit:\n  requests: \"100/s\""),
        "{yaml}"
    );

    let again = run(tmp.path(), &["init", "limited", &url], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    init(tmp.path(), "limited", &url, &["--force"]);
}

#[test]
fn init_explains_a_refused_request() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        tmp.path(),
        &["init", "nope", &format!("{}/auth/bearer", server.url())],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("init_401", stable(&stderr(&out), tmp.path()));
    assert!(!tmp.path().join("connectors/nope.yaml").exists());
}

/// A folder with jsonplaceholder (pointed at the mock) and a spec with a secret.
fn workspace(server: &MockServer) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let jp = std::fs::read_to_string(repo_root().join("connectors/jsonplaceholder.yaml"))
        .unwrap()
        .replace("https://jsonplaceholder.typicode.com", &server.url());
    write_spec(tmp.path(), "jsonplaceholder", &jp);
    write_spec(
        tmp.path(),
        "secured",
        &format!(
            r#"version: 1
name: secured
config:
  base_url: {{ default: "{}" }}
  api_token: {{ secret: true, required: true, description: Bearer token. }}
  api_key: {{ secret: true, env: SECURED_KEY }}
base_url: "{{{{ config.base_url }}}}"
auth: {{ type: bearer, token: "{{{{ config.api_token }}}}" }}
params:
  api_key: "{{{{ config.api_key }}}}"
pagination: {{ type: offset, page_size: 25, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
streams:
  items:
    path: /auth/bearer
  missing:
    path: /gen/nope
"#,
            server.url()
        ),
    );
    tmp
}

#[test]
fn list_shows_streams_and_config() {
    let server = MockServer::start(MockConfig::default());
    let tmp = workspace(&server);
    let out = run(tmp.path(), &["list"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("list", stable(&stdout(&out), tmp.path()));
}

#[test]
fn check_reports_each_stream() {
    let server = MockServer::start(MockConfig::default());
    let tmp = workspace(&server);
    let out = run(tmp.path(), &["check", "jsonplaceholder"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("check_ok", mask_ms(&stdout(&out)));
    // One request per stream, the child's for the first post.
    let paths: Vec<String> = server.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(paths.len(), 7, "{paths:?}");
    assert!(
        paths.contains(&"/posts/1/comments?_start=0&_limit=20".to_string()),
        "{paths:?}"
    );

    let env = [
        ("CONNECTOR_SECURED_API_TOKEN", "wr0ng-t0ken"),
        ("SECURED_KEY", "k3y-s3cret"),
    ];
    let out = run(tmp.path(), &["check", "secured"], &env);
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains("wr0ng-t0ken") && !all.contains("k3y-s3cret"),
        "{all}"
    );
    insta::assert_snapshot!("check_401_404", stable(&all, tmp.path()));

    let out = run(
        tmp.path(),
        &[
            "check",
            "secured",
            "items",
            "--set",
            &format!("api_token={}", mock_api::TOKEN),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(mask_ms(&stdout(&out)).starts_with("items: OK (25 records on the first page"));
}

#[test]
fn check_names_the_base_url_when_nothing_listens() {
    let server = MockServer::start(MockConfig::default());
    let tmp = workspace(&server);
    let out = run(
        tmp.path(),
        &[
            "check",
            "secured",
            "items",
            "--set",
            "base_url=http://127.0.0.1:1",
        ],
        &[("CONNECTOR_SECURED_API_TOKEN", "x"), ("SECURED_KEY", "y")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("hint: nothing listens there: check base_url `http://127.0.0.1:1/`"),
        "{text}"
    );
    assert!(text.contains("--set base_url="), "{text}");
}

#[test]
fn discover_infers_schemas() {
    let server = MockServer::start(MockConfig::default());
    let tmp = workspace(&server);
    let out = run(
        tmp.path(),
        &["discover", "jsonplaceholder", "users", "--write"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let written =
        std::fs::read_to_string(tmp.path().join("schemas/jsonplaceholder/users.json")).unwrap();
    let written: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(printed["users"], written);
    // The schema accepts every user.
    let validator = jsonschema::validator_for(&written).unwrap();
    for user in jsonplaceholder_db()["users"].as_array().unwrap() {
        assert!(validator.is_valid(user), "{user}");
    }
    insta::assert_snapshot!("discover_users", stdout(&out));

    // Two pages of posts: 40 records sampled.
    let out = run(
        tmp.path(),
        &["discover", "jsonplaceholder", "posts", "--pages", "2"],
        &[],
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        printed["posts"]["description"]
            .as_str()
            .unwrap()
            .contains("40 sampled")
    );
}

#[test]
fn dry_run_shows_first_requests_without_secrets_or_traffic() {
    let server = MockServer::start(MockConfig::default());
    let tmp = workspace(&server);
    let env = [
        ("CONNECTOR_SECURED_API_TOKEN", "t0ken-s3cret"),
        ("SECURED_KEY", "k3y-s3cret"),
    ];
    let out = run(tmp.path(), &["sync", "secured", "--dry-run"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains("t0ken-s3cret") && !all.contains("k3y-s3cret"),
        "{all}"
    );
    let out2 = run(
        tmp.path(),
        &[
            "sync",
            "jsonplaceholder",
            "posts",
            "post_comments",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(out2.status.code(), Some(0), "{}", stderr(&out2));
    assert_eq!(
        server.counters().total_requests,
        0,
        "a dry run sends nothing"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "a dry run writes nothing"
    );
    insta::assert_snapshot!(
        "dry_run",
        stable(&format!("{}\n{}", stdout(&out), stdout(&out2)), tmp.path())
    );
}

#[test]
fn completions_for_bash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(tmp.path(), &["completions", "bash"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let script = stdout(&out);
    // It calls the binary back for what to complete (run_output.rs runs it).
    assert!(
        script.contains("complete ") && script.contains("CONNECTOR_RUN_COMPLETE=\"bash\""),
        "{script}"
    );
}
