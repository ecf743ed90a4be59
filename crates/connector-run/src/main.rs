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
/// Exit code: bad usage, spec, config or destination; nothing was fetched.
pub const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
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
            print!("{}", connector_spec::json_schema_text());
            EXIT_OK
        }
        cli::Command::Docs => {
            print!("{}", connector_spec::reference_markdown());
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
