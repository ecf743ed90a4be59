//! Progress while a sync runs: on a terminal, one indicatif line per stream
//! (records, pages, records/s, state, and a bar with an ETA when the total is
//! known); otherwise a plain log line per stream every few seconds, with
//! the percentage done and an ETA when the total is known
//! (`progress: items: 500 of 2000 records (25%, ETA 12s), 50 pages, …`).
//! `--quiet` shows neither.

use connector_engine::stats::{LiveRun, StreamStats};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often plain log lines are printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    /// Dropping it wakes the display thread at once, so a short sync ends
    /// without waiting for the next tick.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress of `live`, unless quiet. `order` sorts streams.
    pub fn start(live: Arc<LiveRun>, order: Vec<String>, quiet: bool) -> Progress {
        let (stop, stopped) = channel::<()>();
        let thread = (!quiet).then(|| {
            let tty = std::io::stderr().is_terminal();
            std::thread::spawn(move || {
                if tty {
                    bars(&live, &order, &stopped)
                } else {
                    plain(&live, &order, &stopped)
                }
            })
        });
        Progress {
            stop: Some(stop),
            thread,
        }
    }

    pub fn finish(mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sorted(live: &LiveRun, order: &[String]) -> Vec<(String, Arc<StreamStats>)> {
    let mut v = live.streams();
    v.sort_by_key(|(n, _)| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    v
}

/// What a stream is doing now, in a few words.
fn phase(live: &LiveRun, s: &StreamStats) -> String {
    if s.failed.load(Ordering::Relaxed) {
        "failed".into()
    } else if s.finished.load(Ordering::Relaxed) {
        "done".into()
    } else if let Some((left, why)) = live.paused() {
        format!(
            "waiting {:.0}s for the rate limit ({why})",
            left.as_secs_f64().ceil()
        )
    } else if s.retrying.load(Ordering::Relaxed) {
        "retrying".into()
    } else {
        "fetching".into()
    }
}

fn line(live: &LiveRun, s: &StreamStats, elapsed: Duration) -> String {
    let records = s.records.load(Ordering::Relaxed);
    let rate = records as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{} pages, {rate:.0} rec/s, {}",
        s.pages.load(Ordering::Relaxed),
        phase(live, s)
    )
}

fn plain(live: &LiveRun, order: &[String], stop: &Receiver<()>) {
    let started = Instant::now();
    let mut next = started + PLAIN_EVERY;
    // When each stream was first seen: its own rate gives its ETA.
    let mut first_seen: Vec<(String, Instant)> = Vec::new();
    while tick(stop) {
        for (name, _) in live.streams() {
            if !first_seen.iter().any(|(n, _)| *n == name) {
                first_seen.push((name, Instant::now()));
            }
        }
        if Instant::now() < next {
            continue;
        }
        next += PLAIN_EVERY;
        for (name, s) in sorted(live, order) {
            if !s.finished.load(Ordering::Relaxed) {
                let since = first_seen
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(started, |(_, t)| *t);
                let records = s.records.load(Ordering::Relaxed);
                eprintln!(
                    "progress: {name}: {}, {}",
                    done_of(records, s.total.load(Ordering::Relaxed), since.elapsed()),
                    line(live, &s, since.elapsed())
                );
            }
        }
    }
}

/// `N records`, and with a known total `N of T records (P%, ETA 1m 05s)`,
/// the ETA at the rate so far.
fn done_of(records: u64, total: u64, elapsed: Duration) -> String {
    if total == 0 {
        return format!("{records} records");
    }
    let pct = (records as f64 * 100.0 / total as f64).min(100.0);
    let rate = records as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if records == 0 || rate <= 0.0 {
        "ETA unknown".to_string()
    } else {
        let left = total.saturating_sub(records) as f64 / rate;
        format!(
            "ETA {}",
            short_duration(Duration::from_secs_f64(left.ceil()))
        )
    };
    format!("{records} of {total} records ({pct:.0}%, {eta})")
}

/// `45s`, `3m 05s`, `2h 07m`.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

fn bars(live: &LiveRun, order: &[String], stop: &Receiver<()>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let width = order.iter().map(String::len).max().unwrap_or(8);
    let counting = ProgressStyle::with_template(&format!(
        "{{prefix:<{width}}} {{spinner}} {{pos:>9}} records  {{msg}}"
    ))
    .expect("a valid template");
    let known = ProgressStyle::with_template(&format!(
        "{{prefix:<{width}}} [{{bar:30}}] {{pos:>9}}/{{len}} records, ETA {{eta}}  {{msg}}"
    ))
    .expect("a valid template")
    .progress_chars("=> ");
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    let started = Instant::now();
    loop {
        let done = !tick(stop);
        for (name, s) in sorted(live, order) {
            let bar = match bars.iter().find(|(n, _)| *n == name) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = multi.add(
                        ProgressBar::new_spinner()
                            .with_style(counting.clone())
                            .with_prefix(name.clone()),
                    );
                    bars.push((name.clone(), b.clone()));
                    b
                }
            };
            let total = s.total.load(Ordering::Relaxed);
            if total > 0 && bar.length() != Some(total) {
                bar.set_style(known.clone());
                bar.set_length(total);
            }
            bar.set_position(s.records.load(Ordering::Relaxed));
            bar.set_message(line(live, &s, started.elapsed()));
            bar.tick();
        }
        if done {
            break;
        }
    }
    for (_, b) in &bars {
        b.abandon();
    }
    let _ = multi.clear();
}

/// Waits one display tick; false once the sync has finished.
fn tick(stop: &Receiver<()>) -> bool {
    matches!(
        stop.recv_timeout(Duration::from_millis(100)),
        Err(RecvTimeoutError::Timeout)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_percent_and_eta_when_the_total_is_known() {
        let ten = Duration::from_secs(10);
        assert_eq!(done_of(500, 0, ten), "500 records");
        // 50 records/s, 1,500 to go: 30 s.
        assert_eq!(
            done_of(500, 2000, ten),
            "500 of 2000 records (25%, ETA 30s)"
        );
        assert_eq!(
            done_of(100, 20_000, ten),
            "100 of 20000 records (0%, ETA 33m 10s)"
        );
        assert_eq!(done_of(0, 2000, ten), "0 of 2000 records (0%, ETA unknown)");
        // An API's total can be short of what came.
        assert_eq!(
            done_of(2100, 2000, ten),
            "2100 of 2000 records (100%, ETA 0s)"
        );
        assert_eq!(short_duration(Duration::from_secs(7500)), "2h 05m");
    }
}
