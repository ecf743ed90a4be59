//! Progress while a sync runs: on a terminal, one indicatif line per stream
//! (records, pages, records/s, state, and a bar with an ETA when the total is
//! known); otherwise a plain log line per stream every few seconds.
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
    while tick(stop) {
        if Instant::now() < next {
            continue;
        }
        next += PLAIN_EVERY;
        for (name, s) in sorted(live, order) {
            if !s.finished.load(Ordering::Relaxed) {
                eprintln!(
                    "progress: {name}: {} records, {}",
                    s.records.load(Ordering::Relaxed),
                    line(live, &s, started.elapsed())
                );
            }
        }
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
