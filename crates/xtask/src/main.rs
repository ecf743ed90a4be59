//! `cargo xtask`: developer tasks for connector-run.
//!
//! ```text
//! cargo xtask bench [--scenario NAME]... [--quick] [--repeat N] [--no-build | --bin PATH]
//!                   [--out FILE] [--server-threads N] [--no-gzip] [--compact]
//! cargo xtask serve [--records N] [--page-size L] [--latency-ms MS] [--rate R [--rate-headers] [--rolling]]
//!                   [--fault-rate F] [--parents P --children C] [--no-gzip] [--compact]
//! cargo xtask profile [--records N] [--page-size L] [--dest jsonl|stdout] [--no-build | --bin PATH]
//! ```
//!
//! Benchmarks run only from here: `cargo test --workspace` runs this crate's
//! unit tests (renderer, server, rusage, parsers), never a benchmark.

mod airbyte_corpus;
mod bench;
mod data;
mod measure;
mod report;
mod server;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  bench     run the benchmark scenarios of issue #8 and write bench/RESULTS.md
  serve     run the bench server in the foreground (for curl, perf, or the peer harness)
  profile   perf record connector-run syncing scenario 1 and print the top functions
  airbyte-corpus [--cache DIR] [--list FILE] [--out FILE] [--dump DIR]
            translate the pinned Airbyte manifests; write docs/airbyte-coverage.md

bench options:
  --scenario NAME     only this scenario (repeatable): startup, throughput, streams,
                      partitions, rate, memory, faults, rolling, windows (default: all)
  --quick             smaller datasets, 1 repetition (about 1 minute)
  --repeat N          repetitions of throughput/memory runs (default 3; quick 1)
  --bin PATH          connector-run binary to measure (default: build it in release)
  --no-build          use target/release/connector-run as it is
  --out FILE          where to write the results block (default bench/RESULTS.md)
  --server-threads N  server runtime threads (default 1)
  --no-gzip           never gzip answers
  --compact           compact JSON pages instead of json-server's indented layout

serve options:
  --records N (default 1000000)  --page-size L (default 1000)  --latency-ms MS
  --rate R (requests per 1 s window)  --rate-headers (X-RateLimit-* on every answer)
  --rolling (R in any rolling second, HubSpot's rule, instead of fixed windows)
  --fault-rate F (a 503 with Retry-After: 1 for this fraction of requests, seeded)
  --parents P --children C       also serve /parents and /parents/{id}/children
  --port is not needed: the server prints its 127.0.0.1 URL

profile options:
  --records N (default 1000000)  --page-size L (default 1000)  --dest jsonl|stdout
  --bin PATH | --no-build (target/profiling/connector-run: release with line tables)
  --out DIR (default target/xtask-profile)
";

struct Args {
    rest: Vec<String>,
}

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    fn values(&mut self, name: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        while let Some(i) = self.rest.iter().position(|a| a == name) {
            if i + 1 >= self.rest.len() {
                return Err(format!("{name} needs a value"));
            }
            out.push(self.rest.remove(i + 1));
            self.rest.remove(i);
        }
        Ok(out)
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        Ok(self.values(name)?.pop())
    }

    fn num<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.value(name)? {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{name}: `{v}` is not a number")),
            None => Ok(default),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.rest.first() {
            Some(a) => Err(format!("unexpected argument `{a}`\n\n{USAGE}")),
            None => Ok(()),
        }
    }
}

fn style(args: &mut Args) -> data::Style {
    if args.flag("--compact") {
        data::Style::Compact
    } else {
        data::Style::Pretty
    }
}

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = all.first().cloned() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut args = Args {
        rest: all[1..].to_vec(),
    };
    let result = match cmd.as_str() {
        "__measure" => return ExitCode::from(measure::intermediary_main(&all[1..]) as u8),
        "bench" => bench_cmd(&mut args, &all).and_then(|_| args.finish()),
        "serve" => serve_cmd(args),
        "profile" => profile_cmd(args),
        "airbyte-corpus" => airbyte_corpus::main(args.rest.clone()),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_cmd(args: &mut Args, all: &[String]) -> Result<(), String> {
    let opts = bench::Opts {
        scenarios: args.values("--scenario")?,
        quick: args.flag("--quick"),
        repeat: args
            .value("--repeat")?
            .map(|v| v.parse())
            .transpose()
            .map_err(|_| "--repeat: not a number".to_string())?,
        bin: args.value("--bin")?.map(PathBuf::from),
        build: !args.flag("--no-build"),
        out: args.value("--out")?.map(PathBuf::from),
        server_threads: args.num("--server-threads", 1)?,
        gzip: !args.flag("--no-gzip"),
        style: style(args),
        args: all.to_vec(),
    };
    if !args.rest.is_empty() {
        return Err(format!("unexpected argument `{}`\n\n{USAGE}", args.rest[0]));
    }
    bench::run(opts)
}

fn serve_cmd(mut args: Args) -> Result<(), String> {
    let records: u64 = args.num("--records", 1_000_000)?;
    let page: u64 = args.num("--page-size", 1000)?;
    let latency: u64 = args.num("--latency-ms", 0)?;
    let rate: u32 = args.num("--rate", 0)?;
    let rate_headers = args.flag("--rate-headers");
    let rolling = args.flag("--rolling");
    let fault_rate: f64 = args.num("--fault-rate", 0.0)?;
    let parents: u64 = args.num("--parents", 0)?;
    let children: u64 = args.num("--children", 10)?;
    let gzip = (!args.flag("--no-gzip")).then_some(6);
    let st = style(&mut args);
    let threads: usize = args.num("--server-threads", 1)?;
    args.finish()?;
    let mut routes = server::Routes::default();
    let col = Arc::new(data::Collection::render(records, page, st, gzip));
    routes.collections.insert("/items".into(), col);
    if parents > 0 {
        routes.collections.insert(
            "/parents".into(),
            Arc::new(data::Collection::render(parents, 100, st, gzip)),
        );
        routes.children = Some(Arc::new(data::render_children(parents, children, st, gzip)));
    }
    let srv = server::Server::start(
        routes,
        server::ServerConfig {
            latency: Duration::from_millis(latency),
            rate: (rate > 0).then_some(server::RateLimit {
                requests: rate,
                window: Duration::from_secs(1),
                headers: rate_headers,
                rolling,
            }),
            threads,
            faults: (fault_rate > 0.0).then_some(server::Faults {
                rate: fault_rate,
                seed: 16,
                retry_after: 1,
            }),
            record_arrivals: false,
        },
    )
    .map_err(|e| e.to_string())?;
    println!(
        "serving {records} records on {}/items?_start=K&_limit={page}{}; Ctrl-C stops it",
        srv.url(),
        if parents > 0 {
            " and /parents, /parents/{id}/children"
        } else {
            ""
        }
    );
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let s = srv.snapshot();
        if s.requests > 0 {
            eprintln!(
                "requests {} (200: {}, 429: {}, 503 faults: {}, other: {}), records {}",
                s.requests, s.ok, s.too_many, s.faults, s.other, s.records
            );
        }
    }
}

/// `perf record` of connector-run on scenario 1, then the top of `perf report`.
fn profile_cmd(mut args: Args) -> Result<(), String> {
    let records: u64 = args.num("--records", 1_000_000)?;
    let page: u64 = args.num("--page-size", 1000)?;
    let dest = args.value("--dest")?.unwrap_or_else(|| "jsonl".into());
    let bin = args.value("--bin")?.map(PathBuf::from);
    let no_build = args.flag("--no-build");
    let root = bench::repo_root();
    let out = args.value("--out")?.map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("xtask-profile")
    });
    args.finish()?;
    let bin = match bin {
        Some(b) => b,
        // The `profiling` profile is release with line tables, for perf.
        None if no_build => bench::built_binary(&root, "profiling"),
        None => bench::build_connector_run(&root, "profiling")?,
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut routes = server::Routes::default();
    routes.collections.insert(
        "/items".into(),
        Arc::new(data::Collection::render(
            records,
            page,
            data::Style::Pretty,
            Some(6),
        )),
    );
    let srv = server::Server::start(routes, server::ServerConfig::default())
        .map_err(|e| e.to_string())?;
    let spec = out.join("spec.yaml");
    std::fs::write(&spec, bench::items_spec_yaml(&srv.url(), page, None))
        .map_err(|e| e.to_string())?;
    let jsonl_dir =
        std::path::Path::new("/dev/shm").join(format!("xtask-profile-{}", std::process::id()));
    let dest_arg = match dest.as_str() {
        "jsonl" => format!("jsonl:{}", jsonl_dir.display()),
        "stdout" | "-" => "-".into(),
        other => other.to_string(),
    };
    let data = out.join("perf.data");
    eprintln!("[profile] perf record → {}", data.display());
    let status = Command::new("perf")
        .args(["record", "-F", "2999", "--call-graph", "dwarf,32768", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&bin)
        .arg("sync")
        .arg(&spec)
        .args(["items", "--dest", &dest_arg])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run perf (apt-get install linux-perf): {e}"))?;
    let _ = std::fs::remove_dir_all(&jsonl_dir);
    drop(srv);
    if !status.success() {
        return Err(format!("perf record failed: {status}"));
    }
    // Runtime and thread-start frames sit above everything; leave them out.
    const NOISE: [&str; 12] = [
        "tokio::runtime",
        "std::sys",
        "(inlined)",
        "catch_unwind",
        "call_once",
        "do_call",
        "short_backtrace",
        "start_thread",
        "clone3",
        "core::ops::function",
        "FnOnce",
        "thread_start",
    ];
    for (name, extra) in [
        ("self", vec!["--no-children"]),
        ("inclusive", vec!["--children"]),
    ] {
        let o = Command::new("perf")
            .args(["report", "--stdio", "-g", "none", "--sort", "symbol"])
            .args(["--percent-limit", "0.7", "-i"])
            .arg(&data)
            .args(extra)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&o.stdout);
        let path = out.join(format!("report-{name}.txt"));
        std::fs::write(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        println!("== {name} ({}) ==", path.display());
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter(|l| !NOISE.iter().any(|n| l.contains(n)))
            .take(40)
            .for_each(|l| println!("{}", l.trim_end()));
    }
    Ok(())
}
