//! The sync loop. Each needed stream gets a runner; a root stream has one
//! partition, a child stream one partition per parent record, fed through a
//! bounded channel (so a parent never runs far ahead of its children) and
//! run by up to `concurrency` workers. Every page is written as it arrives.

use crate::destination::Destination;
use crate::error::{EngineError, Result};
use crate::http::{Fetched, HttpClient, PageRequest};
use crate::pagination::{self, PageView};
use crate::plan::{Plan, StreamPlan};
use crate::rate_limit::RateLimiter;
use crate::stats::{StreamStats, StreamSummary};
use crate::template::Context;
use connector_spec::RateValue;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Options of one sync.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Streams to write. Empty: all.
    pub streams: Vec<String>,
    /// Stop each stream after this many records.
    pub limit: Option<u64>,
    /// Stop each partition after this many pages.
    pub max_pages: Option<u64>,
    /// Most requests in flight, and workers per child stream.
    pub concurrency: Option<u32>,
    /// Overrides the spec's quota.
    pub rate_limit: Option<RateValue>,
    /// Log verbosity (2: headers, redacted).
    pub verbose: u8,
}

/// What a sync did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub streams: Vec<StreamSummary>,
    pub waits: u64,
    pub waited: Duration,
    pub elapsed: Duration,
    pub destination: String,
}

impl SyncReport {
    pub fn failed(&self) -> bool {
        self.streams.iter().any(|s| s.error.is_some())
    }
}

struct RunCtx {
    plan: Plan,
    http: HttpClient,
    dest: Mutex<Box<dyn Destination>>,
    selected: HashSet<String>,
    opts: SyncOptions,
    workers: usize,
}

struct StreamRun {
    stats: StreamStats,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl StreamRun {
    fn fail(&self, e: String) {
        self.failed.store(true, Ordering::Relaxed);
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
        plan.streams.keys().cloned().collect()
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
    for s in &selected {
        let mut cur = Some(s.clone());
        while let Some(c) = cur {
            if !needed.insert(c.clone()) {
                break;
            }
            cur = plan.streams[&c].parent.clone();
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
pub async fn sync(plan: Plan, dest: Box<dyn Destination>, opts: SyncOptions) -> Result<SyncReport> {
    let started = Instant::now();
    let (order, selected) = needed_streams(&plan, &opts.streams)?;
    let concurrency = opts.concurrency.unwrap_or(plan.max_concurrency).max(1);
    let limiter = Arc::new(RateLimiter::new(
        opts.rate_limit.or(plan.rate),
        plan.burst,
        concurrency,
        plan.honor_headers.clone(),
    ));
    let client = crate::http::build_client(&plan.http).map_err(EngineError::Plan)?;
    let mut plan = plan;
    let auth = std::mem::replace(
        &mut plan.auth,
        crate::auth::Authenticator::Static(Default::default()),
    );
    let http = HttpClient::new(
        client,
        &plan.base_url,
        auth,
        limiter.clone(),
        plan.redactor.clone(),
        opts.verbose,
    );
    let destination = dest.describe();
    let ctx = Arc::new(RunCtx {
        plan,
        http,
        dest: Mutex::new(dest),
        selected,
        opts,
        workers: concurrency as usize,
    });

    // Channels from each parent stream to its needed children.
    let mut senders: HashMap<String, Vec<(String, mpsc::Sender<Value>)>> = HashMap::new();
    let mut receivers: HashMap<String, mpsc::Receiver<Value>> = HashMap::new();
    for name in &order {
        if let Some(parent) = &ctx.plan.streams[name].parent {
            let (tx, rx) = mpsc::channel(ctx.workers * 2);
            senders
                .entry(parent.clone())
                .or_default()
                .push((name.clone(), tx));
            receivers.insert(name.clone(), rx);
        }
    }
    for name in &order {
        if ctx.selected.contains(name) {
            ctx.dest.lock().unwrap().open_stream(name)?;
        }
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
    ctx.dest.lock().unwrap().flush()?;
    let (waits, waited) = limiter.waits();
    let streams = order
        .iter()
        .filter(|n| ctx.selected.contains(*n))
        .filter_map(|n| summaries.remove(n))
        .collect();
    Ok(SyncReport {
        streams,
        waits,
        waited,
        elapsed: started.elapsed(),
        destination,
    })
}

async fn run_stream(
    ctx: Arc<RunCtx>,
    name: String,
    parents: Option<mpsc::Receiver<Value>>,
    children: Vec<(String, mpsc::Sender<Value>)>,
) -> StreamSummary {
    let started = Instant::now();
    let run = Arc::new(StreamRun {
        stats: StreamStats::default(),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    match parents {
        None => {
            if let Err(e) = run_partition(&ctx, &name, None, &children, &run).await {
                run.fail(e.to_string());
            }
        }
        Some(rx) => {
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..ctx.workers {
                let (ctx, rx, run, children, name) = (
                    ctx.clone(),
                    rx.clone(),
                    run.clone(),
                    children.clone(),
                    name.clone(),
                );
                workers.spawn(async move {
                    loop {
                        let parent = rx.lock().await.recv().await;
                        let Some(parent) = parent else { break };
                        if run.failed.load(Ordering::Relaxed) {
                            continue; // drain, so the parent is never blocked
                        }
                        if let Err(e) =
                            run_partition(&ctx, &name, Some(parent), &children, &run).await
                        {
                            run.fail(e.to_string());
                        }
                    }
                });
            }
            while workers.join_next().await.is_some() {}
        }
    }
    drop(children);
    if ctx.selected.contains(&name) {
        let closed = ctx.dest.lock().unwrap().close_stream(&name);
        if let Err(e) = closed {
            run.fail(e.to_string());
        }
    }
    let error = run.error.lock().unwrap().clone();
    run.stats.summary(&name, started.elapsed(), error)
}

fn limit_reached(ctx: &RunCtx, run: &StreamRun) -> bool {
    ctx.opts
        .limit
        .is_some_and(|l| run.stats.records.load(Ordering::Relaxed) >= l)
}

async fn run_partition(
    ctx: &RunCtx,
    name: &str,
    parent: Option<Value>,
    children: &[(String, mpsc::Sender<Value>)],
    run: &StreamRun,
) -> Result<()> {
    let sp: &StreamPlan = &ctx.plan.streams[name];
    let plan = &ctx.plan;
    let redactor = &plan.redactor;
    run.stats.partitions.fetch_add(1, Ordering::Relaxed);
    let tctx = Context {
        parent: parent.as_ref().map(crate::template::to_value),
        ..plan.context()
    };
    let cv = tctx.to_value();
    let stream_err = |page: u64, url: &str, message: String| EngineError::Stream {
        stream: name.to_string(),
        page,
        url: url.to_string(),
        message: redactor.redact(&message),
    };

    let base = plan
        .base_request(sp, &cv)
        .map_err(|e| stream_err(1, "", e))?;
    let (mut paginator, stop) =
        pagination::build(&sp.pagination, sp.page_size).map_err(|e| stream_err(1, "", e))?;
    let max_pages = [ctx.opts.max_pages, stop.as_ref().and_then(|s| s.max_pages)]
        .into_iter()
        .flatten()
        .min();

    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut page_no = 0u64;
    let mut received = 0u64;
    loop {
        if run.failed.load(Ordering::Relaxed) || limit_reached(ctx, run) {
            return Ok(());
        }
        page_no += 1;
        let mut parts = base.clone();
        paginator.prepare(&mut parts);
        let url = parts.full_url();
        let shown = redactor.url(&url);
        // Loop guard: the same request twice in one partition never ends.
        let key = format!("{url} {:?} {:?}", parts.headers, parts.body);
        if let Some(first) = seen.insert(key, page_no) {
            return Err(stream_err(
                page_no,
                &shown,
                format!(
                    "pagination loop: page {page_no} repeats the request of page {first} ({shown}); the API returned the same next-page token or URL twice"
                ),
            ));
        }
        let req = PageRequest {
            method: sp.method.clone(),
            url,
            headers: parts.headers,
            body: parts.body,
        };
        let fetched = ctx
            .http
            .fetch(&req, &sp.retry, &run.stats)
            .await
            .map_err(|e| EngineError::Stream {
                stream: name.to_string(),
                page: page_no,
                url: e.url,
                message: e.message,
            })?;
        let mut resp = match fetched {
            Fetched::Page(r) => Some(r),
            Fetched::Ignored => None,
            Fetched::Stop => return Ok(()),
        };
        let mut records = match resp.as_mut() {
            Some(r) => sp.selector.select(&mut r.json).map_err(|e| {
                let body = serde_json::to_vec(&r.json).unwrap_or_default();
                let excerpt = crate::http::excerpt(&body);
                stream_err(page_no, &shown, format!("{e}; body starts: {excerpt}"))
            })?,
            None => Vec::new(),
        };
        let raw_count = records.len();
        received += raw_count as u64;
        run.stats.pages.fetch_add(1, Ordering::Relaxed);

        // Reshape and filter.
        let mut kept = Vec::with_capacity(records.len());
        for mut r in records.drain(..) {
            if sp
                .selector
                .transform(&mut r, &plan.templates, &tctx)
                .map_err(|e| stream_err(page_no, &shown, e.to_string()))?
            {
                kept.push(r);
            }
        }
        if let Some(l) = ctx.opts.limit {
            let have = run.stats.records.load(Ordering::Relaxed);
            kept.truncate(l.saturating_sub(have) as usize);
        }
        run.stats
            .records
            .fetch_add(kept.len() as u64, Ordering::Relaxed);
        if ctx.selected.contains(name) && !kept.is_empty() {
            let mut d = ctx.dest.lock().unwrap();
            d.write_batch(name, &kept)?;
            d.flush()?;
        }
        for rec in &kept {
            for (_, tx) in children {
                // The child runner lives as long as its senders; a send fails
                // only if it has stopped, and then there is nothing to feed.
                let _ = tx.send(rec.clone()).await;
            }
        }
        drop(kept);

        let view = PageView {
            response: resp.as_ref(),
            records: raw_count,
        };
        let more = paginator
            .advance(&view)
            .map_err(|e| stream_err(page_no, &shown, e))?;
        if !more {
            return Ok(());
        }
        if let Some(reason) = stop
            .as_ref()
            .and_then(|s| s.stop_reason(&view, paginator.page_size(), received, page_no))
        {
            tracing::debug!("stream {name}: stopping after page {page_no}: {reason}");
            return Ok(());
        }
        if max_pages.is_some_and(|m| page_no >= m) {
            return Ok(());
        }
    }
}
