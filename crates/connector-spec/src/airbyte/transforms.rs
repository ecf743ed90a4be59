//! `RecordSelector` and a stream's `transformations` → our `records`.
//!
//! A `DpathExtractor`'s `field_path` is the JSONPath of the records
//! (`["data", "*"]` → `$.data[*]`, `[]` → `$`); a `RecordFilter`'s
//! condition is `filter`. `AddFields` → `add_fields` (a nested path is a
//! dotted name; `value_type` casts the value), `RemoveFields` →
//! `remove_fields`, `DpathFlattenFields` → `flatten`. When they come in our
//! order (remove, flatten, add) they are the block's own fields; otherwise,
//! or under a `condition`, each is one entry of `transforms`, in the
//! manifest's order. Key rewrites (`KeysToLower`, `KeysToSnakeCase`,
//! `KeysReplace`, `FlattenFields`) are blocked: we have no such transform.

use super::Cx;
use super::interpolation::Vars;
use super::notes::{Block, Res};
use super::paginator::json_path;
use super::refs::{NodeExt, parameters_of};
use crate::node::Node;
use serde_json::{Value as J, json};

/// The record selection of a stream, and the literal keys of its path
/// (for `last_record`; `None` with a wildcard).
pub(crate) struct Selected {
    pub records: serde_json::Map<String, J>,
    pub keys: Option<Vec<String>>,
}

pub(crate) fn selector(cx: &mut Cx, node: &Node, vars: &Vars) -> Res<Selected> {
    let extractor = node.get("extractor").ok_or_else(|| {
        Block::new(
            node.pos,
            "record selector without an extractor",
            "no `extractor`",
        )
    })?;
    match extractor.type_name().unwrap_or("") {
        "DpathExtractor" => {}
        t => {
            return Err(Block::unsupported(
                extractor,
                t,
                "record extractor",
                "the extractor",
            ));
        }
    }
    if extractor.get("record_expander").is_some() {
        return Err(Block::new(
            extractor.pos,
            "RecordExpander (records expanded from a nested array)",
            "record_expander",
        ));
    }
    let mut keys = Vec::new();
    let fp = extractor.get("field_path");
    let items: Vec<&Node> = match fp {
        Some(n) if n.as_str().is_some() => vec![n],
        Some(n) => n.items().iter().collect(),
        None => Vec::new(),
    };
    let evars = Vars {
        params: parameters_of(extractor),
        ..vars.clone()
    };
    for n in items {
        let t = n.scalar_text().unwrap_or_default();
        let t = cx.tpl(
            &t,
            &Vars {
                pos: n.pos,
                scope: super::interpolation::Scope::Connection,
                ..evars.clone()
            },
        )?;
        if t.contains("{{") || t.contains("{%") {
            return Err(Block::new(
                n.pos,
                "records path from config",
                format!("the records path `{t}` is a template"),
            ));
        }
        keys.push(t);
    }
    let mut records = serde_json::Map::new();
    records.insert("path".into(), json!(json_path(&keys)));
    if let Some(f) = node.get("record_filter") {
        match f.type_name().unwrap_or("RecordFilter") {
            "RecordFilter" => {
                if let Some(c) = f.str_at("condition").filter(|c| !c.trim().is_empty()) {
                    let fv = Vars {
                        pos: f.pos,
                        params: parameters_of(f),
                        ..vars.clone()
                    };
                    let e = cx.cond(c, &fv)?;
                    records.insert("filter".into(), json!(e));
                }
            }
            t => {
                return Err(Block::unsupported(
                    f,
                    t,
                    "record filter",
                    "the record filter",
                ));
            }
        }
    }
    if let Some(n) = node.get("schema_normalization") {
        match n.as_str().or_else(|| n.type_name()) {
            Some("None") | None => {}
            Some(t) if t.starts_with("Custom") => return Err(Block::custom_of(n, t)),
            Some(_) => cx.approx(
                n.pos,
                "schema normalization: values are not cast to the types of the stream's schema",
            ),
        }
    }
    let keys = if keys.iter().any(|k| k == "*") {
        None
    } else {
        Some(keys)
    };
    Ok(Selected { records, keys })
}

/// One transformation.
enum Step {
    Remove(Vec<String>),
    Flatten(Vec<String>),
    Add(Vec<(String, String)>, Option<String>),
}

impl Step {
    fn rank(&self) -> u8 {
        match self {
            Step::Remove(_) => 1,
            Step::Flatten(_) => 2,
            Step::Add(..) => 3,
        }
    }
}

fn path_of(n: &Node) -> Res<Vec<String>> {
    let items: Vec<String> = match n.as_str() {
        Some(s) => vec![s.to_string()],
        None => n.items().iter().filter_map(|i| i.scalar_text()).collect(),
    };
    if items
        .iter()
        .any(|k| k.contains("{{") || k == "*" || k.contains('*'))
    {
        return Err(Block::new(
            n.pos,
            "transformation path with a wildcard or template",
            format!("the field path {items:?}"),
        ));
    }
    Ok(items)
}

/// Adds a stream's transformations to its `records`.
pub(crate) fn transformations(
    cx: &mut Cx,
    list: &Node,
    records: &mut serde_json::Map<String, J>,
    vars: &Vars,
) -> Res<()> {
    let mut steps = Vec::new();
    for t in list.items() {
        let ty = t.type_name().unwrap_or("");
        let tv = Vars {
            pos: t.pos,
            params: parameters_of(t),
            ..vars.clone()
        };
        match ty {
            "AddFields" => {
                let raw_cond = t.str_at("condition").filter(|c| !c.trim().is_empty());
                // A condition on `value` (each field's computed value) is
                // one condition per field, the value put in its place.
                let per_field = raw_cond.filter(|c| !value_uses(c).is_empty());
                let when = match raw_cond {
                    Some(c) if per_field.is_none() => Some(cx.cond(c, &tv)?),
                    _ => None,
                };
                let mut fields = Vec::new();
                for f in t.get("fields").map(|f| f.items()).unwrap_or(&[]) {
                    let path = path_of(f.get("path").ok_or_else(|| {
                        Block::new(f.pos, "AddFields without a path", "no `path`")
                    })?)?;
                    let mut value = f
                        .get("value")
                        .and_then(|v| v.scalar_text())
                        .unwrap_or_default();
                    let mut value_type = f.str_at("value_type").map(str::to_string);
                    // `'"{{ x }}"'`: Airbyte's literal_eval strips the quotes
                    // and keeps a string.
                    for q in ['"', '\''] {
                        if value.len() > 2
                            && value.starts_with(q)
                            && value.ends_with(q)
                            && value.contains("{{")
                            && value[1..value.len() - 1].matches(q).count() == 0
                        {
                            value = value[1..value.len() - 1].to_string();
                            value_type.get_or_insert_with(|| "string".into());
                        }
                    }
                    let fv = Vars {
                        pos: f.pos,
                        params: parameters_of(f),
                        ..tv.clone()
                    };
                    let mut v = if value.contains("{{") || value.contains("{%") {
                        cx.tpl(&value, &fv)?
                    } else if serde_json::from_str::<J>(&value)
                        .is_ok_and(|j| j.is_number() || j.is_boolean())
                    {
                        // Airbyte reads literals as Python values.
                        format!("{{{{ {} }}}}", value.to_ascii_lowercase())
                    } else {
                        value.clone()
                    };
                    if let Some(ty) = value_type.as_deref() {
                        let cast = match ty {
                            "string" => "string",
                            "integer" => "int",
                            "number" => "float",
                            "boolean" => "bool",
                            _ => "",
                        };
                        if !cast.is_empty() {
                            v = match v
                                .trim()
                                .strip_prefix("{{")
                                .and_then(|s| s.strip_suffix("}}"))
                            {
                                Some(inner) if !inner.contains("}}") => {
                                    format!("{{{{ ({}) | {cast} }}}}", inner.trim())
                                }
                                _ if cast == "string" => v,
                                _ => format!("{{{{ {} | {cast} }}}}", super::jinja::quote_str(&v)),
                            };
                        }
                    }
                    if let Some(c) = per_field {
                        let inner = value
                            .trim()
                            .strip_prefix("{{")
                            .and_then(|s| s.strip_suffix("}}"))
                            .filter(|s| !s.contains("}}") && !s.contains("{{"))
                            .map(str::trim)
                            .unwrap_or("");
                        let expr = if inner.is_empty() {
                            super::jinja::quote_str(&value)
                        } else {
                            format!("({inner})")
                        };
                        let mut src = c.to_string();
                        for at in value_uses(c).into_iter().rev() {
                            src.replace_range(at..at + "value".len(), &expr);
                        }
                        let cond = cx.cond(&src, &fv)?;
                        steps.push(Step::Add(vec![(path.join("."), v)], Some(cond)));
                        continue;
                    }
                    fields.push((path.join("."), v));
                }
                if per_field.is_some() {
                    continue;
                }
                steps.push(Step::Add(fields, when));
            }
            "RemoveFields" => {
                if let Some(c) = t.str_at("condition").filter(|c| !c.trim().is_empty()) {
                    let all = t
                        .get("field_pointers")
                        .map(|f| f.items())
                        .unwrap_or(&[])
                        .iter()
                        .all(|p| path_of(p).is_err());
                    if all {
                        // `["**"]` with a condition on the value: fields removed
                        // by value, which we cannot say.
                        cx.approx(
                            t.pos,
                            format!("fields are not removed by value (`{c}`); they are kept"),
                        );
                        continue;
                    }
                    return Err(Block::new(
                        t.pos,
                        "RemoveFields by a condition on each field's value",
                        format!("RemoveFields `condition: {c}`"),
                    ));
                }
                let mut fields = Vec::new();
                for p in t.get("field_pointers").map(|f| f.items()).unwrap_or(&[]) {
                    fields.push(path_of(p)?.join("."));
                }
                steps.push(Step::Remove(fields));
            }
            "DpathFlattenFields" => {
                if t.bool_at("replace_record") == Some(true) {
                    return Err(Block::new(
                        t.pos,
                        "DpathFlattenFields replacing the record",
                        "`replace_record: true`",
                    ));
                }
                if t.get("key_transformation").is_some() {
                    return Err(Block::new(
                        t.pos,
                        "DpathFlattenFields with key_transformation",
                        "`key_transformation`",
                    ));
                }
                let p = path_of(t.get("field_path").ok_or_else(|| {
                    Block::new(
                        t.pos,
                        "DpathFlattenFields without a path",
                        "no `field_path`",
                    )
                })?)?;
                if t.bool_at("delete_origin_value") != Some(true) {
                    cx.approx(t.pos, format!("flatten `{}`: the nested object is removed (Airbyte keeps it unless delete_origin_value)", p.join(".")));
                }
                cx.approx(
                    t.pos,
                    "flatten keeps a field the record has already; Airbyte overwrites it",
                );
                steps.push(Step::Flatten(vec![p.join(".")]));
            }
            t2 => {
                return Err(Block::unsupported(
                    t,
                    t2,
                    "transformation",
                    "the transformation",
                ));
            }
        }
    }
    let ordered = steps.windows(2).all(|w| w[0].rank() <= w[1].rank());
    let conditional = steps.iter().any(|s| matches!(s, Step::Add(_, Some(_))));
    if ordered && !conditional {
        for s in steps {
            match s {
                Step::Remove(f) => extend_list(records, "remove_fields", f),
                Step::Flatten(f) => extend_list(records, "flatten", f),
                Step::Add(fields, _) => {
                    let m = records.entry("add_fields").or_insert_with(|| json!({}));
                    for (k, v) in fields {
                        m[k] = json!(v);
                    }
                }
            }
        }
    } else {
        let mut list = Vec::new();
        for s in steps {
            let mut e = serde_json::Map::new();
            match s {
                Step::Remove(f) => {
                    e.insert("remove_fields".into(), json!(f));
                }
                Step::Flatten(f) => {
                    e.insert("flatten".into(), json!(f));
                }
                Step::Add(fields, when) => {
                    if let Some(w) = when {
                        e.insert("when".into(), json!(w));
                    }
                    let m: serde_json::Map<String, J> =
                        fields.into_iter().map(|(k, v)| (k, json!(v))).collect();
                    e.insert("add_fields".into(), J::Object(m));
                }
            }
            list.push(J::Object(e));
        }
        records.insert("transforms".into(), J::Array(list));
    }
    Ok(())
}

fn extend_list(records: &mut serde_json::Map<String, J>, key: &str, items: Vec<String>) {
    let e = records.entry(key).or_insert_with(|| json!([]));
    if let J::Array(a) = e {
        for i in items {
            if !a.contains(&json!(i)) {
                a.push(json!(i));
            }
        }
    }
}

/// Where a condition reads the variable `value` (not `x.value`, not a
/// string's text), as byte offsets.
fn value_uses(cond: &str) -> Vec<usize> {
    let b = cond.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if cond[i..].starts_with("value") => {
                let before = i.checked_sub(1).map(|j| b[j]);
                let after = b.get(i + 5).copied();
                let word =
                    |x: Option<u8>| x.is_some_and(|x| x.is_ascii_alphanumeric() || x == b'_');
                if !word(before) && before != Some(b'.') && !word(after) {
                    out.push(i);
                }
                i += 5;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out
}
