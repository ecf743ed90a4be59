//! Pagination strategies, one `type` each, and the stop conditions they share.

use crate::{IntOrTemplate, JsonPath};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a stream pages through its results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request, no paging.
    #[default]
    None,
    /// `?offset=N&limit=M`: the offset grows by the number of records received.
    Offset {
        /// Query parameter carrying the offset. Default `offset`.
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// Query parameter carrying the page size. Default `limit`.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Records per page. Integer or template. Default `100`.
        #[serde(default = "default_page_size")]
        page_size: IntOrTemplate,
        /// Offset of the first page. Default `0`.
        #[serde(default)]
        start: u64,
        /// Fetch pages in parallel when the total is known (`stop.total_path` or
        /// `stop.total_header`). Default `false`.
        #[serde(default)]
        parallel: bool,
        /// When to stop. Default: on an empty or short page.
        #[serde(default)]
        stop: StopConditions,
    },
    /// `?page=N&per_page=M`.
    PageNumber {
        /// Query parameter carrying the page number. Default `page`.
        #[serde(default = "default_page_param")]
        page_param: String,
        /// Query parameter carrying the page size; omit to send none. Default `per_page`.
        #[serde(default = "default_size_param")]
        size_param: Option<String>,
        /// Records per page. Integer or template. Default `100`.
        #[serde(default = "default_page_size")]
        page_size: IntOrTemplate,
        /// Number of the first page, `0` or `1`. Default `1`.
        #[serde(default = "default_first_page")]
        start: u64,
        /// Fetch pages in parallel when the total is known. Default `false`.
        #[serde(default)]
        parallel: bool,
        /// When to stop. Default: on an empty or short page.
        #[serde(default)]
        stop: StopConditions,
    },
    /// An opaque next-page token read from the body or a header, sent back as a
    /// query parameter, header or JSON body field.
    Cursor {
        /// JSONPath to the next token in the body, e.g. `$.meta.next_cursor`.
        /// Exactly one of `cursor_path` and `cursor_header` is required.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor_path: Option<JsonPath>,
        /// Response header carrying the next token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor_header: Option<String>,
        /// Name under which the token is sent back. Default `cursor`. In a
        /// body, a dotted name is a path into nested objects
        /// (`pagination.starting_after`, Intercom's search).
        #[serde(default = "default_cursor_param")]
        cursor_param: String,
        /// Where the token is sent: `query`, `header` or `body`. Default `query`.
        #[serde(default)]
        send_in: TokenLocation,
        /// Query parameter carrying the page size; omit to send none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        /// Records per page, sent in `size_param`. Default `100`.
        #[serde(default = "default_page_size")]
        page_size: IntOrTemplate,
        /// When to stop. Always stops when no token comes back.
        #[serde(default)]
        stop: StopConditions,
    },
    /// A full or relative URL of the next page, read from the body.
    NextUrl {
        /// JSONPath to the next URL, e.g. `$.next` or `$.links.next`.
        next_url_path: JsonPath,
        /// When to stop. Always stops when no URL comes back.
        #[serde(default)]
        stop: StopConditions,
    },
    /// RFC 8288 `Link: <url>; rel="next"` response header.
    LinkHeader {
        /// Relation to follow. Default `next`.
        #[serde(default = "default_rel")]
        rel: String,
        /// When to stop. Always stops when no link comes back.
        #[serde(default)]
        stop: StopConditions,
    },
}

/// When paging stops. Any condition that holds ends the partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopConditions {
    /// Stop on a page with no records. Default `true` for `offset` and
    /// `page_number`; `false` for `cursor`, `next_url` and `link_header`,
    /// which follow the API's next token while it sends one (Slack's pages
    /// may be empty before the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_page: Option<bool>,
    /// Stop on a page with fewer records than the page size (offset and
    /// page_number only). Default `true`.
    #[serde(default = "yes")]
    pub short_page: bool,
    /// JSONPath to a boolean; stop when it is `false`, e.g. `$.has_more`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more_path: Option<JsonPath>,
    /// JSONPath to the total record count; stop once that many were received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_path: Option<JsonPath>,
    /// Header carrying the total record count, e.g. `X-Total-Count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_header: Option<String>,
    /// Stop after this many pages per partition. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u64>,
    /// JSONPath to a boolean; stop when it is `true`, e.g. `$.end_of_stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_path: Option<JsonPath>,
    /// Stop when this expression is true, over `response` (the body),
    /// `headers` (lower-case names), `page` (`number`, `records`), `state`
    /// (`state.cursor`: the lower bound sent) and `config`, e.g.
    /// `response.count < 100 or page.number >= 50`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl Default for StopConditions {
    fn default() -> Self {
        StopConditions {
            empty_page: None,
            short_page: true,
            has_more_path: None,
            total_path: None,
            total_header: None,
            max_pages: None,
            stop_path: None,
            when: None,
        }
    }
}

/// Where a cursor token is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenLocation {
    #[default]
    Query,
    Header,
    Body,
}

impl Pagination {
    /// The YAML `type` of this strategy.
    pub fn type_name(&self) -> &'static str {
        match self {
            Pagination::None => "none",
            Pagination::Offset { .. } => "offset",
            Pagination::PageNumber { .. } => "page_number",
            Pagination::Cursor { .. } => "cursor",
            Pagination::NextUrl { .. } => "next_url",
            Pagination::LinkHeader { .. } => "link_header",
        }
    }

    /// The records per page, for strategies that send a page size.
    pub fn page_size(&self) -> Option<&IntOrTemplate> {
        match self {
            Pagination::Offset { page_size, .. }
            | Pagination::PageNumber { page_size, .. }
            | Pagination::Cursor { page_size, .. } => Some(page_size),
            Pagination::None | Pagination::NextUrl { .. } | Pagination::LinkHeader { .. } => None,
        }
    }

    /// The query parameters this strategy sets on its requests: a stream's
    /// own `params` must not repeat them, or the paginator would overwrite
    /// them. `offset` sets `offset_param` and `limit_param`; `page_number`
    /// sets `page_param` and `size_param` (if any); `cursor` sets
    /// `cursor_param` when the token is sent in the query and `size_param`
    /// unless it is sent in the body. `next_url` and `link_header` follow
    /// URLs given by the API and set none, nor does `none`.
    pub fn managed_params(&self) -> Vec<&str> {
        match self {
            Pagination::Offset {
                offset_param,
                limit_param,
                ..
            } => vec![offset_param, limit_param],
            Pagination::PageNumber {
                page_param,
                size_param,
                ..
            } => std::iter::once(page_param.as_str())
                .chain(size_param.as_deref())
                .collect(),
            Pagination::Cursor {
                cursor_param,
                send_in,
                size_param,
                ..
            } => {
                let mut v = Vec::new();
                if *send_in == TokenLocation::Query {
                    v.push(cursor_param.as_str());
                }
                if *send_in != TokenLocation::Body {
                    v.extend(size_param.as_deref());
                }
                v
            }
            Pagination::None | Pagination::NextUrl { .. } | Pagination::LinkHeader { .. } => {
                Vec::new()
            }
        }
    }

    /// The stop conditions, if the strategy pages at all.
    pub fn stop(&self) -> Option<&StopConditions> {
        match self {
            Pagination::None => None,
            Pagination::Offset { stop, .. }
            | Pagination::PageNumber { stop, .. }
            | Pagination::Cursor { stop, .. }
            | Pagination::NextUrl { stop, .. }
            | Pagination::LinkHeader { stop, .. } => Some(stop),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_offset_param() -> String {
    "offset".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_page_param() -> String {
    "page".into()
}
fn default_size_param() -> Option<String> {
    Some("per_page".into())
}
fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_rel() -> String {
    "next".into()
}
fn default_page_size() -> IntOrTemplate {
    IntOrTemplate::Int(100)
}
fn default_first_page() -> u64 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Pagination {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn managed_params_are_the_query_parameters_the_strategy_sets() {
        let p = |j| parse(j).managed_params().join(",");
        assert_eq!(p(serde_json::json!({"type": "none"})), "");
        assert_eq!(p(serde_json::json!({"type": "offset"})), "offset,limit");
        assert_eq!(
            p(serde_json::json!({"type": "page_number"})),
            "page,per_page"
        );
        assert_eq!(
            p(serde_json::json!({"type": "page_number", "size_param": null})),
            "page"
        );
        let cursor = |send_in: &str| {
            p(serde_json::json!({
                "type": "cursor", "cursor_path": "$.next", "cursor_param": "after",
                "size_param": "limit", "send_in": send_in,
            }))
        };
        assert_eq!(cursor("query"), "after,limit");
        assert_eq!(cursor("header"), "limit");
        assert_eq!(cursor("body"), "");
        assert_eq!(p(serde_json::json!({"type": "link_header"})), "");
        assert_eq!(
            p(serde_json::json!({"type": "next_url", "next_url_path": "$.next"})),
            ""
        );
    }
}
