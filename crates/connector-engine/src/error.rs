//! Engine errors. Every message is redacted before it is built: secrets
//! never reach an error.

use thiserror::Error;

/// Something that stopped a run or a stream.
#[derive(Debug, Error)]
pub enum EngineError {
    /// Config values are missing or of the wrong type. Nothing was fetched.
    #[error("config: {0}")]
    Config(String),
    /// A template failed to compile or render.
    #[error("template `{template}`: {message}")]
    Template { template: String, message: String },
    /// The destination URI is bad or the destination cannot be opened.
    #[error("destination: {0}")]
    Destination(String),
    /// A batch the destination took earlier failed where it was written
    /// (Postgres writes on a thread of its own). `batch` is which of the
    /// stream's writes it was, counting from 1, so the run names its page.
    #[error("destination: {message}")]
    EarlierBatch { batch: u64, message: String },
    /// A stream failed; names the stream, the page and the (redacted) URL.
    #[error("stream `{stream}`, page {page}, {url}: {message}")]
    Stream {
        stream: String,
        page: u64,
        url: String,
        message: String,
    },
    /// The saved state cannot be used (bad values, wrong version). Nothing
    /// was written.
    #[error("{0}")]
    State(String),
    /// Another run holds the destination.
    #[error("{0}")]
    Locked(String),
    /// An I/O error writing output or state.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Authentication failed before any stream started (the token request
    /// that names the API's base URL).
    #[error("auth: {0}")]
    Auth(String),
    /// Anything else about the plan.
    #[error("{0}")]
    Plan(String),
}

impl EngineError {
    /// True when the error is a write to a pipe whose reader went away.
    pub fn is_closed_output(&self) -> bool {
        match self {
            EngineError::Io(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
            _ => false,
        }
    }

    /// True for errors found before any request (usage, spec, config, destination).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EngineError::Config(_)
                | EngineError::Template { .. }
                | EngineError::Destination(_)
                | EngineError::Plan(_)
                | EngineError::State(_)
                | EngineError::Locked(_)
        )
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
