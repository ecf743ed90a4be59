//! The generated dataset and its `/gen/*` endpoints, one per pagination style.
//!
//! Records are `{"id", "name", "value", "updated_at", "tags", "nested"}` in id order; every
//! endpoint accepts `updated_since=<RFC 3339>` (keeps records with `updated_at >=` it, inclusive)
//! and `updated_after=<RFC 3339>` (keeps records with `updated_at >` it, exclusive), and uses a
//! page size of 10 unless told otherwise.

use std::sync::RwLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::util::{
    Params, bad_request, base64_decode, base64url_encode, error, format_rfc3339, json,
    parse_rfc3339, parse_rfc3339_micros, read, unix_now, write,
};

/// 2024-01-01T00:00:00Z.
const BASE_TIME: i64 = 1_704_067_200;
const DEFAULT_PAGE_SIZE: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GenRecord {
    pub(crate) id: u64,
    /// Unix seconds.
    pub(crate) updated_at: i64,
}

impl GenRecord {
    pub(crate) fn to_json(self) -> Value {
        let id = self.id;
        json!({
            "id": id,
            "name": format!("item-{id}"),
            "value": id * 7 % 1000,
            "updated_at": format_rfc3339(self.updated_at),
            "tags": ["a", "b"],
            "nested": { "x": id },
        })
    }
}

pub(crate) struct GenStore {
    records: RwLock<Vec<GenRecord>>,
}

impl GenStore {
    pub(crate) fn new(n: usize) -> Self {
        GenStore {
            records: RwLock::new(
                (1..=n as u64)
                    .map(|id| GenRecord {
                        id,
                        updated_at: BASE_TIME + 60 * id as i64,
                    })
                    .collect(),
            ),
        }
    }

    /// "Now" for a mutation: the wall clock, but never before the newest record.
    fn now(records: &[GenRecord]) -> i64 {
        let newest = records.iter().map(|r| r.updated_at).max().unwrap_or(0);
        unix_now().max(newest)
    }

    pub(crate) fn touch(&self, ids: &[u64]) {
        let mut g = write(&self.records);
        let now = Self::now(&g);
        for r in g.iter_mut().filter(|r| ids.contains(&r.id)) {
            r.updated_at = now;
        }
    }

    pub(crate) fn add(&self, n: usize) {
        let mut g = write(&self.records);
        let now = Self::now(&g);
        let next = g.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        g.extend((next..next + n as u64).map(|id| GenRecord {
            id,
            updated_at: now,
        }));
    }

    /// Records in id order, optionally only those with `updated_at >= since`.
    pub(crate) fn select(&self, since: Option<i64>) -> Vec<GenRecord> {
        read(&self.records)
            .iter()
            .filter(|r| since.is_none_or(|s| r.updated_at >= s))
            .copied()
            .collect()
    }
}

/// The `/gen/*` routes (mounted under `/gen` on both listeners).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/offset", get(offset))
        .route("/page", get(page))
        .route("/page0", get(page0))
        .route("/cursor", get(cursor))
        .route("/cursor_header", get(cursor_header))
        .route("/cursor_body", post(cursor_body))
        .route("/next_absolute", get(next_absolute))
        .route("/next_relative", get(next_relative))
        .route("/next_relative_dot", get(next_relative_dot))
        .route("/link", get(link))
        .route("/single", get(single))
        .route("/odata", get(odata))
}

fn items(records: &[GenRecord]) -> Value {
    Value::Array(records.iter().map(|r| r.to_json()).collect())
}

fn since(raw: Option<&str>) -> Result<Option<i64>, Response> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) => parse_rfc3339(s).map(Some).ok_or_else(|| {
            bad_request(&format!(
                "`updated_since` must be an RFC 3339 timestamp, got `{s}`"
            ))
        }),
    }
}

/// `updated_after` as the smallest whole second that is strictly later than it.
fn after(raw: Option<&str>) -> Result<Option<i64>, Response> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) => parse_rfc3339_micros(s)
            .map(|m| Some(m.div_euclid(1_000_000) + 1))
            .ok_or_else(|| {
                bad_request(&format!(
                    "`updated_after` must be an RFC 3339 timestamp, got `{s}`"
                ))
            }),
    }
}

/// The records kept by `updated_since` (inclusive), `updated_after`
/// (exclusive) and `updated_before` (inclusive upper bound, for windows).
pub(crate) fn filtered(st: &AppState, p: &Params) -> Result<Vec<GenRecord>, Response> {
    let since = since(p.get("updated_since"))?;
    let after = after(p.get("updated_after"))?;
    let before = match p.get("updated_before") {
        None | Some("") => None,
        Some(s) => Some(parse_rfc3339(s).ok_or_else(|| {
            bad_request(&format!(
                "`updated_before` must be an RFC 3339 timestamp, got `{s}`"
            ))
        })?),
    };
    let min = match (since, after) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut records = st.shared.generated.select(min);
    if let Some(b) = before {
        records.retain(|r| r.updated_at <= b);
    }
    Ok(records)
}

/// Page size from `key` (default 10); 0 is refused so that clients cannot loop forever.
pub(crate) fn page_size(p: &Params, key: &str) -> Result<usize, Response> {
    match p.uint(key)? {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(0) => Err(bad_request(&format!("`{key}` must be at least 1"))),
        Some(n) => Ok(n as usize),
    }
}

fn window(records: &[GenRecord], start: usize, len: usize) -> &[GenRecord] {
    let start = start.min(records.len());
    &records[start..start.saturating_add(len).min(records.len())]
}

/// The records after id `after`, at most `limit`, and whether more follow.
fn after_id(records: &[GenRecord], after: u64, limit: usize) -> (&[GenRecord], bool) {
    let start = records.partition_point(|r| r.id <= after);
    let page = window(records, start, limit);
    (page, start + page.len() < records.len())
}

fn with_header(mut resp: Response, name: &'static str, value: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

fn run(f: impl FnOnce() -> Result<Response, Response>) -> Response {
    f().unwrap_or_else(|e| e)
}

/// `/gen/offset` semantics, shared with the `/auth/*` and `/bad/after/{n}` endpoints.
pub(crate) fn offset_page(st: &AppState, p: &Params) -> Result<Response, Response> {
    let recs = filtered(st, p)?;
    let offset = p.uint("offset")?.unwrap_or(0) as usize;
    // `max_limit`: the API's own page cap, silently lower than asked (as
    // GitHub's: `per_page` "up to a maximum of 100", docs.github.com,
    // "Traversing with pagination").
    let cap = p.uint("max_limit")?.map_or(usize::MAX, |m| m as usize);
    let limit = page_size(p, "limit")?.min(cap);
    let total = recs.len();
    let body = json!({ "data": items(window(&recs, offset, limit)), "total": total });
    Ok(with_header(
        json(StatusCode::OK, &body),
        "x-total-count",
        total.to_string(),
    ))
}

async fn offset(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| offset_page(&st, &Params::parse(q.as_deref())))
}

async fn page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let recs = filtered(&st, &p)?;
        let page = p.uint("page")?.unwrap_or(1);
        if page == 0 {
            return Err(bad_request("`page` is 1-based"));
        }
        let per_page = page_size(&p, "per_page")?;
        let total = recs.len();
        let start = (page as usize - 1).saturating_mul(per_page);
        Ok(json(
            StatusCode::OK,
            &json!({
                "results": items(window(&recs, start, per_page)),
                "page": page,
                "total_pages": total.div_ceil(per_page),
                "total": total,
            }),
        ))
    })
}

async fn page0(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let recs = filtered(&st, &p)?;
        let page = p.uint("page")?.unwrap_or(0) as usize;
        let size = page_size(&p, "size")?;
        Ok(json(
            StatusCode::OK,
            &items(window(&recs, page.saturating_mul(size), size)),
        ))
    })
}

fn encode_cursor(id: u64) -> String {
    base64url_encode(format!("after:{id}").as_bytes())
}

fn decode_cursor(c: Option<&str>) -> Result<u64, Response> {
    let Some(c) = c.filter(|c| !c.is_empty()) else {
        return Ok(0);
    };
    base64_decode(c)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("after:")?.parse().ok())
        .ok_or_else(|| bad_request(&format!("invalid cursor `{c}`")))
}

/// One cursor page: the records and the next cursor (if more follow).
fn cursor_page(
    st: &AppState,
    p: &Params,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Value, Option<String>), Response> {
    let recs = filtered(st, p)?;
    let after = decode_cursor(cursor)?;
    let (page, more) = after_id(&recs, after, limit);
    let next = match page.last() {
        Some(last) if more => Some(encode_cursor(last.id)),
        _ => None,
    };
    Ok((items(page), next))
}

async fn cursor(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let limit = page_size(&p, "limit")?;
        let (items, next) = cursor_page(&st, &p, p.get("cursor"), limit)?;
        Ok(json(
            StatusCode::OK,
            &json!({ "items": items, "has_more": next.is_some(), "next_cursor": next }),
        ))
    })
}

async fn cursor_header(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let limit = page_size(&p, "limit")?;
        let (items, next) = cursor_page(&st, &p, p.get("cursor"), limit)?;
        let resp = json(StatusCode::OK, &items);
        Ok(match next {
            Some(n) => with_header(resp, "x-next-cursor", n),
            None => resp,
        })
    })
}

async fn cursor_body(State(st): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    run(|| {
        let mut p = Params::parse(q.as_deref());
        let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| bad_request(&format!("request body is not JSON: {e}")))?
        };
        let cursor = match req.get("cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(bad_request(&format!(
                    "`cursor` must be a string, got {other}"
                )));
            }
        };
        let limit = match req.get("limit") {
            None | Some(Value::Null) => DEFAULT_PAGE_SIZE,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => n as usize,
                _ => {
                    return Err(bad_request(&format!(
                        "`limit` must be a positive integer, got {v}"
                    )));
                }
            },
        };
        for key in ["updated_since", "updated_after"] {
            if let Some(s) = req.get(key).and_then(Value::as_str) {
                p = p.with(&[(key, s.to_string())]);
            }
        }
        let (items, next) = cursor_page(&st, &p, cursor, limit)?;
        Ok(json(
            StatusCode::OK,
            &json!({ "records": items, "next": next }),
        ))
    })
}

/// One `after=&limit=` page and the query string of the next page (if any).
pub(crate) fn after_page(st: &AppState, p: &Params) -> Result<(Value, Option<String>), Response> {
    let recs = filtered(st, p)?;
    let after = p.uint("after")?.unwrap_or(0);
    let limit = page_size(p, "limit")?;
    let (page, more) = after_id(&recs, after, limit);
    let next = match page.last() {
        Some(last) if more => Some(
            p.with(&[("after", last.id.to_string()), ("limit", limit.to_string())])
                .encode(),
        ),
        _ => None,
    };
    Ok((items(page), next))
}

async fn next_absolute(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let (data, next) = after_page(&st, &Params::parse(q.as_deref()))?;
        let next = next.map(|n| format!("{}/gen/next_absolute?{n}", st.base_url()));
        Ok(json(
            StatusCode::OK,
            &json!({ "data": data, "links": { "next": next } }),
        ))
    })
}

async fn next_relative(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let (data, next) = after_page(&st, &Params::parse(q.as_deref()))?;
        let next = next.map(|n| format!("/gen/next_relative?{n}"));
        Ok(json(StatusCode::OK, &json!({ "data": data, "next": next })))
    })
}

async fn next_relative_dot(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let (data, next) = after_page(&st, &Params::parse(q.as_deref()))?;
        let next = next.map(|n| format!("next_relative_dot?{n}"));
        Ok(json(StatusCode::OK, &json!({ "data": data, "next": next })))
    })
}

async fn link(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let recs = filtered(&st, &p)?;
        let page = p.uint("page")?.unwrap_or(1);
        if page == 0 {
            return Err(bad_request("`page` is 1-based"));
        }
        let per_page = page_size(&p, "per_page")?;
        let last = recs.len().div_ceil(per_page).max(1) as u64;
        let start = (page as usize - 1).saturating_mul(per_page);
        let url = |n: u64| {
            let q = p.with(&[("page", n.to_string()), ("per_page", per_page.to_string())]);
            format!("<{}/gen/link?{}>", st.base_url(), q.encode())
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
            links.push(format!("{}; rel=\"prev\"", url((page - 1).min(last))));
        }
        if page < last {
            links.push(format!("{}; rel=\"next\"", url(page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        let resp = json(StatusCode::OK, &items(window(&recs, start, per_page)));
        Ok(if links.is_empty() {
            resp
        } else {
            with_header(resp, "link", links.join(", "))
        })
    })
}

async fn single(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let id = p.uint("id")?.unwrap_or(1);
        let recs = filtered(&st, &p)?;
        match recs.iter().find(|r| r.id == id) {
            Some(r) => Ok(json(StatusCode::OK, &r.to_json())),
            None => Err(error(StatusCode::NOT_FOUND, &format!("no record {id}"))),
        }
    })
}

async fn odata(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let recs = filtered(&st, &p)?;
        let skip = p.uint("$skip")?.unwrap_or(0) as usize;
        let top = page_size(&p, "$top")?;
        let mut body = json!({
            "@odata.context": format!("{}/gen/$metadata#items", st.base_url()),
            "value": items(window(&recs, skip, top)),
        });
        if p.get("$count") == Some("true") {
            body["@odata.count"] = json!(recs.len());
        }
        if skip.saturating_add(top) < recs.len() {
            let q = p.with(&[("$skip", (skip + top).to_string())]);
            body["@odata.nextLink"] = json!(format!("{}/gen/odata?{}", st.base_url(), q.encode()));
        }
        let mut resp = json(StatusCode::OK, &body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; odata.metadata=minimal"),
        );
        Ok(resp.into_response())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_mutations() {
        let s = GenStore::new(3);
        assert_eq!(
            s.select(None)[0].to_json(),
            json!({"id":1,"name":"item-1","value":7,"updated_at":"2024-01-01T00:01:00Z","tags":["a","b"],"nested":{"x":1}})
        );
        s.touch(&[2]);
        s.add(2);
        let since = BASE_TIME + 3600;
        let ids: Vec<u64> = s.select(Some(since)).iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![2, 4, 5]);
    }

    #[test]
    fn updated_after_is_exclusive() {
        assert_eq!(
            after(Some("2024-01-01T00:01:00Z")).ok(),
            Some(Some(BASE_TIME + 61))
        );
        assert_eq!(
            after(Some("2024-01-01T00:00:59.5Z")).ok(),
            Some(Some(BASE_TIME + 60))
        );
        assert_eq!(after(None).ok(), Some(None));
        assert!(after(Some("soon")).is_err());
    }

    #[test]
    fn cursor_round_trip() {
        assert_eq!(decode_cursor(Some(&encode_cursor(42))).ok(), Some(42));
        assert!(decode_cursor(Some("garbage!")).is_err());
        assert_eq!(decode_cursor(None).ok(), Some(0));
    }

    #[test]
    fn after_id_pages() {
        let s = GenStore::new(5);
        let recs = s.select(None);
        let (p, more) = after_id(&recs, 0, 2);
        assert_eq!((p.len(), more), (2, true));
        let (p, more) = after_id(&recs, 4, 2);
        assert_eq!((p.len(), more), (1, false));
        let (p, more) = after_id(&recs, 3, 2);
        assert_eq!((p.len(), more), (2, false));
    }
}
