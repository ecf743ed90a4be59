//! connector-spec: the connector spec language, YAML to typed Rust.
//!
//! The crate is pure: it reads text handed to it and returns typed values or
//! diagnostics. No network, environment, clock or file access.
//!
//! ```
//! let yaml = r#"
//! version: 1
//! name: example
//! base_url: https://api.example.com
//! streams:
//!   users:
//!     path: /users
//! "#;
//! let spec = connector_spec::parse(yaml, "example.yaml").unwrap();
//! assert_eq!(spec.streams.len(), 1);
//!
//! let errors = connector_spec::parse("version: 1\nnme: x\n", "bad.yaml").unwrap_err();
//! assert!(errors.iter().any(|d| d.message.contains("unknown field `nme`")));
//! ```

mod auth;
mod config;
mod connector;
mod diagnostic;
mod incremental;
mod meaning;
mod node;
mod pagination;
mod rate_limit;
mod records;
mod reference;
mod retry;
mod schema;
mod stream;
mod structure;
mod suggest;
mod values;

pub use auth::{ApiKeyLocation, Auth, OAuthGrant};
pub use config::{ConfigParam, ConfigType};
pub use connector::Spec;
pub use diagnostic::{Diagnostic, Pos, Severity};
pub use incremental::{CursorType, Incremental};
pub use pagination::{Pagination, StopConditions, TokenLocation};
pub use rate_limit::{RateLimit, RateLimitHeaders};
pub use records::{InvalidRecords, Records};
pub use reference::reference_markdown;
pub use retry::{Action, ResponseAction, Retry};
pub use schema::{json_schema, json_schema_text};
pub use stream::{Method, Stream};
pub use suggest::did_you_mean;
pub use values::{
    ByteSize, HumanDuration, IntOrTemplate, JsonPath, OneOrMany, Rate, RateValue, Template,
    parse_rate,
};

/// Variables every template may read.
pub const TEMPLATE_VARIABLES: &[&str] = &["config", "parent", "state", "page"];

/// Parses and checks a connector spec. `file` names the source in diagnostics.
///
/// On failure returns every problem found, each with its line and column.
pub fn parse(source: &str, file: &str) -> Result<Spec, Vec<Diagnostic>> {
    let root = node::parse_yaml(source, file).map_err(|d| vec![d])?;
    let mut diags = structure::check(&root, file);
    if !diags.is_empty() {
        return Err(diags);
    }
    let spec: Spec = match serde_json::from_value(root.to_json()) {
        Ok(spec) => spec,
        Err(e) => return Err(vec![Diagnostic::error(file, root.pos, e.to_string())]),
    };
    diags.extend(meaning::check(&spec, &root, file));
    if diags.is_empty() {
        Ok(spec)
    } else {
        Err(diags)
    }
}
