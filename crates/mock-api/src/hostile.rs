//! `/hostile/*`: servers that try to hurt their clients (decompression bombs, endless bodies,
//! absurd rate-limit waits, credentials echoed back, records that are not records, next links
//! to another origin). Served by both listeners; no latency, rate limit or faults, and never
//! compressed by the compression layer.

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::log::Origin;
use crate::state::AppState;
use crate::util::{NoCompress, Params, bad_request, error, json, unix_now};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/gzip_bomb", get(gzip_bomb))
        .route("/endless", get(endless))
        .route("/retry_after", get(retry_after))
        .route("/reset_far", get(reset_far))
        .route("/echo_token", get(echo_token))
        .route("/echo_error", get(echo_error))
        .route("/not_objects", get(not_objects))
        .route("/missing_key", get(missing_key))
        .route("/next_other_origin", get(next_other_origin))
        .route("/next_scheme", get(next_scheme))
        .route("/deep", get(deep))
        .route("/slow_pages", get(slow_pages))
        .layer(axum::middleware::map_response(
            |mut r: Response| async move {
                r.extensions_mut().insert(NoCompress);
                r
            },
        ))
}

/// One record and a next link with another scheme (`?scheme=ftp`, default
/// `ftp`): `{"data": [{"id": 1}], "next": "ftp://127.0.0.1/next"}`.
async fn next_scheme(RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let scheme = p.get("scheme").unwrap_or("ftp").to_string();
    json(
        StatusCode::OK,
        &json!({ "data": [{ "id": 1 }], "next": format!("{scheme}://127.0.0.1/next") }),
    )
}

/// `200` JSON nested `?depth=N` arrays deep (default 1000): past any
/// parser's recursion limit.
async fn deep(RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let depth: usize = p.get("depth").and_then(|d| d.parse().ok()).unwrap_or(1000);
    let body = format!("{{\"data\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    resp.extensions_mut().insert(NoCompress);
    resp
}

/// Offset pages of `limit` records (default 10) of `total` (default 1000),
/// each answered after `delay_ms` (default 200): a sync long enough to be
/// interrupted. `{"data": [{"id": n}...], "total": N}`.
async fn slow_pages(RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let num = |k: &str, d: u64| p.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let (offset, limit, total) = (
        num("offset", 0),
        num("limit", 10).max(1),
        num("total", 1000),
    );
    tokio::time::sleep(std::time::Duration::from_millis(num("delay_ms", 200))).await;
    let data: Vec<Value> = (offset..(offset + limit).min(total))
        .map(|i| json!({ "id": i + 1 }))
        .collect();
    json(StatusCode::OK, &json!({ "data": data, "total": total }))
}

fn run(f: impl FnOnce() -> Result<Response, Response>) -> Response {
    f().unwrap_or_else(|e| e)
}

const MIB: usize = 1 << 20;
/// Default of `secs` for `/hostile/retry_after` and `/hostile/reset_far` (about 31.7 years).
const FAR_SECS: u64 = 999_999_999;
/// The start of every JSON body that never ends.
const DATA_PREFIX: &str = "{\"data\":[";

/// The gzip bomb's state between two chunks.
struct Bomb {
    enc: GzEncoder<Vec<u8>>,
    /// Filler bytes still to feed to the encoder.
    left: u64,
}

/// Feeds the encoder 1 MiB at a time until it has output to hand over; finishes the gzip
/// stream once all the filler is in. `None` when the stream is over.
fn bomb_chunk(mut b: Bomb) -> Option<(Bytes, Option<Bomb>)> {
    static SPACES: [u8; MIB] = [b' '; MIB];
    loop {
        if b.left == 0 {
            let rest = b.enc.finish().ok()?;
            return Some((Bytes::from(rest), None));
        }
        let n = b.left.min(MIB as u64) as usize;
        b.enc.write_all(&SPACES[..n]).ok()?;
        b.left -= n as u64;
        let out = std::mem::take(b.enc.get_mut());
        if !out.is_empty() {
            return Some((Bytes::from(out), Some(b)));
        }
    }
}

/// `200`, `Content-Encoding: gzip`: one gzip stream decoding to `{"data":[` and then `gib`
/// GiB (default 10; or `mib` MiB) of spaces, never closing the JSON. Generated lazily: a
/// client that goes away drops the stream and nothing more is compressed.
async fn gzip_bomb(RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let filler = match p.uint("mib")? {
            Some(m) => m.saturating_mul(MIB as u64),
            None => p.uint("gib")?.unwrap_or(10).saturating_mul(1 << 30),
        };
        let mut enc = GzEncoder::new(Vec::with_capacity(64 * 1024), Compression::default());
        enc.write_all(DATA_PREFIX.as_bytes())
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        let start = Some(Bomb { enc, left: filler });
        let stream = futures_util::stream::unfold(start, |state| async move {
            let (chunk, next) = bomb_chunk(state?)?;
            Some((Ok::<Bytes, std::io::Error>(chunk), next))
        });
        let mut resp = Response::new(Body::from_stream(stream));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Ok(resp)
    })
}

/// `/hostile/endless` records per chunk written.
const ENDLESS_RECORDS_PER_CHUNK: u64 = 64;
/// `pad` of each `/hostile/endless` record: records are about 1 KiB.
const PAD_LEN: usize = 1000;

/// `200`, chunked: `{"data":[` and then `{"id":N,"pad":"xxx…"},` records (N = 1, 2, 3, …,
/// about 1 KiB each) forever.
async fn endless() -> Response {
    let stream = futures_util::stream::unfold(1u64, |first| async move {
        let pad = "x".repeat(PAD_LEN);
        let mut chunk = String::with_capacity((PAD_LEN + 32) * ENDLESS_RECORDS_PER_CHUNK as usize);
        if first == 1 {
            chunk.push_str(DATA_PREFIX);
        }
        for id in first..first + ENDLESS_RECORDS_PER_CHUNK {
            chunk.push_str(&format!("{{\"id\":{id},\"pad\":\"{pad}\"}},"));
        }
        Some((
            Ok::<Bytes, std::io::Error>(Bytes::from(chunk)),
            first + ENDLESS_RECORDS_PER_CHUNK,
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn secs(p: &Params) -> Result<u64, Response> {
    Ok(p.uint("secs")?.unwrap_or(FAR_SECS))
}

/// Always `429` with `Retry-After: <secs>` (default 999999999).
async fn retry_after(RawQuery(q): RawQuery) -> Response {
    run(|| {
        let secs = secs(&Params::parse(q.as_deref()))?;
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("rate limited: retry after {secs} seconds"),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        Ok(resp)
    })
}

/// Always `429` with `X-RateLimit-Limit: 100`, `X-RateLimit-Remaining: 0` and
/// `X-RateLimit-Reset: <now + secs>` (epoch seconds; `secs` defaults to 999999999).
async fn reset_far(RawQuery(q): RawQuery) -> Response {
    run(|| {
        let secs = secs(&Params::parse(q.as_deref()))?;
        let reset = (unix_now().max(0) as u64).saturating_add(secs);
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("rate limited until {reset}"),
        );
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(100u32));
        h.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
        h.insert("x-ratelimit-reset", HeaderValue::from(reset));
        Ok(resp)
    })
}

/// Percent-encodes every byte outside `A-Za-z0-9-._~`.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The caller's credential: `Authorization: Bearer X`, else the `access_token` query
/// parameter, else `api_key`.
fn credential(h: &HeaderMap, p: &Params) -> Option<String> {
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    bearer
        .or_else(|| {
            p.get("access_token")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        })
        .or_else(|| {
            p.get("api_key")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        })
}

const PAGES: u64 = 3;
const PER_PAGE: u64 = 5;

/// `page` (1-based, default 1) and its records `{"id": …}` (empty past the last page).
fn numbered_page(p: &Params) -> Result<(u64, Vec<Value>), Response> {
    let page = p.uint("page")?.unwrap_or(1);
    if page == 0 {
        return Err(bad_request("`page` is 1-based"));
    }
    let data = if page <= PAGES {
        ((page - 1) * PER_PAGE + 1..=page * PER_PAGE)
            .map(|id| json!({ "id": id }))
            .collect()
    } else {
        Vec::new()
    };
    Ok((page, data))
}

/// Facebook Graph style: the `next` URL carries the caller's credential as `access_token`.
async fn echo_token(State(st): State<AppState>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    // `delay_ms=N` answers after N ms and is kept in the next links, so a
    // test can stop a run between pages.
    let delay = Params::parse(q.as_deref())
        .get("delay_ms")
        .and_then(|d| d.parse::<u64>().ok());
    if let Some(ms) = delay {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    run(|| {
        let p = Params::parse(q.as_deref());
        let Some(token) = credential(&h, &p) else {
            st.shared.log.count(|c| c.auth_failures += 1);
            let mut resp = error(StatusCode::UNAUTHORIZED, "missing access token");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mock-api\""),
            );
            return Ok(resp);
        };
        let (page, data) = numbered_page(&p)?;
        let next = (page < PAGES).then(|| {
            format!(
                "{}/hostile/echo_token?page={}{}&access_token={}",
                st.base_url(),
                page + 1,
                delay.map(|d| format!("&delay_ms={d}")).unwrap_or_default(),
                percent_encode(&token)
            )
        });
        Ok(json(StatusCode::OK, &json!({ "data": data, "next": next })))
    })
}

/// `400` whose body echoes the credential: plain, percent-encoded, and in the raw query.
async fn echo_error(h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.as_deref());
    let token = credential(&h, &p);
    json(
        StatusCode::BAD_REQUEST,
        &json!({
            "error": "bad request",
            "got_token": token,
            "got_token_percent": token.as_deref().map(percent_encode),
            "got_query": q.unwrap_or_default(),
        }),
    )
}

async fn not_objects() -> Response {
    json(
        StatusCode::OK,
        &json!({ "data": [1, "two", null, { "id": 4 }] }),
    )
}

async fn missing_key() -> Response {
    json(
        StatusCode::OK,
        &json!({ "data": [{ "id": 1 }, { "name": "no id" }, { "id": null }, { "id": 4 }] }),
    )
}

/// 3 pages of 5 records whose `next` (body and `Link` header) points at the *other* listener.
async fn next_other_origin(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    run(|| {
        let p = Params::parse(q.as_deref());
        let (page, data) = numbered_page(&p)?;
        let other = match st.origin {
            Origin::Main => &st.shared.other_url,
            Origin::Other => &st.shared.main_url,
        };
        let next =
            (page < PAGES).then(|| format!("{other}/hostile/next_other_origin?page={}", page + 1));
        let mut resp = json(StatusCode::OK, &json!({ "data": data, "next": next }));
        if let Some(n) = &next
            && let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\""))
        {
            resp.headers_mut().insert(header::LINK, v);
        }
        Ok(resp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encodes_everything_but_unreserved() {
        assert_eq!(percent_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(
            percent_encode("s3cr3t token/+=&é"),
            "s3cr3t%20token%2F%2B%3D%26%C3%A9"
        );
    }

    #[test]
    fn bomb_is_a_valid_gzip_stream() {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(DATA_PREFIX.as_bytes()).unwrap();
        let mut state = Some(Bomb {
            enc,
            left: 3 * MIB as u64 + 5,
        });
        let mut gz = Vec::new();
        while let Some(b) = state.take() {
            let (chunk, next) = bomb_chunk(b).unwrap();
            gz.extend_from_slice(&chunk);
            state = next;
        }
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out.len(), DATA_PREFIX.len() + 3 * MIB + 5);
        assert!(out.starts_with(DATA_PREFIX.as_bytes()));
        assert!(out[DATA_PREFIX.len()..].iter().all(|&b| b == b' '));
        assert!(gz.len() * 500 < out.len(), "compressed {} bytes", gz.len());
    }
}
