//! An in-repo mock REST API for connector-run's integration tests.
//!
//! [`MockServer::start`] binds two listeners on `127.0.0.1` (the main one and a second
//! "other origin", for cross-origin redirect tests) and serves them from a background thread
//! with its own tokio runtime, so it works the same from a plain `#[test]` that spawns the CLI
//! and from `#[tokio::test]`. Dropping the [`MockServer`] shuts it down.
//!
//! What it serves (see the crate's `README.md` for every endpoint and parameter):
//!
//! * **json-server 0.17.4** over the JSONPlaceholder fixture (`/posts`, `/comments`, `/albums`,
//!   `/photos`, `/users`, `/todos`, nested `/posts/1/comments`, …): `_start`/`_end`/`_limit`,
//!   `_page` with a `Link` header, `X-Total-Count`, field filters, `_sort`/`_order`.
//! * **A generated dataset** under `/gen/*`, one endpoint per pagination style (offset, page,
//!   0-based page, cursor in body/header/POST body, absolute/relative next links, RFC 8288
//!   `Link`, OData), all with `updated_since` (inclusive) and `updated_after` (exclusive) for
//!   incremental syncs, and mutable through
//!   [`MockServer::touch_records`] / [`MockServer::add_records`].
//! * **Bad responses** under `/bad/*` (not JSON, HTML, truncated body, wrong shape, any status,
//!   failing after n pages).
//! * **Auth** under `/auth/*` (bearer, API key in header or query, basic, custom header,
//!   OAuth 2 client credentials / refresh token via `POST /oauth/token`), and redirects.
//! * **Imitations of real APIs**: Stripe's "List all customers" (`/stripe/v1/customers`,
//!   [`STRIPE_KEY`], mutable through [`MockServer::stripe_add_customers`]), timestamps with
//!   UTC offsets (`/tz/events`, [`MockServer::tz_touch`]), Zendesk's cursor-based incremental
//!   ticket export (`/api/v2/incremental/tickets/cursor.json`, [`ZENDESK_EMAIL`] /
//!   [`ZENDESK_TOKEN`], [`MockServer::zendesk_touch`]), Slack's `conversations.list`
//!   (`/api/conversations.list`, [`SLACK_TOKEN`]), GitHub's "List repository issues"
//!   (`/repos/{owner}/{repo}/issues`, [`GITHUB_TOKEN`], [`MockServer::github_touch`]) and
//!   HubSpot's CRM search for contacts, with its 10,000 results a query
//!   (`POST /crm/v3/objects/contacts/search`, [`MockConfig::hubspot_contacts`]), and Notion's
//!   search (`POST /v1/search`, [`MockConfig::notion_pages`], [`MockServer::notion_touch`]).
//! * **Hostile servers** under `/hostile/*` (gzip bomb, endless body, absurd rate-limit waits,
//!   credentials echoed in next links and error bodies, non-object records, next links to the
//!   other origin).
//! * **Misbehaviour on demand** for data endpoints: latency, rate limiting
//!   ([`RateLimitMode`]) and seeded random faults ([`FaultConfig`]), all counted in
//!   [`Counters`]. Every request is logged ([`MockServer::requests`]).
//!
//! Responses are gzip-compressed when the request sends `Accept-Encoding: gzip` (except faults,
//! `/bad/*` and `/hostile/*`, which are sent byte for byte).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use mock_api::{HeaderStyle, MockConfig, MockServer, RateLimitMode, FaultConfig, FaultKind};
//!
//! let server = MockServer::start(
//!     MockConfig::default()
//!         .generated_records(95)
//!         .rate_limit(RateLimitMode::new(5, Duration::from_secs(1)).headers(HeaderStyle::XRateLimit))
//!         .faults(FaultConfig::first(1, vec![FaultKind::Status503])),
//! );
//! let base = server.url(); // http://127.0.0.1:PORT
//! // ... point a connector at format!("{base}/gen/cursor") and run it ...
//! assert!(server.counters().faults_of(&FaultKind::Status503) <= 1);
//! let first = &server.requests()[0];
//! assert_eq!(first.path, "/gen/cursor");
//! ```

// Handlers return `Result<_, Response>` so that `?` can answer a 400 early; the size of
// `Response` does not matter here.
#![allow(clippy::result_large_err)]

mod apis;
mod auth;
mod bad;
mod config;
mod faults;
mod generated;
mod github;
mod hostile;
mod hubspot;
mod jsonserver;
mod log;
mod notion;
mod rate_limit;
mod server;
mod slack;
mod state;
mod util;
mod zendesk;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{
    FaultConfig, FaultKind, HeaderStyle, MockConfig, RateLimitAlgorithm, RateLimitMode,
};
pub use log::{Counters, Origin, RequestRecord};

use state::Shared;

/// Bearer token accepted by `/auth/bearer`, `/auth/redirect_other` and `/auth/next_other`.
pub const TOKEN: &str = "s3cr3t-token";
/// API key for `/auth/api_key_header` (`X-API-Key`), `/auth/api_key_query` (`api_key`) and
/// `/auth/custom` (`X-Custom-Auth: Token <API_KEY>`).
pub const API_KEY: &str = "k3y-123";
/// User for `/auth/basic`.
pub const BASIC_USER: &str = "user";
/// Password for `/auth/basic`.
pub const BASIC_PASS: &str = "p4ss";
/// OAuth 2 client id for `POST /oauth/token`.
pub const CLIENT_ID: &str = "client-1";
/// OAuth 2 client secret for `POST /oauth/token`.
pub const CLIENT_SECRET: &str = "client-s3cret";
/// Refresh token accepted by `POST /oauth/token` with `grant_type=refresh_token`
/// (the first one, when [`MockConfig::oauth_rotate_refresh_tokens`] is set).
pub const REFRESH_TOKEN: &str = "refresh-abc";
/// Application key of `/auth/datadog` (`DD-APPLICATION-KEY`, with
/// `DD-API-KEY: <API_KEY>`).
pub const DD_APPLICATION_KEY: &str = "dd-app-9f8e7d6c5b4a";
/// Secret key accepted by the Stripe imitation `/stripe/v1/customers`
/// (`Authorization: Bearer <key>`, or HTTP basic with the key as user name).
pub const STRIPE_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
/// Agent e-mail of the Zendesk imitation: HTTP basic with the user name
/// `{ZENDESK_EMAIL}/token` and the password [`ZENDESK_TOKEN`].
pub const ZENDESK_EMAIL: &str = "agent@example.com";
/// API token of the Zendesk imitation (see [`ZENDESK_EMAIL`]).
pub const ZENDESK_TOKEN: &str = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv";
/// Bot token of the Slack imitation `/api/conversations.list`
/// (`Authorization: Bearer <token>`, or the `token` form field).
pub const SLACK_TOKEN: &str = "xoxb-1111111111-2222222222222-MockApiSlackBotToken0";
/// Token of the GitHub imitation `/repos/{owner}/{repo}/issues`
/// (`Authorization: Bearer <token>` or `Authorization: token <token>`).
pub const GITHUB_TOKEN: &str = "ghp_MockApiGitHubToken0000000000000000000";

/// The JSONPlaceholder fixture shipped in the repository.
pub fn default_jsonplaceholder_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/jsonplaceholder/db.json")
}

/// A running mock server. Dropping it stops both listeners.
pub struct MockServer {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("url", &self.shared.main_url)
            .field("other_origin_url", &self.shared.other_url)
            .finish()
    }
}

impl MockServer {
    /// Starts on `127.0.0.1` (ports from the config, 0 = any free port) in a background thread
    /// with its own tokio runtime. Panics if the fixture cannot be loaded or a port not bound.
    pub fn start(config: MockConfig) -> MockServer {
        match Self::try_start(config) {
            Ok(s) => s,
            Err(e) => panic!("mock-api: cannot start: {e}"),
        }
    }

    /// Like [`MockServer::start`], returning the error instead of panicking.
    pub fn try_start(config: MockConfig) -> Result<MockServer, String> {
        let db_path = config
            .jsonplaceholder
            .clone()
            .unwrap_or_else(default_jsonplaceholder_path);
        let db = jsonserver::load_db(&db_path)?;
        let bind = |port: u16| -> Result<std::net::TcpListener, String> {
            let l = std::net::TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| format!("cannot bind 127.0.0.1:{port}: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        };
        let (main, other) = (bind(config.port)?, bind(config.other_port)?);
        let url = |l: &std::net::TcpListener| -> Result<String, String> {
            Ok(format!(
                "http://{}",
                l.local_addr().map_err(|e| e.to_string())?
            ))
        };
        let shared = Arc::new(Shared {
            main_url: url(&main)?,
            other_url: url(&other)?,
            db,
            generated: generated::GenStore::new(config.generated_records),
            stripe: apis::StripeStore::new(config.stripe_customers),
            tz: apis::TzStore::new(),
            zendesk: zendesk::ZendeskStore::new(config.zendesk_tickets),
            notion: notion::NotionStore::new(config.notion_pages),
            slack: slack::SlackStore::new(config.slack_channels),
            github: github::GithubStore::new(&config.github_repos),
            log: Default::default(),
            rate: Default::default(),
            faults: faults::FaultInjector::new(&config.faults),
            tokens: Mutex::new(HashMap::new()),
            refresh_token: Mutex::new(REFRESH_TOKEN.to_string()),
            config,
        });

        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mock-api".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot build tokio runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listeners = tokio::net::TcpListener::from_std(main)
                        .and_then(|m| Ok((m, tokio::net::TcpListener::from_std(other)?)));
                    let (main, other) = match listeners {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let main_state = server::state_for(&thread_shared, Origin::Main);
                    let other_state = server::state_for(&thread_shared, Origin::Other);
                    tokio::spawn(server::serve(
                        main,
                        main_state.clone(),
                        server::main_router(main_state),
                    ));
                    tokio::spawn(server::serve(
                        other,
                        other_state.clone(),
                        server::other_router(other_state),
                    ));
                    let _ = ready_tx.send(Ok(()));
                    let _ = shutdown_rx.await;
                });
                // Drops every connection task, including ones parked in a `Slow` fault.
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(|e| format!("cannot spawn the server thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(MockServer {
                shared,
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the server thread died during start-up".into()),
        }
    }

    /// `http://127.0.0.1:PORT` of the main listener (no trailing slash).
    pub fn url(&self) -> String {
        self.shared.main_url.clone()
    }

    /// `http://127.0.0.1:PORT` of the second listener: another origin serving `/gen/*`
    /// without auth.
    pub fn other_origin_url(&self) -> String {
        self.shared.other_url.clone()
    }

    /// Every request received so far (both listeners), in order of arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.records()
    }

    /// Forgets the logged requests (counters are kept).
    pub fn clear_requests(&self) {
        self.shared.log.clear()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.log.counters()
    }

    /// Sets `updated_at` of the generated records with these ids to now (unknown ids are
    /// ignored).
    pub fn touch_records(&self, ids: &[u64]) {
        self.shared.generated.touch(ids)
    }

    /// Appends `n` generated records (next ids, `updated_at` = now).
    pub fn add_records(&self, n: usize) {
        self.shared.generated.add(n)
    }

    /// The number of generated records.
    pub fn generated_len(&self) -> usize {
        self.shared.generated.select(None).len()
    }

    /// Appends `n` Stripe customers, each created 60 s after the newest one, so they come first
    /// in `/stripe/v1/customers` (newest first).
    pub fn stripe_add_customers(&self, n: usize) {
        self.shared.stripe.add(n)
    }

    /// The number of Stripe customers.
    pub fn stripe_customers_len(&self) -> usize {
        self.shared.stripe.len()
    }

    /// Moves the `/tz/events` records with these ids to one hour after the newest instant
    /// (whole seconds), written with a `-05:00` offset (unknown ids are ignored).
    pub fn tz_touch(&self, ids: &[u64]) {
        self.shared.tz.touch(ids)
    }

    /// Updates those Zendesk tickets (unknown ids are ignored): `updated_at` and
    /// `generated_timestamp` become 60 s after the newest `generated_timestamp`, so an export
    /// continued later from a saved end-of-stream `after_cursor` returns exactly them (in id
    /// order).
    pub fn zendesk_touch(&self, ids: &[u64]) {
        self.shared.zendesk.touch(ids)
    }

    /// Notion pages `numbers` (1-based) are edited: their `last_edited_time` becomes 5 minutes
    /// after the newest, so a search sorted newest first lists them first.
    pub fn notion_touch(&self, numbers: &[u64]) {
        self.shared.notion.touch(numbers)
    }

    /// The number of Zendesk tickets.
    pub fn zendesk_tickets_len(&self) -> usize {
        self.shared.zendesk.len()
    }

    /// The number of Slack conversations.
    pub fn slack_channels_len(&self) -> usize {
        self.shared.slack.len()
    }

    /// Updates those issues (by issue `number`) of the GitHub repository `repo`
    /// (`owner/name`, case-insensitive): `updated_at` becomes 60 s after the repository's
    /// newest `updated_at`, so `since=<that instant>` (or `sort=updated`) finds exactly them.
    /// Unknown repositories and numbers are ignored.
    pub fn github_touch(&self, repo: &str, numbers: &[u64]) {
        self.shared.github.touch(repo, numbers)
    }

    /// The number of issues (pull requests included) of the GitHub repository `repo`, `None`
    /// if there is no such repository.
    pub fn github_issues_len(&self, repo: &str) -> Option<usize> {
        self.shared.github.len(repo)
    }

    /// Blocks the calling thread until the server thread ends (i.e. forever, for the binary).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
