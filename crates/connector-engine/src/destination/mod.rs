//! Destinations: where records land. A [`Destination`] receives each page's
//! records as one batch, and commits them together with the run's state:
//! file destinations record their byte length in a state file written
//! atomically, databases commit state in the records' transaction.

mod jsonl;
mod stdout;

pub use jsonl::JsonlDestination;
pub use stdout::StdoutDestination;

use crate::error::{EngineError, Result};
use crate::state::{State, StateFile};
use serde_json::Value;
use std::path::PathBuf;

/// How a stream's earlier data is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Full refresh: earlier data of the stream is replaced.
    Replace,
    /// Incremental or resumed: records are added to what is there.
    Append,
}

/// A place records are written to.
pub trait Destination: Send {
    /// The state saved with this destination by an earlier run, if any.
    fn load_state(&mut self) -> Result<Option<State>>;
    /// Called once per stream before its first batch. `resume` is the
    /// destination position saved in the state of an interrupted run: the
    /// destination cuts back to it, dropping anything written after the
    /// last checkpoint.
    fn open_stream(&mut self, stream: &str, mode: WriteMode, resume: Option<&Value>) -> Result<()>;
    /// Writes one page's records of a stream.
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()>;
    /// Makes everything written so far visible and recoverable together with
    /// `state` (filling in each stream's destination position). `durable`
    /// asks for an fsync as well.
    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()>;
    /// Called once per stream after its last batch.
    fn close_stream(&mut self, stream: &str) -> Result<()>;
    /// A short description for the summary, e.g. `jsonl:data/x/`.
    fn describe(&self) -> String;
}

/// A parsed `--dest` URI.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationUri {
    Jsonl(PathBuf),
    Stdout,
}

/// File name of the state kept beside file destinations.
pub const STATE_FILE_NAME: &str = "_state.json";

impl DestinationUri {
    /// Parses `jsonl:DIR` or `-`.
    pub fn parse(s: &str) -> Result<DestinationUri> {
        if s == "-" {
            return Ok(DestinationUri::Stdout);
        }
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            EngineError::Destination(format!(
                "`{s}` is not a destination URI; expected `jsonl:DIR` or `-` (stdout)"
            ))
        })?;
        match scheme {
            "jsonl" if !rest.is_empty() => Ok(DestinationUri::Jsonl(PathBuf::from(rest))),
            "jsonl" => Err(EngineError::Destination(
                "`jsonl:` needs a folder, e.g. `jsonl:./out`".into(),
            )),
            other => {
                let known = ["jsonl"];
                let hint = connector_spec::did_you_mean(other, known)
                    .map(|k| format!(" (did you mean `{k}:`?)"))
                    .unwrap_or_default();
                Err(EngineError::Destination(format!(
                    "unknown destination scheme `{other}:`{hint}; expected `jsonl:DIR` or `-`"
                )))
            }
        }
    }

    /// Where the state lives by default: beside the files; none for stdout.
    pub fn default_state_file(&self) -> Option<PathBuf> {
        match self {
            DestinationUri::Jsonl(dir) => Some(dir.join(STATE_FILE_NAME)),
            DestinationUri::Stdout => None,
        }
    }

    /// Opens the destination for a run over `streams`. `state_file` overrides
    /// where the state is kept (`--state`).
    pub fn open(
        &self,
        streams: &[String],
        state_file: Option<PathBuf>,
    ) -> Result<Box<dyn Destination>> {
        let state = state_file
            .or_else(|| self.default_state_file())
            .map(StateFile::new);
        Ok(match self {
            DestinationUri::Jsonl(dir) => Box::new(JsonlDestination::create(dir, state)?),
            DestinationUri::Stdout => Box::new(StdoutDestination::new(streams.len() > 1, state)),
        })
    }
}
