//! Destinations: where records land. A [`Destination`] receives each page's
//! records as one batch, and commits them together with the run's state:
//! file destinations record their byte length in a state file written
//! atomically, databases commit the state in the records' transaction.
//!
//! | URI | destination |
//! |---|---|
//! | `sqlite:PATH` | [`SqliteDestination`]: one table per stream (the default, `./data/<connector>.db`) |
//! | `postgres://user:pass@host:port/db?schema=NAME` | `PostgresDestination` (feature `postgres`) |
//! | `jsonl:DIR` | [`JsonlDestination`]: `DIR/<stream>.jsonl` |
//! | `csv:DIR` | [`CsvDestination`]: `DIR/<stream>.csv`, nested objects flattened to dotted columns |
//! | `parquet:DIR` | `ParquetDestination` (feature `parquet`): `DIR/<stream>.parquet` |
//! | `singer:-` | [`SingerDestination`]: Singer SCHEMA/RECORD/STATE messages on stdout |
//! | `-` | [`StdoutDestination`]: JSON Lines on stdout |
//!
//! The Airbyte protocol has its own [`AirbyteDestination`], used by
//! `connector-run airbyte … read`.

mod airbyte;
mod csv;
mod jsonl;
pub mod lock;
#[cfg(feature = "parquet")]
mod parquet;
#[cfg(feature = "parquet")]
mod parquet_encoder;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_tls;
mod row_cells;
pub mod schema;
mod singer;
mod spool;
mod sql;
mod sqlite;
mod sqlite_checkpointer;
mod stdout;
pub mod stream_schema;

pub use airbyte::{AirbyteDestination, parse_airbyte_state};
pub use csv::CsvDestination;
pub use jsonl::JsonlDestination;
#[cfg(feature = "parquet")]
pub use parquet::ParquetDestination;
#[cfg(feature = "postgres")]
pub use postgres::PostgresDestination;
pub use singer::{FieldSelection, SingerDestination, parse_singer_state};
pub use sqlite::SqliteDestination;
pub use stdout::StdoutDestination;

use crate::error::{EngineError, Result};
use crate::plan::StreamPlan;
use crate::raw_records::RawRecords;
use crate::secret::MASK;
use crate::state::{State, StateFile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How a run starts a stream: from scratch or continuing (set by the run
/// loop from the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Full refresh: a fresh start of the stream.
    Replace,
    /// Incremental or resumed: continues from what is there.
    Append,
}

/// How records land in a stream's table (`--write-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStrategy {
    /// Insert every record.
    Append,
    /// Write into a staging table and swap it in at the end of the stream:
    /// readers see the old table or the new one, never a mix.
    Replace,
    /// Upsert on the primary key.
    Merge,
}

impl WriteStrategy {
    /// The default: merge where there is a primary key, else append for
    /// incremental streams and replace for full refresh.
    pub fn default_for(info: &StreamInfo) -> WriteStrategy {
        if !info.primary_key.is_empty() {
            WriteStrategy::Merge
        } else if info.incremental {
            WriteStrategy::Append
        } else {
            WriteStrategy::Replace
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WriteStrategy::Append => "append",
            WriteStrategy::Replace => "replace",
            WriteStrategy::Merge => "merge",
        }
    }
}

impl std::str::FromStr for WriteStrategy {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "append" => Ok(WriteStrategy::Append),
            "replace" => Ok(WriteStrategy::Replace),
            "merge" => Ok(WriteStrategy::Merge),
            other => {
                let hint = connector_spec::did_you_mean(other, ["append", "replace", "merge"])
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                Err(EngineError::Destination(format!(
                    "unknown write mode `{other}`{hint}; expected append, replace or merge"
                )))
            }
        }
    }
}

impl std::fmt::Display for WriteStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a destination is told about a stream when it opens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamInfo {
    pub name: String,
    /// Primary key fields (top-level), empty when none.
    pub primary_key: Vec<String>,
    /// The stream is incremental.
    pub incremental: bool,
    /// The incremental cursor field (dotted path), if any.
    pub cursor_field: Option<String>,
    /// The stream's declared JSON Schema, if any. Destinations also look it
    /// up in [`DestinationOptions::schemas`].
    pub json_schema: Option<Value>,
}

impl StreamInfo {
    /// The stream info of a compiled stream (no declared schema).
    pub fn of(sp: &StreamPlan) -> StreamInfo {
        StreamInfo {
            name: sp.name.clone(),
            primary_key: sp.primary_key.clone(),
            incremental: sp.incremental.is_some(),
            cursor_field: sp.incremental.as_ref().map(|i| i.field.clone()),
            json_schema: None,
        }
    }
}

/// A place records are written to.
pub trait Destination: Send {
    /// The state saved with this destination by an earlier run, if any.
    fn load_state(&mut self) -> Result<Option<State>>;
    /// Called once per stream before its first batch. `resume` is the
    /// destination position saved in the state of an interrupted run: the
    /// destination cuts back to it, dropping anything written after the
    /// last checkpoint.
    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()>;
    /// Checks a saved destination position against what is on disk before
    /// anything is written; a position that does not fit (negative, past the
    /// end of the file, of another shape) is an error, never a guess.
    fn check_resume(&self, _stream: &str, _resume: &Value) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Writes one page's records of a stream.
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()>;
    /// Writes one page's records, handed over: a destination that queues
    /// batches for a thread of its own (Postgres) takes them without a copy.
    fn write_owned(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        self.write_batch(stream, &records)
    }
    /// True when the destination writes records as the JSON text they came
    /// in (overriding [`Destination::write_raw`]). Then a sync hands it
    /// unparsed records; otherwise records are parsed into values while the
    /// page downloads, on the request's task, not on the writer's.
    fn keeps_raw_json(&self) -> bool {
        false
    }
    /// True when records need not be JSON objects (JSON Lines); tables and
    /// the protocols need objects.
    fn takes_any_json(&self) -> bool {
        false
    }
    /// Writes one page's records still as raw JSON text. Destinations that
    /// keep JSON as is override this (and [`Destination::keeps_raw_json`]).
    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        let values = records
            .to_values()
            .map_err(|e| EngineError::Destination(format!("stream `{stream}`: {e}")))?;
        self.write_batch(stream, &values)
    }
    /// Makes everything written so far visible and recoverable together with
    /// `state` (filling in each stream's destination position). `durable`
    /// asks for an fsync as well. An empty, non-durable state is a preview's:
    /// records are committed, the saved state is left alone.
    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()>;
    /// Called once per stream after its last batch. Whether the stream
    /// completed is known at the next commit: its state is no longer
    /// `in_progress` (a failed stream keeps what it wrote, and its resume
    /// position).
    fn close_stream(&mut self, stream: &str) -> Result<()>;
    /// A short description for the summary, e.g. `jsonl:data/x/`.
    fn describe(&self) -> String;
}

/// True for the state a preview commits (`--limit`, `--max-pages`): it must
/// not overwrite the saved state.
pub(crate) fn is_preview_commit(state: &State, durable: bool) -> bool {
    state.streams.is_empty() && !durable
}

/// True when the stream completed, judged by the state committed after
/// `close_stream` (previews, which keep no state, count as complete).
pub(crate) fn completed(state: &State, stream: &str) -> bool {
    state.streams.get(stream).is_none_or(|s| !s.in_progress)
}

/// How to open a destination.
#[derive(Debug, Clone, Default)]
pub struct DestinationOptions {
    /// The connector's name: the key of its state and stream metadata in a
    /// database shared by several connectors.
    pub connector: String,
    /// The streams that will be written.
    pub streams: Vec<String>,
    /// `--state FILE` (file and stdout destinations only).
    pub state_file: Option<PathBuf>,
    /// `--write-mode`, overriding the per-stream default.
    pub write_mode: Option<WriteStrategy>,
    /// Declared JSON Schemas by stream name (see
    /// [`schema::load_declared_schemas`]).
    pub schemas: BTreeMap<String, Value>,
}

/// A Postgres connection URI. Its password never appears in `Debug`,
/// [`PostgresUri::shown`] or errors.
#[derive(Clone, PartialEq)]
pub struct PostgresUri {
    /// The URI without `schema=` (what the driver parses). Holds the password.
    pub(crate) conn: String,
    /// The target schema (`?schema=NAME`, default `public`).
    pub schema: String,
    shown: String,
    pub(crate) password: Option<String>,
    /// `sslmode=` (libpq's names; default `prefer`), taken out of `conn`.
    pub(crate) sslmode: Option<String>,
    /// `sslrootcert=FILE` or `system`, taken out of `conn`.
    pub(crate) sslrootcert: Option<String>,
}

impl PostgresUri {
    /// The URI with its password masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn parse(s: &str) -> Result<PostgresUri> {
        let bad = |why: &str| {
            EngineError::Destination(format!(
                "`{}` is not a Postgres URI: {why}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME",
                mask_password(s)
            ))
        };
        let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let mut schema = "public".to_string();
        let (mut sslmode, mut sslrootcert) = (None, None);
        let mut rest = Vec::new();
        for (k, v) in url.query_pairs() {
            match &*k {
                "schema" => schema = v.into_owned(),
                "sslmode" => {
                    const MODES: [&str; 6] = [
                        "disable",
                        "allow",
                        "prefer",
                        "require",
                        "verify-ca",
                        "verify-full",
                    ];
                    if !MODES.contains(&&*v) {
                        return Err(bad(&format!(
                            "sslmode={v} is not one of {}",
                            MODES.join(", ")
                        )));
                    }
                    sslmode = Some(v.into_owned());
                }
                "sslrootcert" => sslrootcert = Some(v.into_owned()),
                "sslcert"
                | "sslkey"
                | "sslpassword"
                | "sslcrl"
                | "sslcrldir"
                | "sslsni"
                | "sslcompression"
                | "ssl_min_protocol_version"
                | "ssl_max_protocol_version" => {
                    return Err(bad(&format!(
                        "`{k}` is not supported (TLS takes sslmode and sslrootcert)"
                    )));
                }
                _ => rest.push((k.into_owned(), v.into_owned())),
            }
        }
        if schema.is_empty() {
            return Err(bad("`schema=` is empty"));
        }
        let password = url
            .password()
            .map(|p| {
                percent_decode(p)
                    .map_err(|_| bad("the password is not valid percent-encoded UTF-8"))
            })
            .transpose()?;
        let mut conn = url.clone();
        conn.set_query(None);
        if !rest.is_empty() {
            conn.query_pairs_mut().extend_pairs(rest);
        }
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some(MASK));
        }
        Ok(PostgresUri {
            conn: conn.to_string(),
            schema,
            shown: shown.to_string().replace("%2A%2A%2A", MASK),
            password,
            sslmode,
            sslrootcert,
        })
    }
}

impl std::fmt::Debug for PostgresUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUri({})", self.shown)
    }
}

fn percent_decode(s: &str) -> std::result::Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

/// Masks the password of anything that looks like `scheme://user:pass@host`.
pub fn mask_password(s: &str) -> String {
    let Some(start) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    let rest = &s[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    match (auth.rfind('@'), auth.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}:{MASK}{}",
                &s[..start],
                &auth[..colon],
                &s[start + at..]
            )
        }
        _ => s.to_string(),
    }
}

/// A parsed `--dest` URI.
#[derive(Debug, Clone, PartialEq)]
pub enum DestinationUri {
    Sqlite(PathBuf),
    Jsonl(PathBuf),
    Csv(PathBuf),
    Parquet(PathBuf),
    Postgres(PostgresUri),
    Singer,
    Stdout,
}

/// File name of the state kept beside file destinations.
pub const STATE_FILE_NAME: &str = "_state.json";

const EXPECTED: &str = "expected sqlite:PATH, postgres://USER:PASSWORD@HOST:PORT/DB?schema=NAME, jsonl:DIR, csv:DIR, parquet:DIR, singer:- or - (stdout)";
const SCHEMES: [&str; 7] = [
    "sqlite",
    "postgres",
    "postgresql",
    "jsonl",
    "csv",
    "parquet",
    "singer",
];

impl DestinationUri {
    /// The default destination of a connector: `sqlite:./data/<connector>.db`.
    pub fn default_text(connector: &str) -> String {
        format!("sqlite:./data/{connector}.db")
    }

    /// Parses a `--dest` URI (see the module docs). Errors name what was
    /// expected, suggest a scheme for a typo, and never show a password.
    pub fn parse(s: &str) -> Result<DestinationUri> {
        if s == "-" {
            return Ok(DestinationUri::Stdout);
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Self::postgres(s);
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            let hint = if SCHEMES.contains(&lower.as_str()) {
                format!(" (did you mean `{lower}:…`?)")
            } else if lower.ends_with(".db") || lower.ends_with(".sqlite") {
                format!(" (did you mean `sqlite:{s}`?)")
            } else {
                format!(" (did you mean `jsonl:{s}`?)")
            };
            return Err(EngineError::Destination(format!(
                "`{s}` is not a destination URI{hint}; {EXPECTED}"
            )));
        };
        let need = |what: &str, example: &str| {
            EngineError::Destination(format!("`{scheme}:` needs {what}, e.g. `{example}`"))
        };
        let dir = |example: &str| {
            if rest.is_empty() {
                Err(need("a folder", example))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                // `sqlite://rel/x.db` and `sqlite:///abs/x.db` are accepted too.
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(need("a database file", "sqlite:./data/x.db"));
                }
                Ok(DestinationUri::Sqlite(PathBuf::from(path)))
            }
            "jsonl" => dir("jsonl:./out").map(DestinationUri::Jsonl),
            "csv" => dir("csv:./out").map(DestinationUri::Csv),
            "parquet" => {
                if !cfg!(feature = "parquet") {
                    return Err(EngineError::Destination(
                        "`parquet:` destinations are not available: connector-run was built without the `parquet` feature (build with `--features parquet`)".into(),
                    ));
                }
                dir("parquet:./out").map(DestinationUri::Parquet)
            }
            "postgres" | "postgresql" => Err(need(
                "a URI",
                "postgres://user:password@127.0.0.1:5432/db?schema=public",
            )),
            "singer" if rest == "-" => Ok(DestinationUri::Singer),
            "singer" => Err(EngineError::Destination(format!(
                "`singer:` writes Singer messages to stdout only: use `singer:-`, not `{s}`"
            ))),
            other => {
                let hint = connector_spec::did_you_mean(other, SCHEMES)
                    .map(|k| format!(" (did you mean `{k}:`?)"))
                    .unwrap_or_default();
                Err(EngineError::Destination(format!(
                    "unknown destination scheme `{}:`{hint}; {EXPECTED}",
                    mask_password(other)
                )))
            }
        }
    }

    fn postgres(s: &str) -> Result<DestinationUri> {
        if !cfg!(feature = "postgres") {
            return Err(EngineError::Destination(
                "`postgres://` destinations are not available: connector-run was built without the `postgres` feature (build with `--features postgres`)".into(),
            ));
        }
        PostgresUri::parse(s).map(DestinationUri::Postgres)
    }

    /// The URI for humans (a Postgres password masked).
    pub fn shown(&self) -> String {
        match self {
            DestinationUri::Sqlite(p) => format!("sqlite:{}", p.display()),
            DestinationUri::Jsonl(p) => format!("jsonl:{}", p.display()),
            DestinationUri::Csv(p) => format!("csv:{}", p.display()),
            DestinationUri::Parquet(p) => format!("parquet:{}", p.display()),
            DestinationUri::Postgres(u) => u.shown().to_string(),
            DestinationUri::Singer => "singer:-".into(),
            DestinationUri::Stdout => "-".into(),
        }
    }

    /// True for destinations that keep the state themselves, in the same
    /// transaction as the records.
    pub fn is_database(&self) -> bool {
        matches!(
            self,
            DestinationUri::Sqlite(_) | DestinationUri::Postgres(_)
        )
    }

    /// True when the destination keeps state without `--state`.
    pub fn keeps_state(&self) -> bool {
        !matches!(self, DestinationUri::Stdout | DestinationUri::Singer)
    }

    /// Where the state lives by default: beside the files, inside a SQLite
    /// database file (its `_connector_state` table); none for Postgres (a
    /// table too, but no file), stdout and Singer.
    pub fn default_state_file(&self) -> Option<PathBuf> {
        match self {
            DestinationUri::Jsonl(dir)
            | DestinationUri::Csv(dir)
            | DestinationUri::Parquet(dir) => Some(dir.join(STATE_FILE_NAME)),
            DestinationUri::Sqlite(path) => Some(path.clone()),
            DestinationUri::Postgres(_) | DestinationUri::Stdout | DestinationUri::Singer => None,
        }
    }

    /// Opens the destination for a run over `streams`, with defaults for
    /// everything else (see [`DestinationUri::open_with`]).
    pub fn open(
        &self,
        streams: &[String],
        state_file: Option<PathBuf>,
    ) -> Result<Box<dyn Destination>> {
        self.open_with(&DestinationOptions {
            streams: streams.to_vec(),
            state_file,
            ..Default::default()
        })
    }

    /// The advisory locks a run of this destination holds: the folder or
    /// database file, and a `--state FILE`. Postgres locks inside the
    /// database instead.
    fn lock_paths(&self, state_file: Option<&std::path::Path>) -> Vec<PathBuf> {
        let mut paths = match self {
            DestinationUri::Jsonl(dir)
            | DestinationUri::Csv(dir)
            | DestinationUri::Parquet(dir) => {
                vec![lock::dir_lock_path(dir)]
            }
            DestinationUri::Sqlite(path) => vec![lock::file_lock_path(path)],
            DestinationUri::Postgres(_) | DestinationUri::Singer | DestinationUri::Stdout => {
                Vec::new()
            }
        };
        // Singer's `--state` is only read.
        if let (Some(f), false) = (state_file, matches!(self, DestinationUri::Singer)) {
            paths.push(lock::file_lock_path(f));
        }
        paths
    }

    /// Opens the destination. Databases connect here, so a bad database is
    /// reported before any request. Fails at once with
    /// [`EngineError::Locked`] when another run holds the destination.
    pub fn open_with(&self, opts: &DestinationOptions) -> Result<Box<dyn Destination>> {
        let locks = self
            .lock_paths(opts.state_file.as_deref())
            .iter()
            .map(|p| lock::DestinationLock::acquire(p, &self.shown()))
            .collect::<Result<Vec<_>>>()?;
        let inner = self.open_unlocked(opts)?;
        Ok(if locks.is_empty() {
            inner
        } else {
            Box::new(Locked {
                inner,
                _locks: locks,
            })
        })
    }

    fn open_unlocked(&self, opts: &DestinationOptions) -> Result<Box<dyn Destination>> {
        if self.is_database() && opts.state_file.is_some() {
            return Err(EngineError::Destination(format!(
                "{} keeps the state in its `_connector_state` table, in the same transaction as the records; --state applies to file and stdout destinations",
                self.shown()
            )));
        }
        if !self.is_database() && opts.write_mode == Some(WriteStrategy::Merge) {
            return Err(EngineError::Destination(format!(
                "--write-mode merge needs a database destination (sqlite: or postgres://), not {}",
                self.shown()
            )));
        }
        let state = opts
            .state_file
            .clone()
            .or_else(|| match self {
                DestinationUri::Sqlite(_) => None,
                _ => self.default_state_file(),
            })
            .map(StateFile::new);
        Ok(match self {
            DestinationUri::Sqlite(path) => Box::new(SqliteDestination::open(path, opts)?),
            DestinationUri::Jsonl(dir) => Box::new(JsonlDestination::create(dir, state)?),
            DestinationUri::Csv(dir) => Box::new(CsvDestination::create(dir, state, opts)?),
            #[cfg(feature = "parquet")]
            DestinationUri::Parquet(dir) => Box::new(ParquetDestination::create(dir, state, opts)?),
            #[cfg(not(feature = "parquet"))]
            DestinationUri::Parquet(_) => {
                unreachable!("parse refuses parquet: without the feature")
            }
            #[cfg(feature = "postgres")]
            DestinationUri::Postgres(uri) => Box::new(PostgresDestination::connect(uri, opts)?),
            #[cfg(not(feature = "postgres"))]
            DestinationUri::Postgres(_) => {
                unreachable!("parse refuses postgres:// without the feature")
            }
            DestinationUri::Singer => Box::new(SingerDestination::stdout(
                opts.state_file.clone(),
                opts.schemas.clone(),
            )),
            DestinationUri::Stdout => {
                Box::new(StdoutDestination::new(opts.streams.len() > 1, state))
            }
        })
    }
}

/// A destination with the advisory locks of its run, released when it drops.
struct Locked {
    inner: Box<dyn Destination>,
    _locks: Vec<lock::DestinationLock>,
}

impl Destination for Locked {
    fn load_state(&mut self) -> Result<Option<State>> {
        self.inner.load_state()
    }
    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        self.inner.open_stream(stream, mode, resume)
    }
    fn check_resume(&self, stream: &str, resume: &Value) -> std::result::Result<(), String> {
        self.inner.check_resume(stream, resume)
    }
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        self.inner.write_batch(stream, records)
    }
    fn write_owned(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        self.inner.write_owned(stream, records)
    }
    fn keeps_raw_json(&self) -> bool {
        self.inner.keeps_raw_json()
    }
    fn takes_any_json(&self) -> bool {
        self.inner.takes_any_json()
    }
    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        self.inner.write_raw(stream, records)
    }
    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        self.inner.commit(state, durable)
    }
    fn close_stream(&mut self, stream: &str) -> Result<()> {
        self.inner.close_stream(stream)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Checks a saved file length against the file on disk.
pub(crate) fn check_length(
    path: &std::path::Path,
    saved: Option<&Value>,
    what: &str,
) -> std::result::Result<u64, String> {
    let Some(len) = saved.and_then(Value::as_u64) else {
        return Err(format!(
            "the saved {what} of {} is {}, not a byte count",
            path.display(),
            saved
                .map(Value::to_string)
                .unwrap_or_else(|| "missing".into())
        ));
    };
    let on_disk = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if len > on_disk {
        return Err(format!(
            "the saved {what} of {} is {len} bytes, but the file has {on_disk}",
            path.display()
        ));
    }
    Ok(len)
}

/// Reopens a file that an interrupted run was writing, cut back to `len`,
/// its length at the last checkpoint: what came after is dropped, so a
/// resumed run writes nothing twice.
pub(crate) fn reopen_at(path: &std::path::Path, len: u64) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.set_len(len)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        DestinationUri::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            DestinationUri::parse("sqlite:./data/x.db").unwrap(),
            DestinationUri::Sqlite("./data/x.db".into())
        );
        assert_eq!(
            DestinationUri::parse("sqlite:///tmp/x.db").unwrap(),
            DestinationUri::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            DestinationUri::parse("csv:out").unwrap(),
            DestinationUri::Csv("out".into())
        );
        assert_eq!(DestinationUri::parse("-").unwrap(), DestinationUri::Stdout);
        assert_eq!(
            DestinationUri::parse("singer:-").unwrap(),
            DestinationUri::Singer
        );
    }

    #[test]
    fn bad_uris_say_what_was_meant() {
        assert!(
            err("sqlit:x.db").contains("did you mean `sqlite:`"),
            "{}",
            err("sqlit:x.db")
        );
        assert!(err("jsnl:out").contains("did you mean `jsonl:`"));
        assert!(err("out.db").contains("did you mean `sqlite:out.db`"));
        assert!(err("csv:").contains("needs a folder"));
        assert!(err("singer:out").contains("singer:-"));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_password_never_shown() {
        let u = DestinationUri::parse(
            "postgres://me:hunter22@127.0.0.1:5433/db?schema=raw&sslmode=disable",
        )
        .unwrap();
        let DestinationUri::Postgres(p) = &u else {
            panic!()
        };
        assert_eq!(p.schema, "raw");
        assert_eq!(p.password.as_deref(), Some("hunter22"));
        assert!(!format!("{u:?}").contains("hunter22"));
        assert!(!u.shown().contains("hunter22"), "{}", u.shown());
        assert!(!p.conn.contains("sslmode=") && !p.conn.contains("schema="));
        assert_eq!(p.sslmode.as_deref(), Some("disable"));
        let e = err("postgres://me:hunter22@/db");
        assert!(!e.contains("hunter22"), "{e}");
        let e = err("postgres://me:hunter22@h/db?sslmode=verify_full");
        assert!(
            e.contains("sslmode=verify_full is not one of disable, allow"),
            "{e}"
        );
        assert!(!e.contains("hunter22"), "{e}");
        let e = err("postgres://me:hunter22@h/db?sslcert=client.crt");
        assert!(e.contains("`sslcert` is not supported"), "{e}");
    }

    #[test]
    fn masks_uri_passwords() {
        assert_eq!(
            mask_password("postgres://u:p@h:1/d"),
            format!("postgres://u:{MASK}@h:1/d")
        );
        assert_eq!(mask_password("sqlite:x"), "sqlite:x");
    }
}
