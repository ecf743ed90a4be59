//! `jsonl:DIR`: one `DIR/<stream>.jsonl` per stream, one record per line,
//! exactly as extracted. A full refresh rewrites the file; incremental and
//! resumed runs append. Each commit flushes and records the file's length in
//! the state, so a resume cuts off whatever a crash left after the last
//! checkpoint.

use super::{Destination, StreamInfo, WriteMode};
use crate::error::{EngineError, Result};
use crate::raw_records::{RawRecords, minify_into};
use crate::state::{State, StateFile};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

struct OpenFile {
    writer: BufWriter<File>,
    bytes: u64,
}

pub struct JsonlDestination {
    dir: PathBuf,
    files: HashMap<String, OpenFile>,
    state: Option<StateFile>,
}

impl JsonlDestination {
    pub fn create(dir: &Path, state: Option<StateFile>) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::Destination(format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(JsonlDestination {
            dir: dir.to_path_buf(),
            files: HashMap::new(),
            state,
        })
    }

    fn path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.jsonl"))
    }
}

impl Destination for JsonlDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        StateFile::load_optional(self.state.as_ref())
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let stream = stream.name.as_str();
        let path = self.path(stream);
        let cannot = |e: std::io::Error| {
            EngineError::Destination(format!("cannot open {}: {e}", path.display()))
        };
        let file = match (
            mode,
            resume.and_then(|r| r.get("bytes")).and_then(Value::as_u64),
        ) {
            (_, Some(len)) => super::reopen_at(&path, len).map_err(cannot)?,
            (WriteMode::Append, None) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(cannot)?,
            (WriteMode::Replace, None) => File::create(&path).map_err(cannot)?,
        };
        let bytes = file.metadata().map_err(cannot)?.len();
        self.files.insert(
            stream.to_string(),
            OpenFile {
                writer: BufWriter::with_capacity(256 * 1024, file),
                bytes,
            },
        );
        Ok(())
    }

    fn check_resume(&self, stream: &str, resume: &Value) -> std::result::Result<(), String> {
        super::check_length(&self.path(stream), resume.get("bytes"), "length").map(|_| ())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let path = self.path(stream);
        let failed = |e: std::io::Error| {
            EngineError::Destination(format!("cannot write {}: {e}", path.display()))
        };
        let f = self
            .files
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let mut line = Vec::with_capacity(512);
        for r in records {
            line.clear();
            serde_json::to_writer(&mut line, r).map_err(std::io::Error::from)?;
            line.push(b'\n');
            f.writer.write_all(&line).map_err(failed)?;
            f.bytes += line.len() as u64;
        }
        Ok(())
    }

    fn keeps_raw_json(&self) -> bool {
        true
    }

    fn takes_any_json(&self) -> bool {
        true
    }

    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        let path = self.path(stream);
        let f = self
            .files
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let mut lines =
            Vec::with_capacity(records.iter().map(<[u8]>::len).sum::<usize>() + records.len());
        for r in records.iter() {
            minify_into(r, &mut lines);
            lines.push(b'\n');
        }
        f.writer.write_all(&lines).map_err(|e| {
            EngineError::Destination(format!("cannot write {}: {e}", path.display()))
        })?;
        f.bytes += lines.len() as u64;
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        for (stream, f) in self.files.iter_mut() {
            let failed = |e: std::io::Error| {
                EngineError::Destination(format!(
                    "cannot write {}: {e}",
                    self.dir.join(format!("{stream}.jsonl")).display()
                ))
            };
            f.writer.flush().map_err(failed)?;
            if durable {
                f.writer.get_ref().sync_data().map_err(failed)?;
            }
            state.stream(stream).destination = Some(json!({ "bytes": f.bytes }));
        }
        super::spool::save_state(self.state.as_ref(), state, durable)
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if let Some(mut f) = self.files.remove(stream) {
            f.writer.flush()?;
            f.writer.get_ref().sync_data()?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("jsonl:{}", self.dir.display())
    }
}

impl Drop for JsonlDestination {
    fn drop(&mut self) {
        // A stream that failed keeps what it wrote.
        for f in self.files.values_mut() {
            let _ = f.writer.flush();
        }
    }
}
