//! Small helpers shared by the endpoint modules: query parameters, JSON responses, RFC 3339
//! timestamps, base64 and lock handling.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Locks a mutex, ignoring poisoning: a panicking handler must not wedge the whole server.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Marker put in a response's extensions to keep the compression layer away from it (faults
/// and bad responses must reach the client byte for byte).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NoCompress;

/// The decoded query string, in order, repeated keys kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(pub(crate) Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>) -> Params {
        Params(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// First value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parses the first value of `key` as an unsigned integer; `Err` is a ready 400 response.
    pub(crate) fn uint(&self, key: &str) -> Result<Option<u64>, Response> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                bad_request(&format!(
                    "query parameter `{key}` must be a non-negative integer, got `{v}`"
                ))
            }),
        }
    }

    /// A copy with each `(key, value)` of `set` replacing the existing value (or appended).
    pub(crate) fn with(&self, set: &[(&str, String)]) -> Params {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.0.len() + set.len());
        for (k, v) in &self.0 {
            if let Some((_, nv)) = set.iter().find(|(sk, _)| sk == k) {
                if !out.iter().any(|(ok, _)| ok == k) {
                    out.push((k.clone(), nv.clone()));
                }
            } else {
                out.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in set {
            if !out.iter().any(|(ok, _)| ok == k) {
                out.push(((*k).to_string(), v.clone()));
            }
        }
        Params(out)
    }

    /// Encodes back into a query string (without `?`).
    pub(crate) fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query key or value, leaving unreserved characters plus `$` and `:` as is.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'$' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A compact JSON response.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A `{"error": message}` response.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "error": message, "status": status.as_u16() }),
    )
}

pub(crate) fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp (or a bare `YYYY-MM-DD`) into Unix seconds. Fractional
/// seconds round *up*, so that `t >= parse(s)` matches `t >= s` for whole-second `t`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let (secs, _, frac) = parse_rfc3339_parts(s)?;
    Some(secs + i64::from(frac))
}

/// Parses an RFC 3339 timestamp (or a bare `YYYY-MM-DD`) into Unix *microseconds* (digits
/// past the sixth fractional one are dropped).
pub(crate) fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let (secs, micros, _) = parse_rfc3339_parts(s)?;
    secs.checked_mul(1_000_000)?.checked_add(i64::from(micros))
}

/// `(whole Unix seconds, microseconds of the fraction, whether any fractional digit is not 0)`.
fn parse_rfc3339_parts(s: &str) -> Option<(i64, u32, bool)> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let date = days_from_civil(y, mo, d) * 86_400;
    if b.len() == 10 {
        return Some((date, 0, false));
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = false;
    let mut micros = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            frac |= b[i] != b'0';
            if i - start < 6 {
                micros = micros * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    Some((date + h * 3600 + mi * 60 + se - offset, micros, frac))
}

/// Formats Unix microseconds as RFC 3339 local time at `offset_minutes` east of UTC:
/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff](Z|+HH:MM|-HH:MM)`. The fraction is written with
/// `frac_digits` digits (0, 3 or 6); `zulu` writes a zero offset as `Z` instead of `+00:00`.
pub(crate) fn format_rfc3339_micros(
    micros: i64,
    offset_minutes: i32,
    frac_digits: u8,
    zulu: bool,
) -> String {
    let local = micros + i64::from(offset_minutes) * 60_000_000;
    let secs = local.div_euclid(1_000_000);
    let frac = local.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    match frac_digits {
        0 => {}
        3 => out.push_str(&format!(".{:03}", frac / 1000)),
        _ => out.push_str(&format!(".{frac:06}")),
    }
    if offset_minutes == 0 && zulu {
        out.push('Z');
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let o = offset_minutes.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", o / 60, o % 60));
    }
    out
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub(crate) fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(URL[((n >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

/// Standard base64 with `=` padding (what Zendesk's and Slack's cursors look like).
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(STD[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = STD
            .iter()
            .position(|&x| x == c)
            .or_else(|| URL.iter().position(|&x| x == c))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(t, 1_704_067_200);
        assert_eq!(format_rfc3339(t + 61), "2024-01-01T00:01:01Z");
        assert_eq!(parse_rfc3339("2024-01-01T01:00:00+01:00"), Some(t));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.000Z"), Some(t));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00.5Z"), Some(t + 1));
        assert_eq!(parse_rfc3339("2024-01-01"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rfc3339_micros_and_offsets() {
        let t = 1_704_067_200_000_000;
        assert_eq!(parse_rfc3339_micros("2024-01-01T00:00:00Z"), Some(t));
        assert_eq!(
            parse_rfc3339_micros("2023-12-31T19:00:00.25-05:00"),
            Some(t + 250_000)
        );
        assert_eq!(
            parse_rfc3339_micros("2024-01-01T00:00:00.1234567Z"),
            Some(t + 123_456)
        );
        assert_eq!(parse_rfc3339_micros("2024-01-01T00:00:00.Z"), None);
        assert_eq!(
            format_rfc3339_micros(t + 250_000, -300, 3, true),
            "2023-12-31T19:00:00.250-05:00"
        );
        assert_eq!(format_rfc3339_micros(t, 0, 0, true), "2024-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_micros(t, 0, 0, false),
            "2024-01-01T00:00:00+00:00"
        );
        assert_eq!(
            format_rfc3339_micros(t + 7, 330, 6, true),
            "2024-01-01T05:30:00.000007+05:30"
        );
        for s in [
            "2023-01-01T23:00:00-05:00",
            "2023-01-02T01:00:00.250+00:00",
            "2024-02-29T12:34:56.123456+02:00",
        ] {
            let m = parse_rfc3339_micros(s).unwrap();
            assert_eq!(
                parse_rfc3339(s),
                Some(m.div_euclid(1_000_000) + i64::from(m % 1_000_000 != 0))
            );
        }
    }

    #[test]
    fn base64() {
        for s in ["", "a", "ab", "abc", "after:250", "user:p4ss"] {
            let e = base64url_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_decode("dXNlcjpwNHNz").unwrap(), b"user:p4ss");
        assert_eq!(
            base64_encode(b"1576613539.0||467|"),
            "MTU3NjYxMzUzOS4wfHw0Njd8"
        );
        assert_eq!(base64_encode(b"user:U061NFTT2"), "dXNlcjpVMDYxTkZUVDI=");
        for s in ["", "a", "ab", "abc", "abcd"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn params_with_replaces_and_appends() {
        let p = Params::parse(Some("after=3&limit=5&x=%20y"));
        let q = p.with(&[("after", "8".into()), ("z", "1".into())]);
        assert_eq!(q.encode(), "after=8&limit=5&x=%20y&z=1");
    }
}

/// True when the request carries `Authorization: Bearer <something>` (the imitations
/// that accept any token).
pub(crate) fn has_bearer(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.is_empty())
}
