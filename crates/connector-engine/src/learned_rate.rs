//! A request rate learned from 429s alone, for a server that refuses without
//! saying its budget (nginx `limit_req`: a 429 with `Retry-After: 1`, no
//! rate-limit headers).
//!
//! Such limits are buckets: an empty one lets `burst` requests through at
//! once, then `rate` a second. The first refusal tells the burst (what got
//! through since the start) and bounds the rate; each later refusal after a
//! pause tells the rate: `(accepted since the pause − burst) / time since
//! the pause`. The rate set is 95% of that, rises 2% a second without a
//! refusal (the limit may be higher, or rise), and a refusal too soon to
//! measure halves it. A refusal of a request sent before the rate last
//! changed was sent at the old rate: it changes nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Below this, a measurement is too short to trust.
const MIN_SPAN: Duration = Duration::from_millis(200);
const BELOW: f64 = 0.95;
const RISE: f64 = 0.02;
const SLOWEST: f64 = 0.2;

#[derive(Debug)]
pub struct LearnedRate {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests per second now in force, once learned.
    rate: Option<f64>,
    /// Requests accepted at once by an empty bucket, once seen.
    burst: Option<u64>,
    /// Since when `accepted` counts: the start, or the end of the last pause.
    since: Instant,
    accepted: u64,
    changed: Instant,
}

impl Default for LearnedRate {
    fn default() -> Self {
        let now = Instant::now();
        LearnedRate {
            state: Mutex::new(State {
                rate: None,
                burst: None,
                since: now,
                accepted: 0,
                changed: now,
            }),
        }
    }
}

impl LearnedRate {
    /// The rate in force, requests a second.
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().unwrap().rate
    }

    /// An accepted answer. Returns the new rate when it rose.
    pub fn accepted(&self) -> Option<f64> {
        let mut s = self.state.lock().unwrap();
        s.accepted += 1;
        let now = Instant::now();
        let rate = s.rate?;
        if now.duration_since(s.changed) >= Duration::from_secs(1) {
            let raised = rate * (1.0 + RISE);
            s.rate = Some(raised);
            s.changed = now;
            return Some(raised);
        }
        None
    }

    /// A refusal of a request sent at `sent_at`; `resume` is when requests
    /// go out again (after the server's pause). Returns the new rate, or
    /// `None` when the request went out before the rate last changed.
    pub fn refused(&self, resume: Instant, sent_at: Instant) -> Option<f64> {
        let mut s = self.state.lock().unwrap();
        let now = Instant::now();
        if s.rate.is_some() && sent_at < s.changed {
            return None;
        }
        let span = now.saturating_duration_since(s.since);
        let new = match s.burst {
            None => {
                // The first refusal: all that got through came at once.
                s.burst = Some(s.accepted);
                s.accepted as f64 / span.max(Duration::from_millis(50)).as_secs_f64() * 0.5
            }
            Some(burst) if span >= MIN_SPAN && s.accepted > burst => {
                let measured = (s.accepted - burst) as f64 / span.as_secs_f64();
                let new = measured * BELOW;
                s.rate.map_or(new, |r| new.min(r * BELOW))
            }
            Some(_) => s.rate.unwrap_or(1.0) * 0.5,
        };
        let new = new.max(SLOWEST);
        s.rate = Some(new);
        s.since = resume.max(now);
        s.accepted = 0;
        s.changed = now;
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_a_bucket_from_its_refusals() {
        let l = LearnedRate::default();
        assert_eq!(l.rate(), None);
        for _ in 0..6 {
            assert_eq!(l.accepted(), None, "nothing learned before a refusal");
        }
        let first = l.refused(Instant::now(), Instant::now()).unwrap();
        assert!(first >= 50.0, "an upper bound first: {first}");
        // After the pause: the burst of 6 again, then 20 a second for 0.5 s.
        {
            let mut s = l.state.lock().unwrap();
            s.since = Instant::now() - Duration::from_millis(500);
            s.accepted = 6 + 10;
        }
        // A request sent before that change was refused: nothing learned.
        let before = Instant::now() - Duration::from_secs(1);
        assert_eq!(l.refused(Instant::now(), before), None);
        let second = l.refused(Instant::now(), Instant::now()).unwrap();
        assert!((second - 19.0).abs() < 0.5, "{second}");
        // Too soon to measure: halved.
        let third = l.refused(Instant::now(), Instant::now()).unwrap();
        assert!((third - 9.5).abs() < 0.3, "{third}");
    }
}
