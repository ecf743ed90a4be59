//! `DefaultPaginator` → our `pagination`.
//!
//! - `OffsetIncrement` → `offset` (`page_token_option` names `offset_param`,
//!   `page_size_option` `limit_param`); `PageIncrement` → `page_number`
//!   with `start: start_from_page`. Both stop on an empty page, and on a
//!   short one when a page size is set, as the CDK's strategies do.
//! - `CursorPagination`: the `cursor_value` says where the next page is:
//!   `{{ response.a.b }}` is the body path `$.a.b`, `{{ last_record.id }}`
//!   the last record's field, `{{ headers.link.next.url }}` the `Link`
//!   header, `{{ headers['X-Next'] }}` a header. Sent through
//!   `RequestPath` it is a URL (`next_url`, `link_header`); as a request
//!   parameter, header or body field it is a token (`cursor`).
//! - `stop_condition`: `{{ not response.has_more }}` → `has_more_path`,
//!   `{{ response.done }}` → `stop_path`, a test that the cursor is missing
//!   is what our paginators do anyway, anything else → `stop.when`.

use super::Cx;
use super::interpolation::{self, Scope, Vars};
use super::jinja::{self, Expr};
use super::notes::{Block, Res};
use super::refs::{NodeExt, parameters_of};
use super::requester::{Inject, request_option};
use crate::node::{Node, Value};
use serde_json::{Value as J, json};

/// The pagination of a stream and what it adds to its requests.
#[derive(Debug, Default)]
pub(crate) struct Paging {
    pub json: J,
    /// Static request options (a page size sent in a header or body).
    pub inject: Vec<(Inject, String)>,
}

/// A JSONPath of member names: `$.a['b-c']`.
pub(crate) fn json_path(keys: &[String]) -> String {
    let mut p = String::from("$");
    for k in keys {
        if k == "*" {
            p.push_str("[*]");
        } else if let Ok(i) = k.parse::<i64>() {
            p.push_str(&format!("[{i}]"));
        } else if !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
        {
            p.push('.');
            p.push_str(k);
        } else {
            p.push_str(&format!(
                "['{}']",
                k.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    p
}

fn json_text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Where a cursor value comes from.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Body(String),
    Header(String),
    Link,
}

/// Literal keys of an access chain from `root`, if it is one.
fn keys_from(e: &Expr, root: &str) -> Option<Vec<String>> {
    match e {
        Expr::Var(v) if v == root => Some(Vec::new()),
        Expr::Attr(o, n) => {
            let mut k = keys_from(o, root)?;
            k.push(n.clone());
            Some(k)
        }
        Expr::Index(o, i) => {
            let mut k = keys_from(o, root)?;
            match &**i {
                Expr::Str(s) => k.push(s.clone()),
                Expr::Int(n) => k.push(n.to_string()),
                Expr::Neg(n) if matches!(&**n, Expr::Int(_)) => {
                    k.push(format!("-{}", jinja::print(n)))
                }
                _ => return None,
            }
            Some(k)
        }
        Expr::Call(f, args) => {
            let Expr::Attr(o, m) = &**f else { return None };
            if m != "get" {
                return None;
            }
            let Some(Expr::Str(s)) = args.first().map(|a| &a.value) else {
                return None;
            };
            let mut k = keys_from(o, root)?;
            k.push(s.clone());
            Some(k)
        }
        Expr::Filter(o, n, _) if n == "default" || n == "d" => keys_from(o, root),
        _ => None,
    }
}

fn source_of(e: &Expr, records: &Option<Vec<String>>) -> Option<Source> {
    if let Some(k) = keys_from(e, "response") {
        return Some(Source::Body(json_path(&k)));
    }
    if let Some(k) = keys_from(e, "headers") {
        let lower: Vec<String> = k.iter().map(|s| s.to_ascii_lowercase()).collect();
        return match lower.as_slice() {
            [l, n, _] if l == "link" && n == "next" => Some(Source::Link),
            [h] => Some(Source::Header(h.clone())),
            _ => None,
        };
    }
    if let (Some(k), Some(rec)) = (keys_from(e, "last_record"), records) {
        let mut keys = rec.clone();
        keys.push("-1".into());
        keys.extend(k);
        return Some(Source::Body(json_path(&keys)));
    }
    match e {
        Expr::Cond(a, _, _) => source_of(a, records),
        Expr::Bin("or", a, _) => source_of(a, records),
        _ => None,
    }
}

/// The text of a scalar field, with `$parameters` substituted.
fn text(cx: &mut Cx, node: &Node, key: &str, scope: Scope) -> Res<Option<String>> {
    let Some(n) = node.get(key) else {
        return Ok(None);
    };
    let Some(t) = n.scalar_text() else {
        return Ok(None);
    };
    let mut v = Vars::new(scope, n.pos);
    v.params = parameters_of(node);
    cx.tpl(&t, &v).map(Some)
}

fn page_size(cx: &mut Cx, node: &Node) -> Res<Option<J>> {
    let Some(n) = node.get("page_size") else {
        return Ok(None);
    };
    match &n.value {
        Value::Int(i) if *i <= 0 => Ok(None),
        Value::Int(_) | Value::UInt(_) => Ok(Some(n.to_json())),
        Value::Str(s) => {
            if let Ok(i) = s.trim().parse::<u64>() {
                return Ok((i > 0).then(|| json!(i)));
            }
            let t = text(cx, node, "page_size", Scope::Connection)?.unwrap_or_default();
            if t.trim().is_empty() {
                return Ok(None);
            }
            if let Ok(i) = t.trim().parse::<i64>() {
                return Ok((i > 0).then(|| json!(i)));
            }
            let t = t.replace(" | default(none)", "");
            Ok(Some(json!(t)))
        }
        Value::Null => Ok(None),
        _ => Err(Block::new(
            n.pos,
            "pagination: page size that is not a number",
            "`page_size` is not a number",
        )),
    }
}

/// The pagination of a retriever's paginator.
///
/// `records` are the record selector's literal keys (for `last_record`);
/// `token_param` is the request parameter the requester sends the token in.
pub(crate) fn paginator(
    cx: &mut Cx,
    node: Option<&Node>,
    records: &Option<Vec<String>>,
    token_param: Option<String>,
) -> Res<Paging> {
    let Some(node) = node else {
        return Ok(Paging {
            json: json!({"type": "none"}),
            inject: Vec::new(),
        });
    };
    match node.type_name().unwrap_or("") {
        "NoPagination" => {
            return Ok(Paging {
                json: json!({"type": "none"}),
                inject: Vec::new(),
            });
        }
        "DefaultPaginator" => {}
        t => {
            return Err(Block::unsupported(node, t, "paginator", "the paginator"));
        }
    }
    let strategy = node.get("pagination_strategy").ok_or_else(|| {
        Block::new(
            node.pos,
            "paginator without a strategy",
            "no `pagination_strategy`",
        )
    })?;
    let vars = {
        let mut v = Vars::new(Scope::Connection, node.pos);
        v.params = parameters_of(node);
        v
    };
    let size_opt = node
        .get("page_size_option")
        .map(|o| request_option(cx, o, &vars))
        .transpose()?;
    let token_opt = match node.get("page_token_option") {
        Some(o) if o.type_name() == Some("RequestPath") => Some(None),
        Some(o) => Some(Some(request_option(cx, o, &vars)?)),
        None => None,
    };
    let mut paging = Paging::default();
    let size = page_size(cx, strategy)?;
    // The page size goes where its option says; only a query parameter is
    // ours to name, anything else is sent as a static value.
    let size_param = match (&size_opt, &size) {
        (Some(Inject::Param(p)), _) => Some(p.clone()),
        (Some(other), Some(s)) => {
            let v = match s {
                J::String(t) => t.clone(),
                other => other.to_string(),
            };
            paging.inject.push((other.clone(), v));
            None
        }
        _ => None,
    };
    let token: Option<Inject> = match &token_opt {
        Some(Some(i)) => Some(i.clone()),
        Some(None) => None,
        None => token_param.clone().map(Inject::Param),
    };
    let ty = strategy.type_name().unwrap_or("");
    let mut stop = serde_json::Map::new();
    let json = match ty {
        "OffsetIncrement" | "PageIncrement" => {
            let param = match &token {
                Some(Inject::Param(p)) => p.clone(),
                Some(other) => {
                    return Err(Block::new(
                        node.pos,
                        format!("pagination: {ty} token outside the query"),
                        format!("the page token goes into {other:?}"),
                    ));
                }
                None if token_opt == Some(None) => {
                    return Err(Block::new(
                        node.pos,
                        format!("pagination: {ty} in the path"),
                        "a page number or offset as the path",
                    ));
                }
                None => {
                    return Err(Block::new(
                        node.pos,
                        "pagination: the page token is never sent",
                        "no `page_token_option`, and no parameter reads `next_page_token`",
                    ));
                }
            };
            if size.is_none() {
                stop.insert("short_page".into(), json!(false));
            }
            let mut p = serde_json::Map::new();
            if ty == "OffsetIncrement" {
                p.insert("type".into(), json!("offset"));
                p.insert("offset_param".into(), json!(param));
                match size_param {
                    Some(s) => {
                        p.insert("limit_param".into(), json!(s));
                    }
                    None => {
                        // Ours always sends a page size.
                        cx.approx(
                            strategy.pos,
                            "offset paging also sends `limit` (ours always sends a page size)",
                        );
                        if let Some(Inject::Param(_)) = size_opt {
                        } else if size_opt.is_none() {
                            p.insert("limit_param".into(), json!("limit"));
                        }
                    }
                }
            } else {
                p.insert("type".into(), json!("page_number"));
                p.insert("page_param".into(), json!(param));
                p.insert(
                    "size_param".into(),
                    size_param.map(J::String).unwrap_or(J::Null),
                );
                let start = strategy
                    .get("start_from_page")
                    .and_then(|n| n.scalar_text())
                    .and_then(|t| t.parse::<u64>().ok())
                    .unwrap_or(0);
                if start > 1 {
                    return Err(Block::new(
                        strategy.pos,
                        "pagination: first page above 1",
                        format!("start_from_page {start}"),
                    ));
                }
                p.insert("start".into(), json!(start));
            }
            if let Some(s) = size {
                p.insert("page_size".into(), s);
            }
            if !stop.is_empty() {
                p.insert("stop".into(), J::Object(stop));
            }
            J::Object(p)
        }
        "CursorPagination" => {
            let cv = strategy.str_at("cursor_value").ok_or_else(|| {
                Block::new(
                    strategy.pos,
                    "CursorPagination without cursor_value",
                    "no `cursor_value`",
                )
            })?;
            let e = interpolation::condition_expr(cv).map_err(|e| {
                Block::new(
                    strategy.pos,
                    "pagination: cursor_value that is not one expression",
                    e,
                )
            })?;
            if let (Expr::Bin("+", a, b), Some(Inject::Param(param))) = (&e, &token)
                && keys_from(a, "response").is_some()
                && keys_from(b, "response").is_some()
            {
                // `startAt + maxResults` (Jira): offset paging.
                let mut p = serde_json::Map::new();
                p.insert("type".into(), json!("offset"));
                p.insert("offset_param".into(), json!(param));
                match size_param {
                    Some(s) => p.insert("limit_param".into(), json!(s)),
                    None => p.insert("limit_param".into(), json!("limit")),
                };
                if let Some(n) = size {
                    p.insert("page_size".into(), n);
                }
                stop.insert("short_page".into(), json!(false));
                cx.approx(
                    strategy.pos,
                    format!("`{cv}` as offset paging: the offset grows by the records received"),
                );
                let raw_src = Source::Body(String::new());
                if let Some(sc) = strategy.str_at("stop_condition") {
                    stop_condition(cx, strategy, sc, &e, &raw_src, records, &mut stop)?;
                }
                p.insert("stop".into(), J::Object(stop));
                paging.json = J::Object(p);
                return Ok(paging);
            }
            let source = source_of(&e, records).ok_or_else(|| {
                Block::new(
                    strategy.pos,
                    "pagination: computed cursor_value",
                    format!("cursor_value `{cv}` is computed, not read from the response"),
                )
            })?;
            let mut p = serde_json::Map::new();
            match (&source, &token) {
                (Source::Body(path), None) if token_opt == Some(None) => {
                    p.insert("type".into(), json!("next_url"));
                    p.insert("next_url_path".into(), json!(path));
                    if let (Some(s), Some(n)) = (&size_param, &size) {
                        paging.inject.push((Inject::Param(s.clone()), json_text(n)));
                    }
                }
                (Source::Link, None) if token_opt == Some(None) => {
                    p.insert("type".into(), json!("link_header"));
                    if let (Some(s), Some(n)) = (&size_param, &size) {
                        paging.inject.push((Inject::Param(s.clone()), json_text(n)));
                    }
                }
                (Source::Link, _) => {
                    // A token from the next link (Sentry's `cursor`): the
                    // link's URL carries it.
                    cx.approx(strategy.pos, format!("follows the `Link` header's next URL, which carries the token `{cv}` reads"));
                    p.insert("type".into(), json!("link_header"));
                    stop.insert("empty_page".into(), json!(true));
                }
                (Source::Header(_), None) if token_opt == Some(None) => {
                    return Err(Block::new(
                        strategy.pos,
                        "pagination: next URL from a header other than Link",
                        "a next-page URL read from a header",
                    ));
                }
                (_, None) => {
                    return Err(Block::new(
                        node.pos,
                        "pagination: the page token is never sent",
                        "no `page_token_option`, and no parameter reads `next_page_token`",
                    ));
                }
                (src, Some(inject)) => {
                    p.insert("type".into(), json!("cursor"));
                    match src {
                        Source::Body(path) => p.insert("cursor_path".into(), json!(path)),
                        Source::Header(h) => p.insert("cursor_header".into(), json!(h)),
                        Source::Link => unreachable!(),
                    };
                    let (name, send_in) = match inject {
                        Inject::Param(n) => (n.clone(), "query"),
                        Inject::Header(n) => (n.clone(), "header"),
                        Inject::BodyJson(path) if path.len() == 1 => (path[0].clone(), "body"),
                        other => {
                            return Err(Block::new(
                                node.pos,
                                "pagination: token in a nested body field or form",
                                format!("the token goes into {other:?}"),
                            ));
                        }
                    };
                    p.insert("cursor_param".into(), json!(name));
                    if send_in != "query" {
                        p.insert("send_in".into(), json!(send_in));
                    }
                    if let Some(s) = size_param {
                        p.insert("size_param".into(), json!(s));
                        if let Some(n) = size {
                            p.insert("page_size".into(), n);
                        }
                    }
                }
            }
            if let Some(sc) = strategy.str_at("stop_condition") {
                stop_condition(cx, strategy, sc, &e, &source, records, &mut stop)?;
            }
            if !stop.is_empty() {
                p.insert("stop".into(), J::Object(stop));
            }
            J::Object(p)
        }
        t => {
            return Err(Block::unsupported(
                strategy,
                t,
                "pagination strategy",
                "the strategy",
            ));
        }
    };
    paging.json = json;
    Ok(paging)
}

fn stop_condition(
    cx: &mut Cx,
    strategy: &Node,
    sc: &str,
    cursor: &Expr,
    source: &Source,
    records: &Option<Vec<String>>,
    stop: &mut serde_json::Map<String, J>,
) -> Res<()> {
    let pos = strategy
        .get("stop_condition")
        .map(|n| n.pos)
        .unwrap_or(strategy.pos);
    let mut v = Vars::new(Scope::Stop, pos);
    v.params = parameters_of(strategy);
    v.last_record = records.as_ref().map(|r| {
        let mut s = String::from("response");
        for k in r {
            s.push_str(&format!("[{}]", jinja::quote_str(k)));
        }
        format!("({s} | last)")
    });
    let raw = interpolation::condition_expr(sc).map_err(|e| {
        Block::new(
            pos,
            "pagination: stop_condition that is not one expression",
            e,
        )
    })?;
    // The cursor missing: our paginators stop there anyway.
    let missing = |e: &Expr| -> bool {
        let same = |x: &Expr| source_of(x, records).is_some_and(|s| s == *source) || x == cursor;
        match e {
            Expr::Not(x) => same(x),
            Expr::Test(x, t, _, false) if t == "none" || t == "undefined" => same(x),
            Expr::Bin("==", x, n) if matches!(&**n, Expr::None) => same(x),
            Expr::Bin("not in", k, h) => {
                matches!((&**k, source), (Expr::Str(s), Source::Link) if s == "next")
                    && keys_from(h, "headers")
                        .is_some_and(|k| k.len() == 1 && k[0].eq_ignore_ascii_case("link"))
                    || keys_from(h, "response").is_some_and(|hk| {
                        let Expr::Str(s) = &**k else { return false };
                        let mut full = hk;
                        full.push(s.clone());
                        *source == Source::Body(json_path(&full))
                    })
            }
            _ => false,
        }
    };
    if missing(&raw) {
        return Ok(());
    }
    if *source == Source::Link
        && sc.contains("link")
        && stop.get("empty_page") == Some(&json!(true))
    {
        // Sentry: `results="false"` on the last link; the page it points
        // at is empty, where we stop.
        cx.approx(pos, format!("stop_condition `{sc}` reads the `Link` header's attributes; paging stops on the empty page that follows"));
        return Ok(());
    }
    match &raw {
        Expr::Not(x) | Expr::Bin("==", x, _) | Expr::Test(x, _, _, _)
            if keys_from(x, "response").is_some()
                && match &raw {
                    Expr::Not(_) => true,
                    Expr::Bin(_, _, b) => matches!(&**b, Expr::Bool(false)),
                    Expr::Test(_, t, _, neg) => t == "false" && !neg,
                    _ => false,
                } =>
        {
            let k = keys_from(x, "response").unwrap_or_default();
            stop.insert("has_more_path".into(), json!(json_path(&k)));
            return Ok(());
        }
        x if keys_from(x, "response").is_some() => {
            let k = keys_from(x, "response").unwrap_or_default();
            stop.insert("stop_path".into(), json!(json_path(&k)));
            cx.approx(
                pos,
                format!(
                    "stop_condition `{sc}` stops when `{}` is true (a boolean)",
                    json_path(&k)
                ),
            );
            return Ok(());
        }
        _ => {}
    }
    let r = interpolation::condition(sc, &v, &mut cx.config).map_err(|e| {
        Block::new(
            pos,
            format!("pagination: stop_condition {e}"),
            format!("stop_condition `{sc}`: {e}"),
        )
    })?;
    for a in r.approx {
        cx.approx(pos, a);
    }
    if r.text.contains("headers['link']") {
        cx.approx(pos, "the stop condition reads the raw `Link` header text, where Airbyte reads its parsed relations");
    }
    stop.insert("when".into(), json!(r.text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_what_is_not_a_name() {
        let k = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(json_path(&k(&["data", "*", "id"])), "$.data[*].id");
        assert_eq!(json_path(&k(&["@odata.nextLink"])), "$['@odata.nextLink']");
        assert_eq!(json_path(&k(&["data", "-1", "id"])), "$.data[-1].id");
        assert_eq!(json_path(&[]), "$");
    }
}
