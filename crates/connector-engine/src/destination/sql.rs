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
    /// Postgres: the shape (table, columns, types) of the temporary staging
    /// table that merge batches are copied into, once it exists.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub stage: Option<String>,
    /// Postgres: upserts `COPY` straight into the target (no staging table,
    /// no `ON CONFLICT`) until a key already there refuses a batch; from then
    /// on they go through the staging table.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub copy_direct: bool,
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
            stage: None,
            copy_direct: true,
            rows: 0,
            busy: std::time::Duration::ZERO,
        }
    }
}

/// A stream's info with its declared schema, and its write strategy
/// (`--write-mode`, else the stream's default). Merging needs a key.
pub fn prepare(
    stream: &StreamInfo,
    schemas: &std::collections::BTreeMap<String, Value>,
    write_mode: Option<WriteStrategy>,
) -> crate::error::Result<(StreamInfo, WriteStrategy)> {
    let mut info = stream.clone();
    if info.json_schema.is_none() {
        info.json_schema = schemas.get(&info.name).cloned();
    }
    let strategy = write_mode.unwrap_or_else(|| WriteStrategy::default_for(&info));
    if strategy == WriteStrategy::Merge && info.primary_key.is_empty() {
        return Err(crate::error::EngineError::Destination(format!(
            "stream `{}` has no primary_key, so it cannot be merged; use --write-mode append or replace, or declare a primary_key",
            info.name
        )));
    }
    Ok((info, strategy))
}

/// How a stream's table is opened, decided from what the database holds.
#[derive(Debug, PartialEq)]
pub struct Opening {
    /// The table written: the stream's, or its staging table for `replace`.
    pub target: String,
    /// The target's columns, when it exists and they are known.
    pub columns: Option<Vec<Column>>,
    /// The target exists.
    pub exists: bool,
    /// The target exists but its columns must be read from the database.
    pub introspect: bool,
    /// A stale staging table to drop first.
    pub drop: Option<String>,
}

/// Decides how `table` is opened: a `replace` writes into its staging
/// table, continuing the one a resumed run left (with the saved columns),
/// else starting it afresh; other modes write into the table, continuing
/// with its saved, recorded or introspected columns.
pub fn opening(
    strategy: WriteStrategy,
    table: &str,
    resume: Option<&Value>,
    recorded: Option<Vec<Column>>,
    staging_exists: bool,
    table_exists: bool,
) -> Opening {
    let resume = Position::from_resume(resume);
    if strategy == WriteStrategy::Replace {
        let staging = staging_name(table);
        return match resume.filter(|p| p.table == staging) {
            Some(p) if staging_exists => Opening {
                target: staging,
                columns: Some(p.columns),
                exists: true,
                introspect: false,
                drop: None,
            },
            _ => Opening {
                drop: Some(staging.clone()),
                target: staging,
                columns: None,
                exists: false,
                introspect: false,
            },
        };
    }
    if !table_exists {
        return Opening {
            target: table.to_string(),
            columns: None,
            exists: false,
            introspect: false,
            drop: None,
        };
    }
    let columns = resume
        .filter(|p| p.table == table)
        .map(|p| p.columns)
        .or(recorded);
    Opening {
        target: table.to_string(),
        introspect: columns.is_none(),
        columns,
        exists: true,
        drop: None,
    }
}

impl SqlStream {
    /// The stream about to be written, per its [`Opening`], and the columns
    /// its declared schema adds to an existing target.
    pub fn open(
        info: StreamInfo,
        strategy: WriteStrategy,
        table: String,
        opening: Opening,
    ) -> (SqlStream, super::schema::Changes) {
        let Opening {
            target,
            columns,
            exists,
            ..
        } = opening;
        let mut s = SqlStream::new(info, strategy, table, target, exists, columns);
        let declared = s
            .info
            .json_schema
            .clone()
            .map(|sc| s.columns.declare(&sc))
            .unwrap_or_default();
        (s, declared)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        let cols = vec![Column {
            field: "id".into(),
            name: "id".into(),
            kind: super::super::schema::ColumnKind::Integer,
        }];
        let resume = serde_json::to_value(Position {
            table: "_tmp_t".into(),
            columns: cols.clone(),
        })
        .unwrap();
        let resumed = opening(WriteStrategy::Replace, "t", Some(&resume), None, true, true);
        assert_eq!((resumed.target.as_str(), resumed.exists), ("_tmp_t", true));
        assert_eq!(resumed.columns, Some(cols.clone()));
        let fresh = opening(
            WriteStrategy::Replace,
            "t",
            Some(&resume),
            None,
            false,
            true,
        );
        assert_eq!(fresh.drop.as_deref(), Some("_tmp_t"));
        let append = opening(WriteStrategy::Append, "t", None, None, false, true);
        assert!(append.exists && append.introspect);
        let new = opening(WriteStrategy::Merge, "t", None, Some(cols), false, false);
        assert!(!new.exists && new.columns.is_none());
    }
}
