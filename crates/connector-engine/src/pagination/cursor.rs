//! `type: cursor`: an opaque token read from the body (JSONPath) or a
//! header, sent back as a query parameter, header or JSON body field.

use super::{PageView, Paginator, RequestParts};
use super::{Paging, StopRules};
use connector_spec::Pagination;
use serde_json::{Value, json};
use serde_json_path::JsonPath;

/// Where a cursor token is sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLocation {
    Query,
    Header,
    Body,
}

#[derive(Debug, Clone)]
pub struct CursorPaginator {
    path: Option<JsonPath>,
    path_text: String,
    header: Option<String>,
    param: String,
    send_in: TokenLocation,
    size_param: Option<String>,
    page_size: u64,
    token: Option<String>,
}

impl CursorPaginator {
    pub fn new(
        path: Option<(JsonPath, String)>,
        header: Option<String>,
        param: &str,
        send_in: TokenLocation,
        size_param: Option<&str>,
        page_size: u64,
    ) -> Self {
        let (path, path_text) = match path {
            Some((p, t)) => (Some(p), t),
            None => (None, String::new()),
        };
        CursorPaginator {
            path,
            path_text,
            header,
            param: param.into(),
            send_in,
            size_param: size_param.map(str::to_string),
            page_size,
            token: None,
        }
    }
}

impl CursorPaginator {
    /// Compiles `type: cursor`; the short-page rule means nothing here.
    pub(super) fn compile(
        p: &Pagination,
        page_size: u64,
        b: &mut crate::template::TemplatesBuilder,
    ) -> Result<Paging, String> {
        let Pagination::Cursor {
            cursor_path,
            cursor_header,
            cursor_param,
            send_in,
            size_param,
            page_size: _,
            stop,
        } = p
        else {
            unreachable!("compile is called for `cursor` only")
        };
        let path = cursor_path
            .as_ref()
            .map(|p| {
                JsonPath::parse(p.as_str())
                    .map(|jp| (jp, p.as_str().to_string()))
                    .map_err(|e| format!("`cursor_path` `{}`: {e}", p.as_str()))
            })
            .transpose()?;
        let mut rules = StopRules::compile(stop, b)?;
        // The API's next token decides: a page may be empty before the end.
        rules.empty_page = stop.empty_page.unwrap_or(false);
        rules.short_page = false;
        let send_in = match send_in {
            connector_spec::TokenLocation::Query => TokenLocation::Query,
            connector_spec::TokenLocation::Header => TokenLocation::Header,
            connector_spec::TokenLocation::Body => TokenLocation::Body,
        };
        Ok(Paging {
            prototype: Box::new(CursorPaginator::new(
                path,
                cursor_header.clone(),
                cursor_param,
                send_in,
                size_param.as_deref(),
                page_size,
            )),
            stop: Some(rules),
            parallel: false,
        })
    }
}

impl Paginator for CursorPaginator {
    fn fresh(&self) -> Box<dyn Paginator> {
        Box::new(self.clone())
    }
    fn prepare(&self, parts: &mut RequestParts) {
        if let Some(s) = &self.size_param {
            match self.send_in {
                TokenLocation::Body => set_body_field(parts, s, json!(self.page_size)),
                _ => parts.set_query(s, self.page_size.to_string()),
            }
        }
        let Some(token) = &self.token else { return };
        match self.send_in {
            TokenLocation::Query => parts.set_query(&self.param, token.clone()),
            TokenLocation::Header => {
                parts
                    .headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case(&self.param));
                parts.headers.push((self.param.clone(), token.clone()));
            }
            TokenLocation::Body => set_body_field(parts, &self.param, Value::String(token.clone())),
        }
    }
    fn advance(&mut self, page: &PageView) -> Result<bool, String> {
        let Some(resp) = page.response else {
            return Ok(false);
        };
        let next = match (&self.path, &self.header) {
            (Some(p), _) => match p.query(&resp.json).first() {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                None | Some(Value::Null) | Some(Value::String(_)) => None,
                Some(other) => {
                    return Err(format!(
                        "`cursor_path` `{}` found {}, not a string or number token",
                        self.path_text,
                        super::shown(other)
                    ));
                }
            },
            (None, Some(h)) => resp
                .headers
                .get(h.as_str())
                .and_then(|v| v.to_str().ok())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            (None, None) => None,
        };
        self.token = next;
        Ok(self.token.is_some())
    }
    fn position(&self) -> Value {
        json!({ "cursor": self.token })
    }
    fn no_next(&self) -> String {
        match &self.header {
            Some(h) if self.path.is_none() => {
                format!("no `{h}` header with a next token came back")
            }
            _ => format!("`cursor_path` `{}` found no next token", self.path_text),
        }
    }
    fn restore(&mut self, position: &Value) -> bool {
        match position.get("cursor") {
            Some(Value::String(s)) => {
                self.token = Some(s.clone());
                true
            }
            Some(Value::Null) => {
                self.token = None;
                true
            }
            _ => false,
        }
    }
}

/// Sets a body field; a dotted name is a path into nested objects
/// (Intercom's `pagination.starting_after`).
fn set_body_field(parts: &mut RequestParts, name: &str, value: Value) {
    let mut at = parts.body.get_or_insert_with(|| json!({}));
    let mut segments = name.split('.').peekable();
    while let Some(seg) = segments.next() {
        let Value::Object(m) = at else { return };
        if segments.peek().is_none() {
            m.insert(seg.to_string(), value);
            return;
        }
        at = m.entry(seg.to_string()).or_insert_with(|| json!({}));
        if !at.is_object() {
            *at = json!({});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_body_field_is_a_path_into_nested_objects() {
        let mut parts = RequestParts {
            url: url::Url::parse("https://x.test/search").unwrap(),
            query: vec![],
            headers: vec![],
            body: Some(
                json!({ "query": { "field": "updated_at" }, "pagination": { "per_page": 150 } }),
            ),
        };
        set_body_field(&mut parts, "pagination.starting_after", json!("abc"));
        set_body_field(&mut parts, "cursor", json!("top"));
        assert_eq!(
            parts.body.unwrap(),
            json!({
                "query": { "field": "updated_at" },
                "pagination": { "per_page": 150, "starting_after": "abc" },
                "cursor": "top"
            })
        );
    }
}
