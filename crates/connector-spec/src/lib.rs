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

pub mod airbyte;
mod auth;
mod config;
mod connector;
pub mod datetime;
mod diagnostic;
mod incremental;
pub mod jsonpath_text;
mod meaning;
mod node;
mod pagination;
mod rate_limit;
mod records;
mod reference;
mod render_check;
mod retry;
mod schema;
mod stream;
mod structure;
mod suggest;
pub mod template_functions;
mod values;

pub use auth::{ApiKeyLocation, Auth, ClientAuth, OAuthGrant};
pub use config::{ConfigParam, ConfigType};
pub use connector::Spec;
pub use diagnostic::{Diagnostic, Pos, Severity};
pub use incremental::{CursorType, Incremental, Windows};
pub use pagination::{Pagination, StopConditions, TokenLocation};
pub use rate_limit::{CustomRateHeaders, RateLimit, RateLimitHeaders};
pub use records::{Expand, InvalidRecords, Records, Transform};
pub use reference::reference_markdown;
pub use retry::{Action, ResponseAction, Retry};
pub use schema::{json_schema, json_schema_text};
pub use stream::{BodyFormat, Method, PartitionSource, Partitions, Stream};
pub use suggest::did_you_mean;
pub use values::{
    ByteSize, HumanDuration, IntOrTemplate, JsonPath, OneOrMany, Rate, RateValue, Template,
    parse_rate,
};

/// Variables every template may read.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "config",
    "parent",
    "parent_partition",
    "state",
    "page",
    "partition",
    "window",
];

/// Decodes a spec file's bytes: UTF-8, with or without a BOM. A UTF-16 or
/// UTF-32 file, or bytes that are not UTF-8, get a diagnostic at the line and
/// column of the first bad byte.
pub fn decode(bytes: &[u8], file: &str) -> Result<String, Diagnostic> {
    let boms: [(&[u8], &str); 4] = [
        (&[0x00, 0x00, 0xFE, 0xFF], "UTF-32 (big-endian)"),
        (&[0xFF, 0xFE, 0x00, 0x00], "UTF-32 (little-endian)"),
        (&[0xFE, 0xFF], "UTF-16 (big-endian)"),
        (&[0xFF, 0xFE], "UTF-16 (little-endian)"),
    ];
    for (bom, name) in boms {
        if bytes.starts_with(bom) {
            return Err(Diagnostic::error(
                file,
                Pos { line: 1, col: 1 },
                format!("the file is {name} (it starts with a byte-order mark); connector files are UTF-8"),
            )
            .with_hint("save it as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8`"));
        }
    }
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let good = &body[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() as u32 + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let col = std::str::from_utf8(&good[line_start..])
                .map(|l| l.chars().count())
                .unwrap_or(0) as u32
                + 1;
            Err(Diagnostic::error(
                file,
                Pos { line, col },
                format!(
                    "the file is not UTF-8: byte 0x{:02X} at offset {} is not valid UTF-8",
                    body[e.valid_up_to()],
                    e.valid_up_to() + (bytes.len() - body.len())
                ),
            )
            .with_hint("save the file as UTF-8 (Latin-1 `é` is one byte; in UTF-8 it is two)"))
        }
    }
}

/// Parses and checks a connector spec. `file` names the source in diagnostics.
///
/// On failure returns every problem found, each with its line and column.
/// Warnings do not fail; [`parse_with_warnings`] returns them too.
pub fn parse(source: &str, file: &str) -> Result<Spec, Vec<Diagnostic>> {
    parse_with_warnings(source, file).map(|(spec, _)| spec)
}

/// Like [`parse`], also returning the warnings of a spec that is valid.
pub fn parse_with_warnings(
    source: &str,
    file: &str,
) -> Result<(Spec, Vec<Diagnostic>), Vec<Diagnostic>> {
    let root = node::parse_yaml(source, file).map_err(|d| vec![d])?;
    let (mut diags, bad) = structure::check_with_paths(&root, file);
    if !diags.is_empty() {
        // Report in one pass: what is structurally sound is also checked
        // for meaning, so fixing one problem does not reveal the next.
        let partial = structure::prune(root.to_json(), &bad)
            // With every stream gone there is little left to judge.
            .filter(|p| !p.streams.is_empty());
        if let Some(partial) = partial {
            let shown: Vec<Pos> = diags.iter().map(|d| d.pos).collect();
            diags.extend(
                meaning::check(&partial, &root, file)
                    .into_iter()
                    .filter(|d| d.severity == Severity::Error && !shown.contains(&d.pos)),
            );
            diags.sort_by_key(|d| d.pos);
        }
        return Err(diags);
    }
    let spec: Spec = match serde_json::from_value(root.to_json()) {
        Ok(spec) => spec,
        Err(e) => return Err(vec![Diagnostic::error(file, root.pos, e.to_string())]),
    };
    diags.extend(meaning::check(&spec, &root, file));
    if diags.iter().any(|d| d.severity == Severity::Error) {
        Err(diags)
    } else {
        Ok((spec, diags))
    }
}
