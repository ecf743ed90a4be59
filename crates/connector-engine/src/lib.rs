//! connector-engine: runs a connector spec.
//!
//! A [`Spec`](connector_spec::Spec) is compiled once into a [`Plan`]; [`sync`]
//! then pages through every selected stream, within the rate limit, retrying
//! what can be retried, and writes each page to a [`Destination`] as it
//! arrives. Only this crate does network IO.
//!
//! ```no_run
//! # async fn demo() -> Result<(), connector_engine::EngineError> {
//! use connector_engine::{ConfigSources, DestinationUri, Plan, SyncOptions, sync};
//! let yaml = std::fs::read_to_string("connectors/jsonplaceholder.yaml")?;
//! let spec = connector_spec::parse(&yaml, "jsonplaceholder.yaml").expect("valid spec");
//! let plan = Plan::compile(&spec, &ConfigSources::default(), None)?;
//! let dest = DestinationUri::parse("sqlite:out/example.db")?.open(&["posts".into()], None)?;
//! let report = sync(plan, dest, SyncOptions { streams: vec!["posts".into()], ..Default::default() }).await?;
//! println!("{} records", report.streams[0].records);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cancel;
pub mod cassette;
pub mod config;
pub mod destination;
mod error;
pub mod extract;
pub mod http;
pub mod incremental;
pub mod infer;
pub mod learned_rate;
pub mod pagination;
pub mod plan;
pub mod probe;
pub mod rate_limit;
pub mod raw_records;
pub mod reader;
pub mod record_key;
pub mod retry;
mod run;
pub mod runtime;
pub mod secret;
pub mod shape;
pub mod state;
pub mod stats;
pub mod template;

pub use cancel::{Cancel, StopReason};
pub use config::ConfigSources;
pub use destination::{Destination, DestinationUri, WriteMode};
pub use error::{EngineError, Result};
pub use plan::Plan;
pub use run::{SyncOptions, SyncReport, needed_streams, sync};
pub use secret::Redactor;
pub use state::{State, StateFile};
pub use stats::StreamSummary;
