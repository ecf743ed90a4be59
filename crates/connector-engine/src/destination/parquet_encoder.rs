//! A Parquet file built while its stream is written: records go into Arrow
//! builders as they arrive, and every [`BATCH_ROWS`] of them are encoded
//! (and Snappy-compressed) into the file's open row group on a thread of
//! their own; the writer closes a row group at each [`ROW_GROUP_ROWS`].
//! Closing the stream then only encodes the last few thousand rows, where
//! otherwise it read the whole spill back and parsed every record a second
//! time, and memory holds a batch, not a row group.
//!
//! The file's schema is fixed when its first row group is written, so this
//! holds only while the columns do: the destination drops the encoder when
//! a later record adds or widens a column (or a resumed or appending run
//! starts from a spill it did not see), and closing falls back to building
//! the file from the spill. The result is the same file either way.
//!
//! Records that come as raw JSON text ([`RawIngest`]) are parsed, typed and
//! put into the builders on a thread of their own too, so the sync's own
//! threads only cut pages into records and append them to the spill.

#[cfg(doc)]
use super::parquet::ROW_GROUP_ROWS;
use super::parquet::{Builder, arrow_schema, micros, writer_properties};
use super::row_cells::{Cell, RowCells};
use super::schema::{Column, ColumnKind, Columns, as_object};
use crate::raw_records::RawRecords;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

/// Rows handed to the encoding thread at a time.
pub const BATCH_ROWS: usize = 8_192;

/// Builds a stream's Parquet file as its records arrive.
pub struct RowGroupEncoder {
    /// The columns the file is written with.
    cols: Vec<Column>,
    schema: Arc<Schema>,
    builders: Vec<Builder>,
    synced_at: Builder,
    run_id: Builder,
    /// Rows in the builders, and rows in all.
    in_batch: usize,
    rows: u64,
    /// Batches to the encoding thread.
    groups: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<File, String>>>,
    path: PathBuf,
}

impl RowGroupEncoder {
    /// Starts a file at `path` (a temporary name) with `cols`.
    pub fn start(path: &Path, cols: &[Column]) -> Result<RowGroupEncoder, String> {
        let schema = Arc::new(arrow_schema(cols));
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))
            .map_err(|e| e.to_string())?;
        // One batch waits at most while another is encoded.
        let (groups, incoming) = mpsc::sync_channel::<RecordBatch>(1);
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || {
                // The writer closes each row group at its size itself.
                for batch in incoming {
                    writer.write(&batch).map_err(|e| e.to_string())?;
                }
                writer.into_inner().map_err(|e| e.to_string())
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(RowGroupEncoder {
            cols: cols.to_vec(),
            schema,
            builders: cols.iter().map(|c| Builder::new(c.kind)).collect(),
            synced_at: Builder::new(ColumnKind::Timestamp),
            run_id: Builder::new(ColumnKind::Text),
            in_batch: 0,
            rows: 0,
            groups: Some(groups),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// True while the stream's columns are still the file's.
    pub fn fits(&self, cols: &[Column]) -> bool {
        self.cols == cols
    }

    /// Rows taken so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds records to the file under way in `file`, starting it when
    /// `first` (the stream's first records). An error means the file is no
    /// longer built (a column was added or widened, writing failed): `file`
    /// is then empty, and the caller builds from its spill at the end.
    #[allow(clippy::too_many_arguments)]
    pub fn add_to(
        file: &mut Option<RowGroupEncoder>,
        path: &Path,
        cols: &[Column],
        first: bool,
        records: &[Value],
        synced_at: &str,
        run_id: &str,
    ) -> Result<(), String> {
        if file.is_none() && first {
            *file = Some(Self::start(path, cols)?);
        }
        let added = match file {
            Some(enc) if enc.fits(cols) => enc.push(records, synced_at, run_id),
            Some(_) => Err("a column was added or widened".to_string()),
            None => Ok(()),
        };
        if added.is_err() {
            *file = None;
        }
        added
    }

    /// Appends records (their columns fit: see [`fits`](Self::fits)).
    pub fn push(&mut self, records: &[Value], synced_at: &str, run_id: &str) -> Result<(), String> {
        let at = micros(synced_at);
        for r in records {
            self.push_one(r, at, Some(run_id))?;
        }
        Ok(())
    }

    /// Appends one record with its own `_synced_at` (as microseconds) and
    /// `_run_id` (a spill line's, which an older spill may lack).
    pub fn push_one(
        &mut self,
        record: &Value,
        synced_at: Option<i64>,
        run_id: Option<&str>,
    ) -> Result<(), String> {
        let obj = as_object(record);
        for (b, c) in self.builders.iter_mut().zip(&self.cols) {
            b.push(c.kind, obj.get(&c.field));
        }
        self.end_row(synced_at, run_id)
    }

    /// Appends a raw record read into cells that fit the file's columns
    /// ([`RowCells::read`]).
    pub fn push_cells(
        &mut self,
        cells: &[Cell],
        synced_at: Option<i64>,
        run_id: &str,
    ) -> Result<(), String> {
        for ((b, c), cell) in self.builders.iter_mut().zip(&self.cols).zip(cells) {
            b.push_cell(c.kind, cell);
        }
        self.end_row(synced_at, Some(run_id))
    }

    fn end_row(&mut self, synced_at: Option<i64>, run_id: Option<&str>) -> Result<(), String> {
        self.synced_at.push_meta(synced_at, None);
        self.run_id.push_meta(None, run_id);
        self.in_batch += 1;
        self.rows += 1;
        if self.in_batch == BATCH_ROWS {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<(), String> {
        let mut arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        arrays.push(self.synced_at.finish());
        arrays.push(self.run_id.finish());
        self.in_batch = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| e.to_string())?;
        let sent = self.groups.as_ref().map(|g| g.send(batch));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| "the encoder stopped".into())),
        }
    }

    fn join(&mut self) -> Result<File, String> {
        drop(self.groups.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the encoding thread panicked".into()),
            None => Err("the encoder already stopped".into()),
        }
    }

    /// Writes the last rows and closes the file, synced: it is then
    /// complete at its path.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        if self.in_batch > 0 {
            self.send_batch()?;
        }
        let file = self.join()?;
        file.sync_data().map_err(|e| e.to_string())?;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for RowGroupEncoder {
    fn drop(&mut self) {
        // Dropped unfinished (the columns changed, the run stopped): the
        // partial file goes.
        if self.thread.is_some() {
            let _ = self.join();
        }
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a [`RawIngest`] ends with: the file built so far (None when the
/// columns changed under it), the columns fitted to the records it read,
/// how many of them it read straight into cells, and why it stopped
/// building, if it did (it then reads no more: the destination fits the
/// columns to the whole spill and builds from it).
pub struct IngestEnd {
    pub encoder: Option<RowGroupEncoder>,
    pub columns: Columns,
    pub as_cells: u64,
    pub stopped: Option<String>,
}

impl IngestEnd {
    /// Adds a page's records to the file. The first records are read as
    /// values and fix the file's columns; later ones are read straight into
    /// cells ([`RowCells`]), and any that do not fit as values.
    fn take(
        &mut self,
        raw: &RawRecords,
        synced_at: &str,
        path: &Path,
        run_id: &str,
    ) -> Result<(), String> {
        let not_json = |e: serde_json::Error| format!("a record is not JSON: {e}");
        let Some(enc) = self.encoder.as_mut() else {
            let records = raw.to_values().map_err(not_json)?;
            self.columns.fit(&records);
            let first = !records.is_empty();
            return RowGroupEncoder::add_to(
                &mut self.encoder,
                path,
                &self.columns.cols,
                first,
                &records,
                synced_at,
                run_id,
            );
        };
        let at = micros(synced_at);
        let mut row = RowCells::default();
        for text in raw.iter() {
            if row.read(text, &self.columns) {
                enc.push_cells(row.cells(), at, run_id)?;
                self.as_cells += 1;
                continue;
            }
            let record: Value = serde_json::from_slice(text).map_err(not_json)?;
            if !self.columns.fit(std::slice::from_ref(&record)).is_empty() {
                return Err("a column was added or widened".into());
            }
            enc.push_one(&record, at, Some(run_id))?;
        }
        Ok(())
    }
}

/// Parses a stream's raw records, fits the columns and builds the file, on a
/// thread of its own.
pub struct RawIngest {
    pages: Option<SyncSender<(RawRecords, Arc<str>)>>,
    thread: Option<JoinHandle<IngestEnd>>,
}

impl RawIngest {
    /// Starts with `columns` (declared, or restored) and the file at `path`.
    pub fn start(path: &Path, columns: Columns, run_id: &str) -> Result<RawIngest, String> {
        // Two pages wait at most: memory stays a few pages.
        let (pages, incoming) = mpsc::sync_channel::<(RawRecords, Arc<str>)>(2);
        let (path, run_id) = (path.to_path_buf(), run_id.to_string());
        let thread = std::thread::Builder::new()
            .name("parquet-ingest".into())
            .spawn(move || {
                let mut end = IngestEnd {
                    encoder: None,
                    columns,
                    as_cells: 0,
                    stopped: None,
                };
                for (raw, synced_at) in incoming {
                    if end.stopped.is_none()
                        && let Err(e) = end.take(&raw, &synced_at, &path, &run_id)
                    {
                        end.stopped = Some(e);
                        end.encoder = None;
                    }
                }
                end
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(RawIngest {
            pages: Some(pages),
            thread: Some(thread),
        })
    }

    /// Hands a page's records over (waits while two are queued).
    pub fn send(&self, records: RawRecords, synced_at: Arc<str>) -> Result<(), String> {
        match &self.pages {
            Some(p) => p
                .send((records, synced_at))
                .map_err(|_| "the ingest thread stopped".to_string()),
            None => Err("the ingest already finished".into()),
        }
    }

    /// Waits for every page handed over.
    pub fn finish(mut self) -> Result<IngestEnd, String> {
        drop(self.pages.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(end)) => Ok(end),
            _ => Err("the ingest thread panicked".into()),
        }
    }
}

impl Drop for RawIngest {
    fn drop(&mut self) {
        drop(self.pages.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
