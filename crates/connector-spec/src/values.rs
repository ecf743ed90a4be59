//! Small string-typed values of the spec language: templates, JSONPaths,
//! human durations ("30s") and rates ("20/s"). They stay strings in the typed
//! spec so that the schema shows what users write; [`crate::validate`] checks
//! that each parses, and the engine compiles them once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A minijinja template over `config`, `parent`, `state`, `page` (and `record`
/// where records are at hand). A string with no `{{ }}` is a plain literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Template(pub String);

impl Template {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// True when the text contains template syntax.
    pub fn is_dynamic(&self) -> bool {
        self.0.contains("{{") || self.0.contains("{%")
    }
}

impl From<&str> for Template {
    fn from(s: &str) -> Self {
        Template(s.to_string())
    }
}

/// An RFC 9535 JSONPath, e.g. `$.data[*]`, `$.results` or `$`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct JsonPath(pub String);

impl JsonPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A duration written for humans: `250ms`, `30s`, `5m`, `1h`, `1d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct HumanDuration(pub String);

impl HumanDuration {
    pub fn new(s: &str) -> Self {
        HumanDuration(s.to_string())
    }
    /// Parses the text; `validate` reports the error with its location.
    pub fn parse(&self) -> Result<Duration, String> {
        parse_duration(&self.0)
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{t}` has no unit; write `{t}s` or `{t}ms`"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("`{t}` is not a duration ({e}); write e.g. `500ms`, `30s`, `5m`"))
}

/// A size in bytes written for humans: `512KiB`, `256MiB`, `1GiB`, `10MB` or
/// a plain number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ByteSize(pub String);

impl ByteSize {
    pub fn new(s: &str) -> Self {
        ByteSize(s.to_string())
    }
    /// The size in bytes; `validate` reports the error with its location.
    pub fn parse(&self) -> Result<u64, String> {
        parse_size(&self.0)
    }
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let hint = "write e.g. `256MiB`, `1GiB`, `500KB` or a number of bytes";
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("`{t}` is not a size; {hint}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("`{t}`: unknown unit `{other}`; {hint}")),
    };
    let bytes = n * mult as f64;
    if !(1.0..=(u64::MAX as f64)).contains(&bytes) {
        return Err(format!("`{t}` is out of range; {hint}"));
    }
    Ok(bytes as u64)
}

/// A request rate: `N/s`, `N/min`, `N/h`, or `N/<duration>` such as `100/15m`;
/// or a template over `config` that renders to one, for limits that depend
/// on the plan, e.g. `{{ config.requests_per_second }}/s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Rate(pub String);

/// A parsed [`Rate`]: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateValue {
    pub requests: u32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(&self) -> Result<RateValue, String> {
        parse_rate(&self.0)
    }
}

pub fn parse_rate(text: &str) -> Result<RateValue, String> {
    let t = text.trim();
    let hint =
        "write `N/s`, `N/min`, `N/h`, `N/d` or `N/<duration>` such as `100/10s` or `900/15m`";
    let Some((n, unit)) = t.split_once('/') else {
        return Err(format!("`{t}` is not a rate; {hint}"));
    };
    let requests: u32 = n.trim().parse().map_err(|_| {
        format!(
            "`{t}`: `{}` is not a whole number of requests; {hint}",
            n.trim()
        )
    })?;
    if requests == 0 {
        return Err(format!("`{t}`: a rate must allow at least one request"));
    }
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86400),
        other => {
            parse_duration(other).map_err(|_| format!("`{t}`: unknown period `{other}`; {hint}"))?
        }
    };
    if per.is_zero() {
        return Err(format!("`{t}`: the period must be longer than zero"));
    }
    Ok(RateValue { requests, per })
}

/// A whole number, or a template that renders to one (e.g. `{{ config.page_size }}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrTemplate {
    Int(u64),
    Template(Template),
}

impl From<u64> for IntOrTemplate {
    fn from(v: u64) -> Self {
        IntOrTemplate::Int(v)
    }
}

/// One name or a list of names (e.g. a primary key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("20/s").unwrap(),
            RateValue {
                requests: 20,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(parse_rate("600/min").unwrap().per, Duration::from_secs(60));
        assert_eq!(parse_rate("100/15m").unwrap().per, Duration::from_secs(900));
        assert!(parse_rate("20").is_err());
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("x/s").is_err());
        assert!(parse_rate("5/fortnight").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("soon").is_err());
    }
}
