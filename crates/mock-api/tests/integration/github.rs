//! The GitHub imitation: "List repository issues" with `Link` pagination.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_api::{GITHUB_TOKEN, MockConfig, MockServer, RateLimitMode};
use serde_json::{Value, json};

use crate::apis::instant;
use crate::client::{Resp, get, get_with};

fn bearer() -> String {
    format!("Bearer {GITHUB_TOKEN}")
}

fn issues_url(url: &str) -> Resp {
    get_with(url, &[("Authorization", &bearer())])
}

fn issues(base: &str, repo: &str, query: &str) -> Resp {
    issues_url(&format!("{base}/repos/{repo}/issues?{query}"))
}

fn ok(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

fn numbers(list: &[Value]) -> Vec<u64> {
    list.iter().map(|i| i["number"].as_u64().unwrap()).collect()
}

/// Follows `rel="next"` from `first`; returns every issue and every response.
fn walk(first: &str) -> (Vec<Value>, Vec<Resp>) {
    let (mut all, mut pages) = (Vec::new(), Vec::new());
    let mut url = Some(first.to_string());
    while let Some(u) = url {
        assert!(pages.len() < 1000, "does not terminate");
        let r = issues_url(&u);
        all.extend(ok(&r));
        url = r.link("next");
        pages.push(r);
    }
    (all, pages)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn github_link_pagination_visits_every_issue_and_pull_request() {
    let s = MockServer::start(MockConfig::default());
    assert_eq!(s.github_issues_len("acme/api"), Some(250));
    assert_eq!(s.github_issues_len("acme/web"), Some(120));
    assert_eq!(s.github_issues_len("acme/nope"), None);
    let base = s.url();

    let (all, pages) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&per_page=100"
    ));
    assert_eq!(all.len(), 250);
    assert_eq!(pages.len(), 3);
    let nums: HashSet<u64> = numbers(&all).into_iter().collect();
    assert_eq!(nums, (1..=250).collect::<HashSet<u64>>());
    // Default sort: created, newest first.
    assert_eq!(numbers(&all), (1..=250).rev().collect::<Vec<u64>>());

    // The Link header, GitHub style: repository-id URLs, the query kept, page last.
    let link = |page: usize| {
        format!("{base}/repositories/700001/issues?state=all&per_page=100&page={page}")
    };
    let first = &pages[0];
    assert_eq!(first.link("next"), Some(link(2)));
    assert_eq!(first.link("last"), Some(link(3)));
    assert_eq!((first.link("prev"), first.link("first")), (None, None));
    assert_eq!(
        pages[1].header("link").unwrap(),
        format!(
            "<{}>; rel=\"prev\", <{}>; rel=\"next\", <{}>; rel=\"last\", <{}>; rel=\"first\"",
            link(1),
            link(3),
            link(3),
            link(1)
        )
    );
    let last = &pages[2];
    assert_eq!((last.link("next"), last.link("last")), (None, None));
    assert_eq!(last.link("prev"), Some(link(2)));
    assert_eq!(last.link("first"), Some(link(1)));

    // Pull requests are in the list, with a `pull_request` key; issues have none.
    for i in &all {
        let n = i["number"].as_u64().unwrap();
        let full = "acme/api";
        assert_eq!(i.get("pull_request").is_some(), n % 4 == 1, "{n}");
        if n % 4 == 1 {
            assert_eq!(
                i["pull_request"]["url"],
                json!(format!("{base}/repos/{full}/pulls/{n}"))
            );
            assert_eq!(
                i["html_url"],
                json!(format!("https://github.com/{full}/pull/{n}"))
            );
        } else {
            assert_eq!(
                i["html_url"],
                json!(format!("https://github.com/{full}/issues/{n}"))
            );
        }
        assert_eq!(i["state"], if n % 3 == 0 { "closed" } else { "open" });
        assert_eq!(i["closed_at"].is_null(), n % 3 != 0);
        assert_eq!(i["url"], json!(format!("{base}/repos/{full}/issues/{n}")));
        assert!(i["id"].is_u64() && i["user"]["login"].is_string());
        for k in ["created_at", "updated_at"] {
            let t = i[k].as_str().unwrap();
            assert!(t.ends_with('Z') && t.len() == 20, "{t}");
        }
        assert!(
            instant(i["created_at"].as_str().unwrap())
                <= instant(i["updated_at"].as_str().unwrap())
        );
    }
    assert_eq!(
        all.iter()
            .filter(|i| i.get("pull_request").is_some())
            .count(),
        63
    );

    // Defaults: open only, 30 per page.
    let open = (1..=250u64).filter(|n| n % 3 != 0).count();
    let r = issues(&base, "acme/api", "");
    let page = ok(&r);
    assert_eq!(page.len(), 30);
    assert!(page.iter().all(|i| i["state"] == "open"));
    assert_eq!(
        r.link("last"),
        Some(format!(
            "{base}/repositories/700001/issues?page={}",
            open.div_ceil(30)
        ))
    );
    let (every_open, _) = walk(&format!("{base}/repos/acme/api/issues"));
    assert_eq!(every_open.len(), open);

    // Rate-limit headers on every response: the nominal 5000 an hour.
    let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(reset > now() && reset <= now() + 3601, "{reset}");
    assert_eq!(r.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    let remaining: u32 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
    let used: u32 = r.header("x-ratelimit-used").unwrap().parse().unwrap();
    assert_eq!((remaining + used, used), (5000, 4));
    // 4 requests before `r`, then 6 pages of open issues, then this one.
    let next = issues(&base, "acme/api", "");
    assert_eq!(next.header("x-ratelimit-used"), Some("11"));

    // The link target serves the same thing.
    let by_id = issues_url(&format!(
        "{base}/repositories/700002/issues?state=all&per_page=100"
    ));
    let by_name = issues(&base, "acme/web", "state=all&per_page=100");
    assert_eq!(ok(&by_id), ok(&by_name));
    assert_eq!(ok(&by_id).len(), 100);
}

#[test]
fn github_since_sort_direction_and_filters() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let (asc, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&sort=updated&direction=asc&per_page=100"
    ));
    assert_eq!(asc.len(), 250);
    let keys: Vec<(i64, u64)> = asc
        .iter()
        .map(|i| {
            (
                instant(i["updated_at"].as_str().unwrap()),
                i["number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "updated ascending");
    assert_ne!(numbers(&asc), (1..=250).collect::<Vec<u64>>());

    // since keeps the issues updated at or after it.
    let since = asc[120]["updated_at"].as_str().unwrap();
    let (later, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&sort=updated&direction=asc&per_page=100&since={since}"
    ));
    let t = instant(since);
    let want: Vec<u64> = keys.iter().filter(|k| k.0 >= t).map(|k| k.1).collect();
    assert_eq!(numbers(&later), want);
    assert_eq!(later[0]["updated_at"], json!(since));
    // A date alone is midnight UTC.
    let all_since_2000 = ok(&issues(
        &base,
        "acme/api",
        "state=all&since=2000-01-01&per_page=100",
    ));
    assert_eq!(all_since_2000.len(), 100);
    assert!(ok(&issues(&base, "acme/api", "since=2099-01-01T00:00:00Z")).is_empty());

    let (desc, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&sort=updated&per_page=100"
    ));
    assert_eq!(
        numbers(&desc),
        numbers(&asc).into_iter().rev().collect::<Vec<_>>()
    );

    let by_comments = ok(&issues(
        &base,
        "acme/api",
        "state=all&sort=comments&per_page=100",
    ));
    let c: Vec<u64> = by_comments
        .iter()
        .map(|i| i["comments"].as_u64().unwrap())
        .collect();
    assert!(c.windows(2).all(|w| w[0] >= w[1]));

    let (closed, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=closed&per_page=100"
    ));
    assert_eq!(closed.len(), 83);
    assert!(numbers(&closed).iter().all(|n| n % 3 == 0));
    assert!(closed.iter().all(|i| i["state_reason"] == "completed"));
    let created_asc = ok(&issues(
        &base,
        "acme/api",
        "state=closed&direction=asc&per_page=5",
    ));
    assert_eq!(numbers(&created_asc), vec![3, 6, 9, 12, 15]);

    let (bugs, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&labels=bug&per_page=100"
    ));
    assert_eq!(bugs.len(), 50);
    assert!(bugs.iter().all(|i| i["labels"][0]["name"] == "bug"));
    assert!(ok(&issues(&base, "acme/api", "state=all&labels=bug,question")).is_empty());
    let login = asc[0]["user"]["login"].as_str().unwrap().to_string();
    let (mine, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&creator={login}&per_page=100"
    ));
    assert!(!mine.is_empty() && mine.len() < 250);
    assert!(mine.iter().all(|i| i["user"]["login"] == json!(login)));

    // per_page is at most 100, page 0 is the first page, past the end is empty.
    assert_eq!(
        ok(&issues(&base, "acme/api", "state=all&per_page=500")).len(),
        100
    );
    assert_eq!(
        ok(&issues(&base, "acme/api", "state=all&page=0")),
        ok(&issues(&base, "acme/api", "state=all"))
    );
    let r = issues(&base, "acme/api", "state=all&per_page=100&page=4");
    assert!(ok(&r).is_empty());
    assert!(r.link("next").is_none());
    assert_eq!(
        r.link("last"),
        Some(format!(
            "{base}/repositories/700001/issues?state=all&per_page=100&page=3"
        ))
    );
}

#[test]
fn github_touch_then_since_finds_exactly_the_touched_issues() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let newest = ok(&issues(
        &base,
        "acme/web",
        "state=all&sort=updated&per_page=1",
    ));
    let newest_at = newest[0]["updated_at"].as_str().unwrap().to_string();
    let newest_n = newest[0]["number"].as_u64().unwrap();

    let (api_before, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&per_page=100"
    ));
    s.github_touch("acme/web", &[3, 11, 10, 9999]);
    s.github_touch("acme/nope", &[1]);
    let q = format!("state=all&sort=updated&direction=asc&since={newest_at}");
    let got = ok(&issues(&base, "acme/web", &q));
    assert_eq!(numbers(&got), vec![newest_n, 3, 10, 11]);
    let touched_at = got[1]["updated_at"].as_str().unwrap();
    assert_eq!(instant(touched_at) - instant(&newest_at), 60_000_000);
    let q = format!("state=all&sort=updated&direction=asc&since={touched_at}");
    assert_eq!(
        numbers(&ok(&issues(&base, "acme/web", &q))),
        vec![3, 10, 11]
    );
    // Other repositories are untouched.
    let (api_after, _) = walk(&format!(
        "{base}/repos/acme/api/issues?state=all&per_page=100"
    ));
    assert_eq!(api_after, api_before);
    // Still 120 issues, each once.
    let (all, _) = walk(&format!(
        "{base}/repos/acme/web/issues?state=all&per_page=100"
    ));
    assert_eq!(all.len(), 120);
}

#[test]
fn github_auth_not_found_and_validation() {
    let s = MockServer::start(MockConfig::default().github_repo("octo/tiny", 3));
    let base = s.url();
    let url = format!("{base}/repos/acme/api/issues");

    // No credentials: a private repository is "Not Found", as GitHub answers.
    let r = get(&url);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "Not Found");
    assert!(r.json()["documentation_url"].is_string());
    assert!(r.header("x-ratelimit-limit").is_some());
    let r = get_with(&url, &[("Authorization", "Bearer ghp_wrong")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Bad credentials");
    assert_eq!(
        r.json()["documentation_url"],
        "https://docs.github.com/rest"
    );
    assert!(r.header("x-ratelimit-remaining").is_some());
    assert_eq!(
        get_with(&url, &[("Authorization", "Basic eDp5")]).status,
        401
    );
    assert_eq!(s.counters().auth_failures, 3);
    let r = get_with(&url, &[("Authorization", &format!("token {GITHUB_TOKEN}"))]);
    assert_eq!(ok(&r).len(), 30);

    // Unknown repositories; names are case-insensitive.
    let r = issues(&base, "acme/nope", "");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "Not Found");
    assert_eq!(
        issues_url(&format!("{base}/repositories/1/issues")).status,
        404
    );
    assert_eq!(
        issues_url(&format!("{base}/repositories/abc/issues")).status,
        404
    );
    assert_eq!(
        ok(&issues(&base, "ACME/Api", "per_page=1")),
        ok(&issues(&base, "acme/api", "per_page=1"))
    );

    // An empty repository and one that fits in a page: no Link header.
    let r = issues(&base, "acme/empty", "");
    assert!(ok(&r).is_empty());
    assert!(r.header("link").is_none());
    let r = issues(&base, "octo/tiny", "state=all");
    assert_eq!(numbers(&ok(&r)), vec![3, 2, 1]);
    assert!(r.header("link").is_none());
    let r = issues_url(&format!("{base}/repositories/700004/issues?state=all"));
    assert_eq!(ok(&r).len(), 3);

    for (q, field) in [
        ("state=bogus", "state"),
        ("sort=name", "sort"),
        ("direction=up", "direction"),
        ("since=yesterday", "since"),
    ] {
        let r = issues(&base, "acme/api", q);
        assert_eq!(r.status, 422, "{q}");
        let v = r.json();
        assert_eq!(v["message"], "Validation Failed");
        assert_eq!(v["errors"][0]["field"], field);
    }
}

#[test]
fn github_rate_limit_403_or_429_with_remaining_zero() {
    for (github_403, status) in [(true, 403), (false, 429)] {
        let s = MockServer::start(MockConfig::default().github_rate_limit(
            RateLimitMode::new(2, Duration::from_secs(3600)).github_403(github_403),
        ));
        let base = s.url();
        let a = issues(&base, "acme/web", "");
        assert_eq!(
            (
                a.status,
                a.header("x-ratelimit-limit"),
                a.header("x-ratelimit-remaining")
            ),
            (200, Some("2"), Some("1"))
        );
        assert_eq!(issues(&base, "acme/web", "").status, 200);
        let r = issues(&base, "acme/web", "");
        assert_eq!(r.status, status);
        assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
        assert_eq!(r.header("x-ratelimit-used"), Some("2"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset > now() && reset <= now() + 3601);
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("API rate limit exceeded")
        );
        assert_eq!(s.counters().rate_limited, 1);
    }
}
