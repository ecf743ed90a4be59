//! `connector-run completions SHELL`: a completion script on stdout, e.g.
//! `connector-run completions bash > /etc/bash_completion.d/connector-run`.

use crate::cli::CompletionsArgs;
use crate::{EXIT_OK, Outcome};
use clap::CommandFactory;

pub fn run(args: &CompletionsArgs) -> Outcome {
    let mut cmd = crate::cli::Cli::command();
    // Into memory first: clap_complete panics when stdout is a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "connector-run", &mut script);
    crate::output::write_bytes(&script);
    Ok(EXIT_OK)
}
