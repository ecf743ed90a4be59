//! `connector-run sync`.

use crate::cli::{Global, SyncArgs};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, connectors, summary};
use connector_engine::destination::{DestinationOptions, schema};
use connector_engine::{ConfigSources, DestinationUri, EngineError, Plan, SyncOptions};

pub fn run(global: &Global, args: SyncArgs) -> u8 {
    crate::logging::init(global);
    let (spec_path, spec) = match connectors::load(&global.connectors_dir, &args.connector) {
        Ok(x) => x,
        Err(report) => {
            eprintln!("{report}");
            return EXIT_USAGE;
        }
    };
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        EXIT_USAGE
    };
    let mut sources = ConfigSources {
        env: std::env::vars().collect(),
        ..Default::default()
    };
    if let Some(path) = &args.config {
        match ConfigSources::read_file(path) {
            Ok(m) => sources.file = Some(m),
            Err(e) => return usage(&e),
        }
    }
    for s in &args.sets {
        match ConfigSources::parse_set(s) {
            Ok(kv) => sources.sets.push(kv),
            Err(e) => return usage(&e),
        }
    }
    let rate_limit = match args
        .rate_limit
        .as_deref()
        .map(connector_spec::parse_rate)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => return usage(&format!("--rate-limit: {e}")),
    };
    if args.concurrency == Some(0) {
        return usage(&"--concurrency must be at least 1");
    }
    let dest_text = args
        .dest
        .clone()
        .unwrap_or_else(|| default_dest(&spec.name));
    let dest_uri = match DestinationUri::parse(&dest_text) {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    let write_mode = match args.write_mode.as_deref().map(str::parse).transpose() {
        Ok(m) => m,
        Err(e) => return usage(&e),
    };
    let plan = match Plan::compile(&spec, &sources, None) {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    if args.dry_run {
        return crate::dry_run::run(&plan, &args.streams);
    }
    let (_, selected) = match connector_engine::needed_streams(&plan, &args.streams) {
        Ok(x) => x,
        Err(e) => return usage(&e),
    };
    let mut selected: Vec<String> = selected.into_iter().collect();
    selected.sort();
    // Declared schemas (`schemas/<connector>/<stream>.json` beside the
    // connectors folder) type the destination's columns.
    let schemas_base = spec_path.parent().unwrap_or(std::path::Path::new("."));
    let schemas = match schema::load_declared_schemas(schemas_base, &spec.name) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let dest = match dest_uri.open_with(&DestinationOptions {
        connector: spec.name.clone(),
        streams: selected,
        state_file: args.state.clone(),
        write_mode,
        schemas,
    }) {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    let live = connector_engine::stats::LiveRun::new();
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
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return usage(&format!("cannot start the runtime: {e}")),
    };
    let progress = crate::progress::Progress::start(live, order, global.quiet);
    let result = runtime.block_on(connector_engine::sync(plan, dest, opts));
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e @ EngineError::Stream { .. }) | Err(e @ EngineError::Io(_)) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
        Err(e) => return usage(&e),
    };
    for s in &report.streams {
        if let Some(err) = &s.error {
            eprintln!("error: {err}");
        }
    }
    if !global.quiet {
        eprint!("{}", summary::render(&report));
    }
    if report.failed() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

/// The destination when `--dest` is not given: `sqlite:./data/<connector>.db`.
pub fn default_dest(connector: &str) -> String {
    DestinationUri::default_text(connector)
}
