//! `connector-run airbyte <CONNECTOR> spec|check|discover|read`: a connector
//! as an Airbyte source. Every line on stdout is an Airbyte protocol message:
//!
//! - `spec`: SPEC, whose `connectionSpecification` is the connector's config
//!   parameters (secrets marked `airbyte_secret`).
//! - `check --config FILE`: CONNECTION_STATUS, from one page of the first
//!   stream.
//! - `discover --config FILE [--sample-pages N]`: CATALOG: each stream with
//!   its JSON Schema (the declared `schemas/<connector>/<stream>.json`, else
//!   inferred from its first N pages, see `stream_schema`), sync modes,
//!   primary key and cursor. A stream that cannot be sampled is a TRACE
//!   error and no catalog.
//! - `read --config FILE --catalog FILE [--state FILE]`: RECORD messages, a
//!   per-stream STATE message after each commit, STREAM_STATUS traces, LOG
//!   messages, and a TRACE error message per failure, carrying its cause.
//!   The configured catalog picks the streams; `full_refresh` streams ignore
//!   their saved state, and a stream without `incremental:` asked for
//!   `incremental` is read in full (with a LOG line).
//!
//! Logs become LOG messages; nothing but protocol messages reaches stdout.
//! Exit code 0, or 1 when something failed (after a TRACE error message,
//! `failure_type` `config_error` for what the user must fix).

use crate::cli::Global;
use crate::cli::{AirbyteArgs, AirbyteCommand};
use crate::protocol::{compile, failure_type, runtime, sample};
use crate::{EXIT_FAILURE, EXIT_OK};
use connector_engine::destination::{AirbyteDestination, parse_airbyte_state};
use connector_engine::{Plan, State, SyncOptions};
use connector_spec::Spec;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::{BufWriter, Stdout, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Stdout, shared by records and logs, written a whole line at a time.
#[derive(Clone)]
struct Out(Arc<Mutex<BufWriter<Stdout>>>);

impl Out {
    fn new() -> Out {
        Out(Arc::new(Mutex::new(BufWriter::with_capacity(
            256 * 1024,
            std::io::stdout(),
        ))))
    }

    fn send(&self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).unwrap_or_default();
        line.push(b'\n');
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = g.write_all(&line);
        let _ = g.flush();
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Makes one LOG message of each log event.
struct LogMaker(Out);

struct LogLine {
    out: Out,
    level: &'static str,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim();
        if !text.is_empty() {
            self.out.send(&log_message(self.level, text));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogMaker {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            out: self.0.clone(),
            level: "INFO",
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogLine {
        let level = match *meta.level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARN",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        LogLine {
            out: self.0.clone(),
            level,
            buf: Vec::new(),
        }
    }
}

fn init_logging(global: &Global, out: &Out) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "info,hyper=warn,reqwest=warn,rustls=warn,h2=warn",
        (false, _) => "debug,hyper=info,reqwest=info,rustls=info,h2=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogMaker(out.clone()))
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}

fn log_message(level: &str, message: &str) -> Value {
    json!({ "type": "LOG", "log": { "level": level, "message": message } })
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or_default()
}

/// A TRACE error message. `config_error` is the user's to fix.
fn trace_error(message: &str, internal: &str, failure_type: &str, stream: Option<&str>) -> Value {
    let mut error = json!({
        "message": message,
        "internal_message": internal,
        "failure_type": failure_type,
    });
    if let Some(s) = stream {
        error["stream_descriptor"] = json!({ "name": s });
    }
    json!({
        "type": "TRACE",
        "trace": { "type": "ERROR", "emitted_at": now_ms(), "error": error }
    })
}

/// The JSON Schema of the connector's config parameters.
pub fn connection_specification(spec: &Spec) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (i, (name, p)) in spec.config.iter().enumerate() {
        let mut prop = Map::new();
        prop.insert("type".into(), json!(p.kind.name()));
        prop.insert("title".into(), json!(name));
        if let Some(d) = &p.description {
            prop.insert("description".into(), json!(d));
        }
        if let Some(d) = &p.default {
            prop.insert("default".into(), d.clone());
        }
        if let Some(values) = &p.allowed {
            prop.insert("enum".into(), json!(values));
        }
        if p.secret {
            prop.insert("airbyte_secret".into(), json!(true));
        }
        prop.insert("order".into(), json!(i));
        props.insert(name.clone(), Value::Object(prop));
        if p.required && p.default.is_none() {
            required.push(json!(name));
        }
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": format!("{} (connector-run)", spec.name),
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": true,
    })
}

pub fn run(global: &Global, args: AirbyteArgs) -> u8 {
    let out = Out::new();
    init_logging(global, &out);
    // A connector file or an Airbyte manifest (translated on the way), as
    // every other command loads it.
    let (spec_path, spec) = match crate::context::spec(global, &args.connector) {
        Ok(x) => x,
        Err(report) => {
            out.send(&trace_error(
                &format!("cannot load connector `{}`", args.connector),
                &report.to_string(),
                "config_error",
                None,
            ));
            return EXIT_FAILURE;
        }
    };
    match args.command {
        AirbyteCommand::Spec => {
            let mut s = json!({
                "connectionSpecification": connection_specification(&spec),
                "supportsIncremental": spec.streams.values().any(|s| s.incremental.is_some()),
            });
            if let Some(url) = &spec.docs_url {
                s["documentationUrl"] = json!(url);
            }
            out.send(&json!({ "type": "SPEC", "spec": s }));
            EXIT_OK
        }
        AirbyteCommand::Check { config } => check(&out, &spec, &config),
        AirbyteCommand::Discover {
            config,
            sample_pages,
        } => discover(&out, &spec, &spec_path, &config, sample_pages),
        AirbyteCommand::Read {
            config,
            catalog,
            state,
        } => read(&out, &spec, &config, &catalog, state.as_deref()),
    }
}

fn check(out: &Out, spec: &Spec, config: &Path) -> u8 {
    let status = |ok: bool, message: String| {
        out.send(&json!({
            "type": "CONNECTION_STATUS",
            "connectionStatus": {
                "status": if ok { "SUCCEEDED" } else { "FAILED" },
                "message": message,
            }
        }));
        EXIT_OK
    };
    let plan = match compile(spec, Some(config)) {
        Ok(p) => p,
        Err(e) => return status(false, e),
    };
    let Some(first) = plan
        .streams
        .values()
        .find(|s| s.parent_streams().is_empty())
        .map(|s| s.name.clone())
    else {
        return status(false, "the connector has no root stream".into());
    };
    match sample(plan, vec![first.clone()], 1, 1) {
        Err(e) => status(false, e),
        Ok((report, _)) => match report.streams.iter().find_map(|s| s.error.clone()) {
            Some(e) => status(false, e),
            None => status(true, format!("read the first page of `{first}`")),
        },
    }
}

fn catalog_stream(plan: &Plan, name: &str, json_schema: Value) -> Option<Value> {
    let sp = plan.streams.get(name)?;
    let mut s = json!({
        "name": name,
        "json_schema": json_schema,
        "supported_sync_modes": if sp.incremental.is_some() {
            json!(["full_refresh", "incremental"])
        } else {
            json!(["full_refresh"])
        },
    });
    if let Some(inc) = &sp.incremental {
        s["source_defined_cursor"] = json!(true);
        s["default_cursor_field"] = json!(inc.field.split('.').collect::<Vec<_>>());
    }
    if !sp.primary_key.is_empty() {
        s["source_defined_primary_key"] = json!(
            sp.primary_key
                .iter()
                .map(|k| k.split('.').collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }
    Some(s)
}

fn discover(out: &Out, spec: &Spec, spec_path: &Path, config: &Path, pages: u64) -> u8 {
    let plan = match compile(spec, Some(config)) {
        Ok(p) => p,
        Err(e) => {
            out.send(&trace_error(&e, &e, "config_error", None));
            return EXIT_FAILURE;
        }
    };
    let (schemas, failures) =
        crate::protocol::stream_schemas(spec, spec_path, Some(config), &plan, pages.max(1));
    if !failures.is_empty() {
        // No catalog rather than one with schemas that would not hold.
        for (stream, e) in &failures {
            let message = match stream {
                Some(s) => format!("discover: cannot sample stream `{s}`: {e}"),
                None => format!("discover: {e}"),
            };
            out.send(&trace_error(
                &message,
                e,
                failure_type(e),
                stream.as_deref(),
            ));
        }
        return EXIT_FAILURE;
    }
    let streams: Vec<Value> = plan
        .streams
        .keys()
        .filter_map(|name| {
            let s = schemas.get(name).cloned().unwrap_or_else(|| json!({}));
            catalog_stream(&plan, name, s)
        })
        .collect();
    out.send(&json!({ "type": "CATALOG", "catalog": { "streams": streams } }));
    EXIT_OK
}

fn read(out: &Out, spec: &Spec, config: &Path, catalog: &Path, state: Option<&Path>) -> u8 {
    let fail = |message: String, kind: &str| {
        out.send(&trace_error(&message, &message, kind, None));
        EXIT_FAILURE
    };
    let plan = match compile(spec, Some(config)) {
        Ok(p) => p,
        Err(e) => return fail(e, "config_error"),
    };
    let catalog: Value = match std::fs::read_to_string(catalog)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            return fail(
                format!("catalog {}: {e}", catalog.display()),
                "config_error",
            );
        }
    };
    let mut modes: HashMap<String, String> = HashMap::new();
    let mut streams = Vec::new();
    for s in catalog
        .get("streams")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = s.pointer("/stream/name").and_then(Value::as_str) else {
            return fail(
                "catalog: a stream without stream.name".into(),
                "config_error",
            );
        };
        if !plan.streams.contains_key(name) {
            return fail(
                format!("catalog: connector `{}` has no stream `{name}`", spec.name),
                "config_error",
            );
        }
        let mut mode = s
            .get("sync_mode")
            .and_then(Value::as_str)
            .unwrap_or("full_refresh");
        if mode == "incremental" && plan.streams[name].incremental.is_none() {
            // The protocol: a source reads such a stream in full (PyAirbyte
            // asks every stream for `incremental`).
            out.send(&log_message(
                "WARN",
                &format!(
                    "stream `{name}` supports only full_refresh (it has no `incremental:`); reading it in full"
                ),
            ));
            mode = "full_refresh";
        }
        modes.insert(name.to_string(), mode.to_string());
        streams.push(name.to_string());
    }
    if streams.is_empty() {
        out.send(&log_message(
            "WARN",
            "the configured catalog selects no stream",
        ));
        return EXIT_OK;
    }
    let mut input = match state {
        None => State::default(),
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| format!("state {}: {e}", p.display()))
            .and_then(|t| {
                parse_airbyte_state(&t, &p.display().to_string()).map_err(|e| e.to_string())
            }) {
            Ok(s) => s,
            Err(e) => return fail(e, "config_error"),
        },
    };
    for (name, mode) in &modes {
        if mode != "incremental" {
            input.streams.remove(name);
        }
    }
    let dest = Box::new(AirbyteDestination::new(Box::new(out.clone()), Some(input)));
    let opts = SyncOptions {
        streams,
        ..Default::default()
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(e, "system_error"),
    };
    let report = match runtime.block_on(connector_engine::sync(plan, dest, opts)) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string(), "system_error"),
    };
    let mut code = EXIT_OK;
    for s in &report.streams {
        match &s.error {
            Some(e) => {
                out.send(&trace_error(e, e, failure_type(e), Some(&s.stream)));
                code = EXIT_FAILURE;
            }
            None if s.interrupted => {
                out.send(&AirbyteDestination::status_message(&s.stream, "INCOMPLETE"));
                code = EXIT_FAILURE;
            }
            None => out.send(&log_message(
                "INFO",
                &format!(
                    "stream {}: {} records, {} pages in {:.2}s",
                    s.stream,
                    s.records,
                    s.pages,
                    s.elapsed.as_secs_f64()
                ),
            )),
        }
    }
    code
}
