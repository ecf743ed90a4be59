//! What the file destinations that write their file at the end of a stream
//! (CSV, Parquet) share: a spool file per stream (the CSV body, the Parquet
//! spill) that rows go to as they arrive, reopened and cut back to its
//! checkpointed length on resume, seeded from the existing file for
//! incremental and append runs, and removed once the stream completes.
//! And what every file destination shares: saving the state file.

use super::{WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::state::{State, StateFile};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Bytes buffered before a spool write reaches the file.
const BUFFER: usize = 256 * 1024;

/// How a stream's spool starts.
pub enum SpoolStart<P> {
    /// Resumed at a saved position, cut back to its length.
    Resumed(P),
    /// A new spool; `append` asks for the existing file's rows first.
    Fresh { append: bool },
}

/// One stream's spool file.
pub struct Spool {
    pub path: PathBuf,
    pub writer: BufWriter<File>,
}

impl Spool {
    /// Opens the spool at `path`: cut back to `len` (a resumed run), else
    /// created empty.
    pub fn open(path: PathBuf, len: Option<u64>) -> Result<Spool> {
        let cannot = |what: &str, e: std::io::Error| {
            EngineError::Destination(format!("cannot {what} {}: {e}", path.display()))
        };
        let file = match len {
            Some(len) => super::reopen_at(&path, len).map_err(|e| cannot("reopen", e))?,
            None => File::create(&path).map_err(|e| cannot("create", e))?,
        };
        Ok(Spool {
            writer: BufWriter::with_capacity(BUFFER, file),
            path,
        })
    }
}

/// How a stream's spool starts, from the saved position (vetted by
/// `check_resume`) and the run's mode.
pub fn start<P: serde::de::DeserializeOwned>(
    resume: Option<&serde_json::Value>,
    mode: WriteMode,
    write_mode: Option<WriteStrategy>,
) -> SpoolStart<P> {
    match resume.and_then(|r| serde_json::from_value::<P>(r.clone()).ok()) {
        Some(p) => SpoolStart::Resumed(p),
        None => SpoolStart::Fresh {
            append: match write_mode {
                Some(WriteStrategy::Append) => true,
                Some(_) => false,
                None => mode == WriteMode::Append,
            },
        },
    }
}

/// Removes the spools of the closed streams that completed, as the state
/// committed after them says.
pub fn remove_completed(closed: &mut Vec<(String, PathBuf)>, state: &State) {
    for (name, path) in std::mem::take(closed) {
        if super::completed(state, &name) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Saves the state file of a file destination, unless the commit is a
/// preview's (which never changes the saved state).
pub fn save_state(file: Option<&StateFile>, state: &State, durable: bool) -> Result<()> {
    match file {
        Some(sf) if !super::is_preview_commit(state, durable) => sf.save(state, durable),
        _ => Ok(()),
    }
}

/// `DIR/.<stream>.<ext>`: a hidden file beside the stream's final file.
pub fn hidden(dir: &Path, stream: &str, ext: &str) -> PathBuf {
    dir.join(format!(".{stream}.{ext}"))
}
