//! `type: api_key`: a key in a header or a query parameter, with an optional prefix.

use super::StaticAuth;
use connector_spec::ApiKeyLocation;
use secrecy::{ExposeSecret, SecretString};

pub fn compile(
    location: ApiKeyLocation,
    name: &str,
    prefix: Option<&str>,
    key: SecretString,
) -> StaticAuth {
    let value = SecretString::from(format!("{}{}", prefix.unwrap_or(""), key.expose_secret()));
    match location {
        ApiKeyLocation::Header => StaticAuth {
            headers: vec![(name.into(), value)],
            query: vec![],
        },
        ApiKeyLocation::Query => StaticAuth {
            headers: vec![],
            query: vec![(name.into(), value)],
        },
    }
}
