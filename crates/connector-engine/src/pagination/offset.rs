//! `type: offset`: `?offset=N&limit=M`. The offset grows by the records
//! received, so a server that caps the limit below the page size loses nothing.

use super::{PageView, Paginator, Paging, RequestParts, StopRules};
use connector_spec::Pagination;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct OffsetPaginator {
    offset_param: String,
    limit_param: String,
    page_size: u64,
    offset: u64,
}

impl OffsetPaginator {
    pub fn new(offset_param: &str, limit_param: &str, page_size: u64, start: u64) -> Self {
        OffsetPaginator {
            offset_param: offset_param.into(),
            limit_param: limit_param.into(),
            page_size,
            offset: start,
        }
    }
}

impl OffsetPaginator {
    /// Compiles `type: offset`.
    pub(super) fn compile(
        p: &Pagination,
        page_size: u64,
        b: &mut crate::template::TemplatesBuilder,
    ) -> Result<Paging, String> {
        let Pagination::Offset {
            offset_param,
            limit_param,
            page_size: _,
            start,
            parallel,
            stop,
        } = p
        else {
            unreachable!("compile is called for `offset` only")
        };
        Ok(Paging {
            prototype: Box::new(OffsetPaginator::new(
                offset_param,
                limit_param,
                page_size,
                *start,
            )),
            stop: Some(StopRules::compile(stop, b)?),
            parallel: *parallel,
        })
    }
}

impl Paginator for OffsetPaginator {
    fn fresh(&self) -> Box<dyn Paginator> {
        Box::new(self.clone())
    }
    fn prepare(&self, parts: &mut RequestParts) {
        parts.set_query(&self.offset_param, self.offset.to_string());
        parts.set_query(&self.limit_param, self.page_size.to_string());
    }
    fn advance(&mut self, page: &PageView) -> Result<bool, String> {
        self.offset += page.records as u64;
        Ok(page.records > 0)
    }
    fn remaining_positions(&self, total: u64) -> Option<Vec<Value>> {
        let step = self.page_size.max(1);
        Some(
            (self.offset..total)
                .step_by(step as usize)
                .map(|o| json!({ "offset": o }))
                .collect(),
        )
    }
    fn page_size(&self) -> Option<u64> {
        Some(self.page_size)
    }
    fn position(&self) -> Value {
        json!({ "offset": self.offset })
    }
    fn restore(&mut self, position: &Value) -> bool {
        match position.get("offset").and_then(Value::as_u64) {
            Some(o) => {
                self.offset = o;
                true
            }
            None => false,
        }
    }
}
