//! Whole-manifest tests: each component kind, blocked streams with their
//! positions, and the YAML round trip.

use super::*;

const HEAD: &str = r#"version: 6.1.0
type: DeclarativeSource
check: { type: CheckStream, stream_names: [a] }
spec:
  type: Spec
  connection_specification:
    type: object
    required: [api_key, start_date]
    properties:
      api_key: { type: string, airbyte_secret: true }
      start_date: { type: string }
      repos: { type: array }
definitions:
  requester:
    type: HttpRequester
    url_base: https://api.example.com/v1
    authenticator: { type: BearerAuthenticator, api_token: "{{ config['api_key'] }}" }
  selector:
    type: RecordSelector
    extractor: { type: DpathExtractor, field_path: [data] }
streams:
"#;

fn manifest(streams: &str) -> String {
    format!("{HEAD}{streams}")
}

fn stream_yaml(name: &str, extra_retriever: &str, extra_stream: &str) -> String {
    format!(
        "  - type: DeclarativeStream\n    name: {name}\n    primary_key: id\n{extra_stream}    retriever:\n      type: SimpleRetriever\n      requester: {{ $ref: \"#/definitions/requester\", path: /{name} }}\n      record_selector: {{ $ref: \"#/definitions/selector\" }}\n{extra_retriever}"
    )
}

fn translate_ok(text: &str) -> Translation {
    match translate(text, "source-example/manifest.yaml") {
        Ok(t) => t,
        Err(e) => panic!("{e}\n{}", e.yaml.clone().unwrap_or_default()),
    }
}

fn stream_json(t: &Translation, name: &str) -> J {
    serde_json::to_value(&t.spec.streams[name]).unwrap()
}

#[test]
fn a_plain_stream_and_the_connector() {
    let t = translate_ok(&manifest(&stream_yaml("users", "", "")));
    assert_eq!(t.spec.name, "example");
    assert_eq!(t.spec.base_url.as_str(), "{{ config.base_url }}");
    assert_eq!(
        t.spec.config["base_url"].default,
        Some(json!("https://api.example.com/v1"))
    );
    assert!(t.spec.config["api_key"].secret && t.spec.config["api_key"].required);
    assert_eq!(
        serde_json::to_value(&t.spec.auth).unwrap(),
        json!({"type": "bearer", "token": "{{ config.api_key }}"})
    );
    let s = stream_json(&t, "users");
    assert_eq!(s["path"], "/users");
    assert_eq!(s["primary_key"], "id");
    assert_eq!(
        t.spec.records_of(&t.spec.streams["users"]).path.as_str(),
        "$.data"
    );
    assert_eq!(t.streams[0].status, Coverage::Runs);
}

#[test]
fn offset_page_and_cursor_paginators() {
    let offset = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestOption, inject_into: request_parameter, field_name: skip }\n        page_size_option: { type: RequestOption, inject_into: request_parameter, field_name: take }\n        pagination_strategy: { type: OffsetIncrement, page_size: 50 }\n";
    let page = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestOption, inject_into: request_parameter, field_name: page }\n        pagination_strategy: { type: PageIncrement, start_from_page: 1 }\n";
    let cursor = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestOption, inject_into: request_parameter, field_name: after }\n        pagination_strategy:\n          type: CursorPagination\n          cursor_value: \"{{ response.get('meta', {}).get('next_cursor') }}\"\n          stop_condition: \"{{ not response.meta.has_more }}\"\n";
    let next_url = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestPath }\n        page_size_option: { type: RequestOption, inject_into: request_parameter, field_name: per_page }\n        pagination_strategy: { type: CursorPagination, cursor_value: \"{{ response['@odata.nextLink'] }}\", stop_condition: \"{{ response['@odata.nextLink'] is none }}\", page_size: 25 }\n";
    let link = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestPath }\n        pagination_strategy: { type: CursorPagination, cursor_value: \"{{ headers['link']['next']['url'] }}\", stop_condition: \"{{ 'next' not in headers['link'] }}\" }\n";
    let last = "      paginator:\n        type: DefaultPaginator\n        page_token_option: { type: RequestOption, inject_into: request_parameter, field_name: starting_after }\n        pagination_strategy: { type: CursorPagination, cursor_value: \"{{ last_record['id'] }}\", stop_condition: \"{{ response.has_more is false }}\" }\n";
    let text = manifest(
        &[
            stream_yaml("o", offset, ""),
            stream_yaml("p", page, ""),
            stream_yaml("c", cursor, ""),
            stream_yaml("n", next_url, ""),
            stream_yaml("l", link, ""),
            stream_yaml("s", last, ""),
        ]
        .concat(),
    );
    let t = translate_ok(&text);
    for s in &t.streams {
        assert!(!matches!(s.status, Coverage::Blocked(_)), "{s:?}");
    }
    let pag = |n: &str| serde_json::to_value(t.spec.pagination_of(&t.spec.streams[n])).unwrap();
    let o = pag("o");
    assert_eq!(
        (
            o["type"].as_str(),
            o["offset_param"].as_str(),
            o["limit_param"].as_str(),
            o["page_size"].as_u64()
        ),
        (Some("offset"), Some("skip"), Some("take"), Some(50))
    );
    let p = pag("p");
    assert_eq!(
        (
            p["type"].as_str(),
            p["page_param"].as_str(),
            p["start"].as_u64()
        ),
        (Some("page_number"), Some("page"), Some(1))
    );
    assert_eq!(p["size_param"], J::Null);
    assert_eq!(
        p["stop"]["short_page"], false,
        "no page size: only an empty page ends it"
    );
    let c = pag("c");
    assert_eq!(
        (
            c["type"].as_str(),
            c["cursor_path"].as_str(),
            c["cursor_param"].as_str()
        ),
        (Some("cursor"), Some("$.meta.next_cursor"), Some("after"))
    );
    assert_eq!(c["stop"]["has_more_path"], "$.meta.has_more");
    let n = pag("n");
    assert_eq!(
        (n["type"].as_str(), n["next_url_path"].as_str()),
        (Some("next_url"), Some("$['@odata.nextLink']"))
    );
    assert_eq!(
        stream_json(&t, "n")["params"]["per_page"],
        "25",
        "the page size still goes on the first request"
    );
    assert_eq!(pag("l")["type"], "link_header");
    let s = pag("s");
    assert_eq!(s["cursor_path"], "$.data[-1].id");
    assert_eq!(s["stop"]["has_more_path"], "$.has_more");
}

#[test]
fn datetime_cursor_with_windows_and_without() {
    let inc = |step: &str| {
        format!(
            "    incremental_sync:\n      type: DatetimeBasedCursor\n      cursor_field: updated_at\n      datetime_format: \"%Y-%m-%dT%H:%M:%SZ\"\n      cursor_datetime_formats: [\"%Y-%m-%dT%H:%M:%S.%f%z\"]\n      start_datetime: {{ type: MinMaxDatetime, datetime: \"{{{{ config['start_date'] }}}}\", datetime_format: \"%Y-%m-%d\" }}\n      lookback_window: P1D\n{step}      start_time_option: {{ type: RequestOption, inject_into: request_parameter, field_name: since }}\n      end_time_option: {{ type: RequestOption, inject_into: request_parameter, field_name: until }}\n"
        )
    };
    let text = manifest(
        &[
            stream_yaml(
                "w",
                "",
                &inc("      step: P7D\n      cursor_granularity: PT1S\n"),
            ),
            stream_yaml("r", "", &inc("")),
        ]
        .concat(),
    );
    let t = translate_ok(&text);
    let w = stream_json(&t, "w");
    assert_eq!(w["incremental"]["cursor_field"], "updated_at");
    assert_eq!(w["incremental"]["request_format"], "%Y-%m-%dT%H:%M:%SZ");
    assert_eq!(
        w["incremental"].get("cursor_format"),
        None,
        "ISO-like formats read as RFC 3339"
    );
    assert_eq!(w["incremental"]["start_value"], "{{ config.start_date }}");
    assert_eq!(w["incremental"]["lookback"], "1d");
    assert_eq!(
        w["incremental"]["windows"],
        json!({"step": "7d", "granularity": "1s"})
    );
    assert_eq!(
        w["params"],
        json!({"since": "{{ window.start }}", "until": "{{ window.end }}"})
    );
    assert_eq!(w["incremental"]["client_filter"], false);
    let r = stream_json(&t, "r");
    assert_eq!(r["incremental"]["param"], "since");
    assert_eq!(
        r["params"]["until"],
        "{{ format_datetime(now_utc(), '%Y-%m-%dT%H:%M:%SZ') }}"
    );
}

#[test]
fn parent_and_list_partitions() {
    let parent = "      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs:\n          - type: ParentStreamConfig\n            parent_key: id\n            partition_field: user_id\n            stream: \"#/streams/0\"\n";
    let child = "  - type: DeclarativeStream\n    name: posts\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: \"/users/{{ stream_partition.user_id }}/posts\" }\n      record_selector: { $ref: \"#/definitions/selector\" }\n".to_string() + parent;
    let list = "  - type: DeclarativeStream\n    name: issues\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: \"/repos/{{ stream_slice.repo }}/issues\" }\n      record_selector: { $ref: \"#/definitions/selector\" }\n      partition_router: { type: ListPartitionRouter, cursor_field: repo, values: \"{{ config['repos'] }}\", request_option: { type: RequestOption, inject_into: header, field_name: X-Repo } }\n    transformations:\n      - type: AddFields\n        fields: [{ path: [repo], value: \"{{ stream_partition.repo }}\" }]\n";
    let text = manifest(&[stream_yaml("users", "", ""), child, list.to_string()].concat());
    let t = translate_ok(&text);
    let p = stream_json(&t, "posts");
    assert_eq!(p["parent"], "users");
    assert_eq!(p["path"], "/users/{{ parent.id }}/posts");
    let i = stream_json(&t, "issues");
    assert_eq!(
        i["partitions"],
        json!({"values": "{{ config.repos }}", "as": "repo"})
    );
    assert_eq!(i["path"], "/repos/{{ partition.repo }}/issues");
    assert_eq!(i["headers"]["X-Repo"], "{{ partition.repo }}");
    assert_eq!(i["records"]["add_fields"]["repo"], "{{ partition.repo }}");
}

#[test]
fn transformations_filters_and_retry() {
    let extra = "      record_selector:\n        type: RecordSelector\n        extractor: { type: DpathExtractor, field_path: [results, \"*\"] }\n        record_filter: { type: RecordFilter, condition: \"{{ record['status'] != 'deleted' }}\" }\n";
    let s = "  - type: DeclarativeStream\n    name: t\n    retriever:\n      type: SimpleRetriever\n      requester:\n        $ref: \"#/definitions/requester\"\n        path: /t\n        request_parameters: { expand: \"{{ 'a,b' }}\", limit: 5 }\n        error_handler:\n          type: CompositeErrorHandler\n          error_handlers:\n            - type: DefaultErrorHandler\n              max_retries: 3\n              response_filters: [{ type: HttpResponseFilter, action: IGNORE, http_codes: [404] }]\n              backoff_strategies: [{ type: ExponentialBackoffStrategy, factor: 2 }]\n".to_string()
        + extra
        + "    transformations:\n      - type: RemoveFields\n        field_pointers: [[secret], [meta, internal]]\n      - type: AddFields\n        fields: [{ path: [meta, source], value: api }, { path: [n], value: \"{{ record.count }}\", value_type: string }]\n";
    let t = translate_ok(&manifest(&s));
    let j = stream_json(&t, "t");
    let r = serde_json::to_value(t.spec.records_of(&t.spec.streams["t"])).unwrap();
    assert_eq!(r["path"], "$.results[*]");
    assert_eq!(r["filter"], "record.status != 'deleted'");
    assert_eq!(r["remove_fields"], json!(["secret", "meta.internal"]));
    assert_eq!(
        r["add_fields"],
        json!({"meta.source": "api", "n": "{{ (record.count) | string }}"})
    );
    assert_eq!(j["params"], json!({"expand": "a,b", "limit": "5"}));
    let retry = serde_json::to_value(t.spec.retry_of(&t.spec.streams["t"])).unwrap();
    assert_eq!(retry["max_attempts"], 4);
    assert_eq!(retry["backoff_base"], "2s");
    assert_eq!(
        retry["response_actions"],
        json!([{"status": [404], "action": "ignore"}])
    );
}

#[test]
fn a_custom_component_blocks_its_stream_with_its_position() {
    let custom = "      paginator:\n        type: DefaultPaginator\n        pagination_strategy:\n          type: CustomPaginationStrategy\n          class_name: source_example.components.Weird\n";
    let text = manifest(&[stream_yaml("ok", "", ""), stream_yaml("odd", custom, "")].concat());
    let t = translate_ok(&text);
    assert!(t.spec.streams.contains_key("ok") && !t.spec.streams.contains_key("odd"));
    let odd = t.streams.iter().find(|s| s.name == "odd").unwrap();
    let Coverage::Blocked(b) = &odd.status else {
        panic!("{odd:?}")
    };
    assert!(b.custom);
    assert!(
        b.reason.contains("source_example.components.Weird"),
        "{}",
        b.reason
    );
    let line = text
        .lines()
        .position(|l| l.contains("type: CustomPaginationStrategy"))
        .unwrap()
        + 1;
    assert_eq!((b.line, b.col), (line, 11));
    assert!(t.notes.iter().any(|n| n.kind == NoteKind::Blocked
        && n.line == line
        && n.stream.as_deref() == Some("odd")));
    assert!(
        to_yaml(&t).contains("odd (manifest line"),
        "blocked streams are listed at the end"
    );
}

#[test]
fn approximations_are_noted_and_commented() {
    let auth = r#"version: 6.1.0
type: DeclarativeSource
check: { type: CheckStream, stream_names: [a] }
spec:
  connection_specification:
    properties:
      subdomain: { type: string }
      credentials:
        oneOf:
          - properties: { auth_type: { const: oauth2 }, client_id: { type: string }, client_secret: { type: string, airbyte_secret: true }, refresh_token: { type: string, airbyte_secret: true } }
          - properties: { auth_type: { const: api_token }, api_token: { type: string, airbyte_secret: true } }
streams:
  - type: DeclarativeStream
    name: Tickets
    retriever:
      type: SimpleRetriever
      requester:
        type: HttpRequester
        url_base: "https://{{ config['subdomain'] }}.zendesk.com/api/v2/"
        path: tickets
        authenticator:
          type: SelectiveAuthenticator
          authenticator_selection_path: [credentials, auth_type]
          authenticators:
            oauth2: { type: OAuthAuthenticator, client_id: "{{ config.credentials.client_id }}", client_secret: "{{ config.credentials.client_secret }}", refresh_token: "{{ config.credentials.refresh_token }}", token_refresh_endpoint: "https://{{ config.subdomain }}.zendesk.com/oauth/tokens" }
            api_token: { type: BearerAuthenticator, api_token: "{{ config['credentials']['api_token'] }}" }
      record_selector: { type: RecordSelector, extractor: { type: DpathExtractor, field_path: [tickets] } }
"#;
    let t = translate_ok(auth);
    let s = &t.spec.streams["tickets"];
    assert_eq!(s.path.as_str(), "tickets");
    assert_eq!(
        t.spec.base_url.as_str(),
        "{% if config.base_url %}{{ config.base_url }}{% else %}https://{{ config.subdomain | default('') }}.zendesk.com/api/v2/{% endif %}"
    );
    let auth = serde_json::to_value(&t.spec.auth).unwrap();
    let token =
        json!({"type": "bearer", "token": "{{ config.credentials_api_token | default('') }}"});
    if auth["type"] == "select" {
        // Our spec has `select`: every option, picked by the config value.
        assert_eq!(auth["value"], "{{ config.credentials_auth_type }}");
        assert_eq!(auth["options"]["api_token"], token);
        assert_eq!(auth["options"]["oauth2"]["type"], "oauth2");
        assert_eq!(
            t.spec.config["credentials_auth_type"].default,
            Some(json!("api_token"))
        );
    } else {
        assert_eq!(auth, token);
        assert_eq!(t.streams[0].status, Coverage::Approximated);
        let yaml = to_yaml(&t);
        assert!(
            yaml.contains("# approximated: SelectiveAuthenticator: only the `api_token` option"),
            "{yaml}"
        );
    }
    assert_eq!(t.streams[0].spec_name.as_deref(), Some("tickets"));
}

#[test]
fn to_yaml_parses_back_to_the_same_spec() {
    let text = manifest(&[stream_yaml("users", "", ""), stream_yaml("teams", "", "")].concat());
    let t = translate_ok(&text);
    let back = crate::parse(&to_yaml(&t), "back.yaml").unwrap();
    assert_eq!(back, t.spec);
}

#[test]
fn manifests_are_told_from_our_specs() {
    assert!(is_manifest(&manifest("")));
    assert!(is_manifest(
        "version: 0.29.0\ncheck:\n  stream_names: [a]\nstreams:\n  - \"#/definitions/a\"\n"
    ));
    assert!(!is_manifest(
        "version: 1\nname: x\nbase_url: https://x\nstreams:\n  a: { path: /a }\n"
    ));
}

#[test]
fn a_manifest_with_nothing_to_run_says_why() {
    let text = manifest(&stream_yaml(
        "x",
        "      decoder: { type: XmlDecoder }\n",
        "",
    ));
    let e = translate(&text, "m.yaml").unwrap_err();
    assert!(e.message.contains("no stream"), "{e}");
    assert!(
        matches!(&e.streams[0].status, Coverage::Blocked(b) if b.feature == "decoder XmlDecoder")
    );
}

#[test]
fn the_repository_s_sample_manifest() {
    let text = include_str!("../../../../tests/airbyte/gen_manifest.yaml");
    let t = translate_ok(text);
    let names: Vec<&str> = t.spec.streams.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "offset_items",
            "page_items",
            "cursor_items",
            "link_items",
            "next_url_items",
            "customers"
        ]
    );
    let xml = t.streams.iter().find(|s| s.name == "xml_feed").unwrap();
    assert!(matches!(&xml.status, Coverage::Blocked(b) if b.feature == "decoder XmlDecoder"));
    let s = stream_json(&t, "customers");
    assert_eq!(s["pagination"]["cursor_path"], "$.data[-1].id");
    assert_eq!(stream_json(&t, "offset_items")["path"], "/gen/offset");
    assert_eq!(crate::parse(&to_yaml(&t), "back.yaml").unwrap(), t.spec);
}

#[test]
fn union_partitions_and_a_parent_defined_only_in_the_router() {
    // GitHub's shape: repositories from a config list, and from an org's
    // repository listing that is not one of the manifest's streams.
    let org_repos = "{ type: DeclarativeStream, name: org_repos, primary_key: id, retriever: { type: SimpleRetriever, requester: { $ref: \"#/definitions/requester\", path: /org/repos }, record_selector: { $ref: \"#/definitions/selector\" } } }";
    let union = format!(
        "      partition_router:\n        type: UnionPartitionRouter\n        partition_field: repository\n        partition_routers:\n          - {{ type: ListPartitionRouter, cursor_field: repository, values: \"{{{{ config['repos'] }}}}\" }}\n          - type: SubstreamPartitionRouter\n            parent_stream_configs:\n              - {{ type: ParentStreamConfig, parent_key: full_name, partition_field: repository, stream: {org_repos} }}\n"
    );
    let s = "  - type: DeclarativeStream\n    name: branches\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: \"/repos/{{ stream_partition.repository }}/branches\" }\n      record_selector: { $ref: \"#/definitions/selector\" }\n".to_string() + &union;
    let t = translate_ok(&manifest(&s));
    let b = stream_json(&t, "branches");
    assert_eq!(b["path"], "/repos/{{ partition.repository }}/branches");
    assert_eq!(
        b["partitions"],
        json!({"values": "{{ config.repos }}", "as": "repository",
               "from": [{"stream": "org_repos", "value": "{{ parent.full_name }}"}]})
    );
    let o = stream_json(&t, "org_repos");
    assert_eq!(o["internal"], true);
    assert_eq!(o["path"], "/org/repos");
    // Only the manifest's own stream is counted.
    assert_eq!(t.streams.len(), 1);
}

#[test]
fn add_fields_on_a_condition_over_each_value() {
    let s = "  - type: DeclarativeStream\n    name: t\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: /t }\n      record_selector: { $ref: \"#/definitions/selector\" }\n    transformations:\n      - type: AddFields\n        condition: \"{{ value is not none }}\"\n        fields:\n          - { path: [reactions, plus_one], value: \"{{ record.get('reactions', {}).get('+1') }}\" }\n";
    let t = translate_ok(&manifest(s));
    let r = serde_json::to_value(t.spec.records_of(&t.spec.streams["t"])).unwrap();
    let text = r.to_string();
    assert!(text.contains("is not none"), "{text}");
    assert!(!text.contains("value is not none"), "{text}");
    assert!(text.contains("reactions.plus_one"), "{text}");
}

#[test]
fn a_success_filter_reads_the_page() {
    let s = "  - type: DeclarativeStream\n    name: t\n    retriever:\n      type: SimpleRetriever\n      requester:\n        $ref: \"#/definitions/requester\"\n        path: /t\n        error_handler:\n          type: DefaultErrorHandler\n          response_filters: [{ type: HttpResponseFilter, action: SUCCESS, http_codes: [200] }, { type: HttpResponseFilter, action: RETRY, error_message_contains: rate limit }]\n      record_selector: { $ref: \"#/definitions/selector\" }\n";
    let t = translate_ok(&manifest(s));
    let j = serde_json::to_value(t.spec.retry_of(&t.spec.streams["t"])).unwrap();
    assert_eq!(
        j["response_actions"][0],
        json!({"status": [200], "action": "success"})
    );
}

#[test]
fn a_grandchild_reads_its_parents_slice() {
    // GitLab's merge_request_commits: `stream_slice.parent_slice.id` is the
    // project the merge request was read for.
    let projects = stream_yaml("projects", "", "");
    let mrs = "  - type: DeclarativeStream\n    name: merge_requests\n    primary_key: iid\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: \"/projects/{{ stream_slice.id }}/merge_requests\" }\n      record_selector: { $ref: \"#/definitions/selector\" }\n      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs: [{ type: ParentStreamConfig, parent_key: id, partition_field: id, stream: \"#/streams/0\" }]\n";
    let commits = "  - type: DeclarativeStream\n    name: merge_request_commits\n    retriever:\n      type: SimpleRetriever\n      requester: { $ref: \"#/definitions/requester\", path: \"/projects/{{ stream_slice.parent_slice.id }}/merge_requests/{{ stream_slice.iid }}/commits\" }\n      record_selector: { $ref: \"#/definitions/selector\" }\n      partition_router:\n        type: SubstreamPartitionRouter\n        parent_stream_configs: [{ type: ParentStreamConfig, parent_key: iid, partition_field: iid, stream: \"#/streams/1\" }]\n";
    let t = translate_ok(&manifest(
        &[projects, mrs.to_string(), commits.to_string()].concat(),
    ));
    let c = stream_json(&t, "merge_request_commits");
    assert_eq!(c["parent"], "merge_requests");
    assert_eq!(
        c["path"],
        "/projects/{{ parent_partition.parent.id }}/merge_requests/{{ parent.iid }}/commits"
    );
}
