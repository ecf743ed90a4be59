//! `connector-run check CONNECTOR`: one cheap request per stream (its first
//! page, page size as the spec says, no retries) to show that base_url,
//! credentials, paths and records paths are right before a long sync.
//!
//! A child stream is checked with the first record of its parent's first
//! page (the parent is requested even when only the child was asked for);
//! when the parent failed the child is reported as failed too, and when the
//! parent had no records it is skipped.

use crate::cli::CheckArgs;
use crate::cli::Global;
use crate::context::{config_refs, how_to_set, parents_first};
use crate::{EXIT_FAILURE, EXIT_OK, Failure, Outcome};
use connector_engine::probe::{FailureKind, ProbeError, Sample, StreamProber};
use connector_spec::{Auth, Spec};
use std::collections::HashMap;

/// The templates of an auth block, to find the config keys it reads.
fn auth_templates(auth: &Auth) -> Vec<&str> {
    match auth {
        Auth::None => vec![],
        Auth::Bearer { token } => vec![token.as_str()],
        Auth::ApiKey { value, .. } => vec![value.as_str()],
        Auth::Basic { username, password } => {
            let mut v = vec![username.as_str()];
            v.extend(password.as_ref().map(|p| p.as_str()));
            v
        }
        Auth::CustomHeader { value, .. } => vec![value.as_str()],
        Auth::Headers { headers } => headers.values().map(|t| t.as_str()).collect(),
        Auth::Select { value, options } => std::iter::once(value.as_str())
            .chain(options.values().flat_map(auth_templates))
            .collect(),
        Auth::Oauth2 {
            client_id,
            client_secret,
            refresh_token,
            ..
        } => {
            let mut v = vec![client_id.as_str(), client_secret.as_str()];
            v.extend(refresh_token.as_ref().map(|t| t.as_str()));
            v
        }
    }
}

fn auth_type(auth: &Auth) -> &'static str {
    auth.type_name()
}

/// Where the user sets every config key a template reads.
fn keys_hint(spec: &Spec, templates: &[&str]) -> String {
    let keys: Vec<String> = templates.iter().flat_map(|t| config_refs(t)).collect();
    let mut seen = Vec::new();
    let parts: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let new = !seen.contains(k);
            seen.push(k.clone());
            new
        })
        .map(|k| how_to_set(spec, &k))
        .collect();
    parts.join("; ")
}

/// A hint naming what to fix for a failed first page; `base_url` is the
/// plan's, redacted.
fn hint(spec: &Spec, base_url: &str, stream: &str, e: &ProbeError) -> String {
    let base = || {
        let keys = keys_hint(spec, &[spec.base_url.as_str()]);
        if keys.is_empty() {
            format!("check base_url `{base_url}`")
        } else {
            format!("check base_url `{base_url}` (config {keys})")
        }
    };
    match e.kind {
        FailureKind::Status(s @ (401 | 403)) => {
            let what = if s == 403 {
                "the credential was refused or lacks permission"
            } else {
                "the credential is missing or wrong"
            };
            match &spec.auth {
                Auth::None => {
                    format!("{what}: the connector sends none (`auth: none`); add an `auth` block")
                }
                auth => {
                    let keys = keys_hint(spec, &auth_templates(auth));
                    let keys = if keys.is_empty() {
                        "its values are written in the spec".to_string()
                    } else {
                        format!("it comes from config {keys}")
                    };
                    format!("{what}; auth is `{}`, {keys}", auth_type(auth))
                }
            }
        }
        FailureKind::Status(404) => {
            let path = spec
                .streams
                .get(stream)
                .map(|s| s.path.as_str().to_string())
                .unwrap_or_default();
            format!(
                "the API has nothing at path `{path}`: check the stream's `path`, and {}",
                base()
            )
        }
        FailureKind::Status(429) => {
            "rate limited: lower `rate_limit.requests`, or wait and try again".into()
        }
        FailureKind::Status(s) if s >= 500 => {
            "the server failed; try again later (a sync retries these)".into()
        }
        FailureKind::Status(_) => {
            "the API refused the request: check the stream's params and headers".into()
        }
        FailureKind::Refused => format!("nothing listens there: {}", base()),
        FailureKind::Dns => format!("the host name does not resolve: {}", base()),
        FailureKind::Tls => format!(
            "the TLS handshake failed: check the server's certificate, or the scheme (http/https) of base_url; {}",
            base()
        ),
        FailureKind::Timeout => format!(
            "no answer within the spec's `timeout` ({}): the server is slow or unreachable; raise `timeout` or {}",
            spec.timeout.0,
            base()
        ),
        FailureKind::Connection => format!("the connection failed: {}", base()),
        FailureKind::Body => {
            "the response is not what the spec expects: check `records.path` against the body"
                .into()
        }
        FailureKind::Request => {
            "the request could not be built: check the stream's templates and config".into()
        }
    }
}

fn ok_line(stream: &str, s: &Sample, parent: Option<&str>) -> String {
    let n = s.records.len();
    let per = parent
        .map(|p| format!(" for the first `{p}` record"))
        .unwrap_or_default();
    format!(
        "{stream}: OK ({n} record{} on the first page{per}, {}ms)",
        if n == 1 { "" } else { "s" },
        s.elapsed.as_millis()
    )
}

/// The outcome of one stream.
enum Checked {
    Ok(Sample),
    Failed,
    Skipped,
}

pub fn run(global: &Global, args: &CheckArgs) -> Outcome {
    crate::logging::init(global);
    let loaded = crate::context::Loaded::load(global, &args.connector, &args.config, true)?;
    let spec = loaded.spec;
    let (order, selected) = match connector_engine::needed_streams(&loaded.plan, &args.streams) {
        Ok(x) => x,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let order = parents_first(&loaded.plan, &order);
    let mut prober = match StreamProber::new(loaded.plan, global.verbose) {
        Ok(p) => p,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let runtime = crate::context::runtime()?;
    runtime.block_on(prober.resolve_base_url())?;
    let base_url = prober.plan().redactor.url(&prober.plan().base_url);
    let mut results: HashMap<String, Checked> = HashMap::new();
    let mut failed = 0;
    for name in &order {
        let shown = selected.contains(name);
        let parent = prober.plan().streams[name]
            .parent_streams()
            .first()
            .map(|p| p.to_string());
        let parent_record = match parent.as_ref().map(|p| (p, results.get(p))) {
            None => None,
            Some((_, Some(Checked::Ok(s)))) if !s.records.is_empty() => Some(s.records[0].clone()),
            Some((p, Some(Checked::Ok(_)) | Some(Checked::Skipped))) => {
                if shown {
                    crate::outln!(
                        "{name}: SKIPPED (its parent `{p}` had no records on its first page)"
                    );
                }
                results.insert(name.clone(), Checked::Skipped);
                continue;
            }
            Some((p, _)) => {
                if shown {
                    failed += 1;
                    crate::outln!(
                        "{name}: FAILED (its parent `{p}` failed, so it was not requested)"
                    );
                }
                results.insert(name.clone(), Checked::Failed);
                continue;
            }
        };
        let outcome = runtime.block_on(prober.first_page(name, parent_record.as_ref()));
        match outcome {
            Ok(s) => {
                if shown {
                    crate::outln!("{}", ok_line(name, &s, parent.as_deref()));
                }
                results.insert(name.clone(), Checked::Ok(s));
            }
            Err(e) => {
                // A parent that was not asked for is reported through its child.
                failed += 1;
                let label = if shown {
                    name.clone()
                } else {
                    format!("{name} (parent of the streams asked for)")
                };
                crate::outln!("{label}: FAILED: {}: {e}", e.url);
                crate::outln!("  hint: {}", hint(&spec, &base_url, name, &e));
                results.insert(name.clone(), Checked::Failed);
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} stream{} failed the check",
            if failed == 1 { "" } else { "s" }
        );
        Ok(EXIT_FAILURE)
    } else {
        Ok(EXIT_OK)
    }
}
