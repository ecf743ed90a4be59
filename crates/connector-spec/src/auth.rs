//! Auth schemes, one `type` each. Credentials are templates over `config`
//! (`{{ config.api_token }}`): secrets never sit in the YAML itself.

use crate::{HumanDuration, Template};
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
        /// Password. Template. Default empty.
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
    },
    /// One header built from a template, e.g. `Authorization: Token {{ config.key }}`.
    CustomHeader {
        /// Header name.
        name: String,
        /// Header value. Template.
        value: Template,
    },
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
        }
    }
}
