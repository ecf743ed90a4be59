//! Destinations: where records land. A [`Destination`] receives each page's
//! records as one batch, in order per partition.

mod jsonl;
mod stdout;

pub use jsonl::JsonlDestination;
pub use stdout::StdoutDestination;

use crate::error::{EngineError, Result};
use serde_json::Value;
use std::path::PathBuf;

/// A place records are written to.
pub trait Destination: Send {
    /// Called once per stream before its first batch.
    fn open_stream(&mut self, stream: &str) -> Result<()>;
    /// Writes one page's records of a stream.
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> Result<()>;
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

    /// Opens the destination for a run over `streams`.
    pub fn open(&self, streams: &[String]) -> Result<Box<dyn Destination>> {
        Ok(match self {
            DestinationUri::Jsonl(dir) => Box::new(JsonlDestination::create(dir)?),
            DestinationUri::Stdout => Box::new(StdoutDestination::new(streams.len() > 1)),
        })
    }
}
