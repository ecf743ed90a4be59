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
    /// Once looked for ([`flag_keyless`](Self::flag_keyless)): the records
    /// that are not objects (`None`) or lack a value for a key field (the
    /// bits of those found), by index.
    keyless: Option<Vec<(usize, Option<u64>)>>,
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
        self.keyless = None;
    }

    /// Looks for the records that are not objects or lack a value for one
    /// of `fields` (top-level, at most 64; none: objects only), for
    /// [`keyless`](Self::keyless). Done where the body is decoded, on the
    /// request's own task.
    pub fn flag_keyless(&mut self, fields: &[String]) {
        let all = if fields.len() >= 64 {
            return;
        } else {
            (1u64 << fields.len()) - 1
        };
        let names: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
        let quoted: Vec<memchr::memmem::Finder> = names
            .iter()
            .map(|n| memchr::memmem::Finder::new(n.as_bytes()))
            .collect();
        let flagged = self
            .iter()
            .enumerate()
            .filter_map(
                |(i, text)| match walk_top_level(text, fields, Some(&quoted)) {
                    Some(found) if found == all => None,
                    found => Some((i, found)),
                },
            )
            .collect();
        self.keyless = Some(flagged);
    }

    /// The records [`flag_keyless`](Self::flag_keyless) found: not objects
    /// (`None`) or without a value for a key field (the bits of those
    /// present); `None` when it did not look.
    pub fn keyless(&self) -> Option<&[(usize, Option<u64>)]> {
        self.keyless.as_deref()
    }

    /// Record `i`'s JSON text.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges.get(i).map(|r| &self.body[r.clone()])
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
        self.keyless = None;
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

/// Which of `fields` (top-level names, at most 64) a record's text gives a
/// value other than `null`: bit `i` for `fields[i]`. `None` when the text is
/// not a JSON object. The text was checked as JSON when the page was cut
/// (`split`), so this only walks the top-level keys, skipping the values.
/// A field named twice counts with its last value, as in a parsed value:
/// the walk stops once every field has a value only where `quoted` (each
/// field's name in quotes) finds no name again further on.
fn walk_top_level(
    record: &[u8],
    fields: &[String],
    quoted: Option<&[memchr::memmem::Finder<'_>]>,
) -> Option<u64> {
    if fields.len() > 64 {
        return top_level_values_parsed(record, fields);
    }
    let mut found = 0u64;
    let b = record;
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    if fields.is_empty() {
        return Some(0);
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'"') => {}
            Some(b'}') => return Some(found),
            _ => return None,
        }
        let key_end = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        if key.contains(&b'\\') {
            // An escaped name: read the record properly.
            return top_level_values_parsed(record, fields);
        }
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if let Some(f) = fields.iter().position(|f| f.as_bytes() == key) {
            if b[i..].starts_with(b"null") {
                found &= !(1 << f);
            } else {
                found |= 1 << f;
                if found.count_ones() as usize == fields.len()
                    && quoted.is_some_and(|q| q.iter().all(|f| f.find(&b[i..]).is_none()))
                {
                    return Some(found);
                }
            }
        }
        i = skip_ws(b, value_end(b, i)?);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Some(found),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The position after the string that starts (with its quote) at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'\\' {
            j += 2;
        } else {
            return Some(j + 1);
        }
    }
}

/// The position after the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            Some(j)
        }
    }
}

/// [`walk_top_level`] by parsing the record (names with escapes).
fn top_level_values_parsed(record: &[u8], fields: &[String]) -> Option<u64> {
    let v: Value = serde_json::from_slice(record).ok()?;
    let obj = v.as_object()?;
    Some(
        fields
            .iter()
            .enumerate()
            .filter(|(_, f)| obj.get(*f).is_some_and(|v| !v.is_null()))
            .fold(0, |bits, (i, _)| bits | 1 << i.min(63)),
    )
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
            keyless: None,
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

    #[test]
    fn keyless_records_are_flagged_and_removed_by_index() {
        let body = Bytes::from(
            r#"[{"id":1},{"x":2},7,{"id":null},{"id":5},{"id":6,"s":"\"id\"","id":null}]"#,
        );
        let (_, raw) = split(&body, &[]).unwrap();
        let mut raw = raw.unwrap();
        assert_eq!(raw.keyless(), None, "not looked for yet");
        raw.flag_keyless(&["id".to_string()]);
        assert_eq!(
            raw.keyless(),
            Some(&[(1, Some(0)), (2, None), (3, Some(0)), (5, Some(0))][..]),
            "a key named again counts with its last value"
        );
        raw.remove(&[1, 2, 3, 5]);
        let left: Vec<&[u8]> = raw.iter().collect();
        assert_eq!(left, [&br#"{"id":1}"#[..], br#"{"id":5}"#]);
        assert_eq!(raw.keyless(), None, "indexes moved");
    }

    #[test]
    fn top_level_values_find_key_fields_as_a_parsed_value_would() {
        let f = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&str, &[&str])] = &[
            (r#"{"userId":1,"id":2,"title":"x"}"#, &["id"]),
            (
                r#"{ "a" : {"id": 1, "x": [1, {"id": null}]}, "id" : null }"#,
                &["id"],
            ),
            (r#"{"s":"say \"id\": 1","id":"k"}"#, &["id"]),
            (r#"{"id":1,"id":null}"#, &["id"]),
            (r#"{"id":null,"id":1}"#, &["id"]),
            (r#"{"a":1}"#, &["id", "a"]),
            (r#"{"i\u0064":3}"#, &["id"]),
            (r#"{}"#, &["id"]),
            ("{\n  \"org\": \"o\",\n  \"id\": 7\n}", &["org", "id"]),
            (r#"{"n":-1.5e3,"id":true}"#, &["id"]),
        ];
        for (text, names) in cases {
            let names = f(names);
            assert_eq!(
                walk_top_level(text.as_bytes(), &names, None),
                top_level_values_parsed(text.as_bytes(), &names),
                "{text}"
            );
        }
        for text in ["[1]", "7", "\"id\"", "  nul"] {
            assert_eq!(
                walk_top_level(text.as_bytes(), &f(&["id"]), None),
                None,
                "{text}"
            );
        }
    }
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
