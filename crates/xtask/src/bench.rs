//! `cargo xtask bench`: the scenarios of issue #8, each against the bench
//! server, with a generated spec, measured from outside the process.

use crate::data::{Collection, Style, render_children};
use crate::measure::{self, Exit, Usage};
use crate::report::{self, Section, Table, ms, rate, secs, thousands};
use crate::server::{Events, Faults, RateLimit, Routes, Server, ServerConfig, Snapshot};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub const SCENARIOS: [(&str, &str); 9] = [
    ("startup", "start-up: `sync` doing one request"),
    (
        "throughput",
        "1: 1M records of 200 bytes, 1,000 per page, one stream: curl floor, jsonl, stdout, sqlite",
    ),
    ("streams", "2: 10 streams at once, 100k records each"),
    (
        "partitions",
        "3: 50 ms latency, 200 parents with one page of children each, concurrency 1, 8, 32",
    ),
    (
        "rate",
        "4: server limit 50 requests/s, declared in the spec vs headers only, ~500 requests",
    ),
    ("memory", "5: peak RSS, 10k vs 1M records, same page size"),
    (
        "faults",
        "6 (#16 goal 2): parent/child, 2,000 detail pages, 10% 503s with Retry-After: 1 vs clean",
    ),
    (
        "rolling",
        "7 (#16 goal 3): rolling-window limit 10/s declared, two CPU-bound processes beside, 5 × 151 requests",
    ),
    (
        "windows",
        "8 (#16 goal 4): 30 daily windows of a cursor-paged stream, 100 ms latency, concurrency 1, 4, 8",
    ),
];

#[derive(Debug, Clone)]
pub struct Opts {
    pub scenarios: Vec<String>,
    pub quick: bool,
    pub repeat: Option<usize>,
    pub bin: Option<PathBuf>,
    pub build: bool,
    pub out: Option<PathBuf>,
    pub server_threads: usize,
    pub gzip: bool,
    pub style: Style,
    pub args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            scenarios: Vec::new(),
            quick: false,
            repeat: None,
            bin: None,
            build: true,
            out: None,
            server_threads: 1,
            gzip: true,
            style: Style::Pretty,
            args: Vec::new(),
        }
    }
}

/// The repository root (this crate is `crates/xtask`).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// `cargo build --release -p connector-run`, then the binary's path.
pub fn build_connector_run(root: &Path, profile: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let command = format!("cargo build --profile {profile} -p connector-run");
    eprintln!("[build] {command}");
    let status = Command::new(&cargo)
        .args(["build", "--profile", profile, "-p", "connector-run"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{command}` failed ({status}); if someone's half-finished \
             change broke the build, retry in a minute, or pass --no-build / --bin PATH"
        ));
    }
    let bin = built_binary(root, profile);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("built, but {} is missing", bin.display()))
    }
}

/// Where `cargo build --profile PROFILE` puts connector-run.
pub fn built_binary(root: &Path, profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    target.join(profile).join("connector-run")
}

/// Free bytes of the filesystem holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    (unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0)
        .then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// A stream of the generated spec.
pub struct SpecStream<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub parent: Option<&'a str>,
    /// One request per partition (`pagination: {type: none}`).
    pub single_page: bool,
}

/// `parents` (paged) feeding `children` (`/parents/{id}/children`, one page
/// each): the parent/child spec of the partitions and faults scenarios.
fn parent_child_spec(base: &str, parent_page: u64) -> String {
    spec_yaml(
        base,
        parent_page,
        None,
        &[
            SpecStream {
                name: "parents",
                path: "/parents",
                parent: None,
                single_page: false,
            },
            SpecStream {
                name: "children",
                path: "/parents/{{ parent.id }}/children",
                parent: Some("parents"),
                single_page: true,
            },
        ],
    )
}

/// The connector spec the harness runs: json-server offset paging.
pub fn spec_yaml(base: &str, page_size: u64, rate: Option<&str>, streams: &[SpecStream]) -> String {
    let mut s = format!(
        "# Generated by `cargo xtask bench`.\nversion: 1\nname: bench\nbase_url: \"{base}\"\n\
         pagination:\n  type: offset\n  offset_param: _start\n  limit_param: _limit\n  page_size: {page_size}\n\
         records:\n  path: $\n"
    );
    if let Some(r) = rate {
        s.push_str(&format!("rate_limit:\n  requests: {r}\n"));
    }
    s.push_str("streams:\n");
    for st in streams {
        s.push_str(&format!(
            "  {}:\n    path: \"{}\"\n    primary_key: id\n",
            st.name, st.path
        ));
        if let Some(p) = st.parent {
            s.push_str(&format!("    parent: {p}\n"));
        }
        if st.single_page {
            s.push_str("    pagination:\n      type: none\n");
        }
    }
    s
}

/// A spec with one paged stream, `items` at `/items`: what most scenarios sync.
pub fn items_spec_yaml(base: &str, page_size: u64, rate: Option<&str>) -> String {
    spec_yaml(
        base,
        page_size,
        rate,
        &[SpecStream {
            name: "items",
            path: "/items",
            parent: None,
            single_page: false,
        }],
    )
}

/// The page URLs the connector requests for a collection: every page, and
/// the empty page after the last one when that one is full (short-page stop).
pub fn page_urls(base: &str, path: &str, total: u64, page_size: u64) -> Vec<String> {
    let pages = total.div_ceil(page_size);
    let mut starts: Vec<u64> = (0..pages).map(|k| k * page_size).collect();
    if total.is_multiple_of(page_size) {
        starts.push(total);
    }
    starts
        .into_iter()
        .map(|s| format!("{base}{path}?_start={s}&_limit={page_size}"))
        .collect()
}

/// `N records to DEST in …` from connector-run's summary.
pub fn summary_records(stderr: &str) -> Option<u64> {
    stderr.lines().rev().find_map(|l| {
        let (n, rest) = l.trim().split_once(' ')?;
        rest.starts_with("records to ")
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// Lines of a JSON Lines file and the sum of the `id` each starts with
/// (`None` when a line does not start with `{"id":N`).
pub fn tally_jsonl(path: &Path) -> std::io::Result<(u64, Option<u64>)> {
    const PREFIX: &[u8] = b"{\"id\":";
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut sum, mut ok) = (0u64, 0u64, true);
    let mut at_start = true;
    let mut head: Vec<u8> = Vec::with_capacity(32);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                lines += 1;
                if at_start {
                    ok = false; // the line ended inside `{"id":N`
                }
                at_start = true;
                head.clear();
                continue;
            }
            if !at_start {
                continue;
            }
            head.push(b);
            if head.len() <= PREFIX.len() {
                if !PREFIX.starts_with(&head) {
                    ok = false;
                    at_start = false;
                }
            } else if !b.is_ascii_digit() {
                at_start = false;
                match std::str::from_utf8(&head[PREFIX.len()..head.len() - 1])
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok())
                {
                    Some(id) => sum += id,
                    None => ok = false,
                }
            }
        }
    }
    Ok((lines, ok.then_some(sum)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Jsonl,
    Stdout,
    Sqlite,
}

impl Dest {
    fn label(self) -> &'static str {
        match self {
            Dest::Jsonl => "jsonl:DIR",
            Dest::Stdout => "- (stdout → /dev/null)",
            Dest::Sqlite => "sqlite:PATH",
        }
    }
}

/// What a run must have written.
#[derive(Debug, Clone)]
struct Expect {
    streams: Vec<String>,
    per_stream: u64,
    /// Sum of ids per stream (1..=per_stream unless given).
    id_sum: u64,
}

impl Expect {
    fn ids(streams: &[&str], per_stream: u64) -> Expect {
        Expect {
            streams: streams.iter().map(|s| s.to_string()).collect(),
            per_stream,
            id_sum: per_stream * (per_stream + 1) / 2,
        }
    }
    fn total(&self) -> u64 {
        self.per_stream * self.streams.len() as u64
    }
}

/// One measured process.
#[derive(Debug, Clone)]
struct Measured {
    usage: Usage,
    snap: Snapshot,
    server_cpu: Duration,
    /// Records the destination holds (jsonl) or the summary reports.
    records: u64,
    error: Option<String>,
    /// The destination is not supported by this binary.
    na: Option<String>,
}

impl Measured {
    fn ok(&self) -> bool {
        self.error.is_none() && self.na.is_none()
    }
    fn rps(&self) -> f64 {
        self.records as f64 / self.usage.wall.as_secs_f64()
    }
    fn reqps(&self) -> f64 {
        self.snap.requests as f64 / self.usage.wall.as_secs_f64()
    }
}

/// The median run (by wall time) of repeats, with the spread.
struct Summary {
    run: Measured,
    n: usize,
    min_rps: f64,
    max_rps: f64,
}

fn summarize(mut runs: Vec<Measured>) -> Summary {
    let n = runs.len();
    if let Some(bad) = runs.iter().find(|r| !r.ok()).cloned() {
        return Summary {
            min_rps: bad.rps(),
            max_rps: bad.rps(),
            run: bad,
            n,
        };
    }
    runs.sort_by_key(|r| r.usage.wall);
    let max_rps = runs.first().map(Measured::rps).unwrap_or(0.0);
    let min_rps = runs.last().map(Measured::rps).unwrap_or(0.0);
    Summary {
        run: runs.swap_remove(n / 2),
        n,
        min_rps,
        max_rps,
    }
}

impl Summary {
    fn spread(&self) -> String {
        if self.n > 1 {
            format!(
                "median of {}; records/s {}–{}",
                self.n,
                rate(self.min_rps),
                rate(self.max_rps)
            )
        } else {
            "1 run".into()
        }
    }
}

/// Figures the goals are judged on.
#[derive(Debug, Default)]
struct Facts {
    curl_rps: Option<f64>,
    jsonl_rps: Option<f64>,
    parallel_rps: Option<f64>,
    rss_small: Option<f64>,
    rss_big: Option<f64>,
    rss_small_n: u64,
    rss_big_n: u64,
    startup_ms: Option<f64>,
    declared: Option<(f64, u64)>,
    headers_only: Option<(f64, u64)>,
    c1: Option<Duration>,
    c8: Option<Duration>,
    /// (clean wall, faulty wall, faults served).
    faults: Option<(Duration, Duration, u64)>,
    /// (runs, 429s over all runs, smallest gap, shortest span of limit + 1 arrivals).
    rolling: Option<(usize, u64, Duration, Duration)>,
    /// (concurrency, achieved ÷ ideal) per windowed run.
    windows: Vec<(u32, f64)>,
}

struct Bench {
    opts: Opts,
    root: PathBuf,
    bin: PathBuf,
    work: tempfile::TempDir,
    scratch: PathBuf,
    scratch_is_shm: bool,
    runs: u64,
    cache: HashMap<(u64, u64), Arc<Collection>>,
    sections: Vec<Section>,
    facts: Facts,
    /// `/proc/loadavg` when the run started: other work on the machine skews figures.
    load_at_start: String,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if self.scratch_is_shm {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

pub fn run(opts: Opts) -> Result<(), String> {
    for s in &opts.scenarios {
        if !SCENARIOS.iter().any(|(n, _)| n == s) {
            return Err(format!(
                "unknown scenario `{s}`; scenarios: {}",
                SCENARIOS.map(|(n, _)| n).join(", ")
            ));
        }
    }
    let root = repo_root();
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None if opts.build => build_connector_run(&root, "release")?,
        None => built_binary(&root, "release"),
    };
    if !bin.is_file() {
        return Err(format!("no connector-run binary at {}", bin.display()));
    }
    let work = tempfile::Builder::new()
        .prefix("xtask-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    // jsonl output goes to a tmpfs when it has room (1M records ≈ 210 MB per copy).
    let shm = Path::new("/dev/shm");
    let (scratch, scratch_is_shm) = if free_bytes(shm).is_some_and(|b| b > 2 << 30) {
        let d = shm.join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        (d, true)
    } else {
        (work.path().join("out"), false)
    };
    let mut b = Bench {
        opts,
        root,
        bin,
        work,
        scratch,
        scratch_is_shm,
        runs: 0,
        cache: HashMap::new(),
        sections: Vec::new(),
        facts: Facts::default(),
        load_at_start: report::loadavg(),
    };
    let wanted =
        |name: &str| b.opts.scenarios.is_empty() || b.opts.scenarios.iter().any(|s| s == name);
    let plan: Vec<&str> = SCENARIOS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| wanted(n))
        .collect();
    eprintln!(
        "[bench] binary {}; scratch {}; scenarios: {}",
        b.bin.display(),
        b.scratch.display(),
        plan.join(", ")
    );
    for name in plan {
        let section = match name {
            "startup" => b.startup(),
            "throughput" => b.throughput(),
            "streams" => b.streams(),
            "partitions" => b.partitions(),
            "rate" => b.rate(),
            "memory" => b.memory(),
            "faults" => b.faults(),
            "rolling" => b.rolling(),
            "windows" => b.windows(),
            _ => unreachable!(),
        }?;
        println!("{}", section.markdown());
        b.sections.push(section);
    }
    let doc = b.document();
    let out = b
        .opts
        .out
        .clone()
        .unwrap_or_else(|| b.root.join("bench/RESULTS.md"));
    report::write_block(&out, &doc).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}", b.goals().markdown());
    eprintln!("[bench] wrote {}", out.display());
    Ok(())
}

impl Bench {
    fn repeat(&self) -> usize {
        self.opts
            .repeat
            .unwrap_or(if self.opts.quick { 1 } else { 3 })
            .max(1)
    }

    fn gzip_level(&self) -> Option<u32> {
        self.opts.gzip.then_some(6)
    }

    fn collection(&mut self, total: u64, page_size: u64) -> Arc<Collection> {
        let (style, gz) = (self.opts.style, self.gzip_level());
        self.cache
            .entry((total, page_size))
            .or_insert_with(|| {
                let t = std::time::Instant::now();
                let c = Collection::render(total, page_size, style, gz);
                eprintln!(
                    "[server] rendered {} records in {} pages ({} MB with gzip copies) in {:.1}s",
                    thousands(total),
                    c.pages.len(),
                    c.memory() >> 20,
                    t.elapsed().as_secs_f64()
                );
                Arc::new(c)
            })
            .clone()
    }

    fn server(
        &self,
        routes: Routes,
        latency: Duration,
        rate: Option<RateLimit>,
    ) -> Result<Server, String> {
        Server::start(
            routes,
            ServerConfig {
                latency,
                rate,
                threads: self.opts.server_threads,
                ..Default::default()
            },
        )
        .map_err(|e| format!("cannot start the bench server: {e}"))
    }

    /// A server with every option of `cfg` (the harness's thread count).
    fn server_cfg(&self, routes: Routes, cfg: ServerConfig) -> Result<Server, String> {
        Server::start(
            routes,
            ServerConfig {
                threads: self.opts.server_threads,
                ..cfg
            },
        )
        .map_err(|e| format!("cannot start the bench server: {e}"))
    }

    fn write_spec(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.work.path().join(format!("{name}.yaml"));
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    /// Runs `connector-run sync SPEC STREAMS --dest … EXTRA`, measured, and
    /// checks what it wrote.
    fn sync(
        &mut self,
        server: &Server,
        spec: &Path,
        dest: Dest,
        extra: &[&str],
        expect: &Expect,
        timeout: Duration,
    ) -> Result<Measured, String> {
        self.runs += 1;
        let id = self.runs;
        let stderr_path = self.work.path().join(format!("run-{id}.stderr"));
        let out_dir = self.scratch.join(format!("run-{id}"));
        let db = self.scratch.join(format!("run-{id}.db"));
        let dest_arg = match dest {
            Dest::Jsonl => format!("jsonl:{}", out_dir.display()),
            Dest::Stdout => "-".into(),
            Dest::Sqlite => format!("sqlite:{}", db.display()),
        };
        let (mut cmd, result) =
            measure::command(&self.bin, timeout).map_err(|e| format!("temp file: {e}"))?;
        cmd.arg("sync")
            .arg(spec)
            .args(&expect.streams)
            .args(["--dest", &dest_arg])
            .args(extra)
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&stderr_path)
                    .map_err(|e| format!("{}: {e}", stderr_path.display()))?,
            );
        let m = self.measure(server, &mut cmd, &result, timeout)?;
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let mut m = m;
        let first_err = || {
            stderr
                .lines()
                .find(|l| l.contains("error"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if dest == Dest::Sqlite && m.usage.exit == Exit::Code(2) && m.snap.requests == 0 {
            m.na = Some(format!("n/a: {}", first_err()));
        } else if !m.usage.success() {
            m.error = Some(format!(
                "FAILED ({:?}{}): {}",
                m.usage.exit,
                if m.usage.timed_out { ", timed out" } else { "" },
                first_err()
            ));
        } else if dest == Dest::Jsonl {
            let mut total = 0;
            for s in &expect.streams {
                let f = out_dir.join(format!("{s}.jsonl"));
                match tally_jsonl(&f) {
                    Ok((lines, sum)) => {
                        total += lines;
                        if lines != expect.per_stream || sum.is_some_and(|x| x != expect.id_sum) {
                            m.error = Some(format!(
                                "FAILED check: {s}.jsonl has {lines} records (want {}), id sum {sum:?} (want {})",
                                expect.per_stream, expect.id_sum
                            ));
                        }
                    }
                    Err(e) => m.error = Some(format!("FAILED check: {}: {e}", f.display())),
                }
            }
            m.records = total;
        } else {
            // `-q` prints no summary: then the records the server sent.
            m.records = summary_records(&stderr).unwrap_or(m.snap.records);
            if m.records != expect.total() {
                m.error = Some(format!(
                    "FAILED check: {} records reported, want {}",
                    m.records,
                    expect.total()
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&out_dir);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        if m.error.is_none() && m.na.is_none() && stderr.contains("FAILED") {
            m.error = Some(format!("FAILED: {}", first_err()));
        }
        Ok(m)
    }

    fn measure(
        &self,
        server: &Server,
        cmd: &mut Command,
        result: &Path,
        timeout: Duration,
    ) -> Result<Measured, String> {
        server.reset();
        let cpu0 = measure::self_cpu();
        let usage =
            measure::run(cmd, result, timeout).map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
        let server_cpu = measure::self_cpu().saturating_sub(cpu0);
        let snap = server.snapshot();
        Ok(Measured {
            usage,
            snap,
            server_cpu,
            records: snap.records,
            error: None,
            na: None,
        })
    }

    /// One `curl --compressed -s -K urlfile` process: every URL in order on
    /// one keep-alive connection, bodies decompressed and discarded, or
    /// written to one file each in the scratch folder (as the peers'
    /// harness does).
    fn curl(
        &mut self,
        server: &Server,
        urls: &[String],
        expect_records: u64,
    ) -> Result<Measured, String> {
        self.curl_to(server, urls, expect_records, false)
    }

    fn curl_to(
        &mut self,
        server: &Server,
        urls: &[String],
        expect_records: u64,
        to_files: bool,
    ) -> Result<Measured, String> {
        self.runs += 1;
        let list = self.work.path().join(format!("curl-{}.txt", self.runs));
        let bodies = self.scratch.join(format!("curl-{}", self.runs));
        if to_files {
            std::fs::create_dir_all(&bodies).map_err(|e| format!("{}: {e}", bodies.display()))?;
        }
        let mut text = String::new();
        for (i, u) in urls.iter().enumerate() {
            let out = if to_files {
                bodies.join(format!("page-{i}")).display().to_string()
            } else {
                "/dev/null".to_string()
            };
            text.push_str(&format!("url = \"{u}\"\noutput = \"{out}\"\n"));
        }
        std::fs::write(&list, text).map_err(|e| format!("{}: {e}", list.display()))?;
        let timeout = Duration::from_secs(600);
        let (mut cmd, result) =
            measure::command("curl", timeout).map_err(|e| format!("temp file: {e}"))?;
        cmd.args(["--compressed", "-s", "-S", "-f", "-K"])
            .arg(&list)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut m = self.measure(server, &mut cmd, &result, timeout)?;
        let _ = std::fs::remove_dir_all(&bodies);
        if !m.usage.success() || m.snap.records != expect_records || m.snap.ok != urls.len() as u64
        {
            m.error = Some(format!(
                "FAILED: curl {:?}, {} of {} pages, {} records",
                m.usage.exit,
                m.snap.ok,
                urls.len(),
                m.snap.records
            ));
        }
        Ok(m)
    }

    /// `repeat()` measured syncs of one spec; stops early when the binary
    /// lacks the destination.
    fn repeat_sync(
        &mut self,
        label: &str,
        server: &Server,
        spec: &Path,
        dest: Dest,
        extra: &[&str],
        expect: &Expect,
    ) -> Result<Vec<Measured>, String> {
        let r = self.repeat();
        let mut runs = Vec::new();
        for i in 0..r {
            let m = self.sync(server, spec, dest, extra, expect, Duration::from_secs(600))?;
            self.progress(&format!("{label} {}/{r}", i + 1), &m);
            let stop = m.na.is_some();
            runs.push(m);
            if stop {
                break;
            }
        }
        Ok(runs)
    }

    /// `repeat()` measured curl floors over `urls`.
    fn repeat_curl(
        &mut self,
        label: &str,
        server: &Server,
        urls: &[String],
        expect_records: u64,
        to_files: bool,
    ) -> Result<Vec<Measured>, String> {
        let r = self.repeat();
        let mut runs = Vec::new();
        for i in 0..r {
            let m = self.curl_to(server, urls, expect_records, to_files)?;
            self.progress(&format!("{label} {}/{r}", i + 1), &m);
            runs.push(m);
        }
        Ok(runs)
    }

    fn progress(&self, what: &str, m: &Measured) {
        eprintln!(
            "  {what}: {} s, {} records/s, {} requests, CPU {} s, RSS {:.1} MB{}",
            secs(m.usage.wall),
            rate(m.rps()),
            m.snap.requests,
            secs(m.usage.cpu()),
            m.usage.rss_mb(),
            m.error
                .as_ref()
                .or(m.na.as_ref())
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        );
    }

    fn startup(&mut self) -> Result<Section, String> {
        eprintln!("[startup]");
        let n = if self.opts.quick { 5 } else { 20 };
        let col = self.collection(5, 100);
        let mut routes = Routes::default();
        routes.collections.insert("/items".into(), col);
        let server = self.server(routes, Duration::ZERO, None)?;
        let spec = self.write_spec("startup", &items_spec_yaml(&server.url(), 100, None))?;
        let expect = Expect::ids(&["items"], 5);
        let urls = page_urls(&server.url(), "/items", 5, 100);
        let (mut cr, mut cq, mut cu) = (Vec::new(), Vec::new(), Vec::new());
        let timeout = Duration::from_secs(30);
        for _ in 0..n {
            cr.push(self.sync(&server, &spec, Dest::Stdout, &[], &expect, timeout)?);
            cq.push(self.sync(&server, &spec, Dest::Stdout, &["-q"], &expect, timeout)?);
            cu.push(self.curl(&server, &urls, 5)?);
        }
        let mut t = Table::new(&[
            "command (one request, 5 records)",
            "runs",
            "wall ms min",
            "median",
            "max",
            "CPU ms (median run)",
            "peak RSS MB",
            "requests",
        ]);
        for (label, runs) in [
            ("connector-run sync … --dest -", cr),
            (
                "connector-run sync … --dest - -q (no progress, no summary)",
                cq,
            ),
            ("curl (floor)", cu),
        ] {
            let mut walls: Vec<Duration> = runs.iter().map(|m| m.usage.wall).collect();
            walls.sort();
            let s = summarize(runs);
            if label == "connector-run sync … --dest -" && s.run.ok() {
                self.facts.startup_ms = Some(s.run.usage.wall.as_secs_f64() * 1000.0);
            }
            t.row(vec![
                label.into(),
                s.n.to_string(),
                ms(walls[0]),
                if s.run.ok() {
                    ms(s.run.usage.wall)
                } else {
                    s.run.error.clone().unwrap_or_default()
                },
                ms(walls[walls.len() - 1]),
                ms(s.run.usage.cpu()),
                format!("{:.1}", s.run.usage.rss_mb()),
                s.run.snap.requests.to_string(),
            ]);
        }
        Ok(Section {
            title: "Start-up".into(),
            text: "Wall time from `spawn` to exit of a sync that makes one request (5 records, \
                   one short page) to stdout (→ /dev/null), as run by default and with `-q`, and \
                   of curl fetching the same page. The goal is judged on the default run."
                .into(),
            table: t,
            notes: vec![],
        })
    }

    fn throughput(&mut self) -> Result<Section, String> {
        let total = if self.opts.quick { 200_000 } else { 1_000_000 };
        let page = 1000;
        eprintln!(
            "[throughput] {} records, page size {page}",
            thousands(total)
        );
        let col = self.collection(total, page);
        let mut routes = Routes::default();
        routes.collections.insert("/items".into(), col);
        let server = self.server(routes, Duration::ZERO, None)?;
        let spec = self.write_spec("throughput", &items_spec_yaml(&server.url(), page, None))?;
        let expect = Expect::ids(&["items"], total);
        let urls = page_urls(&server.url(), "/items", total, page);
        let floor = summarize(self.repeat_curl("curl floor", &server, &urls, total, false)?);
        let curl_rps = floor.run.ok().then(|| floor.run.rps());
        self.facts.curl_rps = curl_rps;
        let mut t = throughput_table();
        throughput_row(
            &mut t,
            "curl floor (sequential, one process, bodies discarded)",
            &floor,
            curl_rps,
        );
        let to_files = self.repeat_curl("curl to files", &server, &urls, total, true)?;
        throughput_row(
            &mut t,
            "curl, bodies written to files (the peers' harness floor)",
            &summarize(to_files),
            curl_rps,
        );
        for dest in [Dest::Jsonl, Dest::Stdout, Dest::Sqlite] {
            let s =
                summarize(self.repeat_sync(dest.label(), &server, &spec, dest, &[], &expect)?);
            if dest == Dest::Jsonl && s.run.ok() {
                self.facts.jsonl_rps = Some(s.run.rps());
            }
            throughput_row(
                &mut t,
                &format!("connector-run → {}", dest.label()),
                &s,
                curl_rps,
            );
        }
        // Parallel pages: the total comes from the first answer's header.
        let parallel_spec = std::fs::read_to_string(&spec)
            .map_err(|e| format!("{}: {e}", spec.display()))?
            .replace(
                &format!("  page_size: {page}\n"),
                &format!(
                    "  page_size: {page}\n  parallel: true\n  stop:\n    total_header: X-Total-Count\n"
                ),
            );
        let parallel_spec = self.write_spec("throughput-parallel", &parallel_spec)?;
        let s = summarize(self.repeat_sync(
            "parallel pages",
            &server,
            &parallel_spec,
            Dest::Jsonl,
            &[],
            &expect,
        )?);
        if s.run.ok() {
            self.facts.parallel_rps = Some(s.run.rps());
        }
        throughput_row(
            &mut t,
            "connector-run → jsonl:DIR, parallel pages (`parallel: true`, total from `X-Total-Count`, default concurrency 4)",
            &s,
            curl_rps,
        );
        Ok(Section {
            title: format!(
                "Scenario 1: throughput, {} records × 200 bytes, 1,000 per page, one stream",
                thousands(total)
            ),
            text: format!(
                "{} pages + the empty page after them ({} requests). jsonl output on {}. \
                 `× curl` = records/s ÷ the curl floor's records/s on the same server and pages.",
                total / page,
                urls.len(),
                if self.scratch_is_shm {
                    "/dev/shm (tmpfs)"
                } else {
                    "disk"
                }
            ),
            table: t,
            notes: vec![],
        })
    }

    fn streams(&mut self) -> Result<Section, String> {
        let per = if self.opts.quick { 20_000 } else { 100_000 };
        let page = 1000;
        let names: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        eprintln!("[streams] 10 × {} records", thousands(per));
        let col = self.collection(per, page);
        let mut routes = Routes::default();
        for n in &names {
            routes.collections.insert(format!("/{n}"), col.clone());
        }
        let server = self.server(routes, Duration::ZERO, None)?;
        let paths: Vec<String> = names.iter().map(|n| format!("/{n}")).collect();
        let streams: Vec<SpecStream> = names
            .iter()
            .zip(&paths)
            .map(|(n, p)| SpecStream {
                name: n,
                path: p,
                parent: None,
                single_page: false,
            })
            .collect();
        let spec = self.write_spec("streams", &spec_yaml(&server.url(), page, None, &streams))?;
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let expect = Expect::ids(&name_refs, per);
        let urls: Vec<String> = paths
            .iter()
            .flat_map(|p| page_urls(&server.url(), p, per, page))
            .collect();
        let floor = summarize(self.repeat_curl("curl floor", &server, &urls, per * 10, false)?);
        let curl_rps = floor.run.ok().then(|| floor.run.rps());
        let mut t = throughput_table();
        throughput_row(
            &mut t,
            "curl floor (all pages, sequential)",
            &floor,
            curl_rps,
        );
        for (label, extra) in [
            ("connector-run, default concurrency (4)", vec![]),
            (
                "connector-run --concurrency 10",
                vec!["--concurrency", "10"],
            ),
        ] {
            let runs = self.repeat_sync(label, &server, &spec, Dest::Jsonl, &extra, &expect)?;
            throughput_row(
                &mut t,
                &format!("{label} → jsonl"),
                &summarize(runs),
                curl_rps,
            );
        }
        Ok(Section {
            title: format!(
                "Scenario 2: 10 streams at once, 10 × {} records",
                thousands(per)
            ),
            text: format!(
                "One sync of 10 streams (`/s0` … `/s9`, each {} records, 1,000 per page) into jsonl. \
                 The floor is one curl process fetching every page of every stream in turn.",
                thousands(per)
            ),
            table: t,
            notes: vec![],
        })
    }

    fn partitions(&mut self) -> Result<Section, String> {
        let parents = if self.opts.quick { 50 } else { 200 };
        let (per_child, parent_page, latency) = (10u64, 100u64, Duration::from_millis(50));
        eprintln!("[partitions] {parents} parents, {per_child} children each, 50 ms latency");
        let col = self.collection(parents, parent_page);
        let mut routes = Routes::default();
        routes.collections.insert("/parents".into(), col);
        routes.children = Some(Arc::new(render_children(
            parents,
            per_child,
            self.opts.style,
            self.gzip_level(),
        )));
        let server = self.server(routes, latency, None)?;
        let spec = self.write_spec("partitions", &parent_child_spec(&server.url(), parent_page))?;
        let expect = Expect::ids(&["children"], parents * per_child);
        let parent_requests = page_urls("", "", parents, parent_page).len() as u64;
        let mut t = Table::new(&[
            "concurrency",
            "records",
            "requests",
            "wall s",
            "latency floor s",
            "requests/s",
            "speed-up vs 1",
            "CPU s",
            "peak RSS MB",
        ]);
        let mut c1: Option<Duration> = None;
        let mut notes = Vec::new();
        for c in [1u32, 8, 32] {
            let cs = c.to_string();
            let m = self.sync(
                &server,
                &spec,
                Dest::Jsonl,
                &["--concurrency", &cs],
                &expect,
                Duration::from_secs(300),
            )?;
            self.progress(&format!("concurrency {c}"), &m);
            if !m.ok() {
                notes.push(format!(
                    "concurrency {c}: {}",
                    m.error.clone().unwrap_or_default()
                ));
            }
            if c == 1 && m.ok() {
                c1 = Some(m.usage.wall);
                self.facts.c1 = c1;
            }
            if c == 8 && m.ok() {
                self.facts.c8 = Some(m.usage.wall);
            }
            // Parent pages are sequential; children go `c` at a time.
            let floor = latency * (parent_requests as u32 + parents.div_ceil(c as u64) as u32);
            t.row(vec![
                cs,
                thousands(m.records),
                thousands(m.snap.requests),
                secs(m.usage.wall),
                secs(floor),
                rate(m.reqps()),
                c1.map(|d| format!("{:.2}×", d.as_secs_f64() / m.usage.wall.as_secs_f64()))
                    .unwrap_or("-".into()),
                secs(m.usage.cpu()),
                format!("{:.1}", m.usage.rss_mb()),
            ]);
        }
        Ok(Section {
            title: format!("Scenario 3: partitions with 50 ms latency, {parents} parents"),
            text: format!(
                "`parents` ({parents} records, {parent_page} per page: {parent_requests} request(s)) feeds \
                 `children` (`/parents/{{id}}/children`, one page of {per_child} records each, \
                 `pagination: none`); the sync selects `children`. Every answer waits 50 ms. \
                 Latency floor = (parent requests + ⌈parents ÷ concurrency⌉) × 50 ms. One run each."
            ),
            table: t,
            notes,
        })
    }

    fn rate(&mut self) -> Result<Section, String> {
        let (allowed, page) = (50u32, 20u64);
        let requests = if self.opts.quick { 100 } else { 500 };
        let total = requests * page;
        eprintln!("[rate] {allowed} requests/s, {} requests", requests + 1);
        let col = self.collection(total, page);
        let mut t = Table::new(&[
            "limit",
            "200s",
            "429s",
            "wall s",
            "achieved rate (server) r/s",
            "÷ allowed",
            "requests/s (wall)",
            "CPU s",
            "peak RSS MB",
        ]);
        let mut notes = Vec::new();
        for (label, declared) in [
            (
                "declared in the spec (`rate_limit: {requests: 50/s}`)",
                true,
            ),
            ("headers only (X-RateLimit-* on every answer)", false),
        ] {
            let mut routes = Routes::default();
            routes.collections.insert("/items".into(), col.clone());
            let server = self.server(
                routes,
                Duration::ZERO,
                Some(RateLimit {
                    requests: allowed,
                    window: Duration::from_secs(1),
                    headers: !declared,
                    rolling: false,
                }),
            )?;
            let spec = self.write_spec(
                if declared {
                    "rate-declared"
                } else {
                    "rate-headers"
                },
                &items_spec_yaml(&server.url(), page, declared.then_some("50/s")),
            )?;
            let expect = Expect::ids(&["items"], total);
            let m = self.sync(
                &server,
                &spec,
                Dest::Jsonl,
                &[],
                &expect,
                Duration::from_secs(600),
            )?;
            self.progress(label, &m);
            let achieved = m.snap.ok_rate().unwrap_or(0.0);
            if m.ok() {
                let fact = Some((achieved / allowed as f64, m.snap.too_many));
                if declared {
                    self.facts.declared = fact;
                } else {
                    self.facts.headers_only = fact;
                }
            }
            if !m.ok() {
                notes.push(format!("{label}: {}", m.error.clone().unwrap_or_default()));
            }
            t.row(vec![
                label.into(),
                thousands(m.snap.ok),
                thousands(m.snap.too_many),
                secs(m.usage.wall),
                rate(achieved),
                format!("{:.3}", achieved / allowed as f64),
                rate(m.snap.ok as f64 / m.usage.wall.as_secs_f64()),
                secs(m.usage.cpu()),
                format!("{:.1}", m.usage.rss_mb()),
            ]);
        }
        Ok(Section {
            title: format!(
                "Scenario 4: server limit {allowed} requests/s, {} requests",
                requests + 1
            ),
            text: format!(
                "{} records, {page} per page. The server admits {allowed} requests per fixed 1-second \
                 window and answers the rest at once with 429 and `Retry-After` (whole seconds, \
                 rounded up). Headers-only: every answer also carries `X-RateLimit-Limit`, \
                 `-Remaining` and `-Reset` (delta seconds to the window's end, rounded up), and the \
                 spec declares no quota. Achieved rate = (200s − 1) ÷ time from the first to the \
                 last 200, as the server saw them.",
                thousands(total)
            ),
            table: t,
            notes,
        })
    }

    fn memory(&mut self) -> Result<Section, String> {
        let big = if self.opts.quick { 200_000 } else { 1_000_000 };
        let page = 1000;
        let mut t = Table::new(&[
            "records",
            "requests",
            "wall s",
            "records/s",
            "peak RSS MB (median run)",
            "peak RSS MB (max of runs)",
            "CPU s",
        ]);
        let mut rss = Vec::new();
        for total in [10_000u64, big] {
            eprintln!("[memory] {} records", thousands(total));
            let col = self.collection(total, page);
            let mut routes = Routes::default();
            routes.collections.insert("/items".into(), col);
            let server = self.server(routes, Duration::ZERO, None)?;
            let spec = self.write_spec("memory", &items_spec_yaml(&server.url(), page, None))?;
            let expect = Expect::ids(&["items"], total);
            let label = format!("{} records", thousands(total));
            let runs = self.repeat_sync(&label, &server, &spec, Dest::Jsonl, &[], &expect)?;
            let max_rss = runs.iter().map(|m| m.usage.rss_mb()).fold(0.0, f64::max);
            let s = summarize(runs);
            rss.push((total, s.run.ok().then(|| s.run.usage.rss_mb()), max_rss));
            t.row(vec![
                thousands(total),
                thousands(s.run.snap.requests),
                secs(s.run.usage.wall),
                if s.run.ok() {
                    rate(s.run.rps())
                } else {
                    s.run.error.clone().unwrap_or_default()
                },
                format!("{:.1}", s.run.usage.rss_mb()),
                format!("{max_rss:.1}"),
                secs(s.run.usage.cpu()),
            ]);
        }
        let mut notes = Vec::new();
        if let [(n1, Some(a), _), (n2, Some(b), _)] = rss[..] {
            self.facts.rss_small = Some(a);
            self.facts.rss_big = Some(b);
            self.facts.rss_small_n = n1;
            self.facts.rss_big_n = n2;
            notes.push(format!(
                "Difference {} → {} records: {:+.1} MB.",
                thousands(n1),
                thousands(n2),
                b - a
            ));
        }
        Ok(Section {
            title: "Scenario 5: memory, 10k vs 1M records, 1,000 per page".into(),
            text: "Peak RSS (`ru_maxrss` from `wait4`) of `connector-run sync` into jsonl.".into(),
            table: t,
            notes,
        })
    }

    fn faults(&mut self) -> Result<Section, String> {
        let parents = if self.opts.quick { 500 } else { 2_000 };
        let (per_child, parent_page) = (5u64, 100u64);
        let latency = Duration::from_millis(FAULT_LATENCY_MS);
        eprintln!(
            "[faults] {parents} parents, one detail page each, {FAULT_LATENCY_MS} ms latency, 10% 503s"
        );
        let col = self.collection(parents, parent_page);
        let children = Arc::new(render_children(
            parents,
            per_child,
            self.opts.style,
            self.gzip_level(),
        ));
        let expect = Expect::ids(&["children"], parents * per_child);
        let mut t = Table::new(&[
            "server",
            "concurrency",
            "records",
            "requests",
            "200s",
            "503s",
            "wall s",
            "× clean",
            "clean + 503s × 1 s ÷ concurrency",
            "requests/s",
            "retries (summary)",
            "CPU s",
            "peak RSS MB",
        ]);
        let mut notes = Vec::new();
        let mut clean: Option<Duration> = None;
        let fault = Some(Faults {
            rate: 0.10,
            seed: 16,
            retry_after: 1,
        });
        // The goal is judged at the default concurrency (4); 16 shows how
        // the cost of the waits scales.
        for (label, faults, c) in [
            ("clean", None, 4u32),
            ("10% faults: 503 with `Retry-After: 1`", fault, 4),
            ("clean", None, 16),
            ("10% faults: 503 with `Retry-After: 1`", fault, 16),
        ] {
            let mut routes = Routes::default();
            routes.collections.insert("/parents".into(), col.clone());
            routes.children = Some(children.clone());
            let server = self.server_cfg(
                routes,
                ServerConfig {
                    latency,
                    faults,
                    ..Default::default()
                },
            )?;
            let spec = self.write_spec("faults", &parent_child_spec(&server.url(), parent_page))?;
            let cs = c.to_string();
            let m = self.sync(
                &server,
                &spec,
                Dest::Jsonl,
                &["--concurrency", &cs],
                &expect,
                Duration::from_secs(300),
            )?;
            self.progress(&format!("{label}, concurrency {c}"), &m);
            let retries = self.last_stderr().and_then(|e| summary_retries(&e));
            if !m.ok() {
                notes.push(format!("{label}: {}", m.error.clone().unwrap_or_default()));
            }
            match (faults, m.ok()) {
                (None, true) => clean = Some(m.usage.wall),
                (None, false) => clean = None,
                (Some(_), true) if c == 4 => {
                    if let Some(cl) = clean {
                        self.facts.faults = Some((cl, m.usage.wall, m.snap.faults));
                    }
                }
                _ => {}
            }
            let model = match (faults, clean) {
                (Some(_), Some(cl)) => secs(cl + Duration::from_secs(m.snap.faults) / c),
                _ => "-".into(),
            };
            t.row(vec![
                label.into(),
                cs,
                thousands(m.records),
                thousands(m.snap.requests),
                thousands(m.snap.ok),
                thousands(m.snap.faults),
                secs(m.usage.wall),
                clean
                    .map(|cl| format!("{:.2}", m.usage.wall.as_secs_f64() / cl.as_secs_f64()))
                    .unwrap_or("-".into()),
                model,
                rate(m.reqps()),
                retries.map(thousands).unwrap_or("-".into()),
                secs(m.usage.cpu()),
                format!("{:.1}", m.usage.rss_mb()),
            ]);
        }
        let parent_requests = page_urls("", "", parents, parent_page).len();
        Ok(Section {
            title: format!(
                "Scenario 6: faults that stay local, {} detail pages at 10% 503s (issue #16, goal 2)",
                thousands(parents)
            ),
            text: format!(
                "`parents` ({} records, {parent_page} per page: {parent_requests} requests) feeds \
                 `children` (`/parents/{{id}}/children`, one page of {per_child} records each, \
                 `pagination: none`); the sync selects `children`, into jsonl, at the default \
                 concurrency (4: the goal) and at `--concurrency 16`. Every answer waits {FAULT_LATENCY_MS} ms. In the faulty run the \
                 server answers each request (retries included), with probability 0.1 decided \
                 by a seeded generator on the request's sequence number, at once with `503` and \
                 `Retry-After: 1` and no rate-limit header; the spec declares no rate limit and \
                 the default retry policy (5 attempts). × clean = wall ÷ the wall of the clean \
                 run at the same concurrency; the next column is what the wall would be if \
                 every 1 s wait held one of the `concurrency` slots and nothing else did. \
                 One run each.",
                thousands(parents)
            ),
            table: t,
            notes,
        })
    }

    fn rolling(&mut self) -> Result<Section, String> {
        let (allowed, page) = (10u32, 20u64);
        let (requests, runs) = if self.opts.quick {
            (50u64, 2)
        } else {
            (150u64, 5)
        };
        let total = requests * page;
        eprintln!(
            "[rolling] rolling-window limit {allowed}/s, {runs} × {} requests, 2 CPU hogs",
            requests + 1
        );
        let col = self.collection(total, page);
        let mut routes = Routes::default();
        routes.collections.insert("/items".into(), col);
        let server = self.server_cfg(
            routes,
            ServerConfig {
                rate: Some(RateLimit {
                    requests: allowed,
                    window: Duration::from_secs(1),
                    headers: false,
                    rolling: true,
                }),
                record_arrivals: true,
                ..Default::default()
            },
        )?;
        let spec = self.write_spec(
            "rolling",
            &items_spec_yaml(&server.url(), page, Some(&format!("{allowed}/s"))),
        )?;
        let expect = Expect::ids(&["items"], total);
        let mut t = Table::new(&[
            "run",
            "200s",
            "429s",
            "wall s",
            "achieved rate (server) r/s",
            "÷ allowed",
            "smallest gap ms",
            &format!("shortest span of {} arrivals ms", allowed + 1),
            "most in any rolling 1 s",
            "CPU s",
        ]);
        let hogs = CpuHogs::start(2)?;
        let load_before = report::loadavg();
        let mut notes = Vec::new();
        let (mut n429, mut min_gap, mut min_span) = (0u64, Duration::MAX, Duration::MAX);
        let mut done = 0;
        for i in 0..runs {
            let m = self.sync(
                &server,
                &spec,
                Dest::Jsonl,
                &[],
                &expect,
                Duration::from_secs(120),
            )?;
            let arrivals = server.arrivals();
            self.progress(&format!("run {}/{runs}", i + 1), &m);
            let a = ArrivalStats::of(&arrivals, allowed as usize, Duration::from_secs(1));
            if !m.ok() {
                notes.push(format!(
                    "run {}: {}",
                    i + 1,
                    m.error.clone().unwrap_or_default()
                ));
            } else {
                done += 1;
            }
            n429 += m.snap.too_many;
            min_gap = min_gap.min(a.min_gap);
            min_span = min_span.min(a.min_span);
            let achieved = m.snap.ok_rate().unwrap_or(0.0);
            t.row(vec![
                format!("{}", i + 1),
                thousands(m.snap.ok),
                thousands(m.snap.too_many),
                secs(m.usage.wall),
                rate(achieved),
                format!("{:.3}", achieved / allowed as f64),
                format!("{:.1}", a.min_gap.as_secs_f64() * 1000.0),
                format!("{:.1}", a.min_span.as_secs_f64() * 1000.0),
                a.max_in_window.to_string(),
                secs(m.usage.cpu()),
            ]);
        }
        drop(hogs);
        if done == runs {
            self.facts.rolling = Some((runs, n429, min_gap, min_span));
        }
        notes.push(format!(
            "Over the {runs} runs: {n429} × 429; smallest gap between two arrivals {:.1} ms \
             (nominal {:.0} ms); shortest span holding {} arrivals {:.1} ms (a 429 needs one \
             under 1,000 ms). Load average with the two hogs running: {load_before} before the \
             first run, {} after the last.",
            min_gap.as_secs_f64() * 1000.0,
            1000.0 / allowed as f64,
            allowed + 1,
            min_span.as_secs_f64() * 1000.0,
            report::loadavg()
        ));
        Ok(Section {
            title: format!(
                "Scenario 7: rolling-window limit {allowed} requests/s on a loaded machine (issue #16, goal 3)"
            ),
            text: format!(
                "{} records, {page} per page ({} requests a run), into jsonl, `rate_limit: \
                 {{requests: {allowed}/s}}` declared. The server refuses a request with 429 \
                 (`Retry-After`, no rate-limit headers) when {allowed} were admitted in the second \
                 before it (HubSpot's rule: any rolling second), and notes the arrival time of \
                 every request (when hyper hands it over, on the server's one runtime thread). \
                 Beside the sync, two `sh -c 'while :; do :; done'` processes keep both cores \
                 busy for all runs. Gap = time between consecutive arrivals; span = time from \
                 one arrival to the {}th after it, counting 429s too.",
                thousands(total),
                requests + 1,
                allowed
            ),
            table: t,
            notes,
        })
    }

    fn windows(&mut self) -> Result<Section, String> {
        let (days, per_day, page) = (30u64, 500u64, 100u64);
        let latency = Duration::from_millis(100);
        let declared: f64 = 1000.0;
        eprintln!(
            "[windows] {days} daily windows × {per_day} records, {page} per page, 100 ms latency"
        );
        let events = Events { days, per_day };
        let routes = Routes {
            events: Some(events),
            ..Default::default()
        };
        let server = self.server_cfg(
            routes,
            ServerConfig {
                latency,
                ..Default::default()
            },
        )?;
        // The range's end is inclusive: the last second of the last day.
        let end = crate::server::rfc3339((Events::FIRST_DAY + days as i64) * 86_400 - 1);
        let spec = self.write_spec(
            "windows",
            &format!(
                "# Generated by `cargo xtask bench`.\nversion: 1\nname: bench\nbase_url: \"{}\"\n\
                 rate_limit:\n  requests: {declared}/s\n\
                 pagination:\n  type: cursor\n  cursor_path: $.next_cursor\n  cursor_param: cursor\n  \
                 size_param: limit\n  page_size: {page}\n\
                 records:\n  path: $.data\n\
                 streams:\n  events:\n    path: /events\n    primary_key: id\n    params:\n      \
                 start: \"{{{{ window.start }}}}\"\n      end: \"{{{{ window.end }}}}\"\n    \
                 incremental:\n      cursor_field: updated_at\n      start_value: \"{}\"\n      \
                 windows: {{ step: 1d, end: \"{end}\" }}\n",
                server.url(),
                crate::server::rfc3339(Events::FIRST_DAY * 86_400),
            ),
        )?;
        let expect = Expect::ids(&["events"], days * per_day);
        let pages_per_window = per_day.div_ceil(page);
        let mut t = Table::new(&[
            "concurrency",
            "records",
            "requests",
            "wall s",
            "ideal r/s = min(declared, c ÷ latency)",
            "achieved r/s (server)",
            "÷ ideal",
            "requests/s (wall)",
            "÷ ideal (wall)",
            "CPU s",
            "peak RSS MB",
        ]);
        let mut notes = Vec::new();
        for c in [1u32, 4, 8] {
            let cs = c.to_string();
            let m = self.sync(
                &server,
                &spec,
                Dest::Jsonl,
                &["--concurrency", &cs],
                &expect,
                Duration::from_secs(120),
            )?;
            self.progress(&format!("concurrency {c}"), &m);
            let ideal = declared.min(c as f64 / latency.as_secs_f64());
            let achieved = m.snap.busy_rate().unwrap_or(0.0);
            if m.ok() {
                self.facts.windows.push((c, achieved / ideal));
            } else {
                notes.push(format!(
                    "concurrency {c}: {}",
                    m.error.clone().unwrap_or_default()
                ));
            }
            t.row(vec![
                cs,
                thousands(m.records),
                thousands(m.snap.requests),
                secs(m.usage.wall),
                rate(ideal),
                rate(achieved),
                format!("{:.2}", achieved / ideal),
                rate(m.reqps()),
                format!("{:.2}", m.reqps() / ideal),
                secs(m.usage.cpu()),
                format!("{:.1}", m.usage.rss_mb()),
            ]);
        }
        let rounds = |c: u64| days.div_ceil(c) * pages_per_window;
        notes.push(format!(
            "Whole windows go to workers, and a window's pages follow each other (each cursor \
             comes from the page before), so the best a run can do is ⌈{days} ÷ c⌉ × \
             {pages_per_window} pages × 100 ms: {} at concurrency 4 ({:.2} of ideal) and {} at \
             8 ({:.2}).",
            secs(latency * rounds(4) as u32),
            (days * pages_per_window) as f64 / 40.0 / (0.1 * rounds(4) as f64),
            secs(latency * rounds(8) as u32),
            (days * pages_per_window) as f64 / 80.0 / (0.1 * rounds(8) as f64),
        ));
        Ok(Section {
            title: format!(
                "Scenario 8: {days} date windows of a cursor-paged stream, 100 ms latency (issue #16, goal 4)"
            ),
            text: format!(
                "`/events` holds {} records, {per_day} a day over {days} days from 2024-01-01, \
                 each with an `updated_at`; it answers those with `start ≤ updated_at ≤ end` \
                 (`{{{{ window.start }}}}`, `{{{{ window.end }}}}`), {page} a page, with an \
                 opaque `next_cursor` (null on the last page): {pages_per_window} requests a \
                 window. The stream is incremental on `updated_at` with `windows: {{step: 1d, \
                 end: {end}}}` from `start_value` 2024-01-01T00:00:00Z, `rate_limit: {{requests: \
                 {declared}/s}}`, into jsonl (fresh state each run). Every answer waits 100 ms. \
                 Achieved (server) = requests ÷ time from the first request's arrival to the \
                 last answer; wall includes start-up. One run each.",
                thousands(days * per_day)
            ),
            table: t,
            notes,
        })
    }

    /// The stderr of the last `sync` run.
    fn last_stderr(&self) -> Option<String> {
        std::fs::read_to_string(self.work.path().join(format!("run-{}.stderr", self.runs))).ok()
    }

    fn goals(&self) -> Section {
        let f = &self.facts;
        let yes = |b: bool| if b { "**met**" } else { "**not met**" }.to_string();
        let mut t = Table::text(&["goal (issue #8)", "measured", "met"]);
        let na = || "not measured in this run".to_string();
        match (f.jsonl_rps, f.curl_rps) {
            (Some(j), Some(c)) => {
                t.row(vec![
                    "≥ 0.75 of curl's sequential floor at page size 1000 into jsonl".into(),
                    format!(
                        "{} records/s = {:.2} × curl ({} records/s)",
                        rate(j),
                        j / c,
                        rate(c)
                    ),
                    yes(j / c >= 0.75),
                ]);
                t.row(vec![
                    "… in absolute terms: ≈300k records/s (0.75 × the ~400k of the peers' nginx floor)"
                        .into(),
                    format!("{} records/s", rate(j)),
                    yes(j >= 300_000.0),
                ]);
            }
            _ => t.row(vec![
                "≥ 0.75 of curl's floor into jsonl".into(),
                na(),
                "-".into(),
            ]),
        }
        match (f.parallel_rps, f.curl_rps) {
            (Some(p), Some(c)) => t.row(vec![
                "with parallel pages (known total, opt-in): above curl's sequential floor".into(),
                format!("{} records/s = {:.2} × curl", rate(p), p / c),
                yes(p > c),
            ]),
            _ => t.row(vec![
                "parallel pages above curl's sequential floor".into(),
                na(),
                "-".into(),
            ]),
        }
        match (f.rss_small, f.rss_big) {
            (Some(a), Some(b)) => t.row(vec![
                "peak RSS ≤ 40 MB, and within 10 MB between 10k and 1M records".into(),
                format!(
                    "{a:.1} MB ({} records), {b:.1} MB ({} records), difference {:+.1} MB",
                    thousands(f.rss_small_n),
                    thousands(f.rss_big_n),
                    b - a
                ),
                yes(a.max(b) <= 40.0 && (b - a).abs() <= 10.0),
            ]),
            _ => t.row(vec!["peak RSS ≤ 40 MB, ±10 MB".into(), na(), "-".into()]),
        }
        match f.startup_ms {
            Some(s) => t.row(vec![
                "start-up < 50 ms (sync doing one request)".into(),
                format!("{s:.1} ms (median)"),
                yes(s < 50.0),
            ]),
            None => t.row(vec!["start-up < 50 ms".into(), na(), "-".into()]),
        }
        match f.declared {
            Some((ratio, n429)) => t.row(vec![
                "≥ 0.95 of the allowed rate with zero 429s under a declared limit".into(),
                format!("{ratio:.3} of 50/s, {n429} × 429"),
                yes(ratio >= 0.95 && n429 == 0),
            ]),
            None => t.row(vec![
                "≥ 0.95 of a declared limit, zero 429s".into(),
                na(),
                "-".into(),
            ]),
        }
        match f.headers_only {
            Some((ratio, n429)) => t.row(vec![
                "≥ 0.95 of the allowed rate, limit not declared, X-RateLimit-* headers (issue #4)"
                    .into(),
                format!("{ratio:.3} of 50/s, {n429} × 429"),
                yes(ratio >= 0.95),
            ]),
            None => t.row(vec![
                "≥ 0.95 of an undeclared limit from headers".into(),
                na(),
                "-".into(),
            ]),
        }
        match (f.c1, f.c8) {
            (Some(a), Some(b)) => {
                let x = a.as_secs_f64() / b.as_secs_f64();
                t.row(vec![
                    "concurrency 8 ≥ 6× concurrency 1 with 50 ms latency".into(),
                    format!("{x:.2}× ({} s → {} s)", secs(a), secs(b)),
                    yes(x >= 6.0),
                ])
            }
            _ => t.row(vec![
                "concurrency 8 ≥ 6× concurrency 1".into(),
                na(),
                "-".into(),
            ]),
        }
        match f.faults {
            Some((clean, faulty, n)) => {
                let x = faulty.as_secs_f64() / clean.as_secs_f64();
                t.row(vec![
                    "(#16, 2) at 10% faults (503 + `Retry-After`), ≤ 3× the clean wall time".into(),
                    format!(
                        "{x:.2}× ({} s clean → {} s with {n} × 503)",
                        secs(clean),
                        secs(faulty)
                    ),
                    yes(x <= 3.0),
                ])
            }
            None => t.row(vec![
                "(#16, 2) 10% faults ≤ 3× clean".into(),
                na(),
                "-".into(),
            ]),
        }
        match f.rolling {
            Some((runs, n429, gap, span)) => t.row(vec![
                "(#16, 3) zero 429s under a declared 10/s, rolling window, CPU-bound processes beside"
                    .into(),
                format!(
                    "{n429} × 429 in {runs} runs; smallest gap {:.1} ms, shortest span of 11 arrivals {:.1} ms",
                    gap.as_secs_f64() * 1000.0,
                    span.as_secs_f64() * 1000.0
                ),
                yes(n429 == 0),
            ]),
            None => t.row(vec![
                "(#16, 3) zero 429s, rolling window, loaded machine".into(),
                na(),
                "-".into(),
            ]),
        }
        let w: Vec<&(u32, f64)> = f.windows.iter().filter(|(c, _)| *c > 1).collect();
        if w.is_empty() {
            t.row(vec![
                "(#16, 4) parallel windows ≥ 0.8 of min(rate, c ÷ latency)".into(),
                na(),
                "-".into(),
            ]);
        } else {
            t.row(vec![
                "(#16, 4) date windows of a cursor stream, 100 ms latency: ≥ 0.8 of min(declared rate, concurrency ÷ latency)".into(),
                w.iter()
                    .map(|(c, x)| format!("concurrency {c}: {x:.2}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                yes(w.iter().all(|(_, x)| *x >= 0.8)),
            ]);
        }
        Section {
            title: "Goals".into(),
            text: String::new(),
            table: t,
            notes: vec![],
        }
    }

    fn document(&self) -> String {
        let mut s = String::from("## Figures\n\n");
        let mut env = Table::text(&["", ""]);
        for (k, v) in report::environment(&self.root) {
            env.row(vec![k, v]);
        }
        env.row(vec![
            "load average (1, 5, 15 min)".into(),
            format!(
                "{} at the start, {} at the end (other builds on the machine skew figures)",
                self.load_at_start,
                report::loadavg()
            ),
        ]);
        env.row(vec![
            "command".into(),
            format!("`cargo xtask {}`", self.opts.args.join(" ")),
        ]);
        env.row(vec![
            "connector-run".into(),
            format!("`{}` (release)", self.bin.display()),
        ]);
        env.row(vec![
            "server".into(),
            format!(
                "in-process hyper 1 on 127.0.0.1, {} runtime thread(s), keep-alive; pages rendered once \
                 into memory ({}){}; records of exactly 200 bytes as compact JSON",
                self.opts.server_threads,
                match self.opts.style {
                    Style::Pretty => "json-server layout, `JSON.stringify(page, null, 2)`",
                    Style::Compact => "compact JSON",
                },
                if self.opts.gzip {
                    ", gzipped once at level 6 and sent gzipped when the client accepts it (both connector-run and `curl --compressed` do)"
                } else {
                    ", never gzipped"
                }
            ),
        ]);
        env.row(vec![
            "measured".into(),
            "wall = spawn → exit; CPU = user + sys and peak RSS from `wait4` rusage of the \
             connector-run (or curl) process only; server CPU = the harness's own CPU during the run"
                .into(),
        ]);
        s.push_str(&env.markdown());
        s.push('\n');
        s.push_str(&self.goals().markdown());
        for sec in &self.sections {
            s.push_str(&sec.markdown());
        }
        s
    }
}

/// Latency of every answer in the `faults` scenario.
const FAULT_LATENCY_MS: u64 = 10;

/// `retries` from the summary table of connector-run's stderr: the column
/// named `retries` of the stream rows (summed).
fn summary_retries(stderr: &str) -> Option<u64> {
    let mut col = None;
    let mut total = None;
    for line in stderr.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = cells.iter().position(|c| *c == "retries") {
            col = Some(i);
            continue;
        }
        if let Some(i) = col
            && let Some(n) = cells
                .get(i)
                .and_then(|c| c.replace(',', "").parse::<u64>().ok())
        {
            *total.get_or_insert(0) += n;
        }
    }
    total
}

/// Busy-looping `sh` processes that load the machine while they live.
struct CpuHogs(Vec<std::process::Child>);

impl CpuHogs {
    fn start(n: usize) -> Result<CpuHogs, String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| format!("cannot start a CPU hog: {e}"))?,
            );
        }
        Ok(CpuHogs(v))
    }
}

impl Drop for CpuHogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What the server saw of the spacing of requests.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ArrivalStats {
    /// Smallest time between two consecutive arrivals.
    min_gap: Duration,
    /// Shortest time from an arrival to the `limit`-th after it: below
    /// `window`, `limit + 1` requests fell in one rolling window.
    min_span: Duration,
    /// Most arrivals in any half-open window of length `window`.
    max_in_window: usize,
}

impl ArrivalStats {
    /// `arrivals` sorted.
    fn of(arrivals: &[Duration], limit: usize, window: Duration) -> ArrivalStats {
        let min_gap = arrivals
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or(Duration::MAX);
        let min_span = arrivals
            .windows(limit + 1)
            .map(|w| w[limit] - w[0])
            .min()
            .unwrap_or(Duration::MAX);
        let (mut max_in_window, mut j) = (0, 0);
        for i in 0..arrivals.len() {
            while j < arrivals.len() && arrivals[j] - arrivals[i] < window {
                j += 1;
            }
            max_in_window = max_in_window.max(j - i);
        }
        ArrivalStats {
            min_gap,
            min_span,
            max_in_window,
        }
    }
}

fn throughput_table() -> Table {
    Table::new(&[
        "run",
        "records",
        "requests",
        "wall s",
        "records/s",
        "requests/s",
        "CPU s",
        "peak RSS MB",
        "server CPU s",
        "× curl",
        "notes",
    ])
}

fn throughput_row(t: &mut Table, label: &str, s: &Summary, curl_rps: Option<f64>) {
    let m = &s.run;
    if let Some(na) = &m.na {
        t.row(
            [label.to_string(), na.clone()]
                .into_iter()
                .chain(std::iter::repeat_n("-".to_string(), 9))
                .collect(),
        );
        return;
    }
    t.row(vec![
        label.into(),
        thousands(m.records),
        thousands(m.snap.requests),
        secs(m.usage.wall),
        if m.ok() { rate(m.rps()) } else { "-".into() },
        rate(m.reqps()),
        secs(m.usage.cpu()),
        format!("{:.1}", m.usage.rss_mb()),
        secs(m.server_cpu),
        match (m.ok(), curl_rps) {
            (true, Some(c)) => format!("{:.2}", m.rps() / c),
            _ => "-".into(),
        },
        m.error.clone().unwrap_or_else(|| s.spread()),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_end_with_the_page_the_connector_stops_on() {
        let u = page_urls("http://h", "/items", 2_000, 1_000);
        assert_eq!(u.len(), 3);
        assert_eq!(u[2], "http://h/items?_start=2000&_limit=1000");
        assert_eq!(page_urls("", "/x", 2_500, 1_000).len(), 3);
        assert_eq!(page_urls("", "/x", 5, 100).len(), 1);
    }

    #[test]
    fn reads_the_summary_and_tallies_jsonl() {
        let err = "stream  records\nitems 5 ok\n1000000 records to jsonl:/x in 3.20s; rate-limit waits: 0 (0.00s)\n";
        assert_eq!(summary_records(err), Some(1_000_000));
        assert_eq!(summary_records("nothing"), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jsonl");
        std::fs::write(
            &p,
            "{\"id\":1,\"x\":2}\n{\"id\":22}\n{\"id\":300,\"y\":\"z\"}\n",
        )
        .unwrap();
        assert_eq!(tally_jsonl(&p).unwrap(), (3, Some(323)));
        std::fs::write(&p, "{\"x\":1}\n").unwrap();
        assert_eq!(tally_jsonl(&p).unwrap(), (1, None));
    }

    #[test]
    fn arrival_stats_find_the_tightest_window() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let a = ArrivalStats::of(
            &ms(&[0, 100, 200, 250, 400, 1_100, 1_200]),
            2,
            Duration::from_secs(1),
        );
        assert_eq!(a.min_gap, Duration::from_millis(50));
        assert_eq!(a.min_span, Duration::from_millis(150)); // 100 → 250
        assert_eq!(a.max_in_window, 5); // 0..=400, then 1,100 is out
        let one = ArrivalStats::of(&ms(&[5]), 10, Duration::from_secs(1));
        assert_eq!(
            (one.min_gap, one.min_span, one.max_in_window),
            (Duration::MAX, Duration::MAX, 1)
        );
    }

    #[test]
    fn reads_retries_from_the_summary() {
        let err = "stream    records  pages  requests  retries  429s  time\nchildren  10,000  2,000  2,210  210  0  12.0s\n10000 records to jsonl:/x in 12.1s\n";
        assert_eq!(summary_retries(err), Some(210));
        assert_eq!(summary_retries("nothing"), None);
    }

    #[test]
    fn generated_spec_has_the_streams() {
        let s = spec_yaml(
            "http://127.0.0.1:1",
            1000,
            Some("50/s"),
            &[
                SpecStream {
                    name: "p",
                    path: "/p",
                    parent: None,
                    single_page: false,
                },
                SpecStream {
                    name: "c",
                    path: "/p/{{ parent.id }}/c",
                    parent: Some("p"),
                    single_page: true,
                },
            ],
        );
        assert!(s.contains("page_size: 1000\n"));
        assert!(s.contains("rate_limit:\n  requests: 50/s\n"));
        assert!(s.contains("  c:\n    path: \"/p/{{ parent.id }}/c\"\n    primary_key: id\n    parent: p\n    pagination:\n      type: none\n"));
    }
}
