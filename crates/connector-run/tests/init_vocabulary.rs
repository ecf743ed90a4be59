//! `init` proposes the newer vocabulary where the probed response shows it:
//! next links and tokens under names like Zendesk's `after_url` /
//! `after_cursor` with an end flag (`stop_path`), `response_state` for a
//! position meant for the next run, and `incremental:` (with its formats,
//! and `windows` as a comment) from a time bound in the URL. Every file
//! init writes is validated by `connector-run validate` and synced against
//! the mock API.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Runs `init NAME URL ARGS...` in `dir`; returns the file it wrote and
/// checks that `connector-run validate` accepts it.
fn init(dir: &Path, name: &str, url: &str, args: &[&str]) -> String {
    let mut all = vec!["init", name, url];
    all.extend_from_slice(args);
    let out = run(dir, &all, &[]);
    assert_eq!(out.status.code(), Some(0), "init {url}: {}", stderr(&out));
    let path = dir.join("connectors").join(format!("{name}.yaml"));
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    validate(dir, name, &yaml);
    yaml
}

fn validate(dir: &Path, name: &str, yaml: &str) {
    let out = run(dir, &["validate", name], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "validate {name}: {}{}\n{yaml}",
        stdout(&out),
        stderr(&out)
    );
}

/// Syncs `name` into `dir/<dest>`; returns the records of `stream`.
fn sync(dir: &Path, name: &str, dest: &str, stream: &str, env: &[(&str, &str)]) -> Vec<Value> {
    let to = format!("jsonl:{}", dir.join(dest).display());
    let out = run(dir, &["-q", "sync", name, "--dest", &to], env);
    assert_eq!(out.status.code(), Some(0), "sync {name}: {}", stderr(&out));
    read_jsonl(&dir.join(dest), stream)
}

fn spec_of(yaml: &str) -> connector_spec::Spec {
    connector_spec::parse(yaml, "init.yaml").unwrap_or_else(|d| panic!("{d:?}\n{yaml}"))
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unique_ids(records: &[Value]) -> usize {
    ids(records).into_iter().collect::<BTreeSet<u64>>().len()
}

/// Zendesk's incremental cursor export: `after_url` is followed until
/// `end_of_stream` is `true` (every ticket once, not the first 1,000),
/// `after_cursor` is kept as response state, and `start_time` (epoch
/// seconds in the URL) becomes the incremental bound.
#[test]
fn init_zendesk_incremental_export() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let credentials = base64(
        format!(
            "{}/token:{}",
            mock_api::ZENDESK_EMAIL,
            mock_api::ZENDESK_TOKEN
        )
        .as_bytes(),
    );
    let url = format!(
        "{}/api/v2/incremental/tickets/cursor.json?start_time=1704067200",
        server.url()
    );
    let header = format!("Authorization: Basic {credentials}");
    let yaml = init(tmp.path(), "zendesk", &url, &["--header", &header]);
    assert!(!yaml.contains(&credentials), "{yaml}");

    let spec = spec_of(&yaml);
    let name = spec.streams.keys().next().unwrap().clone();
    let env = [("CONNECTOR_ZENDESK_BASIC_CREDENTIALS", credentials.as_str())];
    let tickets = sync(tmp.path(), "zendesk", "out", &name, &env);
    assert_eq!(tickets.len(), 2345, "{yaml}");
    assert_eq!(unique_ids(&tickets), 2345, "every ticket exactly once");

    assert_eq!(name, "tickets", "named after the records' array");
    let stream = &spec.streams["tickets"];
    let pagination = serde_json::to_value(&spec.pagination).unwrap();
    assert_eq!(pagination["type"], "next_url", "{yaml}");
    assert_eq!(pagination["next_url_path"], "$.after_url", "{yaml}");
    assert_eq!(pagination["stop"]["stop_path"], "$.end_of_stream", "{yaml}");
    assert_eq!(
        stream.response_state["after_cursor"].as_str(),
        "$.after_cursor"
    );
    let inc = stream.incremental.as_ref().expect("an incremental block");
    assert_eq!(inc.cursor_field, "updated_at");
    assert_eq!(inc.param.as_deref(), Some("start_time"));
    assert_eq!(inc.request_format.as_deref(), Some("epoch"));
    assert!(!stream.params.contains_key("start_time"), "{yaml}");

    let requests: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/incremental/tickets/cursor.json")
        .map(|r| r.uri)
        .collect();
    // init: the first page and the `after_url` it confirmed; sync: 3 pages.
    assert_eq!(requests.len(), 5, "{requests:#?}");
    assert!(
        requests[2].contains("start_time=1704067200"),
        "{}",
        requests[2]
    );

    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/_state.json")).unwrap())
            .unwrap();
    let saved = &state["streams"]["tickets"]["values"]["after_cursor"];
    assert!(saved.is_string(), "{state}");

    // The comment's suggestion, applied: the next run continues from the
    // saved `after_cursor` and gets exactly what changed since.
    let continued = yaml
        .replace("      param: start_time\n", "")
        .replace(
            "    # primary_key:",
            "    params:\n      cursor: \"{{ state.after_cursor }}\"\n      start_time: \"{{ state.cursor if state.after_cursor is none else none }}\"\n    # primary_key:",
        );
    assert!(
        yaml.contains("    #       params:\n")
            && yaml.contains("    #         cursor: \"{{ state.after_cursor }}\"\n")
            && yaml.contains(
                "    #         start_time: \"{{ state.cursor if state.after_cursor is none else none }}\"\n"
            ),
        "{yaml}"
    );
    write_spec(tmp.path(), "zendesk", &continued);
    validate(tmp.path(), "zendesk", &continued);
    server.zendesk_touch(&[3, 200]);
    server.clear_requests();
    let all = sync(tmp.path(), "zendesk", "out", "tickets", &env);
    assert_eq!(ids(&all[2345..]), vec![3, 200], "only the changed tickets");
    let first = &server.requests()[0].uri;
    assert!(
        first.contains("cursor=") && !first.contains("start_time"),
        "{first}"
    );

    insta::assert_snapshot!("init_zendesk", stable(&yaml, tmp.path()));
}

/// Slack's `conversations.list`: the cursor in
/// `response_metadata.next_cursor`, `""` on the last page.
#[test]
fn init_slack_conversations_list() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("{}/api/conversations.list", server.url());
    let header = format!("Authorization: Bearer {}", mock_api::SLACK_TOKEN);
    let yaml = init(tmp.path(), "slack", &url, &["--header", &header]);
    assert!(!yaml.contains(mock_api::SLACK_TOKEN), "{yaml}");
    let spec = spec_of(&yaml);
    let pagination = serde_json::to_value(&spec.pagination).unwrap();
    assert_eq!(pagination["type"], "cursor", "{yaml}");
    assert_eq!(
        pagination["cursor_path"], "$.response_metadata.next_cursor",
        "{yaml}"
    );
    assert_eq!(pagination["cursor_param"], "cursor", "{yaml}");
    let stream = &spec.streams["channels"];
    assert!(stream.incremental.is_none() && stream.response_state.is_empty());

    let env = [("CONNECTOR_SLACK_API_TOKEN", mock_api::SLACK_TOKEN)];
    let channels = sync(tmp.path(), "slack", "out", "channels", &env);
    let ids: BTreeSet<&str> = channels.iter().map(|c| c["id"].as_str().unwrap()).collect();
    // Every public channel (the default `types`), each once.
    assert_eq!(channels.len(), 259);
    assert_eq!(ids.len(), 259);
    insta::assert_snapshot!("init_slack", stable(&yaml, tmp.path()));
}

/// A time range in the URL (`updated_since` and `updated_before`, RFC 3339)
/// and `updated_at` in the records: `incremental:` on `updated_at` sent as
/// `updated_since`, and a commented `windows` suggestion that validates
/// and syncs once uncommented.
#[test]
fn init_time_range_proposes_incremental_and_windows() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/gen/offset?updated_since=2024-01-01T02:00:00Z&updated_before=2024-01-01T03:00:00Z",
        server.url()
    );
    let yaml = init(tmp.path(), "gen", &url, &[]);
    let spec = spec_of(&yaml);
    let stream = &spec.streams["offset"];
    let inc = stream.incremental.as_ref().expect("an incremental block");
    assert_eq!(inc.cursor_field, "updated_at");
    assert_eq!(inc.param.as_deref(), Some("updated_since"));
    // The URL writes RFC 3339, as the records do: no formats to state.
    assert_eq!((&inc.cursor_format, &inc.request_format), (&None, &None));
    assert_eq!(
        spec.config["start_date"].default,
        Some("2024-01-01T02:00:00Z".into())
    );
    assert_eq!(
        stream.params["updated_before"].as_str(),
        "2024-01-01T03:00:00Z"
    );
    assert!(inc.windows.is_none(), "windows are only suggested");
    assert!(yaml.contains("      # windows: { step: 1d }\n"), "{yaml}");
    assert!(stream.response_state.is_empty());

    // Minutes 120 to 180 of the dataset; a second run finds nothing new
    // (the record at the saved cursor is not written again).
    let first = sync(tmp.path(), "gen", "out", "offset", &[]);
    assert_eq!(ids(&first), (120..=180).collect::<Vec<_>>(), "{yaml}");
    let again = sync(tmp.path(), "gen", "out", "offset", &[]);
    assert_eq!(again.len(), first.len());

    // Uncommented as the comment says: daily windows to now.
    let windowed = yaml
        .replace(
            "      # windows: { step: 1d }\n",
            "      windows: { step: 1d }\n",
        )
        .replace(
            "updated_before: \"2024-01-01T03:00:00Z\"",
            "updated_before: \"{{ window.end }}\"",
        );
    assert_ne!(windowed, yaml);
    write_spec(tmp.path(), "gen", &windowed);
    validate(tmp.path(), "gen", &windowed);
    let all = sync(tmp.path(), "gen", "windowed", "offset", &[]);
    assert_eq!(ids(&all), (120..=250).collect::<Vec<_>>());

    insta::assert_snapshot!("init_time_range", stable(&yaml, tmp.path()));
}

/// Shopify's and HubSpot's own rate-limit headers become `custom_headers`
/// (init's `validate` accepts them). HubSpot's interval is in its headers,
/// so that sync then paces itself by them (at most 2 refusals); Shopify's
/// bucket drains in 20 s on every plan, which is what init writes, so the
/// mock's faster bucket is not synced here (`rate_limits.rs` covers the
/// pacing).
#[test]
fn init_reads_shopify_and_hubspot_rate_headers() {
    use mock_api::{HeaderStyle, RateLimitAlgorithm, RateLimitMode};
    for (style, expect) in [
        (
            HeaderStyle::Shopify,
            "- { used_of_limit: X-Shopify-Shop-Api-Call-Limit, window: 20s }",
        ),
        (
            HeaderStyle::HubSpot,
            "- { remaining: X-HubSpot-RateLimit-Remaining, limit: X-HubSpot-RateLimit-Max, window: 500ms }",
        ),
    ] {
        let server = MockServer::start(MockConfig {
            generated_records: 300,
            rate_limit: Some(
                RateLimitMode::new(10, std::time::Duration::from_millis(500))
                    .algorithm(RateLimitAlgorithm::FixedWindow)
                    .headers(style),
            ),
            ..MockConfig::default()
        });
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("{}/gen/offset?limit=5", server.url());
        let yaml = init(tmp.path(), "shop", &url, &[]);
        assert!(
            yaml.contains("  custom_headers:\n    ") && yaml.contains(expect),
            "{style:?}:\n{yaml}"
        );
        if style == HeaderStyle::HubSpot {
            let before = server.counters().rate_limited;
            let got = sync(tmp.path(), "shop", "out", "offset", &[]);
            assert_eq!(unique_ids(&got), 300);
            let refused = server.counters().rate_limited - before;
            assert!(refused <= 2, "{refused} refusals");
        }
    }
}
