//! Record selection: where the records are in a response, which to keep, and
//! how to reshape them.

use crate::{JsonPath, Template};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the records are in each response body and how to reshape them.
/// Transformations run in this order: expand, filter, rename, remove,
/// flatten, add, then `transforms`. Field names may be dotted paths into
/// nested objects (`properties.email`); a name that exists with its dots is
/// taken as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// RFC 9535 JSONPath to the records: `$` for a top-level array, `$.data` or
    /// `$.data[*]` for a nested one. An array found there yields its items; a
    /// single object counts as one record. Default `$`.
    #[serde(default = "default_path")]
    pub path: JsonPath,
    /// Keep only records for which this minijinja expression is true, e.g.
    /// `record.status == "active"`. Variables: `record`, `config`, `parent`, `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Fields to rename, `old: new`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub rename_fields: IndexMap<String, String>,
    /// Fields to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_fields: Vec<String>,
    /// Fields to add or overwrite, from templates over `record`, `config`, `parent`
    /// and `state`. A template that is a single `{{ expression }}` keeps the
    /// value's JSON type (numbers stay numbers).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub add_fields: IndexMap<String, Template>,
    /// Objects whose fields move into the record, e.g. `properties`
    /// (HubSpot): `{"id": 1, "properties": {"email": "a"}}` becomes
    /// `{"id": 1, "email": "a"}`. A field the record has already is kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flatten: Vec<String>,
    /// Transformations for the records that match `when`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    /// One record per item of a nested array, with fields of the outer
    /// record copied in (an order's `line_items`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<Expand>,
    /// What happens to a record that is not a JSON object, or lacks a field
    /// of the stream's `primary_key` (missing or `null`): `fail` ends the
    /// stream with an error naming the page and the record; `skip` drops it
    /// and counts it in the summary. Default `fail`.
    #[serde(default, skip_serializing_if = "InvalidRecords::is_fail")]
    pub on_invalid: InvalidRecords,
}

/// Transformations applied only to the records that match `when`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// A minijinja expression over `record` (and `config`, `parent`,
    /// `state`); the transformation applies where it is true. Default: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Fields to rename, `old: new`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub rename_fields: IndexMap<String, String>,
    /// Fields to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_fields: Vec<String>,
    /// Objects whose fields move into the record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flatten: Vec<String>,
    /// Fields to add or overwrite, from templates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub add_fields: IndexMap<String, Template>,
}

/// One record per item of a nested array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expand {
    /// The array field, e.g. `line_items`; each of its items (objects)
    /// becomes a record. A record without it yields none.
    pub path: String,
    /// Fields of the outer record copied into each item, `new_name: field`,
    /// e.g. `order_id: id`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub copy: IndexMap<String, String>,
}

/// What to do with a record that cannot be written as a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvalidRecords {
    /// End the stream with an error.
    #[default]
    Fail,
    /// Drop the record and count it.
    Skip,
}

impl InvalidRecords {
    fn is_fail(&self) -> bool {
        *self == InvalidRecords::Fail
    }
}

fn default_path() -> JsonPath {
    JsonPath("$".into())
}

impl Default for Records {
    fn default() -> Self {
        Records {
            path: default_path(),
            filter: None,
            rename_fields: IndexMap::new(),
            remove_fields: Vec::new(),
            add_fields: IndexMap::new(),
            flatten: Vec::new(),
            transforms: Vec::new(),
            expand: None,
            on_invalid: InvalidRecords::Fail,
        }
    }
}
