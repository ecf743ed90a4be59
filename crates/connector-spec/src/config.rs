//! Config parameters: what the user supplies, and where it comes from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One parameter the user supplies. Values come, lowest precedence first, from
/// `default`, the environment (`env`, else `CONNECTOR_<CONNECTOR>_<NAME>`),
/// `--config FILE`, then `--set name=value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigParam {
    /// Value type. Default `string`.
    #[serde(rename = "type", default)]
    pub kind: ConfigType,
    /// What the parameter means, shown by `connector-run list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Value used when none is supplied. Not allowed for secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The run fails before any request when no value is supplied. Default `false`.
    #[serde(default)]
    pub required: bool,
    /// The allowed values, if restricted.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// The value is a credential: it is redacted everywhere and may not have a
    /// default in the spec. Default `false`.
    #[serde(default)]
    pub secret: bool,
    /// Environment variable to read instead of `CONNECTOR_<CONNECTOR>_<NAME>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// The type of a config value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigType {
    #[default]
    String,
    Integer,
    Number,
    Boolean,
    /// A list: JSON in a config file, `a,b,c` or JSON text from the
    /// environment or `--set`.
    Array,
}

impl ConfigType {
    /// The name with its article: `a string`, `an integer`.
    pub fn article(self) -> &'static str {
        match self {
            ConfigType::String => "a string",
            ConfigType::Integer => "an integer",
            ConfigType::Number => "a number",
            ConfigType::Boolean => "a boolean",
            ConfigType::Array => "a list",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConfigType::String => "string",
            ConfigType::Integer => "integer",
            ConfigType::Number => "number",
            ConfigType::Boolean => "boolean",
            ConfigType::Array => "array",
        }
    }
}
