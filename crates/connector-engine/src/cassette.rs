//! Record and replay: a run's HTTP exchanges kept as cassettes, and served
//! back in place of the network.
//!
//! `--record DIR` writes every request and its response, one JSON object a
//! line, to `DIR/<stream>.jsonl` (`_auth.jsonl` for the token endpoint).
//! What is written is what the redactor lets through: secret values and
//! tokens are `***` in URLs, bodies and headers, and credential-like headers
//! are dropped, so a cassette can be committed.
//!
//! `--replay DIR` reads every `*.jsonl` and `*.json` file there but
//! `config.json` (a `.json` file holds an array of exchanges, for cassettes
//! written by hand from an API's documentation) and answers each request with the recorded response
//! whose method, URL and body match, compared as recorded: redacted, with
//! query parameters in any order. Exchanges with the same request are served
//! in the order recorded (a 429, then the page), the last one again when
//! they run out. A request the cassettes do not hold is an error naming it.
//! Nothing waits in a replay: no quota, server pause or backoff is slept.
//!
//! ```json
//! {"request": {"method": "GET", "url": "https://api.example.com/v1/items?limit=100"},
//!  "response": {"status": 200, "headers": {"content-type": "application/json"},
//!               "body": {"data": [{"id": 1}], "has_more": false}}}
//! ```

use crate::error::{EngineError, Result};
use crate::secret::{Redactor, is_sensitive_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use url::Url;

/// The cassette file of the token endpoint's exchanges.
pub const AUTH_CASSETTE: &str = "_auth";

/// One request and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    pub method: String,
    /// The URL as sent, secrets masked.
    pub url: String,
    /// The body as sent: JSON, or form text; secrets masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    pub status: u16,
    /// Response headers, lower-case names; credential-like ones left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The body when it is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
}

impl RecordedResponse {
    /// The body's bytes as the server sent them (JSON re-serialized).
    pub fn body_bytes(&self) -> Vec<u8> {
        match (&self.body, &self.body_text) {
            (Some(v), _) => serde_json::to_vec(v).unwrap_or_default(),
            (None, Some(t)) => t.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        }
    }

    /// The headers as a `HeaderMap` (a JSON body gets its content type).
    pub fn header_map(&self) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                reqwest::header::HeaderValue::from_str(v),
            ) {
                map.append(name, value);
            }
        }
        if self.body.is_some() && !map.contains_key(reqwest::header::CONTENT_TYPE) {
            map.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
        }
        map
    }
}

/// Records or replays a run's exchanges.
#[derive(Debug)]
pub enum Tape {
    Record(Recorder),
    Replay(Player),
}

impl Tape {
    pub fn record(dir: &Path) -> Result<Tape> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::Destination(format!(
                "cannot create cassette folder {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Tape::Record(Recorder {
            dir: dir.to_path_buf(),
            files: Mutex::new(HashMap::new()),
        }))
    }

    pub fn replay(dir: &Path) -> Result<Tape> {
        Player::load(dir).map(Tape::Replay)
    }

    pub fn is_replay(&self) -> bool {
        matches!(self, Tape::Replay(_))
    }
}

/// The key a request is matched by: method, URL with sorted query, body.
fn key(method: &str, url: &str, body: Option<&Value>) -> String {
    let url = match Url::parse(url) {
        Ok(mut u) => {
            let mut pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            pairs.sort();
            if pairs.is_empty() {
                u.set_query(None);
            } else {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    };
    let body = match body {
        None => String::new(),
        // A form body compares by its fields, in any order.
        Some(Value::String(form)) if form.contains('=') => {
            let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            pairs.sort();
            format!("{pairs:?}")
        }
        Some(v) => {
            let mut text = String::new();
            crate::record_key::canonical_json(v, &mut text);
            text
        }
    };
    format!("{} {url} {body}", method.to_ascii_uppercase())
}

/// A request as a cassette holds it: redacted, the body as JSON or text.
pub fn recorded_request(
    redactor: &Redactor,
    method: &str,
    url: &Url,
    body: Option<&[u8]>,
) -> RecordedRequest {
    let body = body.filter(|b| !b.is_empty()).map(|b| {
        let text = redactor.redact(&String::from_utf8_lossy(b));
        serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))
    });
    RecordedRequest {
        method: method.to_ascii_uppercase(),
        url: redactor.url(url),
        body,
    }
}

/// Writes cassettes as the run goes.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    files: Mutex<HashMap<String, std::io::BufWriter<std::fs::File>>>,
}

impl Recorder {
    /// Appends one exchange to the cassette of `stream`, redacted.
    pub fn write(
        &self,
        redactor: &Redactor,
        stream: &str,
        request: RecordedRequest,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Result<()> {
        let mut kept = BTreeMap::new();
        for (k, v) in headers {
            let name = k.as_str();
            // Transport details a replay does not need, and credentials.
            if is_sensitive_name(name)
                || matches!(
                    name,
                    "set-cookie"
                        | "content-length"
                        | "content-encoding"
                        | "transfer-encoding"
                        | "connection"
                        | "date"
                )
            {
                continue;
            }
            if let Ok(v) = v.to_str() {
                kept.insert(name.to_string(), redactor.redact(v));
            }
        }
        let text = redactor.redact(&String::from_utf8_lossy(body));
        let (body, body_text) = match serde_json::from_str::<Value>(&text) {
            Ok(v) => (Some(v), None),
            Err(_) if text.is_empty() => (None, None),
            Err(_) => (None, Some(text)),
        };
        let exchange = Exchange {
            request,
            response: RecordedResponse {
                status,
                headers: kept,
                body,
                body_text,
            },
        };
        let line =
            serde_json::to_string(&exchange).map_err(|e| EngineError::Plan(e.to_string()))?;
        let mut files = self.files.lock().unwrap();
        let file = match files.get_mut(stream) {
            Some(f) => f,
            None => {
                let path = self.dir.join(format!("{stream}.jsonl"));
                let f = std::fs::File::create(&path).map_err(|e| {
                    EngineError::Destination(format!(
                        "cannot write cassette {}: {e}",
                        path.display()
                    ))
                })?;
                files
                    .entry(stream.to_string())
                    .or_insert(std::io::BufWriter::new(f))
            }
        };
        writeln!(file, "{line}")?;
        file.flush()?;
        Ok(())
    }
}

/// Serves recorded responses.
#[derive(Debug)]
pub struct Player {
    dir: PathBuf,
    exchanges: Mutex<HashMap<String, VecDeque<RecordedResponse>>>,
    last: Mutex<HashMap<String, RecordedResponse>>,
}

impl Player {
    /// Reads every cassette in `dir`.
    pub fn load(dir: &Path) -> Result<Player> {
        let bad = |path: &Path, e: String| {
            EngineError::Config(format!("cassette {}: {e}", path.display()))
        };
        let entries = std::fs::read_dir(dir).map_err(|e| {
            EngineError::Config(format!("cannot read cassettes in {}: {e}", dir.display()))
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|x| x == "jsonl" || x == "json")
                    // A scenario's config values (`connector-run test`).
                    && !p.file_name().is_some_and(|n| n == "config.json")
            })
            .collect();
        paths.sort();
        let mut exchanges: HashMap<String, VecDeque<RecordedResponse>> = HashMap::new();
        for path in &paths {
            let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
            let list: Vec<Exchange> = if path.extension().is_some_and(|x| x == "json") {
                serde_json::from_str(&text).map_err(|e| bad(path, e.to_string()))?
            } else {
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(i, l)| {
                        serde_json::from_str(l)
                            .map_err(|e| bad(path, format!("line {}: {e}", i + 1)))
                    })
                    .collect::<Result<_>>()?
            };
            for x in list {
                let k = key(&x.request.method, &x.request.url, x.request.body.as_ref());
                exchanges.entry(k).or_default().push_back(x.response);
            }
        }
        if exchanges.is_empty() {
            return Err(EngineError::Config(format!(
                "no cassettes in {} (`*.jsonl` written by `--record`, or `*.json` arrays)",
                dir.display()
            )));
        }
        Ok(Player {
            dir: dir.to_path_buf(),
            exchanges: Mutex::new(exchanges),
            last: Mutex::new(HashMap::new()),
        })
    }

    /// The recorded response to `request`, or an error naming it.
    pub fn answer(
        &self,
        request: &RecordedRequest,
    ) -> std::result::Result<RecordedResponse, String> {
        let k = key(&request.method, &request.url, request.body.as_ref());
        let next = self
            .exchanges
            .lock()
            .unwrap()
            .get_mut(&k)
            .and_then(VecDeque::pop_front);
        let mut last = self.last.lock().unwrap();
        match next {
            Some(r) => {
                last.insert(k, r.clone());
                Ok(r)
            }
            None => last.get(&k).cloned().ok_or_else(|| {
                let body = request
                    .body
                    .as_ref()
                    .map(|b| format!(" with body {b}"))
                    .unwrap_or_default();
                format!(
                    "replay: the cassettes in {} hold no response to {} {}{body}; record the run again with `--record`",
                    self.dir.display(),
                    request.method,
                    request.url
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_with_their_query_in_any_order() {
        assert_eq!(
            key("get", "https://x.test/a?b=2&a=1", None),
            key("GET", "https://x.test/a?a=1&b=2", None)
        );
        assert_ne!(
            key("GET", "https://x.test/a?a=1", None),
            key("GET", "https://x.test/a?a=2", None)
        );
        let form = |s: &str| Some(Value::String(s.into()));
        assert_eq!(
            key("POST", "https://x.test/t", form("a=1&b=2").as_ref()),
            key("POST", "https://x.test/t", form("b=2&a=1").as_ref())
        );
    }

    #[test]
    fn repeated_requests_are_served_in_order_then_the_last_again() {
        let dir = std::env::temp_dir().join(format!("cassette-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ex = |status: u16| Exchange {
            request: RecordedRequest {
                method: "GET".into(),
                url: "https://x.test/items".into(),
                body: None,
            },
            response: RecordedResponse {
                status,
                headers: BTreeMap::new(),
                body: Some(serde_json::json!({ "status": status })),
                body_text: None,
            },
        };
        std::fs::write(
            dir.join("items.json"),
            serde_json::to_string(&vec![ex(429), ex(200)]).unwrap(),
        )
        .unwrap();
        let p = Player::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let req = ex(0).request;
        assert_eq!(p.answer(&req).unwrap().status, 429);
        assert_eq!(p.answer(&req).unwrap().status, 200);
        assert_eq!(p.answer(&req).unwrap().status, 200);
        let other = RecordedRequest {
            url: "https://x.test/other".into(),
            ..req
        };
        assert!(
            p.answer(&other)
                .unwrap_err()
                .contains("GET https://x.test/other")
        );
    }
}
