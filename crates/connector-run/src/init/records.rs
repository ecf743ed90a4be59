//! Where the records are in a response body, and which field identifies
//! them. Each finding carries its evidence and the alternatives it passed
//! over, so the written spec can say why.

use super::Choice;
use serde_json::Value;

/// Names under which APIs put their record arrays, most common first.
const RECORD_KEYS: &[&str] = &[
    "data",
    "results",
    "items",
    "records",
    "value",
    "entries",
    "rows",
    "objects",
    "elements",
    "hits",
    "list",
    "content",
    "collection",
    "resources",
];

/// Fields that usually identify a record, in order of preference.
const KEY_FIELDS: &[&str] = &["id", "_id", "uuid", "key", "ID", "Id"];

/// A path of member names from the body to the records; empty is `$`.
pub type Keys = Vec<String>;

/// The JSONPath of member names: `$`, `$.data`, `$['@odata.nextLink']`.
pub fn json_path(keys: &[String]) -> String {
    let mut p = String::from("$");
    for k in keys {
        let plain = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            p.push('.');
            p.push_str(k);
        } else {
            p.push_str(&format!("['{}']", k.replace('\'', "\\'")));
        }
    }
    p
}

/// The value at a member path.
pub fn at<'a>(v: &'a Value, keys: &[String]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(k.as_str()))
}

/// The records of a body at `keys`, as a sync would select them: an array's
/// items, or a single object as one record.
pub fn records_at(body: &Value, keys: &[String]) -> Vec<Value> {
    match at(body, keys) {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    }
}

/// An array that could hold the records: of objects, or empty.
fn is_record_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.iter().all(Value::is_object))
}

fn describe_array(keys: &[String], body: &Value) -> String {
    let n = at(body, keys).and_then(Value::as_array).map_or(0, Vec::len);
    format!(
        "`{}` ({n} object{})",
        json_path(keys),
        if n == 1 { "" } else { "s" }
    )
}

/// Finds the record array of a body.
pub fn find(body: &Value) -> Choice<Keys> {
    if let Value::Array(items) = body {
        let objects = items.iter().filter(|i| i.is_object()).count();
        return Choice::new(
            Vec::new(),
            format!(
                "`$` — the body is an array of {} item{} ({objects} object{})",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                if objects == 1 { "" } else { "s" }
            ),
        );
    }
    let Value::Object(map) = body else {
        return Choice::new(Vec::new(), "`$` — the body is a bare value".into());
    };
    // Record arrays at the top level and one level down (`data.items`).
    let mut found: Vec<Keys> = Vec::new();
    for (k, v) in map {
        if is_record_array(v) {
            found.push(vec![k.clone()]);
        } else if let Value::Object(inner) = v {
            for (k2, v2) in inner {
                if is_record_array(v2) {
                    found.push(vec![k.clone(), k2.clone()]);
                }
            }
        }
    }
    if found.is_empty() {
        return Choice::new(
            Vec::new(),
            "`$` — the body is one object with no array of objects in it, so each response is one record".into(),
        );
    }
    let rank = |keys: &Keys| {
        let last = keys.last().map(String::as_str).unwrap_or("");
        let known = RECORD_KEYS
            .iter()
            .position(|k| k.eq_ignore_ascii_case(last))
            .unwrap_or(RECORD_KEYS.len());
        let empty = at(body, keys)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        (known, empty, keys.len())
    };
    found.sort_by_key(rank);
    let best = found.remove(0);
    let known = rank(&best).0 < RECORD_KEYS.len();
    let why = if known {
        format!(
            "{} — the array of records under a usual name",
            describe_array(&best, body)
        )
    } else {
        format!(
            "{} — an array of objects, though not under a usual name ({})",
            describe_array(&best, body),
            RECORD_KEYS[..4].join(", ")
        )
    };
    let mut choice = Choice::new(best, why);
    // Unsure when the pick has no usual name, or another array has one.
    choice.ambiguous = !known || found.iter().any(|k| rank(k).0 < RECORD_KEYS.len());
    choice.alternatives = found.iter().map(|k| describe_array(k, body)).collect();
    choice
}

/// The name of what the records are, when the body says it: a top-level
/// array under a name that is not one of the usual generic ones
/// (`{"tickets": […]}`, `{"channels": […]}`), in snake_case.
pub fn entity_name(keys: &[String]) -> Option<String> {
    let [name] = keys else { return None };
    let generic = RECORD_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name));
    let snake = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    (!generic && snake).then(|| name.clone())
}

/// A record's identity on a page: its key value, or the whole record.
pub fn identity(record: &Value, key: Option<&str>) -> String {
    match key.and_then(|k| record.get(k)) {
        Some(v) => v.to_string(),
        None => record.to_string(),
    }
}

/// True when every record has a non-null `field` and no two share it.
fn identifies(records: &[Value], field: &str) -> bool {
    let mut seen = std::collections::HashSet::new();
    records.iter().all(|r| match r.get(field) {
        None | Some(Value::Null) | Some(Value::Object(_)) | Some(Value::Array(_)) => false,
        Some(v) => seen.insert(v.to_string()),
    })
}

/// Picks the primary key from the first page's records.
pub fn primary_key(records: &[Value]) -> Choice<Option<String>> {
    if records.is_empty() {
        return Choice::new(
            None,
            "none — the first page had no records to look at; set `primary_key` by hand".into(),
        );
    }
    let n = records.len();
    let all = if n == 1 {
        "the one record of the first page".to_string()
    } else {
        format!("all {n} records of the first page")
    };
    for k in KEY_FIELDS {
        if identifies(records, k) {
            return Choice::new(
                Some(k.to_string()),
                format!("`{k}` — present and unique in {all}"),
            );
        }
    }
    // Another field named like an identifier, e.g. `user_id` or `sku`.
    let fields: Vec<String> = records[0]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut others = fields.iter().filter(|f| {
        let l = f.to_ascii_lowercase();
        (l.ends_with("_id") || l.ends_with("id") || l == "sku" || l == "slug")
            && identifies(records, f)
    });
    if let Some(f) = others.next() {
        let mut c = Choice::new(
            Some(f.clone()),
            format!(
                "`{f}` — no `id` field, but `{f}` is present and unique in {all}; check that it identifies a record"
            ),
        );
        c.alternatives = others.map(|o| format!("`{o}`")).collect();
        c.ambiguous = true;
        return c;
    }
    let mut c = Choice::new(
        None,
        format!(
            "none — no `id`, `_id`, `uuid` or `key` field is present and unique in {all}; set `primary_key` by hand"
        ),
    );
    c.ambiguous = true;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_known_arrays_before_others() {
        let body = json!({"included": [{"a": 1}], "data": [{"id": 1}], "tags": ["x"]});
        let c = find(&body);
        assert_eq!(json_path(&c.value), "$.data");
        assert_eq!(c.alternatives, vec!["`$.included` (1 object)"]);
        let single = find(&json!({"id": 1, "tags": ["a", "b"]}));
        assert_eq!(json_path(&single.value), "$");
        assert_eq!(
            json_path(&["@odata.nextLink".into()]),
            "$['@odata.nextLink']"
        );
        assert_eq!(entity_name(&["tickets".into()]).as_deref(), Some("tickets"));
        assert_eq!(entity_name(&["data".into()]), None);
        assert_eq!(entity_name(&["data".into(), "users".into()]), None);
        assert_eq!(entity_name(&["@odata.x".into()]), None);
    }

    #[test]
    fn primary_key_needs_presence_and_uniqueness() {
        let recs = vec![json!({"id": 1}), json!({"id": 2})];
        assert_eq!(primary_key(&recs).value.as_deref(), Some("id"));
        let dup = vec![json!({"id": 1, "sku": "a"}), json!({"id": 1, "sku": "b"})];
        assert_eq!(primary_key(&dup).value.as_deref(), Some("sku"));
    }
}
