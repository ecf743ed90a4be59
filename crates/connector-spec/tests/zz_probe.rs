#[test]
fn probe() {
    let cases: &[&str] = &[
        "version: 1\nname: x\nbase_url: \"{{ config['base_ur'] }}\"\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nrecords:\n  filter: parent.x == 1\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nrecords:\n  add_fields:\n    a: \"{{ config.nope }}\"\nstreams:\n  u:\n    path: /u\n  v:\n    path: /v\n",
        "version: 1.0\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n",
        "- a\n- b\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n? [a, b]\n: c\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u: &u {path: /u, bogus: 1}\n  v: *u\n",
        "---\nversion: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n---\nb: 2\n",
        "\u{feff}version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nauth: {type: bearer, token: abc}\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    headers:\n      X-Version: 2\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    retry:\n      statuses: [70000]\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    pagination:\n      type: offset\n      page_size: 1.5\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    incremental:\n      cursor_field: t\n      start_value: \"{{ config.start }}\"\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    method: POST\n    body:\n      a: ok\n      b: \"{{ config.nope }}\"\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    pagination:\n      type: 3\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    pagination: cursor\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  a:\n    parent: b\n    path: /a\n  b:\n    parent: c\n    path: /b\n  c:\n    parent: a\n    path: /c\n",
        "version: 1\nname: x\nbase_url: https://a\nconfig:\n  n:\n    type: integer\n    enum: [1, 2]\n    default: 3\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    records:\n      add_fields:\n        a: \"{{ record.id }}\"\n        b: \"{{ recrd.id }}\"\n",
        "version: 1\nname: x\nbase_url: https://a\nauth:\n  type: basic\n  username: bob\n  password: hunter2\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nuser_agent: \"{{ page.x }}\"\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    pagination:\n      type: page_number\n      size_param: null\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    primary_key: []\n",
        "version: 1\nname: x\nbase_url: https://a\nauth:\n  type: api_key\n  name: k\n  value: \"{{ config.k }}\"\nconfig:\n  k:\n    secret: true\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nauth:\n  type: none\n  token: x\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nauth:\n  type: bearer\n  token: \"{{ 'literal' }}\"\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    incremental:\n      cursor_field: t\n      lookback: 5\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    rate_limit:\n      requests: 0/s\n      burst: 0\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\nstreams:\n  v:\n    path: /v\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    records:\n      path: $..[?@.x == 1]\n",
        "version: 1\nname: x\nbase_url: https://a\nretry:\n  backoff_base: 10s\n  backoff_cap: 1s\nstreams:\n  u:\n    path: /u\n",
        "version: 1\nname: x\nbase_url: ''\nstreams:\n  u:\n    path: ''\n",
        "version: 1\nname: x\nbase_url: https://a\nstreams:\n  u:\n    path: /u\n    pagination:\n      type: offset\n      parallel: true\n",
    ];
    for (i, c) in cases.iter().enumerate() {
        match connector_spec::parse(c, "t.yaml") {
            Ok(_) => println!("--- {i}: OK"),
            Err(d) => println!(
                "--- {i}:\n{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
}
