//! `singer:-`: the Singer tap protocol on stdout, so any Singer target (and
//! Meltano) can consume a connector.
//!
//! - `SCHEMA` before a stream's first record, with `key_properties` (the
//!   primary key) and `bookmark_properties` (the incremental cursor): the
//!   declared schema, else the types of the stream's first pages (its first
//!   [`sample pages`](SingerDestination::with_sample_pages) are held back
//!   until the schema is known, see [`super::stream_schema`]); sent again,
//!   widened, when a later record brings a new field or a wider type.
//! - `RECORD` with `time_extracted`, and `version` for full-refresh streams.
//! - `ACTIVATE_VERSION` for full-refresh streams: after the first `SCHEMA`
//!   on a stream's first run (no bookmark yet), so the target creates the
//!   table at once, and when the stream completes, so the target keeps only
//!   this run's records. A resumed run keeps the version it started with
//!   (saved in the bookmark's `destination`).
//! - `STATE` after each commit that changed it: `{"bookmarks": {<stream>:
//!   <stream state>}}`, the whole state each time, as Singer expects; never
//!   before the records it covers (it waits while records are held back).
//!
//! A catalog's field selection ([`FieldSelection`]) drops unselected fields
//! from records and schemas.
//!
//! `--state FILE` is read, never written (the runner keeps the last STATE
//! message): `{"bookmarks": …}`, the same wrapped as `{"value": …}` or
//! `{"singer_state": …}` (Meltano), or connector-run's own state file.

use super::stream_schema::{DEFAULT_SAMPLE_PAGES, SeenTypes};
use super::{Destination, StreamInfo, WriteMode};
use crate::error::{EngineError, Result};
use crate::state::{State, StreamState};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;

/// Which top-level fields of a stream a Singer catalog selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelection {
    /// Fields selected (or `inclusion: automatic`).
    pub selected: BTreeSet<String>,
    /// Every field the catalog's metadata names.
    pub listed: BTreeSet<String>,
}

impl FieldSelection {
    /// A field is kept when selected; a field the catalog does not name
    /// (one that appeared after discovery) only when every named field is
    /// selected, as when the whole stream was selected.
    pub fn keeps(&self, field: &str) -> bool {
        self.selected.contains(field)
            || (!self.listed.contains(field) && self.selected.len() == self.listed.len())
    }

    fn project(&self, record: &Value) -> Value {
        match record {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| self.keeps(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

struct SingerStream {
    info: StreamInfo,
    seen: SeenTypes,
    declared: Option<Value>,
    schema_sent: bool,
    /// The schema last sent: a change that leaves it as it was sends nothing.
    last_schema: Option<Value>,
    /// Records held back until the schema is known, and their pages.
    held: Vec<Value>,
    held_pages: u64,
    /// Full-refresh streams: the table version of this run.
    version: Option<u64>,
    activate_at_start: bool,
    /// A committed state showed the stream's run under way: only then does
    /// its end activate the version (a preview commits the saved state,
    /// and must never activate a cut-down table).
    under_way: bool,
    closed: bool,
    ended: bool,
    selection: Option<FieldSelection>,
}

impl SingerStream {
    fn holding(&self) -> bool {
        !self.schema_sent && self.held_pages > 0
    }
}

pub struct SingerDestination {
    out: Box<dyn Write + Send>,
    state_file: Option<PathBuf>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, SingerStream>,
    last_state: Option<String>,
    /// Streams the loaded state has a bookmark for.
    bookmarked: BTreeSet<String>,
    sample_pages: u64,
    selections: BTreeMap<String, FieldSelection>,
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

fn now_ms() -> u64 {
    super::airbyte::now_ms()
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
            bookmarked: BTreeSet::new(),
            sample_pages: DEFAULT_SAMPLE_PAGES,
            selections: BTreeMap::new(),
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

    /// Pages of a stream without a declared schema held back before its
    /// first `SCHEMA` (at least 1).
    pub fn with_sample_pages(mut self, pages: u64) -> Self {
        self.sample_pages = pages.max(1);
        self
    }

    /// The fields a catalog selects, by stream.
    pub fn with_selections(mut self, selections: BTreeMap<String, FieldSelection>) -> Self {
        self.selections = selections;
        self
    }

    fn write_line(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        Ok(())
    }

    fn send_schema(&mut self, name: &str) -> Result<()> {
        let Some(s) = self.streams.get_mut(name) else {
            return Ok(());
        };
        let mut schema = s.seen.json_schema(s.declared.as_ref());
        if let (Some(sel), Some(props)) = (
            &s.selection,
            schema.get_mut("properties").and_then(Value::as_object_mut),
        ) {
            props.retain(|k, _| sel.keeps(k));
        }
        schema["type"] = json!(["object", "null"]);
        if s.last_schema.as_ref() == Some(&schema) {
            return Ok(());
        }
        s.last_schema = Some(schema.clone());
        let msg = json!({
            "type": "SCHEMA",
            "stream": name,
            "schema": schema,
            "key_properties": s.info.primary_key,
            "bookmark_properties": s.info.cursor_field.iter().collect::<Vec<_>>(),
        });
        let first = !s.schema_sent;
        s.schema_sent = true;
        let activate = (first && s.activate_at_start)
            .then_some(s.version)
            .flatten();
        self.write_line(&msg)?;
        if let Some(v) = activate {
            self.write_line(&json!({"type": "ACTIVATE_VERSION", "stream": name, "version": v}))?;
        }
        Ok(())
    }

    /// Sends the first SCHEMA and the records held back for it.
    fn start(&mut self, name: &str) -> Result<()> {
        self.send_schema(name)?;
        let Some(s) = self.streams.get_mut(name) else {
            return Ok(());
        };
        let held = std::mem::take(&mut s.held);
        s.held_pages = 0;
        self.write_records(name, &held)
    }

    fn write_records(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let version = self.streams.get(stream).and_then(|s| s.version);
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
            if let Some(v) = version {
                self.line
                    .extend_from_slice(format!(",\"version\":{v}").as_bytes());
            }
            self.line.extend_from_slice(b",\"time_extracted\":");
            self.line.extend_from_slice(at.as_bytes());
            self.line.extend_from_slice(b"}\n");
            self.out.write_all(&self.line)?;
        }
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
        let state = parse_singer_state(&text, &path.display().to_string())?;
        self.bookmarked = state.streams.keys().cloned().collect();
        Ok(Some(state))
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        _mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let declared = stream
            .json_schema
            .clone()
            .or_else(|| self.schemas.get(&stream.name).cloned());
        let has_declared = declared.is_some();
        let resumed_version = resume
            .and_then(|r| r.get("version"))
            .and_then(Value::as_u64);
        let version = (!stream.incremental).then(|| resumed_version.unwrap_or_else(now_ms));
        self.streams.insert(
            stream.name.clone(),
            SingerStream {
                info: stream.clone(),
                seen: SeenTypes::default(),
                declared,
                schema_sent: false,
                last_schema: None,
                held: Vec::new(),
                held_pages: 0,
                version,
                activate_at_start: resumed_version.is_none()
                    && !self.bookmarked.contains(&stream.name),
                under_way: false,
                closed: false,
                ended: false,
                selection: self.selections.get(&stream.name).cloned(),
            },
        );
        if has_declared {
            self.start(&stream.name)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let sample_pages = self.sample_pages;
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let projected: Vec<Value>;
        let records = match &s.selection {
            Some(sel) => {
                projected = records.iter().map(|r| sel.project(r)).collect();
                &projected[..]
            }
            None => records,
        };
        let changed = s.seen.observe(records);
        if !s.schema_sent {
            s.held.extend_from_slice(records);
            s.held_pages += 1;
            if s.held_pages >= sample_pages {
                self.start(stream)?;
            }
            return Ok(());
        }
        if changed {
            self.send_schema(stream)?;
        }
        self.write_records(stream, records)
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        if super::is_preview_commit(state, durable) {
            self.out.flush()?;
            return Ok(());
        }
        let mut ended = Vec::new();
        for (name, s) in &mut self.streams {
            let Some(v) = s.version else { continue };
            if !s.closed {
                if let Some(ss) = state.streams.get_mut(name) {
                    ss.destination = Some(json!({ "version": v }));
                    s.under_way |= ss.in_progress;
                }
            } else if !s.ended && s.under_way && super::completed(state, name) {
                s.ended = true;
                ended.push((name.clone(), v));
            }
        }
        ended.sort();
        for (name, v) in ended {
            self.write_line(&json!({"type": "ACTIVATE_VERSION", "stream": name, "version": v}))?;
        }
        if !self.streams.values().any(SingerStream::holding) {
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

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if self.streams.get(stream).is_some_and(|s| !s.schema_sent) {
            self.start(stream)?;
        }
        if let Some(s) = self.streams.get_mut(stream) {
            s.closed = true;
        }
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
