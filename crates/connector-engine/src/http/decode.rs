//! A success's body, decoded: parsed JSON, with the records cut out as raw
//! JSON text when the request asks for the fast path (see `raw_records`).
//! A truncated or non-JSON body retries like a 503 where the policy says
//! so; a body past the parser's recursion limit never gets better.

use super::{FetchErrorKind, excerpt};
use crate::raw_records::RawRecords;
use crate::retry::RetryPolicy;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Why a body could not be decoded, and whether asking again may help.
#[derive(Debug, PartialEq)]
pub struct DecodeError {
    pub message: String,
    pub retry: bool,
    pub kind: FetchErrorKind,
}

/// Decodes `body`. `parsed` is the body already parsed (for response
/// actions); `raw_path` is the member path whose records stay raw, and
/// `raw_keys` the top-level fields each of them must give a value.
pub fn decode(
    body: &bytes::Bytes,
    headers: &HeaderMap,
    parsed: Option<Value>,
    raw_path: Option<&[String]>,
    raw_keys: Option<&[String]>,
    policy: &RetryPolicy,
) -> Result<(Value, Option<RawRecords>), DecodeError> {
    let result = match (parsed, raw_path) {
        (Some(j), _) => Ok((j, None)),
        (None, Some(keys)) => crate::raw_records::split(body, keys).map(|(rest, mut raw)| {
            if let (Some(r), Some(fields)) = (&mut raw, raw_keys) {
                r.flag_keyless(fields);
            }
            (rest, raw)
        }),
        (None, None) => serde_json::from_slice(body).map(|j| (j, None)),
    };
    result.map_err(|e| {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        let what = if e.is_eof() {
            "the body is truncated JSON"
        } else {
            "the body is not JSON"
        };
        let retry = if e.is_eof() {
            policy.on_connection_error || policy.on_invalid_json
        } else {
            policy.on_invalid_json
        };
        DecodeError {
            message: format!(
                "{what} ({e}; content-type {ct}); body starts: {}",
                excerpt(body)
            ),
            retry: retry && !e.to_string().contains("recursion limit"),
            kind: FetchErrorKind::Body,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::compile(&connector_spec::Retry::default()).unwrap()
    }

    #[test]
    fn bodies_decode_or_say_why_not() {
        let h = HeaderMap::new();
        let body = bytes::Bytes::from(r#"{"data": [{"id": 1}], "next": "x"}"#);
        let keys = vec!["data".to_string()];
        let (rest, raw) = decode(&body, &h, None, Some(&keys), None, &policy()).unwrap();
        assert_eq!(rest["next"], "x");
        assert_eq!(raw.unwrap().len(), 1);
        let e = decode(
            &bytes::Bytes::from("{\"a\": ["),
            &h,
            None,
            None,
            None,
            &policy(),
        )
        .unwrap_err();
        assert!(e.retry && e.message.contains("truncated"), "{e:?}");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = decode(&bytes::Bytes::from(deep), &h, None, None, None, &policy()).unwrap_err();
        assert!(!e.retry, "the recursion limit is not retried");
    }
}
