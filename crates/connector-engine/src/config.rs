//! Config values: gathered from the spec's defaults, the environment, a
//! config file and `--set`, then type-checked against the declared parameters.

use crate::error::{EngineError, Result};
use connector_spec::{ConfigType, Spec};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Where config values come from, lowest precedence first after defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// Environment variables (usually `std::env::vars()`).
    pub env: HashMap<String, String>,
    /// Parsed `--config FILE` contents (a JSON object).
    pub file: Option<Map<String, Value>>,
    /// `--set KEY=VALUE` pairs, in order.
    pub sets: Vec<(String, String)>,
}

impl ConfigSources {
    /// Reads a config file, JSON or YAML.
    pub fn read_file(path: &std::path::Path) -> Result<Map<String, Value>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| EngineError::Config(format!("cannot read {}: {e}", path.display())))?;
        let value: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text)
                .map_err(|e| EngineError::Config(format!("{}: {e}", path.display())))?
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| EngineError::Config(format!("{}: {e}", path.display())))?
        };
        match value {
            Value::Object(m) => Ok(m),
            _ => Err(EngineError::Config(format!(
                "{}: expected a mapping of config values",
                path.display()
            ))),
        }
    }

    /// Parses `KEY=VALUE`.
    pub fn parse_set(s: &str) -> Result<(String, String)> {
        s.split_once('=')
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| EngineError::Config(format!("`--set {s}`: expected KEY=VALUE")))
    }
}

/// The environment variable a parameter reads by default.
pub fn env_name(connector: &str, key: &str) -> String {
    format!(
        "CONNECTOR_{}_{}",
        connector.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    )
}

/// Resolved config: values by name, and the secret values to redact.
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    pub values: Map<String, Value>,
    /// Secret values by config key.
    pub secrets: Vec<(String, String)>,
}

/// Resolves and type-checks config. Reports every problem at once.
pub fn resolve(spec: &Spec, sources: &ConfigSources) -> Result<ResolvedConfig> {
    let mut values = Map::new();
    let mut problems = Vec::new();
    let mut secrets = Vec::new();
    for (key, _) in &sources.sets {
        if !spec.config.contains_key(key) {
            let hint = connector_spec::did_you_mean(key, spec.config.keys().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            problems.push(format!(
                "`--set {key}`: the connector declares no config key `{key}`{hint}"
            ));
        }
    }
    for key in sources.file.iter().flat_map(|f| f.keys()) {
        if !spec.config.contains_key(key) {
            let hint = connector_spec::did_you_mean(key, spec.config.keys().map(String::as_str))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_else(|| {
                    if spec.config.is_empty() {
                        " (it declares none)".to_string()
                    } else {
                        format!(
                            " (declared: {})",
                            spec.config.keys().cloned().collect::<Vec<_>>().join(", ")
                        )
                    }
                });
            problems.push(format!(
                "the config file sets `{key}`, but the connector declares no config key `{key}`{hint}"
            ));
        }
    }
    for (key, param) in &spec.config {
        let env_var = param
            .env
            .clone()
            .unwrap_or_else(|| env_name(&spec.name, key));
        let raw: Option<(Value, String)> = sources
            .sets
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| (Value::String(v.clone()), format!("--set {key}")))
            .or_else(|| {
                sources
                    .file
                    .as_ref()
                    .and_then(|f| f.get(key))
                    .map(|v| (v.clone(), "the config file".to_string()))
            })
            .or_else(|| {
                sources
                    .env
                    .get(&env_var)
                    .map(|v| (Value::String(v.clone()), format!("${env_var}")))
            })
            .or_else(|| {
                param
                    .default
                    .clone()
                    .map(|v| (v, "the default".to_string()))
            });
        let Some((raw, origin)) = raw else {
            if param.required {
                let hint = if param.secret {
                    " (it is secret: prefer the environment)"
                } else {
                    ""
                };
                problems.push(format!("missing required `{key}`: set ${env_var}, `--set {key}=…` or put it in --config{hint}"));
            }
            // Declared, optional, unset: `none` in templates.
            values.insert(key.clone(), Value::Null);
            continue;
        };
        match coerce(&raw, param.kind) {
            Some(v) => {
                if let Some(allowed) = &param.allowed
                    && !allowed.contains(&v)
                {
                    let shown = if param.secret {
                        crate::secret::MASK.to_string()
                    } else {
                        v.to_string()
                    };
                    let list = allowed
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    problems.push(format!(
                        "`{key}` from {origin} is {shown}; expected one of {list}"
                    ));
                    continue;
                }
                if param.secret {
                    let text = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    secrets.push((key.clone(), text));
                }
                values.insert(key.clone(), v);
            }
            None => {
                let shown = if param.secret {
                    crate::secret::MASK.to_string()
                } else {
                    raw.to_string()
                };
                problems.push(format!(
                    "`{key}` from {origin} is {shown}, not a {}",
                    param.kind.name()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(ResolvedConfig { values, secrets })
    } else {
        Err(EngineError::Config(problems.join("\n  ")))
    }
}

fn coerce(v: &Value, kind: ConfigType) -> Option<Value> {
    match (kind, v) {
        (ConfigType::Array, Value::Array(_)) => Some(v.clone()),
        // From the environment or `--set`: JSON text, else `a,b,c`.
        (ConfigType::Array, Value::String(s)) if s.trim_start().starts_with('[') => {
            serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_array)
        }
        (ConfigType::Array, Value::String(s)) => Some(Value::Array(
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| Value::String(x.to_string()))
                .collect(),
        )),
        (ConfigType::String, Value::String(_)) => Some(v.clone()),
        (ConfigType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
        (ConfigType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
        (ConfigType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
        (ConfigType::Integer, Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        (ConfigType::Number, Value::Number(_)) => Some(v.clone()),
        (ConfigType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        (ConfigType::Boolean, Value::Bool(_)) => Some(v.clone()),
        (ConfigType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(Value::Bool(true)),
            "false" | "0" | "no" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}
