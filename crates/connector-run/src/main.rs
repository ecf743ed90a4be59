//! `connector-run`: the command-line interface.
//!
//! ```text
//! connector-run validate [NAME_OR_PATH...]
//! connector-run sync jsonplaceholder posts --dest jsonl:out/
//! connector-run schema > connector.schema.json
//! ```
//!
//! Exit codes: 0 success, 1 failure (a sync failed, a spec is invalid under
//! `validate`), 2 usage or spec error (bad arguments, unreadable or invalid
//! spec, bad config, bad destination) before any request was made.

mod airbyte;
mod check;
mod cli;
mod completions;
mod connectors;
mod context;
mod discover;
mod dry_run;
mod import;
mod init;
mod list;
mod logging;
mod output;
mod progress;
mod protocol;
mod replay_test;
mod singer;
mod state;
mod summary;
mod sync;
mod validate;

use clap::Parser;

/// mimalloc: records are many small allocations freed page by page; glibc's
/// malloc cost about a fifth of a sync's time in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

/// Exit code: everything worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the work failed (a stream failed, `validate` found problems).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage, spec, config, state or destination, or a
/// destination another run holds; nothing was fetched.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: stopped by SIGINT (128 + 2); the state resumes the run.
pub const EXIT_SIGINT: u8 = 130;
/// Exit code: stopped by SIGTERM (128 + 15); the state resumes the run.
pub const EXIT_SIGTERM: u8 = 143;
/// Exit code: stdout was closed by its reader (128 + SIGPIPE's 13), as
/// `| head` does; the state resumes the run.
pub const EXIT_OUTPUT_CLOSED: u8 = 141;

/// How a command ended badly. `main` prints it and maps it to its exit
/// code: here, and only here.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage, spec, config, state or destination, before any request.
    Usage(String),
    /// A spec file's diagnostics, rendered.
    Spec(String),
    /// An engine error: usage before any request, a failure after.
    Engine(connector_engine::EngineError),
}

impl From<connector_engine::EngineError> for Failure {
    fn from(e: connector_engine::EngineError) -> Failure {
        Failure::Engine(e)
    }
}

impl Failure {
    pub fn usage(e: impl std::fmt::Display) -> Failure {
        Failure::Usage(e.to_string())
    }

    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Spec(_) => EXIT_USAGE,
            Failure::Engine(e) if e.is_closed_output() => EXIT_OUTPUT_CLOSED,
            Failure::Engine(e) if e.is_usage() => EXIT_USAGE,
            Failure::Engine(_) => EXIT_FAILURE,
        }
    }

    fn print(&self) {
        match self {
            Failure::Usage(m) => eprintln!("error: {m}"),
            Failure::Spec(report) => eprintln!("{report}"),
            Failure::Engine(e) if e.is_closed_output() => {}
            Failure::Engine(e) => eprintln!("error: {e}"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Spec(m) => f.write_str(m),
            Failure::Engine(e) => write!(f, "{e}"),
        }
    }
}

/// A command's result: its exit code, or why it failed.
pub type Outcome = Result<u8, Failure>;

fn main() -> ExitCode {
    // A file size limit (`ulimit -f`) is a write error to report, not a kill.
    // SAFETY: sets a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // A shell asking what to complete (`connector-run completions SHELL`).
    completions::answer_if_asked();
    match try_main() {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            f.print();
            ExitCode::from(f.code())
        }
    }
}

fn try_main() -> Outcome {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return Ok(code);
        }
    };
    match cli.command {
        cli::Command::Validate(args) => validate::run(&cli.global, &args),
        cli::Command::Schema => {
            crate::out!("{}", connector_spec::json_schema_text());
            Ok(EXIT_OK)
        }
        cli::Command::Docs => {
            crate::out!("{}", connector_spec::reference_markdown());
            Ok(EXIT_OK)
        }
        cli::Command::Sync(args) => sync::run(&cli.global, args),
        cli::Command::State(args) => state::run(&cli.global, &args),
        cli::Command::Init(args) => init::run(&cli.global, &args),
        cli::Command::Discover(args) => discover::run(&cli.global, &args),
        cli::Command::Check(args) => check::run(&cli.global, &args),
        cli::Command::List => list::run(&cli.global),
        cli::Command::Completions(args) => completions::run(&args),
        // Failures are protocol messages (TRACE) on stdout, not `error:` lines.
        cli::Command::Airbyte(args) => Ok(airbyte::run(&cli.global, args)),
        cli::Command::Singer(args) => singer::run(&cli.global, args),
        cli::Command::Test(args) => replay_test::run(&cli.global, &args),
        cli::Command::Import(args) => import::run(&cli.global, &args),
    }
}
