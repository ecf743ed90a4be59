//! `connector-run init NAME URL`: probes an endpoint with one to three GET
//! requests and writes `connectors/NAME.yaml`, every choice (pagination,
//! records path, primary key, rate limit, auth) commented with its evidence.
//!
//! The probing itself is the engine's (`connector_engine::probe`); this
//! module decides what the responses mean and writes the spec.

mod incremental;
mod inputs;
mod paging;
mod rate;
mod records;
mod render;
mod response_state;

use crate::cli::Global;
use crate::cli::InitArgs;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Failure, Outcome};
use connector_engine::Redactor;
use connector_engine::http::HttpSettings;
use connector_engine::probe::{FailureKind, ProbeError, Prober};
use std::time::Duration;

/// One decision, with the evidence for it and what else was seen.
#[derive(Debug, Clone)]
pub struct Choice<T> {
    pub value: T,
    pub why: String,
    pub alternatives: Vec<String>,
    /// The evidence does not settle it: the comment says so.
    pub ambiguous: bool,
}

impl<T> Choice<T> {
    pub fn new(value: T, why: String) -> Self {
        Choice {
            value,
            why,
            alternatives: Vec::new(),
            ambiguous: false,
        }
    }
}

fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The stream name: the last literal path segment in snake_case, without
/// a `.json` or `.xml` extension.
fn stream_name(path: &str) -> String {
    let segment = path
        .split('/')
        .rev()
        .find(|s| !s.is_empty() && !s.contains("{{") && !s.contains("}}"))
        .unwrap_or("");
    let segment = [".json", ".xml"]
        .iter()
        .find_map(|ext| segment.strip_suffix(ext))
        .unwrap_or(segment);
    let mut name = String::new();
    for c in segment.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_');
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.to_string()
    } else {
        "records".into()
    }
}

/// A hint for a failed first request.
fn hint(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Dns => "the host name does not resolve; check the URL",
        FailureKind::Refused => "nothing listens at that address; is the server running?",
        FailureKind::Tls => {
            "the TLS handshake failed; check the certificate, or use http:// for a plain-HTTP server"
        }
        FailureKind::Timeout => "no answer in 30s; the server may be down or slow",
        FailureKind::Status(401 | 403) => {
            "pass the credentials with --header, e.g. `--header 'Authorization: Bearer …'` or `--header 'X-API-Key: …'`"
        }
        FailureKind::Status(404) => "check the path of the URL",
        _ => "init needs a URL that answers a GET with JSON",
    }
}

fn fail(e: &ProbeError) -> Outcome {
    eprintln!("error: {}: {e}", e.url);
    eprintln!("  hint: {}", hint(e.kind));
    Ok(EXIT_FAILURE)
}

pub fn run(global: &Global, args: &InitArgs) -> Outcome {
    crate::logging::init(global);
    if !is_name(&args.name) {
        return Err(Failure::Usage(format!(
            "`{}` is not a connector name: use snake_case, e.g. `my_api`",
            args.name
        )));
    }
    let path = global.connectors_dir.join(format!("{}.yaml", args.name));
    if path.exists() && !args.force {
        eprintln!(
            "error: {} exists; pass --force to overwrite it",
            path.display()
        );
        return Ok(EXIT_USAGE);
    }
    let inputs = match inputs::parse(&args.name, &args.url, &args.headers, &args.sets) {
        Ok(i) => i,
        Err(e) => {
            return Err(Failure::Usage(e.to_string()));
        }
    };
    let redactor = Redactor::from_values(inputs.secrets.clone());
    let runtime = crate::context::runtime()?;
    let settings = HttpSettings {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        user_agent: format!("connector-run/{}", env!("CARGO_PKG_VERSION")),
        max_response_size: 256 << 20,
    };
    let prober = match Prober::new(&settings, redactor.clone()) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let shown_url = redactor.url(&inputs.probe_url);
    let first = match runtime.block_on(prober.get(&inputs.probe_url, &inputs.probe_headers)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if !(200..300).contains(&first.status) {
        return fail(&ProbeError {
            kind: FailureKind::Status(first.status),
            url: shown_url,
            message: format!("HTTP {}; body: {}", first.status, first.excerpt),
        });
    }
    let Some(body) = first.json.clone() else {
        return fail(&ProbeError {
            kind: FailureKind::Body,
            url: shown_url,
            message: format!(
                "the body is not JSON (content-type {}); body starts: {}",
                first.header("content-type").unwrap_or("none"),
                first.excerpt
            ),
        });
    };

    let records = records::find(&body);
    let recs = records::records_at(&body, &records.value);
    let key = records::primary_key(&recs);
    let f = paging::First {
        url: &inputs.probe_url,
        resp: &first,
        body: &body,
        records_at: &records.value,
        records: &recs,
        key: key.value.as_deref(),
    };
    let (paging, trials) = runtime.block_on(paging::detect(&prober, &inputs.probe_headers, &f));
    let rate = rate::find(&first);
    let query: Vec<(String, String)> = inputs
        .probe_url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let taken: Vec<&str> = inputs.config.iter().map(|c| c.key.as_str()).collect();
    let incremental = incremental::find(
        &query,
        &inputs.params,
        &recs,
        &taken,
        &paging.value.managed_params(),
    );
    let bound = incremental
        .as_ref()
        .and_then(|c| c.value.as_ref())
        .map(|p| p.param.as_str());
    let kept = response_state::find(&body, &paging.value, bound, &inputs.path);
    // Named after what the body calls its records (`tickets`), else the path.
    let stream = records::entity_name(&records.value).unwrap_or_else(|| stream_name(&inputs.path));
    let text = render::render(&render::Draft {
        name: &args.name,
        stream: &stream,
        shown_url: &shown_url,
        requests: 1 + trials,
        inputs: &inputs,
        records: &records,
        key: &key,
        paging: &paging,
        rate: &rate,
        incremental: incremental.as_ref(),
        kept: &kept,
    });
    // Belt and braces: never write a spec that does not load.
    if let Err(diags) = connector_spec::parse(&text, &path.display().to_string()) {
        eprintln!("error: init produced a spec that does not validate (a bug in init):");
        for d in diags {
            eprintln!("{d}");
        }
        return Ok(EXIT_FAILURE);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return Ok(EXIT_FAILURE);
    }
    if let Err(e) = std::fs::write(&path, &text) {
        eprintln!("error: cannot write {}: {e}", path.display());
        return Ok(EXIT_FAILURE);
    }
    if !global.quiet {
        let mut more: Vec<String> = Vec::new();
        if let Some(p) = incremental.as_ref().and_then(|c| c.value.as_ref()) {
            more.push(format!(
                "incremental on `{}`, the bound sent as `{}`",
                p.cursor_field, p.param
            ));
        }
        for k in &kept {
            more.push(format!(
                "response_state `{}` from `{}` (the comment says how to send it back)",
                k.name,
                records::json_path(&k.path)
            ));
        }
        summary(
            &path, args, &stream, &inputs, &records, &key, &paging, trials, &more,
        );
    }
    Ok(EXIT_OK)
}

#[allow(clippy::too_many_arguments)]
fn summary(
    path: &std::path::Path,
    args: &InitArgs,
    stream: &str,
    inputs: &inputs::Inputs,
    records: &Choice<records::Keys>,
    key: &Choice<Option<String>>,
    paging: &Choice<connector_spec::Pagination>,
    trials: usize,
    more: &[String],
) {
    crate::outln!(
        "wrote {} ({} request{})",
        path.display(),
        1 + trials,
        if trials == 0 { "" } else { "s" }
    );
    crate::outln!(
        "  stream `{stream}`: pagination {}, records {}, primary key {}",
        paging.value.type_name(),
        records::json_path(&records.value),
        key.value.as_deref().unwrap_or("none")
    );
    let unsure: Vec<&str> = [
        ("pagination", paging.ambiguous),
        ("records", records.ambiguous),
        ("primary_key", key.ambiguous),
    ]
    .into_iter()
    .filter_map(|(n, a)| a.then_some(n))
    .collect();
    if !unsure.is_empty() {
        crate::outln!(
            "  not certain: {} (see the comments in the file)",
            unsure.join(", ")
        );
    }
    for c in inputs.config.iter().filter(|c| c.secret) {
        crate::outln!(
            "  secret `{}`: set ${} or pass `--set {}=…`",
            c.key,
            connector_engine::config::env_name(&args.name, &c.key),
            c.key
        );
    }
    for m in more {
        crate::outln!("  {m}");
    }
    crate::outln!(
        "  next: connector-run check {0} && connector-run sync {0}",
        args.name
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert_eq!(stream_name("/gen/cursor_header"), "cursor_header");
        assert_eq!(stream_name("/repos/{{ config.owner }}/issues"), "issues");
        assert_eq!(stream_name("/v1/Sales-Orders/"), "sales_orders");
        assert_eq!(stream_name("/"), "records");
        assert_eq!(stream_name("/2024"), "records");
        assert_eq!(stream_name("/api/v2/tickets.json"), "tickets");
    }
}
