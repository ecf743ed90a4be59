//! The page loop of one partition: the engine's only one. A
//! [`PartitionReader`] builds each page's request from the paginator,
//! refuses a request that repeats an earlier one (a paginator that never
//! ends), and reads each fetched page: it counts the records, moves the
//! paginator and applies the stop rules on the whole body, and only then
//! takes the records out. `sync` adds prefetching, parallel pages and
//! in-order commits on top; `check`, `discover` and the Airbyte commands
//! take the first pages (see `probe.rs`).
//!
//! How a request is fetched is the caller's: the reader never waits on the
//! network, so each step is testable with a canned response.

use crate::error::EngineError;
use crate::http::{Fetched, PageRequest, PageResponse};
use crate::pagination::{PageView, Paginator, RequestParts};
use crate::plan::{Plan, StreamPlan};
use crate::raw_records::RawRecords;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A page's records: parsed values, or raw JSON text on the fast path.
#[derive(Debug)]
pub enum PageRecords {
    Values(Vec<Value>),
    Raw(RawRecords),
}

impl PageRecords {
    pub fn len(&self) -> usize {
        match self {
            PageRecords::Values(v) => v.len(),
            PageRecords::Raw(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn truncate(&mut self, n: usize) {
        match self {
            PageRecords::Values(v) => v.truncate(n),
            PageRecords::Raw(r) => r.truncate(n),
        }
    }
}

/// One page's request, ready to fetch.
#[derive(Debug, Clone)]
pub struct PageCall {
    pub page_no: u64,
    pub request: PageRequest,
    /// The URL with secrets masked, for messages.
    pub shown: String,
    /// Parallel pages only: the position after this page.
    pub next: Option<Value>,
}

/// One page, read.
#[derive(Debug)]
pub struct Page {
    pub page_no: u64,
    pub shown: String,
    pub records: PageRecords,
    /// The position of the next page; `None` when the partition is done.
    pub next: Option<Value>,
    /// The total announced by the response (`stop.total_*`), if any.
    pub total: Option<u64>,
    /// Values of this response kept as state (`response_state`).
    pub kept: Vec<(String, Value)>,
    /// The page reached the query's cap (`restart_when`): it ends the query.
    pub capped: bool,
}

/// One partition's position and how its pages are read.
pub struct PartitionReader<'a> {
    plan: &'a Plan,
    sp: &'a StreamPlan,
    stream: String,
    base: RequestParts,
    paginator: Box<dyn Paginator>,
    seen: HashMap<String, u64>,
    page_no: u64,
    received: u64,
    max_pages: Option<u64>,
    raw_path: Option<Arc<Vec<String>>>,
    raw_keys: Option<Arc<Vec<String>>>,
    quota: Option<Arc<crate::rate_limit::StreamQuota>>,
    done: bool,
    /// The last page read reached the query's cap (`restart_when`).
    capped: bool,
    /// What `stop.when` and `restart_when` read as `state` (the lower bound
    /// sent as `state.cursor`, and the values kept from the last run).
    state: Option<minijinja::Value>,
}

impl<'a> PartitionReader<'a> {
    /// A reader at the first page of a partition whose first request,
    /// before pagination, is `base`. `raw` keeps records as raw JSON where
    /// the stream allows it; `max_pages` caps the pages read (previews and
    /// `stop.max_pages`).
    pub fn new(
        plan: &'a Plan,
        sp: &'a StreamPlan,
        base: RequestParts,
        raw: bool,
        max_pages: Option<u64>,
    ) -> Self {
        let max_pages = [max_pages, sp.paging.max_pages()]
            .into_iter()
            .flatten()
            .min();
        PartitionReader {
            plan,
            sp,
            stream: sp.name.clone(),
            base,
            paginator: sp.paging.start(),
            seen: HashMap::new(),
            page_no: 0,
            received: 0,
            max_pages,
            raw_path: if raw { sp.raw_path.clone() } else { None },
            // Key fields inside objects are looked for in the page loop.
            raw_keys: (raw
                && sp.primary_key.len() < 64
                && !sp.primary_key.iter().any(|f| f.contains('.')))
            .then(|| Arc::new(sp.primary_key.clone())),
            quota: None,
            done: false,
            capped: false,
            state: None,
        }
    }

    /// True when the stream has no quota of its own.
    pub fn quota_free(&self) -> bool {
        self.quota.is_none()
    }

    /// Requests wait for the stream's own quota too.
    pub fn with_quota(mut self, quota: Option<Arc<crate::rate_limit::StreamQuota>>) -> Self {
        self.quota = quota;
        self
    }

    /// What the stop conditions read as `state`.
    pub fn with_state(mut self, state: Option<minijinja::Value>) -> Self {
        self.state = state;
        self
    }

    /// Continues after `pages` pages, at a saved position.
    pub fn resume(&mut self, position: &Value, pages: u64) -> Result<(), EngineError> {
        if !self.paginator.restore(position) {
            return Err(self.err(
                pages + 1,
                "",
                format!(
                    "the saved position {position} does not fit `{}` pagination",
                    self.sp.pagination_type
                ),
            ));
        }
        self.page_no = pages;
        Ok(())
    }

    /// Pages read so far.
    pub fn page_no(&self) -> u64 {
        self.page_no
    }

    /// True once the last page was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The condition of the stream's query cap (`restart_when`), if it has
    /// one: pages are then read one after another, never guessed ahead or
    /// in parallel.
    fn restart_when(&self) -> Option<&'a crate::template::CompiledTemplate> {
        self.sp.incremental.as_ref()?.restart_when.as_ref()
    }

    /// True when the caps allow no page after the one just read.
    fn capped(&self) -> bool {
        self.max_pages.is_some_and(|m| self.page_no >= m)
    }

    pub fn err(&self, page: u64, url: &str, message: String) -> EngineError {
        EngineError::Stream {
            stream: self.stream.clone(),
            page,
            url: url.to_string(),
            message: self.plan.redactor.redact(&message),
        }
    }

    fn call(&self, parts: RequestParts, page_no: u64, next: Option<Value>) -> PageCall {
        let request = PageRequest {
            method: self.sp.method.clone(),
            url: parts.full_url(),
            headers: parts.headers,
            body: parts.body,
            raw_path: self.raw_path.clone(),
            raw_keys: self.raw_keys.clone(),
            quota: self.quota.clone(),
            form: self.sp.form_body,
            stream: Arc::from(self.stream.as_str()),
        };
        PageCall {
            page_no,
            shown: self.plan.redactor.url(&request.url),
            request,
            next,
        }
    }

    /// The next page's request, or `None` when the partition is done. A
    /// request that repeats an earlier one is an error: the API sent the
    /// same next-page token or URL twice.
    pub fn next_call(&mut self) -> Result<Option<PageCall>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let page_no = self.page_no + 1;
        let mut parts = self.base.clone();
        self.paginator.prepare(&mut parts);
        let url = parts.full_url();
        let guard = format!("{url} {:?} {:?}", parts.headers, parts.body);
        if let Some(first) = self.seen.insert(guard, page_no) {
            let shown = self.plan.redactor.url(&url);
            return Err(self.err(
                page_no,
                &shown,
                format!("pagination loop: page {page_no} repeats the request of page {first} ({shown}); the API returned the same next-page token or URL twice"),
            ));
        }
        Ok(Some(self.call(parts, page_no, None)))
    }

    /// Reads the answer to `call`: moves the paginator and applies the stop
    /// rules on the whole body, then takes the records out. `None` when the
    /// run was stopped while the request was out.
    pub fn read(&mut self, call: &PageCall, fetched: Fetched) -> Result<Option<Page>, EngineError> {
        let (page_no, shown) = (call.page_no, call.shown.as_str());
        self.page_no = page_no;
        let mut resp = match fetched {
            Fetched::Page(r) => Some(r),
            Fetched::Ignored => None,
            Fetched::Stop => {
                self.done = true;
                return Ok(Some(Page {
                    page_no,
                    shown: shown.to_string(),
                    records: PageRecords::Values(Vec::new()),
                    next: None,
                    total: None,
                    kept: Vec::new(),
                    capped: false,
                }));
            }
            Fetched::Cancelled => return Ok(None),
        };
        let count = self.count(resp.as_ref(), page_no, shown)?;
        self.received += count as u64;
        let kept = match &resp {
            Some(r) => self
                .sp
                .response_state
                .iter()
                .filter_map(|(name, path)| {
                    path.query(&r.json)
                        .first()
                        .filter(|v| !v.is_null())
                        .map(|v| (name.clone(), (*v).clone()))
                })
                .collect(),
            None => Vec::new(),
        };
        let view = PageView {
            response: resp.as_ref(),
            records: count,
        };
        let (more, total) = self.step(&view, page_no, shown)?;
        self.done = !more || self.capped();
        let records = self.take(resp.as_mut(), page_no, shown)?;
        Ok(Some(Page {
            page_no,
            shown: shown.to_string(),
            records,
            next: (!self.done).then(|| self.paginator.position()),
            total,
            kept,
            capped: self.capped,
        }))
    }

    /// With `total` records announced, the calls of every page still to
    /// fetch, each knowing the position after it; `None` for strategies
    /// whose next page is only known from the previous one.
    pub fn remaining_calls(&mut self, total: u64) -> Result<Option<Vec<PageCall>>, EngineError> {
        // A query that may reach its cap is read page by page: the page at
        // the cap ends it.
        if self.done
            || !self.sp.parallel()
            || self.max_pages.is_some()
            || self.restart_when().is_some()
        {
            return Ok(None);
        }
        let Some(positions) = self.paginator.remaining_positions(total) else {
            return Ok(None);
        };
        let mut calls = Vec::with_capacity(positions.len());
        for (i, pos) in positions.iter().enumerate() {
            let page_no = self.page_no + 1 + i as u64;
            let call = self.call_at(pos, page_no, positions.get(i + 1).cloned());
            calls.push(call.ok_or_else(|| {
                self.err(page_no, "", format!("cannot jump to page position {pos}"))
            })?);
        }
        self.done = true;
        Ok(Some(calls))
    }

    /// The call of page `page_no` at paging position `pos`; None when the
    /// paginator cannot restore that position.
    fn call_at(&self, pos: &Value, page_no: u64, next: Option<Value>) -> Option<PageCall> {
        let mut p = self.sp.paging.start();
        if !p.restore(pos) {
            return None;
        }
        let mut parts = self.base.clone();
        p.prepare(&mut parts);
        Some(self.call(parts, page_no, next))
    }

    /// The call after the next one, when the announced `total` says where it
    /// is: fetched ahead while the next page is parsed, and used only if it
    /// is the call that reading the next page gives. None when paging cannot
    /// jump (cursors, links), is capped, or the total ends before it.
    pub fn call_after_next(&self, total: u64) -> Option<PageCall> {
        if self.done || self.max_pages.is_some() || self.restart_when().is_some() {
            return None;
        }
        let positions = self.paginator.remaining_positions(total)?;
        self.call_at(positions.get(1)?, self.page_no + 2, None)
    }

    /// Reads a parallel page: its records only (where paging goes is known).
    pub fn read_parallel(
        &self,
        call: &PageCall,
        fetched: Fetched,
    ) -> Result<Option<Page>, EngineError> {
        let mut resp = match fetched {
            Fetched::Page(r) => Some(r),
            Fetched::Ignored => None,
            Fetched::Stop => {
                return Ok(Some(Page {
                    page_no: call.page_no,
                    shown: call.shown.clone(),
                    records: PageRecords::Values(Vec::new()),
                    next: None,
                    total: None,
                    kept: Vec::new(),
                    capped: false,
                }));
            }
            Fetched::Cancelled => return Ok(None),
        };
        let records = self.take(resp.as_mut(), call.page_no, &call.shown)?;
        Ok(Some(Page {
            page_no: call.page_no,
            shown: call.shown.clone(),
            records,
            next: call.next.clone(),
            total: None,
            kept: Vec::new(),
            capped: false,
        }))
    }

    /// The number of records in a page, counted without taking them out.
    fn count(
        &self,
        resp: Option<&PageResponse>,
        page_no: u64,
        shown: &str,
    ) -> Result<usize, EngineError> {
        let Some(r) = resp else {
            return Ok(0);
        };
        if let Some(raw) = &r.raw {
            return Ok(raw.len());
        }
        self.sp
            .selector
            .count(&r.json)
            .map_err(|e| self.body_err(page_no, shown, &r.json, e))
    }

    fn body_err(&self, page_no: u64, shown: &str, body: &Value, e: String) -> EngineError {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.err(
            page_no,
            shown,
            format!("{e}; body starts: {}", crate::http::excerpt(&bytes)),
        )
    }

    /// Moves the paginator past a page and applies the stop rules: more
    /// pages or not, and the announced total. A response that says more
    /// records follow while the paginator found no next page is an error,
    /// never a clean end.
    fn step(
        &mut self,
        view: &PageView,
        page_no: u64,
        shown: &str,
    ) -> Result<(bool, Option<u64>), EngineError> {
        let more = self
            .paginator
            .advance(view)
            .map_err(|e| self.err(page_no, shown, e))?;
        let cap = self.restart_when();
        let rules = match (&self.sp.paging.stop, cap) {
            (Some(rules), _) => Some(rules),
            (None, Some(_)) => None,
            (None, None) => return Ok((more, None)),
        };
        let total = view
            .response
            .and_then(|r| rules.and_then(|rules| rules.total(r)));
        let when = |t: &crate::template::CompiledTemplate| -> Result<bool, String> {
            let resp = view.response;
            let headers: serde_json::Map<String, Value> = resp
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|(k, v)| {
                            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                            (k.as_str().to_string(), Value::String(v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ctx = minijinja::context! {
                config => self.plan.config_ctx.clone(),
                response => crate::template::to_value(&resp.map(|r| &r.json)),
                headers => crate::template::to_value(&headers),
                page => crate::template::to_value(&serde_json::json!({
                    "number": page_no,
                    "records": view.records,
                })),
                state => self.state.clone(),
            };
            self.plan.templates.test(t, &ctx).map_err(|e| e.to_string())
        };
        if let Some(cap) = cap
            && when(cap).map_err(|e| self.err(page_no, shown, e))?
        {
            tracing::info!(
                "stream {}: page {page_no} reached the query's cap (`restart_when`): the query starts again from the cursor reached",
                self.stream
            );
            self.capped = true;
            return Ok((false, total));
        }
        let Some(rules) = rules else {
            return Ok((more, None));
        };
        let reason = rules
            .stop_reason(
                view,
                self.paginator.page_size(),
                self.received,
                page_no,
                &when,
            )
            .map_err(|e| self.err(page_no, shown, e))?;
        if let Some(reason) = reason {
            tracing::debug!(
                "stream {}: stopping after page {page_no}: {reason}",
                self.stream
            );
        }
        if !more && reason.is_none() {
            let says_more = match view.response {
                Some(r) => rules.has_more(r).map_err(|e| self.err(page_no, shown, e))?,
                None => None,
            };
            if says_more == Some(true) {
                return Err(self.err(
                    page_no,
                    shown,
                    format!(
                        "the response says more records follow (`has_more_path` is true) but {}; stopping here would lose records (check the pagination's paths against the response)",
                        self.paginator.no_next()
                    ),
                ));
            }
        }
        Ok((more && reason.is_none(), total))
    }

    /// Takes the records out of a page body.
    fn take(
        &self,
        resp: Option<&mut PageResponse>,
        page_no: u64,
        shown: &str,
    ) -> Result<PageRecords, EngineError> {
        let Some(r) = resp else {
            return Ok(PageRecords::Values(Vec::new()));
        };
        if let Some(raw) = r.raw.take() {
            return Ok(PageRecords::Raw(raw));
        }
        match self.sp.selector.select(&mut r.json) {
            Ok(v) => Ok(PageRecords::Values(v)),
            Err(e) => Err(self.body_err(page_no, shown, &r.json, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigSources;
    use serde_json::json;

    fn plan(yaml: &str) -> Plan {
        let spec = connector_spec::parse(yaml, "t.yaml").unwrap();
        Plan::compile(&spec, &ConfigSources::default(), None).unwrap()
    }

    fn page(url: &str, body: Value) -> Fetched {
        Fetched::Page(PageResponse {
            url: url::Url::parse(url).unwrap(),
            status: 200,
            headers: Default::default(),
            json: body,
            bytes: 0,
            raw: None,
        })
    }

    fn reader<'a>(plan: &'a Plan) -> PartitionReader<'a> {
        let sp = &plan.streams["s"];
        let base = plan.base_request(sp, &plan.context().to_value()).unwrap();
        PartitionReader::new(plan, sp, base, false, None)
    }

    const STRIPE: &str = r#"
version: 1
name: t
base_url: https://api.example.com
streams:
  s:
    path: /v1/customers
    records: { path: $.data }
    pagination:
      type: cursor
      cursor_path: "$.data[-1].id"
      cursor_param: starting_after
      stop: { has_more_path: $.has_more }
"#;

    #[test]
    fn the_paginator_reads_the_records_before_they_are_taken() {
        let plan = plan(STRIPE);
        let mut r = reader(&plan);
        let call = r.next_call().unwrap().unwrap();
        assert_eq!(
            call.request.url.as_str(),
            "https://api.example.com/v1/customers"
        );
        let body = json!({"data": [{"id": "cus_1"}, {"id": "cus_2"}], "has_more": true});
        let p = r
            .read(&call, page(call.request.url.as_str(), body))
            .unwrap()
            .unwrap();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.next, Some(json!({"cursor": "cus_2"})));
        let call = r.next_call().unwrap().unwrap();
        assert!(
            call.request.url.as_str().ends_with("starting_after=cus_2"),
            "{}",
            call.shown
        );
        let last = json!({"data": [{"id": "cus_3"}], "has_more": false});
        let p = r
            .read(&call, page(call.request.url.as_str(), last))
            .unwrap()
            .unwrap();
        assert_eq!(p.next, None);
        assert!(r.is_done() && r.next_call().unwrap().is_none());
    }

    #[test]
    fn has_more_without_a_token_and_repeated_requests_are_errors() {
        let p = plan(&STRIPE.replace("$.data[-1].id", "$.next"));
        let mut r = reader(&p);
        let call = r.next_call().unwrap().unwrap();
        let body = json!({"data": [{"id": "cus_1"}], "has_more": true});
        let e = r
            .read(&call, page(call.request.url.as_str(), body))
            .unwrap_err();
        assert!(e.to_string().contains("has_more_path"), "{e}");

        let p = plan(&STRIPE.replace("$.data[-1].id", "$.next"));
        let mut r = reader(&p);
        for i in 0..3 {
            let call = match r.next_call() {
                Ok(c) => c.unwrap(),
                Err(e) => {
                    assert_eq!(i, 2, "the second `same` token repeats page 2");
                    assert!(e.to_string().contains("pagination loop"), "{e}");
                    return;
                }
            };
            let body = json!({"data": [{"id": "x"}], "has_more": true, "next": "same"});
            r.read(&call, page(call.request.url.as_str(), body))
                .unwrap();
        }
        panic!("a repeated token was not refused");
    }

    #[test]
    fn offset_pages_run_in_parallel_once_the_total_is_known() {
        let plan = plan(
            "version: 1\nname: t\nbase_url: https://x\nstreams:\n  s:\n    path: /a\n    records: { path: $.data }\n    pagination: { type: offset, page_size: 2, parallel: true, stop: { total_path: $.total } }\n",
        );
        let mut r = reader(&plan);
        let call = r.next_call().unwrap().unwrap();
        let body = json!({"data": [{"id": 1}, {"id": 2}], "total": 7});
        let p = r.read(&call, page("https://x/a", body)).unwrap().unwrap();
        let calls = r.remaining_calls(p.total.unwrap()).unwrap().unwrap();
        let offsets: Vec<String> = calls
            .iter()
            .map(|c| c.request.url.query().unwrap().to_string())
            .collect();
        assert_eq!(
            offsets,
            ["offset=2&limit=2", "offset=4&limit=2", "offset=6&limit=2"]
        );
        assert_eq!(calls[0].next, Some(json!({"offset": 4})));
        assert_eq!(calls[2].next, None);
    }
}
