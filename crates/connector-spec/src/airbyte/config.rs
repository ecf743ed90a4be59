//! `spec.connection_specification` (a JSON Schema) → our `config`.
//!
//! Each property becomes a parameter: `type` string, integer, number,
//! boolean or array (a type list such as `["null", "string"]` takes its
//! first non-null member), `airbyte_secret: true` → `secret: true` (a
//! secret's `default` is dropped: our secrets never sit in the spec),
//! `default`, `enum`, and `required` for the top-level required properties
//! without a default. Our config is flat, so nested objects are flattened:
//! `credentials.access_token` becomes `credentials_access_token`, and a
//! `oneOf` of objects (Airbyte's "choose one" credentials) contributes the
//! union of its options' properties, none of them required, their `const`
//! discriminators gathered into an `enum`. Templates are rewritten to the
//! flat names ([`super::interpolation`]). Keys the manifest reads but its
//! spec does not declare are declared as optional strings, since Airbyte
//! passes any config key through.

use super::notes::NoteKind;
use super::refs::NodeExt;
use crate::Pos;
use crate::node::{Node, Value};
use indexmap::IndexMap;
use serde_json::{Value as J, json};

/// The config of the translation and where each Airbyte key went.
#[derive(Debug, Default)]
pub(crate) struct ConfigMap {
    /// Our parameters, by name, as JSON in our format.
    pub params: IndexMap<String, J>,
    /// Airbyte key paths and the parameter each became.
    paths: Vec<(Vec<String>, String)>,
    /// Notes about the config, at their manifest positions.
    pub notes: Vec<(Pos, NoteKind, String)>,
}

/// What a config key path read in a template is.
pub(crate) enum Lookup {
    /// The parameter, how many path segments it consumed, and whether it
    /// may be missing at run time (optional, no default).
    Param(String, usize, bool),
    /// A whole object (its fields were flattened into several parameters).
    Object,
}

/// A snake_case name: lower case, `_` for anything else, camelCase split.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = false;
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        "x".into()
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}

fn type_of(schema: &Node) -> Option<String> {
    match schema.get("type").map(|n| &n.value) {
        Some(Value::Str(s)) => Some(s.clone()),
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|n| n.as_str())
            .find(|s| *s != "null")
            .map(str::to_string),
        _ => None,
    }
}

fn fits(kind: &str, v: &J) -> bool {
    match kind {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        _ => false,
    }
}

/// A default of another type turned into the declared one, when it says
/// the same (`"10"` for an integer).
fn coerce(kind: &str, v: &J) -> Option<J> {
    if fits(kind, v) {
        return Some(v.clone());
    }
    match (kind, v) {
        ("string", J::Number(n)) => Some(J::String(n.to_string())),
        ("string", J::Bool(b)) => Some(J::String(b.to_string())),
        ("integer", J::String(s)) => s.trim().parse::<i64>().ok().map(J::from),
        ("number", J::String(s)) => s.trim().parse::<f64>().ok().map(J::from),
        ("boolean", J::String(s)) => s.trim().parse::<bool>().ok().map(J::from),
        _ => None,
    }
}

impl ConfigMap {
    /// The config of a manifest's `spec` component.
    pub fn from_spec(spec: Option<&Node>) -> ConfigMap {
        let mut map = ConfigMap::default();
        let Some(cs) = spec.and_then(|s| s.get("connection_specification")) else {
            return map;
        };
        map.walk(cs, &[], false);
        map
    }

    fn walk(&mut self, schema: &Node, prefix: &[String], optional: bool) {
        let required: Vec<&str> = schema
            .get("required")
            .map(|r| r.items().iter().filter_map(|n| n.as_str()).collect())
            .unwrap_or_default();
        if let Some(props) = schema.get("properties") {
            for (k, sub) in props.entries() {
                let mut path = prefix.to_vec();
                path.push(k.name.clone());
                self.property(sub, &path, optional || !required.contains(&k.name.as_str()));
            }
        }
        for alt in ["oneOf", "anyOf"] {
            for option in schema.get(alt).map(|n| n.items()).unwrap_or(&[]) {
                self.walk(option, prefix, true);
            }
        }
    }

    fn property(&mut self, schema: &Node, path: &[String], optional: bool) {
        let kind = type_of(schema);
        if kind.as_deref() == Some("object")
            || schema.get("properties").is_some()
            || schema.get("oneOf").is_some()
            || schema.get("anyOf").is_some()
        {
            if schema.get("properties").is_none()
                && schema.get("oneOf").is_none()
                && schema.get("anyOf").is_none()
            {
                self.notes.push((
                    schema.pos,
                    NoteKind::Info,
                    format!(
                        "config `{}` is a free-form object; it is declared as a string",
                        path.join(".")
                    ),
                ));
            } else {
                self.walk(schema, path, optional);
                return;
            }
        }
        let kind = match kind.as_deref() {
            Some(k @ ("string" | "integer" | "number" | "boolean" | "array")) => k.to_string(),
            _ => "string".to_string(),
        };
        let name = self.unique_name(path);
        let secret = schema.bool_at("airbyte_secret").unwrap_or(false);
        let mut p = serde_json::Map::new();
        if kind != "string" {
            p.insert("type".into(), json!(kind));
        }
        let desc = schema
            .str_at("title")
            .or_else(|| schema.str_at("description"))
            .map(|d| d.lines().next().unwrap_or("").trim().to_string())
            .filter(|d| !d.is_empty());
        if let Some(d) = desc {
            let d: String = d.chars().take(160).collect();
            p.insert("description".into(), json!(d));
        }
        let mut has_default = false;
        if let Some(d) = schema.get("default") {
            let v = d.to_json();
            if secret {
                self.notes.push((
                    d.pos,
                    NoteKind::Info,
                    format!("the default of secret `{}` is dropped", path.join(".")),
                ));
            } else if let Some(v) = coerce(&kind, &v) {
                p.insert("default".into(), v);
                has_default = true;
            } else {
                self.notes.push((
                    d.pos,
                    NoteKind::Approximated,
                    format!(
                        "the default {v} of `{}` is not {kind}; dropped",
                        path.join(".")
                    ),
                ));
            }
        }
        let mut allowed: Vec<J> = Vec::new();
        if let Some(e) = schema.get("enum") {
            allowed = e.items().iter().map(Node::to_json).collect();
        } else if let Some(c) = schema.get("const") {
            allowed = vec![c.to_json()];
        }
        let allowed: Vec<J> = allowed.iter().filter_map(|v| coerce(&kind, v)).collect();
        if let Some(prev) = self.params.get_mut(&name) {
            // Another option of a `oneOf` declared it too: merge enums.
            if let Some(J::Array(list)) = prev.get_mut("enum") {
                for v in allowed {
                    if !list.contains(&v) {
                        list.push(v);
                    }
                }
            }
            return;
        }
        if !allowed.is_empty() && kind != "array" && kind != "boolean" {
            if let Some(d) = p.get("default")
                && !allowed.contains(d)
            {
                p.remove("default");
                has_default = false;
            }
            p.insert("enum".into(), J::Array(allowed));
        }
        if !optional && !has_default {
            p.insert("required".into(), json!(true));
        }
        if secret {
            p.insert("secret".into(), json!(true));
        }
        if path.len() > 1 {
            self.notes.push((
                schema.pos,
                NoteKind::Info,
                format!(
                    "nested config `{}` is the flat key `{name}`",
                    path.join(".")
                ),
            ));
        }
        self.paths.push((path.to_vec(), name.clone()));
        self.params.insert(name, J::Object(p));
    }

    fn unique_name(&self, path: &[String]) -> String {
        if let Some((_, n)) = self.paths.iter().find(|(p, _)| p == path) {
            return n.clone();
        }
        let base = snake(&path.join("_"));
        let mut name = base.clone();
        let mut i = 2;
        while self.params.contains_key(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    /// The parameter a key path of `config` reads; `keys` are the literal
    /// keys of the chain, outermost first. Unknown keys are declared.
    pub fn lookup(&mut self, keys: &[String], pos: Pos) -> Lookup {
        for n in (1..=keys.len()).rev() {
            if let Some((_, name)) = self.paths.iter().find(|(p, _)| p[..] == keys[..n]) {
                let name = name.clone();
                return Lookup::Param(name.clone(), n, self.may_be_missing(&name));
            }
        }
        if self
            .paths
            .iter()
            .any(|(p, _)| p.len() > keys.len() && p.starts_with(keys))
        {
            return Lookup::Object;
        }
        let name = self.unique_name(keys);
        self.notes.push((
            pos,
            NoteKind::Info,
            format!(
                "config `{}` is read but not in the manifest's spec; declared as an optional string",
                keys.join(".")
            ),
        ));
        self.paths.push((keys.to_vec(), name.clone()));
        self.params.insert(name.clone(), json!({}));
        Lookup::Param(name, keys.len(), true)
    }

    /// The parameters flattened from the object at `keys`.
    pub fn under(&self, keys: &[String]) -> Vec<String> {
        self.paths
            .iter()
            .filter(|(p, _)| p.len() > keys.len() && p.starts_with(keys))
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn may_be_missing(&self, name: &str) -> bool {
        self.params
            .get(name)
            .is_some_and(|p| p.get("default").is_none() && p.get("required").is_none())
    }

    /// Adds a parameter of our own (such as `base_url`), under a free name.
    pub fn add(&mut self, preferred: &str, param: J) -> String {
        let mut name = preferred.to_string();
        let mut i = 2;
        while self.params.contains_key(&name) {
            name = format!("{preferred}_{i}");
            i += 1;
        }
        self.params.insert(name.clone(), param);
        name
    }

    /// A rewritten template rendered with the config's defaults (and
    /// nothing for parameters without one), if it renders.
    pub fn render_with_defaults(&self, template: &str) -> Option<String> {
        let mut env = minijinja::Environment::new();
        crate::template_functions::register(&mut env, crate::template_functions::placeholder_now);
        let values: serde_json::Map<String, J> = self
            .params
            .iter()
            .filter_map(|(k, p)| p.get("default").map(|d| (k.clone(), d.clone())))
            .collect();
        let config = minijinja::Value::from(minijinja::value::Serde(&values));
        env.render_str(template, minijinja::context! { config => config })
            .ok()
    }

    /// The default of a parameter, if it has one.
    pub fn default_of(&self, name: &str) -> Option<&J> {
        self.params.get(name).and_then(|p| p.get("default"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_become_flat_typed_parameters() {
        let text = r#"
connection_specification:
  type: object
  required: [api_key, start_date]
  properties:
    api_key: {type: string, airbyte_secret: true, title: API Key}
    start_date: {type: string, format: date-time}
    page_size: {type: integer, default: "50"}
    region: {type: string, enum: [US, EU], default: US}
    repos: {type: array, items: {type: string}}
    sandbox: {type: [ "null", boolean ], default: false}
    credentials:
      type: object
      oneOf:
        - properties:
            auth_type: {type: string, const: OAuth}
            client_secret: {type: string, airbyte_secret: true}
        - properties:
            auth_type: {type: string, const: Token}
            api_token: {type: string, airbyte_secret: true}
"#;
        let node = super::super::refs::parse(text).unwrap();
        let mut m = ConfigMap::from_spec(Some(&node));
        let p = |m: &ConfigMap, k: &str| m.params[k].clone();
        assert_eq!(
            p(&m, "api_key"),
            json!({"description": "API Key", "required": true, "secret": true})
        );
        assert_eq!(p(&m, "start_date"), json!({"required": true}));
        assert_eq!(
            p(&m, "page_size"),
            json!({"type": "integer", "default": 50})
        );
        assert_eq!(
            p(&m, "region"),
            json!({"default": "US", "enum": ["US", "EU"]})
        );
        assert_eq!(p(&m, "repos"), json!({"type": "array"}));
        assert_eq!(
            p(&m, "sandbox"),
            json!({"type": "boolean", "default": false})
        );
        assert_eq!(
            p(&m, "credentials_auth_type"),
            json!({"enum": ["OAuth", "Token"]})
        );
        assert_eq!(p(&m, "credentials_api_token"), json!({"secret": true}));
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match m.lookup(&keys(&["credentials", "api_token", "x"]), Pos::default()) {
            Lookup::Param(n, 2, true) => assert_eq!(n, "credentials_api_token"),
            _ => panic!(),
        }
        assert!(matches!(
            m.lookup(&keys(&["credentials"]), Pos::default()),
            Lookup::Object
        ));
        match m.lookup(&keys(&["api_url"]), Pos::default()) {
            Lookup::Param(n, 1, true) => assert_eq!(n, "api_url"),
            _ => panic!(),
        }
        assert_eq!(snake("startDate"), "start_date");
        assert_eq!(snake("API key"), "api_key");
    }
}
