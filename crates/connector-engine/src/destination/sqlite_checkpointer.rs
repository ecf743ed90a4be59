//! The SQLite destination's WAL checkpoints, on a thread of their own.
//!
//! In WAL mode every commit appends pages to `<db>-wal`; a checkpoint copies
//! them into the database file and fsyncs both. SQLite's automatic
//! checkpoint runs inside the committing call, so the writer copied (and
//! waited on the disk for) every page a second time: about a third of its
//! time on 200,000 records. Here a second connection checkpoints `PASSIVE`ly
//! (never blocking the writer, never blocked by it) after commits, at most
//! every [`MIN_INTERVAL`], on the otherwise idle core.
//!
//! A checkpoint running beside the writer never quite catches up, and the
//! WAL starts over only once one has. So past [`WAL_BYTES`] of WAL the
//! writer checkpoints itself ([`WalCheckpointer::run_on`], after the
//! background checkpoint under way: SQLite refuses a second one at once):
//! by then nearly every page is copied, the writer copies the rest, and the
//! WAL starts over (and is cut back to that size). Durable commits
//! checkpoint the same way. The WAL never grows much past the limit.
//!
//! Durability is unchanged: the destination's durable commits still
//! checkpoint on the writer's connection, and a crash at any point leaves
//! committed transactions in the WAL, which SQLite replays on open.

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Least time between two background checkpoints while commits arrive.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// The WAL size at which the writer checkpoints itself (and to which the
/// WAL file is cut back): 64 MiB.
pub const WAL_BYTES: u64 = 64 << 20;

/// A `PASSIVE` checkpoint: copies what it can, waits for nobody.
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Sets the writer's automatic checkpoint to [`WAL_BYTES`] of WAL and the
/// WAL file's size limit to the same.
pub fn set_backstop(conn: &Connection) -> rusqlite::Result<()> {
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages = u32::try_from(WAL_BYTES / page.max(512) as u64).unwrap_or(u32::MAX);
    conn.pragma_update(None, "wal_autocheckpoint", pages)?;
    conn.query_row(
        &format!("PRAGMA journal_size_limit={WAL_BYTES}"),
        [],
        |_| Ok(()),
    )
}

/// Checkpoints a database's WAL on a background thread after commits.
pub struct WalCheckpointer {
    /// Held through every checkpoint, so the writer's waits for the
    /// thread's instead of being refused.
    turn: Arc<Mutex<()>>,
    nudge: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    done: Arc<AtomicU64>,
}

impl WalCheckpointer {
    /// Opens a second connection to `path` and starts the thread. `None`
    /// when the connection cannot be opened: the writer's automatic
    /// checkpoint then does the work, as it always could.
    pub fn start(path: &Path) -> Option<WalCheckpointer> {
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(Duration::from_secs(1)).ok()?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let turn = Arc::new(Mutex::new(()));
        let my_turn = turn.clone();
        let shown = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut last = Instant::now() - MIN_INTERVAL;
                loop {
                    match nudged.recv() {
                        Ok(()) => {}
                        Err(_) => return, // the destination closed
                    }
                    // Commits closer together than the interval share one
                    // checkpoint: wait out the rest of it, then go.
                    let rest = MIN_INTERVAL.saturating_sub(last.elapsed());
                    if !rest.is_zero() {
                        match nudged.recv_timeout(rest) {
                            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    last = Instant::now();
                    let _turn = my_turn.lock().unwrap_or_else(|p| p.into_inner());
                    match checkpoint(&conn) {
                        Ok(()) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        // Not fatal: the writer's own checkpoints go on.
                        Err(e) => tracing::debug!("sqlite {shown}: background checkpoint: {e}"),
                    }
                }
            })
            .ok()?;
        Some(WalCheckpointer {
            turn,
            nudge: Some(nudge),
            thread: Some(thread),
            done,
        })
    }

    /// Says a commit happened. Never blocks: a checkpoint already asked for
    /// covers this commit too.
    pub fn committed(&self) {
        if let Some(n) = &self.nudge {
            // Full: a checkpoint is already asked for; closed: the thread
            // stopped, and the writer's own checkpoints go on.
            let _ = n.try_send(());
        }
    }

    /// Checkpoints on `conn` (the writer's) once the thread's checkpoint
    /// under way, if any, is done.
    pub fn run_on(&self, conn: &Connection) -> rusqlite::Result<()> {
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        checkpoint(conn)
    }

    /// Background checkpoints run so far.
    pub fn checkpoints(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after any checkpoint under way.
        drop(self.nudge.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
