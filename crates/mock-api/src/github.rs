//! An imitation of GitHub's REST endpoint "List repository issues"
//! (`GET /repos/{owner}/{repo}/issues`), after GitHub's REST reference and its guides on
//! pagination, rate limits and troubleshooting:
//!
//! * `state` (`open` default, `closed`, `all`), `since` (updated at or after), `sort`
//!   (`created` default, `updated`, `comments`), `direction` (`desc` default, `asc`),
//!   `labels`, `creator`, `per_page` (default 30, at most 100) and `page` (1-based);
//! * the list holds pull requests too (they carry a `pull_request` key), as GitHub's does;
//! * pagination by an RFC 8288 `Link` header whose URLs, like GitHub's, use the repository id
//!   (`/repositories/{id}/issues?…&page=N`, also served here), with `rel="prev"`, `"next"`,
//!   `"last"` and `"first"` as applicable and no header when everything fits in one page;
//! * `X-RateLimit-Limit/Remaining/Reset/Used/Resource` on every response;
//! * `Authorization: Bearer <token>` or `token <token>`; a wrong token gets
//!   `401 {"message": "Bad credentials", …}`; no credentials at all get `404` (the repositories
//!   are private, and GitHub answers 404 rather than confirm that a private repository
//!   exists); an unknown repository gets `404 {"message": "Not Found", …}`.
//!
//! Not a data endpoint: no latency, faults or global rate limit.

use std::sync::RwLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::GITHUB_TOKEN;
use crate::apis::mix;
use crate::rate_limit::{ApiLimit, RateLimiter, set_header};
use crate::state::AppState;
use crate::util::{Params, format_rfc3339, json, parse_rfc3339, read, write};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/repos/{owner}/{repo}/issues", get(repo_issues))
        .route("/repositories/{id}/issues", get(repository_issues))
}

/// 2023-06-01T00:00:00Z.
const EPOCH: i64 = 1_685_577_600;
/// Id of the first configured repository; the next ones follow.
pub(crate) const FIRST_REPO_ID: u64 = 700_001;
const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;
/// GitHub's limit for a personal access token, reported when no limit is configured.
const NOMINAL_LIMIT: (u32, Duration) = (5000, Duration::from_secs(3600));
const LIST_DOCS: &str = "https://docs.github.com/rest/issues/issues#list-repository-issues";

const LOGINS: [(&str, u64); 5] = [
    ("octocat", 583_231),
    ("hubot", 480_938),
    ("monalisa", 2_918_581),
    ("defunkt", 2),
    ("mojombo", 1),
];
const LABELS: [(&str, &str); 4] = [
    ("bug", "d73a4a"),
    ("enhancement", "a2eeef"),
    ("documentation", "0075ca"),
    ("question", "d876e3"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) number: u64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    /// Issues `number % 3 == 0` are closed, at their first `updated_at`.
    pub(crate) closed_at: Option<i64>,
    /// Numbers `% 4 == 1` are pull requests.
    pub(crate) pull_request: bool,
    pub(crate) comments: u64,
}

impl Issue {
    /// Issue `number` of the repository at index `r`: created `number` hours after
    /// 2023-06-01T00:00:00Z (plus `r` minutes), updated 0 to 719 hours (and some minutes)
    /// later.
    fn initial(r: u64, number: u64) -> Issue {
        let h = mix((r << 32) ^ number);
        let created_at = EPOCH + 3600 * number as i64 + 60 * r as i64;
        let updated_at = created_at + (h % 720) as i64 * 3600 + ((h >> 12) % 60) as i64 * 60;
        Issue {
            number,
            created_at,
            updated_at,
            closed_at: number.is_multiple_of(3).then_some(updated_at),
            pull_request: number % 4 == 1,
            comments: (h >> 20) % 25,
        }
    }

    fn state(&self) -> &'static str {
        if self.closed_at.is_some() {
            "closed"
        } else {
            "open"
        }
    }

    /// Issues `number % 5 == 4` have no label; the others have one of `LABELS`.
    fn label(&self) -> Option<(&'static str, &'static str)> {
        (self.number % 5 != 4).then(|| LABELS[(self.number % 5) as usize])
    }

    fn user(&self) -> (&'static str, u64) {
        LOGINS[(mix(self.number ^ 0xa11ce) % 5) as usize]
    }

    fn to_json(self, base: &str, repo: &Repo) -> Value {
        let full = &repo.full_name;
        let n = self.number;
        let id = 1_900_000_000 + (repo.id - FIRST_REPO_ID) * 1_000_000 + n;
        let api = format!("{base}/repos/{full}/issues/{n}");
        let kind = if self.pull_request { "pull" } else { "issues" };
        let user = |(login, uid): (&str, u64)| {
            json!({
                "login": login,
                "id": uid,
                "node_id": format!("MDQ6VXNlcnt{uid}"),
                "avatar_url": format!("https://avatars.githubusercontent.com/u/{uid}?v=4"),
                "url": format!("{base}/users/{login}"),
                "html_url": format!("https://github.com/{login}"),
                "type": "User",
                "site_admin": false,
            })
        };
        let labels: Vec<Value> = self
            .label()
            .map(|(name, color)| {
                json!({
                    "id": 5_000_000 + name.len() as u64,
                    "node_id": format!("LA_{name}"),
                    "url": format!("{base}/repos/{full}/labels/{name}"),
                    "name": name,
                    "color": color,
                    "default": true,
                    "description": null,
                })
            })
            .into_iter()
            .collect();
        let assignee = n.is_multiple_of(2).then(|| user(LOGINS[(n % 5) as usize]));
        let mut v = json!({
            "url": api,
            "repository_url": format!("{base}/repos/{full}"),
            "labels_url": format!("{api}/labels{{/name}}"),
            "comments_url": format!("{api}/comments"),
            "events_url": format!("{api}/events"),
            "html_url": format!("https://github.com/{full}/{kind}/{n}"),
            "id": id,
            "node_id": format!("{}_{id}", if self.pull_request { "PR" } else { "I" }),
            "number": n,
            "title": if self.pull_request {
                format!("Pull request {n} of {full}")
            } else {
                format!("Issue {n} of {full}")
            },
            "user": user(self.user()),
            "labels": labels,
            "state": self.state(),
            "locked": false,
            "assignee": assignee.clone(),
            "assignees": assignee.into_iter().collect::<Vec<_>>(),
            "milestone": null,
            "comments": self.comments,
            "created_at": format_rfc3339(self.created_at),
            "updated_at": format_rfc3339(self.updated_at),
            "closed_at": self.closed_at.map(format_rfc3339),
            "author_association": "MEMBER",
            "active_lock_reason": null,
            "body": format!("Body of #{n}."),
            "reactions": {
                "url": format!("{api}/reactions"),
                "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
            },
            "timeline_url": format!("{api}/timeline"),
            "performed_via_github_app": null,
            "state_reason": self.closed_at.map(|_| "completed"),
        });
        if self.pull_request {
            v["draft"] = json!(false);
            v["pull_request"] = json!({
                "url": format!("{base}/repos/{full}/pulls/{n}"),
                "html_url": format!("https://github.com/{full}/pull/{n}"),
                "diff_url": format!("https://github.com/{full}/pull/{n}.diff"),
                "patch_url": format!("https://github.com/{full}/pull/{n}.patch"),
                "merged_at": self.closed_at.map(format_rfc3339),
            });
        }
        v
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Repo {
    /// `owner/repo` as configured.
    pub(crate) full_name: String,
    pub(crate) id: u64,
    /// In number order.
    pub(crate) issues: Vec<Issue>,
}

/// The repositories and the endpoint's own rate limiter.
pub(crate) struct GithubStore {
    repos: RwLock<Vec<Repo>>,
    limiter: RateLimiter,
}

impl GithubStore {
    pub(crate) fn new(repos: &[(String, usize)]) -> Self {
        GithubStore {
            repos: RwLock::new(
                repos
                    .iter()
                    .enumerate()
                    .map(|(r, (name, n))| Repo {
                        full_name: name.clone(),
                        id: FIRST_REPO_ID + r as u64,
                        issues: (1..=*n as u64)
                            .map(|k| Issue::initial(r as u64, k))
                            .collect(),
                    })
                    .collect(),
            ),
            limiter: RateLimiter::default(),
        }
    }

    /// `(full name, id, number of issues)` of every repository.
    pub(crate) fn summary(&self) -> Vec<(String, u64, usize)> {
        read(&self.repos)
            .iter()
            .map(|r| (r.full_name.clone(), r.id, r.issues.len()))
            .collect()
    }

    pub(crate) fn len(&self, full_name: &str) -> Option<usize> {
        read(&self.repos)
            .iter()
            .find(|r| r.full_name.eq_ignore_ascii_case(full_name))
            .map(|r| r.issues.len())
    }

    /// Updates those issues of `full_name`: `updated_at` becomes 60 s after the repository's
    /// newest `updated_at` (all the same instant). Unknown repositories and numbers are
    /// ignored.
    pub(crate) fn touch(&self, full_name: &str, numbers: &[u64]) {
        let mut g = write(&self.repos);
        let Some(repo) = g
            .iter_mut()
            .find(|r| r.full_name.eq_ignore_ascii_case(full_name))
        else {
            return;
        };
        let at = repo
            .issues
            .iter()
            .map(|i| i.updated_at)
            .max()
            .unwrap_or(EPOCH)
            + 60;
        for i in repo
            .issues
            .iter_mut()
            .filter(|i| numbers.contains(&i.number))
        {
            i.updated_at = at;
        }
    }

    fn find(&self, by: &RepoRef) -> Option<Repo> {
        read(&self.repos)
            .iter()
            .find(|r| match by {
                RepoRef::Name(n) => r.full_name.eq_ignore_ascii_case(n),
                RepoRef::Id(id) => r.id == *id,
            })
            .cloned()
    }
}

enum RepoRef {
    Name(String),
    Id(u64),
}

/// GitHub's error body: `{"message", "documentation_url", "status"}`.
fn github_error(status: StatusCode, message: &str, docs: &str) -> Response {
    json(
        status,
        &json!({
            "message": message,
            "documentation_url": docs,
            "status": status.as_u16().to_string(),
        }),
    )
}

fn not_found() -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found", LIST_DOCS)
}

/// `422 Validation Failed` naming the offending parameter.
fn invalid(field: &str, value: &str) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "message": "Validation Failed",
            "errors": [{ "value": value, "resource": "Issue", "field": field, "code": "invalid" }],
            "documentation_url": LIST_DOCS,
            "status": "422",
        }),
    )
}

fn check_auth(st: &AppState, h: &HeaderMap) -> Result<(), Response> {
    let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        st.shared.log.count(|c| c.auth_failures += 1);
        return Err(not_found());
    };
    let ok = v.trim().split_once(' ').is_some_and(|(scheme, token)| {
        (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
            && token.trim() == GITHUB_TOKEN
    });
    if ok {
        return Ok(());
    }
    st.shared.log.count(|c| c.auth_failures += 1);
    Err(github_error(
        StatusCode::UNAUTHORIZED,
        "Bad credentials",
        "https://docs.github.com/rest",
    ))
}

fn add_headers(limit: &ApiLimit, headers: &mut HeaderMap) {
    set_header(headers, "x-ratelimit-limit", limit.limit.to_string());
    set_header(
        headers,
        "x-ratelimit-remaining",
        limit.remaining().to_string(),
    );
    set_header(
        headers,
        "x-ratelimit-reset",
        limit.reset_epoch().to_string(),
    );
    set_header(
        headers,
        "x-ratelimit-used",
        limit.limit.saturating_sub(limit.remaining()).to_string(),
    );
    set_header(headers, "x-ratelimit-resource", "core".to_string());
    set_header(
        headers,
        "x-github-api-version-selected",
        "2022-11-28".into(),
    );
    set_header(
        headers,
        "x-github-media-type",
        "github.v3; format=json".into(),
    );
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Query {
    state: Option<&'static str>,
    since: Option<i64>,
    sort: &'static str,
    asc: bool,
    labels: Vec<String>,
    creator: Option<String>,
    per_page: usize,
    page: usize,
}

fn parse_query(p: &Params) -> Result<Query, Response> {
    let nonempty = |k: &str| p.get(k).map(str::trim).filter(|v| !v.is_empty());
    let state = match nonempty("state") {
        None | Some("open") => Some("open"),
        Some("closed") => Some("closed"),
        Some("all") => None,
        Some(v) => return Err(invalid("state", v)),
    };
    let sort = match nonempty("sort") {
        None | Some("created") => "created",
        Some("updated") => "updated",
        Some("comments") => "comments",
        Some(v) => return Err(invalid("sort", v)),
    };
    let asc = match nonempty("direction") {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(v) => return Err(invalid("direction", v)),
    };
    let since = match nonempty("since") {
        None => None,
        Some(v) => Some(parse_rfc3339(v).ok_or_else(|| invalid("since", v))?),
    };
    // Like GitHub: a per_page that is not a number is ignored, above 100 it is 100; a page
    // that is not a positive number is the first.
    let per_page = match nonempty("per_page").and_then(|v| v.parse::<usize>().ok()) {
        None | Some(0) => DEFAULT_PER_PAGE,
        Some(n) => n.min(MAX_PER_PAGE),
    };
    let page = nonempty("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let labels = nonempty("labels")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Query {
        state,
        since,
        sort,
        asc,
        labels,
        creator: nonempty("creator").map(str::to_string),
        per_page,
        page,
    })
}

/// The matching issues in list order.
fn select(repo: &Repo, q: &Query) -> Vec<Issue> {
    let mut out: Vec<Issue> = repo
        .issues
        .iter()
        .filter(|i| q.state.is_none_or(|s| i.state() == s))
        .filter(|i| q.since.is_none_or(|s| i.updated_at >= s))
        .filter(|i| {
            q.labels.iter().all(|l| {
                i.label()
                    .is_some_and(|(name, _)| name.eq_ignore_ascii_case(l))
            })
        })
        .filter(|i| {
            q.creator
                .as_ref()
                .is_none_or(|c| i.user().0.eq_ignore_ascii_case(c))
        })
        .copied()
        .collect();
    out.sort_by_key(|i| {
        let key = match q.sort {
            "updated" => i.updated_at,
            "comments" => i.comments as i64,
            _ => i.created_at,
        };
        (key, i.number)
    });
    if !q.asc {
        out.reverse();
    }
    out
}

/// GitHub's `Link` header for page `page` of `last`: `prev`, `next`, `last`, `first` in that
/// order, each when it applies; `None` when everything fits in one page.
fn link_header(url: &dyn Fn(usize) -> String, page: usize, last: usize) -> Option<String> {
    if page == 1 && last == 1 {
        return None;
    }
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        parts.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        parts.push(format!("<{}>; rel=\"last\"", url(last)));
    } else if page > last {
        parts.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        parts.push(format!("<{}>; rel=\"first\"", url(1)));
    }
    Some(parts.join(", "))
}

fn list(st: &AppState, h: &HeaderMap, by: RepoRef, raw_query: Option<&str>) -> Response {
    let limit = ApiLimit::check(
        &st.shared.github.limiter,
        st.shared.config.github_rate_limit.as_ref(),
        NOMINAL_LIMIT,
    );
    let mut resp = if limit.refused {
        st.shared.log.count(|c| c.rate_limited += 1);
        let github_403 = st
            .shared
            .config
            .github_rate_limit
            .as_ref()
            .is_some_and(|m| m.github_403);
        github_error(
            if github_403 {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::TOO_MANY_REQUESTS
            },
            &format!("API rate limit exceeded for user ID {}.", LOGINS[0].1),
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        )
    } else {
        let run = || -> Result<Response, Response> {
            check_auth(st, h)?;
            let repo = st.shared.github.find(&by).ok_or_else(not_found)?;
            let p = Params::parse(raw_query);
            let q = parse_query(&p)?;
            let all = select(&repo, &q);
            let last = all.len().div_ceil(q.per_page).max(1);
            let page: Vec<Value> = all
                .iter()
                .skip((q.page - 1).saturating_mul(q.per_page))
                .take(q.per_page)
                .map(|i| i.to_json(st.base_url(), &repo))
                .collect();
            let mut resp = json(StatusCode::OK, &Value::Array(page));
            let base = format!("{}/repositories/{}/issues", st.base_url(), repo.id);
            let url = |n: usize| format!("{base}?{}", p.with(&[("page", n.to_string())]).encode());
            if let Some(link) = link_header(&url, q.page, last) {
                set_header(resp.headers_mut(), "link", link);
            }
            Ok(resp)
        };
        run().unwrap_or_else(|e| e)
    };
    add_headers(&limit, resp.headers_mut());
    resp
}

async fn repo_issues(
    State(st): State<AppState>,
    Path((owner, repo)): Path<(String, String)>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    list(
        &st,
        &h,
        RepoRef::Name(format!("{owner}/{repo}")),
        q.as_deref(),
    )
}

async fn repository_issues(
    State(st): State<AppState>,
    Path(id): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match id.parse::<u64>() {
        Ok(id) => list(&st, &h, RepoRef::Id(id), q.as_deref()),
        Err(_) => {
            let limit = ApiLimit::check(
                &st.shared.github.limiter,
                st.shared.config.github_rate_limit.as_ref(),
                NOMINAL_LIMIT,
            );
            let mut resp = not_found();
            add_headers(&limit, resp.headers_mut());
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_like_github() {
        let url = |n: usize| format!("u?page={n}");
        assert_eq!(link_header(&url, 1, 1), None);
        assert_eq!(
            link_header(&url, 1, 3).unwrap(),
            "<u?page=2>; rel=\"next\", <u?page=3>; rel=\"last\""
        );
        assert_eq!(
            link_header(&url, 2, 3).unwrap(),
            "<u?page=1>; rel=\"prev\", <u?page=3>; rel=\"next\", <u?page=3>; rel=\"last\", <u?page=1>; rel=\"first\""
        );
        assert_eq!(
            link_header(&url, 3, 3).unwrap(),
            "<u?page=2>; rel=\"prev\", <u?page=1>; rel=\"first\""
        );
        assert_eq!(
            link_header(&url, 5, 3).unwrap(),
            "<u?page=4>; rel=\"prev\", <u?page=3>; rel=\"last\", <u?page=1>; rel=\"first\""
        );
    }

    #[test]
    fn issues_are_deterministic_and_touch_moves_them_last() {
        let repos = vec![("acme/api".to_string(), 50)];
        let a = GithubStore::new(&repos);
        let b = GithubStore::new(&repos);
        assert_eq!(
            a.find(&RepoRef::Id(FIRST_REPO_ID)).unwrap().issues,
            b.find(&RepoRef::Name("ACME/api".into())).unwrap().issues
        );
        let before = a.find(&RepoRef::Id(FIRST_REPO_ID)).unwrap();
        let newest = before.issues.iter().map(|i| i.updated_at).max().unwrap();
        a.touch("acme/api", &[7, 8, 999]);
        let after = a.find(&RepoRef::Id(FIRST_REPO_ID)).unwrap();
        for (x, y) in before.issues.iter().zip(&after.issues) {
            if [7, 8].contains(&x.number) {
                assert_eq!(y.updated_at, newest + 60);
                assert_eq!(y.created_at, x.created_at);
            } else {
                assert_eq!(x, y);
            }
        }
    }
}
