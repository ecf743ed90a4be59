//! `csv:DIR`: one `DIR/<stream>.csv` per stream, RFC 4180, with a header.
//!
//! Nested objects are flattened into dotted columns, like pandas'
//! `json_normalize` (`company.name`, `address.geo.lat`); arrays are JSON
//! text; `null` is an empty field and an empty string is `""`.
//!
//! A field may first appear in any record, so the header is only known at the
//! end. Rows go to a body file (`DIR/.<stream>.csv.body`) as they arrive,
//! each with the columns known so far; closing the stream writes the header
//! and the body, each row padded to the final column count, into
//! `DIR/<stream>.csv` (via a temp file and a rename, so readers see the old
//! file or the new one). Nothing is held in memory but one row. The body's
//! length and columns are checkpointed in the state file with every commit,
//! so a resumed run cuts the body back and goes on; the body is removed once
//! the stream completes.
//!
//! Incremental runs (and `--write-mode append`) keep the rows of the existing
//! file: they are copied into the new body first.

use super::schema::flatten;
use super::spool::{self, Spool, SpoolStart};
use super::{Destination, DestinationOptions, StreamInfo, WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::state::{State, StateFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where a stream's body stands, kept in the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CsvPosition {
    /// Length of the body file.
    body_bytes: u64,
    columns: Vec<String>,
    /// `(offset, columns)`: from `offset` on, rows have that many fields.
    segments: Vec<(u64, usize)>,
}

struct CsvStream {
    body_path: PathBuf,
    writer: BufWriter<File>,
    pos: CsvPosition,
    index: HashMap<String, usize>,
    row: Vec<u8>,
}

pub struct CsvDestination {
    dir: PathBuf,
    state: Option<StateFile>,
    write_mode: Option<WriteStrategy>,
    streams: HashMap<String, CsvStream>,
    /// Closed streams and their bodies, removed once they completed.
    closed: Vec<(String, PathBuf)>,
}

fn io_err(path: &Path, what: &str) -> impl Fn(std::io::Error) -> EngineError {
    let shown = path.display().to_string();
    let what = what.to_string();
    move |e| EngineError::Destination(format!("cannot {what} {shown}: {e}"))
}

/// Appends one CSV field; `None` is an empty field.
fn push_field(out: &mut Vec<u8>, v: Option<&str>) {
    let Some(s) = v else { return };
    if s.is_empty() || s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Splits one CSV line (no line break inside) into fields.
fn parse_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl CsvDestination {
    pub fn create(
        dir: &Path,
        state: Option<StateFile>,
        opts: &DestinationOptions,
    ) -> Result<CsvDestination> {
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create"))?;
        Ok(CsvDestination {
            dir: dir.to_path_buf(),
            state,
            write_mode: opts.write_mode,
            streams: HashMap::new(),
            closed: Vec::new(),
        })
    }

    fn final_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.csv"))
    }

    fn body_path(&self, stream: &str) -> PathBuf {
        spool::hidden(&self.dir, stream, "csv.body")
    }

    /// Copies the rows of an existing `<stream>.csv` into a fresh body.
    fn seed_from_existing(final_path: &Path, body: &mut impl Write) -> Result<Option<CsvPosition>> {
        let file = match File::open(final_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(final_path, "read")(e)),
        };
        let mut reader = BufReader::new(file);
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .map_err(io_err(final_path, "read"))?;
        let header = header.trim_end_matches(['\n', '\r']);
        if header.is_empty() {
            return Ok(None);
        }
        let columns = parse_line(header);
        let copied = std::io::copy(&mut reader, body).map_err(io_err(final_path, "copy"))?;
        Ok(Some(CsvPosition {
            body_bytes: copied,
            segments: vec![(0, columns.len())],
            columns,
        }))
    }

    /// Writes `<stream>.csv`: the header, then the body with every row padded
    /// to the final number of columns.
    fn finalize(&self, stream: &str, s: &mut CsvStream) -> Result<()> {
        s.writer.flush().map_err(io_err(&s.body_path, "write"))?;
        let final_path = self.final_path(stream);
        let tmp = self.dir.join(format!(".{stream}.csv.tmp"));
        let mut out = BufWriter::with_capacity(
            256 * 1024,
            File::create(&tmp).map_err(io_err(&tmp, "create"))?,
        );
        let mut header = Vec::new();
        for (i, c) in s.pos.columns.iter().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            push_field(&mut header, Some(c));
        }
        header.push(b'\n');
        out.write_all(&header).map_err(io_err(&tmp, "write"))?;
        let total = s.pos.columns.len();
        let mut body = File::open(&s.body_path).map_err(io_err(&s.body_path, "read"))?;
        let segments = &s.pos.segments;
        for (k, &(start, ncols)) in segments.iter().enumerate() {
            let end = segments.get(k + 1).map(|x| x.0).unwrap_or(s.pos.body_bytes);
            body.seek(SeekFrom::Start(start))
                .map_err(io_err(&s.body_path, "read"))?;
            let mut part = (&mut body).take(end - start);
            if ncols == total {
                std::io::copy(&mut part, &mut out).map_err(io_err(&tmp, "write"))?;
                continue;
            }
            // Pad each row: add the missing trailing fields before its line
            // break (a line break inside quotes is part of a field).
            let pad = vec![b','; total - ncols];
            let mut reader = BufReader::with_capacity(256 * 1024, part);
            let mut quoted = false;
            loop {
                let buf = reader.fill_buf().map_err(io_err(&s.body_path, "read"))?;
                if buf.is_empty() {
                    break;
                }
                let mut from = 0;
                for (i, &b) in buf.iter().enumerate() {
                    match b {
                        b'"' => quoted = !quoted,
                        b'\n' if !quoted => {
                            out.write_all(&buf[from..i])
                                .map_err(io_err(&tmp, "write"))?;
                            out.write_all(&pad).map_err(io_err(&tmp, "write"))?;
                            from = i;
                        }
                        _ => {}
                    }
                }
                out.write_all(&buf[from..]).map_err(io_err(&tmp, "write"))?;
                let n = buf.len();
                reader.consume(n);
            }
        }
        let file = out
            .into_inner()
            .map_err(|e| io_err(&tmp, "write")(e.into_error()))?;
        file.sync_data().map_err(io_err(&tmp, "sync"))?;
        drop(file);
        std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path, "replace"))?;
        Ok(())
    }
}

impl Destination for CsvDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        StateFile::load_optional(self.state.as_ref())
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let name = stream.name.as_str();
        let (spool, pos) = match spool::start::<CsvPosition>(resume, mode, self.write_mode) {
            SpoolStart::Resumed(pos) => (
                Spool::open(self.body_path(name), Some(pos.body_bytes))?,
                pos,
            ),
            SpoolStart::Fresh { append } => {
                let mut spool = Spool::open(self.body_path(name), None)?;
                let seeded = if append {
                    Self::seed_from_existing(&self.final_path(name), &mut spool.writer)?
                } else {
                    None
                };
                let pos = seeded.unwrap_or(CsvPosition {
                    body_bytes: 0,
                    columns: Vec::new(),
                    segments: vec![(0, 0)],
                });
                (spool, pos)
            }
        };
        let Spool {
            path: body_path,
            writer,
        } = spool;
        let index = pos
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        self.streams.insert(
            name.to_string(),
            CsvStream {
                body_path,
                writer,
                pos,
                index,
                row: Vec::with_capacity(1024),
            },
        );
        Ok(())
    }

    fn check_resume(&self, stream: &str, resume: &Value) -> std::result::Result<(), String> {
        let pos: CsvPosition = serde_json::from_value(resume.clone())
            .map_err(|e| format!("the saved CSV position is not valid: {e}"))?;
        let body = self.body_path(stream);
        let len = super::check_length(&body, resume.get("body_bytes"), "body length")?;
        let mut last = 0;
        for &(at, cols) in &pos.segments {
            if at < last || at > len || cols > pos.columns.len() {
                return Err(format!(
                    "the saved CSV segments of {} do not fit its {len} bytes and {} columns",
                    body.display(),
                    pos.columns.len()
                ));
            }
            last = at;
        }
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let mut leaves = Vec::new();
        let mut cells: Vec<Option<String>> = Vec::new();
        for r in records {
            leaves.clear();
            flatten(r, &mut leaves);
            let before = s.pos.columns.len();
            for (path, _) in &leaves {
                if !s.index.contains_key(path) {
                    s.index.insert(path.clone(), s.pos.columns.len());
                    s.pos.columns.push(path.clone());
                }
            }
            let n = s.pos.columns.len();
            if n != before {
                // Rows from here on have more fields.
                match s.pos.segments.last_mut() {
                    Some(last) if last.0 == s.pos.body_bytes => last.1 = n,
                    _ => s.pos.segments.push((s.pos.body_bytes, n)),
                }
            }
            cells.clear();
            cells.resize(n, None);
            for (path, v) in &leaves {
                cells[s.index[path]] = value_text(v);
            }
            s.row.clear();
            for (i, c) in cells.iter().enumerate() {
                if i > 0 {
                    s.row.push(b',');
                }
                push_field(&mut s.row, c.as_deref());
            }
            if n == 1 && cells[0].is_none() {
                // A row of one empty field would read as a blank line.
                s.row.extend_from_slice(b"\"\"");
            }
            s.row.push(b'\n');
            s.writer
                .write_all(&s.row)
                .map_err(io_err(&s.body_path, "write"))?;
            s.pos.body_bytes += s.row.len() as u64;
        }
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        spool::remove_completed(&mut self.closed, state);
        for (name, s) in self.streams.iter_mut() {
            s.writer.flush().map_err(io_err(&s.body_path, "write"))?;
            if durable {
                s.writer
                    .get_ref()
                    .sync_data()
                    .map_err(io_err(&s.body_path, "sync"))?;
            }
            if !super::is_preview_commit(state, durable) {
                state.stream(name).destination = serde_json::to_value(&s.pos).ok();
            }
        }
        spool::save_state(self.state.as_ref(), state, durable)
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if let Some(mut s) = self.streams.remove(stream) {
            self.finalize(stream, &mut s)?;
            self.closed.push((stream.to_string(), s.body_path.clone()));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("csv:{}", self.dir.display())
    }
}

impl Drop for CsvDestination {
    fn drop(&mut self) {
        for s in self.streams.values_mut() {
            let _ = s.writer.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        push_field(&mut out, Some("a,b"));
        out.push(b',');
        push_field(&mut out, Some("say \"hi\""));
        out.push(b',');
        push_field(&mut out, None);
        out.push(b',');
        push_field(&mut out, Some(""));
        assert_eq!(String::from_utf8(out).unwrap(), r#""a,b","say ""hi""",,"""#);
        assert_eq!(parse_line(r#"a,"b,c","d""e""#), ["a", "b,c", "d\"e"]);
    }
}
