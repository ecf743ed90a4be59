//! State shared by both listeners.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::apis::{StripeStore, TzStore};
use crate::config::MockConfig;
use crate::faults::FaultInjector;
use crate::generated::GenStore;
use crate::github::GithubStore;
use crate::log::{Origin, RequestLog};
use crate::notion::NotionStore;
use crate::rate_limit::RateLimiter;
use crate::slack::SlackStore;
use crate::zendesk::ZendeskStore;

pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    /// The json-server database (top-level key → array or object).
    pub(crate) db: Map<String, Value>,
    pub(crate) generated: GenStore,
    /// The customers of `/stripe/v1/customers`.
    pub(crate) stripe: StripeStore,
    /// The records of `/tz/events`.
    pub(crate) tz: TzStore,
    /// The tickets of `/api/v2/incremental/tickets/cursor.json`.
    pub(crate) zendesk: ZendeskStore,
    /// The pages of Notion's `/v1/search`.
    pub(crate) notion: NotionStore,
    /// The conversations of `/api/conversations.list`.
    pub(crate) slack: SlackStore,
    /// The repositories of `/repos/{owner}/{repo}/issues`.
    pub(crate) github: GithubStore,
    pub(crate) log: RequestLog,
    pub(crate) rate: RateLimiter,
    pub(crate) faults: FaultInjector,
    /// Issued OAuth access tokens and when they were issued.
    pub(crate) tokens: Mutex<HashMap<String, Instant>>,
    /// The refresh token `POST /oauth/token` accepts now (it changes with
    /// each use when refresh tokens rotate).
    pub(crate) refresh_token: Mutex<String>,
    pub(crate) main_url: String,
    pub(crate) other_url: String,
}

/// Router state: the shared state plus which listener serves the request.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) origin: Origin,
}

impl AppState {
    /// `http://127.0.0.1:PORT` of the listener serving this request.
    pub(crate) fn base_url(&self) -> &str {
        match self.origin {
            Origin::Main => &self.shared.main_url,
            Origin::Other => &self.shared.other_url,
        }
    }
}
