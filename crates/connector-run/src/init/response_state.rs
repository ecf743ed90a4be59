//! Values a response carries for the next run, proposed as
//! `response_state`: a delta link (Microsoft Graph's `@odata.deltaLink`), a
//! sync token (`next_sync_token`), or the position of an export that marks
//! its last page with a flag and still gives the position on it (Zendesk's
//! `after_cursor` beside `end_of_stream`). The stream keeps them as
//! `{{ state.<name> }}`; how to send them back is a comment, since that
//! changes what the first request of the next run asks for.

use super::paging::{body_token, cursor_params, end_marker, looks_like_url};
use super::records::{Keys, at, json_path};
use connector_spec::Pagination;
use serde_json::Value;

/// Body paths of values meant for the next run, and the names they are
/// kept under.
const STATE_PATHS: &[(&[&str], &str)] = &[
    (&["@odata.deltaLink"], "delta_link"),
    (&["deltaLink"], "delta_link"),
    (&["delta_link"], "delta_link"),
    (&["next_sync_token"], "next_sync_token"),
    (&["nextSyncToken"], "next_sync_token"),
    (&["sync_token"], "sync_token"),
    (&["syncToken"], "sync_token"),
    (&["delta_token"], "delta_token"),
    (&["deltaToken"], "delta_token"),
    (&["state_token"], "state_token"),
];

/// One value kept for the next run.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// The name under `response_state` (and in `{{ state.<name> }}`).
    pub name: String,
    pub path: Keys,
    pub why: String,
    /// How to use it: a sentence, then YAML lines for the stream.
    pub usage: (String, Vec<String>),
}

/// `afterCursor` → `after_cursor`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The parameter a token named `name` is sent back in: `next_sync_token`
/// → `sync_token`, `nextSyncToken` → `syncToken`.
fn send_back_as(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("next_") {
        return rest.to_string();
    }
    match name.strip_prefix("next") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => {
            let mut c = rest.chars();
            c.next()
                .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
        _ => name.to_string(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// What the first response keeps for the next run. `paging` is the chosen
/// pagination, `bound_param` the parameter the proposed `incremental:`
/// block sends its bound in, `path` the stream's path.
pub fn find(body: &Value, paging: &Pagination, bound_param: Option<&str>, path: &str) -> Vec<Kept> {
    let mut out: Vec<Kept> = Vec::new();
    for (p, name) in STATE_PATHS {
        let keys: Keys = p.iter().map(|s| s.to_string()).collect();
        let Some(Value::String(v)) = at(body, &keys) else {
            continue;
        };
        if v.is_empty() || out.iter().any(|k| k.name == *name) {
            continue;
        }
        let jp = json_path(&keys);
        let state = format!("{{{{ state.{name} }}}}");
        let kept = if looks_like_url(v) {
            Kept {
                name: name.to_string(),
                why: format!(
                    "`{jp}` — the body holds the link to the changes after this run (a delta link), kept for the next run as `{state}`"
                ),
                usage: (
                    "To start the next run from it, read it as the stream's path:".into(),
                    vec![format!(
                        "path: {}",
                        quoted(&format!("{{{{ state.{name} or '{path}' }}}}"))
                    )],
                ),
                path: keys,
            }
        } else {
            let last = p.last().copied().unwrap_or(name);
            Kept {
                name: name.to_string(),
                why: format!(
                    "`{jp}` — the body holds a token for the changes after this run, kept for the next run as `{state}`"
                ),
                usage: (
                    "To start the next run from it, send it back (check the parameter's name in the API's docs):".into(),
                    vec![
                        "params:".into(),
                        format!("  {}: {}", send_back_as(last), quoted(&state)),
                    ],
                ),
                path: keys,
            }
        };
        out.push(kept);
    }
    // An export that flags its last page and still says where it stands.
    if let (Some(flag), Some((keys, _))) = (end_marker(body), body_token(body)) {
        let last = keys.last().cloned().unwrap_or_default();
        let name = snake(&last);
        let jp = json_path(&keys);
        let param = match paging {
            Pagination::Cursor {
                cursor_path: Some(p),
                cursor_param,
                ..
            } if p.as_str() == jp => cursor_param.clone(),
            _ => cursor_params(&last)
                .first()
                .map_or_else(|| "cursor".to_string(), |s| s.to_string()),
        };
        if !name.is_empty() && !out.iter().any(|k| k.name == name) {
            let state = format!("{{{{ state.{name} }}}}");
            let mut lines = vec!["params:".into(), format!("  {param}: {}", quoted(&state))];
            let sentence = match bound_param {
                Some(b) => {
                    lines.push(format!(
                        "  {b}: {}",
                        quoted(&format!(
                            "{{{{ state.cursor if state.{name} is none else none }}}}"
                        ))
                    ));
                    format!(
                        "To continue the next run from it rather than from `{b}`, send it back, and `{b}` on the first run only, in place of `incremental.param`:"
                    )
                }
                None => "To continue the next run from it, send it back:".into(),
            };
            out.push(Kept {
                name,
                why: format!(
                    "`{jp}` — the API marks its last page with `{flag}` and still gives its position there, so it is kept for the next run as `{state}`"
                ),
                usage: (sentence, lines),
                path: keys,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zendesk_keeps_its_after_cursor() {
        let body = json!({"tickets": [{"id": 1}], "after_url": "https://x/y?cursor=abc",
            "after_cursor": "abc", "before_url": null, "before_cursor": null, "end_of_stream": false});
        let kept = find(&body, &Pagination::None, Some("start_time"), "/t");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "after_cursor");
        assert_eq!(json_path(&kept[0].path), "$.after_cursor");
        assert_eq!(
            kept[0].usage.1,
            vec![
                "params:".to_string(),
                "  cursor: \"{{ state.after_cursor }}\"".into(),
                "  start_time: \"{{ state.cursor if state.after_cursor is none else none }}\""
                    .into(),
            ]
        );
        // A token that goes away at the end is no position for the next run.
        let paged = json!({"items": [{"id": 1}], "next_cursor": "abc", "has_more": true});
        assert!(find(&paged, &Pagination::None, None, "/t").is_empty());
    }

    #[test]
    fn delta_links_and_sync_tokens() {
        let graph =
            json!({"value": [], "@odata.deltaLink": "https://graph/users/delta?$deltatoken=x"});
        let kept = find(&graph, &Pagination::None, None, "/v1.0/users/delta");
        assert_eq!(kept[0].name, "delta_link");
        assert_eq!(
            kept[0].usage.1,
            vec!["path: \"{{ state.delta_link or '/v1.0/users/delta' }}\"".to_string()]
        );
        let google = json!({"items": [], "nextSyncToken": "CPDAlvWDx70CEPDAlvWDx70CGAU="});
        let kept = find(&google, &Pagination::None, None, "/events");
        assert_eq!(kept[0].name, "next_sync_token");
        assert_eq!(
            kept[0].usage.1[1],
            "  syncToken: \"{{ state.next_sync_token }}\""
        );
        assert_eq!(snake("afterCursor"), "after_cursor");
    }
}
