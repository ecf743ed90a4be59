//! What the protocol commands (`airbyte`, `singer`) share: config from the
//! file the orchestrator passes, the stream schemas they announce (declared,
//! else inferred from a sample of pages: `connector_engine::destination::stream_schema`),
//! and what kind of failure an error is.

use connector_engine::destination::stream_schema::SeenTypes;
use connector_engine::destination::{Destination, StreamInfo, WriteMode, schema};
use connector_engine::{Plan, State, SyncOptions, SyncReport};
use connector_spec::Spec;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Most records sampled per stream, whatever the pages.
pub const SAMPLE_RECORDS: u64 = 1_000;

/// Collects up to `per_stream` records of each stream (discover, check).
struct Sampler {
    per_stream: usize,
    records: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
}

impl Destination for Sampler {
    fn load_state(&mut self) -> connector_engine::Result<Option<State>> {
        Ok(None)
    }
    fn open_stream(
        &mut self,
        s: &StreamInfo,
        _: WriteMode,
        _: Option<&Value>,
    ) -> connector_engine::Result<()> {
        self.records
            .lock()
            .unwrap()
            .entry(s.name.clone())
            .or_default();
        Ok(())
    }
    fn write_batch(&mut self, stream: &str, records: &[Value]) -> connector_engine::Result<()> {
        let mut g = self.records.lock().unwrap();
        let v = g.entry(stream.to_string()).or_default();
        let room = self.per_stream.saturating_sub(v.len());
        v.extend(records.iter().take(room).cloned());
        Ok(())
    }
    fn commit(&mut self, _: &mut State, _: bool) -> connector_engine::Result<()> {
        Ok(())
    }
    fn close_stream(&mut self, _: &str) -> connector_engine::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "sample".into()
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    crate::context::runtime().map_err(|f| format!("{f}"))
}

/// The plan, with config from `config` (the orchestrator's file; never the
/// environment), or the defaults alone.
pub fn compile(spec: &Spec, config: Option<&Path>) -> Result<Plan, String> {
    let args = crate::cli::ConfigArgs {
        config: config.map(Path::to_path_buf),
        sets: Vec::new(),
    };
    let sources = crate::context::sources(&args, false).map_err(|f| f.to_string())?;
    Plan::compile(spec, &sources, None).map_err(|e| e.to_string())
}

/// Samples `streams` (all when empty): up to `pages` pages per partition
/// and `per_stream` records per stream.
pub fn sample(
    plan: Plan,
    streams: Vec<String>,
    pages: u64,
    per_stream: u64,
) -> Result<(SyncReport, BTreeMap<String, Vec<Value>>), String> {
    let records = Arc::new(Mutex::new(BTreeMap::new()));
    let dest = Box::new(Sampler {
        per_stream: per_stream as usize,
        records: records.clone(),
    });
    let opts = SyncOptions {
        streams,
        limit: Some(per_stream),
        max_pages: Some(pages),
        ..Default::default()
    };
    let report = runtime()?
        .block_on(connector_engine::sync(plan, dest, opts))
        .map_err(|e| e.to_string())?;
    let records = std::mem::take(&mut *records.lock().unwrap());
    Ok((report, records))
}

/// A stream's schema inferred from sampled records (the rule in
/// `stream_schema`), as a draft-07 document that allows other fields.
pub fn inferred_schema(records: &[Value]) -> Value {
    let mut seen = SeenTypes::default();
    seen.observe(records);
    let mut s = seen.json_schema(None);
    s["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    s["additionalProperties"] = json!(true);
    s
}

/// Streams whose sample failed (`None`: the whole sample), with the error.
pub type SampleFailures = Vec<(Option<String>, String)>;

/// The schema of every stream of `plan`: the declared one
/// (`schemas/<connector>/<stream>.json`), else inferred from up to `pages`
/// pages. Streams whose sample failed before any record are returned with
/// their errors instead.
pub fn stream_schemas(
    spec: &Spec,
    spec_path: &Path,
    config: Option<&Path>,
    plan: &Plan,
    pages: u64,
) -> (BTreeMap<String, Value>, SampleFailures) {
    let base = spec_path.parent().unwrap_or(Path::new("."));
    let mut failures = Vec::new();
    let mut schemas = schema::load_declared_schemas(base, &spec.name).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        BTreeMap::new()
    });
    schemas.retain(|k, _| plan.streams.contains_key(k));
    let undeclared: Vec<String> = plan
        .streams
        .keys()
        .filter(|n| !schemas.contains_key(*n))
        .cloned()
        .collect();
    if undeclared.is_empty() {
        return (schemas, failures);
    }
    // A plan of its own for the sample: sync takes the plan (and its credentials).
    match compile(spec, config).and_then(|p| sample(p, undeclared.clone(), pages, SAMPLE_RECORDS)) {
        Ok((report, records)) => {
            for name in &undeclared {
                let recs = records.get(name).map(Vec::as_slice).unwrap_or_default();
                let error = report
                    .streams
                    .iter()
                    .find(|s| &s.stream == name)
                    .and_then(|s| s.error.clone());
                match error {
                    // Nothing read: no schema to announce.
                    Some(e) if recs.is_empty() => failures.push((Some(name.clone()), e)),
                    Some(e) => {
                        tracing::warn!(
                            "stream {name}: the sample stopped after {} records ({e}); the schema is inferred from them",
                            recs.len()
                        );
                        schemas.insert(name.clone(), inferred_schema(recs));
                    }
                    None => {
                        schemas.insert(name.clone(), inferred_schema(recs));
                    }
                }
            }
        }
        Err(e) => failures.push((None, e)),
    }
    (schemas, failures)
}

/// `config_error` for what the user must fix (credentials, a path, an
/// address nothing listens at, a host that does not resolve, bad config),
/// else `system_error`. Read from the error's text, which names the HTTP
/// status (`HTTP 404 …`) or the transport failure (`http/resolve.rs`,
/// `http/error.rs`).
pub fn failure_type(error: &str) -> &'static str {
    const USER: &[&str] = &[
        "HTTP 400",
        "HTTP 401",
        "HTTP 403",
        "HTTP 404",
        "HTTP 405",
        "HTTP 410",
        "HTTP 422",
        "Connection refused",
        "dns error",
        "config:",
        "auth:",
    ];
    if USER.iter().any(|m| error.contains(m)) {
        "config_error"
    } else {
        "system_error"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn failure_types() {
        use super::failure_type;
        assert_eq!(
            failure_type(
                "stream `a`, page 1, http://x/a: HTTP 404 (check the stream's path and the base_url); body: no"
            ),
            "config_error"
        );
        assert_eq!(
            failure_type(
                "gave up after 1 attempts; last error: connection error: tcp connect error: Connection refused (os error 111)"
            ),
            "config_error"
        );
        assert_eq!(failure_type("HTTP 500; body: x"), "system_error");
    }
}
