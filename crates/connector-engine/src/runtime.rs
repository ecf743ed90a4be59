//! The run-time pieces of a run, built from an immutable [`Plan`]: the HTTP
//! client (with the run's authenticator and its token cache), the run-wide
//! rate limiter, and each stream's own quota. A sync builds one; so does
//! every probe (`check`, `discover`).

use crate::error::{EngineError, Result};
use crate::http::HttpClient;
use crate::plan::Plan;
use crate::rate_limit::{Rate, RateLimiter, StreamQuota};
use std::collections::HashMap;
use std::sync::Arc;

/// How a run's limits are set, beyond the plan.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Most requests in flight (`--concurrency`); default the plan's.
    pub concurrency: Option<u32>,
    /// Replaces the plan's run-wide quota (`--rate-limit`).
    pub rate: Option<Rate>,
    /// Log verbosity (2: request headers).
    pub verbose: u8,
    /// Filled with rate-limit pauses for a progress display.
    pub live: Option<Arc<crate::stats::LiveRun>>,
    /// Records every exchange, or replays cassettes instead of the network.
    pub tape: Option<Arc<crate::cassette::Tape>>,
}

pub struct Runtime {
    pub http: Arc<HttpClient>,
    pub limiter: Arc<RateLimiter>,
    /// Most requests in flight.
    pub concurrency: u32,
    quotas: HashMap<String, Arc<StreamQuota>>,
}

impl Runtime {
    pub fn start(plan: &Plan, opts: RuntimeOptions) -> Result<Runtime> {
        let concurrency = opts.concurrency.unwrap_or(plan.max_concurrency).max(1);
        let limiter = Arc::new(
            RateLimiter::new(
                opts.rate.or(plan.rate),
                plan.burst,
                concurrency,
                plan.honor_headers.clone(),
            )
            .with_live(opts.live.clone())
            .with_custom(plan.custom_rate_headers.clone())
            .without_waits(opts.tape.as_ref().is_some_and(|t| t.is_replay())),
        );
        let client = crate::http::build_client(&plan.http).map_err(EngineError::Plan)?;
        let http = Arc::new(
            HttpClient::new(
                client,
                &plan.base_url,
                plan.auth.start(&plan.redactor, opts.tape.clone()),
                limiter.clone(),
                plan.redactor.clone(),
                opts.verbose,
                plan.http.max_response_size,
            )
            .with_tape(opts.tape.clone()),
        );
        let quotas = plan
            .streams
            .values()
            .filter_map(|sp| {
                let (rate, burst) = sp.rate?;
                Some((sp.name.clone(), Arc::new(StreamQuota::new(rate, burst)?)))
            })
            .collect();
        Ok(Runtime {
            http,
            limiter,
            concurrency,
            quotas,
        })
    }

    /// Points `plan` at the base URL its token response names (Salesforce's
    /// `instance_url`), before any request: the scheme, host and port come
    /// from there, the path from `base_url`. A no-op for other auth.
    pub async fn resolve_base_url(&self, plan: &mut Plan) -> Result<()> {
        let Some(found) = self
            .http
            .token_base_url()
            .await
            .map_err(|e| EngineError::Auth(plan.redactor.redact(&e)))?
        else {
            return Ok(());
        };
        let instance = url::Url::parse(&found).map_err(|e| {
            EngineError::Plan(format!(
                "the oauth2 token response names the base URL `{found}`, which is not a URL: {e}"
            ))
        })?;
        let mut base = instance.clone();
        let prefix = instance.path().trim_end_matches('/');
        base.set_path(&format!("{prefix}{}", plan.base_url.path()));
        base.set_query(None);
        tracing::info!("the token response names the API's base URL: {base}");
        self.http.set_origin(&base);
        plan.base_url = base;
        Ok(())
    }

    /// A stream's own quota, if it declares one.
    pub fn quota(&self, stream: &str) -> Option<Arc<StreamQuota>> {
        self.quotas.get(stream).cloned()
    }
}
