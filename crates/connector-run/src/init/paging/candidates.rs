//! The candidates a first response suggests, strongest evidence first,
//! each with the one request that would confirm it.

use super::{
    Candidate, First, PAGE_SIZE, Trial, canonical_header, describe_total, find_total, keys,
    numbered_stop, query_value, shown_query, spec_path, with_query,
};
use crate::init::records::{at, json_path};
use connector_spec::{IntOrTemplate, JsonPath, Pagination, StopConditions, TokenLocation};
use serde_json::Value;

/// Body paths of next-page URLs.
const NEXT_URL_PATHS: &[&[&str]] = &[
    &["next"],
    &["links", "next"],
    &["@odata.nextLink"],
    &["nextRecordsUrl"],
    &["next_page_url"],
    &["paging", "next"],
    &["_links", "next", "href"],
    &["links", "next", "href"],
    &["meta", "next"],
    &["pagination", "next"],
    &["next_url"],
    &["nextLink"],
    &["next_link"],
    &["after_url"],
    &["afterUrl"],
    &["paging", "next", "link"],
];

/// Body paths of next-page tokens.
const CURSOR_PATHS: &[&[&str]] = &[
    &["next_cursor"],
    &["nextCursor"],
    &["cursor"],
    &["meta", "next_cursor"],
    &["meta", "cursor"],
    &["pagination", "next_cursor"],
    &["response_metadata", "next_cursor"],
    &["next_page_token"],
    &["nextPageToken"],
    &["next_token"],
    &["nextToken"],
    &["continuation_token"],
    &["continuationToken"],
    &["paging", "cursors", "after"],
    &["paging", "next", "after"],
    &["after_cursor"],
    &["afterCursor"],
    &["next"],
    &["scroll_id"],
];

/// Response headers carrying a next-page token.
const CURSOR_HEADERS: &[&str] = &[
    "x-next-cursor",
    "x-next-page-token",
    "x-cursor",
    "x-continuation-token",
    "x-next-token",
];

/// Body paths of "more pages follow" booleans.
const HAS_MORE_PATHS: &[&[&str]] = &[
    &["has_more"],
    &["hasMore"],
    &["has_next"],
    &["hasNext"],
    &["more"],
    &["meta", "has_more"],
    &["pagination", "has_more"],
];

/// Body paths of "this is the last page" booleans: Zendesk's
/// `end_of_stream`, Salesforce's `done`, Spring's `last`.
const END_PATHS: &[&[&str]] = &[
    &["end_of_stream"],
    &["endOfStream"],
    &["done"],
    &["is_last"],
    &["isLast"],
    &["is_last_page"],
    &["isLastPage"],
    &["last_page"],
    &["lastPage"],
    &["last"],
    &["meta", "end_of_stream"],
    &["pagination", "is_last"],
];

/// Body fields that mean page numbers.
const PAGE_FIELDS: &[&str] = &[
    "page",
    "current_page",
    "currentPage",
    "page_number",
    "pageNumber",
    "total_pages",
    "totalPages",
    "last_page",
    "page_count",
    "pages",
];

/// Query parameters that carry a page size, by convention.
const SIZE_PARAMS: &[&str] = &[
    "per_page",
    "page_size",
    "pageSize",
    "limit",
    "size",
    "count",
    "_limit",
];

/// A next-page reference rather than an opaque token.
pub(crate) fn looks_like_url(s: &str) -> bool {
    s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with('/')
        || s.starts_with('?')
        || (s.contains('?') && s.contains('=') && !s.contains(' '))
}

/// Query parameter names under which a token read from `name` is sent back.
pub(crate) fn cursor_params(name: &str) -> Vec<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "next_page_token" | "x-next-page-token" => vec!["page_token"],
        "nextpagetoken" => vec!["pageToken"],
        "next_token" | "x-next-token" => vec!["next_token"],
        "nexttoken" => vec!["nextToken"],
        "continuation_token" | "x-continuation-token" => vec!["continuation_token"],
        "continuationtoken" => vec!["continuationToken"],
        "after" => vec!["after"],
        "scroll_id" => vec!["scroll_id"],
        "next_cursor" | "nextcursor" => vec!["cursor", "next_cursor"],
        "after_cursor" | "aftercursor" => vec!["cursor", "after_cursor"],
        "next" => vec!["cursor", "next"],
        _ => vec!["cursor"],
    }
}

/// How a body says whether pages follow, besides its next URL or token
/// going away: a "more follow" flag (`has_more_path`) or an end flag
/// (`stop_path`), with the evidence for the comment.
pub(crate) fn end_flag(body: &Value) -> Option<(StopConditions, String)> {
    let boolean = |paths: &[&[&str]]| {
        paths
            .iter()
            .map(|p| keys(p))
            .find(|p| at(body, p).is_some_and(Value::is_boolean))
    };
    if let Some(p) = boolean(HAS_MORE_PATHS) {
        let stop = StopConditions {
            has_more_path: Some(spec_path(&p)),
            ..StopConditions::default()
        };
        return Some((stop, format!(" and a `{}` flag", json_path(&p))));
    }
    let p = boolean(END_PATHS)?;
    let stop = StopConditions {
        stop_path: Some(spec_path(&p)),
        ..StopConditions::default()
    };
    Some((
        stop,
        format!(
            " and an end flag `{}` (paging stops once it is `true`)",
            json_path(&p)
        ),
    ))
}

/// The end flag of [`end_flag`] when it is a `stop_path`: the API marks its
/// last page rather than leaving the next token out of it.
pub(crate) fn end_marker(body: &Value) -> Option<String> {
    end_flag(body).and_then(|(s, _)| s.stop_path.map(|p| p.as_str().to_string()))
}

/// A next-page token in the body: its member path and value.
pub(crate) fn body_token(body: &Value) -> Option<(Vec<String>, String)> {
    CURSOR_PATHS.iter().find_map(|p| {
        let path = keys(p);
        match at(body, &path) {
            Some(Value::String(s)) if !s.is_empty() && !looks_like_url(s) => {
                Some((path, s.clone()))
            }
            Some(Value::Number(n)) => Some((path, n.to_string())),
            _ => None,
        }
    })
}

/// Every candidate the first response suggests, strongest first.
pub fn all(f: &First) -> Vec<Candidate> {
    let mut out = Vec::new();
    let flag = end_flag(f.body);
    let (stop, more) = flag.unwrap_or_default();
    if let Some(next) = f.resp.link("next") {
        out.push(Candidate {
            paging: Pagination::LinkHeader {
                rel: "next".into(),
                stop: StopConditions::default(),
            },
            evidence: "the first response had `Link: <…>; rel=\"next\"`".into(),
            trial: Some(Trial {
                url: next,
                shown: "the `next` link".into(),
                slice: None,
                size: None,
            }),
            strong: true,
        });
    }
    for p in NEXT_URL_PATHS {
        let path = keys(p);
        match at(f.body, &path) {
            Some(Value::String(s)) if looks_like_url(s) => {
                let Ok(url) = f.resp.url.join(s) else {
                    continue;
                };
                out.push(Candidate {
                    paging: next_url(&path, &stop),
                    evidence: format!(
                        "the body has a next-page URL at `{}`{more}",
                        json_path(&path)
                    ),
                    trial: Some(Trial {
                        url,
                        shown: format!("the URL in `{}`", json_path(&path)),
                        slice: None,
                        size: None,
                    }),
                    strong: true,
                });
                break;
            }
            Some(Value::Null) if !f.records_at.is_empty() => {
                out.push(Candidate {
                    paging: next_url(&path, &stop),
                    evidence: format!(
                        "the body has `{}: null`, a next-page URL field that is empty on this page (it looks like the only page, so this could not be followed)",
                        json_path(&path)
                    ),
                    trial: None,
                    strong: true,
                });
                break;
            }
            _ => {}
        }
    }
    out.extend(cursor_candidates(f));
    out.extend(numbered_candidates(f));
    out
}

fn next_url(path: &[String], stop: &StopConditions) -> Pagination {
    Pagination::NextUrl {
        next_url_path: spec_path(path),
        stop: stop.clone(),
    }
}

/// Where a cursor token comes from: `cursor_path` or `cursor_header`.
type TokenAt = (Option<JsonPath>, Option<String>);

fn cursor_candidates(f: &First) -> Vec<Candidate> {
    let n1 = f.records.len();
    let (stop, more) = end_flag(f.body).unwrap_or_default();
    // token source, value, name
    let mut found: Option<(TokenAt, String, String)> = body_token(f.body).map(|(path, token)| {
        let name = path.last().cloned().unwrap_or_else(|| "cursor".into());
        ((Some(spec_path(&path)), None), token, name)
    });
    if found.is_none() {
        found = f
            .resp
            .headers
            .iter()
            .find(|(k, v)| {
                !v.is_empty() && (CURSOR_HEADERS.contains(&k.as_str()) || k.contains("cursor"))
            })
            .map(|(k, v)| ((None, Some(canonical_header(k))), v.clone(), k.clone()));
    }
    let Some((token, value, name)) = found else {
        return Vec::new();
    };
    let where_ = match &token {
        (Some(p), _) => format!("the body has a next-page token at `{}`", p.as_str()),
        (None, h) => format!(
            "the first response had the header `{}`",
            h.as_deref().unwrap_or_default()
        ),
    };
    // Try a page size too, unless the URL already sets one.
    let size_given = SIZE_PARAMS
        .iter()
        .find_map(|s| query_value(f.url, s).map(|v| (s.to_string(), v)));
    let size_sent = size_given
        .as_ref()
        .and_then(|(s, v)| Some((s.clone(), v.parse::<u64>().ok()?)));
    cursor_params(&name)
        .into_iter()
        .map(|param| {
            let mut pairs = vec![(param, value.clone())];
            let mut size = None;
            if size_given.is_none() && n1 > 2 {
                pairs.push(("limit", "2".into()));
                size = Some(2);
            }
            let mut shown_pairs = pairs.clone();
            shown_pairs[0].1 = "…".into();
            Candidate {
                paging: Pagination::Cursor {
                    cursor_path: token.0.clone(),
                    cursor_header: token.1.clone(),
                    cursor_param: param.to_string(),
                    send_in: TokenLocation::Query,
                    size_param: size_sent.as_ref().map(|s| s.0.clone()),
                    page_size: IntOrTemplate::Int(size_sent.as_ref().map_or(PAGE_SIZE, |s| s.1)),
                    stop: stop.clone(),
                },
                evidence: format!("{where_}{more}"),
                trial: Some(Trial {
                    url: with_query(f.url, &pairs),
                    shown: shown_query(&shown_pairs),
                    slice: None,
                    size,
                }),
                strong: true,
            }
        })
        .collect()
}

/// The object that holds page fields: the body, or its `meta`/`pagination`.
fn page_fields(body: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for holder in [Some(body), body.get("meta"), body.get("pagination")]
        .into_iter()
        .flatten()
    {
        if let Value::Object(m) = holder {
            names.extend(m.keys().cloned());
        }
    }
    names
}

fn numbered_candidates(f: &First) -> Vec<Candidate> {
    let n1 = f.records.len();
    if n1 == 0 {
        return Vec::new();
    }
    let fields = page_fields(f.body);
    let has = |names: &[&str]| fields.iter().find(|k| names.contains(&k.as_str())).cloned();
    let in_url = |names: &[&str]| {
        names
            .iter()
            .find(|n| query_value(f.url, n).is_some())
            .map(|n| n.to_string())
    };
    let total = find_total(f.resp, Some(f.body));
    let bare = f.body.is_array();
    let json_server = in_url(&["_start", "_limit", "_end"]).is_some();
    let page_fields: Vec<String> = fields
        .iter()
        .filter(|k| PAGE_FIELDS.contains(&k.as_str()))
        .map(|k| format!("`{k}`"))
        .collect();
    let page_hint = if page_fields.is_empty() {
        in_url(&["page"]).map(|p| format!("`{p}` in the URL"))
    } else {
        Some(page_fields.join(", "))
    };
    let offset_hint = has(&["offset", "skip", "start"])
        .map(|k| format!("`{k}`"))
        .or_else(|| in_url(&["offset", "skip"]).map(|p| format!("`{p}` in the URL")));

    let size_name = in_url(SIZE_PARAMS)
        .or_else(|| has(&["per_page", "page_size", "pageSize", "limit", "size"]))
        .filter(|s| s != "_limit")
        .unwrap_or_else(|| "per_page".into());
    let json_server_c = |why: &str| {
        offset(
            f,
            "_start",
            "_limit",
            format!("{why}; json-server pages with `_start` and `_limit`"),
        )
    };
    let offset_c = |why: String| {
        let off = in_url(&["offset", "skip"])
            .or_else(|| has(&["offset", "skip"]))
            .unwrap_or_else(|| "offset".into());
        let lim = in_url(&["limit", "take", "count"]).unwrap_or_else(|| "limit".into());
        offset(f, &off, &lim, why)
    };
    let page_c = |why: String| page(f, "page", &size_name, why);
    let total_why = total.as_ref().map(describe_total);

    let mut out = Vec::new();
    if json_server {
        out.push(json_server_c("the URL has `_start`, `_limit` or `_end`"));
    }
    if let Some(h) = &page_hint {
        out.push(page_c(format!("the body has {h}")));
    }
    if let Some(h) = &offset_hint {
        out.push(offset_c(format!("the body has {h}")));
    }
    if page_hint.is_none() && offset_hint.is_none() {
        match (&total_why, bare) {
            (Some(t), false) => {
                out.push(offset_c(format!("the first response states {t}")));
                out.push(page_c(format!("the first response states {t}")));
            }
            (t, true) => {
                let why = match t {
                    Some(t) => format!("the body is a bare array and the response states {t}"),
                    None => "the body is a bare array with no paging hints".into(),
                };
                if !json_server {
                    out.push(json_server_c(&why));
                }
                out.push(offset_c(why));
            }
            (None, false) => {}
        }
    }
    out
}

/// An offset candidate with its slice test (or a next-page test when page
/// one is too short to slice).
fn offset(f: &First, off: &str, lim: &str, evidence: String) -> Candidate {
    let n1 = f.records.len();
    let (pairs, slice) = if n1 >= 3 {
        (vec![(off, "1".into()), (lim, "2".into())], Some((1, 2)))
    } else {
        (vec![(off, n1.to_string()), (lim, n1.to_string())], None)
    };
    let page_size = query_value(f.url, lim)
        .and_then(|v| v.parse().ok())
        .unwrap_or(PAGE_SIZE);
    Candidate {
        paging: Pagination::Offset {
            offset_param: off.into(),
            limit_param: lim.into(),
            page_size: IntOrTemplate::Int(page_size),
            start: 0,
            parallel: false,
            stop: numbered_stop(None),
        },
        evidence,
        trial: Some(Trial {
            url: with_query(f.url, &pairs),
            shown: shown_query(&pairs),
            slice,
            size: slice.map(|s| s.1),
        }),
        strong: false,
    }
}

/// A page-number candidate with its slice test.
fn page(f: &First, page_param: &str, size_param: &str, evidence: String) -> Candidate {
    let n1 = f.records.len();
    let (pairs, slice) = if n1 >= 4 {
        (
            vec![(page_param, "2".into()), (size_param, "2".into())],
            Some((2, 2)),
        )
    } else {
        (
            vec![(page_param, "2".into()), (size_param, n1.to_string())],
            None,
        )
    };
    let page_size = query_value(f.url, size_param)
        .and_then(|v| v.parse().ok())
        .unwrap_or(PAGE_SIZE);
    Candidate {
        paging: Pagination::PageNumber {
            page_param: page_param.into(),
            size_param: Some(size_param.into()),
            page_size: IntOrTemplate::Int(page_size),
            start: 1,
            parallel: false,
            stop: numbered_stop(None),
        },
        evidence,
        trial: Some(Trial {
            url: with_query(f.url, &pairs),
            shown: shown_query(&pairs),
            slice,
            size: slice.map(|s| s.1),
        }),
        strong: false,
    }
}
