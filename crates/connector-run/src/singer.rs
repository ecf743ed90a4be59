//! `connector-run singer CONNECTOR …`: a connector as a Singer tap, with the
//! interface Meltano (and the Singer SDK's taps) have:
//!
//! - `--about [--format json|markdown]`: name, capabilities and the config
//!   settings.
//! - `--discover`: the catalog on stdout: per stream its schema (declared,
//!   else inferred from `--sample-pages N` pages), `key_properties`,
//!   `replication_method` (`INCREMENTAL` with a `replication_key`, or
//!   `FULL_TABLE`) and `metadata` (`inclusion`, `selected`,
//!   `table-key-properties`, `valid-replication-keys`, …).
//! - otherwise a sync in the Singer protocol (SCHEMA, RECORD, STATE,
//!   ACTIVATE_VERSION), of the streams and fields `--catalog FILE` (or the
//!   older `--properties FILE`) selects, or of every stream.
//!
//! `--config FILE` gives config values (JSON, as Meltano writes it; the
//! environment and defaults as for `sync`), `--state FILE` the state a target
//! handed back (read, never written).

use crate::cli::{Global, SingerArgs};
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome, context};
use connector_engine::destination::{FieldSelection, SingerDestination, schema};
use connector_engine::{Cancel, Plan, SyncOptions};
use connector_spec::Spec;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

pub fn run(global: &Global, args: SingerArgs) -> Outcome {
    crate::logging::init(global);
    let (spec_path, spec) = context::spec(global, &args.connector)?;
    if args.about {
        crate::outln!("{}", about(&spec, args.format.as_deref()));
        return Ok(EXIT_OK);
    }
    let config_args = crate::cli::ConfigArgs {
        config: args.config.clone(),
        sets: Vec::new(),
    };
    let sources = context::sources(&config_args, true)?;
    let plan = Plan::compile(&spec, &sources, None)?;
    if args.discover {
        return discover(&spec, &spec_path, &args, &plan);
    }
    sync(global, &spec, &spec_path, &args, plan)
}

/// `--about`: what Meltano's `meltano invoke --about` shows.
fn about(spec: &Spec, format: Option<&str>) -> String {
    let settings: Vec<Value> = spec
        .config
        .iter()
        .map(|(name, p)| {
            let mut s = json!({
                "name": name,
                "type": p.kind.name(),
                "required": p.required && p.default.is_none(),
                "sensitive": p.secret,
            });
            if let Some(d) = &p.description {
                s["description"] = json!(d);
            }
            if let Some(d) = &p.default {
                s["default"] = d.clone();
            }
            s
        })
        .collect();
    let about = json!({
        "name": format!("tap-{}", spec.name),
        "description": spec.description.clone().unwrap_or_else(|| format!("{} (connector-run)", spec.name)),
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": ["about", "catalog", "discover", "properties", "state"],
        "settings": settings,
        "streams": spec.streams.keys().collect::<Vec<_>>(),
    });
    if format == Some("markdown") {
        let mut md = format!("# tap-{}\n\n", spec.name);
        md.push_str("Capabilities: about, catalog, discover, properties, state\n\n## Settings\n\n| name | type | required | sensitive |\n|---|---|---|---|\n");
        for s in &settings {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                s["name"].as_str().unwrap_or_default(),
                s["type"].as_str().unwrap_or_default(),
                s["required"],
                s["sensitive"]
            ));
        }
        return md;
    }
    serde_json::to_string_pretty(&about).unwrap_or_default()
}

/// One catalog entry, everything selected.
fn catalog_entry(plan: &Plan, name: &str, mut schema: Value) -> Option<Value> {
    let sp = plan.streams.get(name)?;
    let pk: Vec<String> = sp.primary_key.clone();
    let cursor = sp.incremental.as_ref().map(|i| i.field.clone());
    let method = if cursor.is_some() {
        "INCREMENTAL"
    } else {
        "FULL_TABLE"
    };
    schema.as_object_mut()?.remove("$schema");
    let mut stream_md = json!({
        "inclusion": "available",
        "selected": true,
        "selected-by-default": true,
        "table-key-properties": pk,
        "forced-replication-method": method,
        "schema-name": name,
    });
    if let Some(c) = &cursor {
        stream_md["valid-replication-keys"] = json!([c]);
    }
    let mut metadata = vec![json!({ "breadcrumb": [], "metadata": stream_md })];
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for field in props.keys() {
            let automatic = pk.contains(field) || cursor.as_ref() == Some(field);
            metadata.push(json!({
                "breadcrumb": ["properties", field],
                "metadata": {
                    "inclusion": if automatic { "automatic" } else { "available" },
                    "selected": true,
                    "selected-by-default": true,
                },
            }));
        }
    }
    let mut entry = json!({
        "tap_stream_id": name,
        "stream": name,
        "schema": schema,
        "key_properties": pk,
        "replication_method": method,
        "metadata": metadata,
    });
    if let Some(c) = cursor {
        entry["replication_key"] = json!(c);
    }
    Some(entry)
}

fn discover(spec: &Spec, spec_path: &Path, args: &SingerArgs, plan: &Plan) -> Outcome {
    let (schemas, failures) = crate::protocol::stream_schemas(
        spec,
        spec_path,
        args.config.as_deref(),
        plan,
        args.sample_pages.max(1),
    );
    if !failures.is_empty() {
        for (stream, e) in &failures {
            match stream {
                Some(s) => eprintln!("error: discover: cannot sample stream `{s}`: {e}"),
                None => eprintln!("error: discover: {e}"),
            }
        }
        return Ok(EXIT_FAILURE);
    }
    let streams: Vec<Value> = plan
        .streams
        .keys()
        .filter_map(|name| {
            let s = schemas
                .get(name)
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            catalog_entry(plan, name, s)
        })
        .collect();
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&json!({ "streams": streams })).unwrap_or_default()
    );
    Ok(EXIT_OK)
}

/// What a catalog selects.
#[derive(Debug, Default)]
struct Selected {
    streams: Vec<String>,
    schemas: BTreeMap<String, Value>,
    fields: BTreeMap<String, FieldSelection>,
}

fn flag(md: &Value, key: &str) -> Option<bool> {
    md.get(key).and_then(Value::as_bool)
}

/// Reads a Singer catalog: a stream is selected by its `breadcrumb: []`
/// metadata (`selected`, else `selected-by-default`) or the legacy
/// `schema.selected`; a field by its `["properties", NAME]` metadata
/// (`inclusion: automatic`, `selected`, `selected-by-default`, else the
/// stream's choice). Primary key and cursor fields are always kept.
fn read_catalog(plan: &Plan, catalog: &Value, origin: &str) -> Result<Selected, Failure> {
    let mut out = Selected::default();
    let entries = catalog
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::usage(format!("catalog {origin}: no `streams` list")))?;
    for e in entries {
        let Some(name) = e
            .get("tap_stream_id")
            .or_else(|| e.get("stream"))
            .and_then(Value::as_str)
        else {
            return Err(Failure::usage(format!(
                "catalog {origin}: a stream without `tap_stream_id`"
            )));
        };
        let Some(sp) = plan.streams.get(name) else {
            return Err(Failure::usage(format!(
                "catalog {origin}: the connector has no stream `{name}`"
            )));
        };
        let md: Vec<&Value> = e
            .get("metadata")
            .and_then(Value::as_array)
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        let at = |crumb: &[&str]| {
            md.iter()
                .find(|m| {
                    m.get("breadcrumb")
                        .and_then(Value::as_array)
                        .is_some_and(|b| {
                            b.len() == crumb.len() && b.iter().zip(crumb).all(|(x, y)| x == y)
                        })
                })
                .and_then(|m| m.get("metadata"))
        };
        let top = at(&[]);
        let selected = top
            .and_then(|m| flag(m, "selected"))
            .or_else(|| e.pointer("/schema/selected").and_then(Value::as_bool))
            .or_else(|| top.and_then(|m| flag(m, "selected-by-default")))
            .unwrap_or(false);
        if !selected {
            continue;
        }
        out.streams.push(name.to_string());
        if let Some(s) = e.get("schema").filter(|s| s.get("properties").is_some()) {
            out.schemas.insert(name.to_string(), s.clone());
        }
        let mut sel = FieldSelection::default();
        for m in &md {
            let Some(b) = m.get("breadcrumb").and_then(Value::as_array) else {
                continue;
            };
            let [kind, field] = b.as_slice() else {
                continue;
            };
            let (Some("properties"), Some(field)) = (kind.as_str(), field.as_str()) else {
                continue;
            };
            let fm = m.get("metadata").cloned().unwrap_or_default();
            sel.listed.insert(field.to_string());
            let inclusion = fm.get("inclusion").and_then(Value::as_str);
            let on = match inclusion {
                Some("automatic") => true,
                Some("unsupported") => false,
                _ => flag(&fm, "selected")
                    .or_else(|| flag(&fm, "selected-by-default"))
                    .unwrap_or(true),
            };
            if on {
                sel.selected.insert(field.to_string());
            }
        }
        if !sel.listed.is_empty() {
            let always: BTreeSet<String> = sp
                .primary_key
                .iter()
                .cloned()
                .chain(sp.incremental.as_ref().map(|i| i.field.clone()))
                .collect();
            for f in always {
                sel.listed.insert(f.clone());
                sel.selected.insert(f);
            }
            out.fields.insert(name.to_string(), sel);
        }
    }
    Ok(out)
}

fn sync(global: &Global, spec: &Spec, spec_path: &Path, args: &SingerArgs, plan: Plan) -> Outcome {
    let schemas_base = spec_path.parent().unwrap_or(Path::new("."));
    let mut schemas = schema::load_declared_schemas(schemas_base, &spec.name)?;
    let catalog_file = args.catalog.as_ref().or(args.properties.as_ref());
    let selected = match catalog_file {
        None => Selected {
            streams: plan.streams.keys().cloned().collect(),
            ..Default::default()
        },
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Failure::usage(format!("catalog {}: {e}", f.display())))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::usage(format!("catalog {}: {e}", f.display())))?;
            read_catalog(&plan, &v, &f.display().to_string())?
        }
    };
    if selected.streams.is_empty() {
        tracing::warn!("the catalog selects no stream");
        return Ok(EXIT_OK);
    }
    // The catalog's schemas (what the target was told at discovery) win.
    schemas.extend(selected.schemas);
    let dest = SingerDestination::stdout(args.state.clone(), schemas)
        .with_sample_pages(args.sample_pages)
        .with_selections(selected.fields);
    let cancel = Arc::new(Cancel::default());
    let opts = SyncOptions {
        streams: selected.streams,
        verbose: global.verbose,
        cancel: Some(cancel.clone()),
        ..Default::default()
    };
    let runtime = context::runtime()?;
    runtime.spawn(crate::sync::watch_signals(cancel));
    let result = runtime.block_on(connector_engine::sync(plan, Box::new(dest), opts));
    Ok(crate::sync::report_end(global, &result?))
}
