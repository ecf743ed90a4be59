//! The benchmark's loopback server: hyper 1 on its own thread and tokio
//! runtime, bound to 127.0.0.1:0, serving pre-rendered pages.
//!
//! | request | answer |
//! |---|---|
//! | `GET /<collection>?_start=K&_limit=L` | the page (json-server offset paging), `X-Total-Count` |
//! | `GET /parents/{id}/children` | the parent's children, one page |
//! | anything else | 404 / 400 |
//!
//! Keep-alive, `Content-Length`, gzip when the request accepts it. Optional
//! fixed latency per answered request and a fixed-window rate limit (429 with
//! `Retry-After`, answered at once; `X-RateLimit-Limit/-Remaining/-Reset` on
//! every answer when asked for). Counters (requests, 200s, 429s, records,
//! bytes, first and last 200) are read and reset by the harness between runs.

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

/// A fixed-window rate limit.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub requests: u32,
    pub window: Duration,
    /// Send `X-RateLimit-Limit`, `-Remaining` and `-Reset` (delta seconds,
    /// rounded up) on every answer.
    pub headers: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Delay before every answered (non-429) request.
    pub latency: Duration,
    pub rate: Option<RateLimit>,
    /// Runtime threads: 1 is a current-thread runtime.
    pub threads: usize,
}

/// What the server serves.
#[derive(Default)]
pub struct Routes {
    /// Path (`/items`) → collection; several paths may share one.
    pub collections: HashMap<String, Arc<Collection>>,
    /// `/parents/{id}/children` → `children[id - 1]`.
    pub children: Option<Arc<Vec<Page>>>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub too_many: AtomicU64,
    pub other: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Nanoseconds since server start of the first and last 200, +1 (0: none).
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
    pub records: u64,
    pub bytes: u64,
    /// Time between the first and the last 200.
    pub ok_span: Duration,
}

impl Snapshot {
    /// Achieved rate of 200s, from the server's view: n answers span n-1 intervals.
    pub fn ok_rate(&self) -> Option<f64> {
        (self.ok >= 2 && !self.ok_span.is_zero())
            .then(|| (self.ok - 1) as f64 / self.ok_span.as_secs_f64())
    }
}

impl Counters {
    fn reset(&self) {
        for c in [
            &self.requests,
            &self.ok,
            &self.too_many,
            &self.other,
            &self.records,
            &self.bytes,
            &self.first_ok,
            &self.last_ok,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }

    fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let (first, last) = (g(&self.first_ok), g(&self.last_ok));
        Snapshot {
            requests: g(&self.requests),
            ok: g(&self.ok),
            too_many: g(&self.too_many),
            other: g(&self.other),
            records: g(&self.records),
            bytes: g(&self.bytes),
            ok_span: if first > 0 && last >= first {
                Duration::from_nanos(last - first)
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
    c.requests.fetch_add(1, Ordering::Relaxed);
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

fn answer(st: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let c = &st.counters;
    let path = req.uri().path();
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
}
