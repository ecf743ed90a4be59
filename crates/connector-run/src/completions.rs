//! Shell completion: `connector-run completions SHELL` prints a script that
//! asks the binary itself what to complete (clap_complete's dynamic
//! completion, activated by `CONNECTOR_RUN_COMPLETE=<shell>`), so commands and
//! flags complete, and so do connector names (the files in
//! `--connectors-dir`) and a connector's stream names (read from its spec),
//! always as they are on disk now:
//!
//! ```text
//! source <(connector-run completions bash)       # ~/.bashrc
//! source <(connector-run completions zsh)        # ~/.zshrc
//! connector-run completions fish | source        # ~/.config/fish/config.fish
//! ```

use crate::cli::{Cli, CompletionsArgs};
use crate::{EXIT_OK, Failure, Outcome};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use std::ffi::OsStr;
use std::path::PathBuf;

/// The environment variable that turns a run into a completion request.
pub const VAR: &str = "CONNECTOR_RUN_COMPLETE";

/// Answers a completion request and exits, when the shell made one.
pub fn answer_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .complete();
}

pub fn run(args: &CompletionsArgs) -> Outcome {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::PowerShell => &Powershell,
        other => return Err(Failure::usage(format!("no completions for {other}"))),
    };
    // The script calls this very binary back.
    let me = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "connector-run".into());
    let mut script = Vec::new();
    shell
        .write_registration(VAR, "connector-run", "connector-run", &me, &mut script)
        .map_err(|e| Failure::usage(format!("cannot write the script: {e}")))?;
    crate::output::write_bytes(&script);
    Ok(EXIT_OK)
}

/// Completes a connector argument with the connectors in `--connectors-dir`.
pub fn connector() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| -> Vec<CompletionCandidate> {
        let current = current.to_string_lossy();
        let (dir, _) = words_so_far();
        crate::connectors::names(&dir)
            .into_iter()
            .filter(|n| n.starts_with(&*current))
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// Completes a stream argument with the streams of the connector named
/// earlier on the command line.
pub fn stream() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| -> Vec<CompletionCandidate> {
        let current = current.to_string_lossy();
        let (dir, connector) = words_so_far();
        let Some(connector) = connector else {
            return Vec::new();
        };
        let Ok((_, spec)) = crate::connectors::load(&dir, &connector) else {
            return Vec::new();
        };
        spec.streams
            .keys()
            .filter(|n| n.starts_with(&*current))
            .map(CompletionCandidate::new)
            .collect()
    })
}

/// The connectors folder and the connector of the command line being
/// completed (the words after `--` in a completion request), parsed
/// leniently since it is unfinished.
fn words_so_far() -> (PathBuf, Option<String>) {
    let words: Vec<std::ffi::OsString> = std::env::args_os()
        .skip_while(|a| a != "--")
        .skip(1)
        .collect();
    let default = || {
        std::env::var_os("CONNECTOR_RUN_CONNECTORS_DIR")
            .map_or_else(|| PathBuf::from("connectors"), PathBuf::from)
    };
    let Ok(m) = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(words)
    else {
        return (default(), None);
    };
    let mut dir = m.get_one::<PathBuf>("connectors_dir").cloned();
    let mut connector = None;
    if let Some((_, sub)) = m.subcommand() {
        if let Ok(Some(d)) = sub.try_get_one::<PathBuf>("connectors_dir") {
            dir = Some(d.clone());
        }
        if let Ok(Some(c)) = sub.try_get_one::<String>("connector") {
            connector = Some(c.clone());
        }
    }
    (dir.unwrap_or_else(default), connector)
}
