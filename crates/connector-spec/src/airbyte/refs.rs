//! The manifest as a spanned tree, with references resolved and
//! `$parameters` propagated, as the CDK's `ManifestReferenceResolver` and
//! `ManifestComponentTransformer` do before anything is built:
//!
//! - a string `"#/definitions/x"` is replaced by the value it points at; a
//!   map with `$ref: "#/..."` is the referenced map with the map's own keys
//!   laid over it. A path is looked up whole first, then segment by segment
//!   (`#/a/b/c` tries the key `a/b/c`, then `a` → `b/c`, …), list indices
//!   as numbers.
//! - a component without `type` gets the default type of the field it sits
//!   in (`DeclarativeStream.retriever` → `SimpleRetriever`, …).
//! - `$parameters` flow from a component to every component inside it;
//!   a component's own parameters win over its parents'. Each parameter is
//!   also set as a field of each component below that lacks it (or has a
//!   falsy value), which is how `name` and `path` reach streams and
//!   requesters. Components keep the merged map as `$parameters`, which
//!   `{{ parameters.x }}` reads.
//!
//! Every node keeps the position it was written at, so a note about a
//! component shared through `definitions` points at its definition.

use crate::Pos;
use crate::node::{Key, Node, Value};
use std::collections::HashMap;

/// Largest manifest accepted, in bytes.
const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// Parses manifest text into a spanned tree. Only `true`/`false` are
/// booleans: a field named `n` or `y` stays a string (PyYAML, the CDK's
/// loader, also reads `yes`/`no`/`on`/`off` as booleans; manifests do not
/// use those as values).
pub(crate) fn parse(text: &str) -> Result<Node, String> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "the manifest is {} bytes; at most {MAX_MANIFEST_BYTES} are read",
            text.len()
        ));
    }
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_aliases = 100_000;
    budget.max_anchors = 100_000;
    budget.max_nodes = 5_000_000;
    budget.max_depth = 256;
    budget.max_total_scalar_bytes = MAX_MANIFEST_BYTES;
    let options = serde_saphyr::options! { budget: Some(budget), strict_booleans: true };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| {
        let text = e.without_snippet().to_string();
        format!("invalid YAML: {text}")
    })
}

/// Helpers on manifest nodes.
pub(crate) trait NodeExt {
    fn str_at(&self, key: &str) -> Option<&str>;
    fn type_name(&self) -> Option<&str>;
    fn entries(&self) -> &[(Key, Node)];
    fn items(&self) -> &[Node];
    fn as_str(&self) -> Option<&str>;
    fn is_map(&self) -> bool;
    fn bool_at(&self, key: &str) -> Option<bool>;
    fn truthy(&self) -> bool;
    /// A scalar as text: strings as they are, numbers and booleans printed.
    fn scalar_text(&self) -> Option<String>;
}

impl NodeExt for Node {
    fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|n| n.as_str())
    }
    fn type_name(&self) -> Option<&str> {
        self.str_at("type")
    }
    fn entries(&self) -> &[(Key, Node)] {
        match &self.value {
            Value::Map(e) => e,
            _ => &[],
        }
    }
    fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(e) => e,
            _ => &[],
        }
    }
    fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    fn is_map(&self) -> bool {
        matches!(self.value, Value::Map(_))
    }
    fn bool_at(&self, key: &str) -> Option<bool> {
        match self.get(key).map(|n| &n.value) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("true") => Some(true),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
    fn truthy(&self) -> bool {
        match &self.value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::UInt(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Seq(v) => !v.is_empty(),
            Value::Map(v) => !v.is_empty(),
        }
    }
    fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
            _ => None,
        }
    }
}

/// Resolves references in the parts of the manifest that are translated.
pub(crate) struct Resolver<'a> {
    root: &'a Node,
    cache: HashMap<String, Node>,
    visiting: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(root: &'a Node) -> Self {
        Resolver {
            root,
            cache: HashMap::new(),
            visiting: Vec::new(),
        }
    }

    /// `node` with every reference inside it replaced.
    pub fn resolve(&mut self, node: &Node) -> Result<Node, (Pos, String)> {
        match &node.value {
            Value::Map(entries) => {
                let mut own: Vec<(Key, Node)> = Vec::new();
                for (k, v) in entries {
                    if k.name == "$ref" {
                        continue;
                    }
                    let v = if k.name == "config_overrides" || k.name == "schema_loader" {
                        // Config values, and schemas: never translated.
                        v.clone()
                    } else {
                        self.resolve(v)?
                    };
                    own.push((k.clone(), v));
                }
                let Some(r) = node.get("$ref") else {
                    return Ok(Node {
                        pos: node.pos,
                        value: Value::Map(own),
                    });
                };
                let target = self.resolve(r)?;
                match target.value {
                    Value::Map(mut base) => {
                        for (k, v) in own {
                            match base.iter_mut().find(|(bk, _)| bk.name == k.name) {
                                Some(slot) => slot.1 = v,
                                None => base.push((k, v)),
                            }
                        }
                        Ok(Node {
                            pos: node.pos,
                            value: Value::Map(base),
                        })
                    }
                    _ => Ok(target),
                }
            }
            Value::Seq(items) => Ok(Node {
                pos: node.pos,
                value: Value::Seq(
                    items
                        .iter()
                        .map(|n| self.resolve(n))
                        .collect::<Result<_, _>>()?,
                ),
            }),
            Value::Str(s) if s.starts_with("#/") => {
                if let Some(hit) = self.cache.get(s) {
                    return Ok(hit.clone());
                }
                if self.visiting.contains(s) {
                    return Err((node.pos, format!("circular reference `{s}`")));
                }
                let target = lookup(self.root, &s[2..])
                    .ok_or_else(|| (node.pos, format!("undefined reference `{s}`")))?
                    .clone();
                self.visiting.push(s.clone());
                let out = self.resolve(&target);
                self.visiting.pop();
                let out = out?;
                self.cache.insert(s.clone(), out.clone());
                Ok(out)
            }
            _ => Ok(node.clone()),
        }
    }
}

/// Looks `path` up as the CDK does: the whole remaining path as a key
/// first, then its first segment.
fn lookup<'n>(mut node: &'n Node, path: &str) -> Option<&'n Node> {
    let mut rest = path.to_string();
    while !rest.is_empty() {
        if let Some(n) = node.get(&rest) {
            return Some(n);
        }
        let (head, tail) = rest
            .split_once('/')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((rest.clone(), String::new()));
        node = match &node.value {
            Value::Seq(items) => items.get(head.parse::<usize>().ok()?)?,
            Value::Map(_) => node.get(&head)?,
            _ => return None,
        };
        rest = tail;
    }
    Some(node)
}

/// The CDK's default component types, by `ParentType.field`.
const DEFAULT_TYPES: &[(&str, &str)] = &[
    (
        "CompositeErrorHandler.error_handlers",
        "DefaultErrorHandler",
    ),
    ("CursorPagination.decoder", "JsonDecoder"),
    ("DatetimeBasedCursor.end_datetime", "MinMaxDatetime"),
    ("DatetimeBasedCursor.end_time_option", "RequestOption"),
    ("DatetimeBasedCursor.start_datetime", "MinMaxDatetime"),
    ("DatetimeBasedCursor.start_time_option", "RequestOption"),
    ("DeclarativeSource.check", "CheckStream"),
    ("DeclarativeSource.spec", "Spec"),
    ("DeclarativeSource.streams", "DeclarativeStream"),
    ("DeclarativeStream.retriever", "SimpleRetriever"),
    ("DeclarativeStream.schema_loader", "JsonFileSchemaLoader"),
    (
        "DynamicDeclarativeStream.stream_template",
        "DeclarativeStream",
    ),
    (
        "DynamicDeclarativeStream.components_resolver",
        "ConfigComponentResolver",
    ),
    ("HttpComponentsResolver.retriever", "SimpleRetriever"),
    (
        "HttpComponentsResolver.components_mapping",
        "ComponentMappingDefinition",
    ),
    ("ConfigComponentsResolver.stream_config", "StreamConfig"),
    (
        "ConfigComponentsResolver.components_mapping",
        "ComponentMappingDefinition",
    ),
    ("DefaultErrorHandler.response_filters", "HttpResponseFilter"),
    ("DefaultPaginator.decoder", "JsonDecoder"),
    ("DefaultPaginator.page_size_option", "RequestOption"),
    ("DpathExtractor.decoder", "JsonDecoder"),
    ("DpathExtractor.record_expander", "RecordExpander"),
    ("HttpRequester.error_handler", "DefaultErrorHandler"),
    ("ListPartitionRouter.request_option", "RequestOption"),
    ("ParentStreamConfig.request_option", "RequestOption"),
    ("ParentStreamConfig.stream", "DeclarativeStream"),
    ("RecordSelector.extractor", "DpathExtractor"),
    ("RecordSelector.record_filter", "RecordFilter"),
    ("SimpleRetriever.paginator", "NoPagination"),
    ("SimpleRetriever.record_selector", "RecordSelector"),
    ("SimpleRetriever.requester", "HttpRequester"),
    (
        "SubstreamPartitionRouter.parent_stream_configs",
        "ParentStreamConfig",
    ),
    ("AddFields.fields", "AddedFieldDefinition"),
    (
        "CustomPartitionRouter.parent_stream_configs",
        "ParentStreamConfig",
    ),
    ("DynamicSchemaLoader.retriever", "SimpleRetriever"),
    ("SchemaTypeIdentifier.types_map", "TypesMap"),
];

/// Types given to components that name a `class_name` but no `type`.
const CUSTOM_TYPES: &[(&str, &str)] = &[
    (
        "CompositeErrorHandler.backoff_strategies",
        "CustomBackoffStrategy",
    ),
    ("DeclarativeStream.retriever", "CustomRetriever"),
    ("DeclarativeStream.transformations", "CustomTransformation"),
    (
        "DefaultErrorHandler.backoff_strategies",
        "CustomBackoffStrategy",
    ),
    (
        "DefaultPaginator.pagination_strategy",
        "CustomPaginationStrategy",
    ),
    ("HttpRequester.authenticator", "CustomAuthenticator"),
    ("HttpRequester.error_handler", "CustomErrorHandler"),
    ("RecordSelector.extractor", "CustomRecordExtractor"),
    ("SimpleRetriever.partition_router", "CustomPartitionRouter"),
];

pub(crate) const PARAMETERS: &str = "$parameters";

type Params = Vec<(String, Node)>;

fn set_param(params: &mut Params, k: &str, v: Node) {
    match params.iter_mut().find(|(pk, _)| pk == k) {
        Some(slot) => slot.1 = v,
        None => params.push((k.to_string(), v)),
    }
}

fn key(name: &str, pos: Pos) -> Key {
    Key {
        name: name.to_string(),
        pos,
    }
}

/// Adds default types and propagates `$parameters`, as the CDK's
/// transformer does: `field` is `ParentType.field` of the component.
pub(crate) fn propagate(field: &str, node: &Node, parent: &Params) -> Node {
    let Value::Map(entries) = &node.value else {
        return node.clone();
    };
    let mut entries: Vec<(Key, Node)> = entries.clone();
    if !entries.iter().any(|(k, _)| k.name == "type") {
        let table = if entries.iter().any(|(k, _)| k.name == "class_name") {
            CUSTOM_TYPES
        } else {
            DEFAULT_TYPES
        };
        if let Some((_, t)) = table.iter().find(|(f, _)| *f == field) {
            entries.push((
                key("type", node.pos),
                Node {
                    pos: node.pos,
                    value: Value::Str((*t).to_string()),
                },
            ));
        }
    }
    let mut current: Params = parent.clone();
    if let Some(i) = entries.iter().position(|(k, _)| k.name == PARAMETERS) {
        let (_, own) = entries.remove(i);
        for (k, v) in own.entries() {
            set_param(&mut current, &k.name, v.clone());
        }
    }
    let out = |entries| Node {
        pos: node.pos,
        value: Value::Map(entries),
    };
    let type_of = |entries: &[(Key, Node)]| {
        entries
            .iter()
            .find(|(k, _)| k.name == "type")
            .map(|(_, v)| v.value.clone())
    };
    // A JSON schema is no component.
    match type_of(&entries) {
        Some(Value::Str(t)) if t == "object" => return out(entries),
        Some(Value::Seq(items))
            if items.len() == 2
                && matches!(&items[0].value, Value::Str(s) if s == "null")
                && matches!(&items[1].value, Value::Str(s) if s == "object") =>
        {
            return out(entries);
        }
        _ => {}
    }
    let Some(Value::Str(ty)) = type_of(&entries) else {
        // An untyped object: only typed maps inside it are components.
        for (_, v) in entries.iter_mut() {
            if v.is_map() && v.get("type").is_some() {
                *v = propagate(field, v, &current);
            }
        }
        return out(entries);
    };
    for (k, v) in &current {
        match entries.iter_mut().find(|(ek, _)| ek.name == *k) {
            Some(slot) if slot.1.truthy() => {}
            Some(slot) => slot.1 = v.clone(),
            None => entries.push((key(k, v.pos), v.clone())),
        }
    }
    for i in 0..entries.len() {
        let name = entries[i].0.name.clone();
        let child_field = format!("{ty}.{name}");
        let excluded: Params = current
            .iter()
            .filter(|(k, _)| *k != name)
            .cloned()
            .collect();
        let v = &entries[i].1;
        let new = match &v.value {
            Value::Map(_) => propagate(&child_field, v, &excluded),
            Value::Seq(items) => Node {
                pos: v.pos,
                value: Value::Seq(
                    items
                        .iter()
                        .map(|it| {
                            if it.is_map() {
                                propagate(&child_field, it, &excluded)
                            } else {
                                it.clone()
                            }
                        })
                        .collect(),
                ),
            },
            _ => continue,
        };
        entries[i].1 = new;
    }
    if !current.is_empty() {
        let pos = node.pos;
        entries.push((
            key(PARAMETERS, pos),
            Node {
                pos,
                value: Value::Map(
                    current
                        .into_iter()
                        .map(|(k, v)| (key(&k, v.pos), v))
                        .collect(),
                ),
            },
        ));
    }
    out(entries)
}

/// The `$parameters` of a component, as JSON.
pub(crate) fn parameters_of(node: &Node) -> serde_json::Map<String, serde_json::Value> {
    match node.get(PARAMETERS).map(Node::to_json) {
        Some(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(text: &str, at: &str) -> serde_json::Value {
        let root = parse(text).unwrap();
        let mut r = Resolver::new(&root);
        r.resolve(root.get(at).unwrap()).unwrap().to_json()
    }

    #[test]
    fn string_refs_and_ref_keys_with_overrides() {
        let text = "definitions:\n  base: {url_base: https://x, http_method: GET}\n  limit: 50\n  nested: {path: first}\n  nested/path: second\nout:\n  a: \"#/definitions/limit\"\n  b: {$ref: \"#/definitions/base\", http_method: POST, path: /p}\n  c: \"#/definitions/nested/path\"\n  d: [\"#/definitions/base\"]\n";
        let v = resolved(text, "out");
        assert_eq!(v["a"], 50);
        assert_eq!(
            v["b"],
            serde_json::json!({"url_base": "https://x", "http_method": "POST", "path": "/p"})
        );
        assert_eq!(v["c"], "second", "a whole key wins over a nested path");
        assert_eq!(v["d"][0]["url_base"], "https://x");
    }

    #[test]
    fn circular_and_undefined_references_are_errors() {
        let root = parse("a: \"#/b\"\nb: \"#/a\"\nc: \"#/nope\"\n").unwrap();
        let mut r = Resolver::new(&root);
        assert!(
            r.resolve(root.get("a").unwrap())
                .unwrap_err()
                .1
                .contains("circular")
        );
        assert!(
            r.resolve(root.get("c").unwrap())
                .unwrap_err()
                .1
                .contains("undefined")
        );
    }

    #[test]
    fn parameters_flow_down_and_default_types_are_set() {
        let text = "s:\n  $parameters: {name: users, path: /users}\n  retriever:\n    requester:\n      $parameters: {path: /override}\n      url_base: https://x\n    record_selector:\n      extractor: {field_path: []}\n";
        let root = parse(text).unwrap();
        let s = propagate(
            "DeclarativeSource.streams",
            root.get("s").unwrap(),
            &Vec::new(),
        );
        let v = s.to_json();
        assert_eq!(v["type"], "DeclarativeStream");
        assert_eq!(v["name"], "users");
        assert_eq!(v["retriever"]["type"], "SimpleRetriever");
        assert_eq!(v["retriever"]["requester"]["type"], "HttpRequester");
        assert_eq!(v["retriever"]["requester"]["path"], "/override");
        assert_eq!(v["retriever"]["requester"]["name"], "users");
        assert_eq!(
            v["retriever"]["record_selector"]["extractor"]["type"],
            "DpathExtractor"
        );
        assert_eq!(
            v["retriever"]["requester"]["$parameters"]["path"],
            "/override"
        );
        assert_eq!(v["$parameters"]["path"], "/users");
    }

    #[test]
    fn class_name_gets_the_custom_type() {
        let root = parse("s:\n  retriever:\n    class_name: source_x.components.R\n").unwrap();
        let s = propagate(
            "DeclarativeSource.streams",
            root.get("s").unwrap(),
            &Vec::new(),
        );
        assert_eq!(s.to_json()["retriever"]["type"], "CustomRetriever");
    }
}
