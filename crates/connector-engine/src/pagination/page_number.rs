//! `type: page_number`: `?page=N&per_page=M`, first page 0 or 1.

use super::{PageView, Paginator, Paging, RequestParts, StopRules};
use connector_spec::Pagination;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct PageNumberPaginator {
    page_param: String,
    size_param: Option<String>,
    page_size: u64,
    start: u64,
    page: u64,
}

impl PageNumberPaginator {
    pub fn new(page_param: &str, size_param: Option<&str>, page_size: u64, start: u64) -> Self {
        PageNumberPaginator {
            page_param: page_param.into(),
            size_param: size_param.map(str::to_string),
            page_size,
            start,
            page: start,
        }
    }
}

impl PageNumberPaginator {
    /// Compiles `type: page_number`.
    pub(super) fn compile(
        p: &Pagination,
        page_size: u64,
        b: &mut crate::template::TemplatesBuilder,
    ) -> Result<Paging, String> {
        let Pagination::PageNumber {
            page_param,
            size_param,
            page_size: _,
            start,
            parallel,
            stop,
        } = p
        else {
            unreachable!("compile is called for `page_number` only")
        };
        Ok(Paging {
            prototype: Box::new(PageNumberPaginator::new(
                page_param,
                size_param.as_deref(),
                page_size,
                *start,
            )),
            stop: Some(StopRules::compile(stop, b)?),
            parallel: *parallel,
        })
    }
}

impl Paginator for PageNumberPaginator {
    fn fresh(&self) -> Box<dyn Paginator> {
        Box::new(self.clone())
    }
    fn prepare(&self, parts: &mut RequestParts) {
        parts.set_query(&self.page_param, self.page.to_string());
        if let Some(s) = &self.size_param {
            parts.set_query(s, self.page_size.to_string());
        }
    }
    fn advance(&mut self, page: &PageView) -> Result<bool, String> {
        self.page += 1;
        Ok(page.records > 0)
    }
    fn remaining_positions(&self, total: u64) -> Option<Vec<Value>> {
        // Pages are numbered from `start`; the one at `self.page` is next.
        self.size_param.as_ref()?;
        let pages = total.div_ceil(self.page_size.max(1));
        let fetched = self.page.checked_sub(self.start)?;
        Some(
            (fetched..pages)
                .map(|i| json!({ "page": self.start + i }))
                .collect(),
        )
    }
    fn page_size(&self) -> Option<u64> {
        self.size_param.as_ref().map(|_| self.page_size)
    }
    fn position(&self) -> Value {
        json!({ "page": self.page })
    }
    fn restore(&mut self, position: &Value) -> bool {
        match position.get("page").and_then(Value::as_u64) {
            Some(p) => {
                self.page = p;
                true
            }
            None => false,
        }
    }
}
