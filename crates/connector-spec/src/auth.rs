//! Auth schemes, one `type` each. Credentials are templates over `config`
//! (`{{ config.api_token }}`): secrets never sit in the YAML itself.

use crate::{HumanDuration, JsonPath, Template};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How requests authenticate. Auth is sent only to the origin of `base_url`
/// (and of `token_url` for oauth2), never to another host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token. Template, e.g. `{{ config.api_token }}`.
        token: Template,
    },
    /// A key in a header or a query parameter.
    ApiKey {
        /// Where the key goes: `header` or `query`. Default `header`.
        #[serde(rename = "in", default)]
        location: ApiKeyLocation,
        /// Header or query parameter name, e.g. `X-API-Key` or `api_key`.
        name: String,
        /// Text put before the key, e.g. `Token ` (note the space). Default none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// The key. Template, e.g. `{{ config.api_key }}`.
        value: Template,
    },
    /// HTTP basic auth.
    Basic {
        /// User name. Template.
        username: Template,
        /// Password. Template. Default empty. A fixed text is allowed when
        /// the user name reads config (Freshdesk's API key as the user name
        /// and `X` as the password).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Template>,
    },
    /// OAuth 2.0 with a token endpoint; the access token is cached and refreshed
    /// before it expires.
    Oauth2 {
        /// `client_credentials` or `refresh_token`.
        grant_type: OAuthGrant,
        /// Token endpoint URL. Template.
        token_url: Template,
        /// Client id. Template.
        client_id: Template,
        /// Client secret. Template.
        client_secret: Template,
        /// Refresh token, for the `refresh_token` grant. Template.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token: Option<Template>,
        /// Scopes to request. Default none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scopes: Vec<String>,
        /// Refresh this long before the token expires. Default `60s`.
        #[serde(default = "default_refresh_before")]
        refresh_before: HumanDuration,
        /// Extra form fields sent to the token endpoint. Templates.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        extra_params: IndexMap<String, Template>,
        /// How the client authenticates to the token endpoint:
        /// `client_secret_post` (id and secret as form fields) or
        /// `client_secret_basic` (HTTP Basic, RFC 6749 §2.3.1). Default
        /// `client_secret_post`.
        #[serde(default, skip_serializing_if = "ClientAuth::is_post")]
        client_auth: ClientAuth,
        /// Extra headers sent to the token endpoint (and only there).
        /// Templates.
        #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
        token_headers: IndexMap<String, Template>,
        /// JSONPath to a URL in the token response whose scheme, host and
        /// port replace `base_url`'s, e.g. `$.instance_url` (Salesforce); the
        /// path of `base_url` is kept. Requests then go to that origin with
        /// the access token; the token endpoint gets only the client
        /// credentials. Default: `base_url` as written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url_path: Option<JsonPath>,
        /// A file that keeps the refresh token when the provider rotates it
        /// (a new `refresh_token` in a token response, which voids the old
        /// one): read at the start when it exists, where it wins over
        /// `refresh_token`, and replaced atomically (mode 0600) each time a
        /// new token arrives. Template, e.g. `{{ config.refresh_token_file }}`.
        /// Without it a rotated token serves the rest of the run only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token_file: Option<Template>,
    },
    /// One header built from a template, e.g. `Authorization: Token {{ config.key }}`.
    CustomHeader {
        /// Header name.
        name: String,
        /// Header value. Template.
        value: Template,
    },
    /// One of several auth blocks, picked by a value from config: e.g. a
    /// token when the user has one, else the client-credentials grant.
    Select {
        /// A template over `config` that renders to the name of one of
        /// `options`, e.g. `{{ 'token' if config.access_token else 'app' }}`
        /// (an optional parameter without a value is `none`).
        value: Template,
        /// The auth blocks, by name. Each is any auth block but `select`.
        options: IndexMap<String, Auth>,
    },
    /// Several credential headers, e.g. Datadog's `DD-API-KEY` and
    /// `DD-APPLICATION-KEY`; each is a secret, sent only to the API's origin.
    Headers {
        /// Header names and values. Templates, e.g.
        /// `DD-API-KEY: "{{ config.api_key }}"`.
        headers: IndexMap<String, Template>,
    },
}

/// How an OAuth 2.0 client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form fields of the token request.
    #[default]
    ClientSecretPost,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
}

impl ClientAuth {
    fn is_post(&self) -> bool {
        *self == ClientAuth::ClientSecretPost
    }
}

fn default_refresh_before() -> HumanDuration {
    HumanDuration::new("60s")
}

/// Where an API key is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    #[default]
    Header,
    Query,
}

/// OAuth 2.0 grant types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    ClientCredentials,
    RefreshToken,
}

impl Auth {
    /// The YAML `type` of this scheme.
    pub fn type_name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer { .. } => "bearer",
            Auth::ApiKey { .. } => "api_key",
            Auth::Basic { .. } => "basic",
            Auth::Oauth2 { .. } => "oauth2",
            Auth::CustomHeader { .. } => "custom_header",
            Auth::Headers { .. } => "headers",
            Auth::Select { .. } => "select",
        }
    }
}
