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
