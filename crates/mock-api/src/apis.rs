//! Imitations of real APIs, faithful to their public documentation:
//!
//! * `GET /stripe/v1/customers`: Stripe's "List all customers" (cursor pagination with
//!   `limit` / `starting_after` / `ending_before`, the `created[gt|gte|lt|lte]` filter, Stripe's
//!   list envelope, error body and API-key auth).
//! * `GET /tz/events`: records whose `updated_at` are RFC 3339 timestamps written with various
//!   UTC offsets, so that the text order differs from the order of the instants.
//!
//! Neither is a data endpoint: no latency, rate limit or faults.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::STRIPE_KEY;
use crate::state::AppState;
use crate::util::{
    Params, bad_request, base64_decode, format_rfc3339_micros, json, parse_rfc3339_micros, read,
    write,
};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/stripe/v1/customers", get(stripe_customers))
        .route("/tz/events", get(tz_events))
}

// ---------------------------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------------------------

/// `created` of customer number 0; customer `k` is created at `STRIPE_EPOCH + 60 * k`.
const STRIPE_EPOCH: i64 = 1_700_000_000;
const STRIPE_LIST_URL: &str = "/stripe/v1/customers";
const NO_KEY: &str = "You did not provide an API key. You need to provide your API key in the \
Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See \
https://stripe.com/docs/api#authentication for details, or we can help at \
https://support.stripe.com/.";

/// The customers `1..=n` (number `k` is created at `STRIPE_EPOCH + 60 * k`); only the count
/// and an id → number index are stored, every object is derived from its number.
pub(crate) struct StripeStore {
    inner: RwLock<StripeInner>,
}

struct StripeInner {
    count: u64,
    by_id: HashMap<String, u64>,
}

impl StripeStore {
    pub(crate) fn new(n: usize) -> Self {
        let s = StripeStore {
            inner: RwLock::new(StripeInner {
                count: 0,
                by_id: HashMap::new(),
            }),
        };
        s.add(n);
        s
    }

    /// Appends `n` customers, each created 60 s after the previous newest one.
    pub(crate) fn add(&self, n: usize) {
        let mut g = write(&self.inner);
        for _ in 0..n {
            g.count += 1;
            let k = g.count;
            g.by_id.insert(customer_id(k), k);
        }
    }

    pub(crate) fn len(&self) -> usize {
        read(&self.inner).count as usize
    }

    fn lookup(&self, id: &str) -> Option<u64> {
        read(&self.inner).by_id.get(id).copied()
    }
}

/// splitmix64's finaliser: a bijection on `u64`, so distinct numbers give distinct ids.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: u64, digits: usize, out: &mut String) {
    let mut buf = vec![b'0'; digits];
    for slot in buf.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.extend(buf.into_iter().map(char::from));
}

/// `cus_` + 14 base-62 characters, stable for a customer number. The last 11 characters
/// encode `mix(k)` (62^11 > 2^64), which makes the ids unique.
pub(crate) fn customer_id(k: u64) -> String {
    let mut id = String::from("cus_");
    base62(mix(k ^ 0x5eed) % (62 * 62 * 62), 3, &mut id);
    base62(mix(k), 11, &mut id);
    id
}

fn customer_created(k: u64) -> i64 {
    STRIPE_EPOCH + 60 * k as i64
}

fn customer_json(k: u64) -> Value {
    let id = customer_id(k);
    let prefix: String = id[4..12].to_ascii_uppercase();
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": customer_created(k),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": format!("customer{k}@example.com"),
        "invoice_prefix": prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null,
        },
        "livemode": false,
        "metadata": {},
        "name": format!("Customer {k}"),
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

/// Stripe's error body: `{"error": {"type": "invalid_request_error", "message", "param"?,
/// "code"?, "doc_url"?}}` (absent fields are left out, as Stripe does).
fn stripe_error(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let mut e = Map::new();
    if let Some(c) = code {
        e.insert("code".into(), json!(c));
        e.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                c.replace('_', "-")
            )),
        );
    }
    e.insert("message".into(), json!(message));
    if let Some(p) = param {
        e.insert("param".into(), json!(p));
    }
    e.insert("type".into(), json!("invalid_request_error"));
    json(status, &json!({ "error": Value::Object(e) }))
}

/// How Stripe shows a wrong key: the `sk_test_`-style prefix and the last 4 characters are
/// kept, everything else is replaced by `*` (all of it when the rest is 8 characters or less).
pub(crate) fn mask_key(key: &str) -> String {
    let b = key.as_bytes();
    let prefix_len = if b.len() >= 8
        && b[..2].iter().all(u8::is_ascii_lowercase)
        && b[2] == b'_'
        && (key[3..].starts_with("test_") || key[3..].starts_with("live_"))
    {
        8
    } else {
        0
    };
    let (prefix, rest) = key.split_at(prefix_len);
    let chars: Vec<char> = rest.chars().collect();
    let shown = if chars.len() > 8 { 4 } else { 0 };
    let mut out = prefix.to_string();
    out.extend(std::iter::repeat_n('*', chars.len() - shown));
    out.extend(&chars[chars.len() - shown..]);
    out
}

/// The API key of `Authorization: Bearer <key>` or HTTP basic `<key>:` (password ignored).
fn stripe_key(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    let key = if scheme.eq_ignore_ascii_case("basic") {
        let raw = String::from_utf8(base64_decode(rest)?).ok()?;
        raw.split_once(':')
            .map_or(raw.clone(), |(u, _)| u.to_string())
    } else {
        // Bearer, or whatever else was sent: Stripe reports it as an invalid key.
        rest.to_string()
    };
    (!key.is_empty()).then_some(key)
}

fn check_stripe_auth(st: &AppState, h: &HeaderMap) -> Result<(), Response> {
    let message = match stripe_key(h) {
        Some(k) if k == STRIPE_KEY => return Ok(()),
        Some(k) => format!("Invalid API Key provided: {}", mask_key(&k)),
        None => NO_KEY.to_string(),
    };
    st.shared.log.count(|c| c.auth_failures += 1);
    let mut resp = stripe_error(StatusCode::UNAUTHORIZED, &message, None, None);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Stripe\""),
    );
    Err(resp)
}

const KNOWN_PARAMS: &[&str] = &[
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "created[gt]",
    "created[gte]",
    "created[lt]",
    "created[lte]",
    "email",
    "test_clock",
];

fn stripe_int(p: &Params, key: &str) -> Result<Option<i64>, Response> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            stripe_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid integer: {v}"),
                Some(key),
                Some("parameter_invalid_integer"),
            )
        }),
    }
}

fn nonempty<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).filter(|v| !v.is_empty())
}

/// One page of the list: `(customer numbers in list order, has_more)`.
fn stripe_page(store: &StripeStore, p: &Params) -> Result<(Vec<u64>, bool), Response> {
    for (k, _) in &p.0 {
        let known = KNOWN_PARAMS.contains(&k.as_str()) || k == "expand" || k.starts_with("expand[");
        if !known {
            return Err(stripe_error(
                StatusCode::BAD_REQUEST,
                &format!("Received unknown parameter: {k}"),
                Some(k),
                Some("parameter_unknown"),
            ));
        }
    }
    let limit = match stripe_int(p, "limit")? {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return Err(stripe_error(
                StatusCode::BAD_REQUEST,
                "Invalid limit: must be an integer between 1 and 100",
                Some("limit"),
                Some("parameter_invalid_integer"),
            ));
        }
    };
    let exact = stripe_int(p, "created")?;
    let gt = stripe_int(p, "created[gt]")?;
    let gte = stripe_int(p, "created[gte]")?;
    let lt = stripe_int(p, "created[lt]")?;
    let lte = stripe_int(p, "created[lte]")?;
    let email = p.get("email");
    let keep = |k: u64| {
        let c = customer_created(k);
        exact.is_none_or(|x| c == x)
            && gt.is_none_or(|x| c > x)
            && gte.is_none_or(|x| c >= x)
            && lt.is_none_or(|x| c < x)
            && lte.is_none_or(|x| c <= x)
            && email.is_none_or(|e| format!("customer{k}@example.com") == e)
    };
    let cursor = |param: &str| -> Result<Option<u64>, Response> {
        match nonempty(p, param) {
            None => Ok(None),
            Some(id) => store.lookup(id).map(Some).ok_or_else(|| {
                stripe_error(
                    StatusCode::BAD_REQUEST,
                    &format!("No such customer: '{id}'"),
                    Some(param),
                    Some("resource_missing"),
                )
            }),
        }
    };
    if nonempty(p, "starting_after").is_some() && nonempty(p, "ending_before").is_some() {
        return Err(stripe_error(
            StatusCode::BAD_REQUEST,
            "You may only specify one of these parameters: ending_before, starting_after.",
            None,
            None,
        ));
    }
    let n = store.len() as u64;
    // Newest first: customer numbers in descending order.
    if let Some(before) = cursor("ending_before")? {
        // The `limit` objects just before the cursor in list order (the previous page): the
        // oldest of the newer ones, listed newest first.
        let mut page = Vec::with_capacity(limit);
        let mut more = false;
        for k in (before + 1..=n).filter(|&k| keep(k)) {
            if page.len() == limit {
                more = true;
                break;
            }
            page.push(k);
        }
        page.reverse();
        return Ok((page, more));
    }
    let top = match cursor("starting_after")? {
        Some(after) => after.saturating_sub(1),
        None => n,
    };
    let mut page = Vec::with_capacity(limit);
    let mut more = false;
    for k in (1..=top).rev().filter(|&k| keep(k)) {
        if page.len() == limit {
            more = true;
            break;
        }
        page.push(k);
    }
    Ok((page, more))
}

async fn stripe_customers(
    State(st): State<AppState>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = check_stripe_auth(&st, &h) {
        return r;
    }
    let p = Params::parse(q.as_deref());
    match stripe_page(&st.shared.stripe, &p) {
        Ok((page, more)) => json(
            StatusCode::OK,
            &json!({
                "object": "list",
                "data": page.into_iter().map(customer_json).collect::<Vec<_>>(),
                "has_more": more,
                "url": STRIPE_LIST_URL,
            }),
        ),
        Err(r) => r,
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps with UTC offsets
// ---------------------------------------------------------------------------------------------

/// 2023-01-01T00:00:00Z.
const TZ_EPOCH: i64 = 1_672_531_200;
const TZ_RECORDS: u64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TzRecord {
    pub(crate) id: u64,
    /// The instant, Unix microseconds.
    pub(crate) micros: i64,
    /// The UTC offset `updated_at` is written with, minutes east of UTC.
    offset_minutes: i32,
    /// Digits of the written fraction: 0, 3 or 6.
    frac_digits: u8,
    /// Whether a zero offset is written `Z` (else `+00:00`).
    zulu: bool,
}

impl TzRecord {
    /// Record `id`: at `2023-01-01T00:00:00Z + (3 id - 2) h`, plus 0.25 s when `id % 8 == 3`
    /// and 0.123456 s when `id % 8 == 7`, written with the offset picked by `id % 5`
    /// (`-05:00`, `+02:00`, `Z`, `+05:30`, `+00:00`).
    fn initial(id: u64) -> TzRecord {
        let (frac, frac_digits) = match id % 8 {
            3 => (250_000, 3),
            7 => (123_456, 6),
            _ => (0, 0),
        };
        let (offset_minutes, zulu) = match id % 5 {
            0 => (-300, false),
            1 => (120, false),
            2 => (0, true),
            3 => (330, false),
            _ => (0, false),
        };
        TzRecord {
            id,
            micros: (TZ_EPOCH + (3 * id as i64 - 2) * 3600) * 1_000_000 + frac,
            offset_minutes,
            frac_digits,
            zulu,
        }
    }

    pub(crate) fn updated_at(&self) -> String {
        format_rfc3339_micros(
            self.micros,
            self.offset_minutes,
            self.frac_digits,
            self.zulu,
        )
    }

    fn to_json(self) -> Value {
        json!({ "id": self.id, "updated_at": self.updated_at() })
    }
}

pub(crate) struct TzStore {
    records: RwLock<Vec<TzRecord>>,
}

impl TzStore {
    pub(crate) fn new() -> Self {
        TzStore {
            records: RwLock::new((1..=TZ_RECORDS).map(TzRecord::initial).collect()),
        }
    }

    /// Moves those records to one hour after the newest instant (whole seconds), written with
    /// a `-05:00` offset. Unknown ids are ignored.
    pub(crate) fn touch(&self, ids: &[u64]) {
        let mut g = write(&self.records);
        let newest = g.iter().map(|r| r.micros).max().unwrap_or(0);
        let at = (newest.div_euclid(1_000_000) + 3600) * 1_000_000;
        for r in g.iter_mut().filter(|r| ids.contains(&r.id)) {
            r.micros = at;
            r.offset_minutes = -300;
            r.frac_digits = 0;
            r.zulu = false;
        }
    }

    /// Records in id order, optionally only those at or after `since` (microseconds).
    pub(crate) fn select(&self, since: Option<i64>) -> Vec<TzRecord> {
        read(&self.records)
            .iter()
            .filter(|r| since.is_none_or(|s| r.micros >= s))
            .copied()
            .collect()
    }
}

async fn tz_events(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let run = || -> Result<Response, Response> {
        let since = match p.get("since") {
            None | Some("") => None,
            Some(s) => Some(parse_rfc3339_micros(s).ok_or_else(|| {
                bad_request(&format!("`since` must be an RFC 3339 timestamp, got `{s}`"))
            })?),
        };
        let offset = p.uint("offset")?.unwrap_or(0) as usize;
        let limit = match p.uint("limit")? {
            Some(0) => return Err(bad_request("`limit` must be at least 1")),
            Some(n) => n as usize,
            None => usize::MAX,
        };
        let recs = st.shared.tz.select(since);
        let data: Vec<Value> = recs
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(TzRecord::to_json)
            .collect();
        Ok(json(StatusCode::OK, &json!({ "data": data })))
    };
    run().unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::parse_rfc3339_micros;

    #[test]
    fn customer_ids_are_unique_and_stable() {
        let ids: std::collections::HashSet<String> = (1..=20_000).map(customer_id).collect();
        assert_eq!(ids.len(), 20_000);
        assert_eq!(customer_id(7), customer_id(7));
        assert!(
            ids.iter()
                .all(|id| id.len() == 18 && id.starts_with("cus_"))
        );
    }

    #[test]
    fn masks_keys_like_stripe() {
        assert_eq!(
            mask_key("sk_test_abcdefghijklmnop"),
            "sk_test_************mnop"
        );
        assert_eq!(mask_key("wrong"), "*****");
        assert_eq!(mask_key("sk_live_x"), "sk_live_*");
        assert_eq!(mask_key("not-a-stripe-key-123"), "****************-123");
    }

    #[test]
    fn tz_records_text_and_instants() {
        let s = TzStore::new();
        let recs = s.select(None);
        assert_eq!(recs.len(), 30);
        assert_eq!(recs[8].updated_at(), "2023-01-02T01:00:00+00:00");
        assert_eq!(recs[9].updated_at(), "2023-01-01T23:00:00-05:00");
        assert_eq!(recs[18].updated_at(), "2023-01-03T07:00:00.250+00:00");
        for r in &recs {
            assert_eq!(parse_rfc3339_micros(&r.updated_at()), Some(r.micros));
        }
        assert!(recs.windows(2).all(|w| w[0].micros < w[1].micros));
        s.touch(&[3]);
        let r3 = s.select(None)[2];
        assert!(r3.updated_at().ends_with("-05:00"));
        assert!(r3.micros > recs[29].micros);
    }
}
