//! Airbyte low-code manifests (`type: DeclarativeSource`) translated into
//! our [`Spec`], so that connector-run runs them unchanged.
//!
//! ```
//! let manifest = r#"
//! version: 6.0.0
//! type: DeclarativeSource
//! check: { type: CheckStream, stream_names: [users] }
//! streams:
//!   - type: DeclarativeStream
//!     name: users
//!     primary_key: [id]
//!     retriever:
//!       type: SimpleRetriever
//!       requester: { type: HttpRequester, url_base: "https://api.example.com/v1", path: /users }
//!       record_selector: { type: RecordSelector, extractor: { type: DpathExtractor, field_path: [data] } }
//! "#;
//! assert!(connector_spec::airbyte::is_manifest(manifest));
//! let t = connector_spec::airbyte::translate(manifest, "source-example/manifest.yaml").unwrap();
//! assert_eq!(t.spec.streams["users"].path.as_str(), "/users");
//! assert!(connector_spec::parse(&connector_spec::airbyte::to_yaml(&t), "x.yaml").is_ok());
//! ```
//!
//! The pipeline, one file per concern:
//!
//! 1. [`refs`]: parse (spanned), resolve `$ref`s and `#/…` references,
//!    add default component types, propagate `$parameters`.
//! 2. [`config`]: `spec.connection_specification` → `config`, flattened.
//! 3. Per stream: [`partitions`] and [`incremental`] first (they define what
//!    `stream_slice` holds), then [`requester`] (path, params, headers,
//!    body, retry), [`auth`], [`transforms`] (records) and [`paginator`];
//!    every template through [`interpolation`] (which uses [`jinja`]).
//! 4. The connector: `base_url` is the streams' longest common URL prefix,
//!    overridable as `config.base_url` (its default the manifest's own
//!    URL, so `--set base_url=http://127.0.0.1:PORT/` points it at a local
//!    server); the most common authenticator is the connector's; the most
//!    common pagination, records and retry blocks are hoisted.
//! 5. [`emit`] writes our YAML, which our own parser reads back: what it
//!    rejects blocks the stream it is in, so every stream left validates.
//!
//! Streams that cannot be expressed are left out and reported
//! ([`notes`]): each with its reason and the line and column in the
//! manifest.

mod auth;
mod config;
mod emit;
mod incremental;
mod interpolation;
mod jinja;
mod notes;
mod paginator;
mod partitions;
mod refs;
mod requester;
mod transforms;

pub use notes::{Blocker, Coverage, Note, NoteKind, StreamCoverage};

use crate::Spec;
use crate::node::Node;
use interpolation::{Scope, Vars};
use notes::{Block, Notes, Res};
use refs::{NodeExt, parameters_of};
use requester::Inject;
use serde_json::{Value as J, json};
use std::collections::HashMap;

/// A manifest translated.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The connector, as our parser read it back from [`to_yaml`]'s text.
    pub spec: Spec,
    /// What was approximated or blocked, and where.
    pub notes: Vec<Note>,
    /// Every stream of the manifest and whether it runs.
    pub streams: Vec<StreamCoverage>,
    yaml: String,
}

impl Translation {
    /// Streams that run (faithfully or approximately).
    pub fn running(&self) -> usize {
        self.streams
            .iter()
            .filter(|s| !matches!(s.status, Coverage::Blocked(_)))
            .count()
    }
}

/// Why a manifest could not be translated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{col}: {message}")]
pub struct TranslateError {
    pub origin: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The manifest's streams, when it was read that far: all blocked.
    pub streams: Vec<StreamCoverage>,
    /// The YAML that did not validate, if one was written.
    pub yaml: Option<String>,
}

/// Whether YAML text is an Airbyte declarative manifest: a top-level
/// `type: DeclarativeSource`, or the `version` + `check` + `streams` shape.
pub fn is_manifest(yaml_text: &str) -> bool {
    let mut has = (false, false, false);
    for line in yaml_text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((line.trim(), ""));
        let k = k.trim_matches(|c| c == '"' || c == '\'');
        match k {
            "type" if v.trim_matches(|c| c == '"' || c == '\'') == "DeclarativeSource" => {
                return true;
            }
            "version" => has.0 = true,
            "check" => has.1 = true,
            "streams" | "dynamic_streams" => has.2 = true,
            _ => {}
        }
    }
    has.0 && has.1 && has.2
}

/// The translation as native connector YAML, with a comment at each
/// approximation. It parses back to [`Translation::spec`].
pub fn to_yaml(translation: &Translation) -> String {
    translation.yaml.clone()
}

/// Translation state shared by the component translators.
pub(crate) struct Cx {
    pub config: config::ConfigMap,
    pub notes: Notes,
    /// The stream being translated, for notes.
    pub stream: Option<String>,
    /// Where in our stream the current translation writes, for comments.
    pub at: Vec<String>,
    pub comments: Vec<(Option<String>, Vec<String>, String)>,
    /// Translate a `SelectiveAuthenticator` into our `select` auth (else:
    /// one of its options).
    pub use_select: bool,
}

fn template_feature(e: &str) -> String {
    if e.contains("does not parse") {
        "template: Jinja we do not parse".into()
    } else if e.contains("no such slice field") {
        "template: a stream_slice field with no counterpart".into()
    } else if e.contains("outside the paginator") {
        "template: next_page_token outside the paginator".into()
    } else if e.starts_with("`stream_state") {
        "template: stream_state".into()
    } else {
        format!("template: {e}")
    }
}

impl Cx {
    pub fn approx(&mut self, pos: crate::Pos, what: impl Into<String>) {
        let what = what.into();
        self.comments
            .push((self.stream.clone(), self.at.clone(), what.clone()));
        let s = self.stream.clone();
        self.notes
            .push(s.as_deref(), pos, NoteKind::Approximated, what);
    }
    pub fn info(&mut self, pos: crate::Pos, what: impl Into<String>) {
        let s = self.stream.clone();
        self.notes.push(s.as_deref(), pos, NoteKind::Info, what);
    }
    /// A template rewritten; what cannot be expressed blocks.
    pub fn tpl(&mut self, src: &str, vars: &Vars) -> Res<String> {
        match interpolation::template(src, vars, &mut self.config) {
            Ok(r) => {
                for a in r.approx {
                    self.approx(vars.pos, a);
                }
                Ok(r.text)
            }
            Err(e) => Err(Block::new(vars.pos, template_feature(&e), e)),
        }
    }
    /// A condition rewritten into an expression.
    pub fn cond(&mut self, src: &str, vars: &Vars) -> Res<String> {
        match interpolation::condition(src, vars, &mut self.config) {
            Ok(r) => {
                for a in r.approx {
                    self.approx(vars.pos, a);
                }
                Ok(r.text)
            }
            Err(e) => Err(Block::new(vars.pos, template_feature(&e), e)),
        }
    }
}

/// One stream, translated but for its path.
struct Draft {
    manifest_name: String,
    name: String,
    url_base: String,
    path: String,
    path_vars: Vars,
    body: serde_json::Map<String, J>,
    auth: J,
    parent: Option<(String, crate::Pos)>,
    /// A union's parents: manifest name, position, value template.
    from: Vec<(String, crate::Pos, String)>,
    /// Parent stream definitions found in the partition router.
    embedded: Vec<(String, Node)>,
    /// A parent defined only in a router: read for its children only.
    internal: bool,
    pos: crate::Pos,
}

impl Draft {
    /// Every stream this one reads records of, with where it is named.
    fn parents(&self) -> Vec<(String, crate::Pos)> {
        let mut out: Vec<(String, crate::Pos)> = self.parent.iter().cloned().collect();
        out.extend(self.from.iter().map(|(n, p, _)| (n.clone(), *p)));
        out
    }
}

/// The first custom component (Python code) in a stream, if any.
fn find_custom(n: &Node) -> Option<(crate::Pos, String, String)> {
    if let Some(class) = n.str_at("class_name") {
        let ty = n.type_name().unwrap_or("Custom component").to_string();
        return Some((n.pos, class.to_string(), ty));
    }
    if let Some(t) = n.type_name().filter(|t| t.starts_with("Custom")) {
        return Some((n.pos, "?".into(), t.to_string()));
    }
    for (k, v) in n.entries() {
        // Schemas are not translated; a custom state migration converts a
        // saved Airbyte state, which connector-run never reads.
        // A parent stream is judged as a stream of its own: a child whose
        // parent needs Python is blocked by its parent, not custom itself.
        if matches!(
            k.name.as_str(),
            "schema_loader" | "state_migrations" | "$parameters"
        ) || (k.name == "stream" && n.type_name() == Some("ParentStreamConfig"))
        {
            continue;
        }
        if let Some(hit) = find_custom(v) {
            return Some(hit);
        }
    }
    for v in n.items() {
        if let Some(hit) = find_custom(v) {
            return Some(hit);
        }
    }
    None
}

fn set_body_field(body: &mut J, path: &[String], value: J) {
    let mut cur = body;
    for (i, k) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == path.len() {
            cur[k.as_str()] = value;
            return;
        }
        cur = cur
            .as_object_mut()
            .map(|m| m.entry(k.clone()).or_insert_with(|| json!({})))
            .unwrap_or_else(|| unreachable!());
    }
}

fn primary_key(n: Option<&Node>) -> Option<J> {
    let n = n?;
    if let Some(s) = n.as_str() {
        return (!s.is_empty()).then(|| json!(s));
    }
    let keys: Vec<String> = n
        .items()
        .iter()
        .filter_map(|k| {
            k.scalar_text().or_else(|| {
                let parts: Vec<String> = k.items().iter().filter_map(|p| p.scalar_text()).collect();
                (!parts.is_empty()).then(|| parts.join("."))
            })
        })
        .collect();
    match keys.len() {
        0 => None,
        1 => Some(json!(keys[0])),
        _ => Some(json!(keys)),
    }
}

fn stream(cx: &mut Cx, node: &Node) -> Res<Draft> {
    let node = match node.type_name().unwrap_or("DeclarativeStream") {
        "DeclarativeStream" => node,
        "StateDelegatingStream" => {
            let full = node.get("full_refresh_stream").ok_or_else(|| {
                Block::new(
                    node.pos,
                    "StateDelegatingStream without a full-refresh stream",
                    "no `full_refresh_stream`",
                )
            })?;
            cx.approx(
                node.pos,
                "StateDelegatingStream: its full-refresh stream is translated; the incremental stream it switches to once there is state is not",
            );
            full
        }
        "DynamicDeclarativeStream" => {
            return Err(Block::new(
                node.pos,
                "DynamicDeclarativeStream (streams generated at run time)",
                "a dynamic stream",
            ));
        }
        other => {
            return Err(Block::new(
                node.pos,
                format!("stream type {other}"),
                format!("the stream type {other}"),
            ));
        }
    };
    if let Some((pos, class, ty)) = find_custom(node) {
        return Err(Block::custom(pos, &class, &ty));
    }
    if node.get("state_migrations").is_some_and(|n| n.truthy()) {
        cx.info(
            node.pos,
            "state migrations are not run: connector-run keeps its own state",
        );
    }
    if node.get("schema_loader").is_some() {
        cx.info(
            node.pos,
            "the schema loader is not translated; `discover` infers the schema",
        );
    }
    let retriever = node
        .get("retriever")
        .ok_or_else(|| Block::new(node.pos, "stream without a retriever", "no `retriever`"))?;
    match retriever.type_name().unwrap_or("SimpleRetriever") {
        "SimpleRetriever" => {}
        "AsyncRetriever" => {
            return Err(Block::new(
                retriever.pos,
                "AsyncRetriever (report jobs created, polled and downloaded)",
                "an AsyncRetriever",
            ));
        }
        t => {
            return Err(Block::new(
                retriever.pos,
                format!("retriever {t}"),
                format!("the retriever {t}"),
            ));
        }
    }
    if let Some(d) = retriever.get("decoder") {
        match d.type_name().unwrap_or("JsonDecoder") {
            "JsonDecoder" => {}
            t => {
                return Err(Block::new(
                    d.pos,
                    format!("decoder {t}"),
                    format!("responses decoded by {t}; we read JSON"),
                ));
            }
        }
    }
    let requester_node = retriever.get("requester").ok_or_else(|| {
        Block::new(
            retriever.pos,
            "retriever without a requester",
            "no `requester`",
        )
    })?;
    if let Some(d) = requester_node.get("decoder") {
        match d.type_name().unwrap_or("JsonDecoder") {
            "JsonDecoder" => {}
            t => {
                return Err(Block::new(
                    d.pos,
                    format!("decoder {t}"),
                    format!("responses decoded by {t}; we read JSON"),
                ));
            }
        }
    }
    let mut body = serde_json::Map::new();
    let mut inject: Vec<(Inject, String)> = Vec::new();
    // Partitions and windows: what the slice holds.
    cx.at = vec![];
    let router = match retriever.get("partition_router") {
        Some(r) if r.truthy() => partitions::router(cx, r)?,
        _ => partitions::Router::default(),
    };
    let partitioned = router.parent.is_some() || router.partitions.is_some();
    if let Some(p) = &router.partitions {
        body.insert("partitions".into(), p.clone());
    }
    inject.extend(router.inject.iter().cloned());
    let mut slice = router.slice.clone();
    let mut cursor_field = None;
    if let Some(inc) = node.get("incremental_sync") {
        cx.at = vec!["incremental".into()];
        let i = incremental::incremental(cx, inc, partitioned)?;
        slice.extend(i.slice);
        inject.extend(i.inject);
        cursor_field = Some(i.cursor_field);
        body.insert("incremental".into(), i.json);
    }
    let mut vars = Vars::new(Scope::Request, requester_node.pos);
    vars.slice = slice;
    vars.params = parameters_of(requester_node);
    vars.cursor_field = cursor_field;
    cx.at = vec![];
    let req = requester::requester(cx, requester_node, &vars)?;
    // Records.
    let selector_node = retriever.get("record_selector").ok_or_else(|| {
        Block::new(
            retriever.pos,
            "retriever without a record selector",
            "no `record_selector`",
        )
    })?;
    cx.at = vec!["records".into()];
    let rvars = Vars {
        scope: Scope::Record,
        params: parameters_of(selector_node),
        pos: selector_node.pos,
        ..vars.clone()
    };
    let mut sel = transforms::selector(cx, selector_node, &rvars)?;
    if let Some(t) = node.get("transformations") {
        let tvars = Vars {
            params: parameters_of(node),
            ..rvars.clone()
        };
        transforms::transformations(cx, t, &mut sel.records, &tvars)?;
        if selector_node.bool_at("transform_before_filtering") == Some(true)
            && sel.records.contains_key("filter")
        {
            cx.approx(
                selector_node.pos,
                "the filter runs before the transformations (`transform_before_filtering` is set)",
            );
        }
    }
    // Pagination.
    cx.at = vec!["pagination".into()];
    let paging = paginator::paginator(
        cx,
        retriever.get("paginator"),
        &sel.keys,
        req.token_param.clone(),
    )?;
    inject.extend(paging.inject.iter().cloned());
    // Auth: connector-level, translated once per definition.
    let saved = (
        cx.stream.take(),
        std::mem::replace(&mut cx.at, vec!["auth".into()]),
    );
    let auth = match requester_node.get("authenticator") {
        Some(a) if a.truthy() => auth::authenticator(cx, a),
        _ => Ok(json!({"type": "none"})),
    };
    (cx.stream, cx.at) = saved;
    let auth = auth?;
    cx.at = vec!["retry".into()];
    let retry = match requester_node.get("error_handler") {
        Some(h) => requester::retry(cx, h)?,
        None => None,
    };
    cx.at = vec![];
    if req.post {
        body.insert("method".into(), json!("POST"));
    }
    let mut params = serde_json::Map::new();
    let mut headers = serde_json::Map::new();
    for (k, v) in &req.params {
        params.insert(k.clone(), json!(v));
    }
    for (k, v) in &req.headers {
        headers.insert(k.clone(), json!(v));
    }
    let mut req_body = req.body.clone();
    let mut form = req.form;
    for (i, v) in inject {
        match i {
            Inject::Param(p) => {
                params.insert(p, json!(v));
            }
            Inject::Header(h) => {
                headers.insert(h, json!(v));
            }
            Inject::BodyJson(path) => {
                let b = req_body.get_or_insert_with(|| json!({}));
                set_body_field(b, &path, json!(v));
            }
            Inject::BodyData(k) => {
                let b = req_body.get_or_insert_with(|| json!({}));
                form = true;
                set_body_field(b, &[k], json!(v));
            }
        }
    }
    // The paginator sets its own parameters.
    let managed: Vec<String> = {
        let p: crate::Pagination = serde_json::from_value(paging.json.clone()).map_err(|e| {
            Block::new(
                retriever.pos,
                "pagination that does not fit ours",
                e.to_string(),
            )
        })?;
        p.managed_params().iter().map(|s| s.to_string()).collect()
    };
    for m in managed {
        if params.shift_remove(&m).is_some() {
            cx.info(
                requester_node.pos,
                format!("the parameter `{m}` is the paginator's"),
            );
        }
    }
    if !params.is_empty() {
        body.insert("params".into(), J::Object(params));
    }
    if !headers.is_empty() {
        body.insert("headers".into(), J::Object(headers));
    }
    if let Some(b) = req_body {
        if !req.post {
            return Err(Block::new(
                requester_node.pos,
                "a GET request with a body",
                "a body on a GET request; ours go with POST",
            ));
        }
        body.insert("body".into(), b);
        if form {
            body.insert("body_format".into(), json!("form"));
        }
    }
    if let Some(pk) = primary_key(node.get("primary_key")) {
        body.insert("primary_key".into(), pk);
    }
    body.insert("pagination".into(), paging.json);
    body.insert("records".into(), J::Object(sel.records));
    body.insert("retry".into(), retry.unwrap_or_else(|| json!({})));
    let manifest_name = partitions::stream_name(cx, node)?;
    Ok(Draft {
        manifest_name: manifest_name.clone(),
        name: config::snake(&manifest_name),
        url_base: req.url_base,
        path: req.path,
        path_vars: vars,
        body,
        auth,
        parent: router.parent.map(|p| (p, router.parent_pos)),
        from: router.from,
        embedded: router.embedded,
        internal: false,
        pos: node.pos,
    })
}

/// Positions in `s` where a URL may be cut: after a `/`, or before `{{`,
/// outside template braces.
fn cut_points(s: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut depth = 0;
    let mut i = 0;
    while i < b.len() {
        if s[i..].starts_with("{{") || s[i..].starts_with("{%") {
            if depth == 0 {
                out.push(i);
            }
            depth += 1;
            i += 2;
            continue;
        }
        if s[i..].starts_with("}}") || s[i..].starts_with("%}") {
            depth -= 1;
            i += 2;
            continue;
        }
        if depth == 0 && b[i] == b'/' {
            out.push(i + 1);
        }
        i += 1;
    }
    out.push(s.len());
    out
}

/// The longest common prefix of the URLs, cut where a URL may be cut and
/// past the host; `None` when the URLs do not share an origin.
fn common_base(urls: &[&str]) -> Option<usize> {
    let first = urls.first()?;
    let mut n = first.len();
    for u in urls {
        n = n.min(
            first
                .bytes()
                .zip(u.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    let cut = cut_points(first)
        .into_iter()
        .filter(|&c| c <= n)
        .filter(|&c| urls.iter().all(|u| cut_points(u).contains(&c)))
        .max()?;
    let prefix = &first[..cut];
    let host_done = match prefix.find("://") {
        Some(i) => {
            let rest = &prefix[i + 3..];
            !rest.is_empty()
                && (rest.contains('/')
                    || urls.iter().all(|u| {
                        u.len() == cut || u[cut..].starts_with('/') || u[cut..].starts_with("{{")
                    }))
        }
        // A URL that is one template (`{{ config.api_url }}`): whole.
        None => prefix.starts_with("{{") || prefix.starts_with("{%"),
    };
    (host_done && cut > 0).then_some(cut)
}

/// The scheme and host of a URL template: up to the first `/` or `{{`
/// after `://`.
fn origin_of(url: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[i + 3..];
    let end = [rest.find('/'), rest.find("{{"), rest.find("{%")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    url[..i + 3 + end].to_string()
}

/// Our connector name for a manifest's origin.
fn connector_name(origin: &str) -> String {
    let path = origin.split("==").next().unwrap_or(origin);
    let mut parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let mut stem = parts
        .pop()
        .unwrap_or("airbyte")
        .trim_end_matches(".yaml")
        .trim_end_matches(".yml");
    if stem == "manifest" {
        stem = parts.pop().unwrap_or("airbyte");
    }
    let mut s = config::snake(stem);
    for p in ["airbyte_source_", "source_"] {
        if let Some(r) = s.strip_prefix(p) {
            s = r.to_string();
        }
    }
    s
}

/// Translates a manifest. `origin` names it in notes and gives the
/// connector its name (`source-zendesk/manifest.yaml` → `zendesk`).
pub fn translate(yaml_text: &str, origin: &str) -> Result<Translation, TranslateError> {
    // A spec without `select` auth rejects it as a whole: then one
    // option of each SelectiveAuthenticator, approximately.
    translate_with(yaml_text, origin, true).or_else(|_| translate_with(yaml_text, origin, false))
}

fn translate_with(
    yaml_text: &str,
    origin: &str,
    use_select: bool,
) -> Result<Translation, TranslateError> {
    let fail = |pos: crate::Pos, message: String| TranslateError {
        origin: origin.to_string(),
        line: pos.line as usize,
        col: pos.col as usize,
        message,
        streams: Vec::new(),
        yaml: None,
    };
    let root = refs::parse(yaml_text).map_err(|m| fail(crate::Pos { line: 1, col: 1 }, m))?;
    if !root.is_map() {
        return Err(fail(root.pos, "the manifest is not a mapping".into()));
    }
    let mut resolver = refs::Resolver::new(&root);
    let spec_node = match root.get("spec") {
        Some(s) => Some(resolver.resolve(s).map_err(|(p, m)| fail(p, m))?),
        None => None,
    };
    let mut cx = Cx {
        config: config::ConfigMap::from_spec(spec_node.as_ref()),
        notes: Notes::default(),
        stream: None,
        at: Vec::new(),
        comments: Vec::new(),
        use_select,
    };
    if let Some(c) = root.get("check") {
        cx.info(
            c.pos,
            "`check` is not translated: `connector-run check` requests each stream",
        );
    }
    let mut coverage: Vec<StreamCoverage> = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    let mut blocked: HashMap<String, Blocker> = HashMap::new();
    let streams = root
        .get("streams")
        .map(|s| s.items().to_vec())
        .unwrap_or_default();
    for raw in &streams {
        let node = match resolver.resolve(raw) {
            Ok(n) => refs::propagate("DeclarativeSource.streams", &n, &Vec::new()),
            Err((p, m)) => {
                let b = Block::new(p, "a reference that does not resolve", m).into_blocker();
                coverage.push(StreamCoverage {
                    name: format!("#{}", coverage.len() + 1),
                    spec_name: None,
                    status: Coverage::Blocked(b),
                });
                continue;
            }
        };
        let name = {
            let n = node
                .get("name")
                .and_then(|n| n.scalar_text())
                .unwrap_or_default();
            let mut v = Vars::new(Scope::Connection, node.pos);
            v.params = parameters_of(&node);
            interpolation::template(&n, &v, &mut config::ConfigMap::default())
                .map(|r| r.text)
                .unwrap_or(n)
        };
        let name = if name.is_empty() {
            format!("#{}", coverage.len() + 1)
        } else {
            name
        };
        cx.stream = Some(name.clone());
        let before = cx.notes.list.len();
        let comments_before = cx.comments.len();
        match stream(&mut cx, &node) {
            Ok(d) => {
                coverage.push(StreamCoverage {
                    name: name.clone(),
                    spec_name: None,
                    status: Coverage::Runs,
                });
                drafts.push(Draft {
                    manifest_name: name,
                    ..d
                });
            }
            Err(b) => {
                // Notes of a blocked stream's translation are noise.
                cx.notes.list.truncate(before);
                cx.comments.truncate(comments_before);
                let b = b.into_blocker();
                blocked.insert(name.clone(), b.clone());
                coverage.push(StreamCoverage {
                    name,
                    spec_name: None,
                    status: Coverage::Blocked(b),
                });
            }
        }
        cx.stream = None;
    }
    for d in root
        .get("dynamic_streams")
        .map(|s| s.items())
        .unwrap_or(&[])
    {
        let name = d
            .get("name")
            .and_then(|n| n.scalar_text())
            .unwrap_or_else(|| format!("dynamic #{}", coverage.len() + 1));
        let b = Block::new(
            d.pos,
            "DynamicDeclarativeStream (streams generated at run time)",
            "a dynamic stream",
        )
        .into_blocker();
        coverage.push(StreamCoverage {
            name,
            spec_name: None,
            status: Coverage::Blocked(b),
        });
    }
    let block = |coverage: &mut Vec<StreamCoverage>,
                 blocked: &mut HashMap<String, Blocker>,
                 name: &str,
                 b: Blocker| {
        if let Some(c) = coverage.iter_mut().find(|c| c.name == name) {
            c.status = Coverage::Blocked(b.clone());
        }
        blocked.insert(name.to_string(), b);
    };
    // A parent defined only inside a router is translated too, as an
    // internal stream: read for its children, not synced on its own.
    let mut tried: Vec<String> = Vec::new();
    loop {
        let names: Vec<String> = drafts.iter().map(|d| d.manifest_name.clone()).collect();
        let wanted: Vec<(String, Node)> = drafts
            .iter()
            .flat_map(|d| d.embedded.iter())
            .filter(|(n, _)| !names.contains(n) && !blocked.contains_key(n) && !tried.contains(n))
            .cloned()
            .collect();
        if wanted.is_empty() {
            break;
        }
        for (name, node) in wanted {
            if tried.contains(&name) {
                continue;
            }
            tried.push(name.clone());
            cx.stream = Some(name.clone());
            let before = cx.notes.list.len();
            let comments_before = cx.comments.len();
            let custom = find_custom(&node);
            let res = match custom {
                Some((pos, class, ty)) => Err(Block::custom(pos, &class, &ty)),
                None => stream(&mut cx, &node),
            };
            match res {
                Ok(d) => {
                    cx.info(
                        node.pos,
                        format!("stream `{name}` is defined only as a parent: `internal: true`, read for its children"),
                    );
                    drafts.push(Draft {
                        manifest_name: name,
                        internal: true,
                        ..d
                    });
                }
                Err(b) => {
                    cx.notes.list.truncate(before);
                    cx.comments.truncate(comments_before);
                    blocked.insert(name, b.into_blocker());
                }
            }
            cx.stream = None;
        }
    }
    // Parents must be translated streams.
    loop {
        let names: Vec<String> = drafts.iter().map(|d| d.manifest_name.clone()).collect();
        let mut removed = false;
        drafts.retain(|d| {
            let Some((p, pos)) = d.parents().into_iter().find(|(p, _)| !names.contains(p)) else {
                return true;
            };
            let (p, pos) = (&p, &pos);
            let b = match blocked.get(p) {
                Some(pb) => Blocker {
                    reason: format!("its parent stream `{p}` is blocked: {}", pb.reason),
                    feature: if pb.custom {
                        "parent stream that needs custom Python".into()
                    } else {
                        pb.feature.clone()
                    },
                    custom: false,
                    line: pos.line as usize,
                    col: pos.col as usize,
                },
                None => Block::new(
                    *pos,
                    "parent stream that is not a stream of the manifest",
                    format!("the parent stream `{p}` is not one of the manifest's streams"),
                )
                .into_blocker(),
            };
            block(&mut coverage, &mut blocked, &d.manifest_name, b);
            removed = true;
            false
        });
        if !removed {
            break;
        }
    }
    // Unique snake_case names.
    let mut taken: Vec<String> = Vec::new();
    for d in drafts.iter_mut() {
        let mut n = d.name.clone();
        let mut i = 2;
        while taken.contains(&n) {
            n = format!("{}_{i}", d.name);
            i += 1;
        }
        if n != d.manifest_name {
            cx.notes.push(
                Some(&d.manifest_name),
                d.pos,
                NoteKind::Info,
                format!("stream `{}` is `{n}` in our spec", d.manifest_name),
            );
        }
        d.name = n.clone();
        taken.push(n);
    }
    let by_manifest: HashMap<String, String> = drafts
        .iter()
        .map(|d| (d.manifest_name.clone(), d.name.clone()))
        .collect();
    // The connector's authenticator: the most common one.
    let auth = most_common(drafts.iter().map(|d| &d.auth))
        .cloned()
        .unwrap_or_else(|| json!({"type": "none"}));
    drafts.retain(|d| {
        if d.auth == auth {
            return true;
        }
        let b = Block::new(
            d.pos,
            "a second authenticator in one connector",
            format!(
                "its authenticator ({}) differs from the connector's ({})",
                d.auth["type"], auth["type"]
            ),
        )
        .into_blocker();
        block(&mut coverage, &mut blocked, &d.manifest_name, b);
        false
    });
    // The base URL: the longest common prefix, else the most common URL.
    let urls: Vec<&str> = drafts.iter().map(|d| d.url_base.as_str()).collect();
    let base_raw = match common_base(&urls) {
        Some(cut) => urls
            .first()
            .map(|u| u[..cut].to_string())
            .unwrap_or_default(),
        None => {
            // Several origins: the one most streams use.
            let origins: Vec<String> = urls.iter().map(|u| origin_of(u)).collect();
            let top = most_common(origins.iter()).cloned().unwrap_or_default();
            let group: Vec<&str> = urls
                .iter()
                .zip(&origins)
                .filter(|(_, o)| **o == top)
                .map(|(u, _)| *u)
                .collect();
            match common_base(&group) {
                Some(cut) => group[0][..cut].to_string(),
                None => top,
            }
        }
    };
    drafts.retain(|d| {
        if d.url_base.starts_with(&base_raw) {
            return true;
        }
        let b = Block::new(
            d.pos,
            "a second API origin in one connector",
            format!(
                "its URL `{}` is not under the connector's `{base_raw}`",
                d.url_base
            ),
        )
        .into_blocker();
        block(&mut coverage, &mut blocked, &d.manifest_name, b);
        false
    });
    // Paths: the rest of each URL and the stream's path.
    let mut streams_json = serde_json::Map::new();
    let mut parents: HashMap<String, String> = HashMap::new();
    let mut keep: Vec<Draft> = Vec::new();
    for d in drafts {
        let rest = &d.url_base[base_raw.len()..];
        let full = if d.path.is_empty() {
            rest.to_string()
        } else if rest.is_empty() {
            d.path.clone()
        } else {
            format!(
                "{}/{}",
                rest.trim_end_matches('/'),
                d.path.trim_start_matches('/')
            )
        };
        cx.stream = Some(d.manifest_name.clone());
        cx.at = vec!["path".into()];
        let path = match cx.tpl(&full, &d.path_vars) {
            Ok(p) => p,
            Err(b) => {
                block(
                    &mut coverage,
                    &mut blocked,
                    &d.manifest_name,
                    b.into_blocker(),
                );
                continue;
            }
        };
        cx.stream = None;
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let mut body = serde_json::Map::new();
        body.insert("path".into(), json!(path));
        if let Some((p, _)) = &d.parent {
            let ours = by_manifest.get(p).cloned().unwrap_or_else(|| p.clone());
            body.insert("parent".into(), json!(ours.clone()));
            parents.insert(d.name.clone(), ours);
        }
        for (k, v) in &d.body {
            body.insert(k.clone(), v.clone());
        }
        if !d.from.is_empty()
            && let Some(J::Object(p)) = body.get_mut("partitions")
        {
            let from: Vec<J> = d
                .from
                .iter()
                .map(|(m, _, value)| {
                    let ours = by_manifest.get(m).cloned().unwrap_or_else(|| m.clone());
                    json!({"stream": ours, "value": value})
                })
                .collect();
            if let Some((m, _, _)) = d.from.first() {
                parents
                    .entry(d.name.clone())
                    .or_insert_with(|| by_manifest.get(m).cloned().unwrap_or_else(|| m.clone()));
            }
            p.insert("from".into(), J::Array(from));
        }
        if d.internal {
            body.insert("internal".into(), json!(true));
        }
        streams_json.insert(d.name.clone(), J::Object(body));
        keep.push(d);
    }
    // The connector's URL, overridable from config.
    let base_vars = {
        let mut v = Vars::new(Scope::Connection, root.pos);
        if let Some(d) = keep.first() {
            v.params = d.path_vars.params.clone();
            v.pos = d.pos;
        }
        v
    };
    cx.at = vec!["base_url".into()];
    let base = match cx.tpl(&base_raw, &base_vars) {
        Ok(b) => b,
        Err(b) => {
            let reason = b.into_blocker();
            for d in &keep {
                block(
                    &mut coverage,
                    &mut blocked,
                    &d.manifest_name,
                    Blocker {
                        reason: format!("the connector's URL: {}", reason.reason),
                        ..reason.clone()
                    },
                );
            }
            streams_json.clear();
            keep.clear();
            String::new()
        }
    };
    let literal = !base.contains("{{") && !base.contains("{%");
    let base_param = if literal {
        cx.config.add(
            "base_url",
            json!({"description": "The API's base URL", "default": base}),
        )
    } else {
        cx.config.add(
            "base_url",
            json!({"description": format!("The API's base URL; default: {base}")}),
        )
    };
    if !literal && !base.is_empty() {
        cx.info(
            base_vars.pos,
            format!("config defaults are not templates: `{base_param}` has no default, and when it is not set the manifest's URL `{base}` is used"),
        );
    }
    let base_url = if literal || base.is_empty() {
        format!("{{{{ config.{base_param} }}}}")
    } else {
        format!(
            // An optional parameter left unset is `none`, which `is defined`:
            // test its truth.
            "{{% if config.{base_param} %}}{{{{ config.{base_param} }}}}{{% else %}}{base}{{% endif %}}"
        )
    };
    if base.is_empty() {
        cx.config.params.insert(
            base_param.clone(),
            json!({"description": "The API's base URL", "required": true}),
        );
    }
    // Hoist the most common blocks to the connector.
    let mut doc = serde_json::Map::new();
    doc.insert("version".into(), json!(1));
    doc.insert("name".into(), json!(connector_name(origin)));
    if let Some(d) = root.get("description").and_then(|d| d.as_str()) {
        let line = d.lines().next().unwrap_or("").trim();
        if !line.is_empty() {
            doc.insert("description".into(), json!(line));
        }
    }
    if let Some(u) = spec_node
        .as_ref()
        .and_then(|s| s.str_at("documentation_url"))
    {
        doc.insert("docs_url".into(), json!(u));
    }
    let config_json: serde_json::Map<String, J> = cx
        .config
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !config_json.is_empty() {
        doc.insert("config".into(), J::Object(config_json));
    }
    doc.insert("base_url".into(), json!(base_url));
    doc.insert("auth".into(), auth);
    for key in ["retry", "pagination", "records"] {
        let values: Vec<J> = streams_json
            .values()
            .filter_map(|s| s.get(key).cloned())
            .collect();
        let Some(top) = most_common(values.iter()).cloned() else {
            continue;
        };
        if values.iter().filter(|v| **v == top).count() < 2 && key != "retry" {
            continue;
        }
        for s in streams_json.values_mut() {
            if let J::Object(m) = s
                && m.get(key) == Some(&top)
            {
                m.shift_remove(key);
            }
        }
        if top != json!({}) {
            doc.insert(key.into(), top);
        } else if key == "retry" {
            // Streams that keep the defaults while the connector's differ.
        }
    }
    // A stream whose retry is `{}` (the defaults) while the connector's differs.
    let connector_retry = doc.contains_key("retry");
    for s in streams_json.values_mut() {
        if let J::Object(m) = s
            && m.get("retry") == Some(&json!({}))
            && !connector_retry
        {
            m.shift_remove("retry");
        }
    }
    // Validate; what our parser rejects blocks its stream.
    let header_for = |n: usize| {
        vec![
            "yaml-language-server: $schema=../schemas/connector.schema.json".to_string(),
            format!(
                "Translated from the Airbyte manifest {origin} by `connector-run import airbyte`."
            ),
            format!("{n} of the manifest's streams run here; the others are listed at the end."),
        ]
    };
    let mut doc = doc;
    let mut rounds = 0;
    let (spec, yaml) = loop {
        rounds += 1;
        doc.insert("streams".into(), J::Object(streams_json.clone()));
        let comments = comment_paths(&cx.comments, &keep);
        let running = streams_json.len();
        let footer = footer(&coverage);
        let e = emit::emit(
            &J::Object(doc.clone()),
            &comments,
            &header_for(running),
            &footer,
        );
        match crate::parse_with_warnings(&e.text, origin) {
            Ok((spec, _)) => break (spec, e.text),
            Err(diags) => {
                let mut hit = false;
                for d in diags
                    .iter()
                    .filter(|d| d.severity == crate::Severity::Error)
                {
                    let line = d.pos.line as usize;
                    let Some((name, _, _)) =
                        e.streams.iter().find(|(_, a, b)| (*a..=*b).contains(&line))
                    else {
                        continue;
                    };
                    let Some(dr) = keep.iter().find(|k| &k.name == name) else {
                        continue;
                    };
                    let b = Blocker {
                        reason: format!("our validation: {}", d.message),
                        feature: validation_feature(&d.message),
                        custom: false,
                        line: dr.pos.line as usize,
                        col: dr.pos.col as usize,
                    };
                    let mname = dr.manifest_name.clone();
                    block(&mut coverage, &mut blocked, &mname, b);
                    streams_json.shift_remove(name);
                    hit = true;
                }
                // Children of a stream that was dropped go too.
                loop {
                    let gone: Vec<String> = streams_json
                        .iter()
                        .filter(|(_, s)| {
                            let from = s
                                .pointer("/partitions/from")
                                .and_then(|f| f.as_array())
                                .into_iter()
                                .flatten()
                                .filter_map(|f| f.get("stream").and_then(|p| p.as_str()));
                            s.get("parent")
                                .and_then(|p| p.as_str())
                                .into_iter()
                                .chain(from)
                                .any(|p| !streams_json.contains_key(p))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    if gone.is_empty() {
                        break;
                    }
                    for g in gone {
                        if let Some(dr) = keep.iter().find(|k| k.name == g) {
                            let p = parents.get(&g).cloned().unwrap_or_default();
                            let pb = keep
                                .iter()
                                .find(|k| k.name == p)
                                .and_then(|k| blocked.get(&k.manifest_name))
                                .cloned();
                            let b = Blocker {
                                reason: format!("its parent stream `{p}` is blocked"),
                                feature: pb
                                    .map(|b| b.feature)
                                    .unwrap_or_else(|| "parent blocked".into()),
                                custom: false,
                                line: dr.pos.line as usize,
                                col: dr.pos.col as usize,
                            };
                            let mname = dr.manifest_name.clone();
                            block(&mut coverage, &mut blocked, &mname, b);
                        }
                        streams_json.shift_remove(&g);
                    }
                }
                if !hit || streams_json.is_empty() || rounds > 50 {
                    // A connector-level problem: nothing runs.
                    let msg = diags
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("; ");
                    for c in coverage.iter_mut() {
                        if !matches!(c.status, Coverage::Blocked(_)) {
                            c.status = Coverage::Blocked(Blocker {
                                reason: format!("our validation of the connector: {msg}"),
                                feature: diags
                                    .first()
                                    .map(|d| validation_feature(&d.message))
                                    .unwrap_or_default(),
                                custom: false,
                                line: 1,
                                col: 1,
                            });
                        }
                    }
                    let what = if streams_json.is_empty() {
                        format!("no stream of the manifest translates: {msg}")
                    } else {
                        format!("the translation does not validate: {msg}")
                    };
                    let mut err = fail(crate::Pos { line: 1, col: 1 }, what);
                    err.streams = coverage;
                    err.yaml = Some(e.text);
                    return Err(err);
                }
            }
        }
    };
    // Coverage of the streams that run.
    let connector_approx = cx
        .notes
        .list
        .iter()
        .any(|n| n.stream.is_none() && n.kind == NoteKind::Approximated);
    for c in coverage.iter_mut() {
        if matches!(c.status, Coverage::Blocked(_)) {
            continue;
        }
        c.spec_name = by_manifest.get(&c.name).cloned();
        let own = cx.notes.list.iter().any(|n| {
            n.stream.as_deref() == Some(c.name.as_str()) && n.kind == NoteKind::Approximated
        });
        c.status = if own || connector_approx {
            Coverage::Approximated
        } else {
            Coverage::Runs
        };
    }
    let mut notes = cx.notes.list;
    for (pos, kind, what) in cx.config.notes {
        notes.push(Note {
            stream: None,
            line: pos.line as usize,
            col: pos.col as usize,
            kind,
            what,
        });
    }
    for c in &coverage {
        if let Coverage::Blocked(b) = &c.status {
            notes.push(Note {
                stream: Some(c.name.clone()),
                line: b.line,
                col: b.col,
                kind: NoteKind::Blocked,
                what: b.reason.clone(),
            });
        }
    }
    // Notes of streams that ended up blocked, other than the blocker, go.
    let blocked_names: Vec<&str> = coverage
        .iter()
        .filter(|c| matches!(c.status, Coverage::Blocked(_)))
        .map(|c| c.name.as_str())
        .collect();
    notes.retain(|n| {
        n.kind == NoteKind::Blocked
            || n.stream
                .as_deref()
                .is_none_or(|s| !blocked_names.contains(&s))
    });
    notes.sort_by_key(|n| (n.line, n.col));
    Ok(Translation {
        spec,
        notes,
        streams: coverage,
        yaml,
    })
}

fn validation_feature(message: &str) -> String {
    // The message without the values in backquotes: countable.
    let mut out = String::new();
    let mut inside = false;
    for c in message.chars() {
        if c == '`' {
            inside = !inside;
            if inside {
                out.push_str("`…`");
            }
            continue;
        }
        if !inside {
            out.push(c);
        }
    }
    format!("validation: {out}")
}

fn comment_paths(
    comments: &[(Option<String>, Vec<String>, String)],
    keep: &[Draft],
) -> emit::Comments {
    let mut out: emit::Comments = Vec::new();
    for (stream, at, what) in comments {
        let path = match stream {
            None => {
                if at.is_empty() {
                    continue;
                }
                at.clone()
            }
            Some(s) => {
                let Some(d) = keep.iter().find(|d| &d.manifest_name == s) else {
                    continue;
                };
                let mut p = vec!["streams".to_string(), d.name.clone()];
                p.extend(at.iter().take(1).cloned());
                p
            }
        };
        if !out.iter().any(|(p, w)| *p == path && w == what) {
            out.push((path, what.clone()));
        }
    }
    out
}

fn footer(coverage: &[StreamCoverage]) -> Vec<String> {
    let blocked: Vec<&StreamCoverage> = coverage
        .iter()
        .filter(|c| matches!(c.status, Coverage::Blocked(_)))
        .collect();
    if blocked.is_empty() {
        return Vec::new();
    }
    let mut out = vec![format!("Not translated ({} streams):", blocked.len())];
    for c in blocked {
        if let Coverage::Blocked(b) = &c.status {
            out.push(format!(
                "  {} (manifest line {}): {}",
                c.name,
                b.line,
                b.reason.lines().next().unwrap_or("")
            ));
        }
    }
    out
}

fn most_common<'a, T: PartialEq + 'a>(items: impl Iterator<Item = &'a T>) -> Option<&'a T> {
    let mut counts: Vec<(&T, usize)> = Vec::new();
    for it in items {
        match counts.iter_mut().find(|(v, _)| *v == it) {
            Some(c) => c.1 += 1,
            None => counts.push((it, 1)),
        }
    }
    let max = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == max).map(|(v, _)| v)
}

#[cfg(test)]
mod tests;
