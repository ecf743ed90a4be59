//! The top of a connector file: metadata, connection, and the defaults that
//! every stream inherits.

use crate::{
    Auth, ByteSize, ConfigParam, HumanDuration, Pagination, RateLimit, Records, Retry, Stream,
    Template,
};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A connector: one REST API described in one YAML file.
///
/// Streams inherit `pagination`, `records` and `retry` from this level unless
/// they declare their own block, which replaces the inherited one whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "connector-run connector")]
pub struct Spec {
    /// Version of the spec language. Always `1`.
    pub version: u32,
    /// Connector name, in snake_case; also the prefix of its environment variables
    /// (`CONNECTOR_<NAME>_<KEY>`).
    pub name: String,
    /// One-line description of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Link to the API's documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
    /// Parameters the user supplies, by name: from `--config FILE`, `--set key=value`
    /// or the environment. Templates read them as `{{ config.<name> }}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub config: IndexMap<String, ConfigParam>,
    /// Base URL that stream paths are joined to. Template over `config`.
    pub base_url: Template,
    /// Headers sent with every request, by name. Templates over `config`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Template>,
    /// Query parameters sent with every request, by name. Templates over `config`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Template>,
    /// Timeout of one whole request, including reading the body. Default `30s`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Timeout for opening a connection. Default `10s`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Largest response body accepted, after decompression (`256MiB`, `1GiB`).
    /// A bigger body (a gzip bomb, an endless stream) fails its page with an
    /// error, read in bounded memory. Default `256MiB`.
    #[serde(default = "default_max_response_size")]
    pub max_response_size: ByteSize,
    /// `User-Agent` header. Template over `config`. Default `connector-run/<version>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Template>,
    /// How requests authenticate. Default `{type: none}`.
    #[serde(default)]
    pub auth: Auth,
    /// Client-side quota shared by every stream and request of a run. Default: no
    /// quota, 4 requests in flight, all server rate-limit headers honoured.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Default retry policy of every stream.
    #[serde(default)]
    pub retry: Retry,
    /// Default pagination of every stream. Default `{type: none}`.
    #[serde(default)]
    pub pagination: Pagination,
    /// Default record selection of every stream. Default: records at `$`.
    #[serde(default)]
    pub records: Records,
    /// The streams, by name (snake_case). Each becomes one table or file.
    pub streams: IndexMap<String, Stream>,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::new("30s")
}
fn default_max_response_size() -> ByteSize {
    ByteSize::new("256MiB")
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration::new("10s")
}

impl Spec {
    /// The effective pagination of a stream: its own block, else the connector's.
    pub fn pagination_of<'a>(&'a self, stream: &'a Stream) -> &'a Pagination {
        stream.pagination.as_ref().unwrap_or(&self.pagination)
    }
    /// The effective record selection of a stream.
    pub fn records_of<'a>(&'a self, stream: &'a Stream) -> &'a Records {
        stream.records.as_ref().unwrap_or(&self.records)
    }
    /// The effective retry policy of a stream.
    pub fn retry_of<'a>(&'a self, stream: &'a Stream) -> &'a Retry {
        stream.retry.as_ref().unwrap_or(&self.retry)
    }
}
