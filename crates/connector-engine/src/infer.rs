//! JSON Schema inference from sample records, for `discover`.
//!
//! Every value seen at a position widens that position's shape: its types
//! (integer and number merge to number; `null` makes it nullable), the
//! string formats every sample satisfied, an object's properties with how
//! often each was present (`required` = present in every sampled object),
//! and an array's item shape. Property order is first-seen order, so the
//! schema reads like the records.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

/// The JSON Schema dialect of inferred schemas.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Whether a string has a format.
type FormatCheck = fn(&str) -> bool;

/// String formats, most specific first; a format is kept only while every
/// string sample at the position matches it.
const FORMATS: &[(&str, FormatCheck)] = &[
    ("date-time", is_date_time),
    ("date", is_date),
    ("email", is_email),
    ("uri", is_uri),
];

/// The shape of the values seen at one position.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    null: bool,
    boolean: bool,
    integer: bool,
    number: bool,
    /// Per entry of [`FORMATS`]: did every string so far match it?
    string: Option<Vec<bool>>,
    object: Option<Properties>,
    array: Option<Box<Shape>>,
}

/// An object position: objects seen, and each property's presence count.
#[derive(Debug, Clone, Default)]
struct Properties {
    objects: u64,
    fields: IndexMap<String, (u64, Shape)>,
}

impl Shape {
    /// Widens the shape by one value.
    pub fn add(&mut self, v: &Value) {
        match v {
            Value::Null => self.null = true,
            Value::Bool(_) => self.boolean = true,
            Value::Number(n) if n.is_i64() || n.is_u64() => self.integer = true,
            Value::Number(_) => self.number = true,
            Value::String(s) => {
                let formats = self.string.get_or_insert_with(|| vec![true; FORMATS.len()]);
                for (ok, (_, check)) in formats.iter_mut().zip(FORMATS) {
                    *ok = *ok && check(s);
                }
            }
            Value::Array(items) => {
                let shape = self.array.get_or_insert_with(Default::default);
                items.iter().for_each(|i| shape.add(i));
            }
            Value::Object(map) => {
                let props = self.object.get_or_insert_with(Default::default);
                props.objects += 1;
                for (k, v) in map {
                    let (seen, shape) = props.fields.entry(k.clone()).or_default();
                    *seen += 1;
                    shape.add(v);
                }
            }
        }
    }

    /// The JSON Schema of this position. `{}` when nothing was seen (the
    /// items of arrays that were always empty).
    pub fn schema(&self) -> Value {
        let mut types = Vec::new();
        let mut out = Map::new();
        if let Some(props) = &self.object {
            types.push("object");
            let properties: Map<String, Value> = props
                .fields
                .iter()
                .map(|(k, (_, s))| (k.clone(), s.schema()))
                .collect();
            out.insert("properties".into(), Value::Object(properties));
            let required: Vec<Value> = props
                .fields
                .iter()
                .filter(|(_, (seen, _))| *seen == props.objects)
                .map(|(k, _)| Value::String(k.clone()))
                .collect();
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            }
        }
        if let Some(items) = &self.array {
            types.push("array");
            out.insert("items".into(), items.schema());
        }
        if let Some(formats) = &self.string {
            types.push("string");
            if let Some((name, _)) = formats
                .iter()
                .zip(FORMATS)
                .find_map(|(ok, f)| ok.then_some(f))
            {
                out.insert("format".into(), json!(name));
            }
        }
        match (self.integer, self.number) {
            (true, false) => types.push("integer"),
            (_, true) => types.push("number"),
            _ => {}
        }
        if self.boolean {
            types.push("boolean");
        }
        if self.null {
            types.push("null");
        }
        let mut schema = Map::new();
        match types.as_slice() {
            [] => {}
            [one] => {
                schema.insert("type".into(), json!(one));
            }
            many => {
                schema.insert("type".into(), json!(many));
            }
        }
        schema.extend(out);
        Value::Object(schema)
    }
}

/// A complete schema document for the records of one stream.
pub fn infer(title: &str, records: &[Value]) -> Value {
    let mut shape = Shape::default();
    records.iter().for_each(|r| shape.add(r));
    let mut doc = Map::new();
    doc.insert("$schema".into(), json!(DIALECT));
    doc.insert("title".into(), json!(title));
    doc.insert(
        "description".into(),
        json!(format!(
            "Inferred by `connector-run discover` from {} sampled record{}.",
            records.len(),
            if records.len() == 1 { "" } else { "s" }
        )),
    );
    if let Value::Object(body) = shape.schema() {
        doc.extend(body);
    }
    Value::Object(doc)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DD` with a plausible month and day.
pub(crate) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (y, m, d) = (&s[0..4], &s[5..7], &s[8..10]);
    digits(y)
        && digits(m)
        && digits(d)
        && (1..=12).contains(&m.parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u8>().unwrap_or(0))
}

/// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub(crate) fn is_date_time(s: &str) -> bool {
    if s.len() < 20 || !is_date(&s[..10]) || !matches!(s.as_bytes()[10], b'T' | b't') {
        return false;
    }
    let rest = &s[11..];
    let Some(time) = rest.get(..8) else {
        return false;
    };
    let t = time.as_bytes();
    if t[2] != b':' || t[5] != b':' || !digits(&time[0..2]) || !digits(&time[3..5]) {
        return false;
    }
    if !digits(&time[6..8]) {
        return false;
    }
    let mut zone = &rest[8..];
    if let Some(frac) = zone.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        zone = &frac[n..];
    }
    match zone.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] if zone.len() == 6 => {
            zone.as_bytes()[3] == b':' && digits(&zone[1..3]) && digits(&zone[4..6])
        }
        _ => false,
    }
}

/// `local@domain.tld`, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// An absolute URL with a host, e.g. `https://example.com/x`.
fn is_uri(s: &str) -> bool {
    s.contains("://") && url::Url::parse(s).is_ok_and(|u| u.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_nullability_required_and_formats() {
        let records = vec![
            json!({"id": 1, "at": "2024-01-01T00:00:00Z", "mail": "a@b.io", "n": 1, "tags": ["x"], "o": {"k": null}}),
            json!({"id": 2, "at": "2024-01-02T10:00:00.5+02:00", "mail": "c@d.io", "n": 1.5, "tags": [], "o": {"k": "v"}, "extra": "2024-02-29"}),
        ];
        let s = infer("t", &records);
        let p = &s["properties"];
        assert_eq!(p["id"]["type"], "integer");
        assert_eq!(p["at"]["format"], "date-time");
        assert_eq!(p["mail"]["format"], "email");
        assert_eq!(p["n"]["type"], "number");
        assert_eq!(p["tags"]["items"]["type"], "string");
        assert_eq!(p["o"]["properties"]["k"]["type"], json!(["string", "null"]));
        assert_eq!(p["extra"]["format"], "date");
        assert_eq!(s["required"], json!(["id", "at", "mail", "n", "tags", "o"]));
    }

    #[test]
    fn formats_must_hold_for_every_sample() {
        assert!(is_date_time("2024-01-01T00:00:00Z"));
        assert!(!is_date_time("2024-01-01 00:00:00"));
        assert!(!is_date("2024-13-01"));
        assert!(is_uri("https://example.com/a"));
        assert!(!is_uri("hildegard.org"));
        let s = infer("t", &[json!({"u": "https://x.io"}), json!({"u": "x"})]);
        assert!(s["properties"]["u"].get("format").is_none());
    }
}
