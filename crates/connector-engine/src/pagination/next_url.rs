//! `type: next_url`: a full or relative URL of the next page, read from the
//! body and resolved against the URL of the page it came from.

use super::{
    PageView, Paginator, Paging, RequestParts, StopRules, next_url_position, resolve_next,
    restore_next_url,
};
use connector_spec::Pagination;
use serde_json::Value;
use serde_json_path::JsonPath;
use url::Url;

#[derive(Debug, Clone)]
pub struct NextUrlPaginator {
    path: JsonPath,
    path_text: String,
    next: Option<Url>,
}

impl NextUrlPaginator {
    pub fn new(path: JsonPath, path_text: &str) -> Self {
        NextUrlPaginator {
            path,
            path_text: path_text.to_string(),
            next: None,
        }
    }
}

impl NextUrlPaginator {
    /// Compiles `type: next_url`; the short-page rule means nothing here.
    pub(super) fn compile(
        p: &Pagination,
        b: &mut crate::template::TemplatesBuilder,
    ) -> Result<Paging, String> {
        let Pagination::NextUrl {
            next_url_path,
            stop,
        } = p
        else {
            unreachable!("compile is called for `next_url` only")
        };
        let path = JsonPath::parse(next_url_path.as_str())
            .map_err(|e| format!("`next_url_path` `{}`: {e}", next_url_path.as_str()))?;
        let mut rules = StopRules::compile(stop, b)?;
        // The API's next token decides: a page may be empty before the end.
        rules.empty_page = stop.empty_page.unwrap_or(false);
        rules.short_page = false;
        Ok(Paging {
            prototype: Box::new(NextUrlPaginator::new(path, next_url_path.as_str())),
            stop: Some(rules),
            parallel: false,
        })
    }
}

impl Paginator for NextUrlPaginator {
    fn fresh(&self) -> Box<dyn Paginator> {
        Box::new(self.clone())
    }
    fn prepare(&self, parts: &mut RequestParts) {
        if let Some(u) = &self.next {
            parts.replace_url(u.clone());
        }
    }
    fn advance(&mut self, page: &PageView) -> Result<bool, String> {
        let Some(resp) = page.response else {
            return Ok(false);
        };
        self.next = match self.path.query(&resp.json).first() {
            Some(Value::String(s)) if !s.is_empty() => Some(resolve_next(&resp.url, s)?),
            None | Some(Value::Null) | Some(Value::String(_)) => None,
            Some(other) => {
                return Err(format!(
                    "`next_url_path` `{}` found {}, not a URL",
                    self.path_text,
                    super::shown(other)
                ));
            }
        };
        Ok(self.next.is_some())
    }
    fn no_next(&self) -> String {
        format!("`next_url_path` `{}` found no next URL", self.path_text)
    }
    fn position(&self) -> Value {
        next_url_position(&self.next)
    }
    fn restore(&mut self, position: &Value) -> bool {
        restore_next_url(&mut self.next, position)
    }
}
