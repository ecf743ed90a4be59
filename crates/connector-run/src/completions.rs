//! `connector-run completions SHELL`: a completion script on stdout, e.g.
//! `connector-run completions bash > /etc/bash_completion.d/connector-run`.

use crate::EXIT_OK;
use clap::CommandFactory;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &CompletionsArgs) -> u8 {
    let mut cmd = crate::cli::Cli::command();
    // Into memory first: clap_complete panics when stdout is a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "connector-run", &mut script);
    crate::output::write_bytes(&script);
    EXIT_OK
}
