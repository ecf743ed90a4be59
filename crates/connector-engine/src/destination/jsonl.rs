//! `jsonl:DIR`: one `DIR/<stream>.jsonl` per stream, one record per line,
//! exactly as extracted. Each run rewrites the stream's file. Every page is
//! flushed as it arrives, so a failed or killed run keeps what it wrote.

use super::Destination;
use crate::error::{EngineError, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct JsonlDestination {
    dir: PathBuf,
    files: HashMap<String, BufWriter<File>>,
}

impl JsonlDestination {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EngineError::Destination(format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(JsonlDestination {
            dir: dir.to_path_buf(),
            files: HashMap::new(),
        })
    }

    fn path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.jsonl"))
    }
}

impl Destination for JsonlDestination {
    fn open_stream(&mut self, stream: &str) -> Result<()> {
        let path = self.path(stream);
        let f = File::create(&path).map_err(|e| {
            EngineError::Destination(format!("cannot create {}: {e}", path.display()))
        })?;
        self.files
            .insert(stream.to_string(), BufWriter::with_capacity(256 * 1024, f));
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let w = self
            .files
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        for r in records {
            serde_json::to_writer(&mut *w, r).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for w in self.files.values_mut() {
            w.flush()?;
        }
        Ok(())
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if let Some(mut w) = self.files.remove(stream) {
            w.flush()?;
            w.get_ref().sync_data()?;
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
        let open: Vec<String> = self.files.keys().cloned().collect();
        for s in open {
            let _ = self.close_stream(&s);
        }
    }
}
