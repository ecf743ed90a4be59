//! `HttpRequester` → a stream's `path`, `method`, `params`, `headers` and
//! `body`, and its error handler → `retry`.
//!
//! `url_base` and `path` (or the newer `url`) are joined; the connector's
//! `base_url` is the longest common prefix of every stream's URL
//! (see [`super`]). `request_parameters` and `request_headers` map to
//! `params` and `headers`, `request_body_json` (and `RequestBodyJsonObject`)
//! to `body`, `request_body_data` (and `RequestBodyUrlEncodedForm`) to
//! `body` with `body_format: form`. A parameter whose value is the page
//! token (`{{ next_page_token['next_page_token'] }}`) is where the
//! paginator sends it, not a parameter of ours.
//!
//! `DefaultErrorHandler`s (also inside a `CompositeErrorHandler`) become
//! `retry`: `max_retries` + 1 attempts, backoff from an exponential or
//! constant strategy, and each `HttpResponseFilter` a response action
//! (`RETRY`/`RATE_LIMITED` → `retry`, `IGNORE` → `ignore`, `FAIL` →
//! `fail`), matched on `http_codes` and `error_message_contains`.
//! `WaitTimeFromHeader: Retry-After` is what we do anyway.

use super::Cx;
use super::interpolation::{self, Vars};
use super::jinja::{self, Expr, Segment};
use super::notes::{Block, Res};
use super::refs::NodeExt;
use crate::node::{Node, Value};
use serde_json::{Value as J, json};

/// Where a request option puts its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inject {
    Param(String),
    Header(String),
    /// A field of the JSON body (a path of keys).
    BodyJson(Vec<String>),
    /// A field of the form body.
    BodyData(String),
}

/// A `RequestOption`.
pub(crate) fn request_option(cx: &mut Cx, node: &Node, vars: &Vars) -> Res<Inject> {
    let inject = node.str_at("inject_into").unwrap_or("request_parameter");
    let name = match (node.get("field_name"), node.get("field_path")) {
        (Some(n), _) => {
            let t = n.scalar_text().unwrap_or_default();
            let t = cx.tpl(
                &t,
                &Vars {
                    pos: n.pos,
                    ..vars.clone()
                },
            )?;
            vec![literal(t, n)?]
        }
        (None, Some(p)) => p
            .items()
            .iter()
            .map(|n| {
                let t = n.scalar_text().unwrap_or_default();
                let t = cx.tpl(
                    &t,
                    &Vars {
                        pos: n.pos,
                        ..vars.clone()
                    },
                )?;
                literal(t, n)
            })
            .collect::<Res<Vec<_>>>()?,
        (None, None) => {
            return Err(Block::new(
                node.pos,
                "request option without a field name",
                "a RequestOption without `field_name`",
            ));
        }
    };
    let one = |name: Vec<String>| -> Res<String> {
        if name.len() == 1 {
            Ok(name.into_iter().next().unwrap_or_default())
        } else {
            Err(Block::new(
                node.pos,
                format!("request option: nested `{inject}` field"),
                "a nested field path outside a JSON body",
            ))
        }
    };
    Ok(match inject {
        "request_parameter" => Inject::Param(one(name)?),
        "header" => Inject::Header(one(name)?),
        "body_json" => Inject::BodyJson(name),
        "body_data" => Inject::BodyData(one(name)?),
        other => {
            return Err(Block::new(
                node.pos,
                format!("request option into `{other}`"),
                format!("inject_into `{other}`"),
            ));
        }
    })
}

fn literal(t: String, n: &Node) -> Res<String> {
    if t.contains("{{") || t.contains("{%") {
        Err(Block::new(
            n.pos,
            "templated request option name",
            format!("the field name `{t}` is a template"),
        ))
    } else {
        Ok(t)
    }
}

/// What a requester says about its stream.
#[derive(Debug, Default)]
pub(crate) struct Requester {
    /// `url_base` (or `url`), as written.
    pub url_base: String,
    /// `path`, as written.
    pub path: String,
    pub post: bool,
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<J>,
    pub form: bool,
    /// The parameter that carries the page token, when the requester names it.
    pub token_param: Option<String>,
}

/// Whether a template is (a default or fallback around) the page token.
fn page_token_template(text: &str) -> bool {
    let Ok(segs) = jinja::parse_template(text.trim()) else {
        return false;
    };
    let [Segment::Print(e, _, _)] = segs.as_slice() else {
        return false;
    };
    fn is_token(e: &Expr) -> bool {
        match e {
            Expr::Attr(o, n) => {
                n == "next_page_token" && matches!(&**o, Expr::Var(v) if v == "next_page_token")
            }
            Expr::Index(o, i) => {
                matches!(&**i, Expr::Str(s) if s == "next_page_token")
                    && matches!(&**o, Expr::Var(v) if v == "next_page_token")
            }
            Expr::Call(f, args) => {
                matches!(&**f, Expr::Attr(o, m) if m == "get" && matches!(&**o, Expr::Var(v) if v == "next_page_token"))
                    && matches!(args.first().map(|a| &a.value), Some(Expr::Str(s)) if s == "next_page_token")
            }
            Expr::Filter(o, n, _) => {
                (n == "default" || n == "d" || n == "int" || n == "string") && is_token(o)
            }
            Expr::Bin("or", a, _) => is_token(a),
            Expr::Cond(a, _, _) => is_token(a),
            _ => false,
        }
    }
    is_token(e)
}

fn text_of(n: &Node) -> Option<String> {
    n.scalar_text().or_else(|| match &n.value {
        Value::Null => Some(String::new()),
        _ => None,
    })
}

/// A map of templates (`request_parameters`, `request_headers`).
fn template_map(
    cx: &mut Cx,
    node: &Node,
    what: &str,
    vars: &Vars,
    token: &mut Option<String>,
) -> Res<Vec<(String, String)>> {
    if let Some(s) = node.as_str() {
        if s.trim().is_empty() {
            return Ok(Vec::new());
        }
        // `{{ parameters.get('request_parameters', {}) }}`: a mapping once
        // `$parameters` are in.
        let t = cx.tpl(
            s,
            &Vars {
                pos: node.pos,
                ..vars.clone()
            },
        )?;
        let segs = jinja::parse_template(t.trim()).unwrap_or_default();
        if let [Segment::Print(Expr::Dict(items), _, _)] = segs.as_slice() {
            let mut out = Vec::new();
            for (k, v) in items {
                let Expr::Str(k) = k else {
                    return Err(Block::new(
                        node.pos,
                        format!("{what} as one template"),
                        format!("`{what}` has a computed name"),
                    ));
                };
                let v = match v {
                    Expr::Str(s) => s.clone(),
                    Expr::Int(i) => i.to_string(),
                    other => format!("{{{{ {} }}}}", jinja::print(other)),
                };
                out.push((k.clone(), v));
            }
            return Ok(out);
        }
        return Err(Block::new(
            node.pos,
            format!("{what} as one template"),
            format!("`{what}` is one template rendering a mapping"),
        ));
    }
    if !node.is_map() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (k, v) in node.entries() {
        let key = cx.tpl(
            &k.name,
            &Vars {
                pos: k.pos,
                ..vars.clone()
            },
        )?;
        if key.contains("{{") {
            return Err(Block::new(
                k.pos,
                format!("templated {what} name"),
                format!("the name `{}` is a template", k.name),
            ));
        }
        if v.get("type").is_some() {
            let ty = v.type_name().unwrap_or("");
            return Err(Block::new(
                v.pos,
                format!("{what}: {ty}"),
                format!("a {ty} component in `{what}`"),
            ));
        }
        let Some(text) = text_of(v) else {
            return Err(Block::new(
                v.pos,
                format!("{what} with a list or mapping value"),
                format!("`{}` is not a single value", k.name),
            ));
        };
        if text.contains("next_page_token") && page_token_template(&text) {
            *token = Some(key);
            continue;
        }
        let t = cx.tpl(
            &text,
            &Vars {
                pos: v.pos,
                ..vars.clone()
            },
        )?;
        if what == "request_headers" && optional_single(&t) {
            // Airbyte drops a header whose value renders empty or None;
            // ours would send it.
            cx.approx(v.pos, format!("the header `{key}` is left out: Airbyte sends it only when `{text}` has a value, and ours cannot leave out an empty header"));
            continue;
        }
        out.push((key, t));
    }
    Ok(out)
}

/// A template that is one expression falling back to nothing.
fn optional_single(t: &str) -> bool {
    let t = t.trim();
    t.starts_with("{{")
        && t.ends_with("}}")
        && t.matches("{{").count() == 1
        && (t.ends_with("| default(none) }}") || t.ends_with("| default('') }}"))
}

fn json_body(cx: &mut Cx, node: &Node, vars: &Vars) -> Res<J> {
    Ok(match &node.value {
        Value::Str(s) => {
            if s.contains("next_page_token") {
                return Err(Block::new(
                    node.pos,
                    "page token inside a request body template",
                    "the body reads `next_page_token`",
                ));
            }
            J::String(cx.tpl(
                s,
                &Vars {
                    pos: node.pos,
                    ..vars.clone()
                },
            )?)
        }
        Value::Map(entries) => {
            let mut m = serde_json::Map::new();
            for (k, v) in entries {
                m.insert(k.name.clone(), json_body(cx, v, vars)?);
            }
            J::Object(m)
        }
        Value::Seq(items) => J::Array(
            items
                .iter()
                .map(|n| json_body(cx, n, vars))
                .collect::<Res<_>>()?,
        ),
        _ => node.to_json(),
    })
}

/// The request parts of an `HttpRequester`.
pub(crate) fn requester(cx: &mut Cx, node: &Node, vars: &Vars) -> Res<Requester> {
    let ty = node.type_name().unwrap_or("HttpRequester");
    if ty != "HttpRequester" {
        return Err(Block::new(
            node.pos,
            format!("requester: {ty}"),
            format!("the requester {ty}"),
        ));
    }
    let mut r = Requester::default();
    match (node.get("url"), node.get("url_base")) {
        (Some(u), _) => r.url_base = u.scalar_text().unwrap_or_default(),
        (None, Some(u)) => r.url_base = u.scalar_text().unwrap_or_default(),
        (None, None) => {
            return Err(Block::new(
                node.pos,
                "requester without a URL",
                "no `url_base` or `url`",
            ));
        }
    }
    if node.get("url").is_none() {
        r.path = node
            .get("path")
            .and_then(|p| p.scalar_text())
            .unwrap_or_default();
    }
    if r.path.contains("next_page_token") || r.url_base.contains("next_page_token") {
        return Err(Block::new(
            node.pos,
            "page token in the path",
            "the path reads `next_page_token`",
        ));
    }
    match node
        .str_at("http_method")
        .unwrap_or("GET")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => {}
        "POST" => r.post = true,
        other => {
            return Err(Block::new(
                node.pos,
                format!("HTTP method {other}"),
                format!("the method {other}"),
            ));
        }
    }
    let mut token = None;
    if let Some(p) = node.get("request_parameters") {
        let pv = Vars {
            none_if_missing: true,
            ..vars.clone()
        };
        r.params = template_map(cx, p, "request_parameters", &pv, &mut token)?;
    }
    if let Some(h) = node.get("request_headers") {
        r.headers = template_map(cx, h, "request_headers", vars, &mut token)?;
    }
    if node.get("query_properties").is_some()
        || node.get("fetch_properties_from_endpoint").is_some()
    {
        return Err(Block::new(
            node.pos,
            "QueryProperties (properties fetched or chunked into the query)",
            "query_properties",
        ));
    }
    r.token_param = token;
    if let Some(b) = node.get("request_body_json") {
        if b.as_str().is_some_and(|s| s.contains("{{")) {
            return Err(Block::new(
                b.pos,
                "request_body_json as one template",
                "the JSON body is one template",
            ));
        }
        if b.truthy() {
            r.body = Some(json_body(cx, b, vars)?);
        }
    }
    if let Some(b) = node.get("request_body_data") {
        if b.as_str().is_some() && b.truthy() {
            return Err(Block::new(
                b.pos,
                "plain-text request body",
                "`request_body_data` is text, not fields",
            ));
        }
        if b.truthy() {
            r.body = Some(json_body(cx, b, vars)?);
            r.form = true;
        }
    }
    if let Some(b) = node.get("request_body") {
        let ty = b.type_name().unwrap_or("");
        let value = b.get("value");
        match (ty, value) {
            ("RequestBodyJsonObject", Some(v)) => r.body = Some(json_body(cx, v, vars)?),
            ("RequestBodyUrlEncodedForm", Some(v)) => {
                r.body = Some(json_body(cx, v, vars)?);
                r.form = true;
            }
            ("RequestBodyGraphQL", Some(v)) => r.body = Some(json_body(cx, v, vars)?),
            _ => {
                return Err(Block::new(
                    b.pos,
                    format!("request body {ty}"),
                    format!("the request body {ty}"),
                ));
            }
        }
    }
    Ok(r)
}

fn seconds(n: &Node) -> Option<f64> {
    match &n.value {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn human(secs: f64) -> String {
    if secs < 1.0 {
        format!("{}ms", (secs * 1000.0).round().max(1.0) as u64)
    } else {
        format!("{}s", secs.round() as u64)
    }
}

/// `retry` from an error handler; `None` for the defaults.
pub(crate) fn retry(cx: &mut Cx, node: &Node) -> Res<Option<J>> {
    let handlers: Vec<&Node> = match node.type_name().unwrap_or("DefaultErrorHandler") {
        "DefaultErrorHandler" => vec![node],
        "CompositeErrorHandler" => node
            .get("error_handlers")
            .map(|h| h.items().iter().collect())
            .unwrap_or_default(),
        other => {
            return Err(Block::unsupported(
                node,
                other,
                "error handler",
                "the error handler",
            ));
        }
    };
    let mut r = serde_json::Map::new();
    let mut actions = Vec::new();
    let mut attempts: Option<u64> = None;
    for h in handlers {
        let ty = h.type_name().unwrap_or("DefaultErrorHandler");
        if ty != "DefaultErrorHandler" {
            return Err(Block::unsupported(
                h,
                ty,
                "error handler",
                "the error handler",
            ));
        }
        if let Some(m) = h.get("max_retries") {
            match seconds(m) {
                Some(n) => attempts = Some(attempts.unwrap_or(0).max(n as u64 + 1)),
                None => cx.approx(
                    m.pos,
                    "a templated `max_retries`: the default of 5 attempts is kept",
                ),
            }
        }
        for b in h
            .get("backoff_strategies")
            .map(|b| b.items())
            .unwrap_or(&[])
        {
            match b.type_name().unwrap_or("") {
                "ExponentialBackoffStrategy" => {
                    let f = b.get("factor").and_then(seconds).unwrap_or(5.0);
                    r.insert("backoff_base".into(), json!(human(f)));
                }
                "ConstantBackoffStrategy" => {
                    if let Some(s) = b.get("backoff_time_in_seconds").and_then(seconds) {
                        r.insert("backoff_base".into(), json!(human(s)));
                        r.insert("backoff_cap".into(), json!(human(s)));
                        cx.approx(b.pos, "a constant backoff becomes exponential backoff capped at the same wait");
                    }
                }
                "WaitTimeFromHeader" | "WaitUntilTimeFromHeader" => {
                    let header = b.str_at("header").unwrap_or("");
                    if !header.eq_ignore_ascii_case("retry-after")
                        && !header.to_ascii_lowercase().starts_with("x-ratelimit")
                        && !header.to_ascii_lowercase().starts_with("ratelimit")
                    {
                        cx.approx(b.pos, format!("the wait from the header `{header}` is not read; backoff and Retry-After apply"));
                    }
                }
                t if t.starts_with("Custom") => return Err(Block::custom_of(b, t)),
                t => cx.approx(b.pos, format!("the backoff strategy {t} is not translated")),
            }
        }
        for f in h.get("response_filters").map(|f| f.items()).unwrap_or(&[]) {
            let action = match f
                .str_at("action")
                .unwrap_or("")
                .to_ascii_uppercase()
                .as_str()
            {
                "RETRY" | "RATE_LIMITED" => "retry",
                "IGNORE" => "ignore",
                "FAIL" => "fail",
                "SUCCESS" => "success",
                "" => {
                    // Newer manifests may give only a failure type; the
                    // status decides.
                    "fail"
                }
                other => {
                    cx.approx(
                        f.pos,
                        format!("the response action {other} is not translated"),
                    );
                    continue;
                }
            };
            let mut a = serde_json::Map::new();
            if let Some(codes) = f.get("http_codes") {
                let list: Vec<u64> = codes
                    .items()
                    .iter()
                    .filter_map(seconds)
                    .map(|c| c as u64)
                    .filter(|c| (100..600).contains(c))
                    .collect();
                if !list.is_empty() {
                    a.insert("status".into(), json!(list));
                }
            }
            if let Some(m) = f.str_at("error_message_contains") {
                a.insert("body_contains".into(), json!(m));
            }
            if f.get("predicate").is_some() {
                let p = f.str_at("predicate").unwrap_or("");
                match predicate_path(p) {
                    Some(path) => {
                        a.insert("body_path".into(), json!(path));
                    }
                    None => {
                        cx.approx(
                            f.pos,
                            format!("the response predicate `{p}` is not checked"),
                        );
                        if a.is_empty() {
                            continue;
                        }
                    }
                }
            }
            if a.is_empty() {
                continue;
            }
            a.insert("action".into(), json!(action));
            actions.push(J::Object(a));
        }
    }
    if let Some(n) = attempts {
        r.insert("max_attempts".into(), json!(n.max(1)));
    }
    if !actions.is_empty() {
        r.insert("response_actions".into(), J::Array(actions));
    }
    Ok(if r.is_empty() {
        None
    } else {
        Some(J::Object(r))
    })
}

/// `{{ 'error' in response }}` / `{{ response.error }}` → `$.error`.
fn predicate_path(p: &str) -> Option<String> {
    let e = interpolation::condition_expr(p).ok()?;
    match e {
        Expr::Bin("in", k, r) => match (*k, *r) {
            (Expr::Str(k), Expr::Var(v)) if v == "response" => {
                Some(super::paginator::json_path(&[k]))
            }
            _ => None,
        },
        Expr::Attr(o, k) if matches!(&*o, Expr::Var(v) if v == "response") => {
            Some(super::paginator::json_path(&[k]))
        }
        _ => None,
    }
}
