//! An imitation of Zendesk's "Incremental Ticket Export, Cursor Based"
//! (`GET /api/v2/incremental/tickets/cursor.json`), after Zendesk's API reference and its guide
//! "Using the Incremental Exports API":
//!
//! * the first request gives `start_time` (Unix seconds), later ones the `cursor` of the
//!   previous page (`after_cursor`, or simply follow `after_url`);
//! * tickets come in the order they changed (`generated_timestamp`, then id), each exactly once;
//! * `end_of_stream: true` marks the page that reached the present, and its `after_cursor`
//!   still points just past the last change, so a later export from it returns only what
//!   changed since ([`ZendeskStore::touch`]);
//! * auth is HTTP basic `{email}/token:{api_token}`; anything else gets Zendesk's
//!   `401 {"error": "Couldn't authenticate you"}`;
//! * every authenticated response carries `X-Rate-Limit` / `X-Rate-Limit-Remaining` and
//!   `ratelimit-limit` / `ratelimit-remaining` / `ratelimit-reset`; a refused request gets `429`
//!   with `Retry-After`.
//!
//! Not a data endpoint: no latency, faults or global rate limit.

use std::sync::RwLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::apis::mix;
use crate::rate_limit::{ApiLimit, RateLimiter, set_header};
use crate::state::AppState;
use crate::util::{
    Params, base64_decode, base64_encode, format_rfc3339, json, read, unix_now, write,
};
use crate::{ZENDESK_EMAIL, ZENDESK_TOKEN};

pub(crate) const EXPORT_PATH: &str = "/api/v2/incremental/tickets/cursor.json";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(EXPORT_PATH, get(export))
        .route("/api/v2/incremental/tickets/cursor", get(export))
}

/// 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;
const DEFAULT_PER_PAGE: usize = 1000;
const MAX_PER_PAGE: usize = 1000;
/// Zendesk's default account limit, reported when no limit is configured.
const NOMINAL_LIMIT: (u32, Duration) = (700, Duration::from_secs(60));

const STATUSES: [&str; 6] = ["new", "open", "pending", "hold", "solved", "closed"];
const TYPES: [&str; 4] = ["question", "incident", "problem", "task"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
const TAGS: [&str; 4] = ["billing", "login", "shipping", "bug"];
const TOPICS: [&str; 8] = [
    "Printer on fire",
    "Cannot log in",
    "Refund request",
    "Invoice is wrong",
    "Feature request: dark mode",
    "App crashes on start",
    "Password reset link expired",
    "Shipping delayed",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) id: u64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    /// When the ticket last entered the export (Unix seconds): the export's order.
    pub(crate) generated: i64,
}

impl Ticket {
    /// Ticket `id`: created at `2024-01-01T00:00:00Z + 300 id` seconds, updated 0 to 71 hours
    /// later, rounded up to a multiple of 15 minutes (so many tickets share an update time).
    fn initial(id: u64) -> Ticket {
        let created_at = EPOCH + 300 * id as i64;
        let later = created_at + (mix(id ^ 0x2e5d) % 72) as i64 * 3600;
        let updated_at = (later + 899).div_euclid(900) * 900;
        Ticket {
            id,
            created_at,
            updated_at,
            generated: updated_at,
        }
    }

    /// Deleted tickets (every 97th) are in the export with `status: "deleted"`, as Zendesk's.
    fn deleted(&self) -> bool {
        self.id.is_multiple_of(97)
    }

    fn status(&self) -> &'static str {
        if self.deleted() {
            "deleted"
        } else {
            STATUSES[(mix(self.id) % 6) as usize]
        }
    }

    fn to_json(self, base: &str) -> Value {
        let id = self.id;
        let h = mix(id ^ 0x7e11);
        let subject = format!("{} (#{id})", TOPICS[(h % 8) as usize]);
        let status = self.status();
        json!({
            "url": format!("{base}/api/v2/tickets/{id}.json"),
            "id": id,
            "external_id": null,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": null}},
            "created_at": format_rfc3339(self.created_at),
            "updated_at": format_rfc3339(self.updated_at),
            "generated_timestamp": self.generated,
            "type": TYPES[((h >> 8) % 4) as usize],
            "subject": subject,
            "raw_subject": subject,
            "description": format!("Description of ticket {id}."),
            "priority": PRIORITIES[((h >> 16) % 4) as usize],
            "status": status,
            "recipient": null,
            "requester_id": 10_000 + id % 50,
            "submitter_id": 10_000 + id % 50,
            "assignee_id": if status == "new" { Value::Null } else { json!(20_000 + id % 7) },
            "organization_id": 30_000 + id % 12,
            "group_id": 40_000 + id % 3,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "forum_topic_id": null,
            "problem_id": null,
            "has_incidents": false,
            "is_public": true,
            "due_at": null,
            "tags": [TAGS[((h >> 24) % 4) as usize]],
            "custom_fields": [],
            "satisfaction_rating": null,
            "sharing_agreement_ids": [],
            "fields": [],
            "followup_ids": [],
            "brand_id": 360_000_000_001_u64,
            "allow_channelback": false,
            "allow_attachments": true,
            "from_messaging_channel": false,
        })
    }
}

/// The tickets (in id order) and the endpoint's own rate limiter.
pub(crate) struct ZendeskStore {
    tickets: RwLock<Vec<Ticket>>,
    limiter: RateLimiter,
}

impl ZendeskStore {
    pub(crate) fn new(n: usize) -> Self {
        ZendeskStore {
            tickets: RwLock::new((1..=n as u64).map(Ticket::initial).collect()),
            limiter: RateLimiter::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.tickets).len()
    }

    /// Updates those tickets: `updated_at` and `generated_timestamp` become 60 s after the
    /// newest `generated_timestamp` (all the same instant). Unknown ids are ignored.
    pub(crate) fn touch(&self, ids: &[u64]) {
        let mut g = write(&self.tickets);
        let at = g.iter().map(|t| t.generated).max().unwrap_or(EPOCH) + 60;
        for t in g.iter_mut().filter(|t| ids.contains(&t.id)) {
            t.updated_at = at;
            t.generated = at;
        }
    }

    /// Every ticket in export order: `(generated_timestamp, id)`.
    pub(crate) fn in_export_order(&self) -> Vec<Ticket> {
        let mut all = read(&self.tickets).clone();
        all.sort_by_key(|t| (t.generated, t.id));
        all
    }
}

/// A position in the export: just after the change `(generated_timestamp, id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    ts: i64,
    id: u64,
}

/// Zendesk's cursors are base64 of `<timestamp>.0||<ticket id>|` (e.g.
/// `MTU3NjYxMzUzOS4wfHw0Njd8` is `1576613539.0||467|`); they are opaque to clients.
pub(crate) fn encode_cursor(p: Position) -> String {
    base64_encode(format!("{}.0||{}|", p.ts, p.id).as_bytes())
}

pub(crate) fn decode_cursor(c: &str) -> Option<Position> {
    let raw = String::from_utf8(base64_decode(c)?).ok()?;
    let (ts, rest) = raw.split_once("||")?;
    let id = rest.strip_suffix('|')?;
    let ts = ts.strip_suffix(".0").unwrap_or(ts);
    Some(Position {
        ts: ts.parse().ok()?,
        id: id.parse().ok()?,
    })
}

/// Zendesk's error body: `{"error": "<kind>", "description": "<text>"}`.
fn zendesk_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        &json!({ "error": error, "description": description }),
    )
}

fn check_auth(st: &AppState, h: &HeaderMap) -> Result<(), Response> {
    let ok = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest)
        })
        .and_then(base64_decode)
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|creds| creds == format!("{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}"));
    if ok {
        return Ok(());
    }
    st.shared.log.count(|c| c.auth_failures += 1);
    let mut resp = json(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "Couldn't authenticate you" }),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Web Password\""),
    );
    Err(resp)
}

fn add_rate_headers(limit: &ApiLimit, headers: &mut HeaderMap) {
    set_header(headers, "x-rate-limit", limit.limit.to_string());
    set_header(
        headers,
        "x-rate-limit-remaining",
        limit.remaining().to_string(),
    );
    set_header(headers, "ratelimit-limit", limit.limit.to_string());
    set_header(
        headers,
        "ratelimit-remaining",
        limit.remaining().to_string(),
    );
    set_header(headers, "ratelimit-reset", limit.reset_secs().to_string());
}

/// One page: the tickets, the position after it, and whether it reached the end.
fn page(
    st: &AppState,
    p: &Params,
) -> Result<(Vec<Ticket>, Position, Option<String>, bool), Response> {
    let invalid = |description: String| {
        Err(zendesk_error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            &description,
        ))
    };
    let per_page = match p.get("per_page").map(str::trim) {
        None | Some("") => DEFAULT_PER_PAGE,
        Some(v) => match v.parse::<usize>() {
            Ok(0) | Err(_) => {
                return invalid(format!("per_page must be a positive integer, got `{v}`"));
            }
            Ok(n) => n.min(MAX_PER_PAGE),
        },
    };
    let (from, used_cursor) = match (
        p.get("cursor").filter(|c| !c.is_empty()),
        p.get("start_time"),
    ) {
        (Some(c), _) => match decode_cursor(c) {
            Some(pos) => (pos, Some(c.to_string())),
            None => return invalid(format!("Invalid cursor `{c}`")),
        },
        (None, Some(s)) if !s.is_empty() => {
            let Ok(start) = s.trim().parse::<i64>() else {
                return invalid(format!(
                    "start_time must be an integer (Unix epoch seconds), got `{s}`"
                ));
            };
            if start > unix_now() - 60 {
                return Err(zendesk_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "InvalidValue",
                    "Too recent start_time. Use a start_time older than 1 minute",
                ));
            }
            // Everything changed at or after `start`.
            (Position { ts: start, id: 0 }, None)
        }
        _ => return invalid("Missing start_time or cursor parameter".to_string()),
    };
    let exclude_deleted = p
        .get("exclude_deleted")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let all: Vec<Ticket> = st
        .shared
        .zendesk
        .in_export_order()
        .into_iter()
        .filter(|t| !(exclude_deleted && t.deleted()))
        .collect();
    let start = all.partition_point(|t| {
        Position {
            ts: t.generated,
            id: t.id,
        } <= from
    });
    let end = (start + per_page).min(all.len());
    let tickets = all[start..end].to_vec();
    let after = tickets.last().map_or(from, |t| Position {
        ts: t.generated,
        id: t.id,
    });
    Ok((tickets, after, used_cursor, end == all.len()))
}

async fn export(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = check_auth(&st, &h) {
        return r;
    }
    let cfg = &st.shared.config;
    let limit = ApiLimit::check(
        &st.shared.zendesk.limiter,
        cfg.zendesk_rate_limit.as_ref(),
        NOMINAL_LIMIT,
    );
    if limit.refused {
        st.shared.log.count(|c| c.rate_limited += 1);
        let mut resp = zendesk_error(
            StatusCode::TOO_MANY_REQUESTS,
            "APIRateLimitExceeded",
            "Number of allowed API requests per minute exceeded",
        );
        add_rate_headers(&limit, resp.headers_mut());
        set_header(
            resp.headers_mut(),
            "retry-after",
            limit.retry_after_secs().to_string(),
        );
        return resp;
    }
    let p = Params::parse(q.as_deref());
    let mut resp = match page(&st, &p) {
        Err(r) => r,
        Ok((tickets, after, before, end_of_stream)) => {
            let base = st.base_url();
            // The next URL keeps the other parameters (`per_page`, `exclude_deleted`, …).
            let rest = Params(
                p.0.iter()
                    .filter(|(k, _)| k != "cursor" && k != "start_time")
                    .cloned()
                    .collect(),
            );
            let url = |cursor: &str| {
                format!(
                    "{base}{EXPORT_PATH}?{}",
                    rest.with(&[("cursor", cursor.to_string())]).encode()
                )
            };
            let after_cursor = encode_cursor(after);
            json(
                StatusCode::OK,
                &json!({
                    "tickets": tickets.iter().map(|t| t.to_json(base)).collect::<Vec<_>>(),
                    "after_url": url(&after_cursor),
                    "after_cursor": after_cursor,
                    "before_url": before.as_deref().map(url),
                    "before_cursor": before,
                    "end_of_stream": end_of_stream,
                }),
            )
        }
    };
    add_rate_headers(&limit, resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_look_like_zendesk() {
        let p = Position {
            ts: 1_576_613_539,
            id: 467,
        };
        assert_eq!(encode_cursor(p), "MTU3NjYxMzUzOS4wfHw0Njd8");
        assert_eq!(decode_cursor("MTU3NjYxMzUzOS4wfHw0Njd8"), Some(p));
        assert_eq!(decode_cursor("bm9wZQ=="), None);
        assert_eq!(decode_cursor("!!"), None);
    }

    #[test]
    fn tickets_share_update_times_and_touch_moves_them_last() {
        let s = ZendeskStore::new(500);
        let all = s.in_export_order();
        assert_eq!(all.len(), 500);
        assert!(all.windows(2).any(|w| w[0].generated == w[1].generated));
        assert!(all.iter().all(|t| t.updated_at >= t.created_at));
        assert!(all.iter().all(|t| t.updated_at % 900 == 0));
        let newest = all.last().unwrap().generated;
        s.touch(&[3, 1, 9999]);
        let after = s.in_export_order();
        let tail: Vec<u64> = after[498..].iter().map(|t| t.id).collect();
        assert_eq!(tail, vec![1, 3]);
        assert!(after[498..].iter().all(|t| t.generated == newest + 60));
    }
}
