//! `connector-run discover CONNECTOR [STREAM...]`: samples up to `--pages`
//! pages per stream (a child stream: for the first record of its parent)
//! and prints a JSON Schema per stream inferred from the records, as one
//! JSON object keyed by stream. `--write` also stores each schema as
//! `schemas/<connector>/<stream>.json` beside the connectors folder.

use crate::cli::DiscoverArgs;
use crate::cli::Global;
use crate::context::parents_first;
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome};
use connector_engine::probe::StreamProber;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `schemas/<connector>/` in the parent of the spec's folder.
fn schema_dir(spec_path: &Path, connector: &str) -> PathBuf {
    let root = spec_path
        .parent()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new(""));
    root.join("schemas").join(connector)
}

pub fn run(global: &Global, args: &DiscoverArgs) -> Outcome {
    crate::logging::init(global);
    if args.pages == 0 {
        return Err(Failure::Usage("--pages must be at least 1".to_string()));
    }
    let loaded = crate::context::Loaded::load(global, &args.connector, &args.config, true)?;
    let (order, selected) = match connector_engine::needed_streams(&loaded.plan, &args.streams) {
        Ok(x) => x,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let order = parents_first(&loaded.plan, &order);
    let name = loaded.spec.name.clone();
    let mut prober = match StreamProber::new(loaded.plan, global.verbose) {
        Ok(p) => p,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let runtime = crate::context::runtime()?;
    runtime.block_on(prober.resolve_base_url())?;
    // First record of each stream sampled so far, for its children.
    let mut firsts: HashMap<String, Option<Value>> = HashMap::new();
    let mut schemas = Map::new();
    let mut failed = 0;
    for stream in &order {
        let parent = prober.plan().streams[stream]
            .parent_streams()
            .first()
            .map(|p| p.to_string());
        let parent_record = match &parent {
            None => None,
            Some(p) => match firsts.get(p) {
                Some(Some(r)) => Some(r.clone()),
                _ => {
                    eprintln!(
                        "error: stream `{stream}`: not sampled: its parent `{p}` gave no record"
                    );
                    failed += 1;
                    firsts.insert(stream.clone(), None);
                    continue;
                }
            },
        };
        let sample =
            runtime.block_on(prober.sample(stream, parent_record.as_ref(), args.pages, true));
        match sample {
            Ok(s) => {
                firsts.insert(stream.clone(), s.records.first().cloned());
                if selected.contains(stream) {
                    let schema = connector_engine::infer::infer(stream, &s.records);
                    schemas.insert(stream.clone(), schema);
                }
            }
            Err(e) => {
                eprintln!("error: stream `{stream}`: {}: {e}", e.url);
                failed += 1;
                firsts.insert(stream.clone(), None);
            }
        }
    }
    // In spec order, as `list` shows them.
    let ordered: Map<String, Value> = prober
        .plan()
        .streams
        .keys()
        .filter_map(|k| schemas.remove(k).map(|s| (k.clone(), s)))
        .collect();
    if args.write {
        let dir = schema_dir(&loaded.path, &name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            return Ok(EXIT_FAILURE);
        }
        for (stream, schema) in &ordered {
            let file = dir.join(format!("{stream}.json"));
            let text = serde_json::to_string_pretty(schema).unwrap_or_default() + "\n";
            if let Err(e) = std::fs::write(&file, text) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return Ok(EXIT_FAILURE);
            }
            if !global.quiet {
                eprintln!("wrote {}", file.display());
            }
        }
    }
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(ordered)).unwrap_or_default()
    );
    if failed > 0 {
        Ok(EXIT_FAILURE)
    } else {
        Ok(EXIT_OK)
    }
}
