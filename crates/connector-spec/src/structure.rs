//! Structural check: walks the YAML tree against the generated JSON Schema and
//! reports every mismatch (unknown key, wrong type, missing field, unknown
//! `type` tag) at its line and column. Because the schema is derived from the
//! spec types, editors and `validate` agree on what is valid.

use crate::node::{Node, Value};
use crate::suggest::did_you_mean;
use crate::{Diagnostic, Pos};
use serde_json::Value as J;

/// The diagnostics, and the key path of each node that is wrong (for
/// [`prune`], so the parts that are right can still be checked for meaning).
pub(crate) fn check_with_paths(root: &Node, file: &str) -> (Vec<Diagnostic>, Vec<Vec<String>>) {
    let schema = crate::json_schema();
    let mut checker = Checker {
        defs: schema.get("$defs").cloned().unwrap_or(J::Null),
        file,
        diags: Vec::new(),
        stack: Vec::new(),
        bad: Vec::new(),
    };
    checker.node(root, &schema, "");
    (checker.diags, checker.bad)
}

/// Removes the nodes at `bad` from `json`, so what remains can be typed and
/// its meaning checked. A stream that loses a required field is removed
/// whole (with the streams below it); a config parameter becomes `{}`.
/// Returns None when what is wrong is at the top level.
pub(crate) fn prune(mut json: J, bad: &[Vec<String>]) -> Option<crate::Spec> {
    let mut dropped_streams = Vec::new();
    for path in bad {
        if path.len() <= 1 {
            // A top-level field: `version`, `base_url`, `streams` themselves.
            if path
                .first()
                .is_none_or(|k| matches!(k.as_str(), "version" | "name" | "base_url" | "streams"))
            {
                return None;
            }
        }
        remove(&mut json, path);
        if path.first().map(String::as_str) == Some("streams")
            && let Some(s) = path.get(1)
        {
            dropped_streams.push(s.clone());
        }
    }
    // Try as is; then without the streams that were touched.
    if let Ok(spec) = serde_json::from_value::<crate::Spec>(json.clone()) {
        return Some(spec);
    }
    let streams = json.get_mut("streams")?.as_object_mut()?;
    let mut gone: Vec<String> = Vec::new();
    for s in dropped_streams {
        if streams.shift_remove(&s).is_some() {
            gone.push(s);
        }
    }
    // Children of a removed stream go too: their parent is unknown now.
    loop {
        let orphans: Vec<String> = streams
            .iter()
            .filter(|(_, v)| {
                v.get("parent")
                    .and_then(J::as_str)
                    .is_some_and(|p| gone.iter().any(|g| g == p))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if orphans.is_empty() {
            break;
        }
        for o in orphans {
            streams.shift_remove(&o);
            gone.push(o);
        }
    }
    serde_json::from_value::<crate::Spec>(json).ok()
}

/// Removes the node at `path` (a config parameter becomes `{}`).
fn remove(json: &mut J, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut node = json;
    for k in parent {
        let next = match node {
            J::Object(m) => m.get_mut(k),
            J::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    let config_param = parent.len() == 1 && parent[0] == "config";
    match node {
        J::Object(m) if config_param => {
            m.insert(last.clone(), J::Object(Default::default()));
        }
        J::Object(m) => {
            m.shift_remove(last);
        }
        J::Array(a) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a[i] = J::Null;
            }
        }
        _ => {}
    }
}

struct Checker<'a> {
    defs: J,
    file: &'a str,
    diags: Vec<Diagnostic>,
    /// Keys from the root to the node being checked.
    stack: Vec<String>,
    /// Key paths of the nodes found wrong.
    bad: Vec<Vec<String>>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn where_(path: &str) -> String {
    if path.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in `{path}`")
    }
}

impl Checker<'_> {
    fn error(&mut self, pos: Pos, message: String, hint: Option<String>) {
        self.diags
            .push(Diagnostic::error(self.file, pos, message).with_hint_opt(hint));
        self.bad.push(self.stack.clone());
    }

    fn resolve<'s>(&'s self, schema: &'s J) -> &'s J {
        let mut s = schema;
        for _ in 0..16 {
            match s
                .get("$ref")
                .and_then(J::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
            {
                Some(name) => s = &self.defs[name],
                None => break,
            }
        }
        s
    }

    fn node(&mut self, node: &Node, schema: &J, path: &str) {
        let ref_name = schema
            .get("$ref")
            .and_then(J::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .map(str::to_string);
        let ref_name = ref_name.as_deref();
        let schema = self.resolve(schema).clone();
        if let Some(branches) = schema.get("anyOf").and_then(J::as_array) {
            return self.any_of(node, branches, path);
        }
        if let Some(branches) = schema.get("oneOf").and_then(J::as_array) {
            return self.one_of(node, branches, path);
        }
        if let Some(allowed) = schema.get("enum").and_then(J::as_array) {
            return self.enumerated(node, allowed, path);
        }
        if let Some(c) = schema.get("const") {
            return self.enumerated(node, std::slice::from_ref(c), path);
        }
        if let Some(types) = schema.get("type") {
            if !type_matches(node, types) {
                let expected = type_names(types);
                let hint = match ref_name {
                    Some("HumanDuration") => {
                        Some("a duration needs a unit, e.g. `30s`, `500ms`, `5m`".to_string())
                    }
                    Some("Rate") => {
                        Some("a rate needs a period: `N/s`, `N/min`, `N/h`, `N/d` or `N/<duration>` such as `100/10s`".to_string())
                    }
                    _ => None,
                };
                self.error(
                    node.pos,
                    format!(
                        "expected {expected}, found {} {}",
                        node.kind(),
                        where_(path)
                    ),
                    hint,
                );
                return;
            }
            self.range(node, &schema, path);
        }
        match &node.value {
            Value::Map(entries) => self.object(node, entries, &schema, path),
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.stack.push(i.to_string());
                        self.node(item, item_schema, &format!("{path}[{i}]"));
                        self.stack.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn range(&mut self, node: &Node, schema: &J, path: &str) {
        let value = match node.value {
            Value::Int(i) => i as i128,
            Value::UInt(u) => u as i128,
            _ => return,
        };
        let format_max = match schema.get("format").and_then(J::as_str) {
            Some("uint8") => u8::MAX as i128,
            Some("uint16") => u16::MAX as i128,
            Some("uint32") => u32::MAX as i128,
            _ => i128::MAX,
        };
        let max = schema
            .get("maximum")
            .and_then(J::as_i64)
            .map_or(format_max, |m| format_max.min(i128::from(m)));
        let min = schema
            .get("minimum")
            .and_then(J::as_i64)
            .map(i128::from)
            .unwrap_or(i128::MIN);
        if value < min || value > max {
            let bound = if value < min {
                format!("at least {min}")
            } else {
                format!("at most {max}")
            };
            self.error(
                node.pos,
                format!(
                    "{value} is out of range {}: it must be {bound}",
                    where_(path)
                ),
                None,
            );
        }
    }

    fn object(
        &mut self,
        node: &Node,
        entries: &[(crate::node::Key, Node)],
        schema: &J,
        path: &str,
    ) {
        let props = schema.get("properties").and_then(J::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in entries {
            let child = join(path, &key.name);
            self.stack.push(key.name.clone());
            if let Some(prop) = props.and_then(|p| p.get(&key.name)) {
                self.node(value, prop, &child);
            } else if let Some(extra) = additional.filter(|a| a.is_object()) {
                self.node(value, extra, &child);
            } else if additional == Some(&J::Bool(false)) {
                let names: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let hint = match did_you_mean(&key.name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("allowed here: {}", names.join(", ")),
                };
                self.error(
                    key.pos,
                    format!("unknown field `{}` {}", key.name, where_(path)),
                    Some(hint),
                );
            }
            self.stack.pop();
        }
        if let Some(required) = schema.get("required").and_then(J::as_array) {
            for r in required.iter().filter_map(J::as_str) {
                if !entries.iter().any(|(k, _)| k.name == r) {
                    let desc = props
                        .and_then(|p| p.get(r))
                        .and_then(|p| {
                            p.get("description")
                                .or_else(|| self.resolve(p).get("description"))
                        })
                        .and_then(J::as_str)
                        .map(|d| d.replace('\n', " "));
                    self.error(
                        node.pos,
                        format!("missing field `{r}` {}", where_(path)),
                        desc.map(|d| format!("`{r}`: {d}")),
                    );
                }
            }
        }
    }

    fn any_of(&mut self, node: &Node, branches: &[J], path: &str) {
        let non_null: Vec<&J> = branches
            .iter()
            .filter(|b| b.get("type") != Some(&J::from("null")))
            .collect();
        if matches!(node.value, Value::Null) && non_null.len() < branches.len() {
            return;
        }
        // Take the first branch whose top-level type fits; report against the
        // first branch when none does.
        let fits = non_null.iter().find(|b| {
            let b = self.resolve(b);
            b.get("type").is_none_or(|t| type_matches(node, t))
        });
        match fits {
            Some(b) => self.node(node, b, path),
            None if non_null.len() == 1 => self.node(node, non_null[0], path),
            None => {
                let names: Vec<String> = non_null
                    .iter()
                    .filter_map(|b| self.resolve(b).get("type"))
                    .map(type_names)
                    .collect();
                self.error(
                    node.pos,
                    format!(
                        "expected {}, found {} {}",
                        names.join(" or "),
                        node.kind(),
                        where_(path)
                    ),
                    None,
                );
            }
        }
    }

    fn one_of(&mut self, node: &Node, branches: &[J], path: &str) {
        let tags: Vec<(&str, &J)> = branches
            .iter()
            .filter_map(|b| {
                b.pointer("/properties/type/const")
                    .and_then(J::as_str)
                    .map(|t| (t, b))
            })
            .collect();
        if tags.len() == branches.len() {
            return self.tagged(node, &tags, path);
        }
        // A plain enum written as oneOf of documented constants.
        // schemars groups undocumented variants in one `enum` branch and
        // gives each documented one a `const` branch.
        let consts: Vec<J> = branches
            .iter()
            .flat_map(
                |b| match (b.get("const"), b.get("enum").and_then(J::as_array)) {
                    (Some(c), _) => vec![c.clone()],
                    (None, Some(all)) => all.clone(),
                    (None, None) => Vec::new(),
                },
            )
            .collect();
        self.enumerated(node, &consts, path);
    }

    fn tagged(&mut self, node: &Node, tags: &[(&str, &J)], path: &str) {
        let names: Vec<&str> = tags.iter().map(|(t, _)| *t).collect();
        let Value::Map(_) = node.value else {
            self.error(
                node.pos,
                format!(
                    "expected a mapping with a `type` {}, found {}",
                    where_(path),
                    node.kind()
                ),
                Some(format!("`type` is one of: {}", names.join(", "))),
            );
            return;
        };
        let Some(tag_node) = node.get("type") else {
            self.error(
                node.pos,
                format!("missing field `type` {}", where_(path)),
                Some(format!("`type` is one of: {}", names.join(", "))),
            );
            return;
        };
        let Value::Str(tag) = &tag_node.value else {
            self.error(
                tag_node.pos,
                format!(
                    "expected a string for `{}`, found {}",
                    join(path, "type"),
                    tag_node.kind()
                ),
                Some(format!("`type` is one of: {}", names.join(", "))),
            );
            return;
        };
        match tags.iter().find(|(t, _)| t == tag) {
            Some((_, branch)) => self.node(node, branch, path),
            None => {
                let hint = match did_you_mean(tag, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? (one of: {})", names.join(", ")),
                    None => format!("`type` is one of: {}", names.join(", ")),
                };
                self.error(
                    tag_node.pos,
                    format!("unknown type `{tag}` {}", where_(path)),
                    Some(hint),
                );
            }
        }
    }

    fn enumerated(&mut self, node: &Node, allowed: &[J], path: &str) {
        let json = node.to_json();
        if allowed.contains(&json) {
            return;
        }
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map(str::to_string).unwrap_or(a.to_string()))
            .collect();
        let shown = match &json {
            J::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        };
        let hint = json
            .as_str()
            .and_then(|s| did_you_mean(s, names.iter().map(String::as_str)))
            .map(|s| format!("did you mean `{s}`? (one of: {})", names.join(", ")))
            .unwrap_or_else(|| format!("one of: {}", names.join(", ")));
        self.error(
            node.pos,
            format!("invalid value {shown} {}", where_(path)),
            Some(hint),
        );
    }
}

fn type_matches(node: &Node, types: &J) -> bool {
    let one = |t: &str| match (t, &node.value) {
        ("object", Value::Map(_)) | ("array", Value::Seq(_)) | ("string", Value::Str(_)) => true,
        ("boolean", Value::Bool(_)) | ("null", Value::Null) => true,
        ("integer", Value::Int(_) | Value::UInt(_)) => true,
        ("number", Value::Int(_) | Value::UInt(_) | Value::Float(_)) => true,
        _ => false,
    };
    match types {
        J::String(t) => one(t),
        J::Array(ts) => ts.iter().filter_map(J::as_str).any(one),
        _ => true,
    }
}

fn type_names(types: &J) -> String {
    let name = |t: &str| match t {
        "object" => "a mapping",
        "array" => "a list",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean (true or false)",
        "null" => "null",
        _ => "a value",
    };
    match types {
        J::String(t) => name(t).to_string(),
        J::Array(ts) => ts
            .iter()
            .filter_map(J::as_str)
            .filter(|t| *t != "null")
            .map(name)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "a value".into(),
    }
}
