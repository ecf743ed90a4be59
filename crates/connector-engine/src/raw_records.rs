//! The fast path: when a stream only moves records from the API to a file
//! (a plain member path such as `$` or `$.data`, no filter, no reshaping, no
//! incremental cursor, no child streams), records stay raw JSON text. The
//! page is scanned once for the record boundaries instead of building a
//! `serde_json::Value` tree per record, which profiles showed to be half of
//! a sync's time. The rest of the body (cursors, totals, links) is still
//! parsed into a `Value` for the paginator.

use crate::extract::RecordSelector;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::ops::Range;

/// Where a stream's records may stay raw, decided once when the plan is
/// compiled: a plain member path with no reshaping, no incremental cursor,
/// no path that reads inside the records (Stripe's `$.data[-1].id` cursor, a
/// kept value of the last record), and no `stop.when` expression (it may
/// read anything in the response).
pub fn eligible(
    selector: &RecordSelector,
    incremental: bool,
    body_paths: &[&str],
    reads_whole_response: bool,
) -> Option<std::sync::Arc<Vec<String>>> {
    if incremental || reads_whole_response {
        return None;
    }
    let members = selector.raw_path()?;
    let reads_records = body_paths
        .iter()
        .any(|p| connector_spec::jsonpath_text::reads_into(members, p));
    (!reads_records).then(|| std::sync::Arc::new(members.to_vec()))
}

/// Whether one partition's records stay raw, decided when it starts: the
/// stream is eligible, the destination writes JSON text as it came, and no
/// child stream needs the records parsed.
pub fn applies(eligible: bool, destination_keeps_raw_json: bool, has_children: bool) -> bool {
    eligible && destination_keeps_raw_json && !has_children
}

/// A page's records as byte ranges of its body.
#[derive(Debug, Clone)]
pub struct RawRecords {
    body: Bytes,
    ranges: Vec<Range<usize>>,
}

impl RawRecords {
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Keeps the first `n` records.
    pub fn truncate(&mut self, n: usize) {
        self.ranges.truncate(n);
    }

    /// Drops the records at `indexes` (ascending).
    pub fn remove(&mut self, indexes: &[usize]) {
        let mut i = 0;
        let mut drop = indexes.iter().peekable();
        self.ranges.retain(|_| {
            let gone = drop.next_if(|&&d| d == i).is_some();
            i += 1;
            !gone
        });
    }

    /// Each record's JSON text, as the API sent it.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges.iter().map(|r| &self.body[r.clone()])
    }

    /// Each record parsed, for destinations that need values.
    pub fn to_values(&self) -> Result<Vec<Value>, serde_json::Error> {
        self.iter().map(serde_json::from_slice).collect()
    }
}

/// For each of `fields` (top-level names), whether a record's text gives it
/// a value other than `null`, reading the other values only to skip them.
/// `None` when the text is not one JSON object.
pub fn top_level_values(record: &[u8], fields: &[String]) -> Option<Vec<bool>> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Probe<'f>(&'f [String]);
    impl<'de> Visitor<'de> for Probe<'_> {
        type Value = Vec<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Vec<bool>, M::Error> {
            let mut found = vec![false; self.0.len()];
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match self.0.iter().position(|f| *f == key) {
                    Some(i) => found[i] = !map.next_value::<Value>()?.is_null(),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(record);
    let found = (&mut de).deserialize_map(Probe(fields)).ok()?;
    de.end().ok().map(|_| found)
}

/// Parses `body`, cutting out the records at the member path `keys`.
/// Returns the rest of the body (the records' array left empty) and the
/// records, or None for the records when the path is not in the body.
pub fn split(
    body: &Bytes,
    keys: &[String],
) -> Result<(Value, Option<RawRecords>), serde_json::Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| serde_json::from_slice::<Value>(body).unwrap_err())?;
    let base = text.as_ptr() as usize;
    let (rest, ranges) = split_at(text, keys, base)?;
    Ok((
        rest,
        ranges.map(|ranges| RawRecords {
            body: body.clone(),
            ranges,
        }),
    ))
}

fn range_of(raw: &str, base: usize) -> Range<usize> {
    let start = raw.as_ptr() as usize - base;
    start..start + raw.len()
}

fn split_at(
    text: &str,
    keys: &[String],
    base: usize,
) -> Result<(Value, Option<Vec<Range<usize>>>), serde_json::Error> {
    let trimmed = text.trim_start();
    let Some((key, deeper)) = keys.split_first() else {
        return match trimmed.as_bytes().first() {
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text)?;
                Ok((
                    Value::Array(Vec::new()),
                    Some(items.iter().map(|r| range_of(r.get(), base)).collect()),
                ))
            }
            Some(b'n') => Ok((serde_json::from_str(text)?, Some(Vec::new()))),
            // A single object is one record; it stays in the rest too, where
            // a paginator may read it.
            _ => {
                let value: Value = serde_json::from_str(text)?;
                Ok((value, Some(vec![range_of(trimmed.trim_end(), base)])))
            }
        };
    };
    if !trimmed.starts_with('{') {
        return Ok((serde_json::from_str(text)?, None));
    }
    let entries: indexmap::IndexMap<String, &RawValue> = serde_json::from_str(text)?;
    let mut rest = Map::with_capacity(entries.len());
    let mut found = None;
    for (k, raw) in entries {
        let value = if &k == key {
            let (v, r) = split_at(raw.get(), deeper, base)?;
            found = r;
            v
        } else {
            serde_json::from_str(raw.get())?
        };
        rest.insert(k, value);
    }
    Ok((Value::Object(rest), found))
}

/// Appends `json` (valid JSON text) without the whitespace between tokens:
/// one record, one line; tokens stay as the API wrote them (`1E2`, `\u00e9`). Copies whole runs at a time: tokens up to the next
/// whitespace or quote, and strings up to their closing quote (found with
/// `memchr`), since a per-byte loop was a third of a sync's CPU.
pub fn minify_into(json: &[u8], out: &mut Vec<u8>) {
    let is_space = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    let n = json.len();
    let mut i = 0;
    while i < n {
        let start = i;
        while i < n && !is_space(json[i]) && json[i] != b'"' {
            i += 1;
        }
        out.extend_from_slice(&json[start..i]);
        if i == n {
            break;
        }
        if json[i] == b'"' {
            let open = i;
            i += 1;
            while let Some(k) = memchr::memchr2(b'"', b'\\', &json[i..]) {
                i += k;
                if json[i] == b'\\' {
                    // The escaped byte is never the closing quote.
                    i = (i + 2).min(n);
                } else {
                    i += 1;
                    break;
                }
            }
            let close = i.min(n);
            out.extend_from_slice(&json[open..close]);
            i = close;
        } else {
            while i < n && is_space(json[i]) {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cuts_records_out_and_keeps_the_rest() {
        let body = Bytes::from(
            r#"{ "meta": {"next": "abc"}, "data": [ {"id": 1, "s": "a b"}, {"id": 2} ], "total": 2 }"#,
        );
        let (rest, raw) = split(&body, &keys(&["data"])).unwrap();
        let raw = raw.unwrap();
        assert_eq!(
            rest,
            json!({"meta": {"next": "abc"}, "data": [], "total": 2})
        );
        assert_eq!(
            raw.to_values().unwrap(),
            vec![json!({"id": 1, "s": "a b"}), json!({"id": 2})]
        );
        let mut line = Vec::new();
        minify_into(raw.iter().next().unwrap(), &mut line);
        assert_eq!(line, br#"{"id":1,"s":"a b"}"#);
    }

    #[test]
    fn top_level_arrays_objects_and_missing_paths() {
        let pretty = Bytes::from("[\n  {\n    \"id\": 1,\n    \"q\": \"say \\\"hi\\\"\"\n  }\n]");
        let (_, raw) = split(&pretty, &[]).unwrap();
        let raw = raw.unwrap();
        let mut line = Vec::new();
        minify_into(raw.iter().next().unwrap(), &mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"id":1,"q":"say \"hi\""}"#
        );

        let single = Bytes::from(r#"{"id": 7}"#);
        let (rest, raw) = split(&single, &[]).unwrap();
        assert_eq!(rest, json!({"id": 7}));
        assert_eq!(raw.unwrap().len(), 1);

        let (_, raw) = split(&Bytes::from(r#"{"other": []}"#), &keys(&["data"])).unwrap();
        assert!(raw.is_none());
        assert!(
            split(&Bytes::from(r#"{"data": [1, "#), &keys(&["data"]))
                .unwrap_err()
                .is_eof()
        );
    }

    #[test]
    fn minified_records_equal_serde_json_compact_output() {
        let tricky = [
            "",
            "a b",
            "\\",
            "\"",
            "\\\"",
            "ends with backslash \\",
            "tab\there",
            "line\nbreak",
            "ünïcödé ✓ \u{1F600}",
            "{\"not\": [json]}",
        ];
        let mut samples = Vec::new();
        for (i, t) in tricky.iter().enumerate() {
            samples.push(
                json!({"id": i, "s": t, "nested": {"a": [t, 1.5, null, true], "e": {}}, "l": []}),
            );
            samples.push(json!([t, {"k": t}, -0.25, "x"]));
            samples.push(json!(t));
        }
        for v in samples {
            let compact = serde_json::to_vec(&v).unwrap();
            for text in [serde_json::to_vec_pretty(&v).unwrap(), compact.clone()] {
                let mut line = Vec::new();
                minify_into(&text, &mut line);
                assert_eq!(
                    String::from_utf8(line).unwrap(),
                    String::from_utf8(compact.clone()).unwrap()
                );
            }
        }
    }

    #[test]
    fn minify_survives_truncated_text() {
        for text in [&b"\"\\"[..], b"\"abc", b"{\"a\": \"x\\", b"\\"] {
            let mut out = Vec::new();
            minify_into(text, &mut out);
            assert!(out.len() <= text.len());
        }
    }
}
