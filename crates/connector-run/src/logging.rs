//! Logs on stderr through tracing: warnings by default, `-v` info, `-vv`
//! debug (every request, headers redacted); `RUST_LOG` overrides.

use crate::cli::Global;
use tracing_subscriber::EnvFilter;

pub fn init(global: &Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug,hyper=info,reqwest=info,rustls=info,h2=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
