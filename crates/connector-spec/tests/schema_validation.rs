//! The valid fixtures parse, and the published JSON Schema (what editors check
//! connector files with) agrees with the parser: it accepts every valid
//! fixture and every shipped connector, and rejects the structurally invalid
//! fixtures. Semantic problems (JSONPaths, templates, parents, durations, ...)
//! are beyond a JSON Schema, so those fixtures must pass it.

use connector_spec::{Auth, Pagination, Spec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(file name, text)` of every `.yaml` file in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yaml files in {}", dir.display());
    files
}

fn valid_fixtures() -> Vec<(String, String)> {
    yaml_files(&repo().join("tests/fixtures/valid"))
}

fn invalid_fixtures() -> Vec<(String, String)> {
    yaml_files(&repo().join("tests/fixtures/invalid"))
}

fn connectors() -> Vec<(String, String)> {
    yaml_files(&repo().join("connectors"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&connector_spec::json_schema())
        .expect("the generated schema compiles as draft 2020-12")
}

fn to_json(name: &str, text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"))
}

fn schema_errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn render(diags: &[connector_spec::Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fixtures the schema must reject: their problem is one of structure
/// (unknown key, wrong type, missing required field, unknown `type` tag, a
/// value outside an enum).
const SCHEMA_REJECTS: &[&str] = &[
    "01_unknown_top_level_key.yaml",
    "02_unknown_stream_key.yaml",
    "03_string_where_integer.yaml",
    "04_missing_base_url.yaml",
    "05_missing_stream_path.yaml",
    "06_unknown_pagination_type.yaml",
    "07_auth_missing_type.yaml",
    "17_duration_without_unit.yaml",
    "19_rate_without_period.yaml",
    "37_method_typo.yaml",
    "38_api_key_in_typo.yaml",
    "39_several_structural_problems.yaml",
    "48_status_out_of_range.yaml",
    "51_streams_is_a_list.yaml",
    "52_negative_integer.yaml",
    "53_unknown_stop_key.yaml",
    "54_missing_next_url_path.yaml",
    "57_action_typo.yaml",
    "60_auth_not_a_mapping.yaml",
    "69_structural_and_semantic.yaml",
];

/// Fixtures that are not a single YAML document at all (or are refused by the
/// YAML reader's budget), so there is nothing to hand to the schema.
const NOT_YAML: &[&str] = &[
    "21_yaml_syntax_error.yaml",
    "22_tab_indentation.yaml",
    "23_duplicate_keys.yaml",
    "24_empty_file.yaml",
    "25_comment_only.yaml",
    "26_alias_bomb.yaml",
    "59_two_documents.yaml",
];

#[test]
fn valid_fixtures_parse() {
    let mut failures = Vec::new();
    for (name, text) in valid_fixtures() {
        let file = format!("tests/fixtures/valid/{name}");
        if let Err(diags) = connector_spec::parse(&text, &file) {
            failures.push(render(&diags));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_name_the_schema() {
    let first = "# yaml-language-server: $schema=../../../schemas/connector.schema.json\n";
    let dir = repo().join("tests/fixtures/valid");
    assert!(
        dir.join("../../../schemas/connector.schema.json").exists(),
        "the schema comment must point at schemas/connector.schema.json"
    );
    for (name, text) in valid_fixtures() {
        assert!(text.starts_with(first), "{name} must start with {first:?}");
    }
}

#[test]
fn valid_fixtures_cover_every_auth_and_pagination_type() {
    let mut auth = BTreeSet::new();
    let mut pagination = BTreeSet::new();
    let mut api_key_in = BTreeSet::new();
    let mut oauth_grants = BTreeSet::new();
    let mut cursor_sources = BTreeSet::new();
    let mut cursor_targets = BTreeSet::new();
    let mut grandchildren = false;
    let mut post = false;
    for (name, text) in valid_fixtures() {
        let spec: Spec =
            connector_spec::parse(&text, &name).unwrap_or_else(|d| panic!("{}", render(&d)));
        auth.insert(spec.auth.type_name());
        match &spec.auth {
            Auth::ApiKey { location, .. } => {
                api_key_in.insert(format!("{location:?}"));
            }
            Auth::Oauth2 { grant_type, .. } => {
                oauth_grants.insert(format!("{grant_type:?}"));
            }
            _ => {}
        }
        for stream in spec.streams.values() {
            let p = spec.pagination_of(stream);
            pagination.insert(p.type_name());
            if let Pagination::Cursor {
                cursor_path,
                cursor_header,
                send_in,
                ..
            } = p
            {
                cursor_sources.insert(if cursor_path.is_some() {
                    "path"
                } else {
                    "header"
                });
                assert!(cursor_path.is_some() != cursor_header.is_some());
                cursor_targets.insert(format!("{send_in:?}"));
            }
            post |= stream.method == connector_spec::Method::Post;
            let grandparent = stream
                .parent
                .as_ref()
                .and_then(|p| spec.streams[p].parent.as_ref());
            grandchildren |= grandparent.is_some();
        }
    }
    let want = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let got = |xs: &BTreeSet<&str>| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        got(&auth),
        want(&[
            "none",
            "bearer",
            "api_key",
            "basic",
            "oauth2",
            "custom_header"
        ])
    );
    assert_eq!(
        got(&pagination),
        want(&[
            "none",
            "offset",
            "page_number",
            "cursor",
            "next_url",
            "link_header"
        ])
    );
    assert_eq!(api_key_in, want(&["Header", "Query"]));
    assert_eq!(oauth_grants, want(&["ClientCredentials", "RefreshToken"]));
    assert_eq!(got(&cursor_sources), want(&["header", "path"]));
    assert_eq!(cursor_targets, want(&["Body", "Header", "Query"]));
    assert!(grandchildren, "no fixture nests streams three deep");
    assert!(post, "no fixture has a POST stream");
}

#[test]
fn schema_accepts_valid_fixtures_and_connectors() {
    let v = validator();
    let mut failures = Vec::new();
    let files = valid_fixtures()
        .into_iter()
        .map(|(n, t)| (format!("tests/fixtures/valid/{n}"), t))
        .chain(
            connectors()
                .into_iter()
                .map(|(n, t)| (format!("connectors/{n}"), t)),
        );
    for (name, text) in files {
        let errors = schema_errors(&v, &to_json(&name, &text));
        if !errors.is_empty() {
            failures.push(format!("{name}:\n  {}", errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn schema_rejects_structurally_invalid_fixtures() {
    let v = validator();
    let names: BTreeSet<String> = invalid_fixtures().into_iter().map(|(n, _)| n).collect();
    for listed in SCHEMA_REJECTS.iter().chain(NOT_YAML) {
        assert!(
            names.contains(*listed),
            "{listed} is listed here but not in tests/fixtures/invalid"
        );
    }
    let mut failures = Vec::new();
    for (name, text) in invalid_fixtures() {
        if NOT_YAML.contains(&name.as_str()) {
            continue;
        }
        let valid = v.is_valid(&to_json(&name, &text));
        if SCHEMA_REJECTS.contains(&name.as_str()) && valid {
            failures.push(format!("{name}: the schema accepts it but must reject it"));
        }
        if !SCHEMA_REJECTS.contains(&name.as_str()) && !valid {
            // A semantic-only fixture: the schema must not refuse it, or the
            // editor and the parser disagree about what is structural.
            failures.push(format!(
                "{name}: the schema rejects it, but it is listed as semantic-only:\n  {}",
                schema_errors(&v, &to_json(&name, &text)).join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn not_yaml_fixtures_are_refused_by_the_yaml_reader() {
    for name in NOT_YAML {
        let text =
            std::fs::read_to_string(repo().join("tests/fixtures/invalid").join(name)).unwrap();
        let diags = connector_spec::parse(&text, name).unwrap_err();
        assert_eq!(diags.len(), 1, "{name}: {}", render(&diags));
        let m = &diags[0].message;
        assert!(
            m.starts_with("invalid YAML:") || m == "the file is empty",
            "{name}: {m}"
        );
    }
}
