//! What the SQL destinations (SQLite, Postgres) share: per-stream table
//! bookkeeping, the destination position kept in the run state, names.
//!
//! Layout, in the database (or Postgres schema):
//! - one table per stream, named by [`schema::table_name`], with a column per
//!   top-level field plus `_synced_at` (RFC 3339 UTC) and `_run_id`;
//! - `_connector_streams(connector, stream, table_name, primary_key,
//!   write_mode, columns, run_id, updated_at)`: which table holds which
//!   stream, and each column's field and kind (`columns`, JSON);
//! - `_connector_state(connector, state, run_id, updated_at)`: the run state,
//!   written in the same transaction as the records it describes.

use super::schema::{Column, Columns};
use super::{StreamInfo, WriteStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SYNCED_AT: &str = "_synced_at";
pub const RUN_ID: &str = "_run_id";
pub const RESERVED: &[&str] = &[SYNCED_AT, RUN_ID];
pub const STATE_TABLE: &str = "_connector_state";
pub const STREAMS_TABLE: &str = "_connector_streams";
/// Longest table name we make (Postgres allows 63 bytes; room for `_tmp_`
/// and the index suffix).
pub const TABLE_NAME_MAX: usize = 40;
/// Longest column name (Postgres' limit).
pub const COLUMN_NAME_MAX: usize = 63;

/// A double-quoted SQL identifier.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The staging table of a `replace` stream.
pub fn staging_name(table: &str) -> String {
    format!("_tmp_{table}")
}

/// The destination position a SQL destination keeps in the run state: the
/// table being written and its columns, so a resumed run continues exactly
/// where the last committed transaction ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Position {
    pub table: String,
    pub columns: Vec<Column>,
}

impl Position {
    pub fn from_resume(resume: Option<&Value>) -> Option<Position> {
        resume.and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// A saved position must parse; what it names is checked when the
    /// stream opens.
    pub fn check(resume: &Value) -> std::result::Result<(), String> {
        serde_json::from_value::<Position>(resume.clone())
            .map(|_| ())
            .map_err(|e| format!("the saved table position is not valid: {e}"))
    }
}

/// One open stream of a SQL destination.
#[derive(Debug)]
pub struct SqlStream {
    pub info: StreamInfo,
    pub strategy: WriteStrategy,
    /// The stream's table.
    pub table: String,
    /// The table being written: `table`, or its staging table for `replace`.
    pub target: String,
    pub columns: Columns,
    /// The target table exists (a new one is created with the first batch,
    /// so its columns come in the records' order).
    pub created: bool,
    /// The target has a unique index on the primary key.
    pub pk_index: bool,
    /// The live table's columns changed and `_connector_streams` must follow.
    pub dirty: bool,
    /// The insert statement for the current columns.
    pub insert_sql: Option<String>,
    pub rows: u64,
    pub busy: std::time::Duration,
}

impl SqlStream {
    pub fn position(&self) -> Value {
        serde_json::to_value(Position {
            table: self.target.clone(),
            columns: self.columns.cols.clone(),
        })
        .unwrap_or(Value::Null)
    }

    /// Upsert on the primary key (merge, and replace with a primary key so a
    /// record seen twice in one run is kept once).
    pub fn upsert(&self) -> bool {
        self.pk_index
            && !self.info.primary_key.is_empty()
            && matches!(self.strategy, WriteStrategy::Merge | WriteStrategy::Replace)
    }

    /// The primary key's columns, once every key field has one.
    pub fn pk_columns(&self) -> Option<Vec<String>> {
        if self.info.primary_key.is_empty() {
            return None;
        }
        self.info
            .primary_key
            .iter()
            .map(|f| self.columns.get(f).map(|c| c.name.clone()))
            .collect()
    }

    /// A stream about to be written into `target`; `saved` are the columns
    /// of an existing target (from state, metadata or the database).
    pub fn new(
        info: StreamInfo,
        strategy: WriteStrategy,
        table: String,
        target: String,
        exists: bool,
        saved: Option<Vec<Column>>,
    ) -> SqlStream {
        let columns = match saved {
            Some(cols) => Columns::restore(RESERVED, COLUMN_NAME_MAX, cols),
            None => Columns::new(RESERVED, COLUMN_NAME_MAX),
        };
        SqlStream {
            info,
            strategy,
            table,
            target,
            columns,
            created: exists,
            pk_index: false,
            dirty: false,
            insert_sql: None,
            rows: 0,
            busy: std::time::Duration::ZERO,
        }
    }
}

/// The rows a merge batch really writes: the last record per primary key
/// (a multi-row upsert cannot touch one row twice), in first-seen order.
/// Records without a full key are all kept.
#[cfg(feature = "postgres")]
pub fn last_per_key<'a>(records: &'a [Value], pk: &[String]) -> Vec<&'a Value> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<&Value> = Vec::with_capacity(records.len());
    for r in records {
        let key: Option<Vec<&Value>> = pk
            .iter()
            .map(|f| r.get(f).filter(|v| !v.is_null()))
            .collect();
        match key {
            Some(k) => {
                let k = serde_json::to_string(&k).unwrap_or_default();
                match index.get(&k) {
                    Some(&i) => out[i] = r,
                    None => {
                        index.insert(k, out.len());
                        out.push(r);
                    }
                }
            }
            None => out.push(r),
        }
    }
    out
}
