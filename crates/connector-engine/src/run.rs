//! The sync loop. Each needed stream gets a runner; a root stream has one
//! partition, a child stream one partition per parent record, fed through a
//! bounded channel (so a parent never runs far ahead of its children) and
//! run by up to `concurrency` workers. Every page is written and committed
//! with the state before the partition moves on. Where paging goes next is
//! known before a page is written, so the next request is already in flight
//! (on another worker) while the current page is written.

use crate::cancel::{Cancel, StopReason};
use crate::destination::{Destination, WriteMode};
use crate::error::{EngineError, Result};
use crate::http::{FetchError, Fetched, HttpClient};
use crate::incremental::{Boundary, CursorPlan};
use crate::plan::{Plan, StreamPlan};
use crate::rate_limit::Rate;
use crate::reader::{Page, PageCall, PageRecords, PartitionReader};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::shape::RecordShaper;
use crate::state::{PartitionState, State, StreamState};
use crate::stats::{StreamStats, StreamSummary};
use crate::template::{Context, to_value};
use connector_spec::RateValue;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often a checkpoint also fsyncs (every checkpoint flushes).
const DURABLE_EVERY: Duration = Duration::from_secs(5);

/// Options of one sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Streams to write. Empty: all.
    pub streams: Vec<String>,
    /// Stop each stream after this many records (a preview: no state is saved).
    pub limit: Option<u64>,
    /// Stop each partition after this many pages (a preview: no state is saved).
    pub max_pages: Option<u64>,
    /// Most requests in flight, and workers per child stream.
    pub concurrency: Option<u32>,
    /// Overrides the spec's quota.
    pub rate_limit: Option<RateValue>,
    /// Ignore saved state: no resume, incremental streams start over.
    pub full_refresh: bool,
    /// Log verbosity (2: headers, redacted).
    pub verbose: u8,
    /// Filled with live counters for a progress display.
    pub live: Option<Arc<crate::stats::LiveRun>>,
    /// Stops the run from outside (signals); a closed output stops it too.
    pub cancel: Option<Arc<Cancel>>,
    /// Records every exchange (`--record`), or replays cassettes (`--replay`).
    pub tape: Option<Arc<crate::cassette::Tape>>,
}

impl SyncOptions {
    fn is_preview(&self) -> bool {
        self.limit.is_some() || self.max_pages.is_some()
    }
}

/// What a sync did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub streams: Vec<StreamSummary>,
    /// Why the run stopped before its end, if it did.
    pub stopped: Option<StopReason>,
    /// A failure of the run itself after it started (the final commit).
    pub error: Option<String>,
    pub waits: u64,
    pub waited: Duration,
    pub elapsed: Duration,
    pub destination: String,
}

impl SyncReport {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.streams.iter().any(|s| s.error.is_some())
    }
}

/// The destination and the state, behind one lock so records and the state
/// that describes them are committed together.
struct Sink {
    dest: Box<dyn Destination>,
    state: State,
    last_durable: Instant,
    /// Previews write records but never change the saved state: they commit
    /// the state as it was loaded (a database commits state with records).
    preview_state: Option<State>,
    /// Each stream's writes, for a destination that reports a batch's
    /// failure later ([`EngineError::EarlierBatch`]): which page it was.
    writes: HashMap<String, WriteLog>,
}

/// A stream's writes so far, and the page and URL of the latest
/// [`WRITE_LOG`].
#[derive(Default)]
struct WriteLog {
    count: u64,
    recent: std::collections::VecDeque<(u64, String)>,
}

/// Writes remembered per stream: a destination's thread lags a few commits.
const WRITE_LOG: usize = 256;

impl Sink {
    /// Notes a write of a stream's page, before it is made.
    fn note_write(&mut self, stream: &str, page: u64, url: &str) {
        let log = self.writes.entry(stream.to_string()).or_default();
        log.count += 1;
        if log.recent.len() == WRITE_LOG {
            log.recent.pop_front();
        }
        log.recent.push_back((page, url.to_string()));
    }

    /// The page and URL of a stream's `batch`-th write, while remembered.
    fn written(&self, stream: &str, batch: u64) -> Option<(u64, &str)> {
        let log = self.writes.get(stream)?;
        let back = usize::try_from(log.count.checked_sub(batch)?).ok()?;
        let i = log.recent.len().checked_sub(1 + back)?;
        log.recent.get(i).map(|(page, url)| (*page, url.as_str()))
    }

    fn commit(&mut self, force_durable: bool) -> Result<()> {
        if let Some(loaded) = &self.preview_state {
            return self.dest.commit(&mut loaded.clone(), false);
        }
        let durable = force_durable || self.last_durable.elapsed() >= DURABLE_EVERY;
        self.dest.commit(&mut self.state, durable)?;
        if durable {
            self.last_durable = Instant::now();
        }
        Ok(())
    }
}

/// How one stream starts: from scratch or resuming an interrupted run.
struct StreamStart {
    /// State of the interrupted run, when resuming.
    resume: Option<StreamState>,
    /// Incremental lower bound of this run.
    lower_bound: Option<Value>,
    /// The last completed run's cursor and the records written at it,
    /// which an inclusive API sends again.
    boundary: Boundary,
    /// The end of a windowed range.
    upper_bound: Option<Value>,
    /// Values kept from the last completed run's responses.
    values: std::collections::BTreeMap<String, Value>,
    /// Each partition's saved cursor (per-partition cursors).
    partition_cursors: std::collections::BTreeMap<String, Boundary>,
}

/// Checks a stream's saved state and works out how the stream starts.
fn check_saved(
    plan: &Plan,
    sp: &StreamPlan,
    saved: &StreamState,
    resume: bool,
    dest: &dyn Destination,
) -> std::result::Result<StreamStart, String> {
    let mut lower_bound = None;
    let mut upper_bound = None;
    let mut boundary = Boundary::default();
    if let Some(inc) = &sp.incremental {
        for (what, v) in [
            ("cursor", &saved.cursor),
            ("pending_cursor", &saved.pending_cursor),
            ("lower_bound", &saved.lower_bound),
        ] {
            if let Some(v) = v {
                inc.check(v).map_err(|e| format!("saved `{what}`: {e}"))?;
            }
        }
        for (key, b) in &saved.partition_cursors {
            if let Some(v) = &b.cursor {
                inc.check(v)
                    .map_err(|e| format!("saved cursor of partition `{key}`: {e}"))?;
            }
        }
        if resume {
            for (key, p) in &saved.partitions {
                for v in [
                    &p.lower_bound,
                    &p.pending.as_ref().and_then(|b| b.cursor.clone()),
                ]
                .into_iter()
                .flatten()
                {
                    inc.check(v)
                        .map_err(|e| format!("saved bound of partition `{key}`: {e}"))?;
                }
            }
        }
        lower_bound = if resume {
            saved.lower_bound.clone()
        } else {
            let lower = inc.lower_bound(saved.cursor.as_ref())?;
            // A windowed range starts one `granularity` after the last one ended.
            match (&inc.windows, &saved.cursor, inc.lookback, lower) {
                (Some(w), Some(_), None, Some(l)) => {
                    let next = inc.instant(&l)?
                        + chrono::Duration::from_std(w.granularity).unwrap_or_default();
                    Some(inc.request_format.write(next))
                }
                (_, _, _, l) => l,
            }
        };
        boundary = Boundary {
            cursor: saved.cursor.clone(),
            keys: saved.cursor_keys.clone(),
        };
        if inc.windows.is_some() {
            if lower_bound.is_none() {
                return Err(
                    "a windowed stream needs a lower bound on its first run: set `start_value` (or `min`)"
                        .into(),
                );
            }
            upper_bound = if resume {
                saved.upper_bound.clone()
            } else {
                inc.upper_bound()
            };
            if let Some(u) = &upper_bound {
                inc.check(u).map_err(|e| format!("windows.end: {e}"))?;
            }
        }
    }
    if resume {
        for (key, p) in &saved.partitions {
            let mut paginator = sp.paging.start();
            if !paginator.restore(&p.position) {
                let shown = plan.redactor.redact(&p.position.to_string());
                let whose = if key.is_empty() {
                    "the saved position".to_string()
                } else {
                    format!("the saved position of partition `{key}`")
                };
                return Err(format!(
                    "{whose} is {shown}, which does not fit `{}` pagination",
                    sp.pagination_type
                ));
            }
        }
        if let Some(d) = &saved.destination {
            dest.check_resume(&sp.name, d)?;
        }
    }
    Ok(StreamStart {
        resume: resume.then(|| saved.clone()),
        lower_bound,
        boundary,
        upper_bound,
        values: saved.values.clone(),
        partition_cursors: saved.partition_cursors.clone(),
    })
}

struct RunCtx {
    plan: Plan,
    rt: Runtime,
    sink: Mutex<Sink>,
    selected: HashSet<String>,
    starts: HashMap<String, StreamStart>,
    opts: SyncOptions,
    workers: usize,
    /// The destination takes records as raw JSON text (the fast path).
    raw_json: bool,
    /// The destination takes records that are not objects (JSON Lines).
    any_json: bool,
    cancel: Arc<Cancel>,
}

impl RunCtx {
    /// A partition failed: the stream fails; a closed output stops the run.
    fn failed(&self, run: &StreamRun, e: EngineError) {
        if e.is_closed_output() {
            self.cancel.cancel(StopReason::OutputClosed);
        }
        run.fail(e.to_string());
    }

    /// A stream's counters, registered with the live view for selected streams.
    fn stats_for(&self, name: &str) -> Arc<StreamStats> {
        let stats = Arc::new(StreamStats::default());
        if let (Some(live), true) = (&self.opts.live, self.selected.contains(name)) {
            live.streams
                .lock()
                .unwrap()
                .push((name.to_string(), stats.clone()));
        }
        stats
    }
}

struct StreamRun {
    stats: Arc<StreamStats>,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
    /// The start of the next query, when a page reached the query's cap
    /// (`restart_when`): from the cursor reached.
    reached_cap: Mutex<Option<StreamStart>>,
}

impl StreamRun {
    fn fail(&self, e: String) {
        self.failed.store(true, Ordering::Relaxed);
        self.stats.failed.store(true, Ordering::Relaxed);
        let mut err = self.error.lock().unwrap();
        if err.is_none() {
            *err = Some(e);
        }
    }
}

/// Checks stream names and works out which streams must run: the selected
/// ones and their ancestors.
pub fn needed_streams(plan: &Plan, selected: &[String]) -> Result<(Vec<String>, HashSet<String>)> {
    let selected: Vec<String> = if selected.is_empty() {
        plan.streams
            .values()
            .filter(|s| !s.internal)
            .map(|s| s.name.clone())
            .collect()
    } else {
        selected.to_vec()
    };
    for s in &selected {
        if !plan.streams.contains_key(s) {
            let hint = connector_spec::did_you_mean(s, plan.streams.keys().map(String::as_str))
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "streams: {}",
                        plan.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
            return Err(EngineError::Plan(format!(
                "connector `{}` has no stream `{s}`; {hint}",
                plan.name
            )));
        }
    }
    let mut needed: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = selected.clone();
    while let Some(c) = todo.pop() {
        if needed.insert(c.clone()) {
            todo.extend(
                plan.streams[&c]
                    .parent_streams()
                    .into_iter()
                    .map(String::from),
            );
        }
    }
    let order: Vec<String> = plan
        .streams
        .keys()
        .filter(|k| needed.contains(*k))
        .cloned()
        .collect();
    Ok((order, selected.into_iter().collect()))
}

/// Runs a sync to the end. Stream failures are reported in the summary, not
/// as an `Err`; `Err` is for problems before any request.
pub async fn sync(
    mut plan: Plan,
    mut dest: Box<dyn Destination>,
    opts: SyncOptions,
) -> Result<SyncReport> {
    let started = Instant::now();
    let (order, selected) = needed_streams(&plan, &opts.streams)?;
    let rt = Runtime::start(
        &plan,
        RuntimeOptions {
            concurrency: opts.concurrency,
            rate: opts.rate_limit.map(Rate::from),
            verbose: opts.verbose,
            live: opts.live.clone(),
            tape: opts.tape.clone(),
        },
    )?;
    let destination = dest.describe();
    rt.resolve_base_url(&mut plan).await?;

    // Load state and decide, per selected stream, fresh start or resume.
    // A full refresh ignores the saved state; a preview must keep it as is.
    let loaded = if opts.full_refresh && !opts.is_preview() {
        State::default()
    } else {
        dest.load_state()?.unwrap_or_default()
    };
    let preview_state = opts.is_preview().then(|| loaded.clone());
    let mut state = if opts.full_refresh {
        State::default()
    } else {
        loaded
    };
    // Check the saved state of every selected stream before anything is
    // opened (opening may truncate a file): a bad value is an error, never
    // a guess that duplicates or drops records.
    let mut starts = HashMap::new();
    for name in order.iter().filter(|n| selected.contains(*n)) {
        let sp = &plan.streams[name];
        let saved = state.streams.get(name).cloned().unwrap_or_default();
        let resume = saved.in_progress && !opts.is_preview();
        let start = check_saved(&plan, sp, &saved, resume, dest.as_ref()).map_err(|e| {
            EngineError::State(format!(
                "state of stream `{name}`: {e}; {}",
                crate::state::RESET_HINT
            ))
        })?;
        starts.insert(name.clone(), start);
    }
    for name in order.iter().filter(|n| selected.contains(*n)) {
        let sp = &plan.streams[name];
        let start = &starts[name];
        let saved = state.streams.get(name).cloned().unwrap_or_default();
        let resume = start.resume.is_some();
        let saved_cursor = saved.cursor.is_some() || !saved.partition_cursors.is_empty();
        let mode = if resume || (sp.incremental.is_some() && saved_cursor) {
            WriteMode::Append
        } else {
            WriteMode::Replace
        };
        dest.open_stream(
            &crate::destination::StreamInfo::of(sp),
            mode,
            if resume {
                saved.destination.as_ref()
            } else {
                None
            },
        )?;
        if resume {
            tracing::info!(
                "stream {name}: resuming an interrupted run ({} open partitions, {} done)",
                saved.partitions.len(),
                saved.done.len()
            );
        }
        let ss = state.stream(name);
        ss.in_progress = true;
        ss.lower_bound = start.lower_bound.clone();
        ss.upper_bound = start.upper_bound.clone();
        if !resume {
            ss.partitions.clear();
            ss.done.clear();
            ss.pending_cursor = None;
            ss.pending_keys.clear();
            ss.pending_values.clear();
        }
    }
    let mut sink = Sink {
        dest,
        state,
        last_durable: Instant::now(),
        preview_state,
        writes: HashMap::new(),
    };
    sink.commit(true)?;
    let destination_keeps_raw_json = sink.dest.keeps_raw_json();
    let destination_takes_any_json = sink.dest.takes_any_json();

    let cancel = opts.cancel.clone().unwrap_or_default();
    let workers = rt.concurrency as usize;
    let ctx = Arc::new(RunCtx {
        plan,
        rt,
        sink: Mutex::new(sink),
        selected,
        starts,
        opts,
        workers,
        raw_json: destination_keeps_raw_json,
        any_json: destination_takes_any_json,
        cancel,
    });

    // Channels from each parent stream to its needed children.
    let mut senders: HashMap<String, Vec<(String, mpsc::Sender<PartitionInput>)>> = HashMap::new();
    let mut receivers: HashMap<String, mpsc::Receiver<PartitionInput>> = HashMap::new();
    for name in &order {
        let sp = &ctx.plan.streams[name];
        let parents = sp.parent_streams();
        if parents.is_empty() {
            continue;
        }
        let (tx, rx) = mpsc::channel(ctx.workers * 2);
        for parent in parents {
            senders
                .entry(parent.to_string())
                .or_default()
                .push((name.clone(), tx.clone()));
        }
        // A union's config values join its parents' values.
        if let Some((as_name, values)) = sp.partitions.clone().filter(|(_, v)| !v.is_empty()) {
            tokio::spawn(async move {
                for v in values {
                    let input = PartitionInput {
                        partition: Some((as_name.clone(), v)),
                        ..Default::default()
                    };
                    if tx.send(input).await.is_err() {
                        break;
                    }
                }
            });
        }
        receivers.insert(name.clone(), rx);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for name in &order {
        let children = senders.remove(name).unwrap_or_default();
        let rx = receivers.remove(name);
        let ctx = ctx.clone();
        let name = name.clone();
        tasks.spawn(async move { run_stream(ctx, name, rx, children).await });
    }
    let mut summaries: HashMap<String, StreamSummary> = HashMap::new();
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(s) => {
                summaries.insert(s.stream.clone(), s);
            }
            Err(e) => return Err(EngineError::Plan(format!("a stream task panicked: {e}"))),
        }
    }
    // Past this point records were written: a failure is the run's, reported
    // with the summary, not a usage error.
    let error = ctx
        .sink
        .lock()
        .unwrap()
        .commit(true)
        .err()
        .map(|e| e.to_string());
    let (waits, waited) = ctx.rt.limiter.waits();
    let streams = order
        .iter()
        .filter(|n| ctx.selected.contains(*n))
        .filter_map(|n| summaries.remove(n))
        .collect();
    Ok(SyncReport {
        streams,
        stopped: ctx.cancel.reason(),
        error,
        waits,
        waited,
        elapsed: started.elapsed(),
        destination,
    })
}

/// What one partition of a stream is about: a parent record, a value of
/// a config list, a window of the incremental range, or nothing (a root
/// stream's only partition).
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionInput {
    parent: Option<Value>,
    /// The partition the parent record was read in (`parent_partition`).
    upstream: Option<Value>,
    partition: Option<(String, Value)>,
    window: Option<crate::incremental::Window>,
}

/// The partitions of a root stream that has more than one: a config
/// list's values, or the windows of its incremental range. A windowed
/// parent with children has windows from its start, whatever its state:
/// children see every parent record (the records before its bound are
/// read for them, not written).
fn root_partitions(
    ctx: &RunCtx,
    name: &str,
    feeds_children: bool,
) -> Result<Option<Vec<PartitionInput>>> {
    let sp = &ctx.plan.streams[name];
    if let Some((as_name, values)) = &sp.partitions {
        return Ok(Some(
            values
                .iter()
                .map(|v| PartitionInput {
                    partition: Some((as_name.clone(), v.clone())),
                    ..Default::default()
                })
                .collect(),
        ));
    }
    let (Some(inc), Some(start)) = (&sp.incremental, ctx.starts.get(name)) else {
        return Ok(None);
    };
    if inc.windows.is_none() {
        return Ok(None);
    }
    let from_start = if feeds_children {
        inc.lower_bound(None).map_err(|e| EngineError::Stream {
            stream: name.to_string(),
            page: 0,
            url: String::new(),
            message: e,
        })?
    } else {
        None
    };
    let (Some(lower), Some(upper)) = (
        from_start.as_ref().or(start.lower_bound.as_ref()),
        &start.upper_bound,
    ) else {
        return Ok(None);
    };
    let windows = inc.windows(lower, upper).map_err(|e| EngineError::Stream {
        stream: name.to_string(),
        page: 0,
        url: String::new(),
        message: e,
    })?;
    tracing::info!(
        "stream {name}: {} windows from {lower} to {upper}",
        windows.len()
    );
    Ok(Some(
        windows
            .into_iter()
            .map(|w| PartitionInput {
                window: Some(w),
                ..Default::default()
            })
            .collect(),
    ))
}

async fn run_stream(
    ctx: Arc<RunCtx>,
    name: String,
    parents: Option<mpsc::Receiver<PartitionInput>>,
    children: Vec<(String, mpsc::Sender<PartitionInput>)>,
) -> StreamSummary {
    let started = Instant::now();
    let run = Arc::new(StreamRun {
        stats: ctx.stats_for(&name),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        reached_cap: Mutex::new(None),
    });
    // A root stream's partitions: one, a config list's values, or windows.
    let parents = match (parents, root_partitions(&ctx, &name, !children.is_empty())) {
        (Some(rx), _) => Some(rx),
        (None, Ok(None)) => None,
        (None, Ok(Some(inputs))) => {
            let (tx, rx) = mpsc::channel(ctx.workers * 2);
            tokio::spawn(async move {
                for input in inputs {
                    if tx.send(input).await.is_err() {
                        break;
                    }
                }
            });
            Some(rx)
        }
        (None, Err(e)) => {
            run.fail(e.to_string());
            None
        }
    };
    match parents {
        None if run.failed.load(Ordering::Relaxed) => {}
        None => {
            // One partition; read again from the cursor reached while its
            // queries end at the API's cap (`restart_when`).
            let mut restarted: Option<StreamStart> = None;
            loop {
                let start = restarted.as_ref().or_else(|| ctx.starts.get(&name));
                let single = PartitionInput::default();
                if let Err(e) = run_partition(&ctx, &name, single, start, &children, &run).await {
                    ctx.failed(&run, e);
                    break;
                }
                let Some(next) = run.reached_cap.lock().unwrap().take() else {
                    break;
                };
                if run.failed.load(Ordering::Relaxed)
                    || ctx.cancel.is_cancelled()
                    || limit_reached(&ctx, &run)
                {
                    break;
                }
                restarted = Some(next);
            }
        }
        Some(rx) => {
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            // A union of partitions: each distinct value once, the first wins.
            let seen: Arc<Mutex<HashSet<String>>> = Default::default();
            let union = !ctx.plan.streams[&name].partitions_from.is_empty();
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..partition_workers(ctx.workers) {
                let (ctx, rx, run, children, name, seen) = (
                    ctx.clone(),
                    rx.clone(),
                    run.clone(),
                    children.clone(),
                    name.clone(),
                    seen.clone(),
                );
                workers.spawn(async move {
                    loop {
                        let input = rx.lock().await.recv().await;
                        let Some(input) = input else { break };
                        if run.failed.load(Ordering::Relaxed) || ctx.cancel.is_cancelled() {
                            continue; // drain, so the parent is never blocked
                        }
                        if union
                            && let Some((_, v)) = &input.partition
                            && !seen.lock().unwrap().insert(v.to_string())
                        {
                            continue;
                        }
                        let start = ctx.starts.get(&name);
                        if let Err(e) =
                            run_partition(&ctx, &name, input, start, &children, &run).await
                        {
                            ctx.failed(&run, e);
                        }
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    }
    drop(children);
    if ctx.selected.contains(&name)
        && let Err(e) = finish_stream(&ctx, &name, &run)
    {
        ctx.failed(&run, e);
    }
    let error = run.error.lock().unwrap().clone();
    run.stats.finished.store(true, Ordering::Relaxed);
    let mut summary = run.stats.summary(&name, started.elapsed(), error);
    if ctx.cancel.is_cancelled() {
        // Stopped from outside: not a failure of the stream.
        summary.interrupted = true;
        summary.error = None;
    }
    summary
}

/// Partitions of one stream read at once. More than the requests in flight
/// (the limiter's `concurrency` permits bound those): a partition waiting
/// out a server's `Retry-After` (a 503) holds a worker but no request slot,
/// so the others' requests go on meanwhile. At concurrency 1 partitions are
/// read one after another, in order, as asked.
fn partition_workers(concurrency: usize) -> usize {
    match concurrency {
        0 | 1 => 1,
        c => (c * 8).min(64),
    }
}

/// A destination's report of an earlier batch's failure as the failure of
/// that batch's page (while the write log remembers it); any other error
/// back as it is.
fn earlier_batch(stream: &str, sink: &Sink, e: EngineError) -> Result<EngineError, EngineError> {
    let EngineError::EarlierBatch { batch, message } = &e else {
        return Err(e);
    };
    let (page, url) = sink
        .written(stream, *batch)
        .unwrap_or((0, "(a page before the last ones written)"));
    Ok(EngineError::Stream {
        stream: stream.to_string(),
        page,
        url: url.to_string(),
        message: format!("writing to {} failed: {message}", sink.dest.describe()),
    })
}

/// Closes a stream; when it completed, its cursor advances (with the keys
/// of the records at it) and its partitions are forgotten. A failed stream
/// keeps them for the next run.
fn finish_stream(ctx: &RunCtx, name: &str, run: &StreamRun) -> Result<()> {
    let mut sink = ctx.sink.lock().unwrap();
    if ctx.cancel.is_cancelled() {
        // Stopped: the state saved after the last whole page resumes the
        // stream; closing (a CSV's or Parquet file's final write) waits for
        // the run that completes it.
        return sink.commit(true);
    }
    sink.dest
        .close_stream(name)
        .map_err(|e| earlier_batch(name, &sink, e).unwrap_or_else(|e| e))?;
    if !run.failed.load(Ordering::Relaxed) && !limit_reached(ctx, run) {
        let sp = &ctx.plan.streams[name];
        let inc = sp.incremental.as_ref();
        let ss = sink.state.stream(name);
        let stream_err = |message: String| EngineError::Stream {
            stream: name.to_string(),
            page: 0,
            url: String::new(),
            message,
        };
        if let (Some(inc), true) = (inc, sp.per_partition_cursor()) {
            // Each partition advanced its own cursor as it finished; the
            // stream's is the largest, for display.
            let mut top = Boundary {
                cursor: ss.cursor.take(),
                keys: Default::default(),
            };
            for b in ss.partition_cursors.values() {
                let c = Boundary {
                    cursor: b.cursor.clone(),
                    keys: Default::default(),
                };
                top.merge(inc, c).map_err(stream_err)?;
            }
            ss.cursor = top.cursor;
            ss.cursor_keys.clear();
        } else if let Some(inc) = inc {
            let pending = Boundary {
                cursor: ss.pending_cursor.take(),
                keys: std::mem::take(&mut ss.pending_keys),
            };
            let mut saved = Boundary {
                cursor: ss.cursor.take(),
                keys: std::mem::take(&mut ss.cursor_keys),
            };
            saved.merge(inc, pending).map_err(|e| EngineError::Stream {
                stream: name.to_string(),
                page: 0,
                url: String::new(),
                message: e,
            })?;
            if saved.keys.len() > BOUNDARY_KEYS_WARN {
                tracing::warn!(
                    "stream {name}: {} records share the cursor {}; their keys are kept in the state so none is written twice",
                    saved.keys.len(),
                    saved
                        .cursor
                        .as_ref()
                        .map(|c| c.to_string())
                        .unwrap_or_default()
                );
            }
            // A windowed range is read up to its end, records or not.
            if let Some(upper) = ss.upper_bound.take() {
                let end = Boundary {
                    cursor: Some(upper),
                    keys: Default::default(),
                };
                saved.merge(inc, end).map_err(|e| EngineError::Stream {
                    stream: name.to_string(),
                    page: 0,
                    url: String::new(),
                    message: e,
                })?;
            }
            ss.cursor = saved.cursor;
            ss.cursor_keys = saved.keys;
        }
        let kept = std::mem::take(&mut ss.pending_values);
        ss.values.extend(kept);
        ss.in_progress = false;
        ss.lower_bound = None;
        ss.partitions.clear();
        ss.done.clear();
        ss.destination = None;
    }
    sink.commit(true)
}

/// Where the cursor is once a query that reached the API's cap
/// (`restart_when`) lands its last page, `boundary` (that page's): the
/// saved cursor and the pending one merged with it. An error when that is
/// not past `from`, the cursor the query started from: the next query would
/// end at the same place.
fn cursor_reached(
    inc: &CursorPlan,
    ss: &crate::state::StreamState,
    boundary: &Boundary,
    from: Option<&Value>,
) -> std::result::Result<Boundary, String> {
    let mut reached = Boundary {
        cursor: ss.cursor.clone(),
        keys: ss.cursor_keys.clone(),
    };
    for b in [
        Boundary {
            cursor: ss.pending_cursor.clone(),
            keys: ss.pending_keys.clone(),
        },
        boundary.clone(),
    ] {
        reached.merge(inc, b)?;
    }
    let moved = match (from, &reached.cursor) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => inc.compare(b, a)? == std::cmp::Ordering::Greater,
    };
    if !moved {
        let at = reached
            .cursor
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "(none)".into());
        return Err(format!(
            "the query reached the API's cap (`incremental.restart_when`) without moving the cursor past {at}: more records share that value than one query returns; what was read before this page is written and the state is saved"
        ));
    }
    Ok(reached)
}

/// Past this many records at one cursor value, the state grows noticeably.
const BOUNDARY_KEYS_WARN: usize = 10_000;

fn limit_reached(ctx: &RunCtx, run: &StreamRun) -> bool {
    ctx.opts
        .limit
        .is_some_and(|l| run.stats.records.load(Ordering::Relaxed) >= l)
}

/// The key of a child partition: the parent's id fields, else a stable hash
/// of its content (the same in every release, so a resume finds it).
fn partition_key(parent: Option<&Value>, parent_pk: &[String]) -> String {
    let Some(p) = parent else {
        return String::new();
    };
    let fields: Vec<&str> = if parent_pk.is_empty() {
        vec!["id"]
    } else {
        parent_pk.iter().map(String::as_str).collect()
    };
    let parts: Option<Vec<String>> = fields
        .iter()
        .map(|f| {
            p.get(*f).filter(|v| !v.is_null()).map(|v| {
                format!(
                    "{f}={}",
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                )
            })
        })
        .collect();
    match parts {
        Some(parts) => parts.join(","),
        None => {
            let mut text = String::new();
            crate::record_key::canonical_json(p, &mut text);
            format!("#{}", crate::record_key::stable_hash(&text))
        }
    }
}

/// One partition of a sync: how its pages land.
struct Partition<'a> {
    ctx: &'a RunCtx,
    run: &'a StreamRun,
    sp: &'a StreamPlan,
    name: &'a str,
    key: String,
    parent: Option<Value>,
    /// `parent_partition` of the children's partitions.
    for_children: Option<Value>,
    children: &'a [(String, mpsc::Sender<PartitionInput>)],
    shaper: RecordShaper<'a>,
    selected: bool,
    records_written: AtomicU64,
    /// Pages up to this one were written by an interrupted run.
    skip_writes_until: u64,
    /// The partition's own cursor, when it keeps one.
    own_cursor: Option<OwnCursor>,
    /// How the stream started: its saved values go on to a query that
    /// follows one at the API's cap.
    start: Option<&'a StreamStart>,
}

/// A partition's own cursor while it runs: the bound it sends and the
/// largest cursor it has written. It becomes the partition's saved cursor in
/// the commit of its last page.
struct OwnCursor {
    lower: Option<Value>,
    pending: Mutex<Boundary>,
}

impl Partition<'_> {
    fn err(&self, page: u64, url: &str, message: String) -> EngineError {
        EngineError::Stream {
            stream: self.name.to_string(),
            page,
            url: url.to_string(),
            message: self.ctx.plan.redactor.redact(&message),
        }
    }

    /// A destination failure (a full disk), naming the stream, the page and
    /// the destination; an earlier batch's, naming that batch's page. A
    /// closed output stays as it is: it stops the run.
    fn dest_err(&self, page: u64, url: &str, sink: &Sink, e: EngineError) -> EngineError {
        if e.is_closed_output() {
            return e;
        }
        match earlier_batch(self.name, sink, e) {
            Ok(named) => named,
            Err(e) => self.err(
                page,
                url,
                format!("writing to {} failed: {e}", sink.dest.describe()),
            ),
        }
    }

    fn fetch_error(&self, page_no: u64, e: FetchError) -> EngineError {
        EngineError::Stream {
            stream: self.name.to_string(),
            page: page_no,
            url: e.url,
            message: e.message,
        }
    }

    /// Fetches one page (with retries). A stopped run drops the request.
    async fn fetch(&self, call: &PageCall) -> Result<Fetched> {
        let http = &self.ctx.rt.http;
        tokio::select! {
            r = http.fetch(&call.request, &self.sp.retry, &self.run.stats) => {
                r.map_err(|e| self.fetch_error(call.page_no, e))
            }
            _ = self.ctx.cancel.cancelled() => Ok(Fetched::Cancelled),
        }
    }

    /// Starts fetching a page on another task, so that it downloads and
    /// decodes while this one writes the page before it.
    fn prefetch(&self, call: PageCall) -> Prefetch {
        let http: Arc<HttpClient> = self.ctx.rt.http.clone();
        let retry = self.sp.retry.clone();
        let stats = self.run.stats.clone();
        let req = call.request.clone();
        let task = tokio::spawn(async move { http.fetch(&req, &retry, &stats).await });
        Prefetch { call, task }
    }

    /// Writes a page's records and checkpoints the partition at `next`
    /// (None when the partition is done) in the same commit. Then feeds the
    /// records to child streams.
    async fn land(&self, page: Page) -> Result<()> {
        let Page {
            page_no,
            shown,
            records,
            next,
            kept,
            capped,
            ..
        } = page;
        let url = shown.as_str();
        let sp = self.sp;
        self.run.stats.pages.fetch_add(1, Ordering::Relaxed);
        let (mut batch, feed, boundary) = match records {
            PageRecords::Values(v) => {
                let shaped = self
                    .shaper
                    .shape(page_no, url, v, &self.run.stats.skipped)?;
                (
                    PageRecords::Values(shaped.write),
                    shaped.feed,
                    shaped.boundary,
                )
            }
            PageRecords::Raw(mut raw) => {
                self.shaper
                    .check_raw(page_no, url, &mut raw, &self.run.stats.skipped)?;
                (PageRecords::Raw(raw), None, Boundary::default())
            }
        };
        if let Some(l) = self.ctx.opts.limit {
            let have = self.run.stats.records.load(Ordering::Relaxed);
            batch.truncate(l.saturating_sub(have) as usize);
        }
        let count = batch.len() as u64;

        if self.selected {
            let write = page_no > self.skip_writes_until;
            let mut sink = self.ctx.sink.lock().unwrap();
            // The last page of a query at the API's cap: where the next
            // query starts, found before anything of it is written.
            let reached = match (&sp.incremental, capped && next.is_none()) {
                (Some(inc), true) => {
                    let from = self.shaper.boundary.and_then(|b| b.cursor.as_ref());
                    let ss = sink.state.stream(self.name);
                    Some(
                        cursor_reached(inc, ss, &boundary, from)
                            .map_err(|e| self.err(page_no, url, e))?,
                    )
                }
                _ => None,
            };
            if write && count > 0 {
                // The records go to the destination unless children read
                // them afterwards (a queueing destination then need not copy).
                let feeds_children = feed.is_none() && !self.children.is_empty();
                sink.note_write(self.name, page_no, url);
                let written = match &mut batch {
                    PageRecords::Values(v) if !feeds_children => {
                        sink.dest.write_owned(self.name, std::mem::take(v))
                    }
                    PageRecords::Values(v) => sink.dest.write_batch(self.name, v),
                    PageRecords::Raw(r) => sink.dest.write_raw(self.name, r),
                };
                written.map_err(|e| self.dest_err(page_no, url, &sink, e))?;
            }
            let ss = sink.state.stream(self.name);
            if let (Some(inc), Some(own)) = (&sp.incremental, &self.own_cursor) {
                let mut pending = own.pending.lock().unwrap();
                pending
                    .merge(inc, boundary)
                    .map_err(|e| self.err(page_no, url, e))?;
                if next.is_none() {
                    // The partition is complete: its cursor advances now,
                    // with its end, in this commit.
                    let saved = ss.partition_cursors.entry(self.key.clone()).or_default();
                    saved
                        .merge(inc, pending.clone())
                        .map_err(|e| self.err(page_no, url, e))?;
                }
            } else if let (Some(inc), Some(_)) = (&sp.incremental, &boundary.cursor) {
                let mut pending = Boundary {
                    cursor: ss.pending_cursor.take(),
                    keys: std::mem::take(&mut ss.pending_keys),
                };
                let merged = pending.merge(inc, boundary);
                ss.pending_cursor = pending.cursor;
                ss.pending_keys = pending.keys;
                merged.map_err(|e| self.err(page_no, url, e))?;
            }
            if write {
                self.records_written.fetch_add(count, Ordering::Relaxed);
            }
            for (k, v) in kept {
                // The last response's value wins; no secret is saved.
                ss.pending_values
                    .insert(k, self.ctx.plan.redactor.seal_value(&v));
            }
            match (next, reached, &sp.incremental) {
                (None, Some(reached), Some(inc)) => {
                    // The query ended at the API's cap: the cursor advances
                    // as at the end of a run, and the state is that of a
                    // run starting from it, committed with this page, so an
                    // interruption resumes the next query.
                    let lower = inc.bound_from(reached.cursor.as_ref().unwrap_or(&Value::Null));
                    let lower = lower.map_err(|e| self.err(page_no, url, e))?;
                    tracing::info!(
                        "stream {}: querying again from the cursor {lower}",
                        self.name
                    );
                    ss.cursor = reached.cursor.clone();
                    ss.cursor_keys = reached.keys.clone();
                    ss.pending_cursor = None;
                    ss.pending_keys.clear();
                    ss.lower_bound = Some(lower.clone());
                    ss.partitions.clear();
                    ss.done.clear();
                    *self.run.reached_cap.lock().unwrap() = Some(StreamStart {
                        resume: None,
                        lower_bound: Some(lower),
                        boundary: reached,
                        upper_bound: None,
                        values: self.start.map(|s| s.values.clone()).unwrap_or_default(),
                        partition_cursors: Default::default(),
                    });
                }
                (None, _, _) => {
                    // The end of a partition is a checkpoint like any other:
                    // a crash after it never fetches the partition again.
                    ss.partitions.remove(&self.key);
                    ss.done.insert(self.key.clone());
                }
                (Some(position), _, _) if write => {
                    let records = self.records_written.load(Ordering::Relaxed);
                    let own = self.own_cursor.as_ref();
                    let saved = PartitionState {
                        // No secret is saved: a token in a next URL is sealed.
                        position: self.ctx.plan.redactor.seal_value(&position),
                        pages: page_no,
                        records,
                        lower_bound: own.and_then(|o| o.lower.clone()),
                        pending: own.map(|o| o.pending.lock().unwrap().clone()),
                    };
                    ss.partitions.insert(self.key.clone(), saved);
                }
                (Some(_), _, _) => {}
            }
            let committed = sink.commit(false);
            committed.map_err(|e| self.dest_err(page_no, url, &sink, e))?;
            if write {
                // Counted once committed: the summary counts what landed.
                self.run.stats.records.fetch_add(count, Ordering::Relaxed);
            }
        }
        if !self.selected {
            // A parent read only for its children: counted for `--limit`.
            self.run.stats.records.fetch_add(count, Ordering::Relaxed);
        }
        let fed = match (&feed, &batch) {
            (Some(f), _) => Some(f.as_slice()),
            (None, PageRecords::Values(v)) => Some(v.as_slice()),
            (None, PageRecords::Raw(_)) => None,
        };
        for rec in fed.into_iter().flatten() {
            for (child, tx) in self.children {
                let csp = &self.ctx.plan.streams[child];
                let partition = if csp.partitions_from.is_empty() {
                    None
                } else {
                    let tctx = Context {
                        parent: Some(to_value(rec)),
                        ..self.ctx.plan.context()
                    };
                    match csp.partition_from(&self.ctx.plan.templates, self.name, &tctx.to_value())
                    {
                        Ok(Some(p)) => Some(p),
                        Ok(None) => continue,
                        Err(e) => {
                            // As Airbyte's routers do: a record without the
                            // value gives no partition; said, not silent.
                            tracing::warn!(
                                "stream {child}: a record of `{}` gives no partition: {}",
                                self.name,
                                self.ctx.plan.redactor.redact(&e.to_string())
                            );
                            continue;
                        }
                    }
                };
                // The child runner lives as long as its senders; a send fails
                // only if it has stopped, and then there is nothing to feed.
                let input = PartitionInput {
                    parent: Some(rec.clone()),
                    upstream: self.for_children.clone(),
                    partition,
                    ..Default::default()
                };
                let _ = tx.send(input).await;
            }
        }
        Ok(())
    }

    fn halted(&self) -> bool {
        self.run.failed.load(Ordering::Relaxed)
            || limit_reached(self.ctx, self.run)
            || self.ctx.cancel.is_cancelled()
    }
}

async fn run_partition(
    ctx: &RunCtx,
    name: &str,
    input: PartitionInput,
    start: Option<&StreamStart>,
    children: &[(String, mpsc::Sender<PartitionInput>)],
    run: &StreamRun,
) -> Result<()> {
    let PartitionInput {
        parent,
        upstream,
        partition,
        window,
    } = input;
    // What this partition's records were read for, handed to its children.
    let for_children = (!children.is_empty()).then(|| {
        serde_json::json!({
            "parent": parent.clone().unwrap_or(Value::Null),
            "partition": partition
                .as_ref()
                .map(|(n, v)| serde_json::json!({ n.as_str(): v }))
                .unwrap_or(Value::Null),
        })
    });
    let sp: &StreamPlan = &ctx.plan.streams[name];
    let plan = &ctx.plan;
    let parent_pk = sp
        .parent
        .as_ref()
        .map(|p| plan.streams[p].primary_key.clone())
        .unwrap_or_default();
    let key = match (&partition, &window) {
        (Some((n, v)), _) => format!(
            "{n}={}",
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        ),
        (_, Some(w)) => format!(
            "window={}",
            w.start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
        _ => partition_key(parent.as_ref(), &parent_pk),
    };
    let resume = start.and_then(|s| s.resume.as_ref());
    let finished = resume.is_some_and(|r| r.done.contains(&key));
    if finished && children.is_empty() {
        return Ok(()); // finished by the interrupted run
    }
    run.stats.partitions.fetch_add(1, Ordering::Relaxed);
    // Children see every parent record, whatever the parent's sync mode: an
    // incremental parent with children is read in full (its bound is not
    // sent) and writes only the records at or past its bound.
    let feed_all = !children.is_empty() && sp.incremental.is_some();
    let stream_err = |message: String| EngineError::Stream {
        stream: name.to_string(),
        page: 1,
        url: String::new(),
        message: plan.redactor.redact(&message),
    };
    let in_flight = resume.and_then(|r| r.partitions.get(&key));
    // The lower bound and the records written at the saved cursor: the
    // partition's own, or the stream's.
    let (lower, boundary) = match (&sp.incremental, start) {
        (Some(inc), Some(start)) if sp.per_partition_cursor() => {
            let saved = match start.partition_cursors.get(&key) {
                Some(b) => b.clone(),
                // A state from before partitions kept their own cursors:
                // every partition read from the stream's.
                None if start.partition_cursors.is_empty() => start.boundary.clone(),
                None => Boundary::default(),
            };
            let lower = match in_flight.and_then(|p| p.lower_bound.clone()) {
                Some(l) => Some(l),
                None => inc.lower_bound(saved.cursor.as_ref()).map_err(stream_err)?,
            };
            (lower, Some(saved))
        }
        _ => (
            start.and_then(|s| s.lower_bound.clone()),
            start.map(|s| s.boundary.clone()),
        ),
    };
    // Bounds go to the API as `request_format` says.
    let sent_lower = match (&sp.incremental, &lower, feed_all, &window) {
        (Some(inc), _, false, Some(w)) => Some(inc.request_format.write(w.start)),
        (Some(inc), Some(l), false, None) => Some(inc.request_value(l).map_err(stream_err)?),
        _ => None,
    };
    let mut tctx = Context {
        // A union's config values come from no record: `parent` is none.
        parent: parent
            .as_ref()
            .map(to_value)
            .or_else(|| (!sp.partitions_from.is_empty()).then(|| minijinja::Value::from(()))),
        partition: partition
            .as_ref()
            .map(|(n, v)| to_value(&serde_json::json!({ n.as_str(): v }))),
        parent_partition: upstream.as_ref().map(to_value),
        window: match (&sp.incremental, &window) {
            (Some(inc), Some(w)) => Some(to_value(&serde_json::json!({
                "start": inc.request_format.write(w.start),
                "end": inc.request_format.write(w.end),
            }))),
            _ => None,
        },
        ..plan.context()
    };
    if sp.incremental.is_some() || !sp.response_state.is_empty() {
        let kept = start
            .map(|s| &s.values)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), plan.redactor.unseal_value(v)));
        tctx.state = Some(to_value(&sp.state_value(kept, sent_lower.clone())));
    }
    let mut base = plan
        .base_request(sp, &tctx.to_value())
        .map_err(stream_err)?;
    if let (Some(inc), Some(lb)) = (&sp.incremental, &sent_lower)
        && let Some(param) = &inc.param
    {
        base.set_query(
            param,
            lb.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| lb.to_string()),
        );
    }
    let raw =
        crate::raw_records::applies(sp.raw_path.is_some(), ctx.raw_json, !children.is_empty());
    let mut reader = PartitionReader::new(plan, sp, base, raw, ctx.opts.max_pages)
        .with_quota(ctx.rt.quota(name))
        .with_state(tctx.state.clone());
    let mut part = Partition {
        ctx,
        run,
        sp,
        name,
        key,
        parent,
        for_children,
        children,
        shaper: RecordShaper {
            plan,
            sp,
            ctx: tctx,
            lower: lower.clone(),
            boundary: boundary.as_ref(),
            feed_all,
            any_json: ctx.any_json,
        },
        selected: ctx.selected.contains(name),
        records_written: AtomicU64::new(0),
        skip_writes_until: 0,
        own_cursor: sp.per_partition_cursor().then(|| OwnCursor {
            lower,
            pending: Mutex::new(
                in_flight
                    .and_then(|p| p.pending.clone())
                    .unwrap_or_default(),
            ),
        }),
        start,
    };

    // Resume: continue from the saved page, or, for a parent whose children
    // need every parent record, re-read from the start without writing again.
    if finished {
        part.skip_writes_until = u64::MAX;
    } else if let Some(saved) = resume.and_then(|r| r.partitions.get(&part.key)) {
        if !children.is_empty() {
            part.skip_writes_until = saved.pages;
            part.records_written = AtomicU64::new(saved.records);
        } else {
            reader.resume(&saved.position, saved.pages)?;
            part.records_written = AtomicU64::new(saved.records);
            tracing::info!(
                "stream {name}: partition `{}` resumes at page {}",
                part.key,
                saved.pages + 1
            );
        }
    }

    // Previews stop at a record count, so they never fetch ahead of it
    // (neither the next page nor parallel pages).
    let fetch_ahead = ctx.opts.limit.is_none();
    let mut ahead: Option<Result<Prefetch>> = None;
    // The request after `ahead`, sent before `ahead`'s page is parsed, where
    // the announced total says what it will be (offsets, page numbers).
    let mut beyond: Option<Prefetch> = None;
    let (mut total, mut guesses) = (None, true);
    loop {
        if part.halted() {
            return Ok(());
        }
        let (call, fetched) = match ahead.take() {
            Some(next) => {
                let next = next?;
                let call = next.call.clone();
                (call, next.finish(&part).await)
            }
            None => {
                let Some(call) = reader.next_call()? else {
                    return Ok(());
                };
                let fetched = part.fetch(&call).await;
                (call, fetched)
            }
        };
        let Some(page) = reader.read(&call, fetched?)? else {
            return Ok(()); // stopped while the request was out
        };
        if let (Some(t), None) = (page.total, &part.parent) {
            run.stats.total.store(t, Ordering::Relaxed);
        }
        total = page.total.or(total);
        // With the total known, the remaining pages can go out in parallel.
        let parallel = match (page.total, fetch_ahead && children.is_empty()) {
            (Some(t), true) => reader.remaining_calls(t)?,
            _ => None,
        };
        if !reader.is_done() && fetch_ahead {
            // A refused next request is reported after this page is written.
            let guessed = beyond.take();
            ahead = reader
                .next_call()
                .map(|c| {
                    c.map(|c| match guessed {
                        Some(g) if g.is_for(&c) => g,
                        Some(_) => {
                            // A wrong guess (pages shorter than asked, a
                            // total that moved) is dropped, which cancels
                            // it, and the partition guesses no more.
                            guesses = false;
                            part.prefetch(c)
                        }
                        None => part.prefetch(c),
                    })
                })
                .transpose();
            // No guess where requests are counted (a quota, a server's budget).
            let unpaced = guesses && ctx.rt.limiter.unpaced() && reader.quota_free();
            if let (Some(t), Some(Ok(_)), true) = (total, &ahead, unpaced) {
                beyond = reader.call_after_next(t).map(|c| part.prefetch(c));
            }
            // Yield once so the request goes out now: tokio keeps a task
            // spawned here in this worker's LIFO slot, which no other worker
            // may steal, so it would otherwise wait until the page is written.
            // Its answer then wakes it on the idle worker.
            tokio::task::yield_now().await;
        }
        let last = page.next.is_none();
        part.land(page).await?;
        if let Some(calls) = parallel.filter(|c| !c.is_empty()) {
            return run_parallel(&part, &reader, calls).await;
        }
        if last || reader.is_done() {
            return Ok(());
        }
    }
}

/// The next page's request, already sent. Dropping it cancels the request.
struct Prefetch {
    call: PageCall,
    task: tokio::task::JoinHandle<std::result::Result<Fetched, FetchError>>,
}

impl Prefetch {
    /// True when this is the request `call` makes.
    fn is_for(&self, call: &PageCall) -> bool {
        let (a, b) = (&self.call.request, &call.request);
        self.call.page_no == call.page_no
            && a.method == b.method
            && a.url == b.url
            && a.headers == b.headers
            && a.body == b.body
    }

    async fn finish(mut self, part: &Partition<'_>) -> Result<Fetched> {
        let done = tokio::select! {
            r = &mut self.task => r,
            _ = part.ctx.cancel.cancelled() => return Ok(Fetched::Cancelled),
        };
        match done {
            Ok(fetched) => fetched.map_err(|e| part.fetch_error(self.call.page_no, e)),
            Err(e) => Err(part.err(
                self.call.page_no,
                &self.call.shown,
                format!("the request task failed: {e}"),
            )),
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fetches the remaining pages of a partition whose total is known, up to
/// `concurrency` at once, and lands them in order, so records keep their
/// order and each checkpoint covers every page before it.
async fn run_parallel(
    part: &Partition<'_>,
    reader: &PartitionReader<'_>,
    calls: Vec<PageCall>,
) -> Result<()> {
    use futures_util::stream::{self, StreamExt};
    tracing::debug!(
        "stream {}: fetching {} remaining pages in parallel",
        part.name,
        calls.len()
    );
    // Each page is fetched on a task of its own, so pages download and
    // decode on other workers while this one writes.
    let mut pages = stream::iter(calls)
        .map(|call| {
            let fetch = part.prefetch(call.clone());
            async move { (call, fetch.finish(part).await) }
        })
        .buffered(part.ctx.workers);
    while let Some((call, fetched)) = pages.next().await {
        if part.halted() {
            return Ok(());
        }
        let Some(page) = reader.read_parallel(&call, fetched?)? else {
            return Ok(());
        };
        let last = page.next.is_none();
        part.land(page).await?;
        if last {
            return Ok(());
        }
    }
    Ok(())
}
