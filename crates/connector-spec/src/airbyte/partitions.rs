//! Partition routers → `parent` or `partitions`.
//!
//! `SubstreamPartitionRouter` with one parent stream → `parent: <name>`;
//! the slice's `partition_field` reads the parent record's `parent_key`
//! (`{{ stream_partition.parent_id }}` → `{{ parent.id }}`), and its
//! `request_option` sends it. `ListPartitionRouter` → `partitions` over its
//! `values` (a list, or a config list), `{{ stream_slice.<cursor_field> }}`
//! → `{{ partition.<cursor_field> }}`. `UnionPartitionRouter` →
//! `partitions` with `as: <partition_field>`, the list child's `values` and
//! a `from` entry per substream child (deduplicated by value, as the CDK
//! does). A parent stream defined only inside the router (not one of the
//! manifest's streams) becomes an `internal` stream. Several routers (a
//! product of partitions), several parents of one substream router, and
//! grouping routers are blocked.

use super::Cx;
use super::config::snake;
use super::interpolation::{self, Scope, Vars};
use super::jinja;
use super::notes::{Block, Res};
use super::refs::{NodeExt, parameters_of};
use super::requester::{Inject, request_option};
use crate::node::{Node, Value};
use serde_json::{Value as J, json};

/// What a partition router gives its stream.
#[derive(Debug, Default)]
pub(crate) struct Router {
    /// The parent stream's name in the manifest.
    pub parent: Option<String>,
    pub parent_pos: crate::Pos,
    pub partitions: Option<J>,
    pub slice: Vec<(String, String)>,
    pub inject: Vec<(Inject, String)>,
    /// A union's parents: manifest name, position, value template.
    pub from: Vec<(String, crate::Pos, String)>,
    /// Parent stream definitions, by manifest name, for parents that are
    /// not among the manifest's streams.
    pub embedded: Vec<(String, Node)>,
}

fn name_of(cx: &mut Cx, stream: &Node) -> Res<String> {
    let n = stream
        .get("name")
        .and_then(|n| n.scalar_text())
        .unwrap_or_default();
    let mut v = Vars::new(Scope::Connection, stream.pos);
    v.params = parameters_of(stream);
    let t = cx.tpl(&n, &v)?;
    if t.is_empty() || t.contains("{{") {
        return Err(Block::new(
            stream.pos,
            "stream without a literal name",
            "the stream's name is not literal",
        ));
    }
    Ok(t)
}

pub(crate) fn stream_name(cx: &mut Cx, stream: &Node) -> Res<String> {
    name_of(cx, stream)
}

/// The partitions of a retriever's `partition_router`.
pub(crate) fn router(cx: &mut Cx, node: &Node) -> Res<Router> {
    let node = match &node.value {
        Value::Seq(items) if items.len() == 1 => &items[0],
        Value::Seq(items) if items.is_empty() => return Ok(Router::default()),
        Value::Seq(_) => {
            return Err(Block::new(
                node.pos,
                "several partition routers (a product of partitions)",
                "a list of partition routers",
            ));
        }
        _ => node,
    };
    let vars = {
        let mut v = Vars::new(Scope::Connection, node.pos);
        v.params = parameters_of(node);
        v
    };
    let mut r = Router::default();
    match node.type_name().unwrap_or("") {
        "SubstreamPartitionRouter" => {
            let configs = node
                .get("parent_stream_configs")
                .map(|c| c.items())
                .unwrap_or(&[]);
            let [cfg] = configs else {
                return Err(Block::new(
                    node.pos,
                    "several parent streams",
                    format!("{} parent streams", configs.len()),
                ));
            };
            let stream = cfg.get("stream").ok_or_else(|| {
                Block::new(cfg.pos, "parent config without a stream", "no `stream`")
            })?;
            if stream.type_name() == Some("StateDelegatingStream") {
                // Its name is what the parent is known as.
            }
            let pname = name_of(cx, stream)?;
            r.embedded.push((pname.clone(), stream.clone()));
            // The parent's own slice, for `stream_slice.parent_slice.<f>`:
            // what the parent record was read for (`parent_partition`).
            if let Some(pr) = stream
                .get("retriever")
                .and_then(|rt| rt.get("partition_router"))
                .filter(|pr| pr.truthy())
            {
                let (notes, comments) = (cx.notes.list.len(), cx.comments.len());
                let upstream = router(cx, pr);
                cx.notes.list.truncate(notes);
                cx.comments.truncate(comments);
                if let Ok(up) = upstream {
                    for (f, e) in up.slice {
                        if f.starts_with("parent_slice") {
                            continue; // one level up only
                        }
                        let ours = if let Some(rest) = e.strip_prefix("parent") {
                            format!("parent_partition.parent{rest}")
                        } else if let Some(rest) = e.strip_prefix("partition") {
                            format!("parent_partition.partition{rest}")
                        } else {
                            continue;
                        };
                        r.slice.push((format!("parent_slice.{f}"), ours));
                    }
                }
            }
            r.parent = Some(pname);
            r.parent_pos = cfg.pos;
            let cvars = Vars {
                pos: cfg.pos,
                params: parameters_of(cfg),
                ..vars.clone()
            };
            let key = cfg
                .get("parent_key")
                .and_then(|n| n.scalar_text())
                .unwrap_or_default();
            let key = cx.tpl(&key, &cvars)?;
            let field = cfg
                .get("partition_field")
                .and_then(|n| n.scalar_text())
                .unwrap_or_default();
            let field = cx.tpl(&field, &cvars)?;
            if key.contains("{{") || field.contains("{{") || key.is_empty() {
                return Err(Block::new(
                    cfg.pos,
                    "templated parent_key or partition_field",
                    "parent_key or partition_field is a template",
                ));
            }
            let mut expr = String::from("parent");
            for k in key.split('/') {
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                {
                    expr.push('.');
                    expr.push_str(k);
                } else {
                    expr.push_str(&format!("[{}]", jinja::quote_str(k)));
                }
            }
            r.slice.push((field, expr.clone()));
            if let Some(extra) = cfg.get("extra_fields")
                && !extra.items().is_empty()
            {
                r.slice.push(("extra_fields".into(), "parent".into()));
                cx.approx(
                    extra.pos,
                    "`extra_fields` read the parent record's fields directly (`parent.<field>`)",
                );
            }
            if let Some(o) = cfg.get("request_option") {
                let i = request_option(cx, o, &cvars)?;
                r.inject.push((i, format!("{{{{ {expr} }}}}")));
            }
            if cfg.bool_at("incremental_dependency") == Some(true) {
                cx.info(
                    cfg.pos,
                    "`incremental_dependency`: the parent is read in full for its children",
                );
            }
            if cfg.get("lazy_read_pointer").is_some_and(|n| n.truthy()) {
                return Err(Block::new(
                    cfg.pos,
                    "lazy_read_pointer (children read from the parent's records)",
                    "lazy_read_pointer",
                ));
            }
        }
        "ListPartitionRouter" => {
            let field = node
                .get("cursor_field")
                .and_then(|n| n.scalar_text())
                .unwrap_or_default();
            let field = cx.tpl(&field, &vars)?;
            if field.contains("{{") || field.is_empty() {
                return Err(Block::new(
                    node.pos,
                    "templated list partition field",
                    "cursor_field is a template",
                ));
            }
            let values = node.get("values").ok_or_else(|| {
                Block::new(node.pos, "list partitions without values", "no `values`")
            })?;
            let template = match &values.value {
                Value::Seq(_) => {
                    let items: Vec<J> = values.items().iter().map(Node::to_json).collect();
                    format!(
                        "{{{{ {} }}}}",
                        jinja::print(&interpolation::json_expr(&J::Array(items)))
                    )
                }
                Value::Str(s) => cx.tpl(
                    s,
                    &Vars {
                        pos: values.pos,
                        ..vars.clone()
                    },
                )?,
                _ => {
                    return Err(Block::new(
                        values.pos,
                        "list partitions of a mapping",
                        "`values` is not a list",
                    ));
                }
            };
            let template = template
                .replace(" | default(none)", "")
                .replace(" | default('')", "");
            let name = snake(&field);
            r.partitions = Some(json!({"values": template, "as": name}));
            let ours = format!("partition.{name}");
            r.slice.push((field, ours.clone()));
            if let Some(o) = node.get("request_option") {
                let i = request_option(cx, o, &vars)?;
                r.inject.push((i, format!("{{{{ {ours} }}}}")));
            }
        }
        "UnionPartitionRouter" => return union(cx, node, &vars),
        t => {
            return Err(Block::unsupported(
                node,
                t,
                "partition router",
                "the partition router",
            ));
        }
    }
    Ok(r)
}

/// `UnionPartitionRouter`: the deduplicated union of its children's
/// partitions, each normalized to `partition_field`.
fn union(cx: &mut Cx, node: &Node, vars: &Vars) -> Res<Router> {
    let field = node
        .get("partition_field")
        .and_then(|n| n.scalar_text())
        .unwrap_or_default();
    let field = cx.tpl(&field, vars)?;
    if field.contains("{{") || field.is_empty() {
        return Err(Block::new(
            node.pos,
            "templated union partition field",
            "partition_field is a template",
        ));
    }
    let name = snake(&field);
    let ours = format!("partition.{name}");
    let mut out = Router::default();
    let mut values: Option<String> = None;
    let children = node
        .get("partition_routers")
        .map(|c| c.items().to_vec())
        .unwrap_or_default();
    for child in &children {
        let r = router(cx, child)?;
        if !r.inject.is_empty() {
            return Err(Block::new(
                child.pos,
                "request_option on a union's child router",
                "a child of a union router sends its partition itself",
            ));
        }
        // The child's partition must be the union's field.
        let Some((_, expr)) = r.slice.iter().find(|(f, _)| *f == field) else {
            return Err(Block::new(
                child.pos,
                "union child router without the union's partition field",
                format!("a child router does not give `{field}`"),
            ));
        };
        for (f, e) in &r.slice {
            if *f != field && !out.slice.iter().any(|(g, _)| g == f) {
                out.slice.push((f.clone(), e.clone()));
            }
        }
        out.from.extend(r.from);
        out.embedded.extend(r.embedded);
        match (&r.parent, &r.partitions) {
            (Some(p), _) => out
                .from
                .push((p.clone(), r.parent_pos, format!("{{{{ {expr} }}}}"))),
            (None, Some(p)) => {
                let Some(v) = p["values"].as_str().map(str::to_string) else {
                    continue;
                };
                values = Some(match values.take() {
                    None => v,
                    Some(prev) => {
                        // Lists of several children: concatenated.
                        let strip = |t: &str| {
                            t.trim()
                                .trim_start_matches("{{")
                                .trim_end_matches("}}")
                                .trim()
                                .to_string()
                        };
                        format!("{{{{ ({}) + ({}) }}}}", strip(&prev), strip(&v))
                    }
                });
            }
            // A nested union without lists: its parents were taken above.
            (None, None) => {}
        }
    }
    let mut p = serde_json::Map::new();
    if let Some(v) = values {
        p.insert("values".into(), J::String(v));
    }
    p.insert("as".into(), J::String(name));
    out.partitions = Some(J::Object(p));
    out.slice.insert(0, (field, ours));
    Ok(out)
}
