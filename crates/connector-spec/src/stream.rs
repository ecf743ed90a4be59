//! Streams: one endpoint each, with its own overrides of the connector's defaults.

use crate::{Incremental, OneOrMany, Pagination, RateLimit, Records, Retry, Template};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One endpoint whose records land in one table or file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// What the stream holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Path joined to `base_url`, e.g. `/posts` or `/posts/{{ parent.id }}/comments`.
    /// Template.
    pub path: Template,
    /// HTTP method, `GET` or `POST`. Default `GET`.
    #[serde(default)]
    pub method: Method,
    /// Query parameters of this stream, added to the connector's. Templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Template>,
    /// Headers of this stream, added to the connector's. Templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Template>,
    /// JSON body, for `POST`. Strings in it are templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Field or fields that identify a record. Used by `merge` writes. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<OneOrMany>,
    /// Parent stream: one partition of this stream per parent record, whose fields
    /// templates read as `{{ parent.<field> }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Replaces the connector's `pagination`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Replaces the connector's `records`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Records>,
    /// Replaces the connector's `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// A quota for this stream alone, on top of the connector's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Incremental sync: fetch only what changed since the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    /// One partition per value of a list, e.g. every repository of
    /// `config.repositories`, and/or per distinct value read from other
    /// streams' records (`from`); templates read the value as
    /// `{{ partition.<as> }}`. Not with `parent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Partitions>,
    /// Values of the last response kept as the stream's state for the next
    /// run, by name: a JSONPath each, e.g. `after_cursor: $.after_cursor`
    /// (Zendesk's incremental export) or `delta_link: $['@odata.deltaLink']`
    /// (Microsoft Graph). Templates read them as `{{ state.<name> }}`; a value
    /// is saved when the stream completes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub response_state: IndexMap<String, crate::JsonPath>,
    /// How `body` is sent: `json` (`application/json`) or `form`
    /// (`application/x-www-form-urlencoded`, flat fields only). Default `json`.
    #[serde(default, skip_serializing_if = "BodyFormat::is_json")]
    pub body_format: BodyFormat,
    /// Read only for the streams that take their parent or partitions from
    /// it: not synced, discovered or offered to Airbyte unless named (e.g.
    /// a lookup of ids no one wants as a table). Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

/// One partition per value: of a config list, and of other streams' records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Partitions {
    /// The values: a template over `config` that renders to a list, e.g.
    /// `{{ config.repositories }}`. Required unless `from` names streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Template>,
    /// The name templates read each value under: `{{ partition.<as> }}`.
    #[serde(rename = "as")]
    pub name: String,
    /// Partitions from other streams' records: for each record of `stream`,
    /// `value` rendered with the record as `parent` (a value that renders to
    /// nothing is no partition). With `values` and several sources, the
    /// partitions are their union, each distinct value once, the first
    /// occurrence winning (its record is what `{{ parent }}` reads; `null`
    /// for a config value). Those streams are read for these partitions
    /// whether or not they are synced. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<PartitionSource>,
}

/// Partitions read from another stream's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionSource {
    /// The stream whose records give the values.
    pub stream: String,
    /// The partition value of one of its records, e.g. `{{ parent.full_name }}`.
    pub value: Template,
}

impl Stream {
    /// The streams whose records this one reads: its `parent` and its
    /// `partitions.from` streams, in order, without repeats.
    pub fn parent_streams(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.parent.as_deref().into_iter().collect();
        for s in self.partitions.iter().flat_map(|p| &p.from) {
            if !out.contains(&s.stream.as_str()) {
                out.push(&s.stream);
            }
        }
        out
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
}

impl BodyFormat {
    fn is_json(&self) -> bool {
        *self == BodyFormat::Json
    }
}

/// HTTP method of a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Method {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}
