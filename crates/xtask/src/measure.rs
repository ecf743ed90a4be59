//! Runs a child process and measures it: wall time, user and system CPU and
//! peak RSS, from `wait4`'s rusage (the child's own, as `/usr/bin/time -v`
//! reports it).
//!
//! The child is first waited for with `waitid(WNOWAIT)`, which leaves it a
//! zombie: the wall clock stops there, and a timeout's `kill` can never hit a
//! recycled pid. `wait4` then reaps it and returns its rusage.
//!
//! Linux carries the high-water RSS of the address space a process `exec`s
//! *from* into its `ru_maxrss`; spawned directly from the harness (which holds
//! hundreds of MB of rendered pages), every child would report the harness's
//! peak. So [`command`] goes through a small intermediary: this same binary,
//! re-executed as `xtask __measure RESULT -- PROGRAM ARGS…` (a few MB), spawns
//! the program, measures it with [`run_direct`] and writes one result line
//! ([`Usage::to_line`]) to the file RESULT, which [`run`] parses back.

use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a measured child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set size, KiB.
    pub max_rss_kb: u64,
    pub exit: Exit,
    pub timed_out: bool,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
    pub fn rss_mb(&self) -> f64 {
        self.max_rss_kb as f64 / 1024.0
    }
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0) && !self.timed_out
    }
}

pub fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// The parts of a `wait4` result this harness reports.
pub fn usage_from(
    ru: &libc::rusage,
    status: libc::c_int,
    wall: Duration,
    timed_out: bool,
) -> Usage {
    let exit = if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    };
    Usage {
        wall,
        user: timeval(ru.ru_utime),
        sys: timeval(ru.ru_stime),
        // Linux reports kilobytes.
        max_rss_kb: ru.ru_maxrss.max(0) as u64,
        exit,
        timed_out,
    }
}

/// CPU time of this process so far (all threads: the bench server's).
pub fn self_cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid rusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    timeval(ru.ru_utime) + timeval(ru.ru_stime)
}

impl Usage {
    /// `wall_ns user_us sys_us maxrss_kb exit timed_out`, exit as `c<code>` or `s<signal>`.
    pub fn to_line(self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.wall.as_nanos(),
            self.user.as_micros(),
            self.sys.as_micros(),
            self.max_rss_kb,
            match self.exit {
                Exit::Code(c) => format!("c{c}"),
                Exit::Signal(s) => format!("s{s}"),
            },
            u8::from(self.timed_out)
        )
    }

    pub fn parse_line(line: &str) -> Option<Usage> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [wall, user, sys, rss, exit, to] = f[..] else {
            return None;
        };
        let exit = match exit.split_at_checked(1)? {
            ("c", c) => Exit::Code(c.parse().ok()?),
            ("s", s) => Exit::Signal(s.parse().ok()?),
            _ => return None,
        };
        Some(Usage {
            wall: Duration::from_nanos(wall.parse().ok()?),
            user: Duration::from_micros(user.parse().ok()?),
            sys: Duration::from_micros(sys.parse().ok()?),
            max_rss_kb: rss.parse().ok()?,
            exit,
            timed_out: to == "1",
        })
    }
}

/// A command that runs `program` through the measuring intermediary; add
/// arguments, stdio and the working directory as usual, then [`run`] it.
pub fn command(
    program: impl AsRef<std::ffi::OsStr>,
    timeout: Duration,
) -> io::Result<(Command, tempfile::TempPath)> {
    let result = tempfile::NamedTempFile::new()?.into_temp_path();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("__measure")
        .arg(&result)
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string())
        .arg("--")
        .arg(program);
    Ok((cmd, result))
}

/// Runs a command built by [`command`], killing it after `timeout`, and
/// returns the measured program's usage.
pub fn run(cmd: &mut Command, result: &Path, timeout: Duration) -> io::Result<Usage> {
    let outer = run_direct(cmd, timeout + Duration::from_secs(5))?;
    let line = std::fs::read_to_string(result).unwrap_or_default();
    match Usage::parse_line(&line) {
        Some(mut u) => {
            u.timed_out |= outer.timed_out;
            Ok(u)
        }
        None => Err(io::Error::other(format!(
            "the measuring intermediary left no result ({:?}): `{}`",
            outer.exit,
            line.trim()
        ))),
    }
}

/// `xtask __measure RESULT [--timeout-ms N] -- PROGRAM ARGS…`: the intermediary.
pub fn intermediary_main(args: &[String]) -> i32 {
    let Some(sep) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: xtask __measure RESULT [--timeout-ms N] -- PROGRAM ARGS...");
        return 2;
    };
    let (opts, prog) = (&args[..sep], &args[sep + 1..]);
    let (Some(result), Some(program)) = (opts.first(), prog.first()) else {
        eprintln!("__measure: RESULT and PROGRAM are required");
        return 2;
    };
    let timeout = opts
        .iter()
        .position(|a| a == "--timeout-ms")
        .and_then(|i| opts.get(i + 1))
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(3600));
    // stdio and the working directory are inherited.
    match run_direct(Command::new(program).args(&prog[1..]), timeout) {
        Ok(u) => match std::fs::write(result, u.to_line()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("__measure: {result}: {e}");
                2
            }
        },
        Err(e) => {
            eprintln!("__measure: cannot run {program}: {e}");
            2
        }
    }
}

/// Spawns `cmd`, waits for it (killing it after `timeout`) and measures it.
/// `ru_maxrss` is only meaningful when this process is small (see the module doc).
pub fn run_direct(cmd: &mut Command, timeout: Duration) -> io::Result<Usage> {
    let started = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    // (exited, timed out)
    let flag = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let watchdog = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            let (m, cv) = &*flag;
            let guard = m.lock().unwrap();
            let (mut guard, _) = cv
                .wait_timeout_while(guard, timeout, |(exited, _)| !*exited)
                .unwrap();
            if !guard.0 {
                // Still not waited for, so `pid` is still our child (or its zombie).
                // SAFETY: plain syscall on our own child's pid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                guard.1 = true;
            }
        })
    };
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointer; WNOWAIT leaves the child waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = started.elapsed();
    let timed_out = {
        let (m, cv) = &*flag;
        let mut g = m.lock().unwrap();
        g.0 = true;
        cv.notify_all();
        g.1
    };
    let _ = watchdog.join();
    let mut status: libc::c_int = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers; reaps the child `waitid` saw exit.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    drop(child); // already reaped; dropping a Child neither waits nor kills
    Ok(usage_from(&ru, status, wall, timed_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_rusage() {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        ru.ru_utime = libc::timeval {
            tv_sec: 1,
            tv_usec: 250_000,
        };
        ru.ru_stime = libc::timeval {
            tv_sec: 0,
            tv_usec: 500,
        };
        ru.ru_maxrss = 20_480;
        // exit(3): status word 3 << 8
        let u = usage_from(&ru, 3 << 8, Duration::from_secs(2), false);
        assert_eq!(u.cpu(), Duration::from_micros(1_250_500));
        assert_eq!(u.rss_mb(), 20.0);
        assert_eq!(u.exit, Exit::Code(3));
        assert!(!u.success());
        // killed by SIGKILL: status word 9
        assert_eq!(
            usage_from(&ru, 9, Duration::ZERO, true).exit,
            Exit::Signal(9)
        );
    }

    #[test]
    fn measures_a_child_and_kills_it_on_timeout() {
        let u = run_direct(
            Command::new("sh").args(["-c", "exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(u.exit, Exit::Code(3));
        assert!(u.max_rss_kb > 0);
        assert!(!u.timed_out);
        let u = run_direct(Command::new("sleep").arg("10"), Duration::from_millis(100)).unwrap();
        assert!(u.timed_out);
        assert_eq!(u.exit, Exit::Signal(libc::SIGKILL));
        assert!(u.wall < Duration::from_secs(5));
    }

    #[test]
    fn result_lines_round_trip() {
        let u = Usage {
            wall: Duration::from_nanos(1_234_567_891),
            user: Duration::from_micros(800_001),
            sys: Duration::from_micros(20),
            max_rss_kb: 14_336,
            exit: Exit::Signal(9),
            timed_out: true,
        };
        assert_eq!(u.to_line(), "1234567891 800001 20 14336 s9 1");
        assert_eq!(Usage::parse_line(&u.to_line()), Some(u));
        let ok = Usage::parse_line("5 6 7 8 c0 0\n").unwrap();
        assert!(ok.success());
        assert_eq!(ok.cpu(), Duration::from_micros(13));
        assert_eq!(Usage::parse_line("5 6 7 8 x0 0"), None);
        assert_eq!(Usage::parse_line(""), None);
    }
}
