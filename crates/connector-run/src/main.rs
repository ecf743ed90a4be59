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
mod compile;
mod completions;
mod connectors;
mod discover;
mod dry_run;
mod init;
mod list;
mod logging;
mod output;
mod progress;
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

/// The exit code of an engine error: problems found before any request
/// are usage errors, the rest are failures.
pub fn exit_for(e: &connector_engine::EngineError) -> u8 {
    if e.is_closed_output() {
        EXIT_OUTPUT_CLOSED
    } else if e.is_usage() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

fn main() -> ExitCode {
    // A file size limit (`ulimit -f`) is a write error to report, not a kill.
    // SAFETY: sets a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        cli::Command::Validate(args) => validate::run(&cli.global, &args),
        cli::Command::Schema => {
            crate::out!("{}", connector_spec::json_schema_text());
            EXIT_OK
        }
        cli::Command::Docs => {
            crate::out!("{}", connector_spec::reference_markdown());
            EXIT_OK
        }
        cli::Command::Sync(args) => sync::run(&cli.global, args),
        cli::Command::State(args) => state::run(&cli.global, &args),
        cli::Command::Init(args) => init::run(&cli.global, &args),
        cli::Command::Discover(args) => discover::run(&cli.global, &args),
        cli::Command::Check(args) => check::run(&cli.global, &args),
        cli::Command::List => list::run(&cli.global),
        cli::Command::Completions(args) => completions::run(&args),
        cli::Command::Airbyte(args) => airbyte::run(&cli.global, args),
    };
    ExitCode::from(code)
}
