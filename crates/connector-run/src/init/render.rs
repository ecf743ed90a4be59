//! Writes the spec `init` found as YAML text, each choice preceded by a
//! comment giving its evidence (and, where it is ambiguous, the
//! alternatives). Text is written by hand rather than serialized so the
//! comments sit next to what they explain; the `pagination` block alone is
//! derived from the spec type's serialization (see [`pagination`]).

use super::Choice;
use super::incremental::Proposal;
use super::inputs::{AuthChoice, ConfigEntry, Inputs};
use super::rate::RateFinding;
use super::records::{Keys, json_path};
use super::response_state::Kept;
use connector_spec::Pagination;
use serde_json::{Map, Value};
use std::fmt::Write;

/// Comment lines wrap at this width.
const WIDTH: usize = 92;

/// Everything the file says.
pub struct Draft<'a> {
    pub name: &'a str,
    pub stream: &'a str,
    /// The probed URL, redacted.
    pub shown_url: &'a str,
    pub requests: usize,
    pub inputs: &'a Inputs,
    pub records: &'a Choice<Keys>,
    pub key: &'a Choice<Option<String>>,
    pub paging: &'a Choice<Pagination>,
    pub rate: &'a RateFinding,
    /// The `incremental:` block, or why there is none (when the URL has a
    /// time bound); nothing is said when it has none.
    pub incremental: Option<&'a Choice<Option<Proposal>>>,
    /// Values kept for the next run.
    pub kept: &'a [Kept],
}

/// A YAML scalar: plain when that is unambiguous, else double-quoted
/// (a JSON string is a valid YAML double-quoted scalar).
pub fn scalar(s: &str) -> String {
    let keyword = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || "_/$".contains(c))
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./$-".contains(c))
        && !keyword;
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => scalar(s),
        other => other.to_string(),
    }
}

/// Writes `text` as comment lines at `indent`, wrapped; later lines are
/// indented two more spaces than the text's own leading spaces.
fn comment(out: &mut String, indent: usize, text: &str) {
    let pad = " ".repeat(indent);
    let lead = text.len() - text.trim_start().len();
    let bullet = if text.trim_start().starts_with("- ") {
        2
    } else {
        0
    };
    let hang = " ".repeat(lead + bullet + 2);
    let mut line = format!("{pad}#{}", " ".repeat(lead));
    for word in text.trim_start().split(' ') {
        if line.len() + 1 + word.len() > WIDTH && line.trim_end() != format!("{pad}#") {
            let _ = writeln!(out, "{line}");
            line = format!("{pad}#{hang}");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(out, "{line}");
}

/// A choice's comment: `label: why` (and a `note`), then the alternatives.
fn explain<T>(out: &mut String, indent: usize, label: &str, c: &Choice<T>, note: Option<&str>) {
    let note = note.map(|n| format!(" {n}")).unwrap_or_default();
    comment(
        out,
        indent,
        &format!("{label}: {}.{note}", c.why.trim_end_matches('.')),
    );
    if c.alternatives.is_empty() {
        if c.ambiguous {
            comment(
                out,
                indent,
                "  (not certain: check it against the API's docs)",
            );
        }
        return;
    }
    let head = if c.ambiguous {
        "  not certain; the alternatives:"
    } else {
        "  other candidates:"
    };
    comment(out, indent, head);
    for a in &c.alternatives {
        comment(out, indent, &format!("  - {a}"));
    }
}

/// Fields written even at their default value: the query parameters the
/// paginator sends, which init confirmed and its comment names. `page_size`
/// is kept too wherever a size parameter is written.
const SHOWN: &[&str] = &[
    "offset_param",
    "limit_param",
    "page_param",
    "size_param",
    "cursor_param",
];

/// The `pagination:` block: the members of the spec type's own
/// serialization, in its order, that differ from the strategy's defaults
/// (or are [`SHOWN`]).
fn pagination(out: &mut String, p: &Pagination) {
    let Ok(Value::Object(fields)) = serde_json::to_value(p) else {
        return;
    };
    let defaults = defaults(&fields);
    let sized = ["limit_param", "size_param"]
        .iter()
        .any(|k| fields.contains_key(*k));
    let _ = writeln!(out, "pagination:");
    block(out, 1, &fields, &defaults, &|k| {
        SHOWN.contains(&k) || (sized && k == "page_size")
    });
}

/// The defaults of the strategy serialized in `fields`: `{"type": …}` parsed
/// into a [`Pagination`] and serialized again. Members the strategy cannot
/// do without (`type`, `next_url_path`) are borrowed from `fields` to parse
/// it, then left out, so they are always written.
fn defaults(fields: &Map<String, Value>) -> Map<String, Value> {
    let parses = |m: &Map<String, Value>| {
        serde_json::from_value::<Pagination>(Value::Object(m.clone())).ok()
    };
    let required: Vec<&String> = fields
        .keys()
        .filter(|k| {
            let mut without = fields.clone();
            without.remove(*k);
            parses(&without).is_none()
        })
        .collect();
    let mut seed = Map::new();
    seed.insert(
        "type".into(),
        fields.get("type").cloned().unwrap_or_default(),
    );
    for k in &required {
        seed.insert((*k).clone(), fields[*k].clone());
    }
    let mut d = match parses(&seed).map(serde_json::to_value) {
        Some(Ok(Value::Object(d))) => d,
        _ => Map::new(),
    };
    for k in required {
        d.remove(k);
    }
    d
}

/// Writes the members of `fields` that differ from `defaults`, or that `keep`
/// names, as block YAML at `depth`. A mapping is compared member by member:
/// only its differing members are written, and nothing if none differ.
fn block(
    out: &mut String,
    depth: usize,
    fields: &Map<String, Value>,
    defaults: &Map<String, Value>,
    keep: &dyn Fn(&str) -> bool,
) {
    let pad = "  ".repeat(depth);
    for (k, v) in fields {
        let default = defaults.get(k);
        if default == Some(v) && !keep(k) {
            continue;
        }
        if let Value::Object(members) = v {
            let none = Map::new();
            let inner_defaults = match default {
                Some(Value::Object(d)) => d,
                _ => &none,
            };
            let mut inner = String::new();
            block(&mut inner, depth + 1, members, inner_defaults, &|_| false);
            if !inner.is_empty() {
                let _ = writeln!(out, "{pad}{}:", scalar(k));
                out.push_str(&inner);
            }
        } else {
            let _ = writeln!(out, "{pad}{}: {}", scalar(k), value(v));
        }
    }
}

fn stop_comment(p: &Pagination) -> Option<&'static str> {
    match p {
        Pagination::Offset { .. } | Pagination::PageNumber { .. } => Some(
            "Paging ends on an empty page (or the total); `short_page` is off so that a server capping the page size below `page_size` cannot end it early.",
        ),
        _ => None,
    }
}

fn auth(out: &mut String, i: &Inputs) {
    let Some(why) = &i.auth_why else {
        comment(
            out,
            0,
            "auth: none — no credential was given (pass one with `--header 'Authorization: Bearer …'` or the API's key header).",
        );
        out.push('\n');
        return;
    };
    comment(out, 0, &format!("auth: {why}."));
    let _ = writeln!(out, "auth:");
    match &i.auth {
        AuthChoice::None => {}
        AuthChoice::Bearer { key } => {
            let _ = writeln!(out, "  type: bearer");
            let _ = writeln!(
                out,
                "  token: {}",
                scalar(&format!("{{{{ config.{key} }}}}"))
            );
        }
        AuthChoice::ApiKey {
            in_query,
            name,
            prefix,
            key,
        } => {
            let _ = writeln!(out, "  type: api_key");
            let _ = writeln!(out, "  in: {}", if *in_query { "query" } else { "header" });
            let _ = writeln!(out, "  name: {}", scalar(name));
            if let Some(p) = prefix {
                let _ = writeln!(
                    out,
                    "  prefix: {}",
                    serde_json::to_string(p).unwrap_or_default()
                );
            }
            let _ = writeln!(
                out,
                "  value: {}",
                scalar(&format!("{{{{ config.{key} }}}}"))
            );
        }
        AuthChoice::CustomHeader { name, value } => {
            let _ = writeln!(out, "  type: custom_header");
            let _ = writeln!(out, "  name: {}", scalar(name));
            let _ = writeln!(out, "  value: {}", scalar(value));
        }
    }
    out.push('\n');
}

/// The whole file.
pub fn render(d: &Draft) -> String {
    let mut out = String::new();
    let i = d.inputs;
    let _ = writeln!(
        out,
        "# yaml-language-server: $schema=../schemas/connector.schema.json"
    );
    comment(
        &mut out,
        0,
        &format!(
            "Written by `connector-run init` from {} to {}. Each choice below names its evidence; check them, then run `connector-run check {}` and `connector-run sync {}`.",
            if d.requests == 1 {
                "1 request".to_string()
            } else {
                format!("{} requests", d.requests)
            },
            d.shown_url,
            d.name,
            d.name
        ),
    );
    let _ = writeln!(out, "version: 1");
    let _ = writeln!(out, "name: {}", d.name);
    out.push('\n');

    let _ = writeln!(out, "config:");
    let extra = d
        .incremental
        .and_then(|c| c.value.as_ref())
        .and_then(|p| p.config.as_ref());
    let config: Vec<&ConfigEntry> = i.config.iter().chain(extra).collect();
    for c in config {
        let _ = writeln!(out, "  {}:", c.key);
        if c.kind != "string" {
            let _ = writeln!(out, "    type: {}", c.kind);
        }
        let _ = writeln!(out, "    description: {}", scalar(&c.description));
        if let Some(v) = &c.default {
            let _ = writeln!(out, "    default: {}", value(v));
        }
        if c.secret {
            let _ = writeln!(out, "    secret: true");
            let _ = writeln!(out, "    required: true");
        }
    }
    out.push('\n');
    let _ = writeln!(out, "base_url: \"{{{{ config.base_url }}}}\"");
    if !i.headers.is_empty() {
        let _ = writeln!(out, "headers:");
        for (k, v) in &i.headers {
            let _ = writeln!(out, "  {}: {}", scalar(k), scalar(v));
        }
    }
    out.push('\n');
    auth(&mut out, i);

    comment(&mut out, 0, &format!("rate_limit: {}.", d.rate.why));
    if d.rate.requests.is_some() || d.rate.custom.is_some() {
        let _ = writeln!(out, "rate_limit:");
    }
    if let Some(r) = &d.rate.requests {
        let _ = writeln!(out, "  requests: {}", scalar(r));
    }
    if let Some(c) = &d.rate.custom {
        let _ = writeln!(out, "  custom_headers:");
        let _ = writeln!(out, "    - {c}");
    }
    out.push('\n');

    explain(
        &mut out,
        0,
        "pagination",
        d.paging,
        stop_comment(&d.paging.value),
    );
    pagination(&mut out, &d.paging.value);
    out.push('\n');

    explain(&mut out, 0, "records", d.records, None);
    let _ = writeln!(out, "records:");
    let _ = writeln!(out, "  path: {}", scalar(&json_path(&d.records.value)));
    out.push('\n');

    let _ = writeln!(out, "streams:");
    let _ = writeln!(out, "  {}:", d.stream);
    let _ = writeln!(out, "    path: {}", scalar(&i.path));
    let mut managed = d.paging.value.managed_params();
    let proposal = d.incremental.and_then(|c| c.value.as_ref());
    if let Some(p) = proposal {
        // `incremental.param` sends it.
        managed.push(p.param.as_str());
    }
    let params: Vec<&(String, String)> = i
        .params
        .iter()
        .filter(|(k, _)| !managed.contains(&k.as_str()))
        .collect();
    if !params.is_empty() {
        let _ = writeln!(out, "    params:");
        for (k, v) in params {
            let _ = writeln!(out, "      {}: {}", scalar(k), scalar(v));
        }
    }
    explain(&mut out, 4, "primary_key", d.key, None);
    if let Some(k) = &d.key.value {
        let _ = writeln!(out, "    primary_key: {}", scalar(k));
    }
    if let Some(c) = d.incremental {
        explain(&mut out, 4, "incremental", c, None);
        if let Some(p) = &c.value {
            incremental(&mut out, p);
        }
    }
    if !d.kept.is_empty() {
        for k in d.kept {
            comment(
                &mut out,
                4,
                &format!("response_state: {}. {}", k.why, k.usage.0),
            );
            for line in &k.usage.1 {
                let _ = writeln!(out, "    #       {line}");
            }
        }
        let _ = writeln!(out, "    response_state:");
        for k in d.kept {
            let _ = writeln!(
                out,
                "      {}: {}",
                scalar(&k.name),
                scalar(&json_path(&k.path))
            );
        }
    }
    out
}

/// The stream's `incremental:` block, with the `windows` it could use as a
/// comment.
fn incremental(out: &mut String, p: &Proposal) {
    let _ = writeln!(out, "    incremental:");
    let _ = writeln!(out, "      cursor_field: {}", scalar(&p.cursor_field));
    if let Some(t) = p.cursor_type {
        let _ = writeln!(out, "      cursor_type: {t}");
    }
    let _ = writeln!(out, "      start_value: {}", scalar(&p.start_value));
    let _ = writeln!(out, "      param: {}", scalar(&p.param));
    if let Some(f) = p.cursor_format {
        let _ = writeln!(out, "      cursor_format: {}", scalar(f));
    }
    if let Some(f) = p.request_format {
        let _ = writeln!(out, "      request_format: {}", scalar(f));
    }
    if let Some(end) = &p.windows_end_param {
        comment(
            out,
            6,
            &format!(
                "windows: the URL gives both ends of a range (`{}` and `{end}`). To read it a day at a time, one partition per day (they run concurrently and resume one by one), uncomment `windows` and send each window's end in `params` as `{end}: \"{{{{ window.end }}}}\"`; the range then runs to `windows.end` (default: now) rather than to the URL's `{end}`.",
                p.param
            ),
        );
        let _ = writeln!(out, "      # windows: {{ step: 1d }}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_quote_what_yaml_would_misread() {
        assert_eq!(scalar("$.data"), "$.data");
        assert_eq!(scalar("/gen/offset"), "/gen/offset");
        assert_eq!(scalar("21"), "\"21\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("{{ config.x }}"), "\"{{ config.x }}\"");
        assert_eq!(scalar("$['@odata.nextLink']"), "\"$['@odata.nextLink']\"");
    }

    fn rendered(p: &Pagination) -> String {
        let mut out = String::new();
        pagination(&mut out, p);
        out
    }

    fn spec(json: Value) -> Pagination {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn pagination_writes_what_differs_from_the_defaults() {
        use serde_json::json;
        let cases = [
            (json!({"type": "none"}), "  type: none\n"),
            (json!({"type": "link_header"}), "  type: link_header\n"),
            (
                json!({"type": "next_url", "next_url_path": "$['@odata.nextLink']"}),
                "  type: next_url\n  next_url_path: \"$['@odata.nextLink']\"\n",
            ),
            (
                json!({"type": "cursor", "cursor_header": "X-Next-Cursor"}),
                "  type: cursor\n  cursor_header: X-Next-Cursor\n  cursor_param: cursor\n",
            ),
            (
                json!({"type": "cursor", "cursor_path": "$.next", "size_param": "limit",
                       "stop": {"has_more_path": "$.has_more"}}),
                "  type: cursor\n  cursor_path: $.next\n  cursor_param: cursor\n  size_param: limit\n  page_size: 100\n  stop:\n    has_more_path: $.has_more\n",
            ),
            (
                json!({"type": "page_number", "size_param": null, "page_size": 37,
                       "stop": {"short_page": false, "total_header": "X-Total"}}),
                "  type: page_number\n  page_param: page\n  size_param: null\n  page_size: 37\n  stop:\n    short_page: false\n    total_header: X-Total\n",
            ),
            (
                json!({"type": "offset", "offset_param": "_start", "start": 1, "parallel": true}),
                "  type: offset\n  offset_param: _start\n  limit_param: limit\n  page_size: 100\n  start: 1\n  parallel: true\n",
            ),
        ];
        for (json, want) in cases {
            let p = spec(json);
            let text = rendered(&p);
            assert_eq!(text, format!("pagination:\n{want}"));
            // The block reads back as the same strategy.
            let file = format!(
                "version: 1\nname: t\nbase_url: http://x\n{text}streams:\n  s:\n    path: /s\n"
            );
            let back = connector_spec::parse(&file, "t.yaml").unwrap();
            assert_eq!(back.pagination, p, "{file}");
        }
    }

    #[test]
    fn comments_wrap() {
        let mut out = String::new();
        comment(&mut out, 0, &"word ".repeat(40));
        assert!(out.lines().all(|l| l.len() <= WIDTH && l.starts_with('#')));
    }
}
