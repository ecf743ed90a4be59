//! Run state: the incremental cursor of each stream and, while a run is
//! unfinished, the page position of each open partition. Versioned JSON.
//!
//! ```json
//! {
//!   "version": 1,
//!   "streams": {
//!     "posts": { "cursor": "2024-03-01T00:00:00Z", "cursor_keys": ["pk:[17]"] },
//!     "comments": {
//!       "in_progress": true,
//!       "lower_bound": "2024-03-01T00:00:00Z",
//!       "pending_cursor": "2024-03-02T10:00:00Z",
//!       "pending_keys": ["pk:[40]"],
//!       "partitions": { "": { "position": { "offset": 400 }, "pages": 20, "records": 400 } },
//!       "done": ["", "id=1", "id=2"],
//!       "destination": { "bytes": 123456 }
//!     }
//!   }
//! }
//! ```
//!
//! Checkpoints follow each page's write, so delivery is at-least-once; file
//! destinations also record their byte length and cut back to it on resume,
//! and databases commit state in the records' transaction, so a rerun after
//! a crash neither loses nor duplicates records. A finished partition is
//! recorded in `done` (`""` for a stream's only partition) in the commit of
//! its last page, so a crash before the stream completes never fetches it
//! again.
//!
//! `cursor_keys` are the keys (primary key values, else a content hash) of
//! the records whose cursor equals `cursor`: an API whose filter is
//! inclusive sends them again, and they are not written twice.
//!
//! An incremental stream with partitions (`parent` or `partitions`) keeps a
//! cursor per partition, `partition_cursors: {"repository=acme/web":
//! {"cursor": "…", "keys": […]}}`, advanced in the commit of the
//! partition's last page: a quiet repository is never read from a busier
//! one's cursor. A new partition starts at `start_value`. In-flight
//! partitions keep their bound and progress in `partitions` (`lower_bound`,
//! `pending`).
//!
//! No secret is ever saved: a secret inside a saved position (a next-page
//! URL that echoes a token) is sealed as a marker (`~secret~api_key~`) and
//! put back from config, or from the current access token, when the request
//! is sent.
//!
//! Bound: `partitions` holds only partitions in flight (at most the
//! concurrency per stream). `done` holds one short key per finished child
//! partition of an unfinished run, and is cleared when the stream completes:
//! 10,000 parents cost about 100 KB of state, once, during that run.
//! `partition_cursors` hold one entry per partition ever read (about 100
//! bytes each), and stay.

use crate::error::{EngineError, Result};
use crate::incremental::Boundary;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the state format.
pub const STATE_VERSION: u32 = 1;

/// What to do about a state that cannot be used.
pub const RESET_HINT: &str = "nothing was written; clear it with `connector-run state reset CONNECTOR [STREAM]` (the next sync starts over)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            streams: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Incremental cursor: the largest value seen by the last completed sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Value>,
    /// Keys of the records whose cursor equals `cursor` (written already).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub cursor_keys: BTreeSet<String>,
    /// A run of this stream started and has not completed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_progress: bool,
    /// The lower bound the unfinished run uses (kept so a resume uses the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<Value>,
    /// Largest cursor seen by the unfinished run so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_cursor: Option<Value>,
    /// Keys of the records whose cursor equals `pending_cursor`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pending_keys: BTreeSet<String>,
    /// Open partitions of the unfinished run, by partition key (`""` for a root stream).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, PartitionState>,
    /// Finished partitions of the unfinished run (`""` for a root stream).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub done: BTreeSet<String>,
    /// Each partition's cursor, for a stream whose partitions keep their own
    /// (an incremental stream with `parent` or `partitions`), by partition
    /// key: the largest cursor the partition has written and the keys at it.
    /// `cursor` is then the largest of them, for display.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_cursors: BTreeMap<String, Boundary>,
    /// Values kept from the last response of the last completed run
    /// (`response_state`), by name: `{{ state.<name> }}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
    /// Values kept from the responses of the unfinished run so far.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_values: BTreeMap<String, Value>,
    /// The end of the windowed range the unfinished run covers (kept so a
    /// resume makes the same windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<Value>,
    /// Destination position that matches this state (e.g. a file's length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The paginator's position: the next page to fetch.
    pub position: Value,
    /// Pages written so far.
    pub pages: u64,
    /// Records written so far.
    pub records: u64,
    /// The lower bound this partition sends (per-partition cursors), kept so
    /// a resume sends the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<Value>,
    /// The largest cursor this partition has written so far, and the keys at
    /// it (per-partition cursors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Boundary>,
}

impl State {
    pub fn parse(text: &str, origin: &str) -> Result<State> {
        let state: State = serde_json::from_str(text).map_err(|e| {
            EngineError::State(format!("state {origin} is not valid: {e}; {RESET_HINT}"))
        })?;
        if state.version != STATE_VERSION {
            return Err(EngineError::State(format!(
                "state {origin} has version {}; this connector-run reads version {STATE_VERSION}; {RESET_HINT}",
                state.version
            )));
        }
        Ok(state)
    }

    pub fn stream(&mut self, name: &str) -> &mut StreamState {
        self.streams.entry(name.to_string()).or_default()
    }
}

/// A state file, written atomically: temp file, fsync, rename.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile { path: path.into() }
    }

    pub fn load(&self) -> Result<Option<State>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => State::parse(&text, &self.path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::Plan(format!(
                "cannot read state {}: {e}",
                self.path.display()
            ))),
        }
    }

    pub fn save(&self, state: &State, durable: bool) -> Result<()> {
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(state).map_err(std::io::Error::from)?,
            durable,
        )
    }

    /// The state in `file`, if there is a file and it holds one.
    pub fn load_optional(file: Option<&StateFile>) -> Result<Option<State>> {
        file.map(StateFile::load).transpose().map(Option::flatten)
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path` via a temp file and a rename, so readers see the
/// old file or the new one. `durable` adds an fsync before the rename.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
