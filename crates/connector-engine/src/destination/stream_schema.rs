//! The JSON Schema the protocols announce for a stream (the Singer
//! `SCHEMA` message, the Airbyte catalog's `json_schema`), built so that the
//! records that follow cannot break a target that creates its columns once:
//!
//! - A **declared** schema (`schemas/<connector>/<stream>.json`) is used as
//!   it is, property by property, while the records fit it.
//! - Otherwise every top-level field gets the **union of the JSON types seen**
//!   in the sample (several pages: [`DEFAULT_SAMPLE_PAGES`]), always with
//!   `null`: a field seen as an integer and as a string is
//!   `["integer", "null", "string"]`, integers and numbers together are
//!   `number`, objects and arrays are `object`/`array` of any shape.
//! - A field whose values were only strings (and `null`), every one an RFC
//!   3339 timestamp, gets `format: date-time`; every one a `YYYY-MM-DD` date,
//!   `format: date`. A later string that is neither drops the format.
//! - A record that brings a new field, a new type or a string out of format
//!   changes the schema ([`SeenTypes::observe`] says so), and a Singer tap
//!   sends `SCHEMA` again.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Pages sampled per stream before a schema is announced, where none is
/// declared: `airbyte discover`, `singer --discover` and the first Singer
/// `SCHEMA` (`--sample-pages N` changes it).
pub const DEFAULT_SAMPLE_PAGES: u64 = 5;

/// What was seen in one top-level field.
#[derive(Debug, Clone, Default)]
struct Field {
    types: BTreeSet<&'static str>,
    /// Every string so far was a date-time / a date (`None`: no string yet).
    date_time: Option<bool>,
    date: Option<bool>,
}

/// The JSON types (and string formats) seen in each top-level field of a
/// stream's records, in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct SeenTypes {
    fields: indexmap::IndexMap<String, Field>,
}

fn json_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    })
}

fn declared_types(d: &Value) -> Vec<String> {
    match d.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

impl Field {
    fn format(&self) -> Option<&'static str> {
        if self.types.iter().any(|t| *t != "string") {
            return None;
        }
        match (self.date_time, self.date) {
            (Some(true), _) => Some("date-time"),
            (_, Some(true)) => Some("date"),
            _ => None,
        }
    }

    fn schema(&self, declared: &[String]) -> Value {
        let mut types: BTreeSet<String> = self.types.iter().map(|t| t.to_string()).collect();
        types.extend(declared.iter().cloned());
        if types.contains("number") {
            types.remove("integer");
        }
        types.insert("null".into());
        let mut s = json!({ "type": types });
        if let Some(f) = self.format().filter(|_| types.len() == 2) {
            s["format"] = json!(f);
        }
        s
    }
}

impl SeenTypes {
    /// Adds the records' fields, types and formats; true when the schema
    /// [`SeenTypes::json_schema`] gives changed.
    pub fn observe(&mut self, records: &[Value]) -> bool {
        let mut changed = false;
        for r in records {
            let Some(obj) = r.as_object() else { continue };
            for (k, v) in obj {
                let f = match self.fields.get_mut(k) {
                    Some(f) => f,
                    None => {
                        changed = true;
                        self.fields.entry(k.clone()).or_default()
                    }
                };
                let Some(t) = json_type(v) else { continue };
                let before = f.format();
                changed |= f.types.insert(t);
                if let Value::String(s) = v {
                    let dt = crate::infer::is_date_time(s);
                    let d = crate::infer::is_date(s);
                    f.date_time = Some(f.date_time.unwrap_or(true) && dt);
                    f.date = Some(f.date.unwrap_or(true) && d);
                }
                changed |= before != f.format();
            }
        }
        changed
    }

    /// True when nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The stream's schema: the declared properties while the records fit
    /// them, else (and for fields not declared) the union of the declared
    /// and the seen types, nullable, with a format where every string had
    /// one. The record itself is `{"type": "object"}` with the properties.
    pub fn json_schema(&self, declared: Option<&Value>) -> Value {
        let declared_props = declared
            .and_then(|d| d.get("properties"))
            .and_then(Value::as_object);
        let mut props = Map::new();
        if let Some(dp) = declared_props {
            for (k, d) in dp {
                props.insert(k.clone(), d.clone());
            }
        }
        for (name, seen) in &self.fields {
            let d = declared_props.and_then(|p| p.get(name));
            let allowed = d.map(declared_types).unwrap_or_default();
            let fits = d.is_some()
                && (allowed.is_empty()
                    || seen.types.iter().all(|t| {
                        allowed
                            .iter()
                            .any(|a| a == t || (a == "number" && *t == "integer"))
                    }));
            if fits {
                continue;
            }
            props.insert(name.clone(), seen.schema(&allowed));
        }
        json!({ "type": "object", "properties": props })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_types_get_both_and_formats_hold_for_every_string() {
        let mut s = SeenTypes::default();
        assert!(s.observe(&[
            json!({"id": 1, "v": 1, "at": "2024-01-01T00:00:00Z", "d": "2024-01-01", "n": 1}),
            json!({"id": 2, "v": "x", "at": null, "d": "2024-02-01", "n": 1.5, "o": {"a": 1}}),
        ]));
        let p = &s.json_schema(None)["properties"];
        assert_eq!(p["id"], json!({"type": ["integer", "null"]}));
        assert_eq!(p["v"], json!({"type": ["integer", "null", "string"]}));
        assert_eq!(
            p["at"],
            json!({"type": ["null", "string"], "format": "date-time"})
        );
        assert_eq!(
            p["d"],
            json!({"type": ["null", "string"], "format": "date"})
        );
        assert_eq!(p["n"], json!({"type": ["null", "number"]}));
        assert_eq!(p["o"], json!({"type": ["null", "object"]}));
        // Same types again: no change; a string out of format: a change.
        assert!(!s.observe(&[json!({"id": 3, "at": "2024-01-02T00:00:00Z"})]));
        assert!(s.observe(&[json!({"at": "yesterday"})]));
        assert!(
            s.json_schema(None)["properties"]["at"]
                .get("format")
                .is_none()
        );
    }

    #[test]
    fn declared_properties_stay_while_the_records_fit() {
        let declared = json!({"properties": {
            "id": {"type": "integer"},
            "price": {"type": "number"},
            "name": {"type": "string", "description": "kept"},
            "later": {"type": "string"}
        }});
        let mut s = SeenTypes::default();
        s.observe(&[json!({"id": 1, "price": 2, "name": 7, "extra": true})]);
        let p = &s.json_schema(Some(&declared))["properties"];
        assert_eq!(p["id"], json!({"type": "integer"}));
        assert_eq!(p["price"], json!({"type": "number"}));
        assert_eq!(p["name"], json!({"type": ["integer", "null", "string"]}));
        assert_eq!(p["later"], json!({"type": "string"}));
        assert_eq!(p["extra"], json!({"type": ["boolean", "null"]}));
    }
}
