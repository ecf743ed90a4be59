//! Judging a confirmation response against page one, and what that
//! confirms.

use super::{
    Candidate, First, Outcome, PAGE_SIZE, Trial, describe_total, find_total, numbered_stop, plural,
    query_value, size_of,
};
use crate::init::records::{identity, records_at};
use connector_engine::probe::ProbeResponse;
use connector_spec::{IntOrTemplate, Pagination, StopConditions};
use serde_json::Value;

/// Compares a confirmation response with page one.
pub fn judge(f: &First, trial: &Trial, resp: &ProbeResponse) -> Outcome {
    if !(200..300).contains(&resp.status) {
        return Outcome::Failed(format!("HTTP {}", resp.status));
    }
    let Some(body) = &resp.json else {
        return Outcome::Failed("the body is not JSON".into());
    };
    let got = records_at(body, f.records_at);
    if got.is_empty() {
        return Outcome::Empty;
    }
    let ids = |rs: &[Value]| -> Vec<String> { rs.iter().map(|r| identity(r, f.key)).collect() };
    let first_ids = ids(f.records);
    let got_ids = ids(&got);
    if let Some((start, len)) = trial.slice
        && first_ids.get(start..start + len) == Some(&got_ids[..])
    {
        return Outcome::Slice;
    }
    let repeated = got_ids.iter().filter(|i| first_ids.contains(i)).count();
    if repeated == 0 {
        Outcome::Fresh(got.len())
    } else {
        Outcome::Overlap(repeated)
    }
}

/// Why `page_size` is what it is: the URL's, or ours once the API took a size.
fn size_note(f: &First, param: &str, size: u64) -> String {
    if query_value(f.url, param).is_some() {
        return format!(" `page_size: {size}` is the `{param}` of the URL.");
    }
    format!(
        " `page_size: {size}` is a choice, not a finding: the API honoured a size of 2, and its default page had {}",
        plural(f.records.len(), "record")
    )
}

/// Turns a trial's outcome into a confirmed pagination, or says why not.
pub fn settle(
    f: &First,
    c: &Candidate,
    trial: &Trial,
    outcome: &Outcome,
    resp: &ProbeResponse,
) -> Result<(Pagination, String), String> {
    let n1 = f.records.len();
    let total = find_total(f.resp, Some(f.body)).or_else(|| find_total(resp, resp.json.as_ref()));
    let total_note = |t: &Option<(StopConditions, u64)>| match t {
        Some(t) => format!("; paging stops once {} has arrived", describe_total(t)),
        None => String::new(),
    };
    let same = |n| {
        format!(
            "{} ignored it: {} of the first page came back",
            trial.shown,
            plural(n, "record")
        )
    };
    match (&c.paging, outcome) {
        (_, Outcome::Failed(e)) => Err(format!("{} failed ({e})", trial.shown)),
        (Pagination::LinkHeader { .. } | Pagination::NextUrl { .. }, Outcome::Fresh(n)) => Ok((
            c.paging.clone(),
            format!(
                "following {} gave {n} more record{}",
                trial.shown,
                if *n == 1 { "" } else { "s" }
            ),
        )),
        (Pagination::LinkHeader { .. } | Pagination::NextUrl { .. }, Outcome::Empty) => Ok((
            c.paging.clone(),
            format!("following {} gave an empty page", trial.shown),
        )),
        (
            Pagination::Cursor {
                cursor_path,
                cursor_header,
                cursor_param,
                send_in,
                size_param,
                page_size,
                stop,
            },
            Outcome::Fresh(n),
        ) => {
            let size_ok = trial.size == Some(*n) && *n < n1;
            let ((size_param, page_size), note) = if size_ok {
                (
                    (Some("limit".to_string()), IntOrTemplate::Int(PAGE_SIZE)),
                    format!(
                        "sending it back as {} gave {} not on the first page, so both the token and `limit` work.{}",
                        trial.shown,
                        plural(*n, "record"),
                        size_note(f, "limit", PAGE_SIZE)
                    ),
                )
            } else {
                (
                    (size_param.clone(), page_size.clone()),
                    format!(
                        "sending it back as {} gave {} not on the first page{}",
                        trial.shown,
                        plural(*n, "record"),
                        if trial.size.is_some() {
                            " (`limit` was ignored, so no page size is sent)"
                        } else {
                            ""
                        }
                    ),
                )
            };
            Ok((
                Pagination::Cursor {
                    cursor_path: cursor_path.clone(),
                    cursor_header: cursor_header.clone(),
                    cursor_param: cursor_param.clone(),
                    send_in: *send_in,
                    size_param,
                    page_size,
                    stop: stop.clone(),
                },
                note,
            ))
        }
        (Pagination::Cursor { .. }, Outcome::Overlap(n)) => Err(same(*n)),
        (Pagination::Cursor { .. }, Outcome::Empty | Outcome::Slice) => {
            Err(format!("{} gave an empty page", trial.shown))
        }
        (
            Pagination::Offset {
                offset_param,
                limit_param,
                page_size,
                start,
                parallel,
                ..
            },
            Outcome::Slice,
        ) => Ok((
            Pagination::Offset {
                offset_param: offset_param.clone(),
                limit_param: limit_param.clone(),
                page_size: page_size.clone(),
                start: *start,
                parallel: *parallel,
                stop: numbered_stop(total.as_ref()),
            },
            format!(
                "{} returned exactly records 2–3 of the first page, so `{offset_param}` and `{limit_param}` slice the collection{}.{}",
                trial.shown,
                total_note(&total),
                size_note(f, limit_param, size_of(page_size))
            ),
        )),
        (
            Pagination::Offset {
                offset_param,
                limit_param,
                page_size,
                start,
                parallel,
                ..
            },
            Outcome::Fresh(n),
        ) if trial.slice.is_none() => Ok((
            Pagination::Offset {
                offset_param: offset_param.clone(),
                limit_param: limit_param.clone(),
                page_size: page_size.clone(),
                start: *start,
                parallel: *parallel,
                stop: numbered_stop(total.as_ref()),
            },
            format!(
                "{} gave {} after the first page{}",
                trial.shown,
                plural(*n, "record"),
                total_note(&total)
            ),
        )),
        (
            Pagination::PageNumber {
                page_param,
                size_param,
                page_size,
                start,
                parallel,
                ..
            },
            Outcome::Slice | Outcome::Fresh(_),
        ) => {
            let exact = matches!(outcome, Outcome::Slice);
            let (size_param, page_size, how) = if exact {
                (
                    size_param.clone(),
                    page_size.clone(),
                    format!(
                        "returned exactly records 3–4 of the first page, so `{page_param}` and `{}` work{}.{}",
                        size_param.as_deref().unwrap_or(""),
                        total_note(&total),
                        size_note(f, size_param.as_deref().unwrap_or(""), size_of(page_size))
                    ),
                )
            } else {
                let size = size_param.as_deref().unwrap_or("");
                let why = if trial.slice.is_some() {
                    format!("but not 2 of them: `{size}` was ignored")
                } else {
                    format!("but `{size}` could not be tested on so short a page")
                };
                (
                    None,
                    IntOrTemplate::Int(n1 as u64),
                    format!(
                        "gave records not on the first page, so `{page_param}` works, {why}; no page size is sent and pages keep the server's default size ({n1}){}",
                        total_note(&total)
                    ),
                )
            };
            Ok((
                Pagination::PageNumber {
                    page_param: page_param.clone(),
                    size_param,
                    page_size,
                    start: *start,
                    parallel: *parallel,
                    stop: numbered_stop(total.as_ref()),
                },
                format!("{} {how}", trial.shown),
            ))
        }
        (_, Outcome::Empty) => Err(format!(
            "{} gave an empty page, so it could not be confirmed",
            trial.shown
        )),
        (_, Outcome::Overlap(n)) => Err(same(*n)),
        (_, Outcome::Fresh(n)) => Err(format!(
            "{} gave {}, not the expected slice of the first page",
            trial.shown,
            plural(*n, "other record")
        )),
        (_, Outcome::Slice) => Err(format!("{} gave an unexpected page", trial.shown)),
    }
}
