//! `singer:-`: the Singer tap protocol on stdout, so any Singer target (and
//! Meltano) can consume a connector.
//!
//! - `SCHEMA` before a stream's first record, with `key_properties` (the
//!   primary key) and `bookmark_properties` (the incremental cursor), built
//!   from the declared schema and the records; sent again, widened, when a
//!   later record brings a new field or a wider type.
//! - `RECORD` with `time_extracted`.
//! - `STATE` after each commit that changed it: `{"bookmarks": {<stream>:
//!   <stream state>}}`, the whole state each time, as Singer expects.
//!
//! `--state FILE` is read, never written (the runner keeps the last STATE
//! message): `{"bookmarks": …}`, the same wrapped as `{"value": …}` or
//! `{"singer_state": …}` (Meltano), or connector-run's own state file.

use super::schema::ObservedTypes;
use super::{Destination, StreamInfo, WriteMode};
use crate::error::{EngineError, Result};
use crate::state::{State, StreamState};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

struct SingerStream {
    info: StreamInfo,
    seen: ObservedTypes,
    declared: Option<Value>,
    schema_sent: bool,
}

pub struct SingerDestination {
    out: Box<dyn Write + Send>,
    state_file: Option<PathBuf>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, SingerStream>,
    last_state: Option<String>,
    line: Vec<u8>,
}

/// Parses Singer state (see the module docs) into connector-run's state.
pub fn parse_singer_state(text: &str, origin: &str) -> Result<State> {
    let bad = |why: String| EngineError::Plan(format!("singer state {origin}: {why}"));
    if text.trim().is_empty() {
        return Ok(State::default());
    }
    let mut v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    loop {
        let next = ["value", "singer_state"]
            .iter()
            .find_map(|k| v.get(*k).filter(|x| x.is_object()).cloned());
        match next {
            Some(inner) if v.get("bookmarks").is_none() && v.get("streams").is_none() => v = inner,
            _ => break,
        }
    }
    if v.get("streams").is_some() && v.get("bookmarks").is_none() {
        return State::parse(&v.to_string(), origin);
    }
    let mut state = State::default();
    if let Some(bookmarks) = v.get("bookmarks").and_then(Value::as_object) {
        for (name, b) in bookmarks {
            let ss: StreamState = serde_json::from_value(b.clone())
                .map_err(|e| bad(format!("bookmark of `{name}`: {e}")))?;
            state.streams.insert(name.clone(), ss);
        }
    } else if !v.as_object().is_some_and(Map::is_empty) {
        return Err(bad(
            "expected {\"bookmarks\": {...}} (or it wrapped in \"value\")".into(),
        ));
    }
    Ok(state)
}

impl SingerDestination {
    pub fn new(
        out: Box<dyn Write + Send>,
        state_file: Option<PathBuf>,
        schemas: BTreeMap<String, Value>,
    ) -> SingerDestination {
        SingerDestination {
            out,
            state_file,
            schemas,
            streams: HashMap::new(),
            last_state: None,
            line: Vec::with_capacity(1024),
        }
    }

    pub fn stdout(state_file: Option<PathBuf>, schemas: BTreeMap<String, Value>) -> Self {
        Self::new(
            Box::new(std::io::BufWriter::with_capacity(
                256 * 1024,
                std::io::stdout(),
            )),
            state_file,
            schemas,
        )
    }

    fn send_schema(&mut self, name: &str) -> Result<()> {
        let Some(s) = self.streams.get_mut(name) else {
            return Ok(());
        };
        let mut schema = s.seen.json_schema(s.declared.as_ref());
        schema["type"] = json!(["object", "null"]);
        let msg = json!({
            "type": "SCHEMA",
            "stream": name,
            "schema": schema,
            "key_properties": s.info.primary_key,
            "bookmark_properties": s.info.cursor_field.iter().collect::<Vec<_>>(),
        });
        s.schema_sent = true;
        let mut line = serde_json::to_vec(&msg).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        Ok(())
    }
}

impl Destination for SingerDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        let Some(path) = &self.state_file else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(EngineError::Plan(format!(
                    "cannot read state {}: {e}",
                    path.display()
                )));
            }
        };
        parse_singer_state(&text, &path.display().to_string()).map(Some)
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        _mode: WriteMode,
        _resume: Option<&Value>,
    ) -> Result<()> {
        let declared = stream
            .json_schema
            .clone()
            .or_else(|| self.schemas.get(&stream.name).cloned());
        let has_declared = declared.is_some();
        self.streams.insert(
            stream.name.clone(),
            SingerStream {
                info: stream.clone(),
                seen: ObservedTypes::default(),
                declared,
                schema_sent: false,
            },
        );
        if has_declared {
            self.send_schema(&stream.name)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let changed = s.seen.observe(records);
        if changed || !s.schema_sent {
            self.send_schema(stream)?;
        }
        let name = serde_json::to_string(stream).map_err(std::io::Error::from)?;
        let at =
            serde_json::to_string(&super::schema::now_rfc3339()).map_err(std::io::Error::from)?;
        for r in records {
            self.line.clear();
            self.line
                .extend_from_slice(b"{\"type\":\"RECORD\",\"stream\":");
            self.line.extend_from_slice(name.as_bytes());
            self.line.extend_from_slice(b",\"record\":");
            serde_json::to_writer(&mut self.line, r).map_err(std::io::Error::from)?;
            self.line.extend_from_slice(b",\"time_extracted\":");
            self.line.extend_from_slice(at.as_bytes());
            self.line.extend_from_slice(b"}\n");
            self.out.write_all(&self.line)?;
        }
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        if !super::is_preview_commit(state, durable) {
            let value = json!({ "bookmarks": state.streams, "version": state.version });
            let text = value.to_string();
            if self.last_state.as_ref() != Some(&text) {
                writeln!(self.out, "{{\"type\":\"STATE\",\"value\":{text}}}")?;
                self.last_state = Some(text);
            }
        }
        self.out.flush()?;
        Ok(())
    }

    fn close_stream(&mut self, _stream: &str) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn describe(&self) -> String {
        "singer:-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bookmarks_in_every_wrapping() {
        for text in [
            r#"{"bookmarks": {"posts": {"cursor": 5}}}"#,
            r#"{"value": {"bookmarks": {"posts": {"cursor": 5}}}}"#,
            r#"{"singer_state": {"bookmarks": {"posts": {"cursor": 5}}}}"#,
            r#"{"version": 1, "streams": {"posts": {"cursor": 5}}}"#,
        ] {
            let s = parse_singer_state(text, "t").unwrap();
            assert_eq!(s.streams["posts"].cursor, Some(json!(5)), "{text}");
        }
        assert!(parse_singer_state("{}", "t").unwrap().streams.is_empty());
    }
}
