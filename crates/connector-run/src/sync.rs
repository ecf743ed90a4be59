//! `connector-run sync`.

use crate::cli::{Global, SyncArgs};
use crate::{
    EXIT_FAILURE, EXIT_OK, EXIT_OUTPUT_CLOSED, EXIT_SIGINT, EXIT_SIGTERM, Failure, Outcome,
    context, summary,
};
use connector_engine::destination::{DestinationOptions, schema};
use connector_engine::{Cancel, DestinationUri, Plan, StopReason, SyncOptions, SyncReport};
use std::sync::Arc;

pub fn run(global: &Global, args: SyncArgs) -> Outcome {
    let summary_to = args.summary_json.clone();
    let connector = args.connector.clone();
    let mut report = None;
    let outcome = sync(global, args, &mut report);
    let Some(to) = summary_to else {
        return outcome;
    };
    let (code, error) = match &outcome {
        Ok(code) => (*code, None),
        Err(f) => (f.code(), Some(f.to_string())),
    };
    let json = summary::json(&connector, report.as_ref(), code, error.as_deref());
    summary::write_json(&to, &json)
        .map_err(|e| Failure::usage(format!("--summary-json {}: {e}", to.display())))?;
    outcome
}

/// The sync itself; `report` gets the run's report once it has one.
fn sync(global: &Global, args: SyncArgs, report: &mut Option<SyncReport>) -> Outcome {
    crate::logging::init(global);
    let (spec_path, spec) = context::spec(global, &args.connector)?;
    let sources = context::sources(&args.config, true)?;
    let rate_limit = args
        .rate_limit
        .as_deref()
        .map(connector_spec::parse_rate)
        .transpose()
        .map_err(|e| Failure::usage(format!("--rate-limit: {e}")))?;
    if args.concurrency == Some(0) {
        return Err(Failure::usage("--concurrency must be at least 1"));
    }
    let dest_text = args
        .dest
        .clone()
        .unwrap_or_else(|| default_dest(&spec.name));
    let dest_uri = DestinationUri::parse(&dest_text)?;
    if args.summary_json.as_deref() == Some(std::path::Path::new("-"))
        && matches!(dest_uri, DestinationUri::Stdout | DestinationUri::Singer)
    {
        return Err(Failure::usage(format!(
            "--summary-json - would mix the summary into the records on stdout (--dest {dest_text}); give it a FILE"
        )));
    }
    let write_mode = args.write_mode.as_deref().map(str::parse).transpose()?;
    let plan = Plan::compile(&spec, &sources, None)?;
    if args.dry_run {
        return crate::dry_run::run(&plan, &args.streams);
    }
    let (_, selected) = connector_engine::needed_streams(&plan, &args.streams)?;
    let mut selected: Vec<String> = selected.into_iter().collect();
    selected.sort();
    // Declared schemas (`schemas/<connector>/<stream>.json` beside the
    // connectors folder) type the destination's columns.
    let schemas_base = spec_path.parent().unwrap_or(std::path::Path::new("."));
    let schemas = schema::load_declared_schemas(schemas_base, &spec.name)?;
    let dest = dest_uri.open_with(&DestinationOptions {
        connector: spec.name.clone(),
        streams: selected,
        state_file: args.state.clone(),
        write_mode,
        schemas,
    })?;
    let tape = match (&args.record, &args.replay) {
        (Some(dir), _) => Some(Arc::new(connector_engine::cassette::Tape::record(dir)?)),
        (None, Some(dir)) => Some(Arc::new(connector_engine::cassette::Tape::replay(dir)?)),
        (None, None) => None,
    };
    let live = connector_engine::stats::LiveRun::new();
    let cancel = Arc::new(Cancel::default());
    let order: Vec<String> = plan.streams.keys().cloned().collect();
    let opts = SyncOptions {
        streams: args.streams.clone(),
        limit: args.limit,
        max_pages: args.max_pages,
        concurrency: args.concurrency,
        rate_limit,
        full_refresh: args.full_refresh,
        verbose: global.verbose,
        live: Some(live.clone()),
        cancel: Some(cancel.clone()),
        tape,
    };
    let runtime = context::runtime()?;
    let progress = crate::progress::Progress::start(live, order, global.quiet);
    runtime.spawn(watch_signals(cancel));
    let result = runtime.block_on(connector_engine::sync(plan, dest, opts));
    progress.finish();
    let code = report_end(global, report.insert(result?));
    Ok(code)
}

/// Prints how a sync ended and gives its exit code.
pub(crate) fn report_end(global: &Global, report: &SyncReport) -> u8 {
    if report.stopped == Some(StopReason::OutputClosed) {
        // The reader went away (`| head`): end quietly, like other tools.
        return EXIT_OUTPUT_CLOSED;
    }
    for s in &report.streams {
        if let Some(err) = &s.error {
            eprintln!("error: {err}");
        }
    }
    if let Some(err) = &report.error {
        eprintln!("error: {err}");
    }
    if !global.quiet {
        eprint!("{}", summary::render(report));
    }
    if let Some(StopReason::Signal(name)) = &report.stopped {
        let saved: Vec<String> = report
            .streams
            .iter()
            .filter(|s| s.interrupted)
            .map(|s| format!("page {} of `{}`", s.pages, s.stream))
            .collect();
        let where_ = if saved.is_empty() {
            "state saved".to_string()
        } else {
            format!("state saved after {}", saved.join(", "))
        };
        eprintln!("interrupted by {name}; {where_}; rerun to resume");
        return if name == "SIGTERM" {
            EXIT_SIGTERM
        } else {
            EXIT_SIGINT
        };
    }
    if report.failed() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

/// SIGINT and SIGTERM stop the run at once, committing nothing half-written;
/// a second signal ends the process without waiting.
pub(crate) async fn watch_signals(cancel: Arc<Cancel>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let (name, code) = tokio::select! {
            _ = int.recv() => ("SIGINT", EXIT_SIGINT),
            _ = term.recv() => ("SIGTERM", EXIT_SIGTERM),
        };
        if cancel.is_cancelled() {
            std::process::exit(i32::from(code));
        }
        cancel.cancel(StopReason::Signal(name.to_string()));
    }
}

/// The destination when `--dest` is not given: `sqlite:./data/<connector>.db`.
pub fn default_dest(connector: &str) -> String {
    DestinationUri::default_text(connector)
}
