//! The context every command that runs a connector starts from: the spec
//! loaded, config gathered from the environment, `--config` and `--set`,
//! and the plan compiled; and the tokio runtime, built here only.

use crate::Failure;
use crate::cli::{ConfigArgs, Global};
use connector_engine::{ConfigSources, Plan};
use connector_spec::Spec;
use std::path::PathBuf;

/// A connector, loaded and compiled.
pub struct Loaded {
    pub path: PathBuf,
    pub spec: Spec,
    pub plan: Plan,
}

/// Where config values come from. The environment is read unless
/// `with_env` is false (the Airbyte protocol passes config as a file only).
pub fn sources(args: &ConfigArgs, with_env: bool) -> Result<ConfigSources, Failure> {
    let mut sources = ConfigSources::default();
    if with_env {
        sources.env = std::env::vars().collect();
    }
    if let Some(file) = &args.config {
        sources.file = Some(ConfigSources::read_file(file)?);
    }
    for s in &args.sets {
        sources.sets.push(ConfigSources::parse_set(s)?);
    }
    Ok(sources)
}

/// Loads the spec of `connector` (a name in the connectors folder or a
/// path). An Airbyte low-code manifest is translated on the way.
pub fn spec(global: &Global, connector: &str) -> Result<(PathBuf, Spec), Failure> {
    let path = crate::connectors::resolve(&global.connectors_dir, connector);
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(text) = connector_spec::decode(&bytes, &path.display().to_string())
        && connector_spec::airbyte::is_manifest(&text)
    {
        let spec = crate::import::load_manifest(&path, &text)?;
        return Ok((path, spec));
    }
    crate::connectors::load(&global.connectors_dir, connector).map_err(Failure::Spec)
}

impl Loaded {
    /// Loads `connector` and compiles its plan with config from `args`.
    pub fn load(
        global: &Global,
        connector: &str,
        args: &ConfigArgs,
        with_env: bool,
    ) -> Result<Loaded, Failure> {
        let (path, spec) = spec(global, connector)?;
        let plan = Plan::compile(&spec, &sources(args, with_env)?, None)?;
        Ok(Loaded { path, spec, plan })
    }
}

/// The runtime of every command that makes requests.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))
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
                .parent_streams()
                .iter()
                .all(|p| out.iter().any(|o| o == p) || !streams.iter().any(|x| x == p));
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
