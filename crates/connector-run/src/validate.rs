//! `connector-run validate`.

use crate::cli::{Global, ValidateArgs};
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome, connectors};

pub fn run(global: &Global, args: &ValidateArgs) -> Outcome {
    let targets: Vec<String> = if args.connectors.is_empty() {
        match connectors::all(&global.connectors_dir) {
            Ok(files) if !files.is_empty() => {
                files.iter().map(|p| p.display().to_string()).collect()
            }
            Ok(_) => {
                return Err(Failure::Usage(format!(
                    "no connector files in {}",
                    global.connectors_dir.display()
                )));
            }
            Err(e) => {
                return Err(Failure::Usage(format!(
                    "cannot list {}: {e}",
                    global.connectors_dir.display()
                )));
            }
        }
    } else {
        args.connectors.clone()
    };
    let mut failed = 0;
    for t in &targets {
        match connectors::load(&global.connectors_dir, t) {
            Ok((path, spec)) => {
                if !global.quiet {
                    crate::outln!("{}: ok ({} streams)", path.display(), spec.streams.len());
                }
            }
            Err(report) => {
                failed += 1;
                eprintln!("{report}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} connector files invalid", targets.len());
        Ok(EXIT_FAILURE)
    } else {
        Ok(EXIT_OK)
    }
}
