//! Loading a connector and compiling its plan with config from the
//! environment, `--config` and `--set`, for the commands that make requests
//! outside `sync` (`check`, `discover`). Problems are printed here; the
//! caller only returns the exit code.

use crate::EXIT_USAGE;
use crate::cli::Global;
use connector_engine::{ConfigSources, Plan};
use connector_spec::Spec;
use std::path::PathBuf;

/// Where config values come from, as on `sync`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Config values from a JSON or YAML file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set a config value, `KEY=VALUE` (repeatable); wins over --config and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// A connector, loaded and compiled.
pub struct Loaded {
    pub path: PathBuf,
    pub spec: Spec,
    pub plan: Plan,
}

/// Loads `connector` and compiles it, or prints why not and gives the exit code.
pub fn load(global: &Global, connector: &str, args: &ConfigArgs) -> Result<Loaded, u8> {
    let (path, spec) = crate::connectors::load(&global.connectors_dir, connector).map_err(|r| {
        eprintln!("{r}");
        EXIT_USAGE
    })?;
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        EXIT_USAGE
    };
    let mut sources = ConfigSources {
        env: std::env::vars().collect(),
        ..Default::default()
    };
    if let Some(file) = &args.config {
        sources.file = Some(ConfigSources::read_file(file).map_err(|e| usage(&e))?);
    }
    for s in &args.sets {
        sources
            .sets
            .push(ConfigSources::parse_set(s).map_err(|e| usage(&e))?);
    }
    let plan = Plan::compile(&spec, &sources, None).map_err(|e| usage(&e))?;
    Ok(Loaded { path, spec, plan })
}

/// The config keys a template reads: `{{ config.api_token }}` → `api_token`.
pub fn config_refs(template: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("config.") {
        let tail = &rest[i + 7..];
        let n = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if n > 0 && !keys.iter().any(|k| k == &tail[..n]) {
            keys.push(tail[..n].to_string());
        }
        rest = &tail[n..];
    }
    keys
}

/// How the user supplies config `key`: `$ENV` or `--set key=…`.
pub fn how_to_set(spec: &Spec, key: &str) -> String {
    let env = spec
        .config
        .get(key)
        .and_then(|p| p.env.clone())
        .unwrap_or_else(|| connector_engine::config::env_name(&spec.name, key));
    format!("`{key}`: set ${env} or pass `--set {key}=…`")
}

/// Streams in an order where every parent comes before its children.
pub fn parents_first(plan: &Plan, streams: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    while out.len() < streams.len() {
        let before = out.len();
        for s in streams {
            let ready = plan.streams[s]
                .parent
                .as_ref()
                .is_none_or(|p| out.contains(p) || !streams.contains(p));
            if ready && !out.contains(s) {
                out.push(s.clone());
            }
        }
        if out.len() == before {
            break; // a cycle: the spec check forbids it
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_refs() {
        assert_eq!(
            super::config_refs("{{ config.a }}:{{config.b_2}} {{ config.a }}"),
            vec!["a", "b_2"]
        );
    }
}
