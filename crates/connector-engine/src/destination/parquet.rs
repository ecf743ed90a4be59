//! `parquet:DIR`: one `DIR/<stream>.parquet` per stream, typed Arrow columns
//! (`Int64`, `Float64`, `Boolean`, `Utf8`; `Timestamp(µs, UTC)` and `Date32`
//! where the declared schema says `format: date-time` / `date`; nested
//! objects and arrays are JSON text with Parquet's `JSON` logical type, the
//! `arrow.json` extension type), then `_synced_at` (`Timestamp(µs, UTC)`)
//! and `_run_id`, as in the tables. Each field's metadata holds its kind
//! (`connector_run.kind`). Snappy-compressed, in row groups of 65,536 rows.
//! DuckDB, pandas/pyarrow and Spark read it.
//!
//! A Parquet file's schema is fixed when it is written, and a field may first
//! appear, or widen, in any record. So records go to a spill file
//! (`DIR/.<stream>.parquet.spill`, JSON Lines) as they arrive, while the
//! column types are worked out over every record (declared schema first,
//! then widening `integer` → `real` → `text`, as for the databases: no value
//! is dropped); closing the stream writes the Parquet file from the spill,
//! one row group at a time (memory: one row group), into a temp file renamed
//! into place. The spill's length and the columns are checkpointed in the
//! state file with every commit, so a resumed run cuts the spill back and
//! goes on; the spill is removed once the stream completes.
//!
//! Incremental runs (and `--write-mode append`) keep the existing file's
//! rows, with their `_synced_at` and `_run_id`: they are read into the new
//! spill first. A spill line is `@SYNCED_AT RUN_ID<TAB>RECORD` (a line
//! without the `@`, from an older spill, has neither).

use super::parquet_encoder::{RawIngest, RowGroupEncoder};
use super::row_cells::Cell;
use super::schema::{self, Column, ColumnKind, Columns, text_of};
use super::spool::{self, Spool, SpoolStart};
use super::sql::{RESERVED, RUN_ID, SYNCED_AT};
use super::{Destination, DestinationOptions, StreamInfo, WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::raw_records::RawRecords;
use crate::state::{State, StateFile};
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Field metadata key holding a column's kind.
pub const KIND_KEY: &str = "connector_run.kind";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PqPosition {
    spill_bytes: u64,
    rows: u64,
    columns: Vec<Column>,
}

struct PqStream {
    spill_path: PathBuf,
    writer: BufWriter<File>,
    pos: PqPosition,
    columns: Columns,
    /// The file built as records arrive, while its columns hold; only for a
    /// spill this run started empty.
    encoder: Option<RowGroupEncoder>,
    /// This run started the spill empty (no resume, no rows carried over).
    fresh: bool,
    /// Raw records' parsing, typing and file, on a thread of their own.
    ingest: Option<RawIngest>,
    /// Records came as raw text: the columns are fitted off this thread.
    raw_seen: bool,
}

pub struct ParquetDestination {
    dir: PathBuf,
    state: Option<StateFile>,
    write_mode: Option<WriteStrategy>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, PqStream>,
    /// Closed streams and their spills, removed once they completed.
    closed: Vec<(String, PathBuf)>,
    run_id: String,
}

fn err(path: &Path, what: &str) -> impl Fn(&dyn std::fmt::Display) -> EngineError {
    let shown = path.display().to_string();
    let what = what.to_string();
    move |e| EngineError::Destination(format!("cannot {what} {shown}: {e}"))
}

/// Arrow's time zone for instants.
const UTC: &str = "UTC";

fn data_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Integer => DataType::Int64,
        ColumnKind::Real => DataType::Float64,
        ColumnKind::Boolean => DataType::Boolean,
        ColumnKind::Text | ColumnKind::Json => DataType::Utf8,
        ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnKind::Date => DataType::Date32,
    }
}

/// The Arrow schema of the columns, then `_synced_at` and `_run_id`.
pub fn arrow_schema(cols: &[Column]) -> Schema {
    let field = |name: &str, kind: ColumnKind| {
        let f = Field::new(name, data_type(kind), true).with_metadata(HashMap::from([(
            KIND_KEY.to_string(),
            kind.name().to_string(),
        )]));
        if kind == ColumnKind::Json {
            // Parquet's JSON logical type.
            f.with_extension_type(arrow_schema::extension::Json::default())
        } else {
            f
        }
    };
    let mut fields: Vec<Field> = cols.iter().map(|c| field(&c.name, c.kind)).collect();
    fields.push(field(SYNCED_AT, ColumnKind::Timestamp));
    fields.push(field(RUN_ID, ColumnKind::Text));
    Schema::new(fields)
}

/// How every file is written: Snappy, row groups of [`ROW_GROUP_ROWS`].
pub(super) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("connector-run {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Microseconds since the epoch of a timestamp's text.
pub(super) fn micros(s: &str) -> Option<i64> {
    schema::as_timestamp(s).map(|t| t.timestamp_micros())
}

/// Days since the epoch of a date's text.
fn days(s: &str) -> Option<i32> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    schema::as_date(s).and_then(|d| i32::try_from((d - epoch).num_days()).ok())
}

pub(super) enum Builder {
    Int(Int64Builder),
    Real(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Builder {
    pub(super) fn new(kind: ColumnKind) -> Builder {
        match kind {
            ColumnKind::Integer => Builder::Int(Int64Builder::new()),
            ColumnKind::Real => Builder::Real(Float64Builder::new()),
            ColumnKind::Boolean => Builder::Bool(BooleanBuilder::new()),
            ColumnKind::Text | ColumnKind::Json => Builder::Str(StringBuilder::new()),
            ColumnKind::Timestamp => {
                Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone(UTC))
            }
            ColumnKind::Date => Builder::Date(Date32Builder::new()),
        }
    }

    /// Appends a value; the column's kind holds it (the columns were fitted
    /// to every record of the spill).
    pub(super) fn push(&mut self, kind: ColumnKind, v: Option<&Value>) {
        let v = v.filter(|v| !v.is_null());
        match self {
            Builder::Int(b) => b.append_option(v.and_then(Value::as_i64)),
            Builder::Real(b) => b.append_option(v.and_then(Value::as_f64)),
            Builder::Bool(b) => b.append_option(v.and_then(Value::as_bool)),
            Builder::Ts(b) => b.append_option(v.and_then(Value::as_str).and_then(micros)),
            Builder::Date(b) => b.append_option(v.and_then(Value::as_str).and_then(days)),
            Builder::Str(b) => match (kind, v) {
                (_, None) => b.append_null(),
                (ColumnKind::Json, Some(v)) => b.append_value(v.to_string()),
                (_, Some(Value::String(s))) => b.append_value(s),
                (_, Some(v)) => b.append_value(text_of(v)),
            },
        }
    }

    /// Appends a cell of a raw record that fits the column
    /// ([`RowCells::read`]): the same as [`push`](Self::push) with the
    /// cell's value.
    pub(super) fn push_cell(&mut self, kind: ColumnKind, cell: &Cell) {
        match (self, cell) {
            (Builder::Int(b), Cell::Int(i)) => b.append_value(*i),
            (Builder::Real(b), Cell::Real(f)) => b.append_value(*f),
            (Builder::Real(b), Cell::Int(i)) => b.append_value(*i as f64),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Builder::Ts(b), Cell::Str(s)) => b.append_option(micros(s)),
            (Builder::Date(b), Cell::Str(s)) => b.append_option(days(s)),
            (Builder::Str(b), Cell::Null) => b.append_null(),
            (Builder::Str(b), Cell::Str(s)) if kind != ColumnKind::Json => b.append_value(s),
            (Builder::Str(b), c) => b.append_value(c.json_text()),
            // Null, or a value the column does not hold (which a record
            // that fits never has).
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Real(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Ts(b), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
        }
    }

    /// Appends an instant already parsed (`_synced_at`, the same for a
    /// page) to a `timestamp` column, or a text to a `text` one.
    pub(super) fn push_meta(&mut self, at: Option<i64>, text: Option<&str>) {
        match self {
            Builder::Ts(b) => b.append_option(at),
            Builder::Str(b) => b.append_option(text),
            _ => {}
        }
    }

    pub(super) fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Real(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// One value of a column read back, as the record had it (timestamps as
/// RFC 3339 UTC, dates as `YYYY-MM-DD`, JSON parsed); `None` for null.
fn cell(a: &dyn Array, kind: ColumnKind, row: usize) -> Option<Value> {
    use arrow_array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    if a.is_null(row) {
        return None;
    }
    let any = a.as_any();
    Some(match kind {
        ColumnKind::Integer => Value::from(any.downcast_ref::<Int64Array>()?.value(row)),
        ColumnKind::Real => Value::from(any.downcast_ref::<Float64Array>()?.value(row)),
        ColumnKind::Boolean => Value::from(any.downcast_ref::<BooleanArray>()?.value(row)),
        ColumnKind::Timestamp => {
            let us = any.downcast_ref::<TimestampMicrosecondArray>()?.value(row);
            let t = chrono::DateTime::from_timestamp_micros(us)?;
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        ColumnKind::Date => {
            let d = any.downcast_ref::<Date32Array>()?.value(row);
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
            let day = epoch.checked_add_signed(chrono::TimeDelta::days(i64::from(d)))?;
            Value::String(day.format("%Y-%m-%d").to_string())
        }
        ColumnKind::Text | ColumnKind::Json => {
            let s = any.downcast_ref::<StringArray>()?.value(row).to_string();
            if kind == ColumnKind::Json {
                serde_json::from_str(&s).unwrap_or(Value::String(s))
            } else {
                Value::String(s)
            }
        }
    })
}

/// A spill line: `@SYNCED_AT RUN_ID<TAB>RECORD<LF>` (either may be empty).
fn spill_line(
    out: &mut Vec<u8>,
    synced_at: Option<&str>,
    run_id: Option<&str>,
    record: &impl Serialize,
) -> Result<()> {
    spill_prefix(out, synced_at, run_id);
    serde_json::to_writer(&mut *out, record).map_err(std::io::Error::from)?;
    out.push(b'\n');
    Ok(())
}

/// A spill line's `@SYNCED_AT RUN_ID<TAB>`.
fn spill_prefix(out: &mut Vec<u8>, synced_at: Option<&str>, run_id: Option<&str>) {
    out.push(b'@');
    out.extend_from_slice(synced_at.unwrap_or("").as_bytes());
    out.push(b' ');
    out.extend_from_slice(run_id.unwrap_or("").as_bytes());
    out.push(b'\t');
}

/// A spill line's `_synced_at`, `_run_id` and record text.
fn split_spill_line(line: &str) -> (Option<&str>, Option<&str>, &str) {
    let Some(rest) = line.strip_prefix('@') else {
        // An older spill: the record alone.
        return (None, None, line);
    };
    let Some((meta, record)) = rest.split_once('\t') else {
        return (None, None, line);
    };
    let (at, id) = meta.split_once(' ').unwrap_or((meta, ""));
    fn some(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    (some(at), some(id), record)
}

impl ParquetDestination {
    pub fn create(
        dir: &Path,
        state: Option<StateFile>,
        opts: &DestinationOptions,
    ) -> Result<ParquetDestination> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, "create")(&e))?;
        Ok(ParquetDestination {
            dir: dir.to_path_buf(),
            state,
            write_mode: opts.write_mode,
            schemas: opts.schemas.clone(),
            streams: HashMap::new(),
            closed: Vec::new(),
            run_id: schema::new_run_id(),
        })
    }

    fn final_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.parquet"))
    }

    /// Where the file built as records arrive is, until it is complete.
    fn building_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!(".{stream}.parquet.building"))
    }

    fn spill_path(&self, stream: &str) -> PathBuf {
        spool::hidden(&self.dir, stream, "parquet.spill")
    }

    /// Reads the rows of an existing file into the spill, as JSON records
    /// with their `_synced_at` and `_run_id`.
    fn seed_from_existing(path: &Path, spill: &mut BufWriter<File>) -> Result<Option<PqPosition>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(path, "read")(&e)),
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(8192).build())
            .map_err(|e| err(path, "read")(&e))?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        // (index in the file, column); the metadata columns apart.
        let mut cols: Vec<(usize, Column)> = Vec::new();
        let (mut synced_at, mut run_id) = (None, None);
        for (i, f) in schema.fields().iter().enumerate() {
            let json = f.metadata().get(KIND_KEY).map(String::as_str) == Some("json");
            let kind = match f.data_type() {
                DataType::Int64 => ColumnKind::Integer,
                DataType::Float64 => ColumnKind::Real,
                DataType::Boolean => ColumnKind::Boolean,
                DataType::Utf8 if json => ColumnKind::Json,
                DataType::Utf8 => ColumnKind::Text,
                DataType::Timestamp(TimeUnit::Microsecond, _) => ColumnKind::Timestamp,
                DataType::Date32 => ColumnKind::Date,
                other => {
                    return Err(EngineError::Destination(format!(
                        "cannot append to {}: column `{}` is {other}, which connector-run does not write; move the file away or sync with --write-mode replace",
                        path.display(),
                        f.name()
                    )));
                }
            };
            match f.name().as_str() {
                SYNCED_AT if kind == ColumnKind::Timestamp => synced_at = Some(i),
                RUN_ID if kind == ColumnKind::Text => run_id = Some(i),
                name => cols.push((
                    i,
                    Column {
                        field: name.to_string(),
                        name: name.to_string(),
                        kind,
                    },
                )),
            }
        }
        let mut bytes = 0u64;
        let mut rows = 0u64;
        let mut line = Vec::with_capacity(512);
        for batch in reader {
            let batch = batch.map_err(|e| err(path, "read")(&e))?;
            for row in 0..batch.num_rows() {
                let mut obj = Map::new();
                for (ci, c) in &cols {
                    if let Some(v) = cell(batch.column(*ci).as_ref(), c.kind, row) {
                        obj.insert(c.field.clone(), v);
                    }
                }
                let meta = |i: Option<usize>, kind| {
                    i.and_then(|i| cell(batch.column(i).as_ref(), kind, row))
                        .and_then(|v| v.as_str().map(str::to_string))
                };
                line.clear();
                spill_line(
                    &mut line,
                    meta(synced_at, ColumnKind::Timestamp).as_deref(),
                    meta(run_id, ColumnKind::Text).as_deref(),
                    &obj,
                )?;
                spill.write_all(&line)?;
                bytes += line.len() as u64;
                rows += 1;
            }
        }
        Ok(Some(PqPosition {
            spill_bytes: bytes,
            rows,
            columns: cols.into_iter().map(|(_, c)| c).collect(),
        }))
    }

    /// Writes `<stream>.parquet` from the spill.
    fn finalize(&self, stream: &str, s: &mut PqStream) -> Result<()> {
        s.writer.flush()?;
        let path = self.final_path(stream);
        if let Some(ingest) = s.ingest.take() {
            match ingest.finish() {
                Ok(end) => {
                    tracing::debug!(
                        "stream {stream}: {} of {} records read straight into cells",
                        end.as_cells,
                        s.pos.rows
                    );
                    s.columns = end.columns;
                    s.encoder = end.encoder;
                    if let Some(why) = end.stopped {
                        tracing::debug!(
                            "stream {stream}: {why}; the Parquet file is built from the spill"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!("stream {stream}: {e}; the Parquet file is built from the spill")
                }
            }
        }
        if let Some(enc) = s.encoder.take()
            && enc.fits(&s.columns.cols)
            && enc.rows() == s.pos.rows
        {
            match enc.finish() {
                Ok(built) => {
                    std::fs::rename(&built, &path).map_err(|e| err(&path, "replace")(&e))?;
                    return Ok(());
                }
                // The spill has every record: build from it instead.
                Err(e) => tracing::warn!("{}: {e}; building it from the spill", path.display()),
            }
        }
        if s.raw_seen || !s.fresh {
            // Columns fitted elsewhere (raw records, an earlier run) may not
            // have seen every record: fit them over the whole spill first.
            Self::fit_spill(s)?;
        }
        if s.columns.is_empty() {
            tracing::warn!(
                "stream {stream}: no records and no declared schema: {} not written",
                path.display()
            );
            return Ok(());
        }
        // The same encoder as a file built while records arrive, fed from
        // the spill, each record with its own `_synced_at` and `_run_id`.
        let tmp = self.dir.join(format!(".{stream}.parquet.tmp"));
        let wrote = |e: String| err(&tmp, "write")(&e);
        let mut enc = RowGroupEncoder::start(&tmp, &s.columns.cols).map_err(wrote)?;
        each_spill_record(&s.spill_path, s.pos.spill_bytes, |at, id, record| {
            enc.push_one(&record, at.and_then(micros), id)
                .map_err(wrote)
        })?;
        let built = enc.finish().map_err(wrote)?;
        std::fs::rename(&built, &path).map_err(|e| err(&path, "replace")(&e))?;
        Ok(())
    }

    /// Fits the stream's columns to every record of its spill.
    fn fit_spill(s: &mut PqStream) -> Result<()> {
        let mut batch = Vec::with_capacity(1024);
        let columns = &mut s.columns;
        each_spill_record(&s.spill_path, s.pos.spill_bytes, |_, _, record| {
            batch.push(record);
            if batch.len() == 1024 {
                columns.fit(&batch);
                batch.clear();
            }
            Ok(())
        })?;
        columns.fit(&batch);
        Ok(())
    }
}

/// Calls `f` with each record of the first `len` bytes of a spill, parsed,
/// and its line's `_synced_at` and `_run_id`.
fn each_spill_record(
    spill: &Path,
    len: u64,
    mut f: impl FnMut(Option<&str>, Option<&str>, Value) -> Result<()>,
) -> Result<()> {
    let file = File::open(spill).map_err(|e| err(spill, "read")(&e))?;
    let mut lines = BufReader::with_capacity(256 * 1024, std::io::Read::take(file, len));
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (at, id, text) = split_spill_line(&line);
        let record: Value = serde_json::from_str(text).map_err(|e| err(spill, "read")(&e))?;
        f(at, id, record)?;
    }
}

impl Destination for ParquetDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        StateFile::load_optional(self.state.as_ref())
    }

    fn check_resume(&self, stream: &str, resume: &Value) -> std::result::Result<(), String> {
        serde_json::from_value::<PqPosition>(resume.clone())
            .map_err(|e| format!("the saved Parquet position is not valid: {e}"))?;
        super::check_length(
            &self.spill_path(stream),
            resume.get("spill_bytes"),
            "spill length",
        )
        .map(|_| ())
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let name = stream.name.as_str();
        // A file left half built by a stopped run is of no use.
        let _ = std::fs::remove_file(self.building_path(name));
        let mut fresh = false;
        let (spool, pos) = match spool::start::<PqPosition>(resume, mode, self.write_mode) {
            SpoolStart::Resumed(pos) => (
                Spool::open(self.spill_path(name), Some(pos.spill_bytes))?,
                pos,
            ),
            SpoolStart::Fresh { append } => {
                let mut spool = Spool::open(self.spill_path(name), None)?;
                let seeded = if append {
                    Self::seed_from_existing(&self.final_path(name), &mut spool.writer)?
                } else {
                    None
                };
                fresh = seeded.is_none();
                let pos = seeded.unwrap_or(PqPosition {
                    spill_bytes: 0,
                    rows: 0,
                    columns: Vec::new(),
                });
                (spool, pos)
            }
        };
        let Spool {
            path: spill_path,
            writer,
        } = spool;
        let mut columns = Columns::restore(RESERVED, 0, pos.columns.clone());
        if let Some(schema) = stream
            .json_schema
            .as_ref()
            .or_else(|| self.schemas.get(name))
        {
            columns.declare(schema);
        }
        self.streams.insert(
            name.to_string(),
            PqStream {
                spill_path,
                writer,
                pos,
                columns,
                encoder: None,
                fresh,
                ingest: None,
                raw_seen: false,
            },
        );
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let building = self.building_path(stream);
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        s.columns.fit(records);
        let synced_at = schema::now_rfc3339();
        if s.fresh
            && let Err(e) = RowGroupEncoder::add_to(
                &mut s.encoder,
                &building,
                &s.columns.cols,
                s.pos.rows == 0 && !records.is_empty(),
                records,
                &synced_at,
                &self.run_id,
            )
        {
            // Built from the spill at the end instead.
            tracing::debug!("stream {stream}: {e}; the Parquet file is built when it closes");
            s.fresh = false;
        }
        let mut line = Vec::with_capacity(512);
        for r in records {
            line.clear();
            spill_line(&mut line, Some(&synced_at), Some(&self.run_id), r)?;
            s.writer
                .write_all(&line)
                .map_err(|e| err(&s.spill_path, "write")(&e))?;
            s.pos.spill_bytes += line.len() as u64;
        }
        s.pos.rows += records.len() as u64;
        Ok(())
    }

    /// Raw records go to the spill as they came (minified) and are parsed
    /// on the ingest thread.
    fn keeps_raw_json(&self) -> bool {
        true
    }

    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        let building = self.building_path(stream);
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let synced_at = schema::now_rfc3339();
        let mut lines =
            Vec::with_capacity(records.iter().map(<[u8]>::len).sum::<usize>() + 64 * records.len());
        for r in records.iter() {
            // A table's rows are objects (as the parsed path checks too).
            if r.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(EngineError::Destination(format!(
                    "stream `{stream}`: a record is not a JSON object: {}",
                    crate::http::excerpt(r)
                )));
            }
            spill_prefix(&mut lines, Some(&synced_at), Some(&self.run_id));
            crate::raw_records::minify_into(r, &mut lines);
            lines.push(b'\n');
        }
        s.writer
            .write_all(&lines)
            .map_err(|e| err(&s.spill_path, "write")(&e))?;
        s.pos.spill_bytes += lines.len() as u64;
        s.pos.rows += records.len() as u64;
        s.raw_seen = true;
        // Parsed pages built part of the file here: the file is built from
        // the spill instead (a stream's pages come one way or the other).
        if s.encoder.take().is_some() {
            s.fresh = false;
        }
        if s.fresh && s.ingest.is_none() {
            match RawIngest::start(&building, s.columns.clone(), &self.run_id) {
                Ok(i) => s.ingest = Some(i),
                Err(e) => {
                    tracing::debug!(
                        "stream {stream}: {e}; the Parquet file is built when it closes"
                    );
                    s.fresh = false;
                }
            }
        }
        if let Some(i) = &s.ingest
            && i.send(records.clone(), synced_at.into()).is_err()
        {
            // Its end says why; the spill has the records.
            s.fresh = false;
        }
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        spool::remove_completed(&mut self.closed, state);
        let preview = super::is_preview_commit(state, durable);
        for (name, s) in self.streams.iter_mut() {
            s.writer.flush()?;
            if durable {
                s.writer.get_ref().sync_data()?;
            }
            if !preview {
                s.pos.columns = s.columns.cols.clone();
                state.stream(name).destination = serde_json::to_value(&s.pos).ok();
            }
        }
        spool::save_state(self.state.as_ref(), state, durable)
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if let Some(mut s) = self.streams.remove(stream) {
            self.finalize(stream, &mut s)?;
            self.closed.push((stream.to_string(), s.spill_path.clone()));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("parquet:{}", self.dir.display())
    }
}

impl Drop for ParquetDestination {
    fn drop(&mut self) {
        for s in self.streams.values_mut() {
            let _ = s.writer.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::RecordBatch;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cr-parquet-{}", schema::new_run_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A destination in `dir` with stream `s` open.
    fn opened(dir: &Path) -> ParquetDestination {
        let opts = DestinationOptions {
            connector: "t".into(),
            ..Default::default()
        };
        let mut d = ParquetDestination::create(dir, None, &opts).unwrap();
        let info = StreamInfo {
            name: "s".into(),
            ..Default::default()
        };
        d.open_stream(&info, WriteMode::Replace, None).unwrap();
        d
    }

    /// A destination in `dir` with stream `s` open, its schema declared.
    fn opened_with(dir: &Path, schema: Value) -> ParquetDestination {
        let mut d = ParquetDestination::create(dir, None, &DestinationOptions::default()).unwrap();
        let info = StreamInfo {
            name: "s".into(),
            json_schema: Some(schema),
            ..Default::default()
        };
        d.open_stream(&info, WriteMode::Replace, None).unwrap();
        d
    }

    /// Closes stream `s` and reads its file back.
    fn closed(mut d: ParquetDestination, dir: &Path) -> Vec<RecordBatch> {
        d.close_stream("s").unwrap();
        assert!(!d.building_path("s").exists(), "no half-built file is left");
        let f = File::open(dir.join("s.parquet")).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Writes `batches` as parsed records; `built` false makes the
    /// destination build the file from its spill at the end.
    fn write(dir: &Path, batches: &[Vec<Value>], built: bool) -> Vec<RecordBatch> {
        let mut d = opened(dir);
        d.streams.get_mut("s").unwrap().fresh = built;
        for b in batches {
            d.write_batch("s", b).unwrap();
        }
        assert_eq!(d.streams["s"].encoder.is_some(), built);
        closed(d, dir)
    }

    /// Writes `batches` as raw JSON pages, pretty-printed as some APIs send
    /// them.
    fn write_raw_pages(dir: &Path, batches: &[Vec<Value>]) -> Vec<RecordBatch> {
        let mut d = opened(dir);
        for b in batches {
            let page = serde_json::to_vec_pretty(&serde_json::json!({ "data": b })).unwrap();
            let body = bytes::Bytes::from(page);
            let (_, raw) = crate::raw_records::split(&body, &["data".to_string()]).unwrap();
            d.write_raw("s", &raw.unwrap()).unwrap();
        }
        assert!(d.streams["s"].ingest.is_some());
        closed(d, dir)
    }

    /// 70,000 records in ten batches: more than one row group.
    fn seventy_thousand(name: &str) -> Vec<Vec<Value>> {
        (0..10)
            .map(|b| {
                (0..7_000)
                    .map(|i| {
                        let id = b * 7_000 + i;
                        serde_json::json!({"id": id, "name": format!("{name}{id}"), "tags": [id % 3], "ok": id % 2 == 0})
                    })
                    .collect()
            })
            .collect()
    }

    /// Same schema, same values in every column but `_synced_at` (each
    /// batch's time) and `_run_id` (each destination's own).
    fn assert_same(x: &[RecordBatch], y: &[RecordBatch]) {
        assert_eq!(x.len(), y.len());
        for (x, y) in x.iter().zip(y) {
            assert_eq!(x.schema(), y.schema());
            for name in ["id", "name", "tags", "ok"] {
                let i = x.schema().index_of(name).unwrap();
                assert_eq!(x.column(i), y.column(i), "column {name}");
            }
        }
    }

    #[test]
    fn a_file_built_as_records_arrive_is_the_file_built_from_the_spill() {
        let batches = seventy_thousand("n");
        let (a, b) = (dir(), dir());
        let built = write(&a, &batches, true);
        let rebuilt = write(&b, &batches, false);
        let row_groups = |d: &Path| {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let r = SerializedFileReader::new(File::open(d.join("s.parquet")).unwrap()).unwrap();
            r.metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect::<Vec<_>>()
        };
        assert_eq!(row_groups(&a), vec![65_536, 4_464]);
        assert_eq!(row_groups(&a), row_groups(&b));
        assert_eq!(built.iter().map(|b| b.num_rows()).sum::<usize>(), 70_000);
        assert_same(&built, &rebuilt);
    }

    #[test]
    fn raw_records_give_the_file_parsed_ones_give() {
        let batches = seventy_thousand("n\t");
        let (a, b) = (dir(), dir());
        let raw = write_raw_pages(&a, &batches);
        let parsed = write(&b, &batches, true);
        assert_eq!(raw.iter().map(|b| b.num_rows()).sum::<usize>(), 70_000);
        assert_same(&raw, &parsed);
        // A field that appears late, or widens, in raw pages: the file is
        // built from the spill, with every value.
        let late = vec![
            (0..10)
                .map(|i| serde_json::json!({"id": i}))
                .collect::<Vec<_>>(),
            (10..20)
                .map(|i| serde_json::json!({"id": i, "v": i}))
                .collect(),
            (20..30)
                .map(|i| serde_json::json!({"id": i, "v": format!("x{i}")}))
                .collect(),
        ];
        let got = write_raw_pages(&dir(), &late);
        let v = got[0].column(got[0].schema().index_of("v").unwrap());
        let v = v
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(
            (v.null_count(), v.value(10), v.value(29)),
            (10, "10", "x29")
        );
    }

    #[test]
    fn raw_records_read_into_cells_give_the_file_values_give() {
        // The first page fixes every column's kind; the later ones fit them
        // with every kind of value a column holds, so the ingest reads them
        // straight into cells.
        let pages = [
            vec![
                r#"{"id":1,"x":1.5,"ok":true,"t":"plain","j":{"a":1},"at":"2024-01-02T03:04:05Z","d":"2024-01-02","mix":"s"}"#,
                r#"{"id":2,"j":5,"mix":1}"#,
            ],
            vec![
                r#"{"mix":12,"id":-3,"x":3,"ok":null,"t":"tab\t \"q\" é\u00e9 \ud83d\ude00","j":[1,{"b":null}]}"#,
                r#"{"id":9223372036854775807,"x":1e300,"j":true,"at":"2024-01-02T05:04:05.123456+02:00","d":"2023-12-31","mix":true,"zzz":null}"#,
                r#"{"id":4,"x":0.1,"j":2.5,"mix":{"k":"v","n":[1.0]},"t":""}"#,
                r#"{"id":5,"id":6,"mix":18446744073709551615,"unknown":1,"unknown":null}"#,
                r#"{"mix":1.0}"#,
                r#"{}"#,
            ],
            vec![r#"{"id":7,"mix":"x","extra":2}"#],
        ];
        let schema = serde_json::json!({"properties": {
            "at": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
        }});
        // Raw, the first two pages.
        let a = dir();
        let mut d = opened_with(&a, schema.clone());
        for page in &pages[..2] {
            let body = bytes::Bytes::from(format!("[{}]", page.join(",\n  ")));
            let (_, raw) = crate::raw_records::split(&body, &[]).unwrap();
            d.write_raw("s", &raw.unwrap()).unwrap();
        }
        let s = d.streams.get_mut("s").unwrap();
        let end = s.ingest.take().unwrap().finish().unwrap();
        assert_eq!(end.stopped, None, "the file was built as the pages came");
        assert_eq!(end.as_cells, 6, "the second page's records, every one");
        (s.columns, s.encoder) = (end.columns, end.encoder);
        let raw = closed(d, &a);
        // The same records parsed, the file built as they come.
        let b = dir();
        let mut d = opened_with(&b, schema.clone());
        for page in &pages[..2] {
            let values: Vec<Value> = page
                .iter()
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
            d.write_batch("s", &values).unwrap();
        }
        let parsed = closed(d, &b);
        assert_eq!(raw.len(), 1);
        assert_eq!(raw[0].num_rows(), 8);
        assert_eq!(raw[0].schema(), parsed[0].schema());
        for (i, f) in raw[0].schema().fields().iter().enumerate() {
            if f.name() != SYNCED_AT && f.name() != RUN_ID {
                assert_eq!(raw[0].column(i), parsed[0].column(i), "column {}", f.name());
            }
        }
        let mix = raw[0].column(raw[0].schema().index_of("mix").unwrap());
        let mix = mix
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(
            (0..8).map(|i| mix.value(i)).collect::<Vec<_>>(),
            [
                "s",
                "1",
                "12",
                "true",
                r#"{"k":"v","n":[1.0]}"#,
                "18446744073709551615",
                "1.0",
                ""
            ]
        );
        // A record with a field the columns lack ends the building: the
        // file comes from the spill, with that field.
        let c = dir();
        let mut d = opened_with(&c, schema);
        for page in &pages {
            let body = bytes::Bytes::from(format!("[{}]", page.join(",")));
            let (_, raw) = crate::raw_records::split(&body, &[]).unwrap();
            d.write_raw("s", &raw.unwrap()).unwrap();
        }
        let s = d.streams.get_mut("s").unwrap();
        let end = s.ingest.take().unwrap().finish().unwrap();
        assert_eq!(
            end.stopped.as_deref(),
            Some("a column was added or widened")
        );
        (s.columns, s.encoder) = (end.columns, end.encoder);
        let spilled = closed(d, &c);
        let extra = spilled[0].column(spilled[0].schema().index_of("extra").unwrap());
        assert_eq!((spilled[0].num_rows(), extra.null_count()), (9, 8));
    }

    #[test]
    fn a_raw_record_that_is_not_an_object_is_refused() {
        let mut d = opened(&dir());
        let body = bytes::Bytes::from_static(b"{\"data\": [{\"id\": 1}, 7]}");
        let (_, raw) = crate::raw_records::split(&body, &["data".to_string()]).unwrap();
        let e = d.write_raw("s", &raw.unwrap()).unwrap_err().to_string();
        assert!(e.contains("not a JSON object"), "{e}");
    }

    #[test]
    fn a_column_added_late_builds_the_file_from_the_spill() {
        let first: Vec<Value> = (0..10).map(|i| serde_json::json!({"id": i})).collect();
        let later: Vec<Value> = (10..20)
            .map(|i| serde_json::json!({"id": i, "late": "x"}))
            .collect();
        let d = dir();
        let mut dest = opened(&d);
        dest.write_batch("s", &first).unwrap();
        assert!(dest.streams["s"].encoder.is_some());
        dest.write_batch("s", &later).unwrap();
        assert!(
            dest.streams["s"].encoder.is_none(),
            "dropped when a column came"
        );
        let batches = closed(dest, &d);
        assert_eq!(batches[0].num_rows(), 20);
        let late = batches[0].column(batches[0].schema().index_of("late").unwrap());
        assert_eq!(late.null_count(), 10);
    }
}
