//! Stopping a run from outside (SIGINT, SIGTERM) or because its output went
//! away (a closed stdout). Partitions stop at once: a request in flight is
//! dropped, nothing half-written is committed, and the state saved after
//! the last whole page lets the next run resume.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A signal, by name (`SIGINT`, `SIGTERM`).
    Signal(String),
    /// The reader of stdout went away (`| head`, a Singer target that exited).
    OutputClosed,
}

/// A run-wide stop flag that waiting tasks can await.
#[derive(Debug, Default)]
pub struct Cancel {
    flag: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    notify: Notify,
}

impl Cancel {
    /// Stops the run; the first reason given is kept.
    pub fn cancel(&self, reason: StopReason) {
        let mut r = self.reason.lock().unwrap();
        if r.is_none() {
            *r = Some(reason);
        }
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().unwrap().clone()
    }

    /// Resolves once the run is stopped.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiters_wake_and_the_first_reason_stays() {
        let c = Arc::new(Cancel::default());
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.cancelled().await })
        };
        tokio::task::yield_now().await;
        c.cancel(StopReason::Signal("SIGINT".into()));
        c.cancel(StopReason::OutputClosed);
        waiter.await.unwrap();
        assert_eq!(c.reason(), Some(StopReason::Signal("SIGINT".into())));
        c.cancelled().await; // already stopped: returns at once
    }
}
