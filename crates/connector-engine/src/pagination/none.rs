//! `type: none`: a single request.

use super::{PageView, Paginator, RequestParts};
use serde_json::Value;

pub struct NoPaginator;

impl Paginator for NoPaginator {
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
