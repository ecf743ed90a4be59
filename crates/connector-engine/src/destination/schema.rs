//! Column types for the table-shaped destinations (SQLite, Postgres, CSV,
//! Parquet, the Singer SCHEMA message): a stream's declared JSON Schema, or
//! the records themselves, give each top-level field a [`ColumnKind`]; a
//! value of another kind widens the column, never drops the value.
//!
//! Widening: `integer` + `real` → `real`; `json` + `integer`/`real`/`boolean`
//! → `json` (a JSON number or boolean is valid JSON); any other mix → `text`
//! (a number, boolean or JSON value written as its text).
//!
//! `timestamp` and `date` come only from a declared schema (`type: string`
//! with `format: date-time` or `format: date`): a column keeps them while
//! every value parses as one ([`as_timestamp`], [`as_date`]), and becomes
//! `text` at the first that does not.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Real,
    Boolean,
    Text,
    /// A nested object or array, stored as JSON text (JSONB in Postgres).
    Json,
    /// An instant (`format: date-time`), as RFC 3339 UTC where it is text.
    Timestamp,
    /// A calendar date (`format: date`), `YYYY-MM-DD`.
    Date,
}

impl ColumnKind {
    /// The kind of a value; `None` for `null`, which fits every column.
    pub fn of(v: &Value) -> Option<ColumnKind> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(_) => ColumnKind::Boolean,
            Value::Number(n) if n.is_i64() => ColumnKind::Integer,
            // Beyond i64: kept exactly, as text.
            Value::Number(n) if n.is_u64() => ColumnKind::Text,
            Value::Number(_) => ColumnKind::Real,
            Value::String(_) => ColumnKind::Text,
            Value::Array(_) | Value::Object(_) => ColumnKind::Json,
        })
    }

    /// The narrowest kind that holds values of both kinds.
    pub fn join(self, other: ColumnKind) -> ColumnKind {
        use ColumnKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Integer, Real) | (Real, Integer) => Real,
            (Json, Integer | Real | Boolean) | (Integer | Real | Boolean, Json) => Json,
            _ => Text,
        }
    }

    /// The kind a column of this kind becomes to hold a value of `kind`
    /// (`text`: the value, when it is a string). A `timestamp` or `date`
    /// column keeps its kind for text that parses as one.
    pub fn widened_for(self, kind: ColumnKind, text: Option<&str>) -> ColumnKind {
        match (self, text) {
            (ColumnKind::Timestamp, Some(t)) if as_timestamp(t).is_some() => self,
            (ColumnKind::Date, Some(d)) if as_date(d).is_some() => self,
            _ => self.join(kind),
        }
    }

    /// The kind a JSON Schema declares, if it declares one: `type` (a name
    /// or a list; `null` is ignored), `anyOf`/`oneOf` branches, or
    /// `properties`/`items` alone.
    pub fn from_json_schema(s: &Value) -> Option<ColumnKind> {
        let format = s.get("format").and_then(Value::as_str);
        let one = |t: &str| match t {
            "integer" => Some(ColumnKind::Integer),
            "number" => Some(ColumnKind::Real),
            "boolean" => Some(ColumnKind::Boolean),
            "string" if format == Some("date-time") => Some(ColumnKind::Timestamp),
            "string" if format == Some("date") => Some(ColumnKind::Date),
            "string" => Some(ColumnKind::Text),
            "object" | "array" => Some(ColumnKind::Json),
            _ => None,
        };
        let join_all = |kinds: Vec<ColumnKind>| kinds.into_iter().reduce(ColumnKind::join);
        match s.get("type") {
            Some(Value::String(t)) => return one(t),
            Some(Value::Array(ts)) => {
                return join_all(
                    ts.iter()
                        .filter_map(Value::as_str)
                        .filter_map(one)
                        .collect(),
                );
            }
            _ => {}
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = s.get(key) {
                return join_all(branches.iter().filter_map(Self::from_json_schema).collect());
            }
        }
        if s.get("properties").is_some() || s.get("items").is_some() {
            return Some(ColumnKind::Json);
        }
        None
    }

    /// A JSON Schema for values of this kind, nullable.
    pub fn json_schema(self) -> Value {
        match self {
            ColumnKind::Integer => json!({ "type": ["integer", "null"] }),
            ColumnKind::Real => json!({ "type": ["number", "null"] }),
            ColumnKind::Boolean => json!({ "type": ["boolean", "null"] }),
            ColumnKind::Text => json!({ "type": ["string", "null"] }),
            // Anything: a nested value of any shape.
            ColumnKind::Json => json!({}),
            ColumnKind::Timestamp => json!({ "type": ["string", "null"], "format": "date-time" }),
            ColumnKind::Date => json!({ "type": ["string", "null"], "format": "date" }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Integer => "integer",
            ColumnKind::Real => "real",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Text => "text",
            ColumnKind::Json => "json",
            ColumnKind::Timestamp => "timestamp",
            ColumnKind::Date => "date",
        }
    }
}

/// A `timestamp` column's value: what [`connector_spec::datetime`] parses
/// (RFC 3339 with any offset, or none for UTC), as the instant in UTC.
pub fn as_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    connector_spec::datetime::parse_datetime(s)
}

/// The same as RFC 3339 UTC text, `2024-01-02T03:04:05Z` (with the
/// fraction of a second where there is one), which sorts as it should.
pub fn timestamp_text(s: &str) -> Option<String> {
    as_timestamp(s).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A `date` column's value: exactly `YYYY-MM-DD`.
pub fn as_date(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
}

/// A value as text for a `text` column: strings as they are, everything
/// else as JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One column: the record field it holds, its name in the table, its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub field: String,
    pub name: String,
    pub kind: ColumnKind,
}

/// What a batch changed in a table's columns.
#[derive(Debug, Default)]
pub struct Changes {
    /// Indexes of new columns.
    pub added: Vec<usize>,
    /// Indexes of widened columns, with their kind before.
    pub widened: Vec<(usize, ColumnKind)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.widened.is_empty()
    }
}

/// The columns of one table, in order, with unique names: names are compared
/// case-insensitively (SQLite does) and never collide with the reserved
/// metadata columns.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub cols: Vec<Column>,
    by_field: HashMap<String, usize>,
    taken: HashSet<String>,
    max_len: usize,
}

impl Columns {
    /// Empty columns; `reserved` names are never given to a field, and
    /// names are cut to `max_len` bytes (0: no limit).
    pub fn new(reserved: &[&str], max_len: usize) -> Columns {
        Columns {
            cols: Vec::new(),
            by_field: HashMap::new(),
            taken: reserved.iter().map(|r| r.to_lowercase()).collect(),
            max_len,
        }
    }

    /// Rebuilds from saved columns (kept as they were).
    pub fn restore(reserved: &[&str], max_len: usize, saved: Vec<Column>) -> Columns {
        let mut c = Columns::new(reserved, max_len);
        for col in saved {
            c.taken.insert(col.name.to_lowercase());
            c.by_field.insert(col.field.clone(), c.cols.len());
            c.cols.push(col);
        }
        c
    }

    pub fn get(&self, field: &str) -> Option<&Column> {
        self.by_field.get(field).map(|&i| &self.cols[i])
    }

    pub fn index(&self, field: &str) -> Option<usize> {
        self.by_field.get(field).copied()
    }

    pub fn len(&self) -> usize {
        self.cols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Adds a column for `field`, returning its index.
    pub fn add(&mut self, field: &str, kind: ColumnKind) -> usize {
        if let Some(i) = self.index(field) {
            return i;
        }
        let mut base: String = if field.is_empty() {
            "_".into()
        } else {
            field.replace('\0', "_")
        };
        if self.max_len > 0 && base.len() > self.max_len - 4 {
            let mut cut = self.max_len - 4;
            while !base.is_char_boundary(cut) {
                cut -= 1;
            }
            base.truncate(cut);
        }
        let mut name = base.clone();
        let mut n = 1;
        while self.taken.contains(&name.to_lowercase()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(name.to_lowercase());
        self.by_field.insert(field.to_string(), self.cols.len());
        self.cols.push(Column {
            field: field.to_string(),
            name,
            kind,
        });
        self.cols.len() - 1
    }

    /// Adds the fields a declared JSON Schema types (`properties` with a
    /// recognisable type), in its order.
    pub fn declare(&mut self, schema: &Value) -> Changes {
        let mut changes = Changes::default();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (field, s) in props {
                if self.index(field).is_none()
                    && let Some(kind) = ColumnKind::from_json_schema(s)
                {
                    changes.added.push(self.add(field, kind));
                }
            }
        }
        changes
    }

    /// Widens and extends the columns to hold every top-level field of
    /// `records`. A field only ever `null` gets no column yet.
    pub fn fit(&mut self, records: &[Value]) -> Changes {
        let mut changes = Changes::default();
        let mut before: BTreeMap<usize, ColumnKind> = BTreeMap::new();
        for r in records {
            let Some(obj) = r.as_object() else { continue };
            for (field, v) in obj {
                let Some(kind) = ColumnKind::of(v) else {
                    continue;
                };
                match self.index(field) {
                    Some(i) => {
                        let old = self.cols[i].kind;
                        let new = old.widened_for(kind, v.as_str());
                        if new != old {
                            if !changes.added.contains(&i) {
                                before.entry(i).or_insert(old);
                            }
                            self.cols[i].kind = new;
                        }
                    }
                    None => changes.added.push(self.add(field, kind)),
                }
            }
        }
        changes.widened = before
            .into_iter()
            .filter(|(i, old)| self.cols[*i].kind != *old)
            .collect();
        changes
    }
}

/// Lower-case `[a-z0-9_]` table name for a stream name, at most `max_len`
/// bytes, not starting with a digit, and never one of the names this crate
/// keeps for itself (`_connector_*`, `_tmp_*`).
pub fn table_name(stream: &str, max_len: usize) -> String {
    let mut s: String = stream
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s = "stream".into();
    }
    if s.starts_with(|c: char| c.is_ascii_digit())
        || s.starts_with("_connector")
        || s.starts_with("_tmp_")
    {
        s = format!("s_{s}");
    }
    s.truncate(max_len);
    s
}

/// Flattens a record into dotted paths, like pandas' `json_normalize`:
/// nested objects become `parent.child` columns; arrays, scalars and empty
/// objects are leaves.
pub fn flatten<'a>(record: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    fn walk<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, child, out);
                }
            }
            other => out.push((prefix.to_string(), other)),
        }
    }
    match record {
        Value::Object(m) if !m.is_empty() => walk("", record, out),
        Value::Object(_) => {}
        other => out.push(("value".into(), other)),
    }
}

/// A record as an object: non-object records become `{"value": record}`.
pub fn as_object(record: &Value) -> std::borrow::Cow<'_, Map<String, Value>> {
    match record {
        Value::Object(m) => std::borrow::Cow::Borrowed(m),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            std::borrow::Cow::Owned(m)
        }
    }
}

/// Declared stream schemas: `<connectors_dir>/../schemas/<connector>/<stream>.json`
/// (what `discover --write` produces), by stream name. Missing folders give
/// none; an unreadable file is an error naming it.
pub fn load_declared_schemas(
    connectors_dir: &Path,
    connector: &str,
) -> crate::Result<BTreeMap<String, Value>> {
    let base = connectors_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let dir = base.join("schemas").join(connector);
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let Some(stream) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|err| {
            crate::EngineError::Destination(format!("cannot read {}: {err}", path.display()))
        })?;
        let schema: Value = serde_json::from_str(&text).map_err(|err| {
            crate::EngineError::Destination(format!(
                "{} is not a JSON schema: {err}",
                path.display()
            ))
        })?;
        out.insert(stream.to_string(), schema);
    }
    Ok(out)
}

/// The current time as RFC 3339 UTC, to the second (`2024-01-01T00:00:00Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A new run id: 16 random hex digits after the start time, sortable.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:011x}-{:08x}", now.as_millis(), rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_widen_and_never_narrow() {
        use ColumnKind::*;
        assert_eq!(Integer.join(Real), Real);
        assert_eq!(Real.join(Text), Text);
        assert_eq!(Integer.join(Json), Json);
        assert_eq!(Text.join(Json), Text);
        assert_eq!(Boolean.join(Integer), Text);
        assert_eq!(Timestamp.join(Text), Text);
        assert_eq!(Date.join(Timestamp), Text);
        assert_eq!(
            ColumnKind::from_json_schema(
                &json!({"type": ["string", "null"], "format": "date-time"})
            ),
            Some(Timestamp)
        );
        assert_eq!(
            ColumnKind::from_json_schema(&json!({"type": "string", "format": "date"})),
            Some(Date)
        );
        assert_eq!(ColumnKind::of(&json!(u64::MAX)), Some(Text));
        assert_eq!(
            ColumnKind::from_json_schema(&json!({"type": ["null", "integer"]})),
            Some(Integer)
        );
        assert_eq!(
            ColumnKind::from_json_schema(
                &json!({"anyOf": [{"type": "integer"}, {"type": "number"}]})
            ),
            Some(Real)
        );
    }

    #[test]
    fn columns_fit_records() {
        let mut c = Columns::new(&["_synced_at"], 63);
        let ch = c.fit(&[json!({"id": 1, "a": null, "_synced_at": "x"})]);
        assert_eq!(ch.added.len(), 2);
        assert_eq!(c.get("_synced_at").unwrap().name, "_synced_at_1");
        let ch = c.fit(&[json!({"id": 1.5, "a": {"b": 1}, "ID": 3})]);
        assert_eq!(ch.widened, vec![(0, ColumnKind::Integer)]);
        assert_eq!(c.get("ID").unwrap().name, "ID_1");
        assert_eq!(c.get("a").unwrap().kind, ColumnKind::Json);
    }

    #[test]
    fn declared_times_hold_while_values_parse() {
        let mut c = Columns::new(&[], 0);
        c.declare(&json!({"properties": {
            "at": {"type": "string", "format": "date-time"},
            "on": {"type": ["string", "null"], "format": "date"},
            "late": {"type": "string", "format": "date-time"},
        }}));
        let ch = c.fit(&[
            json!({"at": "2024-01-02T03:04:05+02:00", "on": "2024-01-02", "late": "2024-01-02"}),
            json!({"at": "2024-01-02 03:04:05.5", "on": null, "late": "soon"}),
        ]);
        assert_eq!(c.get("at").unwrap().kind, ColumnKind::Timestamp);
        assert_eq!(c.get("on").unwrap().kind, ColumnKind::Date);
        assert_eq!(c.get("late").unwrap().kind, ColumnKind::Text);
        assert_eq!(ch.widened, vec![(2, ColumnKind::Timestamp)]);
        c.fit(&[json!({"on": "2024-01-02T00:00:00Z"})]);
        assert_eq!(c.get("on").unwrap().kind, ColumnKind::Text);
        assert_eq!(
            timestamp_text("2024-01-02T03:04:05+02:00").as_deref(),
            Some("2024-01-02T01:04:05Z")
        );
        assert_eq!(
            timestamp_text("2024-01-02 03:04:05.250").as_deref(),
            Some("2024-01-02T03:04:05.250Z")
        );
        // Records alone never make one: a string is text.
        let mut c = Columns::new(&[], 0);
        c.fit(&[json!({"at": "2024-01-02T03:04:05Z"})]);
        assert_eq!(c.get("at").unwrap().kind, ColumnKind::Text);
    }

    #[test]
    fn table_names_are_sanitized() {
        assert_eq!(table_name("Post Comments", 48), "post_comments");
        assert_eq!(table_name("2024-data", 48), "s_2024_data");
        assert_eq!(table_name("_connector_state", 48), "s__connector_state");
    }

    #[test]
    fn flatten_like_json_normalize() {
        let r =
            json!({"a": 1, "company": {"name": "x", "geo": {"lat": "1"}}, "tags": [1], "e": {}});
        let mut out = Vec::new();
        flatten(&r, &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "company.name", "company.geo.lat", "tags", "e"]);
    }
}
