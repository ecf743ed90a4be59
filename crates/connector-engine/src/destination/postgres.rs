//! `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME`: one table per
//! stream in the schema (created if missing, default `public`), laid out as
//! in [`super::sql`]. TLS as libpq does it (`sslmode`, `sslrootcert`), over
//! rustls: see [`super::postgres_tls`].
//!
//! Types: `BIGINT`, `DOUBLE PRECISION`, `BOOLEAN`, `TEXT`, and `JSONB` for
//! nested objects and arrays; `_synced_at` is `TIMESTAMPTZ`. New fields add
//! columns, wider values `ALTER COLUMN … TYPE` (converting the rows).
//! Batches are `COPY … FROM STDIN` (text format) straight into the table.
//! Upserts too, until a key already in the table refuses one (the unique
//! index says so); from then on the stream's batches go into a temporary
//! staging table followed by one `INSERT … SELECT … ON CONFLICT`. Each batch
//! is in a savepoint so a failing stream does not abort the others'
//! transaction; [`Destination::commit`] writes the run state into
//! `_connector_state` and commits, so records and state land together.
//!
//! The driver is async; the destination runs it on a thread of its own (with
//! its own small runtime), so the synchronous [`Destination`] calls work from
//! inside the sync's runtime. Batches and commits are queued to that thread
//! and the sync reads on: it runs at most [`COMMITS_AHEAD`] commits ahead,
//! and the thread commits only the last commit queued, so the server sees
//! one transaction for the pages that arrived while it wrote. A batch the
//! server refuses fails its stream at the stream's next call, and later
//! commits keep that stream's state as it was before that batch. The
//! password never appears in errors or logs.

use super::postgres_tls::{self, MakeRustls, RootCert, SslMode};
use super::schema::{self, Column, ColumnKind, Columns};
use super::sql::{
    self, Position, RUN_ID, STATE_TABLE, STREAMS_TABLE, SYNCED_AT, SqlStream, TABLE_NAME_MAX, quote,
};
use super::{Destination, DestinationOptions, PostgresUri, StreamInfo, WriteMode, WriteStrategy};
use crate::error::{EngineError, Result};
use crate::secret::Redactor;
use crate::state::State;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

type Reply<T> = mpsc::SyncSender<Result<T>>;

/// Commits the sync may run ahead of the worker (so pages in memory). The
/// worker commits only the last of those queued: one transaction for the
/// pages that arrived while it wrote, in place of one per page.
const COMMITS_AHEAD: usize = 4;

/// Why a batch was not written.
enum WriteFailure {
    /// A direct `COPY` met a key already in the table.
    KeyTaken,
    Failed(EngineError),
}

impl From<EngineError> for WriteFailure {
    fn from(e: EngineError) -> Self {
        WriteFailure::Failed(e)
    }
}

enum Msg {
    LoadState(Reply<Option<State>>),
    Open(Box<StreamInfo>, WriteMode, Option<Value>, Reply<()>),
    /// A stream's batch and which of its writes it is: no reply; a failure
    /// is kept in [`Failed`] for the stream.
    Write(String, u64, Vec<Value>),
    Commit(Box<State>, bool, Reply<()>),
    Close(String, Reply<()>),
}

pub struct PostgresDestination {
    shown: String,
    tx: Option<mpsc::Sender<Msg>>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// Streams whose batch failed on the worker.
    failed: Failed,
    /// Each open stream's writes so far.
    writes: HashMap<String, u64>,
    /// The replies of the commits the worker has not finished, oldest first.
    in_flight: std::collections::VecDeque<mpsc::Receiver<Result<()>>>,
    /// A commit failed: the transaction is gone and every later call fails.
    broken: Option<String>,
}

/// The first error of each stream whose batch failed on the worker, with
/// which of the stream's writes it was. Its later batches are skipped, and
/// commits keep its state as before that batch, so the saved position never
/// passes records that did not land.
type Failed = std::sync::Arc<std::sync::Mutex<HashMap<String, (u64, String)>>>;

fn pg_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Integer => "bigint",
        ColumnKind::Real => "double precision",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Text => "text",
        ColumnKind::Json => "jsonb",
        ColumnKind::Timestamp => "timestamptz",
        ColumnKind::Date => "date",
    }
}

/// A value as the text Postgres casts into a column of `kind`.
fn pg_text(kind: ColumnKind, v: Option<&Value>) -> Option<String> {
    let v = v.filter(|v| !v.is_null())?;
    Some(match (kind, v) {
        (ColumnKind::Json, v) => v.to_string(),
        // An offset-less value is UTC, whatever the session's time zone.
        (ColumnKind::Timestamp, Value::String(t)) => {
            schema::timestamp_text(t).unwrap_or_else(|| t.clone())
        }
        (_, Value::String(s)) if s.contains('\0') => s.replace('\0', "\u{fffd}"),
        (_, v) => schema::text_of(v),
    })
}

/// One field of `COPY`'s text format: `\N` for `NULL`, else the text with
/// backslash, tab, newline and carriage return escaped.
fn copy_field(buf: &mut Vec<u8>, v: Option<&str>) {
    let Some(v) = v else {
        buf.extend_from_slice(b"\\N");
        return;
    };
    let bytes = v.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(esc);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// An error's whole chain (the driver's `Display` alone says "db error").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

impl PostgresDestination {
    /// Connects, creates the schema and metadata tables, and begins the
    /// first transaction.
    pub fn connect(uri: &PostgresUri, opts: &DestinationOptions) -> Result<PostgresDestination> {
        let redactor = Redactor::from_values(uri.password.iter().cloned().collect());
        let shown = uri.shown().to_string();
        let mut config: tokio_postgres::Config = uri.conn.parse().map_err(|e| {
            EngineError::Destination(
                redactor.redact(&format!("{shown}: {}", chain(&e as &dyn std::error::Error))),
            )
        })?;
        let mode = match uri.sslmode.as_deref() {
            Some(m) => SslMode::parse(m).ok_or_else(|| {
                EngineError::Destination(format!("{shown}: sslmode={m} is not a libpq sslmode"))
            })?,
            None => SslMode::Prefer,
        };
        let rootcert = uri.sslrootcert.as_deref().map(RootCert::parse);
        config.ssl_mode(mode.driver());
        let tls = postgres_tls::client_config(mode, rootcert.as_ref())
            .map_err(|e| EngineError::Destination(format!("{shown}: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            // Names this process to a second run that finds the lock taken.
            config.application_name(format!("connector-run/{}", std::process::id()));
        }
        let (tx, rx) = mpsc::channel::<Msg>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => String::new(),
        };
        let roots = match &rootcert {
            Some(RootCert::File(p)) => p.display().to_string(),
            Some(RootCert::System) => "the system's roots".to_string(),
            None => "~/.postgresql/root.crt".to_string(),
        };
        let setup = Setup {
            config,
            tls: MakeRustls(tls),
            tls_context: (host, roots),
            schema: uri.schema.clone(),
            shown: shown.clone(),
            redactor,
            connector: opts.connector.clone(),
            write_mode: opts.write_mode,
            schemas: opts.schemas.clone(),
        };
        let failed = Failed::default();
        let worker = std::thread::Builder::new()
            .name("postgres-destination".into())
            .spawn({
                let failed = failed.clone();
                move || worker(setup, rx, ready_tx, failed)
            })
            .map_err(|e| EngineError::Destination(format!("cannot start a thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PostgresDestination {
                shown,
                tx: Some(tx),
                worker: Some(worker),
                failed,
                writes: HashMap::new(),
                in_flight: Default::default(),
                broken: None,
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => {
                let _ = worker.join();
                Err(EngineError::Destination(format!(
                    "{shown}: the connection thread stopped"
                )))
            }
        }
    }

    fn gone(&self) -> EngineError {
        EngineError::Destination(format!("{}: the connection is gone", self.shown))
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| self.gone())?
            .send(msg)
            .map_err(|_| self.gone())
    }

    /// Sends a request and waits for its answer: everything sent before it
    /// has then been done.
    fn call<T>(&mut self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T> {
        self.settle()?;
        let (reply, wait) = mpsc::sync_channel(1);
        self.send(make(reply))?;
        wait.recv().map_err(|_| self.gone())?
    }

    /// Waits until at most `keep` commits are unfinished; a failed commit
    /// breaks the destination.
    fn settle_to(&mut self, keep: usize) -> Result<()> {
        self.unbroken()?;
        while self.in_flight.len() > keep {
            let Some(wait) = self.in_flight.pop_front() else {
                break;
            };
            if let Err(e) = wait.recv().map_err(|_| self.gone())? {
                self.broken = Some(e.to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Waits for every commit sent.
    fn settle(&mut self) -> Result<()> {
        self.settle_to(0)
    }

    /// The failed commit that broke the destination, if one did.
    fn unbroken(&self) -> Result<()> {
        match &self.broken {
            Some(b) => Err(EngineError::Destination(b.clone())),
            None => Ok(()),
        }
    }

    /// The failure of an earlier batch of `stream`, if one failed.
    fn check(&self, stream: &str) -> Result<()> {
        match self.failed.lock().unwrap().get(stream) {
            Some((batch, message)) => Err(EngineError::EarlierBatch {
                batch: *batch,
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl Destination for PostgresDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        self.call(Msg::LoadState)
    }

    fn check_resume(&self, _stream: &str, resume: &Value) -> std::result::Result<(), String> {
        Position::check(resume)
    }

    fn open_stream(
        &mut self,
        stream: &StreamInfo,
        mode: WriteMode,
        resume: Option<&Value>,
    ) -> Result<()> {
        let (info, resume) = (Box::new(stream.clone()), resume.cloned());
        self.writes.insert(stream.name.clone(), 0);
        self.call(|r| Msg::Open(info, mode, resume, r))
    }

    /// Queues the batch: the worker writes it while the sync goes on. A
    /// failure is reported by the stream's next batch, or its close.
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        self.write_owned(stream, records.to_vec())
    }

    fn write_owned(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        self.unbroken()?;
        self.check(stream)?;
        let n = self.writes.entry(stream.to_string()).or_default();
        *n += 1;
        let n = *n;
        self.send(Msg::Write(stream.to_string(), n, records))
    }

    /// Queues a commit; the worker stays at most [`COMMITS_AHEAD`] commits
    /// behind the sync, and a durable commit waits for itself. Records and
    /// state still commit in one transaction: a crash loses the commits in
    /// flight, records and state together, and the saved state resumes.
    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        self.settle_to(COMMITS_AHEAD - 1)?;
        let (reply, wait) = mpsc::sync_channel(1);
        self.send(Msg::Commit(Box::new(state.clone()), durable, reply))?;
        self.in_flight.push_back(wait);
        if durable {
            self.settle()?;
        }
        Ok(())
    }

    fn close_stream(&mut self, stream: &str) -> Result<()> {
        let name = stream.to_string();
        self.call(|r| Msg::Close(name, r))?;
        // Every batch of the stream has been tried by now.
        self.check(stream)
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

impl Drop for PostgresDestination {
    fn drop(&mut self) {
        // Closing the connection rolls back whatever was not committed.
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

struct Setup {
    config: tokio_postgres::Config,
    tls: MakeRustls,
    /// The host name the certificate must hold, and where the roots are.
    tls_context: (String, String),
    schema: String,
    shown: String,
    redactor: Redactor,
    connector: String,
    write_mode: Option<WriteStrategy>,
    schemas: BTreeMap<String, Value>,
}

fn worker(
    setup: Setup,
    rx: mpsc::Receiver<Msg>,
    ready: mpsc::SyncSender<Result<()>>,
    failed: Failed,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Destination(format!(
                "cannot start the postgres runtime: {e}"
            ))));
            return;
        }
    };
    let mut pg = match rt.block_on(Pg::connect(setup)) {
        Ok(pg) => {
            let _ = ready.send(Ok(()));
            pg
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // The state of the latest commit taken off the queue (committed or
    // covered): it describes every batch written before it.
    let mut last_seen = State::default();
    // What each failed stream's state stays at: as it was before its failed
    // batch (None: as it was before this run).
    let mut kept: HashMap<String, Option<crate::state::StreamState>> = HashMap::new();
    let mut positions: HashMap<String, Value> = HashMap::new();
    let mut queue: std::collections::VecDeque<Msg> = Default::default();
    // Replies of commits that a later queued commit covers.
    let mut covered: Vec<Reply<()>> = Vec::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(m) => queue.push_back(m),
                Err(_) => break,
            }
        }
        queue.extend(rx.try_iter());
        let Some(msg) = queue.pop_front() else {
            continue;
        };
        if matches!(msg, Msg::Commit(_, false, _))
            && queue.iter().any(|m| matches!(m, Msg::Commit(..)))
        {
            // The later commit's state covers this one's records too.
            if let Msg::Commit(state, _, r) = msg {
                last_seen = *state;
                covered.push(r);
            }
            continue;
        }
        rt.block_on(async {
            match msg {
                Msg::LoadState(r) => {
                    let loaded = pg.load_state().await;
                    if let Ok(Some(s)) = &loaded {
                        last_seen = s.clone();
                    }
                    let _ = r.send(loaded);
                }
                Msg::Open(info, mode, resume, r) => {
                    let _ = r.send(pg.open(*info, mode, resume).await);
                }
                Msg::Write(name, batch, records) => {
                    if failed.lock().unwrap().contains_key(&name) {
                        return; // a batch after one that failed never lands
                    }
                    if let Err(e) = pg.write(&name, &records).await {
                        kept.insert(name.clone(), last_seen.streams.get(&name).cloned());
                        let message = match e {
                            EngineError::Destination(m) => m,
                            other => other.to_string(),
                        };
                        failed.lock().unwrap().insert(name, (batch, message));
                    }
                }
                Msg::Commit(mut state, durable, r) => {
                    // A stream whose batch failed keeps the state that
                    // describes the batches before it: its position never
                    // passes the failed batch, nor stops short of the others.
                    for (name, ss) in &kept {
                        match ss {
                            Some(ss) => state.streams.insert(name.clone(), ss.clone()),
                            None => state.streams.remove(name),
                        };
                    }
                    // A closed stream keeps the position it last had.
                    for (name, pos) in &positions {
                        if let Some(ss) = state.streams.get_mut(name)
                            && ss.in_progress
                            && !pg.streams.contains_key(name)
                        {
                            ss.destination = Some(pos.clone());
                        }
                    }
                    let res = pg.commit(&mut state, durable).await;
                    for c in covered.drain(..) {
                        let _ = c.send(match &res {
                            Ok(()) => Ok(()),
                            Err(e) => Err(EngineError::Destination(e.to_string())),
                        });
                    }
                    if res.is_ok() {
                        for name in pg.streams.keys() {
                            if let Some(p) =
                                state.streams.get(name).and_then(|s| s.destination.clone())
                            {
                                positions.insert(name.clone(), p);
                            }
                        }
                        last_seen = *state;
                    }
                    let _ = r.send(res);
                }
                Msg::Close(name, r) => {
                    if pg.streams.contains_key(&name) {
                        pg.closed.push(name);
                    }
                    let _ = r.send(Ok(()));
                }
            }
        });
    }
    // What was not committed is rolled back; then the lock is released
    // before this process ends, so a run started right after finds it free
    // (the server drops a closed session's locks only once its backend has
    // noticed), and the session ends in order.
    rt.block_on(async {
        let _ = pg
            .client
            .batch_execute("ROLLBACK; SELECT pg_advisory_unlock_all()")
            .await;
    });
    let Pg {
        client,
        connection,
        rows,
        busy,
        shown,
        ..
    } = pg;
    drop(client);
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), connection).await });
    if rows > 0 {
        tracing::info!(
            "{shown}: {rows} rows in {:.2}s of writing",
            busy.as_secs_f64()
        );
    }
}

struct Pg {
    client: Client,
    /// The task driving the connection; it ends once the client is dropped
    /// and the server told.
    connection: tokio::task::JoinHandle<()>,
    schema: String,
    shown: String,
    redactor: Redactor,
    connector: String,
    run_id: String,
    write_mode: Option<WriteStrategy>,
    schemas: BTreeMap<String, Value>,
    streams: HashMap<String, SqlStream>,
    closed: Vec<String>,
    rows: u64,
    busy: Duration,
    /// The last batch's savepoint is still to be released (a commit
    /// releases it too).
    release_pending: std::cell::Cell<bool>,
}

impl Pg {
    async fn connect(setup: Setup) -> Result<Pg> {
        let Setup {
            config,
            tls,
            tls_context,
            schema,
            shown,
            redactor,
            connector,
            write_mode,
            schemas,
        } = setup;
        let (client, connection) = config.connect(tls).await.map_err(|e| {
            let why = postgres_tls::explain(&e, &tls_context.0, &tls_context.1)
                .unwrap_or_else(|| chain(&e));
            EngineError::Destination(redactor.redact(&format!("cannot connect to {shown}: {why}")))
        })?;
        let shown_bg = shown.clone();
        let redactor_bg = redactor.clone();
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(
                    "{}",
                    redactor_bg.redact(&format!("{shown_bg}: connection lost: {}", chain(&e)))
                );
            }
        });
        let pg = Pg {
            client,
            connection,
            schema,
            shown,
            redactor,
            connector,
            run_id: schema::new_run_id(),
            write_mode,
            schemas,
            streams: HashMap::new(),
            closed: Vec::new(),
            rows: 0,
            busy: Duration::ZERO,
            release_pending: Default::default(),
        };
        pg.lock().await?;
        let s = quote(&pg.schema);
        // Only create a missing schema: a user may write to a schema it
        // cannot create.
        let exists = pg
            .client
            .query_opt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[&pg.schema],
            )
            .await
            .map_err(|e| pg.err("cannot read the catalog", &e))?
            .is_some();
        if !exists {
            pg.batch(
                &format!("CREATE SCHEMA IF NOT EXISTS {s}"),
                &format!("cannot create schema `{}`", pg.schema),
            )
            .await?;
        }
        pg.batch(
            &format!(
                "CREATE TABLE IF NOT EXISTS {s}.{STATE_TABLE} (
                   connector TEXT PRIMARY KEY, state JSONB NOT NULL,
                   run_id TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
                 CREATE TABLE IF NOT EXISTS {s}.{STREAMS_TABLE} (
                   connector TEXT NOT NULL, stream TEXT NOT NULL, table_name TEXT NOT NULL,
                   primary_key JSONB NOT NULL, write_mode TEXT NOT NULL, columns JSONB NOT NULL,
                   run_id TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
                   PRIMARY KEY (connector, stream));"
            ),
            "cannot create the schema and metadata tables",
        )
        .await?;
        // Timestamps read back (and widen to text) as UTC.
        pg.batch("SET TIME ZONE 'UTC'; BEGIN", "cannot begin a transaction")
            .await?;
        Ok(pg)
    }

    /// One run per connector and schema: a session-level advisory lock,
    /// released by the server when the connection ends, however it ends.
    async fn lock(&self) -> Result<()> {
        let key = crate::record_key::stable_hash(&format!(
            "connector-run:{}:{}",
            self.schema, self.connector
        ));
        let (hi, lo) = (
            u32::from_str_radix(&key[..8], 16).unwrap_or(0) as i32,
            u32::from_str_radix(&key[8..16], 16).unwrap_or(0) as i32,
        );
        let got: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&hi, &lo])
            .await
            .map_err(|e| self.err("cannot take the advisory lock", &e))?
            .get(0);
        if got {
            return Ok(());
        }
        let holder: Option<String> = self
            .client
            .query_opt(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.classid::int4 = $1 AND l.objid::int4 = $2 AND l.granted
                 LIMIT 1",
                &[&hi, &lo],
            )
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0));
        let by = match holder
            .as_deref()
            .and_then(|a| a.strip_prefix("connector-run/"))
        {
            Some(pid) => format!("another run (pid {pid})"),
            None => "another run".to_string(),
        };
        Err(EngineError::Locked(format!(
            "{} (schema `{}`, connector `{}`) is being synced by {by}; wait for it to finish",
            self.shown, self.schema, self.connector
        )))
    }

    fn err(&self, what: &str, e: &tokio_postgres::Error) -> EngineError {
        EngineError::Destination(self.redactor.redact(&format!(
            "{}: {what}: {}",
            self.shown,
            chain(e)
        )))
    }

    async fn batch(&self, sql: &str, what: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| self.err(what, &e))
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{}", quote(&self.schema), quote(table))
    }

    async fn table_exists(&self, table: &str) -> Result<bool> {
        let row = self
            .client
            .query_opt(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                &[&self.schema, &table],
            )
            .await
            .map_err(|e| self.err("cannot read the catalog", &e))?;
        Ok(row.is_some())
    }

    async fn load_state(&mut self) -> Result<Option<State>> {
        let st = self.t(STATE_TABLE);
        if self.connector.is_empty() {
            let rows = self
                .client
                .query(&format!("SELECT connector FROM {st}"), &[])
                .await
                .map_err(|e| self.err("cannot read _connector_state", &e))?;
            if let [only] = rows.as_slice() {
                self.connector = only.get(0);
            }
        }
        let row = self
            .client
            .query_opt(
                &format!("SELECT state::text FROM {st} WHERE connector = $1"),
                &[&self.connector],
            )
            .await
            .map_err(|e| self.err("cannot read _connector_state", &e))?;
        row.map(|r| {
            let text: String = r.get(0);
            State::parse(&text, &format!("in {} ({STATE_TABLE})", self.shown))
        })
        .transpose()
    }

    async fn table_for(&self, stream: &str) -> Result<(String, Option<Vec<Column>>, bool)> {
        let meta = self.t(STREAMS_TABLE);
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT table_name, columns::text FROM {meta} WHERE connector = $1 AND stream = $2"
                ),
                &[&self.connector, &stream],
            )
            .await
            .map_err(|e| self.err("cannot read _connector_streams", &e))?;
        if let Some(r) = row {
            let cols: String = r.get(1);
            return Ok((r.get(0), serde_json::from_str(&cols).ok(), true));
        }
        let base = schema::table_name(stream, TABLE_NAME_MAX);
        let mut name = base.clone();
        let mut n = 2;
        loop {
            let recorded = self
                .client
                .query_opt(
                    &format!("SELECT 1 FROM {meta} WHERE table_name = $1"),
                    &[&name],
                )
                .await
                .map_err(|e| self.err("cannot read _connector_streams", &e))?
                .is_some();
            if !recorded && !self.table_exists(&name).await? {
                return Ok((name, None, false));
            }
            name = format!("{base}_{n}");
            n += 1;
        }
    }

    async fn introspect(&self, table: &str) -> Result<Vec<Column>> {
        let rows = self
            .client
            .query(
                "SELECT column_name, data_type FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&self.schema, &table],
            )
            .await
            .map_err(|e| self.err("cannot read the catalog", &e))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let name: String = r.get(0);
                let ty: String = r.get(1);
                if name == SYNCED_AT || name == RUN_ID {
                    return None;
                }
                let kind = match ty.as_str() {
                    "bigint" | "integer" | "smallint" => ColumnKind::Integer,
                    "double precision" | "real" | "numeric" => ColumnKind::Real,
                    "boolean" => ColumnKind::Boolean,
                    "jsonb" | "json" => ColumnKind::Json,
                    "timestamp with time zone" => ColumnKind::Timestamp,
                    "date" => ColumnKind::Date,
                    _ => ColumnKind::Text,
                };
                Some(Column {
                    field: name.clone(),
                    name,
                    kind,
                })
            })
            .collect())
    }

    async fn create_table(&self, table: &str, cols: &[Column]) -> Result<()> {
        let mut defs: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), pg_type(c.kind)))
            .collect();
        defs.push(format!("{SYNCED_AT} TIMESTAMPTZ NOT NULL"));
        defs.push(format!("{RUN_ID} TEXT NOT NULL"));
        self.batch(
            &format!("CREATE TABLE {} ({})", self.t(table), defs.join(", ")),
            &format!("cannot create table `{table}`"),
        )
        .await
    }

    async fn ensure_pk_index(&self, s: &mut SqlStream) -> Result<()> {
        if s.pk_index || s.strategy == WriteStrategy::Append {
            return Ok(());
        }
        let Some(pk) = s.pk_columns() else {
            return Ok(());
        };
        let cols: Vec<String> = pk.iter().map(|c| quote(c)).collect();
        self.client
            .batch_execute(&format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
                quote(&format!("{}__pk", s.target)),
                self.t(&s.target),
                cols.join(", ")
            ))
            .await
            .map_err(|e| {
                self.err(
                    &format!(
                        "cannot index table `{}` on its primary key ({}) (rows with the same key were written before, by --write-mode append?)",
                        s.target,
                        s.info.primary_key.join(", ")
                    ),
                    &e,
                )
            })?;
        s.pk_index = true;
        s.insert_sql = None;
        Ok(())
    }

    async fn apply(&self, s: &mut SqlStream, changes: &schema::Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut alters = Vec::new();
        for &i in &changes.added {
            let c = &s.columns.cols[i];
            alters.push(format!("ADD COLUMN {} {}", quote(&c.name), pg_type(c.kind)));
        }
        for &(i, old) in &changes.widened {
            let c = &s.columns.cols[i];
            let q = quote(&c.name);
            let using = match (old, c.kind) {
                (_, ColumnKind::Json) => format!("to_jsonb({q})"),
                // ISO 8601 text (the session is in UTC), not DateStyle's.
                (ColumnKind::Timestamp | ColumnKind::Date, _) => {
                    format!("to_jsonb({q}) #>> '{{}}'")
                }
                (_, kind) => format!("{q}::{}", pg_type(kind)),
            };
            alters.push(format!(
                "ALTER COLUMN {q} TYPE {} USING {using}",
                pg_type(c.kind)
            ));
            tracing::info!(
                "{}: widened `{}` of table `{}` from {} to {}",
                self.shown,
                c.name,
                s.target,
                old.name(),
                c.kind.name()
            );
        }
        self.batch(
            &format!("ALTER TABLE {} {}", self.t(&s.target), alters.join(", ")),
            &format!("cannot change the columns of `{}`", s.target),
        )
        .await?;
        if s.target == s.table {
            s.dirty = true;
        }
        s.insert_sql = None;
        self.ensure_pk_index(s).await
    }

    async fn save_stream_meta(&self, s: &SqlStream) -> Result<()> {
        let pk = serde_json::to_string(&s.info.primary_key).unwrap_or_default();
        let cols = serde_json::to_string(&s.columns.cols).unwrap_or_default();
        let now = schema::now_rfc3339();
        self.client
            .execute(
                &format!(
                    "INSERT INTO {} (connector, stream, table_name, primary_key, write_mode, columns, run_id, updated_at)
                     VALUES ($1, $2, $3, $4::text::jsonb, $5, $6::text::jsonb, $7, $8::text::timestamptz)
                     ON CONFLICT (connector, stream) DO UPDATE SET table_name = excluded.table_name,
                       primary_key = excluded.primary_key, write_mode = excluded.write_mode,
                       columns = excluded.columns, run_id = excluded.run_id, updated_at = excluded.updated_at",
                    self.t(STREAMS_TABLE)
                ),
                &[
                    &self.connector,
                    &s.info.name,
                    &s.table,
                    &pk,
                    &s.strategy.as_str(),
                    &cols,
                    &self.run_id,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.err("cannot write _connector_streams", &e))?;
        Ok(())
    }

    async fn open(
        &mut self,
        info: StreamInfo,
        _mode: WriteMode,
        resume: Option<Value>,
    ) -> Result<()> {
        let (info, strategy) = sql::prepare(&info, &self.schemas, self.write_mode)?;
        let (table, recorded, has_meta) = self.table_for(&info.name).await?;
        let staging = sql::staging_name(&table);
        let mut opening = sql::opening(
            strategy,
            &table,
            resume.as_ref(),
            recorded,
            self.table_exists(&staging).await?,
            self.table_exists(&table).await?,
        );
        if let Some(stale) = &opening.drop {
            self.batch(
                &format!("DROP TABLE IF EXISTS {}", self.t(stale)),
                "cannot drop the old staging table",
            )
            .await?;
        }
        if opening.introspect {
            opening.columns = Some(self.introspect(&table).await?);
        }
        let exists = opening.exists;
        let (mut s, declared) = SqlStream::open(info, strategy, table, opening);
        if exists {
            if s.strategy == WriteStrategy::Append && !s.info.primary_key.is_empty() {
                let index = self
                    .client
                    .query_opt(
                        "SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexname = $3",
                        &[&self.schema, &s.target, &format!("{}__pk", s.target)],
                    )
                    .await
                    .map_err(|e| self.err("cannot read the catalog", &e))?;
                if index.is_some() {
                    return Err(super::sqlite::append_to_merged(&s));
                }
            }
            self.apply(&mut s, &declared).await?;
            self.ensure_pk_index(&mut s).await?;
        }
        if !has_meta {
            self.save_stream_meta(&s).await?;
        }
        self.streams.insert(s.info.name.clone(), s);
        Ok(())
    }

    async fn write(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        let started = Instant::now();
        let mut s = self
            .streams
            .remove(stream)
            .ok_or_else(|| EngineError::Destination(format!("stream `{stream}` is not open")))?;
        let mut res = self.write_in_savepoint(&mut s, records).await;
        if matches!(res, Err(WriteFailure::KeyTaken)) {
            // A key is already in the table: this batch, and the stream's
            // next ones, upsert through the staging table.
            s.copy_direct = false;
            res = self.write_in_savepoint(&mut s, records).await;
        }
        let res = res.map_err(|e| match e {
            WriteFailure::Failed(e) => e,
            // Only a direct COPY reports this, and the retry was not one.
            WriteFailure::KeyTaken => EngineError::Destination(format!(
                "postgres: stream `{stream}`: a key already in the table refused the batch"
            )),
        });
        if res.is_ok() {
            s.rows += records.len() as u64;
            self.rows += records.len() as u64;
        }
        s.busy += started.elapsed();
        self.busy += started.elapsed();
        self.streams.insert(stream.to_string(), s);
        res
    }

    /// Writes one batch in a savepoint; on failure the table and the
    /// stream's columns are as they were before it.
    async fn write_in_savepoint(
        &self,
        s: &mut SqlStream,
        records: &[Value],
    ) -> std::result::Result<(), WriteFailure> {
        let before: Columns = s.columns.clone();
        let (pk_index, dirty, created) = (s.pk_index, s.dirty, s.created);
        // The last batch's savepoint is released in the same message, and
        // the savepoint goes out together with the batch's first statement
        // (the driver pipelines requests polled together): one round trip
        // per batch instead of three.
        let savepoint = if self.release_pending.replace(false) {
            "RELEASE SAVEPOINT batch; SAVEPOINT batch"
        } else {
            "SAVEPOINT batch"
        };
        let (started, res) = futures_util::future::join(
            self.batch(savepoint, "cannot start a savepoint"),
            self.write_rows(s, records),
        )
        .await;
        started?;
        match &res {
            Ok(()) => self.release_pending.set(true),
            Err(_) => {
                self.batch(
                    "ROLLBACK TO SAVEPOINT batch",
                    "cannot roll back a savepoint",
                )
                .await?;
                s.columns = before;
                s.pk_index = pk_index;
                s.dirty = dirty;
                s.created = created;
                s.insert_sql = None;
                s.stage = None;
                self.release_pending.set(true);
            }
        }
        res
    }

    async fn write_rows(
        &self,
        s: &mut SqlStream,
        records: &[Value],
    ) -> std::result::Result<(), WriteFailure> {
        let changes = s.columns.fit(records);
        if s.created {
            self.apply(s, &changes).await?;
        } else {
            self.create_target(s).await?;
        }
        if records.is_empty() {
            return Ok(());
        }
        let upsert = s.upsert();
        let rows: Vec<&Value> = if upsert {
            sql::last_per_key(records, &s.info.primary_key)
        } else {
            records.iter().collect()
        };
        let mut names: Vec<String> = s.columns.cols.iter().map(|c| quote(&c.name)).collect();
        names.push(SYNCED_AT.into());
        names.push(RUN_ID.into());
        let mut casts: Vec<&str> = s.columns.cols.iter().map(|c| pg_type(c.kind)).collect();
        casts.push("timestamptz");
        casts.push("text");
        let conflict = match (upsert, s.pk_columns()) {
            (true, Some(pk)) => {
                let pk_q: Vec<String> = pk.iter().map(|c| quote(c)).collect();
                let sets: Vec<String> = names
                    .iter()
                    .filter(|n| !pk_q.contains(n))
                    .map(|n| format!("{n} = excluded.{n}"))
                    .collect();
                format!(
                    " ON CONFLICT ({}) DO UPDATE SET {}",
                    pk_q.join(", "),
                    sets.join(", ")
                )
            }
            _ => String::new(),
        };
        let synced_at = schema::now_rfc3339();
        let cols = names.join(", ");
        let target = self.t(&s.target);
        let copy_failed =
            |e: &tokio_postgres::Error| self.err(&format!("cannot copy into `{}`", s.target), e);
        if conflict.is_empty() || s.copy_direct {
            // An upsert into keys not yet in the table is a plain COPY (about
            // half the server's work); the unique index says when it is not.
            return match self.copy_rows(s, &target, &cols, &rows, &synced_at).await {
                Err(e) if !conflict.is_empty() && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(WriteFailure::KeyTaken)
                }
                Err(e) => Err(copy_failed(&e).into()),
                Ok(()) => Ok(()),
            };
        }
        // An upsert: COPY into a temporary table shaped like the target,
        // then one INSERT … ON CONFLICT from it.
        let stage = quote(&format!("_stage_{}", s.target));
        let shape = format!("{target} {cols} {}", casts.join(","));
        if s.stage.as_deref() != Some(shape.as_str()) {
            self.batch(
                &format!(
                    "DROP TABLE IF EXISTS pg_temp.{stage}; CREATE TEMP TABLE {stage} (LIKE {target})"
                ),
                &format!("cannot create a staging table for `{}`", s.target),
            )
            .await?;
            s.stage = Some(shape);
        }
        self.copy_rows(s, &format!("pg_temp.{stage}"), &cols, &rows, &synced_at)
            .await
            .map_err(|e| copy_failed(&e))?;
        Ok(self.batch(
            &format!(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM pg_temp.{stage}{conflict}; TRUNCATE pg_temp.{stage}"
            ),
            &format!("cannot insert into `{}`", s.target),
        )
        .await?)
    }

    /// `COPY … FROM STDIN` (text format) of `rows` into `table`, with the
    /// stream's columns, `_synced_at` and `_run_id`.
    async fn copy_rows(
        &self,
        s: &SqlStream,
        table: &str,
        cols: &str,
        rows: &[&Value],
        synced_at: &str,
    ) -> std::result::Result<(), tokio_postgres::Error> {
        use futures_util::SinkExt as _;
        let mut buf: Vec<u8> = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            let obj = schema::as_object(r);
            for c in &s.columns.cols {
                copy_field(&mut buf, pg_text(c.kind, obj.get(&c.field)).as_deref());
                buf.push(b'\t');
            }
            copy_field(&mut buf, Some(synced_at));
            buf.push(b'\t');
            copy_field(&mut buf, Some(&self.run_id));
            buf.push(b'\n');
        }
        let sink = self
            .client
            .copy_in::<_, bytes::Bytes>(&format!("COPY {table} ({cols}) FROM STDIN"))
            .await?;
        let mut sink = std::pin::pin!(sink);
        sink.send(bytes::Bytes::from(buf)).await?;
        sink.as_mut().finish().await?;
        Ok(())
    }

    /// Creates the target table with the columns known so far.
    async fn create_target(&self, s: &mut SqlStream) -> Result<()> {
        self.create_table(&s.target, &s.columns.cols).await?;
        s.created = true;
        s.insert_sql = None;
        if s.target == s.table {
            s.dirty = true;
        }
        self.ensure_pk_index(s).await
    }

    async fn finish(&mut self, name: &str, completed: bool) -> Result<()> {
        let Some(mut s) = self.streams.remove(name) else {
            return Ok(());
        };
        if !s.created && (completed || s.strategy != WriteStrategy::Replace) {
            // No records: the table still exists afterwards, empty.
            self.create_target(&mut s).await?;
        }
        if s.strategy == WriteStrategy::Replace {
            if completed {
                self.batch(
                    &format!(
                        "DROP TABLE IF EXISTS {t};
                         ALTER TABLE {st} RENAME TO {tq};
                         ALTER INDEX IF EXISTS {sti} RENAME TO {ti};",
                        t = self.t(&s.table),
                        st = self.t(&s.target),
                        tq = quote(&s.table),
                        sti = self.t(&format!("{}__pk", s.target)),
                        ti = quote(&format!("{}__pk", s.table)),
                    ),
                    &format!("cannot swap in the new `{}`", s.table),
                )
                .await?;
                s.target = s.table.clone();
                self.save_stream_meta(&s).await?;
            }
        } else if s.dirty {
            self.save_stream_meta(&s).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        let started = Instant::now();
        let preview = super::is_preview_commit(state, durable);
        for name in std::mem::take(&mut self.closed) {
            let done = super::completed(state, &name);
            self.finish(&name, done).await?;
        }
        let dirty: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for name in dirty {
            if let Some(s) = self.streams.get(&name) {
                self.save_stream_meta(s).await?;
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
            let now = schema::now_rfc3339();
            self.client
                .execute(
                    &format!(
                        "INSERT INTO {} (connector, state, run_id, updated_at)
                         VALUES ($1, $2::text::jsonb, $3, $4::text::timestamptz)
                         ON CONFLICT (connector) DO UPDATE SET state = excluded.state,
                           run_id = excluded.run_id, updated_at = excluded.updated_at",
                        self.t(STATE_TABLE)
                    ),
                    &[&self.connector, &text, &self.run_id, &now],
                )
                .await
                .map_err(|e| self.err("cannot write _connector_state", &e))?;
        }
        // Postgres commits durably (synchronous_commit is the server's choice).
        let _ = durable;
        self.batch("COMMIT; BEGIN", "cannot commit").await?;
        self.release_pending.set(false);
        self.busy += started.elapsed();
        Ok(())
    }
}
