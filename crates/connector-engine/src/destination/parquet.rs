//! `parquet:DIR`: one `DIR/<stream>.parquet` per stream, typed Arrow columns
//! (`Int64`, `Float64`, `Boolean`, `Utf8`; nested objects and arrays are JSON
//! text in `Utf8` columns marked `connector_run.kind = json` in the field
//! metadata), Snappy-compressed, in row groups of 65,536 rows. DuckDB,
//! pandas/pyarrow and Spark read it.
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
//! rows: they are read into the new spill first.

use super::schema::{Column, ColumnKind, Columns, as_object, text_of};
use super::spool::{self, Spool, SpoolStart};
use super::{Destination, DestinationOptions, StreamInfo, WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::state::{State, StateFile};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
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
}

pub struct ParquetDestination {
    dir: PathBuf,
    state: Option<StateFile>,
    write_mode: Option<WriteStrategy>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, PqStream>,
    /// Closed streams and their spills, removed once they completed.
    closed: Vec<(String, PathBuf)>,
}

fn err(path: &Path, what: &str) -> impl Fn(&dyn std::fmt::Display) -> EngineError {
    let shown = path.display().to_string();
    let what = what.to_string();
    move |e| EngineError::Destination(format!("cannot {what} {shown}: {e}"))
}

fn data_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Integer => DataType::Int64,
        ColumnKind::Real => DataType::Float64,
        ColumnKind::Boolean => DataType::Boolean,
        ColumnKind::Text | ColumnKind::Json => DataType::Utf8,
    }
}

/// The Arrow schema of the columns.
pub fn arrow_schema(cols: &[Column]) -> Schema {
    Schema::new(
        cols.iter()
            .map(|c| {
                let f = Field::new(&c.name, data_type(c.kind), true);
                f.with_metadata(HashMap::from([(
                    KIND_KEY.to_string(),
                    c.kind.name().to_string(),
                )]))
            })
            .collect::<Vec<_>>(),
    )
}

enum Builder {
    Int(Int64Builder),
    Real(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

impl Builder {
    fn new(kind: ColumnKind) -> Builder {
        match kind {
            ColumnKind::Integer => Builder::Int(Int64Builder::new()),
            ColumnKind::Real => Builder::Real(Float64Builder::new()),
            ColumnKind::Boolean => Builder::Bool(BooleanBuilder::new()),
            ColumnKind::Text | ColumnKind::Json => Builder::Str(StringBuilder::new()),
        }
    }

    fn push(&mut self, kind: ColumnKind, v: Option<&Value>) {
        let v = v.filter(|v| !v.is_null());
        match self {
            Builder::Int(b) => b.append_option(v.and_then(Value::as_i64)),
            Builder::Real(b) => b.append_option(v.and_then(Value::as_f64)),
            Builder::Bool(b) => b.append_option(v.and_then(Value::as_bool)),
            Builder::Str(b) => match (kind, v) {
                (_, None) => b.append_null(),
                (ColumnKind::Json, Some(v)) => b.append_value(v.to_string()),
                (_, Some(Value::String(s))) => b.append_value(s),
                (_, Some(v)) => b.append_value(text_of(v)),
            },
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Real(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
        }
    }
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
        })
    }

    fn final_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.parquet"))
    }

    fn spill_path(&self, stream: &str) -> PathBuf {
        spool::hidden(&self.dir, stream, "parquet.spill")
    }

    /// Reads the rows of an existing file into the spill, as JSON records.
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
        let mut cols = Vec::new();
        for f in schema.fields() {
            let json = f.metadata().get(KIND_KEY).map(String::as_str) == Some("json");
            let kind = match f.data_type() {
                DataType::Int64 => ColumnKind::Integer,
                DataType::Float64 => ColumnKind::Real,
                DataType::Boolean => ColumnKind::Boolean,
                DataType::Utf8 if json => ColumnKind::Json,
                DataType::Utf8 => ColumnKind::Text,
                other => {
                    return Err(EngineError::Destination(format!(
                        "cannot append to {}: column `{}` is {other}, which connector-run does not write; move the file away or sync with --write-mode replace",
                        path.display(),
                        f.name()
                    )));
                }
            };
            cols.push(Column {
                field: f.name().clone(),
                name: f.name().clone(),
                kind,
            });
        }
        let mut bytes = 0u64;
        let mut rows = 0u64;
        let mut line = Vec::with_capacity(512);
        for batch in reader {
            let batch = batch.map_err(|e| err(path, "read")(&e))?;
            for row in 0..batch.num_rows() {
                let mut obj = Map::new();
                for (ci, c) in cols.iter().enumerate() {
                    let a = batch.column(ci);
                    if a.is_null(row) {
                        continue;
                    }
                    let v = match c.kind {
                        ColumnKind::Integer => Value::from(
                            a.as_any()
                                .downcast_ref::<arrow_array::Int64Array>()
                                .map(|x| x.value(row)),
                        ),
                        ColumnKind::Real => Value::from(
                            a.as_any()
                                .downcast_ref::<arrow_array::Float64Array>()
                                .map(|x| x.value(row)),
                        ),
                        ColumnKind::Boolean => Value::from(
                            a.as_any()
                                .downcast_ref::<arrow_array::BooleanArray>()
                                .map(|x| x.value(row)),
                        ),
                        ColumnKind::Text | ColumnKind::Json => {
                            let s = a
                                .as_any()
                                .downcast_ref::<arrow_array::StringArray>()
                                .map(|x| x.value(row).to_string())
                                .unwrap_or_default();
                            if c.kind == ColumnKind::Json {
                                serde_json::from_str(&s).unwrap_or(Value::String(s))
                            } else {
                                Value::String(s)
                            }
                        }
                    };
                    obj.insert(c.field.clone(), v);
                }
                line.clear();
                serde_json::to_writer(&mut line, &obj).map_err(std::io::Error::from)?;
                line.push(b'\n');
                spill.write_all(&line)?;
                bytes += line.len() as u64;
                rows += 1;
            }
        }
        Ok(Some(PqPosition {
            spill_bytes: bytes,
            rows,
            columns: cols,
        }))
    }

    /// Writes `<stream>.parquet` from the spill.
    fn finalize(&self, stream: &str, s: &mut PqStream) -> Result<()> {
        s.writer.flush()?;
        let path = self.final_path(stream);
        if s.columns.is_empty() {
            tracing::warn!(
                "stream {stream}: no records and no declared schema: {} not written",
                path.display()
            );
            return Ok(());
        }
        let cols = &s.columns.cols;
        let schema = Arc::new(arrow_schema(cols));
        let tmp = self.dir.join(format!(".{stream}.parquet.tmp"));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("connector-run {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file = File::create(&tmp).map_err(|e| err(&tmp, "create")(&e))?;
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| err(&tmp, "write")(&e))?;
        let spill = File::open(&s.spill_path).map_err(|e| err(&s.spill_path, "read")(&e))?;
        let mut lines =
            BufReader::with_capacity(256 * 1024, std::io::Read::take(spill, s.pos.spill_bytes));
        let mut builders: Vec<Builder> = cols.iter().map(|c| Builder::new(c.kind)).collect();
        let mut in_batch = 0usize;
        let flush = |builders: &mut Vec<Builder>, writer: &mut ArrowWriter<File>| -> Result<()> {
            let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
            let batch =
                RecordBatch::try_new(schema.clone(), arrays).map_err(|e| err(&tmp, "write")(&e))?;
            writer.write(&batch).map_err(|e| err(&tmp, "write")(&e))?;
            writer.flush().map_err(|e| err(&tmp, "write")(&e))
        };
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                break;
            }
            let record: Value =
                serde_json::from_str(&line).map_err(|e| err(&s.spill_path, "read")(&e))?;
            let obj = as_object(&record);
            for (b, c) in builders.iter_mut().zip(cols) {
                b.push(c.kind, obj.get(&c.field));
            }
            in_batch += 1;
            if in_batch == ROW_GROUP_ROWS {
                flush(&mut builders, &mut writer)?;
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            flush(&mut builders, &mut writer)?;
        }
        let file = writer.into_inner().map_err(|e| err(&tmp, "write")(&e))?;
        file.sync_data()?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, "replace")(&e))?;
        Ok(())
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
        let mut columns = Columns::restore(&[], 0, pos.columns.clone());
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
            },
        );
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        s.columns.fit(records);
        let mut line = Vec::with_capacity(512);
        for r in records {
            line.clear();
            serde_json::to_writer(&mut line, r).map_err(std::io::Error::from)?;
            line.push(b'\n');
            s.writer
                .write_all(&line)
                .map_err(|e| err(&s.spill_path, "write")(&e))?;
            s.pos.spill_bytes += line.len() as u64;
        }
        s.pos.rows += records.len() as u64;
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
