//! An imitation of HubSpot's CRM search for contacts
//! (`POST /crm/v3/objects/contacts/search`), after HubSpot's guide "Search the CRM"
//! (developers.hubspot.com/docs/api-reference/crm/search-the-crm) and the contacts v3 reference:
//!
//! * the JSON body has `filterGroups` (each a list of `filters`: `propertyName`, `operator`
//!   `GTE`/`GT`/`LTE`/`LT`/`EQ`, `value`; groups are ORed, filters in a group ANDed), `sorts`
//!   (`propertyName`, `direction` `ASCENDING`/`DESCENDING`), `properties`, `limit` (at most 200)
//!   and `after` (the paging token of the page before);
//! * date properties compare as epoch milliseconds, and a filter's `value` may be milliseconds or
//!   an ISO 8601 instant; results come back with them as ISO 8601 text;
//! * the answer is `{"total", "results": [{"id", "properties", "createdAt", "updatedAt",
//!   "archived"}], "paging": {"next": {"after", "link"}}}`, without `paging` on the last page;
//! * **one query returns at most 10,000 results**: a request with `after` at 10,000 or more is a
//!   `400` with HubSpot's error body (`status`, `message`, `correlationId`, `category`);
//! * a request without `Authorization: Bearer …` is a `401`;
//! * every answer waits [`MockConfig::latency`](crate::MockConfig::latency).
//!
//! Contact `i` (1-based) was last modified `2024-01-01T00:00:00Z + (i / 3)` seconds: three
//! contacts share each modification time, so a query that ends at the cap often ends inside
//! such a group.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::state::AppState;
use crate::util::json;

pub(crate) const SEARCH_PATH: &str = "/crm/v3/objects/contacts/search";
/// What one query returns at most.
pub(crate) const QUERY_CAP: usize = 10_000;
const MAX_LIMIT: usize = 200;
/// 2024-01-01T00:00:00Z in milliseconds.
const EPOCH_MS: i64 = 1_704_067_200_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(SEARCH_PATH, post(search))
}

/// A contact's last modification, in epoch milliseconds.
fn modified(id: u64) -> i64 {
    EPOCH_MS + (id as i64 / 3) * 1000
}

fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let base = crate::util::format_rfc3339(secs);
    format!("{}.{:03}Z", &base[..base.len() - 1], ms.rem_euclid(1000))
}

/// Milliseconds of a filter value: a number, digits, or an ISO 8601 instant.
fn millis(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let s = v.as_str()?;
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    crate::util::parse_rfc3339_micros(s).map(|us| us.div_euclid(1000))
}

fn hubspot_error(status: StatusCode, message: &str, category: &str) -> Response {
    json(
        status,
        &json!({
            "status": "error",
            "message": message,
            "correlationId": "5f0c3a52-7c1e-4d2b-9a61-mock",
            "category": category,
        }),
    )
}

/// Whether contact `id` passes one filter on `lastmodifieddate` or `hs_object_id`.
fn passes(id: u64, f: &Value) -> Result<bool, String> {
    let name = f["propertyName"].as_str().unwrap_or("");
    let have = match name {
        "lastmodifieddate" | "createdate" => modified(id),
        "hs_object_id" => id as i64,
        other => return Err(format!("filtering on `{other}` is not imitated")),
    };
    let want = millis(&f["value"]).ok_or_else(|| format!("bad filter value {}", f["value"]))?;
    Ok(match f["operator"].as_str().unwrap_or("") {
        "GTE" => have >= want,
        "GT" => have > want,
        "LTE" => have <= want,
        "LT" => have < want,
        "EQ" => have == want,
        op => return Err(format!("operator `{op}` is not imitated")),
    })
}

async fn search(State(st): State<AppState>, headers: HeaderMap, body: String) -> Response {
    tokio::time::sleep(st.shared.config.latency).await;
    if !crate::util::has_bearer(&headers) {
        return hubspot_error(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials not found.",
            "INVALID_AUTHENTICATION",
        );
    }
    let Ok(q) = serde_json::from_str::<Value>(&body) else {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "Invalid input JSON",
            "VALIDATION_ERROR",
        );
    };
    let limit = q["limit"].as_u64().unwrap_or(10) as usize;
    if limit > MAX_LIMIT {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            &format!("limit must be at most {MAX_LIMIT}"),
            "VALIDATION_ERROR",
        );
    }
    let after = match &q["after"] {
        Value::Null => 0,
        v => match v
            .as_str()
            .and_then(|s| s.parse::<usize>().ok())
            .or(v.as_u64().map(|n| n as usize))
        {
            Some(a) => a,
            None => {
                return hubspot_error(
                    StatusCode::BAD_REQUEST,
                    "Invalid `after`",
                    "VALIDATION_ERROR",
                );
            }
        },
    };
    if after >= QUERY_CAP {
        // HubSpot's answer to paging past one query's 10,000 results.
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "There was a problem with the request.",
            "VALIDATION_ERROR",
        );
    }
    let groups = q["filterGroups"].as_array().cloned().unwrap_or_default();
    let mut ids = Vec::new();
    for id in 1..=st.shared.config.hubspot_contacts as u64 {
        let mut any = groups.is_empty();
        for g in &groups {
            let mut all = true;
            for f in g["filters"].as_array().into_iter().flatten() {
                match passes(id, f) {
                    Ok(p) => all &= p,
                    Err(e) => {
                        return hubspot_error(StatusCode::BAD_REQUEST, &e, "VALIDATION_ERROR");
                    }
                }
            }
            any |= all;
        }
        if any {
            ids.push(id);
        }
    }
    let descending = q["sorts"]
        .as_array()
        .and_then(|s| s.first())
        .is_some_and(|s| s["direction"] == "DESCENDING");
    if descending {
        ids.reverse();
    }
    let total = ids.len();
    let page: Vec<Value> = ids
        .iter()
        .skip(after)
        .take(limit)
        .map(|&id| {
            let at = iso(modified(id));
            json!({
                "id": id.to_string(),
                "properties": {
                    "createdate": iso(EPOCH_MS - 86_400_000 + id as i64 * 1000),
                    "email": format!("contact{id}@example.com"),
                    "firstname": format!("First{id}"),
                    "hs_object_id": id.to_string(),
                    "lastmodifieddate": at,
                    "lastname": format!("Last{id}"),
                },
                "createdAt": iso(EPOCH_MS - 86_400_000 + id as i64 * 1000),
                "updatedAt": at,
                "archived": false,
            })
        })
        .collect();
    let mut out = json!({ "total": total, "results": page });
    let next = after + limit;
    if next < total {
        out["paging"] =
            json!({ "next": { "after": next.to_string(), "link": format!("?after={next}") } });
    }
    json(StatusCode::OK, &out)
}
