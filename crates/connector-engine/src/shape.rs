//! What becomes of a page's records before they are written: the stream's
//! filter and reshaping, the check that each can be a row, and the
//! incremental rules (records older than the bound, and records the last
//! run wrote at its boundary, are not written again). `sync` and the probes
//! shape records the same way.

use crate::error::EngineError;
use crate::extract::OnInvalid;
use crate::incremental::Boundary;
use crate::plan::{Plan, StreamPlan};
use crate::template::Context;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// A page's records after shaping.
pub struct Shaped {
    /// Records to write.
    pub write: Vec<Value>,
    /// Records for the children when they differ from `write` (`feed_all`).
    pub feed: Option<Vec<Value>>,
    /// The largest cursor among the written records and their keys.
    pub boundary: Boundary,
}

/// How one partition's records are shaped.
pub struct RecordShaper<'a> {
    pub plan: &'a Plan,
    pub sp: &'a StreamPlan,
    /// The partition's template context (`parent`, `state`).
    pub ctx: Context,
    /// The incremental lower bound of this run.
    pub lower: Option<Value>,
    /// The last completed run's boundary records.
    pub boundary: Option<&'a Boundary>,
    /// An incremental parent read in full for its children: every record
    /// goes to the children, only those past the bound are written.
    pub feed_all: bool,
    /// The destination takes records that are not objects (JSON Lines).
    pub any_json: bool,
}

impl RecordShaper<'_> {
    fn err(&self, page: u64, url: &str, message: String) -> EngineError {
        EngineError::Stream {
            stream: self.sp.name.clone(),
            page,
            url: url.to_string(),
            message: self.plan.redactor.redact(&message),
        }
    }

    /// A record that cannot become a row: not an object (where the
    /// destination needs one), or without a field of the primary key.
    fn invalid(&self, r: &Value) -> Option<String> {
        let sp = self.sp;
        if !r.is_object() {
            return self.not_object();
        }
        let missing: Vec<&str> = sp
            .primary_key
            .iter()
            .filter(|f| crate::record_key::field(r, f).is_none_or(Value::is_null))
            .map(String::as_str)
            .collect();
        no_key(&missing)
    }

    /// Why a record that is not an object cannot be written, if it cannot.
    fn not_object(&self) -> Option<String> {
        (!self.sp.primary_key.is_empty() || !self.any_json).then(|| "is not a JSON object".into())
    }

    /// [`invalid`](Self::invalid) of a raw record the body's decoding did
    /// not look at (a key field inside an object, or more than 63 of them):
    /// the record parsed.
    fn invalid_raw(&self, text: &[u8]) -> Option<String> {
        match serde_json::from_slice::<Value>(text) {
            Ok(v) => self.invalid(&v),
            Err(_) => Some("is not JSON".into()),
        }
    }

    /// Why a raw record cannot be a row, from what
    /// [`RawRecords::flag_keyless`](crate::raw_records::RawRecords::flag_keyless)
    /// found: not an object (`None`), or the bits of the key fields with a value.
    fn keyless_why(&self, found: Option<u64>) -> Option<String> {
        let Some(bits) = found else {
            return self.not_object();
        };
        let missing: Vec<&str> = (self.sp.primary_key.iter().enumerate())
            .filter(|(i, _)| bits & (1 << i) == 0)
            .map(|(_, f)| f.as_str())
            .collect();
        no_key(&missing)
    }

    /// Raw records are checked as parsed ones are: one that cannot be a row
    /// fails the stream, or is dropped and counted (`on_invalid: skip`).
    pub fn check_raw(
        &self,
        page_no: u64,
        url: &str,
        raw: &mut crate::raw_records::RawRecords,
        skipped: &AtomicU64,
    ) -> Result<(), EngineError> {
        if self.sp.primary_key.is_empty() && self.any_json {
            return Ok(());
        }
        // Where the body was decoded, the records without a key were found.
        let flagged: Vec<(usize, Option<String>)> = match raw.keyless() {
            Some(list) => list
                .iter()
                .map(|&(i, found)| (i, self.keyless_why(found)))
                .collect(),
            None => raw
                .iter()
                .enumerate()
                .map(|(i, text)| (i, self.invalid_raw(text)))
                .collect(),
        };
        let mut dropped = Vec::new();
        for (i, why) in flagged {
            let Some(why) = why else {
                continue;
            };
            let text = raw.get(i).unwrap_or_default();
            if self.sp.on_invalid != OnInvalid::Skip {
                return Err(self.refused(page_no, url, i, &why, text));
            }
            skipped.fetch_add(1, Ordering::Relaxed);
            dropped.push(i);
        }
        raw.remove(&dropped);
        Ok(())
    }

    /// The error for record `i` of a page that cannot be a row.
    fn refused(&self, page_no: u64, url: &str, i: usize, why: &str, text: &[u8]) -> EngineError {
        self.err(
            page_no,
            url,
            format!(
                "record {} of the page {why}: {}; fix `primary_key` or `records.path`, or set `records.on_invalid: skip` to drop such records",
                i + 1,
                crate::http::excerpt(text)
            ),
        )
    }

    /// Shapes one page's records; `skipped` counts invalid records dropped.
    pub fn shape(
        &self,
        page_no: u64,
        url: &str,
        mut records: Vec<Value>,
        skipped: &AtomicU64,
    ) -> Result<Shaped, EngineError> {
        let (sp, plan) = (self.sp, self.plan);
        let mut write = Vec::with_capacity(records.len());
        let mut feed = self.feed_all.then(|| Vec::with_capacity(records.len()));
        let mut boundary = Boundary::default();
        let expanded: Vec<Value> = records
            .drain(..)
            .flat_map(|r| sp.selector.expand(r))
            .collect();
        for (i, mut r) in expanded.into_iter().enumerate() {
            let keep = sp
                .selector
                .transform(&mut r, &plan.templates, &self.ctx)
                .map_err(|e| self.err(page_no, url, e.to_string()))?;
            if !keep {
                continue;
            }
            if let Some(why) = self.invalid(&r) {
                if sp.on_invalid == OnInvalid::Skip {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                return Err(self.refused(page_no, url, i, &why, r.to_string().as_bytes()));
            }
            let mut written = true;
            if let Some(inc) = &sp.incremental {
                let bad = |e: String| self.err(page_no, url, format!("record {}: {e}", i + 1));
                if inc
                    .is_older(&r, self.lower.as_ref(), self.feed_all)
                    .map_err(bad)?
                {
                    written = false;
                } else if let Some(v) = inc.value_of(&r) {
                    let key = crate::record_key::record_key(&r, &sp.primary_key);
                    let seen = match self.boundary {
                        Some(b) => b.holds(inc, v, &key).map_err(bad)?,
                        None => false,
                    };
                    if seen {
                        written = false;
                    } else {
                        let v = v.clone();
                        boundary.add(inc, &v, key).map_err(bad)?;
                    }
                }
            }
            match (&mut feed, written) {
                (Some(f), true) => {
                    f.push(r.clone());
                    write.push(r);
                }
                (Some(f), false) => f.push(r),
                (None, true) => write.push(r),
                (None, false) => {}
            }
        }
        Ok(Shaped {
            write,
            feed,
            boundary,
        })
    }
}

/// Why a record without values for `missing` key fields cannot be a row.
fn no_key(missing: &[&str]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        format!(
            "has no value for its primary key field{} `{}`",
            if missing.len() > 1 { "s" } else { "" },
            missing.join("`, `")
        )
    })
}
