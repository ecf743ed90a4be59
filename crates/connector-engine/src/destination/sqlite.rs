//! `sqlite:PATH`: an embedded SQLite database, one table per stream (see
//! [`super::sql`] for the layout). The default destination.
//!
//! Writes go through prepared statements in one open transaction
//! (`journal_mode=WAL`, `synchronous=NORMAL`); [`Destination::commit`] writes
//! the run state into `_connector_state` and commits, so records and the state
//! describing them become visible together. A crash loses the uncommitted
//! pages only, and the state says exactly where to resume: nothing is lost or
//! written twice. Durable commits also checkpoint the WAL; the others leave
//! checkpoints to a thread of their own ([`super::sqlite_checkpointer`]), so
//! the writer never copies its pages twice.
//!
//! Types: `INTEGER`, `REAL`, `BOOLEAN` (0/1) and `TEXT`; nested objects and
//! arrays are JSON text in `TEXT` columns (their kind, `json`, is kept in
//! `_connector_streams.columns`). A new field adds a column; a wider value
//! rebuilds the table with the wider column type, converting the rows.

use super::row_cells::{Cell, RowCells};
use super::schema::{self, Column, ColumnKind};
use super::sql::{
    self, Position, RUN_ID, STATE_TABLE, STREAMS_TABLE, SYNCED_AT, SqlStream, TABLE_NAME_MAX, quote,
};
use super::sqlite_checkpointer::{WAL_BYTES, WalCheckpointer, checkpoint, set_backstop};
use super::{Destination, DestinationOptions, StreamInfo, WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::raw_records::RawRecords;
use crate::state::State;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct SqliteDestination {
    path: PathBuf,
    /// Checkpoints the WAL off the writer's thread (WAL mode only).
    checkpointer: Option<WalCheckpointer>,
    conn: Connection,
    connector: String,
    run_id: String,
    write_mode: Option<WriteStrategy>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, SqlStream>,
    closed: Vec<String>,
    rows: u64,
    busy: Duration,
}

/// The page size of a database this destination creates, in bytes.
const PAGE_SIZE: u32 = 16_384;

fn db_err(path: &Path, what: &str) -> impl Fn(rusqlite::Error) -> EngineError {
    let shown = path.display().to_string();
    let what = what.to_string();
    move |e| EngineError::Destination(format!("sqlite {shown}: {what}: {e}"))
}

fn sql_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Integer => "INTEGER",
        ColumnKind::Real => "REAL",
        ColumnKind::Boolean => "BOOLEAN",
        ColumnKind::Text | ColumnKind::Json => "TEXT",
        // Text (RFC 3339 UTC, `YYYY-MM-DD`) that SQLite's date functions
        // read; the declared type tells DuckDB, pandas and SQLAlchemy.
        ColumnKind::Timestamp => "TIMESTAMP",
        ColumnKind::Date => "DATE",
    }
}

/// A value for a column of `kind` (the column's kind always holds it: the
/// columns were widened for the batch first).
fn sql_value(kind: ColumnKind, v: Option<&Value>) -> ToSqlOutput<'_> {
    use rusqlite::types::Value as V;
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return ToSqlOutput::Owned(V::Null);
    };
    match (kind, v) {
        (ColumnKind::Integer, Value::Number(n)) if n.is_i64() => {
            ToSqlOutput::Owned(V::Integer(n.as_i64().unwrap_or_default()))
        }
        (ColumnKind::Real, Value::Number(n)) => {
            ToSqlOutput::Owned(V::Real(n.as_f64().unwrap_or_default()))
        }
        (ColumnKind::Boolean, Value::Bool(b)) => ToSqlOutput::Owned(V::Integer(*b as i64)),
        (ColumnKind::Text, Value::String(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        (ColumnKind::Json, v) => ToSqlOutput::Owned(V::Text(v.to_string())),
        (ColumnKind::Timestamp, Value::String(t)) => match schema::timestamp_text(t) {
            Some(utc) if utc != *t => ToSqlOutput::Owned(V::Text(utc)),
            _ => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        },
        (_, v) => ToSqlOutput::Owned(V::Text(schema::text_of(v))),
    }
}

/// A raw record's cell for a column of `kind` that holds it (the record
/// fits the columns: [`RowCells::read`]); the same as [`sql_value`] of the
/// cell's value.
fn sql_cell<'a>(kind: ColumnKind, cell: &'a Cell) -> ToSqlOutput<'a> {
    use rusqlite::types::Value as V;
    match (kind, cell) {
        (_, Cell::Null) => ToSqlOutput::Owned(V::Null),
        (ColumnKind::Integer, Cell::Int(i)) => ToSqlOutput::Owned(V::Integer(*i)),
        (ColumnKind::Real, Cell::Int(i)) => ToSqlOutput::Owned(V::Real(*i as f64)),
        (ColumnKind::Real, Cell::Real(f)) => ToSqlOutput::Owned(V::Real(*f)),
        (ColumnKind::Boolean, Cell::Bool(b)) => ToSqlOutput::Owned(V::Integer(*b as i64)),
        (ColumnKind::Timestamp, Cell::Str(t)) => match schema::timestamp_text(t) {
            Some(utc) if utc != *t => ToSqlOutput::Owned(V::Text(utc)),
            _ => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        },
        (ColumnKind::Json, c) => ToSqlOutput::Owned(V::Text(c.json_text())),
        (_, Cell::Str(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        (_, c) => ToSqlOutput::Owned(V::Text(c.json_text())),
    }
}

impl SqliteDestination {
    /// Opens (creating) the database file and its metadata tables.
    pub fn open(path: &Path, opts: &DestinationOptions) -> Result<SqliteDestination> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Destination(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(db_err(path, "cannot open"))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(db_err(path, "busy_timeout"))?;
        // A new database gets 16 KiB pages (SQLite's default is 4 KiB): a
        // quarter of the WAL frames, checkpoint copies and B-tree pages per
        // record. An existing file keeps its own size (the pragma is a no-op).
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(db_err(path, "cannot set page_size"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(db_err(path, "cannot set journal_mode=WAL"))?;
        let wal = mode.eq_ignore_ascii_case("wal");
        if !wal {
            tracing::warn!("sqlite {}: journal_mode is {mode}, not WAL", path.display());
        }
        let checkpointer = if wal {
            set_backstop(&conn).map_err(db_err(path, "cannot set wal_autocheckpoint"))?;
            WalCheckpointer::start(path)
        } else {
            None
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
               connector TEXT PRIMARY KEY, state TEXT NOT NULL,
               run_id TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS {STREAMS_TABLE} (
               connector TEXT NOT NULL, stream TEXT NOT NULL, table_name TEXT NOT NULL,
               primary_key TEXT NOT NULL, write_mode TEXT NOT NULL, columns TEXT NOT NULL,
               run_id TEXT NOT NULL, updated_at TEXT NOT NULL,
               PRIMARY KEY (connector, stream));"
        ))
        .map_err(db_err(path, "cannot create the metadata tables"))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch("BEGIN")
            .map_err(db_err(path, "cannot begin a transaction"))?;
        Ok(SqliteDestination {
            path: path.to_path_buf(),
            checkpointer,
            conn,
            connector: opts.connector.clone(),
            run_id: schema::new_run_id(),
            write_mode: opts.write_mode,
            schemas: opts.schemas.clone(),
            streams: HashMap::new(),
            closed: Vec::new(),
            rows: 0,
            busy: Duration::ZERO,
        })
    }

    fn err(&self, what: &str) -> impl Fn(rusqlite::Error) -> EngineError {
        db_err(&self.path, what)
    }

    /// WAL checkpoints the background thread has run.
    pub fn background_checkpoints(&self) -> u64 {
        self.checkpointer
            .as_ref()
            .map_or(0, WalCheckpointer::checkpoints)
    }

    fn table_exists(&self, name: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.err("cannot read the schema"))
    }

    /// The table of a stream: as recorded, else a new sanitized name that no
    /// other stream or table uses.
    fn table_for(&self, stream: &str) -> Result<(String, Option<Vec<Column>>)> {
        let known: Option<(String, String)> = self
            .conn
            .query_row(
                &format!(
                    "SELECT table_name, columns FROM {STREAMS_TABLE} WHERE connector = ?1 AND stream = ?2"
                ),
                params![self.connector, stream],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("cannot read _connector_streams"))?;
        if let Some((table, cols)) = known {
            let cols = serde_json::from_str(&cols).ok();
            return Ok((table, cols));
        }
        let base = schema::table_name(stream, TABLE_NAME_MAX);
        let mut name = base.clone();
        let mut n = 2;
        loop {
            let recorded: bool = self
                .conn
                .query_row(
                    &format!("SELECT 1 FROM {STREAMS_TABLE} WHERE table_name = ?1"),
                    [&name],
                    |_| Ok(()),
                )
                .optional()
                .map_err(self.err("cannot read _connector_streams"))?
                .is_some();
            if !recorded && !self.table_exists(&name)? {
                return Ok((name, None));
            }
            name = format!("{base}_{n}");
            n += 1;
        }
    }

    /// Columns of a table that has no metadata, from its declared types.
    fn introspect(&self, table: &str) -> Result<Vec<Column>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({})", quote(table)))
            .map_err(self.err("cannot read the schema"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.err("cannot read the schema"))?;
        let mut cols = Vec::new();
        for row in rows {
            let (name, ty) = row.map_err(self.err("cannot read the schema"))?;
            if name == SYNCED_AT || name == RUN_ID {
                continue;
            }
            let kind = match ty.to_ascii_uppercase().as_str() {
                "INTEGER" => ColumnKind::Integer,
                "REAL" => ColumnKind::Real,
                "BOOLEAN" => ColumnKind::Boolean,
                "TIMESTAMP" => ColumnKind::Timestamp,
                "DATE" => ColumnKind::Date,
                _ => ColumnKind::Text,
            };
            cols.push(Column {
                field: name.clone(),
                name,
                kind,
            });
        }
        Ok(cols)
    }

    fn create_table(&self, table: &str, cols: &[Column]) -> Result<()> {
        let mut defs: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), sql_type(c.kind)))
            .collect();
        defs.push(format!("{SYNCED_AT} TIMESTAMP NOT NULL"));
        defs.push(format!("{RUN_ID} TEXT NOT NULL"));
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE {} ({})",
                quote(table),
                defs.join(", ")
            ))
            .map_err(self.err(&format!("cannot create table `{table}`")))
    }

    /// A unique index on the primary key, once every key field has a column.
    fn ensure_pk_index(&self, s: &mut SqlStream) -> Result<()> {
        if s.pk_index || s.strategy == WriteStrategy::Append {
            return Ok(());
        }
        let Some(pk) = s.pk_columns() else {
            return Ok(());
        };
        if self.has_unique_index(&s.target, &pk)? {
            s.pk_index = true;
            return Ok(());
        }
        let index = format!("{}__pk_{}", s.target, self.run_id.replace('-', "_"));
        let cols: Vec<String> = pk.iter().map(|c| quote(c)).collect();
        self.conn
            .execute_batch(&format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                quote(&index),
                quote(&s.target),
                cols.join(", ")
            ))
            .map_err(|e| {
                EngineError::Destination(format!(
                    "sqlite {}: cannot index table `{}` on its primary key ({}): {e}; rows with the same key were written before (by --write-mode append?): drop the table or sync with --write-mode replace",
                    self.path.display(),
                    s.target,
                    s.info.primary_key.join(", ")
                ))
            })?;
        s.pk_index = true;
        s.insert_sql = None;
        Ok(())
    }

    fn has_unique_index(&self, table: &str, cols: &[String]) -> Result<bool> {
        let mut list = self
            .conn
            .prepare(&format!("PRAGMA index_list({})", quote(table)))
            .map_err(self.err("cannot read indexes"))?;
        let indexes: Vec<(String, bool)> = list
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, bool>(2)?)))
            .map_err(self.err("cannot read indexes"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.err("cannot read indexes"))?;
        for (name, _) in indexes.into_iter().filter(|(_, unique)| *unique) {
            let mut info = self
                .conn
                .prepare(&format!("PRAGMA index_info({})", quote(&name)))
                .map_err(self.err("cannot read indexes"))?;
            let on: Vec<String> = info
                .query_map([], |r| r.get::<_, String>(2))
                .map_err(self.err("cannot read indexes"))?
                .collect::<rusqlite::Result<_>>()
                .map_err(self.err("cannot read indexes"))?;
            if on == cols {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Applies new and widened columns to the target table.
    fn apply(&self, s: &mut SqlStream, changes: &schema::Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        for &i in &changes.added {
            let c = &s.columns.cols[i];
            self.conn
                .execute_batch(&format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    quote(&s.target),
                    quote(&c.name),
                    sql_type(c.kind)
                ))
                .map_err(self.err(&format!("cannot add column `{}`", c.name)))?;
        }
        if !changes.widened.is_empty() {
            self.rebuild(s, &changes.widened)?;
        }
        if s.target == s.table {
            s.dirty = true;
        }
        s.insert_sql = None;
        self.ensure_pk_index(s)
    }

    /// SQLite cannot change a column's type: copies the rows into a table
    /// with the wider types, converting the widened columns, and swaps it in.
    fn rebuild(&self, s: &mut SqlStream, widened: &[(usize, ColumnKind)]) -> Result<()> {
        let old: HashMap<usize, ColumnKind> = widened.iter().copied().collect();
        let tmp = format!("_tmp_rebuild_{}", s.target);
        self.conn
            .execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(&tmp)))
            .map_err(self.err("cannot rebuild"))?;
        self.create_table(&tmp, &s.columns.cols)?;
        let mut names = Vec::new();
        let mut exprs = Vec::new();
        for (i, c) in s.columns.cols.iter().enumerate() {
            let q = quote(&c.name);
            let bool_text =
                format!("CASE WHEN {q} IS NULL THEN NULL WHEN {q} THEN 'true' ELSE 'false' END");
            let e = match (old.get(&i), c.kind) {
                (None, _) => q.clone(),
                (Some(ColumnKind::Boolean), ColumnKind::Text | ColumnKind::Json) => bool_text,
                (Some(_), ColumnKind::Real) => format!("CAST({q} AS REAL)"),
                (
                    Some(ColumnKind::Integer | ColumnKind::Real),
                    ColumnKind::Text | ColumnKind::Json,
                ) => {
                    format!("CAST({q} AS TEXT)")
                }
                (Some(_), _) => q.clone(),
            };
            names.push(q);
            exprs.push(e);
        }
        names.push(SYNCED_AT.into());
        exprs.push(SYNCED_AT.into());
        names.push(RUN_ID.into());
        exprs.push(RUN_ID.into());
        self.conn
            .execute_batch(&format!(
                "INSERT INTO {tmp_q} ({}) SELECT {} FROM {t};
                 DROP TABLE {t};
                 ALTER TABLE {tmp_q} RENAME TO {t};",
                names.join(", "),
                exprs.join(", "),
                tmp_q = quote(&tmp),
                t = quote(&s.target),
            ))
            .map_err(self.err(&format!("cannot widen the columns of `{}`", s.target)))?;
        tracing::info!(
            "sqlite: widened {} of table `{}`",
            widened
                .iter()
                .map(|(i, k)| format!(
                    "`{}` from {} to {}",
                    s.columns.cols[*i].name,
                    k.name(),
                    s.columns.cols[*i].kind.name()
                ))
                .collect::<Vec<_>>()
                .join(", "),
            s.target
        );
        s.pk_index = false;
        Ok(())
    }

    fn insert_sql(s: &SqlStream) -> String {
        let mut names: Vec<String> = s.columns.cols.iter().map(|c| quote(&c.name)).collect();
        names.push(SYNCED_AT.into());
        names.push(RUN_ID.into());
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&s.target),
            names.join(", "),
            marks.join(", ")
        );
        if s.upsert()
            && let Some(pk) = s.pk_columns()
        {
            let pk_q: Vec<String> = pk.iter().map(|c| quote(c)).collect();
            let sets: Vec<String> = names
                .iter()
                .filter(|n| !pk_q.contains(n))
                .map(|n| format!("{n} = excluded.{n}"))
                .collect();
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                pk_q.join(", "),
                sets.join(", ")
            ));
        }
        sql
    }

    fn save_stream_meta(&self, s: &SqlStream) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {STREAMS_TABLE} (connector, stream, table_name, primary_key, write_mode, columns, run_id, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (connector, stream) DO UPDATE SET table_name = excluded.table_name,
                       primary_key = excluded.primary_key, write_mode = excluded.write_mode,
                       columns = excluded.columns, run_id = excluded.run_id, updated_at = excluded.updated_at"
                ),
                params![
                    self.connector,
                    s.info.name,
                    s.table,
                    serde_json::to_string(&s.info.primary_key).unwrap_or_default(),
                    s.strategy.as_str(),
                    serde_json::to_string(&s.columns.cols).unwrap_or_default(),
                    self.run_id,
                    schema::now_rfc3339(),
                ],
            )
            .map_err(self.err("cannot write _connector_streams"))?;
        Ok(())
    }

    /// A completed `replace` stream: its staging table becomes the table,
    /// in the transaction that also commits the state saying it completed.
    fn swap(&self, s: &mut SqlStream) -> Result<()> {
        self.conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {t}; ALTER TABLE {st} RENAME TO {t};",
                t = quote(&s.table),
                st = quote(&s.target)
            ))
            .map_err(self.err(&format!("cannot swap in the new `{}`", s.table)))?;
        s.target = s.table.clone();
        self.save_stream_meta(s)
    }

    /// Creates the target table with the columns known so far.
    fn create_target(&self, s: &mut SqlStream) -> Result<()> {
        self.create_table(&s.target, &s.columns.cols)?;
        s.created = true;
        s.insert_sql = None;
        if s.target == s.table {
            s.dirty = true;
        }
        self.ensure_pk_index(s)
    }

    fn finish(&mut self, name: &str, completed: bool) -> Result<()> {
        let Some(mut s) = self.streams.remove(name) else {
            return Ok(());
        };
        if !s.created && (completed || s.strategy != WriteStrategy::Replace) {
            // No records: the table still exists afterwards, empty.
            self.create_target(&mut s)?;
        }
        if s.strategy == WriteStrategy::Replace {
            if completed {
                self.swap(&mut s)?;
            }
        } else if s.dirty {
            self.save_stream_meta(&s)?;
        }
        tracing::debug!(
            "sqlite: stream {name}: {} rows into `{}` in {:.2}s of writing",
            s.rows,
            s.table,
            s.busy.as_secs_f64()
        );
        Ok(())
    }
}

impl Destination for SqliteDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        if self.connector.is_empty() {
            // Opened without a connector name (one connector per file, the
            // default layout): adopt the only connector recorded.
            let names: Vec<String> = {
                let mut stmt = self
                    .conn
                    .prepare(&format!("SELECT connector FROM {STATE_TABLE}"))
                    .map_err(self.err("cannot read _connector_state"))?;
                stmt.query_map([], |r| r.get(0))
                    .map_err(self.err("cannot read _connector_state"))?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(self.err("cannot read _connector_state"))?
            };
            if let [only] = names.as_slice() {
                self.connector = only.clone();
            }
        }
        let text: Option<String> = self
            .conn
            .query_row(
                &format!("SELECT state FROM {STATE_TABLE} WHERE connector = ?1"),
                [&self.connector],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("cannot read _connector_state"))?;
        text.map(|t| State::parse(&t, &format!("in {} ({STATE_TABLE})", self.path.display())))
            .transpose()
    }

    fn check_resume(&self, _stream: &str, resume: &Value) -> std::result::Result<(), String> {
        Position::check(resume)
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        _mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let started = Instant::now();
        let (info, strategy) = sql::prepare(stream, &self.schemas, self.write_mode)?;
        let (table, recorded) = self.table_for(&info.name)?;
        let staging = sql::staging_name(&table);
        let mut opening = sql::opening(
            strategy,
            &table,
            resume,
            recorded,
            self.table_exists(&staging)?,
            self.table_exists(&table)?,
        );
        if let Some(stale) = &opening.drop {
            self.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(stale)))
                .map_err(self.err("cannot drop the old staging table"))?;
        }
        if opening.introspect {
            opening.columns = Some(self.introspect(&table)?);
        }
        let exists = opening.exists;
        let (mut s, declared) = SqlStream::open(info, strategy, table, opening);
        if exists {
            if let (WriteStrategy::Append, Some(pk)) = (s.strategy, s.pk_columns())
                && self.has_unique_index(&s.target, &pk)?
            {
                return Err(append_to_merged(&s));
            }
            self.apply(&mut s, &declared)?;
            self.ensure_pk_index(&mut s)?;
        }
        if recorded_missing(&self.conn, &self.connector, &s.info.name)? {
            self.save_stream_meta(&s)?;
        }
        s.busy += started.elapsed();
        self.streams.insert(s.info.name.clone(), s);
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        self.with_stream(stream, |d, s| d.write_rows(s, records))
    }

    /// Raw records are bound straight from their text where they fit the
    /// table's columns; from the first that does not (a new field, a wider
    /// value), the rest are parsed and written as values.
    fn keeps_raw_json(&self) -> bool {
        true
    }

    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        self.with_stream(stream, |d, s| d.write_raw_rows(s, records))
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        let started = Instant::now();
        let preview = super::is_preview_commit(state, durable);
        for name in std::mem::take(&mut self.closed) {
            let done = super::completed(state, &name);
            self.finish(&name, done)?;
        }
        let dirty: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for name in dirty {
            if let Some(s) = self.streams.get(&name) {
                self.save_stream_meta(s)?;
            }
            if let Some(s) = self.streams.get_mut(&name) {
                s.dirty = false;
            }
        }
        if !preview {
            for (name, s) in &self.streams {
                state.stream(name).destination = Some(s.position());
            }
            let text = serde_json::to_string(state).map_err(std::io::Error::from)?;
            self.conn
                .execute(
                    &format!(
                        "INSERT INTO {STATE_TABLE} (connector, state, run_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (connector) DO UPDATE SET state = excluded.state,
                           run_id = excluded.run_id, updated_at = excluded.updated_at"
                    ),
                    params![self.connector, text, self.run_id, schema::now_rfc3339()],
                )
                .map_err(self.err("cannot write _connector_state"))?;
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(self.err("cannot commit"))?;
        let wal_full = || {
            let mut wal = self.path.clone().into_os_string();
            wal.push("-wal");
            std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_BYTES)
        };
        match &self.checkpointer {
            // synchronous=NORMAL syncs the WAL at checkpoints. A durable
            // commit, and a WAL past its size, checkpoint here, after the
            // background checkpoint under way (SQLite runs one at a time).
            Some(c) if durable || wal_full() => c
                .run_on(&self.conn)
                .map_err(self.err("cannot checkpoint"))?,
            Some(c) => c.committed(),
            None if durable => checkpoint(&self.conn).map_err(self.err("cannot checkpoint"))?,
            None => {}
        }
        self.conn
            .execute_batch("BEGIN")
            .map_err(self.err("cannot begin a transaction"))?;
        self.busy += started.elapsed();
        Ok(())
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        if self.streams.contains_key(stream) {
            self.closed.push(stream.to_string());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

/// Appending to a table merged on its primary key would duplicate keys.
pub(super) fn append_to_merged(s: &SqlStream) -> EngineError {
    EngineError::Destination(format!(
        "table `{}` has a unique index on its primary key ({}): it was written with --write-mode merge or replace, and appending would duplicate keys; use --write-mode merge, or replace",
        s.table,
        s.info.primary_key.join(", ")
    ))
}

fn recorded_missing(conn: &Connection, connector: &str, stream: &str) -> Result<bool> {
    conn.query_row(
        &format!("SELECT 1 FROM {STREAMS_TABLE} WHERE connector = ?1 AND stream = ?2"),
        params![connector, stream],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_none())
    .map_err(|e| EngineError::Destination(format!("sqlite: cannot read _connector_streams: {e}")))
}

impl SqliteDestination {
    /// Runs `f` on an open stream, counting its time as writing.
    fn with_stream(
        &mut self,
        stream: &str,
        f: impl FnOnce(&mut Self, &mut SqlStream) -> Result<()>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut s = self
            .streams
            .remove(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let result = f(self, &mut s);
        s.busy += started.elapsed();
        self.busy += started.elapsed();
        self.streams.insert(stream.to_string(), s);
        result
    }

    fn write_raw_rows(&mut self, s: &mut SqlStream, records: &RawRecords) -> Result<()> {
        // Before the table exists its columns come from values.
        let mut taken = 0;
        if s.created {
            let mut stmt = self.prepare_insert(s)?;
            let what = format!("cannot insert into `{}`", s.target);
            let failed = db_err(&self.path, &what);
            let synced_at = schema::now_rfc3339();
            let mut row = RowCells::default();
            for text in records.iter() {
                if !row.read(text, &s.columns) {
                    break;
                }
                let values = s.columns.cols.iter().zip(row.cells());
                let values = values.map(|(c, cell)| sql_cell(c.kind, cell));
                insert_row(&mut stmt, values, &synced_at, &self.run_id).map_err(&failed)?;
                taken += 1;
            }
            drop(stmt);
            s.rows += taken as u64;
            self.rows += taken as u64;
        }
        if taken == records.len() {
            return Ok(());
        }
        let rest = records
            .iter()
            .skip(taken)
            .map(serde_json::from_slice)
            .collect::<std::result::Result<Vec<Value>, _>>()
            .map_err(|e| EngineError::Destination(format!("stream `{}`: {e}", s.info.name)))?;
        self.write_rows(s, &rest)
    }

    fn write_rows(&mut self, s: &mut SqlStream, records: &[Value]) -> Result<()> {
        let changes = s.columns.fit(records);
        if s.created {
            self.apply(s, &changes)?;
        } else {
            self.create_target(s)?;
        }
        let mut stmt = self.prepare_insert(s)?;
        let what = format!("cannot insert into `{}`", s.target);
        let failed = db_err(&self.path, &what);
        let synced_at = schema::now_rfc3339();
        for r in records {
            let obj = schema::as_object(r);
            let values = s.columns.cols.iter();
            let values = values.map(|c| sql_value(c.kind, obj.get(&c.field)));
            insert_row(&mut stmt, values, &synced_at, &self.run_id).map_err(&failed)?;
        }
        drop(stmt);
        s.rows += records.len() as u64;
        self.rows += records.len() as u64;
        Ok(())
    }

    /// The stream's row insert (its SQL built once per set of columns),
    /// prepared once per connection.
    fn prepare_insert(&self, s: &mut SqlStream) -> Result<rusqlite::CachedStatement<'_>> {
        if s.insert_sql.is_none() {
            s.insert_sql = Some(Self::insert_sql(s));
        }
        let sql = s.insert_sql.clone().unwrap_or_default();
        self.conn
            .prepare_cached(&sql)
            .map_err(self.err(&format!("cannot prepare the insert into `{}`", s.target)))
    }
}

/// Binds a row's column values, then `_synced_at` and `_run_id`, and inserts it.
fn insert_row<'v>(
    stmt: &mut rusqlite::CachedStatement<'_>,
    values: impl Iterator<Item = ToSqlOutput<'v>>,
    synced_at: &str,
    run_id: &str,
) -> rusqlite::Result<()> {
    let mut n = 0;
    for v in values {
        n += 1;
        stmt.raw_bind_parameter(n, v)?;
    }
    stmt.raw_bind_parameter(n + 1, synced_at)?;
    stmt.raw_bind_parameter(n + 2, run_id)?;
    stmt.raw_execute()?;
    Ok(())
}

impl Drop for SqliteDestination {
    fn drop(&mut self) {
        // Whatever was not committed is rolled back when the connection
        // closes: the saved state still matches the rows.
        if self.rows > 0 {
            let secs = self.busy.as_secs_f64();
            tracing::info!(
                "sqlite {}: {} rows in {:.2}s of writing ({:.0} rows/s), {} background checkpoints",
                self.path.display(),
                self.rows,
                secs,
                self.rows as f64 / secs.max(1e-9),
                self.background_checkpoints()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::schema::ColumnKind;

    fn info(name: &str, pk: &[&str]) -> StreamInfo {
        StreamInfo {
            name: name.into(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn opts() -> DestinationOptions {
        DestinationOptions {
            connector: "t".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_wal_is_checkpointed_off_the_writer() {
        let dir = tempfile_dir();
        let path = dir.join("c.db");
        let mut d = SqliteDestination::open(&path, &opts()).unwrap();
        // The writer's own automatic checkpoint waits for 64 MiB of WAL.
        let auto: i64 = d
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            auto as u64 * u64::from(PAGE_SIZE),
            super::super::sqlite_checkpointer::WAL_BYTES
        );
        d.open_stream(&info("s", &["id"]), WriteMode::Replace, None)
            .unwrap();
        let mut state = State::default();
        let text = "x".repeat(2000);
        for page in 0..20 {
            let rows: Vec<Value> = (0..50)
                .map(|i| serde_json::json!({"id": page * 50 + i, "text": text}))
                .collect();
            d.write_batch("s", &rows).unwrap();
            d.commit(&mut state, false).unwrap();
        }
        // Not timed: waits for the thread to have copied every committed
        // page into the database file itself (the writer copied none: 2 MB
        // is far from its 64 MiB).
        let copied = || std::fs::metadata(&path).unwrap().len() > 20 * 50 * 2000;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !copied() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(copied(), "the WAL was not checkpointed");
        assert!(d.background_checkpoints() > 0);
    }

    #[test]
    fn the_wal_stays_under_its_limit_while_checkpoints_run_beside_the_writer() {
        use super::super::sqlite_checkpointer::WAL_BYTES;
        let dir = tempfile_dir();
        let path = dir.join("w.db");
        let wal = dir.join("w.db-wal");
        let mut d = SqliteDestination::open(&path, &opts()).unwrap();
        d.open_stream(&info("s", &["id"]), WriteMode::Replace, None)
            .unwrap();
        let mut state = State::default();
        let text = "y".repeat(16_000);
        let mut largest = 0;
        // 96 MiB of rows, committed a page at a time.
        for page in 0..64 {
            let rows: Vec<Value> = (0..100)
                .map(|i| serde_json::json!({"id": page * 100 + i, "text": text}))
                .collect();
            d.write_batch("s", &rows).unwrap();
            d.commit(&mut state, false).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        // A page's commit may pass the limit before the checkpoint it starts.
        assert!(
            largest <= WAL_BYTES + (4 << 20),
            "the WAL grew to {largest} bytes"
        );
    }

    #[test]
    fn widening_keeps_every_value() {
        let dir = tempfile_dir();
        let path = dir.join("w.db");
        let mut d = SqliteDestination::open(&path, &opts()).unwrap();
        d.open_stream(&info("s", &["id"]), WriteMode::Replace, None)
            .unwrap();
        d.write_batch("s", &[serde_json::json!({"id": 1, "v": 1, "b": true})])
            .unwrap();
        d.write_batch("s", &[serde_json::json!({"id": 2, "v": 2.5, "b": "x"})])
            .unwrap();
        d.write_batch(
            "s",
            &[serde_json::json!({"id": 3, "v": "big", "n": {"a": 1}})],
        )
        .unwrap();
        let s = &d.streams["s"];
        assert_eq!(s.columns.get("v").unwrap().kind, ColumnKind::Text);
        assert_eq!(s.columns.get("b").unwrap().kind, ColumnKind::Text);
        let vals: Vec<(i64, String, Option<String>)> = {
            let mut st = d
                .conn
                .prepare(r#"SELECT id, v, b FROM "s" ORDER BY id"#)
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(
            vals,
            vec![
                (1, "1.0".into(), Some("true".into())),
                (2, "2.5".into(), Some("x".into())),
                (3, "big".into(), None)
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Every row of table `s` but its `_synced_at` and `_run_id`, by id.
    fn rows_of(d: &SqliteDestination) -> Vec<Vec<rusqlite::types::Value>> {
        let cols: Vec<String> = d.streams["s"]
            .columns
            .cols
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let sql = format!(r#"SELECT {} FROM "s" ORDER BY rowid"#, cols.join(", "));
        let mut st = d.conn.prepare(&sql).unwrap();
        st.query_map([], |r| {
            (0..cols.len())
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn raw_records_bound_from_their_text_give_the_rows_values_give() {
        // The first page makes the table; the second fits it with every kind
        // of value its columns hold (bound from cells); the third adds a
        // field halfway (the rest of the page goes as values).
        let pages = [
            vec![
                r#"{"id":1,"x":1.5,"ok":true,"t":"plain","j":{"a":1},"at":"2024-01-02T03:04:05Z","d":"2024-01-02","mix":"s"}"#,
                r#"{"id":2,"j":5,"mix":1}"#,
            ],
            vec![
                r#"{"mix":12,"id":3,"x":3,"ok":null,"t":"tab\t \"q\" é\u00e9 \ud83d\ude00","j":[1,{"b":null}]}"#,
                r#"{"id":4,"x":1e300,"j":true,"at":"2024-01-02T05:04:05.123456+02:00","d":"2023-12-31","mix":true,"zzz":null}"#,
                r#"{"id":5,"x":0.1,"j":2.5,"mix":{"k":"v","n":[1.0]},"t":""}"#,
                r#"{"id":6,"mix":18446744073709551615,"unknown":null}"#,
                r#"{"id":7,"mix":1.0}"#,
            ],
            vec![
                r#"{"id":8,"mix":"y"}"#,
                r#"{"id":9,"mix":"x","extra":2}"#,
                r#"{"id":10,"mix":"z"}"#,
            ],
        ];
        let schema = serde_json::json!({"properties": {
            "at": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
        }});
        let dir = tempfile_dir();
        let open = |name: &str| {
            let mut d = SqliteDestination::open(&dir.join(name), &opts()).unwrap();
            let info = StreamInfo {
                json_schema: Some(schema.clone()),
                ..info("s", &["id"])
            };
            d.open_stream(&info, WriteMode::Replace, None).unwrap();
            d
        };
        let (mut raw, mut parsed) = (open("raw.db"), open("parsed.db"));
        for page in &pages {
            let body = bytes::Bytes::from(format!("[{}]", page.join(",\n  ")));
            let (_, records) = crate::raw_records::split(&body, &[]).unwrap();
            raw.write_raw("s", &records.unwrap()).unwrap();
            let values: Vec<Value> = page
                .iter()
                .map(|r| serde_json::from_str(r).unwrap())
                .collect();
            parsed.write_batch("s", &values).unwrap();
        }
        assert_eq!(
            raw.streams["s"].columns.cols,
            parsed.streams["s"].columns.cols
        );
        let rows = rows_of(&raw);
        assert_eq!(rows.len(), 10);
        assert_eq!(rows, rows_of(&parsed));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cr-sqlite-{}", schema::new_run_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
