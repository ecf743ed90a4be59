//! An imitation of Slack's Web API method `conversations.list`
//! (`POST` or `GET /api/conversations.list`), after Slack's method reference and its
//! pagination guide:
//!
//! * arguments come as query parameters and/or an `application/x-www-form-urlencoded` body
//!   (a mix of both is fine; the body wins);
//! * the token is `Authorization: Bearer xoxb-…`, or the `token` form field of the body;
//! * errors are HTTP 200 with `{"ok": false, "error": "not_authed" | "invalid_auth" |
//!   "invalid_cursor" | "invalid_limit" | "invalid_types"}`;
//! * cursor pagination: `response_metadata.next_cursor` is `""` on the last page, and pages may
//!   hold fewer than `limit` conversations before the end (archived ones are dropped *after*
//!   the page is cut when `exclude_archived=true`, as Slack warns);
//! * a refused request gets HTTP `429`, `Retry-After: <seconds>` and
//!   `{"ok": false, "error": "ratelimited"}`.
//!
//! Not a data endpoint: no latency, faults or global rate limit.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::SLACK_TOKEN;
use crate::apis::mix;
use crate::rate_limit::{ApiLimit, RateLimiter, set_header};
use crate::state::AppState;
use crate::util::{Params, base64_decode, base64_encode, json};

pub(crate) const LIST_PATH: &str = "/api/conversations.list";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(LIST_PATH, get(conversations_list).post(conversations_list))
}

/// The workspace ("team") every conversation belongs to.
pub(crate) const TEAM_ID: &str = "T0MOCK0001";
/// `created` of conversation 0; conversation `k` is created `k` hours later.
const EPOCH: i64 = 1_600_000_000;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Never enforced without a configured limit; Slack sends no rate-limit headers on success.
const NOMINAL_LIMIT: (u32, Duration) = (1_000_000, Duration::from_secs(60));

const WORDS: [&str; 10] = [
    "engineering",
    "design",
    "support",
    "sales",
    "marketing",
    "ops",
    "releases",
    "incidents",
    "social",
    "announcements",
];
const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// What kind of conversation number `k` is (`types` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Public,
    Private,
    Mpim,
    Im,
}

impl Kind {
    /// `k % 40 == 0`: a direct message; `k % 40 == 20`: a group DM; otherwise `k % 5 == 3`:
    /// a private channel, else a public one.
    pub(crate) fn of(k: u64) -> Kind {
        match (k % 40, k % 5) {
            (0, _) => Kind::Im,
            (20, _) => Kind::Mpim,
            (_, 3) => Kind::Private,
            _ => Kind::Public,
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "public_channel" => Kind::Public,
            "private_channel" => Kind::Private,
            "mpim" => Kind::Mpim,
            "im" => Kind::Im,
            _ => return None,
        })
    }
}

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// 10 base-36 digits of `k * M mod 36^10`: a bijection (M is prime to 36), so ids are unique.
fn base36_id(prefix: char, k: u64) -> String {
    const MODULUS: u128 = 3_656_158_440_062_976; // 36^10
    let mut n = (u128::from(k) * 25_214_903_917) % MODULUS;
    let mut digits = [b'0'; 10];
    for d in digits.iter_mut().rev() {
        *d = BASE36[(n % 36) as usize];
        n /= 36;
    }
    let mut id = String::with_capacity(11);
    id.push(prefix);
    id.extend(digits.iter().map(|&b| char::from(b)));
    id
}

/// The id of conversation `k`: `C…` for channels, `G…` for group DMs, `D…` for DMs.
pub(crate) fn conversation_id(k: u64) -> String {
    let prefix = match Kind::of(k) {
        Kind::Public | Kind::Private => 'C',
        Kind::Mpim => 'G',
        Kind::Im => 'D',
    };
    base36_id(prefix, k)
}

fn user_id(u: u64) -> String {
    base36_id('U', 1_000_000 + u)
}

/// Channels `k % 9 == 4` are archived (direct messages never are).
pub(crate) fn archived(k: u64) -> bool {
    matches!(Kind::of(k), Kind::Public | Kind::Private) && k % 9 == 4
}

fn channel_name(k: u64) -> String {
    match k {
        1 => "general".into(),
        2 => "random".into(),
        _ => format!("{}-{k}", WORDS[(k % 10) as usize]),
    }
}

fn conversation_json(k: u64) -> Value {
    let created = EPOCH + 3600 * k as i64;
    let updated_ms = (created + 86_400) * 1000 + (mix(k) % 1000) as i64;
    let creator = user_id(mix(k ^ 0xc0) % 5);
    let kind = Kind::of(k);
    if kind == Kind::Im {
        return json!({
            "id": conversation_id(k),
            "created": created,
            "is_archived": false,
            "is_im": true,
            "is_org_shared": false,
            "context_team_id": TEAM_ID,
            "updated": updated_ms,
            "user": user_id(k % 5),
            "is_user_deleted": false,
            "priority": 0,
        });
    }
    let name = if kind == Kind::Mpim {
        let a = (k % 5) as usize;
        format!(
            "mpdm-{}--{}--{}-1",
            USERS[a],
            USERS[(a + 1) % 5],
            USERS[(a + 2) % 5]
        )
    } else {
        channel_name(k)
    };
    let channel = matches!(kind, Kind::Public | Kind::Private);
    json!({
        "id": conversation_id(k),
        "name": name,
        "is_channel": channel,
        "is_group": false,
        "is_im": false,
        "is_mpim": kind == Kind::Mpim,
        "is_private": kind != Kind::Public,
        "created": created,
        "is_archived": archived(k),
        "is_general": k == 1,
        "unlinked": 0,
        "name_normalized": name,
        "is_shared": false,
        "is_org_shared": false,
        "is_pending_ext_shared": false,
        "pending_shared": [],
        "context_team_id": TEAM_ID,
        "updated": updated_ms,
        "parent_conversation": null,
        "creator": creator,
        "is_ext_shared": false,
        "shared_team_ids": [TEAM_ID],
        "pending_connected_team_ids": [],
        "is_member": k % 2 == 1,
        "topic": {
            "value": if channel { format!("Topic of {name}") } else { String::new() },
            "creator": if channel { creator.clone() } else { String::new() },
            "last_set": if channel { created + 60 } else { 0 },
        },
        "purpose": {
            "value": if channel { format!("Purpose of {name}") } else { "Group messaging".into() },
            "creator": creator,
            "last_set": created + 120,
        },
        "previous_names": [],
        "num_members": if kind == Kind::Mpim { 3 } else { 1 + mix(k ^ 0x99) % 200 },
    })
}

/// The conversations `1..=n` (only the count and an id → number index are stored) and the
/// method's own rate limiter.
pub(crate) struct SlackStore {
    count: u64,
    by_id: HashMap<String, u64>,
    limiter: RateLimiter,
}

impl SlackStore {
    pub(crate) fn new(n: usize) -> Self {
        let count = n as u64;
        SlackStore {
            count,
            by_id: (1..=count).map(|k| (conversation_id(k), k)).collect(),
            limiter: RateLimiter::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }
}

/// Slack's cursors are base64 of `<kind>:<id>`, e.g. `dGVhbTpDMDYxRkE1UEI=` is
/// `team:C061FA5PB`; here the id is the first conversation of the next page.
fn encode_cursor(k: u64) -> String {
    base64_encode(format!("team:{}", conversation_id(k)).as_bytes())
}

fn decode_cursor(store: &SlackStore, c: &str) -> Option<u64> {
    let raw = String::from_utf8(base64_decode(c)?).ok()?;
    store.by_id.get(raw.strip_prefix("team:")?).copied()
}

/// A Web API answer: always `application/json; charset=utf-8`.
fn slack_json(status: StatusCode, v: &Value) -> Response {
    let mut resp = json(status, v);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// `{"ok": false, "error": code}` with HTTP 200, as Slack answers every method error.
fn slack_error(code: &str) -> Response {
    slack_json(StatusCode::OK, &json!({ "ok": false, "error": code }))
}

/// The arguments: the form-encoded body first (it wins), then the query string.
fn arguments(h: &HeaderMap, query: Option<&str>, body: &[u8]) -> Params {
    let form = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let mut p = if form {
        Params(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    } else {
        Params::default()
    };
    p.0.extend(Params::parse(query).0);
    p
}

/// `Ok(())`, or the `not_authed` / `invalid_auth` answer. The token comes from
/// `Authorization: Bearer` or the body's `token` field (a `token` in the query string is not
/// read: Slack stopped accepting those).
fn check_auth(st: &AppState, h: &HeaderMap, form_token: Option<&str>) -> Result<(), Response> {
    let header_token = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        })
        .filter(|t| !t.is_empty());
    let token = header_token.or_else(|| form_token.filter(|t| !t.is_empty()).map(str::to_string));
    match token {
        Some(t) if t == SLACK_TOKEN => Ok(()),
        other => {
            st.shared.log.count(|c| c.auth_failures += 1);
            Err(slack_error(if other.is_some() {
                "invalid_auth"
            } else {
                "not_authed"
            }))
        }
    }
}

/// One page: `(conversation numbers, next_cursor)`.
fn page(store: &SlackStore, p: &Params) -> Result<(Vec<u64>, String), Response> {
    let limit = match p.get("limit").map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=MAX_LIMIT) => n,
            _ => return Err(slack_error("invalid_limit")),
        },
    };
    let types: Vec<Kind> = match p.get("types").map(str::trim) {
        None | Some("") => vec![Kind::Public],
        Some(list) => list
            .split(',')
            .map(|t| Kind::parse(t.trim()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| slack_error("invalid_types"))?,
    };
    let exclude_archived = p
        .get("exclude_archived")
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let from = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => 1,
        Some(c) => decode_cursor(store, c).ok_or_else(|| slack_error("invalid_cursor"))?,
    };
    let mut window = (from..=store.count).filter(|&k| types.contains(&Kind::of(k)));
    let cut: Vec<u64> = window.by_ref().take(limit).collect();
    let next = window.next().map(encode_cursor).unwrap_or_default();
    let page = cut
        .into_iter()
        .filter(|&k| !(exclude_archived && archived(k)))
        .collect();
    Ok((page, next))
}

async fn conversations_list(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let form = arguments(&h, None, &body);
    if let Err(r) = check_auth(&st, &h, form.get("token")) {
        return r;
    }
    let store = &st.shared.slack;
    let limit = ApiLimit::check(
        &store.limiter,
        st.shared.config.slack_rate_limit.as_ref(),
        NOMINAL_LIMIT,
    );
    if limit.refused {
        st.shared.log.count(|c| c.rate_limited += 1);
        let mut resp = slack_json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({ "ok": false, "error": "ratelimited" }),
        );
        set_header(
            resp.headers_mut(),
            "retry-after",
            limit.retry_after_secs().to_string(),
        );
        return resp;
    }
    let p = arguments(&h, q.as_deref(), &body);
    match page(store, &p) {
        Err(r) => r,
        Ok((ks, next)) => slack_json(
            StatusCode::OK,
            &json!({
                "ok": true,
                "channels": ks.into_iter().map(conversation_json).collect::<Vec<_>>(),
                "response_metadata": { "next_cursor": next },
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_cursors_round_trip() {
        let s = SlackStore::new(5000);
        assert_eq!(s.by_id.len(), 5000);
        assert!(conversation_id(1).starts_with('C') && conversation_id(1).len() == 11);
        assert!(conversation_id(40).starts_with('D'));
        assert!(conversation_id(20).starts_with('G'));
        for k in [1, 2, 39, 40, 4999] {
            assert_eq!(decode_cursor(&s, &encode_cursor(k)), Some(k));
        }
        assert_eq!(decode_cursor(&s, "dGVhbTpDMDYxRkE1UEI="), None);
        assert_eq!(decode_cursor(&s, "%%%"), None);
    }
}
