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
/// How close to the measured rate the rate rises.
const UNDER_MEASURED: f64 = 0.98;
/// How long a measurement holds the rate under it.
pub const PROBE_AFTER: Duration = Duration::from_secs(30);

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
    /// The rate last measured from refusals, and when.
    measured: Option<(f64, Instant)>,
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
                measured: None,
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
            let mut raised = rate * (1.0 + RISE);
            if let Some((measured, at)) = s.measured
                && now.duration_since(at) < PROBE_AFTER
            {
                raised = raised.min(measured * UNDER_MEASURED);
            }
            if raised <= rate {
                return None;
            }
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
                s.measured = Some((measured, now));
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

    /// One second passes for the rate's rise.
    fn a_second_later(l: &LearnedRate) -> Option<f64> {
        l.state.lock().unwrap().changed -= Duration::from_secs(1);
        l.accepted()
    }

    #[test]
    fn the_rate_rises_to_just_under_what_was_measured_until_it_probes() {
        let l = LearnedRate::default();
        for _ in 0..6 {
            l.accepted();
        }
        l.refused(Instant::now(), Instant::now());
        {
            let mut s = l.state.lock().unwrap();
            s.since = Instant::now() - Duration::from_millis(500);
            s.accepted = 6 + 10;
        }
        // Measured 20 a second (10 past the burst in 0.5 s): 19 set.
        let set = l.refused(Instant::now(), Instant::now()).unwrap();
        assert!((set - 19.0).abs() < 0.5, "{set}");
        let mut rates = vec![];
        for _ in 0..10 {
            rates.extend(a_second_later(&l));
        }
        let top = l.rate().unwrap();
        assert!(
            rates.len() >= 2 && rates.windows(2).all(|w| w[0] < w[1]),
            "{rates:?}"
        );
        assert!(
            (top - 19.6).abs() < 0.1,
            "rises to 98% of 20, no further: {top}"
        );
        // Long after the measurement, it rises past it.
        {
            let mut s = l.state.lock().unwrap();
            let (m, at) = s.measured.unwrap();
            s.measured = Some((m, at - PROBE_AFTER));
        }
        let probing = a_second_later(&l).unwrap();
        assert!(probing > 19.9, "{probing}");
    }
}
