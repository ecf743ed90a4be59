//! Every auth scheme against the mock; credentials only to the API's origin.

mod common;
use common::*;
use mock_api::{MockConfig, MockServer, Origin};
use std::time::Duration;

fn spec(base: &str) -> String {
    format!(
        r#"
version: 1
name: authy
config:
  base_url: {{ default: "{base}" }}
  token: {{ secret: true }}
  api_key: {{ secret: true }}
  user: {{ default: user }}
  password: {{ secret: true }}
  client_id: {{ default: client-1 }}
  client_secret: {{ secret: true }}
base_url: "{{{{ config.base_url }}}}"
pagination: {{ type: offset, page_size: 50, stop: {{ total_path: $.total }} }}
records: {{ path: $.data }}
streams:
  items:
    path: /auth/PATH
"#
    )
}

fn with_auth(base: &str, path: &str, auth: &str) -> String {
    format!("{}auth: {auth}\n", spec(base).replace("PATH", path))
}

const SECRETS: &[(&str, &str)] = &[
    ("CONNECTOR_AUTHY_TOKEN", mock_api::TOKEN),
    ("CONNECTOR_AUTHY_API_KEY", mock_api::API_KEY),
    ("CONNECTOR_AUTHY_PASSWORD", mock_api::BASIC_PASS),
    ("CONNECTOR_AUTHY_CLIENT_SECRET", mock_api::CLIENT_SECRET),
];

fn sync(server: &MockServer, path: &str, auth: &str) -> (std::process::Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &with_auth(&server.url(), path, auth));
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let out = run(
        tmp.path(),
        &["sync", "authy", "--dest", &dest, "-vv"],
        SECRETS,
    );
    (out, tmp)
}

fn assert_all_records(server: &MockServer, path: &str, auth: &str) {
    let (out, tmp) = sync(server, path, auth);
    assert!(out.status.success(), "{path}: {}", stderr(&out));
    assert_eq!(
        ids(&read_jsonl(&tmp.path().join("out"), "items")),
        (1..=250).collect::<Vec<u64>>(),
        "{path}"
    );
    let logs = format!("{}{}", stderr(&out), stdout(&out));
    for (_, secret) in SECRETS {
        assert!(
            !logs.contains(secret),
            "{path}: secret leaked into the -vv output:\n{logs}"
        );
    }
}

#[test]
fn every_static_scheme_authenticates() {
    let server = MockServer::start(MockConfig::default());
    assert_all_records(
        &server,
        "bearer",
        r#"{ type: bearer, token: "{{ config.token }}" }"#,
    );
    assert_all_records(
        &server,
        "api_key_header",
        r#"{ type: api_key, name: X-API-Key, value: "{{ config.api_key }}" }"#,
    );
    assert_all_records(
        &server,
        "api_key_query",
        r#"{ type: api_key, in: query, name: api_key, value: "{{ config.api_key }}" }"#,
    );
    assert_all_records(
        &server,
        "basic",
        r#"{ type: basic, username: "{{ config.user }}", password: "{{ config.password }}" }"#,
    );
    assert_all_records(
        &server,
        "custom",
        r#"{ type: custom_header, name: X-Custom-Auth, value: "Token {{ config.api_key }}" }"#,
    );
    assert_eq!(server.counters().auth_failures, 0);
}

#[test]
fn wrong_credentials_fail_fast_with_an_auth_hint() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "authy",
        &with_auth(
            &server.url(),
            "bearer",
            r#"{ type: bearer, token: "{{ config.token }}" }"#,
        ),
    );
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let out = run(
        tmp.path(),
        &["sync", "authy", "--dest", &dest],
        &[("CONNECTOR_AUTHY_TOKEN", "wrong-token-value")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = error_lines(&out);
    assert!(
        err.contains("HTTP 401") && err.contains("check the credentials"),
        "{err}"
    );
    assert!(!err.contains("wrong-token-value"));
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[test]
fn missing_secret_is_a_usage_error_before_any_request() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let yaml = with_auth(
        &server.url(),
        "bearer",
        r#"{ type: bearer, token: "{{ config.token }}" }"#,
    )
    .replace(
        "token: { secret: true }",
        "token: { secret: true, required: true }",
    );
    write_spec(tmp.path(), "authy", &yaml);
    let out = run(tmp.path(), &["sync", "authy", "--dest", "-"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing required `token`: set $CONNECTOR_AUTHY_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn oauth2_fetches_caches_and_refreshes_tokens() {
    // Tokens live 2s and are refreshed 1s before expiry; 26 pages at 120ms of
    // latency outlast several tokens.
    let server = MockServer::start(MockConfig {
        oauth_token_ttl: Duration::from_secs(2),
        latency: Duration::from_millis(120),
        ..MockConfig::default()
    });
    let base = server.url();
    let auth = format!(
        r#"{{ type: oauth2, grant_type: client_credentials, token_url: "{base}/oauth/token", client_id: "{{{{ config.client_id }}}}", client_secret: "{{{{ config.client_secret }}}}", refresh_before: 1s }}"#
    );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(
        tmp.path(),
        "authy",
        &with_auth(&base, "oauth2", &auth).replace("page_size: 50", "page_size: 10"),
    );
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let out = run_ok(
        tmp.path(),
        &["sync", "authy", "--dest", &dest, "-vv"],
        SECRETS,
    );
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let c = server.counters();
    assert!(
        c.tokens_issued >= 2,
        "the token was refreshed before expiry: {c:?}"
    );
    assert!(
        c.tokens_issued * 3 <= c.main_requests,
        "tokens are cached, not fetched per request: {c:?}"
    );
    assert_eq!(c.auth_failures, 0, "no request used an expired token");
    assert!(!stderr(&out).contains(mock_api::CLIENT_SECRET));
}

#[test]
fn oauth2_refresh_token_grant() {
    let server = MockServer::start(MockConfig::default());
    let base = server.url();
    let yaml = spec(&base).replace("PATH", "oauth2").replace(
        "client_secret: { secret: true }",
        "client_secret: { secret: true }\n  refresh: { secret: true }",
    ) + &format!(
        "auth: {{ type: oauth2, grant_type: refresh_token, token_url: \"{base}/oauth/token\", client_id: \"{{{{ config.client_id }}}}\", client_secret: \"{{{{ config.client_secret }}}}\", refresh_token: \"{{{{ config.refresh }}}}\" }}\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &yaml);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    let mut env = SECRETS.to_vec();
    env.push(("CONNECTOR_AUTHY_REFRESH", mock_api::REFRESH_TOKEN));
    run_ok(tmp.path(), &["sync", "authy", "--dest", &dest], &env);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    assert_eq!(server.counters().tokens_issued, 1);
}

#[test]
fn credentials_never_go_to_another_origin() {
    let server = MockServer::start(MockConfig::default());
    // A next URL on another host: records arrive, without the Authorization header.
    let tmp = tempfile::tempdir().unwrap();
    let yaml = spec(&server.url())
        .replace("/auth/PATH", "/auth/next_other")
        .replace(
            "pagination: { type: offset, page_size: 50, stop: { total_path: $.total } }",
            "pagination: { type: next_url, next_url_path: $.links.next }",
        )
        + "auth: { type: bearer, token: \"{{ config.token }}\" }\n";
    write_spec(tmp.path(), "authy", &yaml);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    run_ok(tmp.path(), &["sync", "authy", "--dest", &dest], SECRETS);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let reqs = server.requests();
    let other: Vec<_> = reqs.iter().filter(|r| r.origin == Origin::Other).collect();
    assert!(
        !other.is_empty(),
        "pages were fetched from the other origin"
    );
    assert!(
        other.iter().all(|r| r.header("authorization").is_none()),
        "no credentials to another origin"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.origin == Origin::Main)
            .all(|r| r.header("authorization").is_some())
    );

    // A redirect to another host is not followed.
    server.clear_requests();
    let (out, _tmp) = sync(
        &server,
        "redirect_other",
        r#"{ type: bearer, token: "{{ config.token }}" }"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        error_lines(&out).contains("redirect to another origin"),
        "{}",
        stderr(&out)
    );
    assert!(
        server.requests().iter().all(|r| r.origin == Origin::Main),
        "the other origin got nothing"
    );
}

#[test]
fn same_origin_redirects_are_followed_and_bodies_are_gzipped() {
    let server = MockServer::start(MockConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let yaml = spec(&server.url()).replace("/auth/PATH", "/redirect/same");
    write_spec(tmp.path(), "authy", &yaml);
    let dest = format!("jsonl:{}", tmp.path().join("out").display());
    run_ok(tmp.path(), &["sync", "authy", "--dest", &dest], &[]);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.path == "/redirect/same")
            && reqs.iter().any(|r| r.path == "/gen/offset")
    );
    let data: Vec<_> = reqs.iter().filter(|r| r.path == "/gen/offset").collect();
    assert!(data.iter().all(|r| {
        r.header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"))
    }));
    assert!(
        data.iter().all(|r| r.response_gzip),
        "responses arrived gzipped and were decoded"
    );
}

/// Datadog's two keys as one `headers` block: both arrive, both are
/// secrets (never in the -vv output), and neither goes to another origin.
#[test]
fn several_secret_headers() {
    let server = MockServer::start(MockConfig::default());
    let yaml = spec(&server.url()).replace("PATH", "datadog").replace(
        "client_secret: { secret: true }",
        "client_secret: { secret: true }\n  app_key: { secret: true }",
    ) + "auth: { type: headers, headers: { DD-API-KEY: \"{{ config.api_key }}\", DD-APPLICATION-KEY: \"{{ config.app_key }}\" } }\n";
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &yaml);
    let mut env = SECRETS.to_vec();
    env.push(("CONNECTOR_AUTHY_APP_KEY", mock_api::DD_APPLICATION_KEY));
    let out = run_ok(
        tmp.path(),
        &["sync", "authy", "--dest", "jsonl:out", "-vv"],
        &env,
    );
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let logs = stderr(&out);
    assert!(
        !logs.contains(mock_api::DD_APPLICATION_KEY) && !logs.contains(mock_api::API_KEY),
        "{logs}"
    );
    assert_eq!(server.counters().auth_failures, 0);

    // A wrong application key is Datadog's 403, an error that names it.
    env.pop();
    env.push(("CONNECTOR_AUTHY_APP_KEY", "wrong-app-key"));
    let out = run(tmp.path(), &["sync", "authy", "--dest", "jsonl:bad"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-app-key"), "{}", stderr(&out));
}

/// `client_secret_basic`: the client authenticates with HTTP Basic, so the
/// secret is not in the form; `token_headers` go to the token endpoint only.
#[test]
fn oauth2_client_secret_basic_and_token_headers() {
    let server = MockServer::start(MockConfig::default());
    let base = server.url();
    let yaml = spec(&base).replace("PATH", "oauth2")
        + &format!(
            "auth: {{ type: oauth2, grant_type: client_credentials, token_url: \"{base}/oauth/token\", client_id: \"{{{{ config.client_id }}}}\", client_secret: \"{{{{ config.client_secret }}}}\", client_auth: client_secret_basic, token_headers: {{ X-Tenant: acme }} }}\n"
        );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &yaml);
    run_ok(
        tmp.path(),
        &["sync", "authy", "--dest", "jsonl:out"],
        SECRETS,
    );
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let reqs = server.requests();
    let token: Vec<_> = reqs.iter().filter(|r| r.path == "/oauth/token").collect();
    assert_eq!(token.len(), 1);
    let body = token[0].body.clone().unwrap_or_default();
    assert!(
        !body.contains("client_secret") && !body.contains(mock_api::CLIENT_SECRET),
        "{body}"
    );
    assert!(
        token[0]
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))
    );
    assert_eq!(token[0].header("x-tenant"), Some("acme"));
    assert!(
        reqs.iter()
            .filter(|r| r.path == "/auth/oauth2")
            .all(|r| r.header("x-tenant").is_none()
                && r.header("authorization")
                    .is_some_and(|a| a.starts_with("Bearer "))),
        "the API gets the access token, not the token endpoint's headers"
    );
}

/// Salesforce: the token response names the org's own host
/// (`instance_url`); requests go there with the access token, the login
/// host gets only the client credentials, and the base_url's own host is
/// never contacted.
#[test]
fn oauth2_token_response_names_the_base_url() {
    let server = MockServer::start(MockConfig::default().oauth_salesforce(true));
    let login = server.url();
    let yaml = spec("https://placeholder.invalid")
        .replace("PATH", "oauth2")
        .replace(
            "client_secret: { secret: true }",
            "client_secret: { secret: true }\n  refresh: { secret: true }",
        )
        + &format!(
            "auth: {{ type: oauth2, grant_type: refresh_token, token_url: \"{login}/oauth/token\", client_id: \"{{{{ config.client_id }}}}\", client_secret: \"{{{{ config.client_secret }}}}\", refresh_token: \"{{{{ config.refresh }}}}\", base_url_path: $.instance_url }}\n"
        );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &yaml);
    let mut env = SECRETS.to_vec();
    env.push(("CONNECTOR_AUTHY_REFRESH", mock_api::REFRESH_TOKEN));
    run_ok(tmp.path(), &["sync", "authy", "--dest", "jsonl:out"], &env);
    assert_eq!(read_jsonl(&tmp.path().join("out"), "items").len(), 250);
    let reqs = server.requests();
    let data: Vec<_> = reqs.iter().filter(|r| r.path == "/auth/oauth2").collect();
    assert!(!data.is_empty());
    assert!(
        data.iter().all(|r| r.origin == Origin::Other),
        "the org's host serves the API"
    );
    assert!(data.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    }));
    let token: Vec<_> = reqs.iter().filter(|r| r.path == "/oauth/token").collect();
    assert!(
        token
            .iter()
            .all(|r| r.origin == Origin::Main && r.header("authorization").is_none())
    );
    assert!(
        data.iter().all(|r| !r
            .body
            .clone()
            .unwrap_or_default()
            .contains(mock_api::CLIENT_SECRET)
            && !r.uri.contains(mock_api::CLIENT_SECRET)),
        "the client secret goes to the login host only"
    );
    // `check` finds the org's host too.
    let out = run(tmp.path(), &["check", "authy"], &env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// A provider that rotates refresh tokens voids each one it replaces: the
/// new one is used for the next refresh in the run and kept in
/// `refresh_token_file` (mode 0600), which the next run reads first.
#[test]
fn oauth2_rotated_refresh_tokens_are_kept_in_a_file() {
    let server = MockServer::start(
        MockConfig::default()
            .oauth_rotate_refresh_tokens(true)
            .oauth_token_ttl(Duration::from_secs(3600)),
    );
    let base = server.url();
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("refresh_token");
    let yaml = spec(&base).replace("PATH", "oauth2").replace(
        "client_secret: { secret: true }",
        "client_secret: { secret: true }\n  refresh: { secret: true }",
    ) + &format!(
        "auth: {{ type: oauth2, grant_type: refresh_token, token_url: \"{base}/oauth/token\", client_id: \"{{{{ config.client_id }}}}\", client_secret: \"{{{{ config.client_secret }}}}\", refresh_token: \"{{{{ config.refresh }}}}\", refresh_token_file: \"{}\" }}\n",
        kept.display()
    );
    write_spec(tmp.path(), "authy", &yaml);
    let mut env = SECRETS.to_vec();
    env.push(("CONNECTOR_AUTHY_REFRESH", mock_api::REFRESH_TOKEN));
    for run_no in 1..=3 {
        let out = run(
            tmp.path(),
            &[
                "sync",
                "authy",
                "--dest",
                &format!("jsonl:out{run_no}"),
                "-vv",
            ],
            &env,
        );
        assert!(out.status.success(), "run {run_no}: {}", stderr(&out));
        assert_eq!(
            read_jsonl(&tmp.path().join(format!("out{run_no}")), "items").len(),
            250
        );
        let saved = std::fs::read_to_string(&kept).unwrap();
        let saved = saved.trim();
        assert!(
            saved.starts_with("refresh-") && saved != mock_api::REFRESH_TOKEN,
            "{saved}"
        );
        assert!(
            !stderr(&out).contains(saved),
            "the rotated token is a secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    assert_eq!(
        server.counters().tokens_issued,
        3,
        "each run refreshed with the kept token"
    );

    // Without the file, a second run has only the voided token: it fails,
    // naming the token endpoint's answer.
    let yaml = yaml.replace(&format!(", refresh_token_file: \"{}\"", kept.display()), "");
    write_spec(tmp.path(), "authy", &yaml);
    let out = run(tmp.path(), &["sync", "authy", "--dest", "jsonl:x"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_grant"), "{}", stderr(&out));
}

/// `select` picks an auth block by config: the token when given, else the
/// client-credentials grant (Microsoft Graph's two ways in).
#[test]
fn select_picks_an_auth_block_by_config() {
    let server = MockServer::start(MockConfig::default());
    let base = server.url();
    let yaml = spec(&base)
        .replace(
            "token: { secret: true }",
            "token: { secret: true, required: false }",
        )
        .replace(
            "path: /auth/PATH",
            "path: \"/auth/{{ 'bearer' if config.token else 'oauth2' }}\"",
        )
        + &format!(
            r#"auth:
  type: select
  value: "{{{{ 'token' if config.token else 'app' }}}}"
  options:
    token: {{ type: bearer, token: "{{{{ config.token }}}}" }}
    app: {{ type: oauth2, grant_type: client_credentials, token_url: "{base}/oauth/token", client_id: "{{{{ config.client_id }}}}", client_secret: "{{{{ config.client_secret }}}}" }}
"#
        );
    let tmp = tempfile::tempdir().unwrap();
    write_spec(tmp.path(), "authy", &yaml);
    let o = run(tmp.path(), &["validate", "authy"], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // With the token: bearer, no token request.
    run_ok(tmp.path(), &["sync", "authy", "--dest", "jsonl:a"], SECRETS);
    assert_eq!(read_jsonl(&tmp.path().join("a"), "items").len(), 250);
    assert_eq!(server.counters().tokens_issued, 0);
    // Without it: the client-credentials grant.
    let no_token: Vec<(&str, &str)> = SECRETS
        .iter()
        .copied()
        .filter(|(k, _)| *k != "CONNECTOR_AUTHY_TOKEN")
        .collect();
    run_ok(
        tmp.path(),
        &["sync", "authy", "--dest", "jsonl:b"],
        &no_token,
    );
    assert_eq!(read_jsonl(&tmp.path().join("b"), "items").len(), 250);
    assert_eq!(server.counters().tokens_issued, 1);

    // A value that names no option is a config error before any request.
    let bad = yaml.replace(
        "'token' if config.token else 'app'",
        "'tokn' if config.token else 'app'",
    );
    write_spec(tmp.path(), "authy", &bad);
    server.clear_requests();
    let o = run(tmp.path(), &["sync", "authy", "--dest", "jsonl:c"], SECRETS);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("auth.value renders to `tokn`, which is not one of the options (token, app)"),
        "{}",
        stderr(&o)
    );
    assert!(server.requests().is_empty());
}
