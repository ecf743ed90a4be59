//! `type: link_header`: RFC 8288 `Link: <url>; rel="next"`.

use super::{
    PageView, Paginator, Paging, RequestParts, StopRules, next_url_position, resolve_next,
    restore_next_url,
};
use connector_spec::Pagination;
use serde_json::Value;
use url::Url;

#[derive(Debug, Clone)]
pub struct LinkHeaderPaginator {
    rel: String,
    next: Option<Url>,
}

impl LinkHeaderPaginator {
    pub fn new(rel: &str) -> Self {
        LinkHeaderPaginator {
            rel: rel.into(),
            next: None,
        }
    }
}

/// Finds the target of relation `rel` in a Link header value.
pub fn find_rel(header: &str, rel: &str) -> Option<String> {
    for link in split_links(header) {
        let link = link.trim();
        let Some(end) = link.find('>') else { continue };
        let target = link.strip_prefix('<').map(|l| &l[..end - 1])?;
        let params = &link[end + 1..];
        let has_rel = params.split(';').any(|p| {
            let Some((k, v)) = p.split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
        });
        if has_rel {
            return Some(target.to_string());
        }
    }
    None
}

/// Splits on commas that are outside `<...>`.
fn split_links(h: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in h.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&h[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&h[start..]);
    out
}

impl LinkHeaderPaginator {
    /// Compiles `type: link_header`; the short-page rule means nothing here.
    pub(super) fn compile(
        p: &Pagination,
        b: &mut crate::template::TemplatesBuilder,
    ) -> Result<Paging, String> {
        let Pagination::LinkHeader { rel, stop } = p else {
            unreachable!("compile is called for `link_header` only")
        };
        let mut rules = StopRules::compile(stop, b)?;
        // The API's next token decides: a page may be empty before the end.
        rules.empty_page = stop.empty_page.unwrap_or(false);
        rules.short_page = false;
        Ok(Paging {
            prototype: Box::new(LinkHeaderPaginator::new(rel)),
            stop: Some(rules),
            parallel: false,
        })
    }
}

impl Paginator for LinkHeaderPaginator {
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
        let next = resp
            .headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| find_rel(h, &self.rel));
        self.next = next.map(|n| resolve_next(&resp.url, &n)).transpose()?;
        Ok(self.next.is_some())
    }
    fn no_next(&self) -> String {
        format!("no `Link` header with rel=\"{}\" came back", self.rel)
    }
    fn position(&self) -> Value {
        next_url_position(&self.next)
    }
    fn restore(&mut self, position: &Value) -> bool {
        restore_next_url(&mut self.next, position)
    }
}

#[cfg(test)]
mod tests {
    use super::find_rel;

    #[test]
    fn finds_next_among_several() {
        let h = r#"<http://x/a?_page=1>; rel="first", <http://x/a?_page=3>; rel="next", <http://x/a?_page=9>; rel="last""#;
        assert_eq!(find_rel(h, "next").as_deref(), Some("http://x/a?_page=3"));
        assert_eq!(find_rel(h, "prev"), None);
        assert_eq!(
            find_rel("<https://x/?a=1,2>; rel=next", "next").as_deref(),
            Some("https://x/?a=1,2")
        );
    }
}
