//! Command-line arguments: every clap type of every command, here.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "connector-run",
    // With the commit it was built from (build.rs).
    version = env!("CONNECTOR_RUN_VERSION"),
    about = "Declarative REST-API connectors: one YAML file per API"
)]
#[command(
    after_help = "Exit codes: 0 ok; 1 a stream failed (or validate found problems); 2 usage, spec, config, state or destination error, or the destination is being synced by another run (nothing fetched); 130 SIGINT and 143 SIGTERM (state saved, rerun to resume); 141 stdout closed by its reader."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Folder holding `<NAME>.yaml` connector files.
    #[arg(
        long,
        global = true,
        default_value = "connectors",
        env = "CONNECTOR_RUN_CONNECTORS_DIR"
    )]
    pub connectors_dir: PathBuf,
    /// More output: -v logs each request (status, latency, size), waits,
    /// retries and resumes; -vv adds request headers (secrets redacted).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress or summary, errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log lines as `text` (with timestamps) or `json` (one object per line:
    /// time, level, stream, message, fields).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check connector specs: structure, JSONPaths, templates, parents, durations.
    Validate(ValidateArgs),
    /// Print the JSON Schema of connector files.
    Schema,
    /// Print the spec reference (Markdown), as committed in docs/spec.md.
    Docs,
    /// Fetch every record of the given streams and write them to a destination.
    Sync(SyncArgs),
    /// Show or clear the saved state (cursors and resume positions).
    State(StateArgs),
    /// Probe an endpoint and write `connectors/NAME.yaml` for it, choices commented.
    Init(InitArgs),
    /// Sample streams' first pages and infer a JSON Schema per stream.
    Discover(DiscoverArgs),
    /// One request per stream: are base_url, credentials, paths and records right?
    Check(CheckArgs),
    /// The connectors in the connectors folder: streams and config parameters.
    List,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Run a connector as an Airbyte source: spec, check, discover, read.
    Airbyte(AirbyteArgs),
    /// Run a connector as a Singer tap, as Meltano does: --about, --discover,
    /// or a sync of the streams a --catalog selects.
    Singer(SingerArgs),
    /// Replay a connector's cassettes (`tests/cassettes/NAME/`) and compare
    /// each stream's records with the expected ones; offline.
    Test(TestArgs),
    /// Translate another tool's connector into ours: `import airbyte MANIFEST`.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// What the file is: `airbyte`, a low-code `manifest.yaml` (`type: DeclarativeSource`).
    #[arg(value_enum)]
    pub kind: ImportKind,
    /// The manifest file.
    pub manifest: PathBuf,
    /// Write the connector here. Default: stdout.
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Formats `import` reads.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Airbyte,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Connector names (resolved in the connectors folder) or paths. Default: every file there.
    #[arg(add = crate::completions::connector())]
    pub connectors: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// Streams to sync. Default: all.
    #[arg(add = crate::completions::stream())]
    pub streams: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Destination: `sqlite:PATH`, `postgres://USER:PASS@HOST:PORT/DB?schema=NAME`,
    /// `jsonl:DIR`, `csv:DIR`, `parquet:DIR`, `singer:-` or `-` (stdout).
    /// Default `sqlite:./data/<connector>.db`.
    #[arg(long, value_name = "URI")]
    pub dest: Option<String>,
    /// How records land in tables: `append`, `replace` (swap in at the end of
    /// the stream) or `merge` (upsert on the primary key). Default: merge
    /// where there is a primary key, else append for incremental streams and
    /// replace for full refresh.
    #[arg(long, value_name = "MODE", value_parser = ["append", "replace", "merge"])]
    pub write_mode: Option<String>,
    /// Stop each stream after this many records (preview).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Stop each partition after this many pages (preview).
    #[arg(long, value_name = "N")]
    pub max_pages: Option<u64>,
    /// Override the connector's request quota, e.g. `20/s`.
    #[arg(long, value_name = "RATE")]
    pub rate_limit: Option<String>,
    /// Most requests in flight at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,
    /// State file, for file and stdout destinations. Default: beside the files
    /// (`DIR/_state.json`); none for stdout; read-only for `singer:-`. Databases
    /// keep the state in their `_connector_state` table.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Ignore saved state: no resume, incremental streams start from their start value.
    #[arg(long)]
    pub full_refresh: bool,
    /// Print the first request of each stream (auth as `***`) and exit; nothing is sent.
    #[arg(long)]
    pub dry_run: bool,
    /// Write every request and response of the run to `DIR/<stream>.jsonl`
    /// (a cassette), secrets masked.
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer requests from the cassettes in DIR instead of the network;
    /// nothing waits. A request they do not hold is an error.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// Also write the run's summary as JSON to FILE (`-`: stdout), for
    /// orchestrators: status and exit code, and per stream records, pages,
    /// requests, retries, 429s, waits, elapsed, status and error. Written
    /// however the run ends, `--quiet` or not.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// The cassettes. Default: `tests/cassettes/NAME/` beside the connectors folder.
    #[arg(long, value_name = "DIR")]
    pub cassettes: Option<PathBuf>,
    /// Write each scenario's `expected/` from this run instead of comparing.
    #[arg(long)]
    pub update: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct StateArgs {
    /// `show` prints the state as JSON; `reset` clears it.
    pub action: StateAction,
    /// Connector name or path.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// Only this stream. Default: all.
    #[arg(add = crate::completions::stream())]
    pub stream: Option<String>,
    /// The destination whose state to use, as given to `sync`. Default: sync's default.
    #[arg(long, value_name = "URI")]
    pub dest: Option<String>,
    /// The state file, as given to `sync --state`.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAction {
    Show,
    Reset,
}

#[derive(Args, Debug)]
pub struct AirbyteArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    #[command(subcommand)]
    pub command: AirbyteCommand,
}

#[derive(Subcommand, Debug)]
pub enum AirbyteCommand {
    /// Print the connector specification (SPEC).
    Spec,
    /// Check the config with one page of the first stream (CONNECTION_STATUS).
    Check {
        /// Config values, a JSON object.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the catalog of streams with their JSON Schemas (CATALOG).
    Discover {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Pages sampled per stream without a declared schema.
        #[arg(long, value_name = "N", default_value_t = connector_engine::destination::stream_schema::DEFAULT_SAMPLE_PAGES)]
        sample_pages: u64,
    },
    /// Read the configured streams (RECORD, STATE, LOG, TRACE).
    Read {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The configured catalog: which streams, full_refresh or incremental.
        #[arg(long, value_name = "FILE")]
        catalog: PathBuf,
        /// State from an earlier read: a list of STREAM state messages.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct SingerArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// Print the tap's name, capabilities and settings, and exit.
    #[arg(long, conflicts_with = "discover")]
    pub about: bool,
    /// `--about`'s format: `json` (the default) or `markdown`.
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "markdown"], requires = "about")]
    pub format: Option<String>,
    /// Print the catalog (schemas, key properties, replication, metadata) and exit.
    #[arg(long)]
    pub discover: bool,
    /// Sync the streams and fields this catalog selects.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["properties", "discover"])]
    pub catalog: Option<PathBuf>,
    /// The same, under its older name.
    #[arg(long, value_name = "FILE", conflicts_with = "discover")]
    pub properties: Option<PathBuf>,
    /// Config values, a JSON (or YAML) object.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Singer state from an earlier run (`{"bookmarks": …}`), read only.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Pages sampled per stream without a declared schema, for `--discover`
    /// and before a stream's first SCHEMA.
    #[arg(long, value_name = "N", default_value_t = connector_engine::destination::stream_schema::DEFAULT_SAMPLE_PAGES)]
    pub sample_pages: u64,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// Streams to check. Default: all.
    #[arg(add = crate::completions::stream())]
    pub streams: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Where config values come from, as on `sync`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Config values from a JSON or YAML file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set a config value, `KEY=VALUE` (repeatable); wins over --config and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// Connector name (`connectors/NAME.yaml`) or path to a spec file.
    #[arg(add = crate::completions::connector())]
    pub connector: String,
    /// Streams to sample. Default: all.
    #[arg(add = crate::completions::stream())]
    pub streams: Vec<String>,
    /// Pages to sample per stream.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub pages: u64,
    /// Also write each schema to `schemas/<connector>/<stream>.json`, beside the
    /// connectors folder.
    #[arg(long)]
    pub write: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Connector name, snake_case; the file is `<connectors-dir>/NAME.yaml`.
    pub name: String,
    /// The endpoint to probe, e.g. `https://api.example.com/v1/items?status=open`.
    pub url: String,
    /// A request header, `Name: value` (repeatable). Credentials (authorization,
    /// *key*, *token*, *secret*) become secret config parameters.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A config parameter with its default, `KEY=VALUE` (repeatable); the URL and
    /// headers may use it as `{{ config.KEY }}`. `base_url=URL` sets base_url's default.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Overwrite an existing connector file.
    #[arg(long)]
    pub force: bool,
}
