//! Pagination strategies, one file per YAML `type`, and the stop conditions
//! they share. Each file compiles its spec variant once per stream into a
//! [`Paging`]: a prototype [`Paginator`] at the first page and the compiled
//! [`StopRules`]. Every partition starts a fresh copy of the prototype,
//! which holds that partition's position: it shapes the next request and
//! moves past each page it is shown.

mod cursor;
mod link_header;
mod next_url;
mod none;
mod offset;
mod page_number;

pub use cursor::{CursorPaginator, TokenLocation};
pub use link_header::{LinkHeaderPaginator, find_rel};
pub use next_url::NextUrlPaginator;
pub use none::NoPaginator;
pub use offset::OffsetPaginator;
pub use page_number::PageNumberPaginator;

use crate::http::PageResponse;
use crate::template::{CompiledTemplate, TemplatesBuilder};
use connector_spec::{Pagination, StopConditions};

/// A stream's pagination, compiled once.
#[derive(Debug)]
pub struct Paging {
    /// The strategy at the first page; partitions start copies of it.
    pub prototype: Box<dyn Paginator>,
    /// The stop conditions (none for `type: none`).
    pub stop: Option<StopRules>,
    /// Fetch the remaining pages in parallel once the total is known.
    pub parallel: bool,
}

impl Paging {
    /// A paginator for a new partition, at the first page.
    pub fn start(&self) -> Box<dyn Paginator> {
        self.prototype.fresh()
    }

    /// The most pages per partition the stop conditions allow.
    pub fn max_pages(&self) -> Option<u64> {
        self.stop.as_ref().and_then(|s| s.max_pages)
    }
}
use serde_json::Value;
use serde_json_path::JsonPath;
use url::Url;

/// The parts of a request a paginator may change.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub url: Url,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl RequestParts {
    pub fn set_query(&mut self, name: &str, value: String) {
        self.query.retain(|(k, _)| k != name);
        self.query.push((name.to_string(), value));
    }
    /// Replaces the URL with a next-page URL, which carries its own query.
    pub fn replace_url(&mut self, url: Url) {
        self.url = url;
        self.query.clear();
    }
    /// The final URL with the query appended.
    pub fn full_url(&self) -> Url {
        let mut u = self.url.clone();
        if !self.query.is_empty() {
            u.query_pairs_mut().extend_pairs(self.query.iter());
        }
        u
    }
}

/// One page as the paginator sees it.
pub struct PageView<'a> {
    pub response: Option<&'a PageResponse>,
    pub records: usize,
}

/// A partition's position in a paged endpoint.
pub trait Paginator: Send + Sync + std::fmt::Debug {
    /// A copy at the same position (the prototype's: the first page).
    fn fresh(&self) -> Box<dyn Paginator>;
    /// Shapes the request for the current page.
    fn prepare(&self, parts: &mut RequestParts);
    /// Moves past the page just fetched. False when the API says there is no
    /// next page (no token, no link, empty page).
    fn advance(&mut self, page: &PageView) -> Result<bool, String>;
    /// Where the next page was looked for, for the error when the response
    /// says there is more but names no next page.
    fn no_next(&self) -> String {
        "the page was empty".to_string()
    }
    /// Records per page, where the strategy knows it (short-page stop).
    fn page_size(&self) -> Option<u64> {
        None
    }
    /// The position of the next page, as saved in state.
    fn position(&self) -> Value;
    /// Continues from a saved position. False when it does not fit this strategy.
    fn restore(&mut self, position: &Value) -> bool;
    /// With `total` records known, the positions of every page still to
    /// fetch, for parallel fetching. None for strategies whose next page is
    /// only known from the previous one.
    fn remaining_positions(&self, _total: u64) -> Option<Vec<Value>> {
        None
    }
}

/// The stop conditions, compiled.
#[derive(Debug, Clone)]
pub struct StopRules {
    pub(crate) empty_page: bool,
    pub(crate) short_page: bool,
    has_more: Option<JsonPath>,
    has_more_text: String,
    total_path: Option<JsonPath>,
    total_header: Option<String>,
    pub max_pages: Option<u64>,
    /// Stop when this path is `true` (`$.end_of_stream`).
    stop_path: Option<JsonPath>,
    /// Stop when this expression is true.
    pub when: Option<CompiledTemplate>,
}

impl StopRules {
    /// Compiles the stop conditions; a JSONPath that does not parse is an
    /// error (`validate` reports it first, with its line).
    pub fn compile(s: &StopConditions, b: &mut TemplatesBuilder) -> Result<StopRules, String> {
        let path = |field: &str, p: &Option<connector_spec::JsonPath>| {
            p.as_ref()
                .map(|p| {
                    JsonPath::parse(p.as_str())
                        .map_err(|e| format!("`stop.{field}` `{}`: {e}", p.as_str()))
                })
                .transpose()
        };
        Ok(StopRules {
            empty_page: s.empty_page.unwrap_or(true),
            short_page: s.short_page,
            has_more: path("has_more_path", &s.has_more_path)?,
            has_more_text: s
                .has_more_path
                .as_ref()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            total_path: path("total_path", &s.total_path)?,
            total_header: s.total_header.clone(),
            max_pages: s.max_pages,
            stop_path: path("stop_path", &s.stop_path)?,
            when: s
                .when
                .as_deref()
                .map(|w| b.add_condition(w).map_err(|e| format!("`stop.when`: {e}")))
                .transpose()?,
        })
    }

    /// The total record count announced by this response, if any.
    pub fn total(&self, resp: &PageResponse) -> Option<u64> {
        if let Some(h) = &self.total_header
            && let Some(n) = resp
                .headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        {
            return Some(n);
        }
        let p = self.total_path.as_ref()?;
        let node = p.query(&resp.json).first()?;
        node.as_u64()
            .or_else(|| node.as_str().and_then(|s| s.parse().ok()))
    }

    /// What `has_more_path` says of this response: `Some(true)` when the
    /// API says more records follow. Absent is `None`; a value that is not
    /// a boolean (`"true"`, `1`) is read as one.
    pub fn has_more(&self, resp: &PageResponse) -> Result<Option<bool>, String> {
        let Some(p) = &self.has_more else {
            return Ok(None);
        };
        match p.query(&resp.json).first() {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(Value::Number(n)) => Ok(Some(n.as_f64().is_some_and(|f| f != 0.0))),
            Some(other) => Err(format!(
                "`has_more_path` `{}` found {}, not a boolean",
                self.has_more_text,
                shown(other)
            )),
        }
    }

    /// Why paging should stop after this page, if it should. A response
    /// that says more records follow (`has_more_path` true) is never ended
    /// by an empty or short page.
    pub fn stop_reason(
        &self,
        page: &PageView,
        page_size: Option<u64>,
        received: u64,
        pages: u64,
        when: &dyn Fn(&CompiledTemplate) -> Result<bool, String>,
    ) -> Result<Option<&'static str>, String> {
        if let (Some(p), Some(resp)) = (&self.stop_path, page.response) {
            match p.query(&resp.json).first() {
                Some(Value::Bool(true)) => return Ok(Some("stop_path is true")),
                None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                Some(other) => {
                    return Err(format!(
                        "`stop.stop_path` found {}, not a boolean",
                        shown(other)
                    ));
                }
            }
        }
        if let Some(w) = &self.when {
            if when(w)? {
                return Ok(Some("`stop.when` is true"));
            }
        }
        let more = match page.response {
            Some(resp) => self.has_more(resp)?,
            None => None,
        };
        if more == Some(false) {
            return Ok(Some("has_more is false"));
        }
        if more != Some(true) {
            if self.empty_page && page.records == 0 {
                return Ok(Some("empty page"));
            }
            if self.short_page && page_size.is_some_and(|s| (page.records as u64) < s) {
                return Ok(Some("short page"));
            }
        }
        if let Some(resp) = page.response
            && self.total(resp).is_some_and(|t| received >= t)
        {
            return Ok(Some("total reached"));
        }
        if self.max_pages.is_some_and(|m| pages >= m) {
            return Ok(Some("max pages"));
        }
        Ok(None)
    }
}

/// The JSONPaths a strategy reads in response bodies.
pub fn paths(p: &Pagination) -> Vec<&str> {
    let mut out = Vec::new();
    match p {
        Pagination::Cursor {
            cursor_path: Some(c),
            ..
        } => out.push(c.as_str()),
        Pagination::NextUrl { next_url_path, .. } => out.push(next_url_path.as_str()),
        _ => {}
    }
    if let Some(stop) = p.stop() {
        out.extend(stop.has_more_path.iter().map(|p| p.as_str()));
        out.extend(stop.total_path.iter().map(|p| p.as_str()));
    }
    out
}

/// Compiles a stream's pagination once: each strategy compiles its own
/// variant, in its own file. `page_size` is the stream's, rendered (the
/// spec's default applies); strategies without one ignore it.
pub fn compile(p: &Pagination, page_size: u64, b: &mut TemplatesBuilder) -> Result<Paging, String> {
    let size = page_size;
    match p {
        Pagination::None => Ok(NoPaginator::compile()),
        Pagination::Offset { .. } => OffsetPaginator::compile(p, size, b),
        Pagination::PageNumber { .. } => PageNumberPaginator::compile(p, size, b),
        Pagination::Cursor { .. } => CursorPaginator::compile(p, size, b),
        Pagination::NextUrl { .. } => NextUrlPaginator::compile(p, b),
        Pagination::LinkHeader { .. } => LinkHeaderPaginator::compile(p, b),
    }
}

/// A JSON value for an error message, cut short.
pub(crate) fn shown(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 60 {
        format!("{}…", t.chars().take(60).collect::<String>())
    } else {
        t
    }
}

/// Resolves a next-page reference against the URL of the page it came from.
pub(crate) fn resolve_next(base: &Url, next: &str) -> Result<Url, String> {
    let url = base
        .join(next)
        .map_err(|e| format!("next page URL `{next}` is invalid: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "next page URL `{next}` has the scheme `{}`; only http and https are followed",
            url.scheme()
        ));
    }
    Ok(url)
}

/// The saved position of a next-URL style paginator.
pub(crate) fn next_url_position(next: &Option<Url>) -> Value {
    serde_json::json!({ "next_url": next.as_ref().map(Url::as_str) })
}

/// Restores a next-URL style paginator from its saved position.
pub(crate) fn restore_next_url(next: &mut Option<Url>, position: &Value) -> bool {
    match position.get("next_url") {
        Some(Value::String(s)) => match Url::parse(s) {
            Ok(u) => {
                *next = Some(u);
                true
            }
            Err(_) => false,
        },
        Some(Value::Null) => {
            *next = None;
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::PageResponse;
    use serde_json::json;

    fn compiled(yaml: &str) -> Paging {
        let p: Pagination = serde_saphyr::from_str(yaml).unwrap();
        compile(
            &p,
            p.page_size().map_or(0, |s| match s {
                connector_spec::IntOrTemplate::Int(n) => *n,
                _ => 0,
            }),
            &mut TemplatesBuilder::default(),
        )
        .unwrap()
    }

    fn parts() -> RequestParts {
        RequestParts {
            url: Url::parse("https://api.example.com/items").unwrap(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn response(body: Value, headers: &[(&str, &str)]) -> PageResponse {
        let mut h = reqwest::header::HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        PageResponse {
            url: Url::parse("https://api.example.com/items").unwrap(),
            status: 200,
            headers: h,
            json: body,
            bytes: 0,
            raw: None,
        }
    }

    /// Prepares, advances over `resp` and returns (more, next URL, position).
    fn step(p: &mut dyn Paginator, resp: &PageResponse, records: usize) -> (bool, String, Value) {
        let more = p
            .advance(&PageView {
                response: Some(resp),
                records,
            })
            .unwrap();
        let mut next = parts();
        p.prepare(&mut next);
        (more, next.full_url().to_string(), p.position())
    }

    #[test]
    fn offset_and_page_number_count_and_resume() {
        let offset = compiled("{type: offset, page_size: 2}");
        let mut p = offset.start();
        let (more, url, pos) = step(&mut *p, &response(json!([]), &[]), 2);
        assert!(more);
        assert_eq!(url, "https://api.example.com/items?offset=2&limit=2");
        let mut again = offset.start();
        assert!(again.restore(&pos));
        let mut r = parts();
        again.prepare(&mut r);
        assert_eq!(r.full_url().query(), Some("offset=2&limit=2"));
        assert!(
            !again.restore(&json!({"offset": -1})),
            "a negative offset is refused"
        );

        let pages = compiled("{type: page_number, page_size: 50, start: 0, size_param: size}");
        let mut p = pages.start();
        let (_, url, _) = step(&mut *p, &response(json!([]), &[]), 50);
        assert_eq!(url, "https://api.example.com/items?page=1&size=50");
        assert_eq!(
            p.remaining_positions(120),
            Some(vec![json!({"page": 1}), json!({"page": 2})])
        );
    }

    #[test]
    fn tokens_links_and_next_urls() {
        let cursor = compiled(
            "{type: cursor, cursor_header: X-Next, send_in: header, cursor_param: X-Cursor}",
        );
        let mut p = cursor.start();
        let (more, _, pos) = step(&mut *p, &response(json!({}), &[("x-next", "abc")]), 1);
        assert!(more);
        assert_eq!(pos, json!({"cursor": "abc"}));
        let mut r = parts();
        p.prepare(&mut r);
        assert_eq!(r.headers, vec![("X-Cursor".to_string(), "abc".to_string())]);
        let (more, _, _) = step(&mut *p, &response(json!({}), &[]), 1);
        assert!(!more, "no header, no next page");

        let link = compiled("{type: link_header}");
        let mut p = link.start();
        let (more, url, _) = step(
            &mut *p,
            &response(json!([]), &[("link", "</items?page=2>; rel=\"next\"")]),
            1,
        );
        assert!(more);
        assert_eq!(url, "https://api.example.com/items?page=2");

        let next = compiled("{type: next_url, next_url_path: $.next}");
        let mut p = next.start();
        let (more, url, _) = step(&mut *p, &response(json!({"next": "?after=9"}), &[]), 1);
        assert!(more);
        assert_eq!(url, "https://api.example.com/items?after=9");
        let e = p
            .advance(&PageView {
                response: Some(&response(json!({"next": {"href": "x"}}), &[])),
                records: 1,
            })
            .unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
        let e = p
            .advance(&PageView {
                response: Some(&response(json!({"next": "ftp://x/y"}), &[])),
                records: 1,
            })
            .unwrap_err();
        assert!(e.contains("only http and https"), "{e}");

        let none = compiled("{type: none}");
        let mut p = none.start();
        assert!(!step(&mut *p, &response(json!([]), &[]), 1).0);
    }

    #[test]
    fn stop_rules_read_has_more_and_totals() {
        let rules = StopRules::compile(
            &serde_saphyr::from_str(
                "{has_more_path: $.more, total_path: $.total, stop_path: $.end, when: \"page.number > 0\"}",
            )
            .unwrap(),
            &mut TemplatesBuilder::default(),
        )
        .unwrap();
        let never = |_: &CompiledTemplate| Ok(false);
        let view = |body: Value, n| (response(body, &[]), n);
        let (r, n) = view(json!({"more": true, "total": 10}), 0);
        let v = PageView {
            response: Some(&r),
            records: n,
        };
        assert_eq!(
            rules.stop_reason(&v, Some(5), 0, 1, &never).unwrap(),
            None,
            "has_more wins over an empty page"
        );
        let (r, n) = view(json!({"more": false}), 3);
        let v = PageView {
            response: Some(&r),
            records: n,
        };
        assert_eq!(
            rules.stop_reason(&v, None, 3, 1, &never).unwrap(),
            Some("has_more is false")
        );
        let (r, n) = view(json!({"total": 3}), 3);
        let v = PageView {
            response: Some(&r),
            records: n,
        };
        assert_eq!(
            rules.stop_reason(&v, None, 3, 1, &never).unwrap(),
            Some("total reached")
        );
        let (r, _) = view(json!({"more": [1]}), 0);
        assert!(rules.has_more(&r).is_err(), "a list is not a boolean");
        let (r, n) = view(json!({"more": true, "end": true}), 5);
        let v = PageView {
            response: Some(&r),
            records: n,
        };
        assert_eq!(
            rules.stop_reason(&v, None, 5, 1, &never).unwrap(),
            Some("stop_path is true")
        );
        let always = |_: &CompiledTemplate| Ok(true);
        let (r, n) = view(json!({"more": true}), 5);
        let v = PageView {
            response: Some(&r),
            records: n,
        };
        assert_eq!(
            rules.stop_reason(&v, None, 5, 1, &always).unwrap(),
            Some("`stop.when` is true")
        );
    }
}
