//! `type: none`: a single request.

use super::{PageView, Paginator, Paging, RequestParts};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NoPaginator;

impl NoPaginator {
    /// Compiles `type: none`.
    pub(super) fn compile() -> Paging {
        Paging {
            prototype: Box::new(NoPaginator),
            stop: None,
            parallel: false,
        }
    }
}

impl Paginator for NoPaginator {
    fn fresh(&self) -> Box<dyn Paginator> {
        Box::new(self.clone())
    }
    fn prepare(&self, _parts: &mut RequestParts) {}
    fn advance(&mut self, _page: &PageView) -> Result<bool, String> {
        Ok(false)
    }
    fn position(&self) -> Value {
        Value::Null
    }
    fn restore(&mut self, _position: &Value) -> bool {
        true
    }
}
