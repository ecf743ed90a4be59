//! A YAML document as a tree of nodes that remember where they were written.
//!
//! serde-saphyr parses (with its budgets against alias bombs and huge input,
//! and its duplicate-key check); `Spanned` records each node's position. The
//! structural and semantic checks then walk this tree, so every diagnostic
//! can point at a line and column.

use crate::{Diagnostic, Pos};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A map key and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key entry `key` of this map, with its position.
    pub fn key(&self, key: &str) -> Option<&Key> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(k, _)| k),
            _ => None,
        }
    }

    /// Follows `path` as far as it exists and returns the position of the deepest
    /// node reached, so a diagnostic about an inherited default still points
    /// somewhere sensible.
    pub fn locate(&self, path: &[&str]) -> Pos {
        let mut node = self;
        for seg in path {
            let next = match &node.value {
                Value::Map(_) => node.get(seg),
                Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    /// The position of the key `path.last()` inside the map at `path[..len-1]`.
    pub fn locate_key(&self, path: &[&str]) -> Pos {
        let Some((last, parent)) = path.split_last() else {
            return self.pos;
        };
        let mut node = self;
        for seg in parent {
            match node.get(seg) {
                Some(n) => node = n,
                None => return node.pos,
            }
        }
        node.key(last).map(|k| k.pos).unwrap_or(node.pos)
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn pos_of(loc: &serde_saphyr::Location) -> Pos {
    Pos {
        line: loc.line() as u32,
        col: loc.column() as u32,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            pos: pos_of(&spanned.referenced),
            value: spanned.value,
        })
    }
}

struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element::<Node>()? {
                    items.push(n);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
                    let v = map.next_value::<Node>()?;
                    entries.push((
                        Key {
                            name: k.value.0,
                            pos: pos_of(&k.referenced),
                        },
                        v,
                    ));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// Largest spec file accepted, in bytes.
const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;

/// Parses YAML text into a spanned tree, or one diagnostic saying why not.
pub(crate) fn parse_yaml(source: &str, file: &str) -> Result<Node, Diagnostic> {
    if source.len() > MAX_SPEC_BYTES {
        return Err(Diagnostic::error(
            file,
            Pos { line: 1, col: 1 },
            format!(
                "file is {} bytes; spec files may be at most {MAX_SPEC_BYTES} bytes",
                source.len()
            ),
        ));
    }
    if source.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    }) {
        return Err(
            Diagnostic::error(file, Pos { line: 1, col: 1 }, "the file is empty").with_hint(
                "a connector needs at least `version: 1`, `name`, `base_url` and `streams`",
            ),
        );
    }
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_nodes = 100_000;
    budget.max_depth = 32;
    budget.max_total_scalar_bytes = MAX_SPEC_BYTES;
    // strict_booleans: only `true`/`false` are booleans, so keys such as `y`
    // or `on` stay strings (YAML 1.1 would silently turn them into `true`).
    let options = serde_saphyr::options! { budget: Some(budget), strict_booleans: true };
    match serde_saphyr::from_str_with_options::<Node>(source, options) {
        Ok(node) => Ok(node),
        Err(e) => Err(yaml_error(&e, source, file)),
    }
}

fn yaml_error(e: &serde_saphyr::Error, source: &str, file: &str) -> Diagnostic {
    let pos = e
        .location()
        .map(|l| pos_of(&l))
        .filter(|p| p.line > 0)
        .unwrap_or(Pos { line: 1, col: 1 });
    let text = e.without_snippet().to_string();
    // serde-saphyr appends " at line X column Y" and advice about its own
    // options; we print the position up front and give our own hint.
    let message = text.split(" at line ").next().unwrap_or(&text).trim();
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message)
        .to_string();
    let lower = message.to_lowercase();
    let line = source
        .lines()
        .nth(pos.line.saturating_sub(1) as usize)
        .unwrap_or("");
    let (message, hint) = if lower.contains("budget breached") {
        let what = if lower.contains("depth") {
            "the document is nested more than 32 levels deep".to_string()
        } else if lower.contains("nodes") {
            "the document expands to more than 100000 nodes".to_string()
        } else if lower.contains("alias") {
            "the document uses more than 1000 aliases".to_string()
        } else {
            format!(
                "the document is too large ({})",
                message.trim_start_matches("budget breached: ")
            )
        };
        (
            what,
            Some(
                "anchors, aliases and nesting are limited to keep parsing fast and memory bounded",
            ),
        )
    } else if lower.contains("multiple yaml documents") {
        (
            "a connector file holds one YAML document, but this one has several".to_string(),
            Some("remove the second `---` and what follows, or split it into its own file"),
        )
    } else if lower.contains("tabs") || line.trim_start_matches(' ').starts_with('\t') {
        (message, Some("YAML indentation must use spaces, not tabs"))
    } else if lower.contains("duplicate") {
        (
            message,
            Some("each key may appear once in a mapping; remove or rename the repeated one"),
        )
    } else {
        (message, None)
    };
    let mut d = Diagnostic::error(file, pos, format!("invalid YAML: {message}"));
    if let Some(h) = hint {
        d = d.with_hint(h);
    }
    d
}
