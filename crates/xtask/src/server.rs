//! The benchmark's loopback server: hyper 1 on its own thread and tokio
//! runtime, bound to 127.0.0.1:0, serving pre-rendered pages.
//!
//! | request | answer |
//! |---|---|
//! | `GET /<collection>?_start=K&_limit=L` | the page (json-server offset paging), `X-Total-Count` |
//! | `GET /parents/{id}/children` | the parent's children, one page |
//! | `GET /events?start=T&end=T&limit=L[&cursor=C]` | [`Events`] updated in `[start, end]`, cursor-paged: `{"data": […], "next_cursor": C or null}` |
//! | anything else | 404 / 400 |
//!
//! Keep-alive, `Content-Length`, gzip when the request accepts it. Optional
//! fixed latency per answered request; a fixed-window or rolling-window rate
//! limit (429 with `Retry-After`, answered at once;
//! `X-RateLimit-Limit/-Remaining/-Reset` on every answer when asked for);
//! seeded random faults (503 with `Retry-After`, answered at once); the
//! arrival time of every request, when asked for. Counters (requests, 200s,
//! 429s, faults, records, bytes, first request, first and last 200) are read
//! and reset by the harness between runs.

use crate::data::{Collection, Page};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A rate limit: `requests` per fixed window, or in any rolling window.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub requests: u32,
    pub window: Duration,
    /// Send `X-RateLimit-Limit`, `-Remaining` and `-Reset` (delta seconds,
    /// rounded up) on every answer.
    pub headers: bool,
    /// HubSpot's rule: a request is refused when `requests` were admitted in
    /// the `window` before it (any rolling window), not per fixed window.
    pub rolling: bool,
}

/// Seeded random faults: a `503` with `Retry-After`, answered at once.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Probability (0..=1) that a request gets the fault.
    pub rate: f64,
    /// The n-th request of a run faults when `mix(seed ^ n)` says so: the
    /// same run order gets the same faults.
    pub seed: u64,
    /// `Retry-After` in whole seconds.
    pub retry_after: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Delay before every answered (non-429) request.
    pub latency: Duration,
    pub rate: Option<RateLimit>,
    /// Runtime threads: 1 is a current-thread runtime.
    pub threads: usize,
    pub faults: Option<Faults>,
    /// Keep the arrival time of every request ([`Server::arrivals`]).
    pub record_arrivals: bool,
}

/// What the server serves.
#[derive(Default)]
pub struct Routes {
    /// Path (`/items`) → collection; several paths may share one.
    pub collections: HashMap<String, Arc<Collection>>,
    /// `/parents/{id}/children` → `children[id - 1]`.
    pub children: Option<Arc<Vec<Page>>>,
    /// `/events`: records with an `updated_at`, filtered and cursor-paged.
    pub events: Option<Events>,
}

/// `days × per_day` records from [`Events::FIRST_DAY`] on, ids 1.., each
/// with an `updated_at` spread evenly over its day (`per_day` ≤ 86,400).
/// `/events?start=T&end=T&limit=L&cursor=C` answers those with `start ≤
/// updated_at ≤ end` (RFC 3339, UTC), `L` at a time, as `{"data": […],
/// "next_cursor": "K"}`: `K` is the index to go on from within the filtered
/// records, `null` on the last page.
#[derive(Debug, Clone, Copy)]
pub struct Events {
    pub days: u64,
    pub per_day: u64,
}

impl Events {
    /// 2024-01-01T00:00:00Z, days since the Unix epoch.
    pub const FIRST_DAY: i64 = 19_723;

    fn total(&self) -> u64 {
        self.days * self.per_day
    }

    /// Seconds since the epoch of record `id`'s `updated_at`.
    fn time_of(&self, id: u64) -> i64 {
        let (day, k) = ((id - 1) / self.per_day, (id - 1) % self.per_day);
        (Self::FIRST_DAY + day as i64) * 86_400 + (k * 86_400 / self.per_day) as i64
    }

    /// The first id whose time is at or after `t` (ids are in time order).
    fn first_at_or_after(&self, t: i64) -> u64 {
        let (mut lo, mut hi) = (1u64, self.total() + 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.time_of(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Ids with `start ≤ time ≤ end`.
    pub fn ids_between(&self, start: i64, end: i64) -> std::ops::Range<u64> {
        let a = self.first_at_or_after(start);
        let b = self.first_at_or_after(end.saturating_add(1)).max(a);
        a..b
    }

    /// One compact record.
    pub fn record(&self, id: u64, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(
            out,
            "{{\"id\":{id},\"updated_at\":\"{}\",\"amount\":{},\"status\":\"{}\"}}",
            rfc3339(self.time_of(id)),
            (id * 7919) % 100_000,
            ["open", "paid", "void"][(id % 3) as usize]
        );
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("a time within chrono's range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` with `Z` or `+00:00`
/// (fractions ignored).
pub fn parse_rfc3339(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    let n = |r: std::ops::Range<usize>| v.get(r)?.parse::<i64>().ok();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let rest = v[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if !matches!(rest, "Z" | "z" | "+00:00" | "") {
        return None;
    }
    // days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `%XX` and `+` decoded.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(x) => {
                    out.push(x);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub too_many: AtomicU64,
    pub other: AtomicU64,
    /// Injected faults (503s), not in `other`.
    pub faults: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Nanoseconds since server start of the first request and of the first
    /// and last 200, +1 (0: none).
    first_req: AtomicU64,
    first_ok: AtomicU64,
    last_ok: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub requests: u64,
    pub ok: u64,
    pub too_many: u64,
    pub other: u64,
    pub faults: u64,
    pub records: u64,
    pub bytes: u64,
    /// Time between the first and the last 200.
    pub ok_span: Duration,
    /// Time from the first request's arrival to the last 200.
    pub busy_span: Duration,
}

impl Snapshot {
    /// Achieved rate of 200s, from the server's view: n answers span n-1 intervals.
    pub fn ok_rate(&self) -> Option<f64> {
        (self.ok >= 2 && !self.ok_span.is_zero())
            .then(|| (self.ok - 1) as f64 / self.ok_span.as_secs_f64())
    }

    /// Requests per second from the first request's arrival to the last 200.
    pub fn busy_rate(&self) -> Option<f64> {
        (!self.busy_span.is_zero()).then(|| self.requests as f64 / self.busy_span.as_secs_f64())
    }
}

impl Counters {
    fn reset(&self) {
        for c in [
            &self.requests,
            &self.ok,
            &self.too_many,
            &self.other,
            &self.faults,
            &self.records,
            &self.bytes,
            &self.first_req,
            &self.first_ok,
            &self.last_ok,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }

    fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let (first, last, req) = (g(&self.first_ok), g(&self.last_ok), g(&self.first_req));
        Snapshot {
            requests: g(&self.requests),
            ok: g(&self.ok),
            too_many: g(&self.too_many),
            other: g(&self.other),
            faults: g(&self.faults),
            records: g(&self.records),
            bytes: g(&self.bytes),
            ok_span: if first > 0 && last >= first {
                Duration::from_nanos(last - first)
            } else {
                Duration::ZERO
            },
            busy_span: if req > 0 && last >= req {
                Duration::from_nanos(last - req)
            } else {
                Duration::ZERO
            },
        }
    }
}

struct State {
    routes: Routes,
    cfg: ServerConfig,
    counters: Counters,
    started: Instant,
    /// (window index, requests admitted in it).
    window: Mutex<(u128, u32)>,
    /// Admission times within the last rolling window.
    admitted: Mutex<std::collections::VecDeque<Duration>>,
    /// Arrival times since server start (`record_arrivals`).
    arrivals: Mutex<Vec<Duration>>,
}

enum Admission {
    Open,
    Admitted { remaining: u32, reset: Duration },
    Refused { retry_after: Duration },
}

impl State {
    fn admit(&self) -> Admission {
        let Some(rate) = self.cfg.rate else {
            return Admission::Open;
        };
        let now = self.started.elapsed();
        if rate.rolling {
            let mut q = self.admitted.lock().unwrap();
            while q.front().is_some_and(|t| now - *t >= rate.window) {
                q.pop_front();
            }
            return if q.len() < rate.requests as usize {
                q.push_back(now);
                Admission::Admitted {
                    remaining: rate.requests - q.len() as u32,
                    reset: rate.window - (now - q[0]),
                }
            } else {
                Admission::Refused {
                    retry_after: rate.window - (now - q[0]),
                }
            };
        }
        let w = rate.window.as_nanos().max(1);
        let idx = now.as_nanos() / w;
        let left = Duration::from_nanos(((idx + 1) * w - now.as_nanos()) as u64);
        let mut win = self.window.lock().unwrap();
        if win.0 != idx {
            *win = (idx, 0);
        }
        if win.1 < rate.requests {
            win.1 += 1;
            Admission::Admitted {
                remaining: rate.requests - win.1,
                reset: left,
            }
        } else {
            Admission::Refused { retry_after: left }
        }
    }
}

/// Whole seconds, rounded up, at least 1 (`Retry-After` and the reset header).
pub fn ceil_secs(d: Duration) -> u64 {
    (d.as_nanos().div_ceil(1_000_000_000) as u64).max(1)
}

/// `_start` and `_limit` of a query string; other parameters are ignored.
pub fn parse_query(q: &str) -> Result<(u64, Option<u64>), String> {
    let (mut start, mut limit) = (0, None);
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let num = || {
            v.parse::<u64>()
                .map_err(|_| format!("`{k}` is not a number: `{v}`"))
        };
        match k {
            "_start" => start = num()?,
            "_limit" => limit = Some(num()?),
            _ => {}
        }
    }
    Ok((start, limit))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn num(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let c = &st.counters;
    let arrived = st.started.elapsed();
    let n = c.requests.fetch_add(1, Ordering::Relaxed);
    let t = arrived.as_nanos() as u64 + 1;
    let _ = c
        .first_req
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
            (v == 0 || t < v).then_some(t)
        });
    if st.cfg.record_arrivals {
        st.arrivals.lock().unwrap().push(arrived);
    }
    let admission = st.admit();
    let mut resp = match admission {
        Admission::Refused { retry_after } => {
            c.too_many.fetch_add(1, Ordering::Relaxed);
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, r#"{"error":"rate limited"}"#);
            r.headers_mut()
                .insert(header::RETRY_AFTER, num(ceil_secs(retry_after)));
            if let Some(rate) = st.cfg.rate.filter(|r| r.headers) {
                let h = r.headers_mut();
                h.insert("x-ratelimit-limit", num(rate.requests as u64));
                h.insert("x-ratelimit-remaining", num(0));
                h.insert("x-ratelimit-reset", num(ceil_secs(retry_after)));
            }
            return r;
        }
        _ if st.cfg.faults.is_some_and(|f| faulty(f, n)) => {
            c.faults.fetch_add(1, Ordering::Relaxed);
            let f = st.cfg.faults.expect("checked");
            let mut r = text(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"temporarily unavailable"}"#,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, num(f.retry_after));
            return r;
        }
        _ => {
            if !st.cfg.latency.is_zero() {
                tokio::time::sleep(st.cfg.latency).await;
            }
            answer(&st, &req)
        }
    };
    if let (Some(rate), Admission::Admitted { remaining, reset }) = (st.cfg.rate, admission)
        && rate.headers
    {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", num(rate.requests as u64));
        h.insert("x-ratelimit-remaining", num(remaining as u64));
        h.insert("x-ratelimit-reset", num(ceil_secs(reset)));
    }
    resp
}

/// Whether the `n`-th request of a run gets the fault.
fn faulty(f: Faults, n: u64) -> bool {
    let mut z = (f.seed ^ n).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < f.rate
}

/// `/events?start=T&end=T&limit=L&cursor=K`.
fn events_page(ev: &Events, query: &str) -> Result<(Bytes, u32), String> {
    let (mut start, mut end, mut limit, mut cursor) = (None, None, None, 0u64);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        let time = || parse_rfc3339(&v).ok_or(format!("`{k}` is not an RFC 3339 time: `{v}`"));
        let num = || {
            v.parse::<u64>()
                .map_err(|_| format!("`{k}` is not a number: `{v}`"))
        };
        match k {
            "start" => start = Some(time()?),
            "end" => end = Some(time()?),
            "limit" => limit = Some(num()?),
            "cursor" => cursor = num()?,
            _ => {}
        }
    }
    let (Some(start), Some(end), Some(limit)) = (start, end, limit.filter(|l| *l > 0)) else {
        return Err("start, end and limit are required".into());
    };
    let ids = ev.ids_between(start, end);
    let from = ids.start.saturating_add(cursor).min(ids.end);
    let to = from.saturating_add(limit).min(ids.end);
    let mut out = Vec::with_capacity((to - from) as usize * 96 + 64);
    out.extend_from_slice(b"{\"data\":[");
    for id in from..to {
        if id > from {
            out.push(b',');
        }
        ev.record(id, &mut out);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    if to < ids.end {
        out.extend_from_slice(format!("\"{}\"", cursor + (to - from)).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
    out.push(b'}');
    Ok((Bytes::from(out), (to - from) as u32))
}

fn answer(st: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let c = &st.counters;
    let path = req.uri().path();
    if let (Some(ev), "/events") = (&st.routes.events, path) {
        return match events_page(ev, req.uri().query().unwrap_or("")) {
            Ok((body, records)) => {
                let page = Page {
                    body,
                    gzip: None,
                    records,
                };
                ok_response(st, page, false, ev.total())
            }
            Err(e) => {
                c.other.fetch_add(1, Ordering::Relaxed);
                text(StatusCode::BAD_REQUEST, &format!("{{\"error\":{e:?}}}"))
            }
        };
    }
    let accepts_gzip = req
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("gzip")));
    let (page, total) = if let Some(col) = st.routes.collections.get(path) {
        let (start, limit) = match parse_query(req.uri().query().unwrap_or("")) {
            Ok((s, Some(l))) if l > 0 => (s, l),
            Ok(_) => {
                c.other.fetch_add(1, Ordering::Relaxed);
                return text(StatusCode::BAD_REQUEST, r#"{"error":"_limit is required"}"#);
            }
            Err(e) => {
                c.other.fetch_add(1, Ordering::Relaxed);
                return text(StatusCode::BAD_REQUEST, &format!("{{\"error\":{e:?}}}"));
            }
        };
        (col.page(start, limit), col.total)
    } else if let Some(page) = child_page(st, path) {
        (page.clone(), page.records as u64)
    } else {
        c.other.fetch_add(1, Ordering::Relaxed);
        return text(StatusCode::NOT_FOUND, "{}");
    };
    ok_response(st, page, accepts_gzip, total)
}

/// A 200 with `page`, counted.
fn ok_response(st: &State, page: Page, accepts_gzip: bool, total: u64) -> Response<Full<Bytes>> {
    let c = &st.counters;
    let (body, gzipped) = match (&page.gzip, accepts_gzip) {
        (Some(gz), true) => (gz.clone(), true),
        _ => (page.body.clone(), false),
    };
    c.ok.fetch_add(1, Ordering::Relaxed);
    c.records.fetch_add(page.records as u64, Ordering::Relaxed);
    c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let t = st.started.elapsed().as_nanos() as u64 + 1;
    let _ = c
        .first_ok
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
            (v == 0 || t < v).then_some(t)
        });
    c.last_ok.fetch_max(t, Ordering::SeqCst);
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("x-total-count", num(total));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    r
}

fn child_page<'a>(st: &'a State, path: &str) -> Option<&'a Page> {
    let children = st.routes.children.as_ref()?;
    let id: usize = path
        .strip_prefix("/parents/")?
        .strip_suffix("/children")?
        .parse()
        .ok()?;
    children.get(id.checked_sub(1)?)
}

/// A running server; dropping it stops it.
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(routes: Routes, cfg: ServerConfig) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let threads = cfg.threads.max(1);
        let state = Arc::new(State {
            routes,
            cfg,
            counters: Counters::default(),
            started: Instant::now(),
            window: Mutex::new((u128::MAX, 0)),
            admitted: Mutex::new(Default::default()),
            arrivals: Mutex::new(Vec::new()),
        });
        let rt = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?
        };
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("a listener inside the runtime");
                    loop {
                        tokio::select! {
                            _ = &mut stop_rx => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let _ = stream.set_nodelay(true);
                                let st = st.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let st = st.clone();
                                        async move { Ok::<_, Infallible>(handle(st, req).await) }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .keep_alive(true)
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
                // Dropping the runtime here cancels the connection tasks.
            })?;
        Ok(Server {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn reset(&self) {
        self.state.counters.reset();
        self.state.arrivals.lock().unwrap().clear();
        self.state.admitted.lock().unwrap().clear();
        *self.state.window.lock().unwrap() = (u128::MAX, 0);
    }

    /// Arrival times of the requests since the last reset (when
    /// `record_arrivals`), in order.
    pub fn arrivals(&self) -> Vec<Duration> {
        let mut a = self.state.arrivals.lock().unwrap().clone();
        a.sort();
        a
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.counters.snapshot()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Style, render_children};
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One keep-alive connection, raw HTTP/1.1: (status line, headers, body) per request.
    fn get(conn: &mut TcpStream, path: &str, gzip: bool) -> (String, String, Vec<u8>) {
        let ae = if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        };
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n{ae}\r\n").unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).unwrap();
            buf.push(byte[0]);
        }
        let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        conn.read_exact(&mut body).unwrap();
        let (status, headers) = head.split_once("\r\n").unwrap();
        (status.to_string(), headers.to_string(), body)
    }

    #[test]
    fn serves_pages_children_and_refuses_over_the_limit() {
        let col = Arc::new(Collection::render(250, 100, Style::Pretty, Some(1)));
        let mut routes = Routes::default();
        routes.collections.insert("/items".into(), col.clone());
        routes.collections.insert("/s1".into(), col);
        routes.children = Some(Arc::new(render_children(2, 3, Style::Pretty, None)));
        let server = Server::start(
            routes,
            ServerConfig {
                rate: Some(RateLimit {
                    requests: 6,
                    window: Duration::from_secs(60),
                    headers: true,
                    rolling: false,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let mut conn = TcpStream::connect(server.addr).unwrap();
        let (s, h, b) = get(&mut conn, "/items?_start=200&_limit=100", false);
        assert!(s.contains(" 200 "), "{s}");
        assert!(h.contains("x-total-count: 250"), "{h}");
        assert!(h.contains("x-ratelimit-remaining: 5"), "{h}");
        assert_eq!(
            serde_json::from_slice::<Vec<serde_json::Value>>(&b)
                .unwrap()
                .len(),
            50
        );
        let (_, h, b) = get(&mut conn, "/s1?_start=0&_limit=100", true);
        assert!(h.contains("content-encoding: gzip"), "{h}");
        assert_eq!(&b[..2], &[0x1f, 0x8b]);
        let (_, _, b) = get(&mut conn, "/items?_start=300&_limit=100", false);
        assert_eq!(b, b"[]");
        let (_, _, b) = get(&mut conn, "/parents/2/children", false);
        assert!(String::from_utf8(b).unwrap().contains("\"parentId\": 2"));
        let (s, _, _) = get(&mut conn, "/items?_start=0", false);
        assert!(s.contains(" 400 "), "{s}");
        let (s, _, _) = get(&mut conn, "/nope", false);
        assert!(s.contains(" 404 "), "{s}");
        let (s, h, _) = get(&mut conn, "/items?_start=0&_limit=100", false);
        assert!(s.contains(" 429 "), "{s}");
        assert!(h.contains("retry-after: "), "{h}");
        let snap = server.snapshot();
        assert_eq!(
            (
                snap.requests,
                snap.ok,
                snap.too_many,
                snap.other,
                snap.records
            ),
            (7, 4, 1, 2, 50 + 100 + 3)
        );
        server.reset();
        assert_eq!(server.snapshot(), Snapshot::default());
    }

    #[test]
    fn parses_queries_and_rounds_waits_up() {
        assert_eq!(parse_query("_start=10&_limit=5&x=1"), Ok((10, Some(5))));
        assert_eq!(parse_query(""), Ok((0, None)));
        assert!(parse_query("_start=x").is_err());
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 1);
    }

    #[test]
    fn rolling_window_faults_and_cursor_paged_events() {
        // Rolling: 3 in any 60 s; a refusal does not count.
        let mut routes = Routes::default();
        routes.collections.insert(
            "/items".into(),
            Arc::new(Collection::render(10, 5, Style::Compact, None)),
        );
        let server = Server::start(
            routes,
            ServerConfig {
                rate: Some(RateLimit {
                    requests: 3,
                    window: Duration::from_secs(60),
                    headers: false,
                    rolling: true,
                }),
                record_arrivals: true,
                ..Default::default()
            },
        )
        .unwrap();
        let mut conn = TcpStream::connect(server.addr).unwrap();
        let statuses: Vec<String> = (0..5)
            .map(|_| get(&mut conn, "/items?_start=0&_limit=5", false).0)
            .collect();
        assert!(
            statuses[..3].iter().all(|s| s.contains(" 200 ")),
            "{statuses:?}"
        );
        assert!(
            statuses[3..].iter().all(|s| s.contains(" 429 ")),
            "{statuses:?}"
        );
        assert_eq!(server.arrivals().len(), 5);
        server.reset();
        assert!(server.arrivals().is_empty());
        assert!(
            get(&mut conn, "/items?_start=0&_limit=5", false)
                .0
                .contains(" 200 ")
        );

        // Faults: about the asked fraction, 503 with Retry-After.
        let f = Faults {
            rate: 0.1,
            seed: 16,
            retry_after: 1,
        };
        let n = (0..10_000u64).filter(|n| faulty(f, *n)).count();
        assert!((900..1_100).contains(&n), "{n}");
        let server = Server::start(
            Routes {
                events: Some(Events {
                    days: 3,
                    per_day: 4,
                }),
                ..Default::default()
            },
            ServerConfig {
                faults: Some(Faults { rate: 1.0, ..f }),
                ..Default::default()
            },
        )
        .unwrap();
        let mut conn = TcpStream::connect(server.addr).unwrap();
        let (s, h, _) = get(&mut conn, "/events?start=x", false);
        assert!(
            s.contains(" 503 ") && h.contains("retry-after: 1"),
            "{s} {h}"
        );
        assert_eq!(server.snapshot().faults, 1);

        // Events: day 2 (2024-01-02), 4 records 6 h apart, 3 a page.
        let server = Server::start(
            Routes {
                events: Some(Events {
                    days: 3,
                    per_day: 4,
                }),
                ..Default::default()
            },
            ServerConfig::default(),
        )
        .unwrap();
        let mut conn = TcpStream::connect(server.addr).unwrap();
        let q = "/events?start=2024-01-02T00%3A00%3A00Z&end=2024-01-02T23:59:59Z&limit=3";
        let (s, _, b) = get(&mut conn, q, false);
        assert!(s.contains(" 200 "), "{s}");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let ids: Vec<u64> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [5, 6, 7]);
        assert_eq!(v["data"][1]["updated_at"], "2024-01-02T06:00:00Z");
        assert_eq!(v["next_cursor"], "3");
        let (_, _, b) = get(&mut conn, &format!("{q}&cursor=3"), false);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["data"][0]["id"], 8);
        assert_eq!(v["next_cursor"], serde_json::Value::Null);
        let (s, _, _) = get(&mut conn, "/events?start=2024-01-02T00:00:00Z", false);
        assert!(s.contains(" 400 "), "{s}");
    }

    #[test]
    fn rfc3339_round_trips() {
        for t in [
            0i64,
            19_723 * 86_400,
            19_753 * 86_400 - 1,
            1_709_164_800,
            951_782_400,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(rfc3339(19_723 * 86_400), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2024-01-31T00:00:00.000+00:00"),
            Some(19_753 * 86_400)
        );
        assert_eq!(parse_rfc3339("2024-01-31"), None);
        assert_eq!(percent_decode("a%3Ab+c%2"), "a:b c%2");
    }
}
