//! `connector-run sync --dry-run`: prints the first request of each
//! selected stream (method, full URL, headers, body) as a sync would send
//! it, and sends nothing. Credentials show as `***`: auth headers and query
//! parameters by name, every other value through the plan's redactor and
//! the sensitive-name rule. A child stream's request is shown with
//! `{parent.<field>}` where a parent record's value would go.

use crate::{EXIT_OK, Failure, Outcome};
use connector_engine::Plan;
use connector_engine::probe::{Parent, credential_names, first_request};
use connector_engine::secret::{MASK, is_sensitive_name};
use std::fmt::Write;

/// The text shown for one stream.
fn show(plan: &Plan, stream: &str) -> Result<String, String> {
    let sp = &plan.streams[stream];
    let parent = if !sp.parent_streams().is_empty() {
        Parent::Placeholder
    } else {
        Parent::None
    };
    let first = first_request(plan, stream, parent).map_err(|e| e.message)?;
    let req = first.request;
    let creds = credential_names(&plan.auth);
    // Auth goes only to the API's origin, as in a sync.
    let to_api = req.url.origin() == plan.base_url.origin();
    let mut url = req.url.clone();
    if to_api && !creds.query.is_empty() {
        let mut q = url.query_pairs_mut();
        for name in &creds.query {
            q.append_pair(name, MASK);
        }
    }
    let shown_url = plan
        .redactor
        .url(&url)
        .replace("%7B", "{")
        .replace("%7D", "}");
    let mut out = String::new();
    match &sp.parent {
        None if !sp.partitions_from.is_empty() => {
            let from: Vec<String> = sp
                .parent_streams()
                .iter()
                .map(|p| format!("`{p}`"))
                .collect();
            let _ = writeln!(
                out,
                "# {stream}: one request per distinct partition of {} records (and config values); {{partition.…}} and {{parent.…}} stand for them",
                from.join(", ")
            );
        }
        Some(p) => {
            let _ = writeln!(
                out,
                "# {stream}: one request per `{p}` record; {{parent.…}} stands for its fields"
            );
        }
        None => {
            let _ = writeln!(out, "# {stream}");
        }
    }
    let _ = writeln!(out, "{} {shown_url}", req.method);
    for (k, v) in &req.headers {
        let v = if is_sensitive_name(k) {
            MASK.to_string()
        } else {
            plan.redactor.redact(v)
        };
        let _ = writeln!(out, "{k}: {v}");
    }
    if to_api {
        for name in &creds.headers {
            let _ = writeln!(out, "{name}: {MASK}");
        }
    }
    let _ = writeln!(
        out,
        "User-Agent: {}",
        plan.redactor.redact(&plan.http.user_agent)
    );
    if let Some(body) = &req.body {
        let text = if req.form {
            let _ = writeln!(out, "Content-Type: application/x-www-form-urlencoded");
            String::from_utf8_lossy(&connector_engine::http::encode_body(body, true)).into_owned()
        } else {
            let _ = writeln!(out, "Content-Type: application/json");
            serde_json::to_string_pretty(body).unwrap_or_default()
        };
        let _ = writeln!(out, "\n{}", plan.redactor.redact(&text));
    }
    Ok(out)
}

/// Prints the first request of every selected stream; sends nothing.
pub fn run(plan: &Plan, streams: &[String]) -> Outcome {
    let (order, selected) = match connector_engine::needed_streams(plan, streams) {
        Ok(x) => x,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let mut first = true;
    for stream in order.iter().filter(|s| selected.contains(*s)) {
        match show(plan, stream) {
            Ok(text) => {
                if !first {
                    crate::outln!();
                }
                first = false;
                crate::out!("{text}");
            }
            Err(e) => {
                return Err(Failure::Usage(format!("stream `{stream}`: {e}")));
            }
        }
    }
    Ok(EXIT_OK)
}
