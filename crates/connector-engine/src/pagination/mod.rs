//! Pagination strategies, one file per YAML `type`, and the stop conditions
//! they share. A [`Paginator`] holds one partition's position: it shapes the
//! next request and moves past each page it is shown.

mod cursor;
mod link_header;
mod next_url;
mod none;
mod offset;
mod page_number;

pub use cursor::CursorPaginator;
pub use link_header::{LinkHeaderPaginator, find_rel};
pub use next_url::NextUrlPaginator;
pub use none::NoPaginator;
pub use offset::OffsetPaginator;
pub use page_number::PageNumberPaginator;

use crate::http::PageResponse;
use connector_spec::{Pagination, StopConditions};
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
pub trait Paginator: Send {
    /// Shapes the request for the current page.
    fn prepare(&self, parts: &mut RequestParts);
    /// Moves past the page just fetched. False when the API says there is no
    /// next page (no token, no link, empty page).
    fn advance(&mut self, page: &PageView) -> Result<bool, String>;
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
    empty_page: bool,
    short_page: bool,
    has_more: Option<JsonPath>,
    total_path: Option<JsonPath>,
    total_header: Option<String>,
    pub max_pages: Option<u64>,
}

impl StopRules {
    pub fn compile(s: &StopConditions) -> StopRules {
        let path = |p: &Option<connector_spec::JsonPath>| {
            p.as_ref().and_then(|p| JsonPath::parse(p.as_str()).ok())
        };
        StopRules {
            empty_page: s.empty_page,
            short_page: s.short_page,
            has_more: path(&s.has_more_path),
            total_path: path(&s.total_path),
            total_header: s.total_header.clone(),
            max_pages: s.max_pages,
        }
    }

    /// The total record count announced by this response, if any.
    pub fn total(&self, resp: &PageResponse) -> Option<u64> {
        if let Some(h) = &self.total_header {
            if let Some(n) = resp
                .headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(n);
            }
        }
        let p = self.total_path.as_ref()?;
        let node = p.query(&resp.json).first()?;
        node.as_u64()
            .or_else(|| node.as_str().and_then(|s| s.parse().ok()))
    }

    /// Why paging should stop after this page, if it should.
    pub fn stop_reason(
        &self,
        page: &PageView,
        page_size: Option<u64>,
        received: u64,
        pages: u64,
    ) -> Option<&'static str> {
        if self.empty_page && page.records == 0 {
            return Some("empty page");
        }
        if self.short_page && page_size.is_some_and(|s| (page.records as u64) < s) {
            return Some("short page");
        }
        if let Some(resp) = page.response {
            if let Some(p) = &self.has_more {
                if p.query(&resp.json)
                    .first()
                    .is_some_and(|v| v == &Value::Bool(false))
                {
                    return Some("has_more is false");
                }
            }
            if self.total(resp).is_some_and(|t| received >= t) {
                return Some("total reached");
            }
        }
        if self.max_pages.is_some_and(|m| pages >= m) {
            return Some("max pages");
        }
        None
    }
}

/// Builds the paginator of one partition.
pub fn build(
    p: &Pagination,
    page_size: Option<u64>,
) -> Result<(Box<dyn Paginator>, Option<StopRules>), String> {
    let size = page_size.unwrap_or(100);
    Ok(match p {
        Pagination::None => (Box::new(NoPaginator), None),
        Pagination::Offset {
            offset_param,
            limit_param,
            start,
            stop,
            ..
        } => (
            Box::new(OffsetPaginator::new(
                offset_param,
                limit_param,
                size,
                *start,
            )),
            Some(StopRules::compile(stop)),
        ),
        Pagination::PageNumber {
            page_param,
            size_param,
            start,
            stop,
            ..
        } => (
            Box::new(PageNumberPaginator::new(
                page_param,
                size_param.as_deref(),
                size,
                *start,
            )),
            Some(StopRules::compile(stop)),
        ),
        Pagination::Cursor {
            cursor_path,
            cursor_header,
            cursor_param,
            send_in,
            size_param,
            stop,
            ..
        } => {
            let path = cursor_path
                .as_ref()
                .map(|p| JsonPath::parse(p.as_str()))
                .transpose()
                .map_err(|e| e.to_string())?;
            let mut rules = StopRules::compile(stop);
            rules.short_page = false;
            (
                Box::new(CursorPaginator::new(
                    path,
                    cursor_header.clone(),
                    cursor_param,
                    *send_in,
                    size_param.as_deref(),
                    size,
                )),
                Some(rules),
            )
        }
        Pagination::NextUrl {
            next_url_path,
            stop,
        } => {
            let path = JsonPath::parse(next_url_path.as_str()).map_err(|e| e.to_string())?;
            let mut rules = StopRules::compile(stop);
            rules.short_page = false;
            (Box::new(NextUrlPaginator::new(path)), Some(rules))
        }
        Pagination::LinkHeader { rel, stop } => {
            let mut rules = StopRules::compile(stop);
            rules.short_page = false;
            (Box::new(LinkHeaderPaginator::new(rel)), Some(rules))
        }
    })
}

/// Resolves a next-page reference against the URL of the page it came from.
pub(crate) fn resolve_next(base: &Url, next: &str) -> Result<Url, String> {
    base.join(next)
        .map_err(|e| format!("next page URL `{next}` is invalid: {e}"))
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
