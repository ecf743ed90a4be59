//! A Parquet file built while its stream is written: records go into Arrow
//! builders as they arrive, and each full row group is encoded (and
//! Snappy-compressed) on a thread of its own. Closing the stream then only
//! encodes the last, partial row group, where otherwise it read the whole
//! spill back and parsed every record a second time.
//!
//! The file's schema is fixed when its first row group is written, so this
//! holds only while the columns do: the destination drops the encoder when
//! a later record adds or widens a column (or a resumed or appending run
//! starts from a spill it did not see), and closing falls back to building
//! the file from the spill. The result is the same file either way.

use super::parquet::{Builder, ROW_GROUP_ROWS, arrow_schema, writer_properties};
use super::schema::{Column, ColumnKind, as_object};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

/// Builds a stream's Parquet file as its records arrive.
pub struct RowGroupEncoder {
    /// The columns the file is written with.
    cols: Vec<Column>,
    schema: Arc<Schema>,
    builders: Vec<Builder>,
    synced_at: Builder,
    run_id: Builder,
    /// Rows in the builders, and rows in all.
    in_group: usize,
    rows: u64,
    /// Full row groups to the encoding thread.
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
        // A rendezvous: a full row group waits for the one being encoded, so
        // at most two are in memory.
        let (groups, incoming) = mpsc::sync_channel::<RecordBatch>(0);
        let thread = std::thread::Builder::new()
            .name("parquet-encoder".into())
            .spawn(move || {
                for batch in incoming {
                    writer.write(&batch).map_err(|e| e.to_string())?;
                    writer.flush().map_err(|e| e.to_string())?;
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
            in_group: 0,
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

    /// Appends records (their columns fit: see [`fits`](Self::fits)).
    pub fn push(&mut self, records: &[Value], synced_at: &str, run_id: &str) -> Result<(), String> {
        let (at, id) = (Value::from(synced_at), Value::from(run_id));
        for r in records {
            let obj = as_object(r);
            for (b, c) in self.builders.iter_mut().zip(&self.cols) {
                b.push(c.kind, obj.get(&c.field));
            }
            self.synced_at.push(ColumnKind::Timestamp, Some(&at));
            self.run_id.push(ColumnKind::Text, Some(&id));
            self.in_group += 1;
            self.rows += 1;
            if self.in_group == ROW_GROUP_ROWS {
                self.send_group()?;
            }
        }
        Ok(())
    }

    fn send_group(&mut self) -> Result<(), String> {
        let mut arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        arrays.push(self.synced_at.finish());
        arrays.push(self.run_id.finish());
        self.in_group = 0;
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

    /// Writes the last row group and closes the file, synced: it is then
    /// complete at its path.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        if self.in_group > 0 {
            self.send_group()?;
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
