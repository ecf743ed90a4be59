//! The Airbyte source protocol's `read` output: RECORD messages for the
//! records, and after each commit one `STREAM` STATE message per stream whose
//! state changed, carrying that stream's state (cursor, and resume positions
//! while a run is unfinished). Airbyte commits the records before a STATE
//! message together with it, so the state it hands back on the next run is
//! exactly where to go on.
//!
//! Each stream's `STREAM_STATUS` trace messages tell its progress, as
//! current Airbyte platforms expect: `STARTED` when it opens, `RUNNING`
//! before its first record, and `COMPLETE` or `INCOMPLETE` (it failed) after
//! its last STATE message.
//!
//! ```json
//! {"type":"RECORD","record":{"stream":"users","data":{"id":1},"emitted_at":1700000000000}}
//! {"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"cursor":"2024-01-01"}},"sourceStats":{"recordCount":1.0}}}
//! ```

use super::{Destination, StreamInfo, WriteMode};
use crate::error::{EngineError, Result};
use crate::state::{State, StreamState};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

pub struct AirbyteDestination {
    out: Box<dyn Write + Send>,
    input: Option<State>,
    /// Last emitted state of each stream.
    emitted: BTreeMap<String, String>,
    /// Records written since each stream's last STATE message.
    since_state: BTreeMap<String, u64>,
    /// Streams that sent RUNNING, and streams closed but not yet reported
    /// COMPLETE or INCOMPLETE.
    running: std::collections::BTreeSet<String>,
    closed: Vec<String>,
    line: Vec<u8>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl AirbyteDestination {
    /// Writes messages to `out`; `input` is the state Airbyte passed in.
    pub fn new(out: Box<dyn Write + Send>, input: Option<State>) -> AirbyteDestination {
        AirbyteDestination {
            out,
            input,
            emitted: BTreeMap::new(),
            since_state: BTreeMap::new(),
            running: Default::default(),
            closed: Vec::new(),
            line: Vec::with_capacity(1024),
        }
    }

    /// A `STREAM_STATUS` trace message: `STARTED`, `RUNNING`, `COMPLETE` or
    /// `INCOMPLETE`.
    pub fn status_message(stream: &str, status: &str) -> Value {
        json!({
            "type": "TRACE",
            "trace": {
                "type": "STREAM_STATUS",
                "emitted_at": now_ms() as f64,
                "stream_status": {
                    "stream_descriptor": { "name": stream },
                    "status": status,
                },
            }
        })
    }

    fn send(&mut self, msg: &Value) -> Result<()> {
        // One write per line: the output may be shared with a logger.
        let mut line = serde_json::to_vec(msg).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        Ok(())
    }

    /// One STATE message for one stream.
    pub fn state_message(stream: &str, state: &StreamState, records: u64) -> Value {
        json!({
            "type": "STATE",
            "state": {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": { "name": stream },
                    "stream_state": state,
                },
                "sourceStats": { "recordCount": records as f64 },
            }
        })
    }
}

/// Parses an Airbyte state input (`--state FILE`): a list of `STREAM` state
/// messages (bare or wrapped as `{"type": "STATE", "state": …}`), or a legacy
/// object of stream states keyed by name. Other stream namespaces, `GLOBAL`
/// and unknown entries are ignored; an empty file or list means no state.
pub fn parse_airbyte_state(text: &str, origin: &str) -> Result<State> {
    let bad = |why: String| EngineError::Plan(format!("airbyte state {origin}: {why}"));
    let mut state = State::default();
    if text.trim().is_empty() {
        return Ok(state);
    }
    let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let items: Vec<Value> = match v {
        Value::Array(a) => a,
        Value::Object(o) if o.contains_key("type") || o.contains_key("stream") => {
            vec![Value::Object(o)]
        }
        Value::Object(o) => {
            // Legacy: `{"stream": {...}}` or `{"data": {...}}`.
            let data = o.get("data").and_then(Value::as_object).unwrap_or(&o);
            for (name, s) in data {
                let ss: StreamState = serde_json::from_value(s.clone())
                    .map_err(|e| bad(format!("stream `{name}`: {e}")))?;
                state.streams.insert(name.clone(), ss);
            }
            return Ok(state);
        }
        Value::Null => return Ok(state),
        other => {
            return Err(bad(format!(
                "expected a list of state messages, got {other}"
            )));
        }
    };
    for item in items {
        let msg = match item.get("state") {
            Some(inner) if item.get("type").and_then(Value::as_str) == Some("STATE") => {
                inner.clone()
            }
            _ => item,
        };
        if msg.get("type").and_then(Value::as_str).unwrap_or("STREAM") != "STREAM" {
            continue;
        }
        let Some(stream) = msg.get("stream") else {
            continue;
        };
        let Some(name) = stream
            .pointer("/stream_descriptor/name")
            .and_then(Value::as_str)
        else {
            return Err(bad("a STREAM state without stream_descriptor.name".into()));
        };
        let ss: StreamState = match stream.get("stream_state") {
            None | Some(Value::Null) => StreamState::default(),
            Some(s) => serde_json::from_value(s.clone())
                .map_err(|e| bad(format!("stream `{name}`: {e}")))?,
        };
        state.streams.insert(name.to_string(), ss);
    }
    Ok(state)
}

impl Destination for AirbyteDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        Ok(self.input.clone())
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        _mode: WriteMode,
        _resume: Option<&Value>,
    ) -> Result<()> {
        self.since_state.entry(stream.name.clone()).or_insert(0);
        self.send(&Self::status_message(&stream.name, "STARTED"))?;
        self.out.flush()?;
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        if !records.is_empty() && self.running.insert(stream.to_string()) {
            self.send(&Self::status_message(stream, "RUNNING"))?;
        }
        let name = serde_json::to_string(stream).map_err(std::io::Error::from)?;
        let at = now_ms();
        for r in records {
            self.line.clear();
            self.line
                .extend_from_slice(b"{\"type\":\"RECORD\",\"record\":{\"stream\":");
            self.line.extend_from_slice(name.as_bytes());
            self.line.extend_from_slice(b",\"data\":");
            serde_json::to_writer(&mut self.line, r).map_err(std::io::Error::from)?;
            self.line
                .extend_from_slice(format!(",\"emitted_at\":{at}}}}}\n").as_bytes());
            self.out.write_all(&self.line)?;
        }
        *self.since_state.entry(stream.to_string()).or_insert(0) += records.len() as u64;
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        if !super::is_preview_commit(state, durable) {
            for (name, ss) in &state.streams {
                let text = serde_json::to_string(ss).map_err(std::io::Error::from)?;
                if self.emitted.get(name) == Some(&text) {
                    continue;
                }
                let records = self.since_state.insert(name.clone(), 0).unwrap_or(0);
                let msg = Self::state_message(name, ss, records);
                let mut line = serde_json::to_vec(&msg).map_err(std::io::Error::from)?;
                line.push(b'\n');
                self.out.write_all(&line)?;
                self.emitted.insert(name.clone(), text);
            }
            for name in std::mem::take(&mut self.closed) {
                let status = if super::completed(state, &name) {
                    "COMPLETE"
                } else {
                    "INCOMPLETE"
                };
                self.send(&Self::status_message(&name, status))?;
            }
        }
        self.out.flush()?;
        Ok(())
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        self.closed.push(stream.to_string());
        self.out.flush()?;
        Ok(())
    }

    fn describe(&self) -> String {
        "airbyte".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stream_state_lists() {
        let text = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":{"cursor":"x"}}},
                       {"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"b"},"stream_state":{}}}},
                       {"type":"GLOBAL","global":{}}]"#;
        let s = parse_airbyte_state(text, "t").unwrap();
        assert_eq!(s.streams["a"].cursor, Some(json!("x")));
        assert!(s.streams.contains_key("b"));
        assert_eq!(s.streams.len(), 2);
        assert!(parse_airbyte_state("[]", "t").unwrap().streams.is_empty());
    }
}
