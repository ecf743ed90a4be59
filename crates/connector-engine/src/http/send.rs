//! What goes out: credentials and sealed secrets for the API's origin only,
//! every credential stripped for any other origin (a body holding a secret
//! is not sent there at all); and what comes back, read up to
//! `max_response_size` after decompression.

use super::{FetchErrorKind, HttpClient, Outcome, PageRequest, human_size};
use crate::secret::is_sensitive_name;
use bytes::Bytes;
use url::Url;

impl HttpClient {
    /// The request as it may go out: for the API's origin with auth and
    /// sealed secrets put back; for any other origin stripped of every
    /// credential, or refused when its body carries a secret.
    pub(super) async fn outgoing(
        &self,
        req: &PageRequest,
    ) -> Result<(Url, Vec<(String, String)>, Option<Vec<u8>>), Outcome> {
        let mut headers = req.headers.clone();
        let body = req.body.as_ref();
        if self.is_api_origin(&req.url) {
            let mut url = Url::parse(&self.redactor.unseal(req.url.as_str()))
                .unwrap_or_else(|_| req.url.clone());
            for (_, v) in headers.iter_mut() {
                *v = self.redactor.unseal(v);
            }
            let mut query = Vec::new();
            if let Err(e) = self
                .auth
                .apply(&self.client, &mut headers, &mut query)
                .await
            {
                return Err(Outcome::Fail {
                    message: e,
                    kind: FetchErrorKind::Auth,
                    status: None,
                });
            }
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let body = body.map(|b| encode_body(&self.redactor.unseal_value(b), req.form));
            return Ok((url, headers, body));
        }
        let foreign = req.url.origin().ascii_serialization();
        let mut dropped: Vec<String> = Vec::new();
        headers.retain(|(k, v)| {
            let keep = !is_sensitive_name(k) && !self.redactor.contains_secret(v);
            if !keep {
                dropped.push(k.clone());
            }
            keep
        });
        let mut url = req.url.clone();
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, v)| {
                    let keep =
                        !self.redactor.contains_secret(v) && !self.redactor.contains_secret(k);
                    if !keep {
                        dropped.push(format!("query `{k}`"));
                    }
                    keep
                })
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if pairs.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
        }
        if !dropped.is_empty() {
            tracing::debug!(
                "{foreign} is not the API's origin: not sending {}",
                dropped.join(", ")
            );
        }
        let body = match body {
            Some(b) => {
                let bytes = encode_body(b, req.form);
                if self
                    .redactor
                    .contains_secret(&String::from_utf8_lossy(&bytes))
                {
                    return Err(Outcome::Fail {
                        message: format!(
                            "refusing to send a request body that holds a secret to {foreign}, which is not the API's origin"
                        ),
                        kind: FetchErrorKind::NotSent,
                        status: None,
                    });
                }
                Some(bytes)
            }
            None => None,
        };
        Ok((url, headers, body))
    }

    /// Reads a body up to `limit` bytes (decompressed), so a gzip bomb or an
    /// endless stream costs bounded memory.
    pub(super) async fn read_body(
        &self,
        mut resp: reqwest::Response,
        limit: u64,
    ) -> Result<Bytes, Outcome> {
        let hint = resp.content_length().unwrap_or(0).min(limit) as usize;
        let mut buf = bytes::BytesMut::with_capacity(hint.max(8 * 1024));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (buf.len() + chunk.len()) as u64 > limit {
                        return Err(Outcome::Fail {
                            message: format!(
                                "the response body is larger than max_response_size ({}) after decompression; it was not read further (raise `max_response_size` if the API sends pages this big)",
                                human_size(limit)
                            ),
                            kind: FetchErrorKind::TooLarge,
                            status: None,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(buf.freeze()),
                Err(e) => {
                    // A body that breaks off may come whole on a retry.
                    return Err(Outcome::Retry {
                        reason: format!("truncated or broken body: {}", super::error::chain(&e)),
                        wait: None,
                        kind: FetchErrorKind::Body,
                        status: None,
                    });
                }
            }
        }
    }
}

/// A body as sent: JSON, or form fields (`a=1&b=x`) from a flat object,
/// nested values as JSON text.
pub fn encode_body(body: &serde_json::Value, form: bool) -> Vec<u8> {
    if !form {
        return serde_json::to_vec(body).unwrap_or_default();
    }
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if let serde_json::Value::Object(m) = body {
        for (k, v) in m {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    out.append_pair(k, s);
                }
                other => {
                    out.append_pair(k, &other.to_string());
                }
            }
        }
    }
    out.finish().into_bytes()
}
