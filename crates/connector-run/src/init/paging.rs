//! Pagination detection. The first response suggests candidates, strongest
//! evidence first (a `Link` header, a next URL or a cursor in the body, page
//! or offset fields and totals); each is then confirmed with one request
//! that a sync of that kind would make, judged against the first page:
//!
//! - a next link or cursor must bring records that were not on page one;
//! - `?offset=1&limit=2` must return exactly records 2–3 of page one, and
//!   `?page=2&per_page=2` records 3–4 (a "slice test"), which proves both
//!   parameters at once; an API that ignores them returns page one again.
//!
//! At most two confirmation requests are made. A candidate that cannot be
//! confirmed is named in the comment, never silently chosen.

mod candidates;
mod verdict;

pub(crate) use candidates::{body_token, cursor_params, end_marker, looks_like_url};

use super::Choice;
use super::records::{Keys, at, json_path};
use connector_engine::probe::{ProbeResponse, Prober};
use connector_spec::{IntOrTemplate, JsonPath, Pagination, StopConditions};
use serde_json::Value;
use url::Url;

/// Body paths of the total record count.
const TOTAL_PATHS: &[&[&str]] = &[
    &["total"],
    &["total_count"],
    &["totalCount"],
    &["total_results"],
    &["totalResults"],
    &["count"],
    &["meta", "total"],
    &["meta", "total_count"],
    &["pagination", "total"],
    &["@odata.count"],
];

/// Headers carrying the total record count.
const TOTAL_HEADERS: &[&str] = &["x-total-count", "x-total"];

/// Page size written when the API is shown to accept one.
const PAGE_SIZE: u64 = 100;

/// A JSONPath for the spec, from member names.
fn spec_path(k: &[String]) -> JsonPath {
    JsonPath(json_path(k))
}

/// The stop conditions init writes for `offset` and `page_number`: on an
/// empty page, not a short one (a server may cap the page size below ours),
/// and once the total (`total`'s `total_path` or `total_header`) has arrived.
fn numbered_stop(total: Option<&(StopConditions, u64)>) -> StopConditions {
    StopConditions {
        short_page: false,
        ..total.map(|t| t.0.clone()).unwrap_or_default()
    }
}

/// A page size init wrote (always a number).
fn size_of(p: &IntOrTemplate) -> u64 {
    match p {
        IntOrTemplate::Int(n) => *n,
        IntOrTemplate::Template(_) => PAGE_SIZE,
    }
}

/// The first response, understood.
pub struct First<'a> {
    /// The URL that was probed (credentials included, never shown).
    pub url: &'a Url,
    pub resp: &'a ProbeResponse,
    pub body: &'a Value,
    pub records_at: &'a Keys,
    pub records: &'a [Value],
    pub key: Option<&'a str>,
}

/// A confirmation request and what it must return.
#[derive(Debug, Clone)]
struct Trial {
    url: Url,
    /// The request as shown in comments, e.g. "`?offset=1&limit=2`".
    shown: String,
    /// The records of page one it must return exactly: `(start, len)`.
    slice: Option<(usize, usize)>,
    /// The page size it asked for, if any.
    size: Option<usize>,
}

/// A possible pagination, with the evidence for it.
#[derive(Debug, Clone)]
struct Candidate {
    paging: Pagination,
    evidence: String,
    trial: Option<Trial>,
    /// The first response alone justifies it, even if the trial fails.
    strong: bool,
}

/// What a confirmation request returned, compared with page one.
#[derive(Debug)]
enum Outcome {
    /// Exactly the expected records of page one.
    Slice,
    /// Records none of which were on page one.
    Fresh(usize),
    /// Some records of page one again.
    Overlap(usize),
    Empty,
    Failed(String),
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `url` with `pairs` replacing any earlier values of those names.
fn with_query(url: &Url, pairs: &[(&str, String)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !pairs.iter().any(|(p, _)| p == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut u = url.clone();
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        q.extend_pairs(kept);
        q.extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    }
    u
}

/// "`?a=1&b=2`", for comments (values are the trial's own numbers, or `…`).
fn shown_query(pairs: &[(&str, String)]) -> String {
    let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("`?{}`", q.join("&"))
}

fn query_value(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn keys(path: &[&str]) -> Keys {
    path.iter().map(|s| s.to_string()).collect()
}

/// The total record count announced by a response: the stop condition that
/// reads it (`total_path` or `total_header`), and its value.
fn find_total(resp: &ProbeResponse, body: Option<&Value>) -> Option<(StopConditions, u64)> {
    if let Some(body) = body {
        for p in TOTAL_PATHS {
            if let Some(n) = at(body, &keys(p)).and_then(Value::as_u64) {
                let stop = StopConditions {
                    total_path: Some(spec_path(&keys(p))),
                    ..StopConditions::default()
                };
                return Some((stop, n));
            }
        }
    }
    TOTAL_HEADERS.iter().find_map(|h| {
        let n = resp.header(h)?.trim().parse().ok()?;
        let stop = StopConditions {
            total_header: Some(canonical_header(h)),
            ..StopConditions::default()
        };
        Some((stop, n))
    })
}

/// `x-total-count` → `X-Total-Count`.
fn canonical_header(h: &str) -> String {
    h.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// "the total in `$.total` (250)".
fn describe_total(t: &(StopConditions, u64)) -> String {
    match (&t.0.total_path, &t.0.total_header) {
        (Some(p), _) => format!("the total in `{}` ({})", p.as_str(), t.1),
        (None, Some(h)) => format!("the total in the `{h}` header ({})", t.1),
        (None, None) => format!("a total ({})", t.1),
    }
}

/// Confirmation requests `detect` may make after the first one.
const MAX_TRIALS: usize = 2;

/// Detects the pagination; returns the choice and the requests it made.
pub async fn detect(
    prober: &Prober,
    headers: &[(String, String)],
    f: &First<'_>,
) -> (Choice<Pagination>, usize) {
    if !f.body.is_array() && f.records_at.is_empty() {
        return (
            Choice::new(
                Pagination::None,
                "none — the body is a single record, not a list".into(),
            ),
            0,
        );
    }
    let cands = candidates::all(f);
    let mut requests = 0;
    let mut failed: Vec<String> = Vec::new();
    let mut fallback: Option<(Candidate, String)> = None;
    let mut untried: Vec<String> = Vec::new();
    let mut chosen: Option<(Candidate, Pagination, String)> = None;
    for c in &cands {
        if let Some((won, paging, _)) = &chosen {
            // Name the other kinds the first response suggested: beside a
            // confirmed strong signal only other strong signals, not the
            // guesses tried on bare arrays.
            let other = format!("{} — {} (not tried)", c.paging.type_name(), c.evidence);
            if c.paging.type_name() != paging.type_name()
                && (c.strong || !won.strong)
                && !untried.contains(&other)
            {
                untried.push(other);
            }
            continue;
        }
        let Some(trial) = &c.trial else {
            chosen = Some((c.clone(), c.paging.clone(), String::new()));
            continue;
        };
        if requests >= MAX_TRIALS {
            let other = format!(
                "{} — {} (not tried: at most {MAX_TRIALS} confirmation requests)",
                c.paging.type_name(),
                c.evidence
            );
            if !untried.contains(&other) {
                untried.push(other);
            }
            continue;
        }
        requests += 1;
        let outcome = match prober.get(&trial.url, headers).await {
            Ok(resp) => {
                let o = verdict::judge(f, trial, &resp);
                verdict::settle(f, c, trial, &o, &resp)
            }
            Err(e) => Err(format!("{} failed: {e}", trial.shown)),
        };
        match outcome {
            Ok((paging, note)) => chosen = Some((c.clone(), paging, note)),
            Err(why) => {
                if c.strong && fallback.is_none() {
                    fallback = Some((c.clone(), why.clone()));
                }
                failed.push(format!("{} — {why}", c.paging.type_name()));
            }
        }
    }
    let mut alternatives: Vec<String> = failed.iter().map(|f| format!("tried {f}")).collect();
    alternatives.extend(untried);
    let choice = if let Some((c, paging, note)) = chosen {
        let why = if note.is_empty() {
            format!("{} — {}", paging.type_name(), c.evidence)
        } else {
            format!("{} — {}; {note}", paging.type_name(), c.evidence)
        };
        let mut ch = Choice::new(paging, why);
        ch.alternatives = alternatives;
        ch.ambiguous = c.trial.is_none();
        ch
    } else if let Some((c, why)) = fallback {
        let mut ch = Choice::new(
            c.paging.clone(),
            format!(
                "{} — {}, but this could not be confirmed: {why}. Check the spec against the API's docs",
                c.paging.type_name(),
                c.evidence
            ),
        );
        ch.alternatives = alternatives;
        ch.ambiguous = true;
        ch
    } else {
        let why = if f.records.is_empty() {
            "none — the first page had no records, so paging could not be tested".to_string()
        } else if cands.is_empty() {
            "none — no `Link` header, no next URL or cursor in the body, no page fields or total"
                .to_string()
        } else {
            format!(
                "none — {} on the first page and no paging parameter was confirmed; if the API pages some other way (e.g. `?page=N`), set `pagination` by hand",
                plural(f.records.len(), "record")
            )
        };
        let mut ch = Choice::new(Pagination::None, why);
        ch.ambiguous = !cands.is_empty() || f.records.is_empty();
        ch.alternatives = alternatives;
        ch
    };
    (choice, requests)
}
