//! An imitation of Notion's search (`POST /v1/search`), after Notion's API reference
//! ("Search by title", "Pagination", "Versioning" and the page object):
//!
//! * every request needs `Authorization: Bearer …` (else `401` `unauthorized`) and a
//!   `Notion-Version` header (else `400` `missing_version`), errors as
//!   `{"object": "error", "status", "code", "message"}`;
//! * the JSON body has `filter` (`{"property": "object", "value": "page"}`), `sort`
//!   (`{"direction": "ascending"|"descending", "timestamp": "last_edited_time"}`; default: most
//!   recently edited first), `page_size` (at most 100, default 100) and `start_cursor`;
//! * the answer is `{"object": "list", "results", "next_cursor", "has_more", "type":
//!   "page_or_data_source", "page_or_data_source": {}}`; `next_cursor` is the id of the next
//!   result (opaque to clients), `null` with `has_more: false` on the last page;
//! * times are ISO 8601 with milliseconds, rounded to the minute, as Notion's are.
//!
//! Page `i` (1-based) was created and last edited at `2024-01-01T00:00:00Z + 2 i` minutes, rounded
//! down to 5 minutes (so a few pages share each edit time); [`NotionStore::touch`] edits pages.

use std::sync::RwLock;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::util::{format_rfc3339, json, read, write};

/// 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;
const MAX_PAGE_SIZE: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/search", post(search))
}

/// The pages: `(number, created, last edited)` in Unix seconds.
pub(crate) struct NotionStore {
    pages: RwLock<Vec<(u64, i64, i64)>>,
}

impl NotionStore {
    pub(crate) fn new(n: usize) -> NotionStore {
        let pages = (1..=n as u64)
            .map(|i| {
                let at = EPOCH + (2 * i as i64 * 60) / 300 * 300;
                (i, at, at)
            })
            .collect();
        NotionStore {
            pages: RwLock::new(pages),
        }
    }

    /// Pages `numbers` are edited: their `last_edited_time` becomes 5 minutes after the newest.
    pub(crate) fn touch(&self, numbers: &[u64]) {
        let mut g = write(&self.pages);
        let at = g.iter().map(|p| p.2).max().unwrap_or(EPOCH) + 300;
        for p in g.iter_mut().filter(|p| numbers.contains(&p.0)) {
            p.2 = at;
        }
    }
}

/// A page's id, a UUID as Notion writes them.
pub(crate) fn page_id(n: u64) -> String {
    format!("{:08x}-7c1e-4d2b-9a61-{:012x}", n, n * 7919)
}

fn time(secs: i64) -> String {
    let t = format_rfc3339(secs);
    format!("{}.000Z", &t[..t.len() - 1])
}

fn page(n: u64, created: i64, edited: i64) -> Value {
    let id = page_id(n);
    let title = format!("Meeting notes {n}");
    json!({
        "object": "page",
        "id": id,
        "created_time": time(created),
        "last_edited_time": time(edited),
        "created_by": { "object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4" },
        "last_edited_by": { "object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4" },
        "cover": null,
        "icon": null,
        "parent": { "type": "workspace", "workspace": true },
        "archived": false,
        "in_trash": false,
        "properties": {
            "title": {
                "id": "title",
                "type": "title",
                "title": [{
                    "type": "text",
                    "text": { "content": title, "link": null },
                    "annotations": { "bold": false, "italic": false, "strikethrough": false,
                        "underline": false, "code": false, "color": "default" },
                    "plain_text": title,
                    "href": null
                }]
            }
        },
        "url": format!("https://www.notion.so/Meeting-notes-{n}-{}", id.replace('-', "")),
        "public_url": null
    })
}

fn notion_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &json!({ "object": "error", "status": status.as_u16(), "code": code, "message": message }),
    )
}

async fn search(State(st): State<AppState>, headers: HeaderMap, body: String) -> Response {
    tokio::time::sleep(st.shared.config.latency).await;
    if !crate::util::has_bearer(&headers) {
        return notion_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "API token is invalid.",
        );
    }
    if headers.get("notion-version").is_none() {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        );
    }
    let q: Value = if body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(_) => {
                return notion_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "Error parsing JSON body.",
                );
            }
        }
    };
    let size = q["page_size"].as_u64().unwrap_or(100) as usize;
    if size == 0 || size > MAX_PAGE_SIZE {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "body failed validation: body.page_size should be less than or equal to `100`.",
        );
    }
    let ascending = q["sort"]["direction"] == "ascending";
    let mut pages = read(&st.shared.notion.pages).clone();
    // Edit time, then page number, as the sort asks (newest first by default).
    pages.sort_by_key(|p| (p.2, p.0));
    if !ascending {
        pages.reverse();
    }
    let start = match q["start_cursor"].as_str() {
        None => 0,
        Some(c) => match pages.iter().position(|p| page_id(p.0) == c) {
            Some(i) => i,
            None => {
                return notion_error(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    "The start_cursor provided is invalid.",
                );
            }
        },
    };
    let results: Vec<Value> = pages
        .iter()
        .skip(start)
        .take(size)
        .map(|&(n, c, e)| page(n, c, e))
        .collect();
    let next = pages.get(start + size).map(|p| page_id(p.0));
    json(
        StatusCode::OK,
        &json!({
            "object": "list",
            "results": results,
            "next_cursor": next,
            "has_more": next.is_some(),
            "type": "page_or_data_source",
            "page_or_data_source": {},
        }),
    )
}
