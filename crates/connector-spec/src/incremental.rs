//! Incremental syncs: a cursor field, its saved value and how it is sent.

use crate::{HumanDuration, Template};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Incremental sync on a cursor field. Templates read the lower bound as
/// `{{ state.cursor }}`: the saved cursor minus `lookback`, or `start_value`
/// on the first run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Record field holding the cursor, e.g. `updated_at`.
    pub cursor_field: String,
    /// How cursor values compare: `datetime` (RFC 3339), `date` (ISO), `integer` or
    /// `string`. Default `datetime`.
    #[serde(default)]
    pub cursor_type: CursorType,
    /// Cursor of the first run. Template, e.g. `{{ config.start_date }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_value: Option<Template>,
    /// Query parameter that receives `{{ state.cursor }}`. Optional: streams may
    /// instead use `state.cursor` in their own `params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Re-read this much before the saved cursor, for late updates (datetime and
    /// date cursors). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<HumanDuration>,
    /// Drop records older than the lower bound client-side, for APIs that cannot
    /// filter. Default `true`.
    #[serde(default = "yes")]
    pub client_filter: bool,
    /// How the records' cursor values are written: `rfc3339` (any offset,
    /// the default for `datetime`), `epoch` (seconds), `epoch_ms`, `epoch_us`
    /// (microseconds), or a
    /// strftime format such as `%Y-%m-%d %H:%M:%S` (read as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_format: Option<String>,
    /// How bounds are sent to the API (`param`, `{{ state.cursor }}`,
    /// `{{ window.start }}`): the same forms as `cursor_format`. Default:
    /// `cursor_format`, else RFC 3339 in UTC (`2024-01-02T03:04:05Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_format: Option<String>,
    /// The earliest lower bound ever sent, e.g. `{{ day_delta(-90) }}` for an
    /// API that keeps 90 days. Template over `config`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Template>,
    /// Split the range from the lower bound to `end` into windows, one
    /// partition each (`datetime` and `date` cursors). Templates read the
    /// bounds as `{{ window.start }}` and `{{ window.end }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,
    /// For an API that caps one query's results (HubSpot's search stops at
    /// 10,000, Freshdesk's ticket list at 300 pages): when this expression
    /// is true after a page (over `response`, `headers`, `page`, `state`
    /// and `config`, as `stop.when`), that page ends the query and the stream
    /// queries again from the cursor reached, in the same run, until a query
    /// ends before the cap. The API must sort records by the cursor,
    /// ascending. A query that reaches the cap without moving the cursor is
    /// an error: more records share one cursor value than a query returns.
    /// Root streams only (no `parent`, `partitions` or `windows`), and not
    /// the parent of another (a parent is read in full), e.g.
    /// `(response.paging.next.after | int) >= 10000`. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_when: Option<String>,
}

/// Date windows: partitions of an incremental range. They run concurrently
/// up to the concurrency bound; each checkpoints; a resumed run skips the
/// finished ones; the stream's cursor advances to the range's end only when
/// every window completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Length of a window, e.g. `1d`, `7d`, `1h`.
    pub step: HumanDuration,
    /// The smallest step of the cursor: a window ends this much before the
    /// next one starts (`1s` gives `…T23:59:59` then `…T00:00:00`). Default `1s`.
    #[serde(default = "default_granularity")]
    pub granularity: HumanDuration,
    /// End of the range. Template over `config`, e.g. `{{ config.end_date }}`.
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Template>,
}

fn default_granularity() -> HumanDuration {
    HumanDuration::new("1s")
}

/// How cursor values compare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CursorType {
    #[default]
    Datetime,
    Date,
    Integer,
    String,
}

fn yes() -> bool {
    true
}
