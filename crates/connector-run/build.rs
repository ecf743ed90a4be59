//! Puts the commit into `--version`: `connector-run 0.1.0 (commit
//! 1a2b3c4d5e6f, 2026-12-01)`. From `git` when the source is a checkout,
//! else from `CONNECTOR_RUN_COMMIT` (a tarball or Docker build can pass it);
//! with neither, the version alone.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CONNECTOR_RUN_COMMIT");
    let version = env!("CARGO_PKG_VERSION");
    let commit = std::env::var("CONNECTOR_RUN_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| format!("commit {c}"))
        .or_else(|| {
            let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuilt when HEAD moves: HEAD itself, the branch it names, packed refs.
            if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
                println!("cargo:rerun-if-changed={}", dir.join("HEAD").display());
                println!(
                    "cargo:rerun-if-changed={}",
                    dir.join("packed-refs").display()
                );
                if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    let common = git(&["rev-parse", "--git-common-dir"]).map_or(dir, PathBuf::from);
                    println!("cargo:rerun-if-changed={}", common.join(branch).display());
                }
            }
            let date = git(&["log", "-1", "--format=%cs", "HEAD"]);
            Some(match date {
                Some(d) => format!("commit {hash}, {d}"),
                None => format!("commit {hash}"),
            })
        });
    let full = match commit {
        Some(c) => format!("{version} ({c})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=CONNECTOR_RUN_VERSION={full}");
}
