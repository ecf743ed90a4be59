//! Airbyte low-code manifests run unchanged: `tests/airbyte/gen_manifest.yaml`
//! (every paginator kind against the mock API's `/gen` and `/stripe`
//! imitations) is synced as it is, and `import airbyte` writes the same
//! connector as our YAML, which validates and syncs the same records.

mod common;
use common::*;

fn manifest() -> std::path::PathBuf {
    repo_root().join("tests/airbyte/gen_manifest.yaml")
}

const GEN_STREAMS: [&str; 5] = [
    "offset_items",
    "page_items",
    "cursor_items",
    "link_items",
    "next_url_items",
];

fn check_records(dir: &std::path::Path) {
    let all: Vec<u64> = (1..=250).collect();
    for s in GEN_STREAMS {
        assert_eq!(ids(&read_jsonl(dir, s)), all, "stream {s}");
    }
    let customers = read_jsonl(dir, "customers");
    assert_eq!(customers.len(), 2345);
    assert!(customers.iter().all(|c| c["source"] == "stripe"));
}

/// `sync SPEC` against the mock's Stripe imitation, into `DIR/out` as JSON Lines.
fn sync_to_out(
    server: &mock_api::MockServer,
    dir: &std::path::Path,
    spec: &std::path::Path,
) -> std::process::Output {
    let dest = format!("jsonl:{}", dir.join("out").display());
    let base = format!("base_url={}", server.url());
    let key = format!("client_secret={}", mock_api::STRIPE_KEY);
    let spec = spec.to_str().unwrap();
    let args = [
        "sync", spec, "--set", &base, "--set", &key, "--dest", &dest, "--quiet",
    ];
    run(dir, &args, &[])
}

#[test]
fn a_manifest_syncs_as_it_is() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest();
    let out = sync_to_out(&server, tmp.path(), &m);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("6 of 7 streams translated"),
        "{}",
        stderr(&out)
    );
    check_records(&tmp.path().join("out"));
    let reqs = server.requests();
    let count = |p: &str| reqs.iter().filter(|r| r.path == p).count();
    assert_eq!(
        count("/gen/offset"),
        36,
        "250 records at 7 a page, the last one short"
    );
    assert_eq!(count("/gen/page"), 13);
    assert_eq!(count("/gen/cursor"), 7, "has_more is false on page 7");
    assert_eq!(count("/stripe/v1/customers"), 24);
}

#[test]
fn import_writes_a_connector_that_validates_and_syncs() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest();
    let yaml = tmp.path().join("gen.yaml");
    let out = run_ok(
        tmp.path(),
        &[
            "import",
            "airbyte",
            m.to_str().unwrap(),
            "-o",
            yaml.to_str().unwrap(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(
        err.contains("not translated: stream `xml_feed`: responses decoded by XmlDecoder"),
        "{err}"
    );
    assert!(err.contains("6 of 7 streams translated"), "{err}");
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        text.contains("base_url: \"{{ config.base_url }}\""),
        "{text}"
    );
    assert!(
        text.contains("xml_feed (manifest line"),
        "blocked streams are listed: {text}"
    );
    let v = run(tmp.path(), &["validate", yaml.to_str().unwrap()], &[]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    let out = sync_to_out(&server, tmp.path(), &yaml);
    assert!(out.status.success(), "{}", stderr(&out));
    check_records(&tmp.path().join("out"));
}

#[test]
fn a_file_that_is_no_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("x.yaml");
    std::fs::write(
        &f,
        "version: 1\nname: x\nbase_url: https://x\nstreams:\n  a: { path: /a }\n",
    )
    .unwrap();
    let out = run(tmp.path(), &["import", "airbyte", f.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not an Airbyte manifest"),
        "{}",
        stderr(&out)
    );
}

/// A manifest whose `url_base` is a template over config (Lever's picks
/// its sandbox or production host), run as an Airbyte source with no
/// `base_url` in the config: the manifest's own URL is used.
#[test]
fn airbyte_read_runs_a_manifest_whose_url_base_is_a_template() {
    let server = mock_api::MockServer::start(mock_api::MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("manifest.yaml");
    std::fs::write(
        &m,
        format!(
            r#"
version: 6.0.0
type: DeclarativeSource
check: {{ type: CheckStream, stream_names: [items] }}
spec:
  type: Spec
  connection_specification:
    type: object
    properties:
      environment: {{ type: string, enum: [Production, Sandbox], default: Sandbox }}
streams:
  - type: DeclarativeStream
    name: items
    primary_key: id
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "{{{{ 'https://sandbox.example.com' if config['environment'] == 'Sandbox' else '{}' }}}}"
        path: /gen/offset
      record_selector: {{ type: RecordSelector, extractor: {{ type: DpathExtractor, field_path: [data] }} }}
      paginator:
        type: DefaultPaginator
        page_token_option: {{ type: RequestOption, inject_into: request_parameter, field_name: offset }}
        page_size_option: {{ type: RequestOption, inject_into: request_parameter, field_name: limit }}
        pagination_strategy: {{ type: OffsetIncrement, page_size: 50 }}
"#,
            server.url()
        ),
    )
    .unwrap();
    let config = tmp.path().join("config.json");
    std::fs::write(&config, r#"{"environment": "Production"}"#).unwrap();
    let catalog = tmp.path().join("catalog.json");
    std::fs::write(
        &catalog,
        r#"{"streams": [{"stream": {"name": "items", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}"#,
    )
    .unwrap();
    let out = run(
        tmp.path(),
        &[
            "airbyte",
            m.to_str().unwrap(),
            "read",
            "--config",
            config.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let records = stdout(&out)
        .lines()
        .filter(|l| l.contains(r#""type":"RECORD""#))
        .count();
    assert_eq!(records, 250, "{}", stdout(&out));
}
