//! The run's rate limiter: one per connector run, shared by every stream and
//! request. A declared quota (`20/s`) paces requests with governor; server
//! headers adjust it as the run goes:
//!
//! - `Retry-After` (delta-seconds or HTTP date) pauses every request;
//! - `X-RateLimit-Remaining: 0` or IETF `RateLimit: r=0` pauses until the reset
//!   (an `X-RateLimit-Reset` above 10^9 is an epoch, below it a delta);
//! - requests go at full speed while the budget is comfortable: finishing
//!   early costs nothing, and a budget spent before the reset waits out the
//!   same time either way. Once the remaining R falls to the reserve (a
//!   tenth of the limit, at least twice the concurrency) and the window ends
//!   in T, requests are spaced T/(R+1) apart, so the budget lasts until the
//!   reset instead of ending in 429s. The window's end is the earliest
//!   `now + reset` seen while `remaining` kept falling: resets in whole
//!   seconds overstate the time left, and re-reading them on every answer
//!   would pace too slowly;
//! - an API's own headers (`custom_headers`: a remaining count or Shopify's
//!   `used/limit`, a reset header or a fixed window, a wait header) feed the
//!   same rules;
//! - an IETF `RateLimit-Policy` (`q=100;w=60`) is adopted as the quota when
//!   the spec declares none.

/// A request quota: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u32,
    pub per: Duration,
}

impl From<connector_spec::RateValue> for Rate {
    fn from(r: connector_spec::RateValue) -> Rate {
        Rate {
            requests: r.requests,
            per: r.per,
        }
    }
}

/// A family of rate-limit response headers the limiter honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderFamily {
    /// `Retry-After`.
    RetryAfter,
    /// `X-RateLimit-Remaining` / `-Reset`.
    XRateLimit,
    /// IETF `RateLimit` / `RateLimit-Policy` and `RateLimit-*`.
    Ietf,
}

/// An API's own rate-limit headers (`custom_headers`), compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomHeaders {
    /// Requests left.
    pub remaining: Option<String>,
    /// `used/limit`.
    pub used_of_limit: Option<String>,
    /// The window's whole budget.
    pub limit: Option<String>,
    /// When the budget renews (delta seconds or epoch).
    pub reset: Option<String>,
    /// How long the budget takes to renew, when no header says.
    pub window: Option<Duration>,
    /// A wait in seconds before the next request.
    pub wait: Option<String>,
}

/// What one answer said of the budget.
struct Budget {
    remaining: u64,
    reset: Duration,
    limit: Option<u64>,
    reason: &'static str,
    shown: String,
}

impl From<connector_spec::RateLimitHeaders> for HeaderFamily {
    fn from(h: connector_spec::RateLimitHeaders) -> HeaderFamily {
        match h {
            connector_spec::RateLimitHeaders::RetryAfter => HeaderFamily::RetryAfter,
            connector_spec::RateLimitHeaders::XRatelimit => HeaderFamily::XRateLimit,
            connector_spec::RateLimitHeaders::Ietf => HeaderFamily::Ietf,
        }
    }
}

/// A second, stream-only quota (a stream's own `rate_limit.requests`),
/// waited for after the run's limiter.
#[derive(Debug)]
pub struct StreamQuota {
    limiter: DefaultDirectRateLimiter,
}

impl StreamQuota {
    pub fn new(rate: Rate, burst: u32) -> Option<StreamQuota> {
        governor_for(rate, burst).map(|l| StreamQuota {
            limiter: Arc::into_inner(l).expect("a new limiter has one owner"),
        })
    }

    /// Waits for a slot of this stream's quota; returns the time waited.
    pub async fn acquire(&self) -> Duration {
        if self.limiter.check().is_ok() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        self.limiter.until_ready().await;
        start.elapsed()
    }
}
use governor::{DefaultDirectRateLimiter, Quota};
use reqwest::header::HeaderMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest wait a header can express here (absurd values such as `inf` or
/// `1e300` become this); the retry policy's `max_wait` refuses long waits
/// well before it.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(7 * 86_400);

/// A wait a server asked for: how long, and which header said so.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerWait {
    pub wait: Duration,
    /// The header, with the value as sent, e.g. `Retry-After: 3600`.
    pub header: String,
    /// A rate-limit answer: every request of the run waits (the limiter
    /// applies it). Otherwise (a 503 with `Retry-After`) only this request.
    pub run_wide: bool,
}

/// A pause in force that is longer than the caller may wait.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitTooLong {
    pub wait: Duration,
    pub reason: String,
}

impl std::fmt::Display for WaitTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server asked to wait {} ({})",
            human(self.wait),
            self.reason
        )
    }
}

#[derive(Debug, Default)]
pub struct WaitStats {
    pub waits: AtomicU64,
    pub waited_ms: AtomicU64,
}

pub struct RateLimiter {
    quota: Mutex<Option<Arc<DefaultDirectRateLimiter>>>,
    declared: bool,
    /// Earliest instant the next request may start (server pause or pacing),
    /// and what asked for it.
    not_before: Mutex<Option<(Instant, String)>>,
    /// The server's current rate-limit window, from its remaining/reset headers.
    window: Mutex<Option<ServerWindow>>,
    honor: Vec<HeaderFamily>,
    custom: Vec<CustomHeaders>,
    in_flight: Arc<Semaphore>,
    /// Most requests in flight: the reserve is at least twice this.
    concurrency: u32,
    /// A rate learned from refusals without a budget.
    learned: crate::learned_rate::LearnedRate,
    /// A declared quota as `n` sends per window, checked on send times.
    send_window: Option<(usize, Duration)>,
    sent: Mutex<std::collections::VecDeque<Instant>>,
    /// Responses come from cassettes: no quota or pause is waited for.
    no_waits: bool,
    pub stats: WaitStats,
    live: Option<Arc<crate::stats::LiveRun>>,
}

/// What the server's headers said of its current rate-limit window.
#[derive(Debug, Clone, Copy)]
struct ServerWindow {
    /// The earliest end the server's answers in this window implied.
    ends: Instant,
    /// The last remaining count it announced.
    remaining: u64,
}

/// Slack after a window's announced end before the next request goes out,
/// for clocks and rounding on the server's side.
const WINDOW_END_MARGIN: Duration = Duration::from_millis(20);

/// Requests are spaced this much wider than the quota asks, so that network
/// jitter cannot push two of them into one server window: 2% of the rate
/// buys zero 429s at a declared limit.
const JITTER_MARGIN: f64 = 1.02;

fn governor_for(rate: Rate, burst: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    let period = (rate.per / rate.requests.max(1)).mul_f64(JITTER_MARGIN);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?);
    Some(Arc::new(DefaultDirectRateLimiter::direct(quota)))
}

impl RateLimiter {
    pub fn new(
        rate: Option<Rate>,
        burst: Option<u32>,
        max_concurrency: u32,
        honor: Vec<HeaderFamily>,
    ) -> Self {
        let quota = rate.and_then(|r| governor_for(r, burst.unwrap_or(1)));
        RateLimiter {
            declared: quota.is_some(),
            quota: Mutex::new(quota),
            not_before: Mutex::new(None),
            window: Mutex::new(None),
            honor,
            custom: Vec::new(),
            in_flight: Arc::new(Semaphore::new(max_concurrency.max(1) as usize)),
            concurrency: max_concurrency.max(1),
            learned: Default::default(),
            send_window: rate.map(|r| (r.requests.max(1) as usize, r.per.mul_f64(JITTER_MARGIN))),
            sent: Mutex::new(std::collections::VecDeque::new()),
            no_waits: false,
            stats: WaitStats::default(),
            live: None,
        }
    }

    /// Waits for a slot: an in-flight permit first (so quota slots are not
    /// spent by requests that then queue and go out in a burst), then any
    /// server pause, then the quota. Returns the permit and the time spent
    /// waiting for the rate limit, or the pause when one in force is longer
    /// than `max_wait`.
    pub async fn acquire(
        &self,
        max_wait: Duration,
    ) -> Result<(OwnedSemaphorePermit, Duration), WaitTooLong> {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if self.no_waits {
            return Ok((permit, Duration::ZERO));
        }
        let mut waited = self.wait_for_pause(max_wait).await?;
        let quota = self.quota.lock().unwrap().clone();
        if let Some(q) = quota {
            // `check` takes a slot when one is free; `until_ready` waits for one and takes it.
            if q.check().is_err() {
                let start = Instant::now();
                q.until_ready().await;
                self.record_wait(start.elapsed());
                waited += start.elapsed();
                // A server pause may have begun meanwhile.
                waited += self.wait_for_pause(max_wait).await?;
            }
        }
        Ok((permit, waited))
    }

    /// Sleeps through a server pause in force, if any and not longer than
    /// `max_wait`.
    async fn wait_for_pause(&self, max_wait: Duration) -> Result<Duration, WaitTooLong> {
        let mut waited = Duration::ZERO;
        loop {
            let pause = self.not_before.lock().unwrap().clone();
            let Some((until, reason)) = pause.filter(|(until, _)| *until > Instant::now()) else {
                return Ok(waited);
            };
            let wait = until - Instant::now();
            if wait > max_wait {
                return Err(WaitTooLong { wait, reason });
            }
            if wait >= Duration::from_millis(200) {
                tracing::info!("server rate limit: waiting {} ({reason})", human(wait));
            }
            self.record_wait(wait);
            waited += wait;
            tokio::time::sleep(wait).await;
        }
    }

    /// Learns a rate from refusals that say no budget (see `learned_rate`):
    /// the quota follows it.
    fn learn(&self, status: u16, wait: Option<&ServerWait>, sent_at: Instant) {
        let changed = if status == 429 {
            let resume = Instant::now() + wait.map(|w| w.wait).unwrap_or_default();
            self.learned.refused(resume, sent_at)
        } else if status < 400 {
            self.learned.accepted()
        } else {
            None
        };
        if let Some(rate) = changed {
            tracing::info!(
                "server refused without a budget: pacing at {rate:.1} requests/s, learned from its 429s"
            );
            // Tenths of a request per 10 s: a rate below one a second stays exact.
            let tenths = (rate * 10.0).round().max(1.0) as u32;
            *self.quota.lock().unwrap() = governor_for(
                Rate {
                    requests: tenths,
                    per: Duration::from_secs(10),
                },
                1,
            );
        }
    }

    /// Waits until sending now keeps the declared quota on what the server
    /// sees: no window of the quota's length holds more sends than it
    /// allows, however late the scheduler ran this task. Call right before
    /// the request goes out.
    pub async fn before_send(&self) {
        let Some((n, per)) = self.send_window else {
            return;
        };
        if self.no_waits {
            return;
        }
        loop {
            let wait = {
                let mut sent = self.sent.lock().unwrap();
                let now = Instant::now();
                while sent.front().is_some_and(|t| now.duration_since(*t) >= per) {
                    sent.pop_front();
                }
                if sent.len() < n {
                    sent.push_back(now);
                    None
                } else {
                    Some(per - now.duration_since(sent[0]))
                }
            };
            match wait {
                None => return,
                Some(w) => tokio::time::sleep(w).await,
            }
        }
    }

    /// Never waits (a replay: the cassettes' answers come at once).
    pub fn without_waits(mut self, yes: bool) -> Self {
        self.no_waits = yes;
        self
    }

    /// Reads an API's own rate-limit headers too.
    pub fn with_custom(mut self, custom: Vec<CustomHeaders>) -> Self {
        self.custom = custom;
        self
    }

    /// Remaining requests at or below this are spread over the time left.
    fn reserve(&self, limit: Option<u64>) -> u64 {
        (2 * u64::from(self.concurrency)).max(limit.unwrap_or(0) / 10)
    }

    /// Reports pauses to a live progress view.
    pub fn with_live(mut self, live: Option<Arc<crate::stats::LiveRun>>) -> Self {
        self.live = live;
        self
    }

    fn record_wait(&self, d: Duration) {
        self.stats.waits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .waited_ms
            .fetch_add(d.as_millis() as u64, Ordering::Relaxed);
    }

    fn pause(&self, wait: Duration, reason: &'static str, header: &str) {
        let wait = wait.min(MAX_SERVER_WAIT);
        let until = Instant::now() + wait;
        let mut nb = self.not_before.lock().unwrap();
        if nb.as_ref().is_none_or(|(t, _)| *t < until) {
            *nb = Some((until, header.to_string()));
            if let Some(live) = &self.live {
                *live.pause.lock().unwrap() = Some((until, reason));
            }
        }
    }

    /// True while nothing paces requests: no declared quota or send window,
    /// no `custom_headers`, no budget announced by the server, no rate
    /// learned from refusals, no pause asked for. Only then may a partition
    /// send a request ahead on a guess (see `run.rs`): where requests are
    /// counted, none is spent on a guess.
    pub fn unpaced(&self) -> bool {
        !self.declared
            && self.custom.is_empty()
            && self.send_window.is_none()
            && self.learned.rate().is_none()
            && self.window.lock().unwrap().is_none()
            && self.not_before.lock().unwrap().is_none()
    }

    /// Reads a response's rate-limit headers. Returns the server's requested
    /// wait before retrying this request, if it named one.
    pub fn observe(&self, status: u16, headers: &HeaderMap) -> Option<ServerWait> {
        self.observe_sent(status, headers, Instant::now())
    }

    /// [`observe`](Self::observe) for a request sent at `sent_at`: a refusal
    /// of a request sent before the learned rate last changed says nothing
    /// about the new rate.
    pub fn observe_sent(
        &self,
        status: u16,
        headers: &HeaderMap,
        sent_at: Instant,
    ) -> Option<ServerWait> {
        // Asked-for waits; whether they hold the whole run is decided once
        // it is known whether this is a rate-limit answer.
        let mut asked: Vec<(Duration, &'static str, String)> = Vec::new();
        if self.honor.contains(&HeaderFamily::RetryAfter)
            && let Some(v) = header(headers, "retry-after")
            && let Some(wait) = parse_retry_after(v)
        {
            asked.push((wait, "Retry-After", format!("Retry-After: {}", v.trim())));
        }
        let mut budget: Option<Budget> = None;
        if self.honor.contains(&HeaderFamily::XRateLimit) {
            // GitHub's `X-RateLimit-*`; Zendesk and X write `X-Rate-Limit-*`.
            for (rem_name, reset_name, limit_name, reason) in [
                (
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                    "x-ratelimit-limit",
                    "X-RateLimit-Reset",
                ),
                (
                    "x-rate-limit-remaining",
                    "x-rate-limit-reset",
                    "x-rate-limit-limit",
                    "X-Rate-Limit-Reset",
                ),
            ] {
                let rem = header(headers, rem_name).and_then(|v| v.trim().parse::<u64>().ok());
                let reset_text = header(headers, reset_name);
                if budget.is_none()
                    && let (Some(r), Some(t)) = (rem, reset_text.and_then(parse_reset))
                {
                    budget = Some(Budget {
                        remaining: r,
                        reset: t,
                        limit: header(headers, limit_name).and_then(|v| v.trim().parse().ok()),
                        reason,
                        shown: format!("{reason}: {}", reset_text.unwrap_or("").trim()),
                    });
                }
            }
        }
        if self.honor.contains(&HeaderFamily::Ietf) {
            let policy_limit = header(headers, "ratelimit-policy").and_then(|p| sf_param(p, "q"));
            if let Some(v) = header(headers, "ratelimit") {
                let r = sf_param(v, "r").or_else(|| sf_param(v, "remaining"));
                let t = sf_param(v, "t").or_else(|| sf_param(v, "reset"));
                if let (Some(r), Some(t)) = (r, t) {
                    budget = Some(Budget {
                        remaining: r,
                        reset: Duration::from_secs(t),
                        limit: sf_param(v, "limit").or(policy_limit),
                        reason: "RateLimit",
                        shown: format!("RateLimit: {}", v.trim()),
                    });
                }
            }
            let rem =
                header(headers, "ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
            let reset_text = header(headers, "ratelimit-reset");
            if budget.is_none()
                && let (Some(r), Some(t)) = (rem, reset_text.and_then(parse_reset))
            {
                budget = Some(Budget {
                    remaining: r,
                    reset: t,
                    limit: header(headers, "ratelimit-limit")
                        .and_then(|v| v.trim().parse().ok())
                        .or(policy_limit),
                    reason: "RateLimit-Reset",
                    shown: format!("RateLimit-Reset: {}", reset_text.unwrap_or("").trim()),
                });
            }
            if !self.declared
                && let Some(p) = header(headers, "ratelimit-policy")
                && let (Some(q), Some(w)) = (sf_param(p, "q"), sf_param(p, "w"))
            {
                self.adopt(q, w);
            }
        }
        for c in &self.custom {
            if let Some(name) = &c.wait
                && let Some(v) = header(headers, name)
                && let Some(wait) = v.trim().parse::<f64>().ok().map(seconds)
            {
                asked.push((wait, "a wait header", format!("{name}: {}", v.trim())));
            }
            if let Some(b) = custom_budget(c, headers) {
                budget = Some(b);
            }
        }
        // A rate-limit answer slows the whole run: a 429, or GitHub's 403
        // with nothing remaining. A fault's wait (a 503 with `Retry-After`)
        // delays only its own request.
        let exhausted = budget.as_ref().is_some_and(|b| b.remaining == 0);
        let limited = status == 429 || (status == 403 && exhausted);
        let mut retry_after = None;
        for (wait, reason, shown) in asked {
            if limited {
                self.pause(wait, reason, &shown);
            }
            if retry_after.is_none() {
                retry_after = Some(ServerWait {
                    wait,
                    header: shown,
                    run_wide: limited,
                });
            }
        }
        if !self.declared && budget.is_none() {
            self.learn(status, retry_after.as_ref(), sent_at);
        }
        if let Some(Budget {
            remaining: r,
            reset,
            limit,
            reason,
            shown,
        }) = budget
        {
            let left = self.window_left(r, reset);
            if r == 0 {
                // A 403 with remaining 0 is GitHub's way of saying 429.
                self.pause(left + WINDOW_END_MARGIN, reason, &shown);
                // With no time left to wait, the retry policy's backoff applies.
                if retry_after.is_none() && (status == 429 || status == 403) && !left.is_zero() {
                    retry_after = Some(ServerWait {
                        wait: left + WINDOW_END_MARGIN,
                        header: shown,
                        run_wide: true,
                    });
                }
            } else if !self.declared && !left.is_zero() && r <= self.reserve(limit) {
                // The budget runs low: spread what is left over the time left.
                let slots = u32::try_from(r).unwrap_or(u32::MAX).saturating_add(1);
                self.pause(
                    left / slots,
                    "pacing to the server's remaining budget",
                    &format!("pacing to the server's remaining budget ({shown})"),
                );
            }
        }
        retry_after
    }

    /// Time left in the server's current window. Within one window (remaining
    /// not rising, end not passed) the earliest implied end wins; a rise in
    /// remaining or a passed end starts a new window.
    fn window_left(&self, remaining: u64, reset: Duration) -> Duration {
        let now = Instant::now();
        let reset = reset.min(MAX_SERVER_WAIT);
        let implied = now + reset;
        // Never earlier than this answer allows: its reset is rounded up by
        // less than a second, and it may speak of another bucket.
        let earliest = now + reset.saturating_sub(Duration::from_secs(1));
        let mut window = self.window.lock().unwrap();
        let ends = match *window {
            Some(w) if w.ends > now && remaining <= w.remaining => w.ends.clamp(earliest, implied),
            _ => implied,
        };
        *window = Some(ServerWindow { ends, remaining });
        ends.saturating_duration_since(now)
    }

    fn adopt(&self, q: u64, w: u64) {
        let mut quota = self.quota.lock().unwrap();
        if quota.is_none() && q > 0 && w > 0 {
            tracing::info!("adopting the server's rate-limit policy: {q} requests per {w}s");
            *quota = governor_for(
                Rate {
                    requests: q as u32,
                    per: Duration::from_secs(w),
                },
                1,
            );
        }
    }

    pub fn waits(&self) -> (u64, Duration) {
        (
            self.stats.waits.load(Ordering::Relaxed),
            Duration::from_millis(self.stats.waited_ms.load(Ordering::Relaxed)),
        )
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then(|| seconds(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The budget an API's own headers announce, if this answer carries them.
fn custom_budget(c: &CustomHeaders, headers: &HeaderMap) -> Option<Budget> {
    let (remaining, mut limit, shown) = if let Some(name) = &c.remaining {
        let v = header(headers, name)?;
        (
            v.trim().parse::<u64>().ok()?,
            None,
            format!("{name}: {}", v.trim()),
        )
    } else {
        let name = c.used_of_limit.as_ref()?;
        let v = header(headers, name)?;
        // `32/40`, or named: Salesforce's `Sforce-Limit-Info: api-usage=18/5000`.
        let pair = v.trim().rsplit('=').next().unwrap_or(v).trim();
        let (used, limit) = pair.split_once('/')?;
        let (used, limit): (u64, u64) = (used.trim().parse().ok()?, limit.trim().parse().ok()?);
        (
            limit.saturating_sub(used),
            Some(limit),
            format!("{name}: {}", v.trim()),
        )
    };
    if let Some(name) = &c.limit
        && let Some(l) = header(headers, name).and_then(|v| v.trim().parse().ok())
    {
        limit = Some(l);
    }
    let reset = c
        .reset
        .as_ref()
        .and_then(|n| header(headers, n))
        .and_then(parse_reset)
        .or(c.window)?;
    Some(Budget {
        remaining,
        reset,
        limit,
        reason: "a custom rate-limit header",
        shown,
    })
}

/// A reset header: an epoch when above 10^9, else delta-seconds; or an
/// RFC 3339 time (Jira's `X-RateLimit-Reset: 2024-05-01T12:00:00Z`).
pub fn parse_reset(v: &str) -> Option<Duration> {
    let Ok(n) = v.trim().parse::<f64>() else {
        let at = chrono::DateTime::parse_from_rfc3339(v.trim()).ok()?;
        let left = at.with_timezone(&chrono::Utc)
            - chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        return Some(left.to_std().unwrap_or(Duration::ZERO).min(MAX_SERVER_WAIT));
    };
    if n > 1e9 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(seconds(n - now))
    } else {
        Some(seconds(n))
    }
}

/// Seconds from a header as a duration: negative is zero, and a value too
/// large to represent (`1e30`, `inf`) is the longest wait honoured.
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(MAX_SERVER_WAIT)
}

/// A numeric parameter of a structured-field header, e.g. `r` in `"default";r=5;t=30`.
fn sf_param(v: &str, key: &str) -> Option<u64> {
    v.split([';', ',']).map(str::trim).find_map(|p| {
        let (k, val) = p.split_once('=')?;
        (k.trim() == key)
            .then(|| val.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(60) {
        // Whole seconds, or whole minutes from an hour on, rounded up: a
        // wait is never shown shorter than it is, and a reset time a second
        // away from an hour's end (an epoch header read a moment later)
        // shows as that hour.
        let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        let secs = if whole >= 3600 {
            whole.div_ceil(60) * 60
        } else {
            whole
        };
        humantime::format_duration(Duration::from_secs(secs)).to_string()
    } else if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_show_rounded_up_to_seconds_then_minutes() {
        let d = Duration::from_secs_f64;
        assert_eq!(human(d(0.25)), "250ms");
        assert_eq!(human(d(1.5)), "1.5s");
        assert_eq!(human(d(90.2)), "1m 31s");
        assert_eq!(human(d(3599.5)), "1h");
        assert_eq!(human(d(3600.5)), "1h 1m");
        // An epoch reset a day away, read a second later.
        assert_eq!(human(d(86_398.7)), "1day");
        // humantime's months and years are not whole minutes.
        assert_eq!(human(d(999_999_999.0)), "31years 8months 7days 19h 18m 12s");
    }

    #[test]
    fn parses_retry_after_and_resets() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let in_5s = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
        let d = parse_retry_after(&in_5s).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );
        assert_eq!(parse_reset("7"), Some(Duration::from_secs(7)));
        let epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        let d = parse_reset(&epoch.to_string()).unwrap();
        assert!(
            d <= Duration::from_secs(10) && d >= Duration::from_secs(8),
            "{d:?}"
        );
        // Jira writes the reset as an RFC 3339 time.
        let at = (chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            + chrono::Duration::seconds(30))
        .to_rfc3339();
        let d = parse_reset(&at).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        // Salesforce names its pair: `api-usage=18/5000`.
        let mut h = HeaderMap::new();
        h.insert("sforce-limit-info", "api-usage=18/5000".parse().unwrap());
        let c = CustomHeaders {
            used_of_limit: Some("sforce-limit-info".into()),
            window: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        let b = custom_budget(&c, &h).unwrap();
        assert_eq!((b.remaining, b.limit), (4982, Some(5000)));
        assert_eq!(sf_param("\"default\";r=0;t=4", "t"), Some(4));
        assert_eq!(sf_param("\"default\";q=100;w=60", "q"), Some(100));
    }

    #[test]
    fn whole_second_resets_keep_the_window_end_seen_first() {
        let limiter = RateLimiter::new(None, None, 1, vec![HeaderFamily::XRateLimit]);
        let second = Duration::from_secs(1);
        let first = limiter.window_left(49, second);
        assert!(first <= second);
        std::thread::sleep(Duration::from_millis(30));
        // The server still rounds up to 1 s, but the window began earlier.
        let later = limiter.window_left(48, second);
        assert!(later <= second - Duration::from_millis(30), "{later:?}");
        // Remaining rose: a new window, measured from now.
        let fresh = limiter.window_left(49, second);
        assert!(fresh > later, "{fresh:?} vs {later:?}");
        // A count of 0 pauses only until the window's end, not a full reset.
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1".parse().unwrap());
        std::thread::sleep(Duration::from_millis(30));
        let wait = limiter.observe(429, &headers).unwrap().wait;
        assert!(wait < second, "{wait:?}");
    }

    #[test]
    fn a_later_answer_never_shortens_the_wait_below_its_own_reset() {
        let limiter = RateLimiter::new(None, None, 1, vec![HeaderFamily::XRateLimit]);
        limiter.window_left(20, Duration::from_secs(40));
        // Another bucket, exhausted for much longer.
        let left = limiter.window_left(0, Duration::from_secs(2000));
        assert!(left >= Duration::from_secs(1999), "{left:?}");
    }

    #[test]
    fn absurd_header_values_are_capped_not_panics() {
        assert_eq!(parse_reset("inf"), Some(MAX_SERVER_WAIT));
        assert_eq!(parse_reset("1e300"), Some(MAX_SERVER_WAIT));
        assert_eq!(parse_retry_after("1e30"), Some(MAX_SERVER_WAIT));
        assert_eq!(parse_retry_after("-5"), None);
        let limiter = RateLimiter::new(None, None, 1, vec![HeaderFamily::XRateLimit]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-remaining",
            "18446744073709551615".parse().unwrap(),
        );
        headers.insert("x-ratelimit-reset", "60".parse().unwrap());
        assert_eq!(limiter.observe(200, &headers), None);
    }
}
