//! One run per destination at a time. Two syncs writing the same files or
//! tables would interleave their bytes and their state; the second run
//! fails at once instead. File destinations and SQLite take an advisory
//! lock on a file beside the destination (`DIR/.connector-run.lock`,
//! `PATH.lock`, and `FILE.lock` for a `--state FILE`), which the operating
//! system releases when the process ends, however it ends; Postgres takes
//! an advisory lock of its own (see `postgres.rs`). The lock file is
//! removed when the run ends normally; one left by a killed run is stale
//! and simply taken over.

use crate::error::{EngineError, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An advisory lock held for as long as the value lives.
#[derive(Debug)]
pub struct DestinationLock {
    _file: File,
    pub path: PathBuf,
}

impl DestinationLock {
    /// Takes the lock at `path`, writing this process's id into it; `what`
    /// names the destination in the error when another run holds it.
    pub fn acquire(path: &Path, what: &str) -> Result<DestinationLock> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Destination(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let cannot = |e: std::io::Error| {
            EngineError::Destination(format!("cannot lock {}: {e}", path.display()))
        };
        let mut file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(cannot)?;
            match file.try_lock() {
                // A holder that was just finishing may have removed the
                // file after we opened it: then lock the new one.
                Ok(()) if same_file(&file, path) => break file,
                Ok(()) => continue,
                Err(e) => break Self::refused(file, e, path, what)?,
            }
        };
        file.set_len(0).map_err(cannot)?;
        file.seek(SeekFrom::Start(0)).map_err(cannot)?;
        write!(file, "{}", std::process::id()).map_err(cannot)?;
        file.flush().map_err(cannot)?;
        Ok(DestinationLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The error for a lock another run holds.
    fn refused(mut file: File, e: std::fs::TryLockError, path: &Path, what: &str) -> Result<File> {
        match e {
            std::fs::TryLockError::WouldBlock => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = holder.trim();
                let by = if pid.is_empty() {
                    "another run".to_string()
                } else {
                    format!("another run (pid {pid})")
                };
                Err(EngineError::Locked(format!(
                    "{what} is being synced by {by}; wait for it to finish (lock: {})",
                    path.display()
                )))
            }
            std::fs::TryLockError::Error(e) => Err(EngineError::Destination(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

impl Drop for DestinationLock {
    fn drop(&mut self) {
        // Removed while still held, so no other run locks a file that is
        // about to vanish (it would check `same_file` and retry anyway).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The lock file of a destination folder.
pub fn dir_lock_path(dir: &Path) -> PathBuf {
    dir.join(".connector-run.lock")
}

/// The lock file beside a file (`x.db` → `x.db.lock`).
pub fn file_lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("cr-lock-{}", std::process::id()));
        let path = dir_lock_path(&dir);
        let first = DestinationLock::acquire(&path, "jsonl:x").unwrap();
        let err = DestinationLock::acquire(&path, "jsonl:x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("jsonl:x is being synced by another run (pid ")
                && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        assert!(matches!(err, EngineError::Locked(_)));
        drop(first);
        DestinationLock::acquire(&path, "jsonl:x").unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
