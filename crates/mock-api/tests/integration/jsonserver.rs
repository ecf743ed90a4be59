use mock_api::{MockConfig, MockServer};

use crate::client::{get, ids};

#[test]
fn start_limit_end_slicing_and_total_count() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();

    let r = get(&format!("{base}/posts?_start=10&_limit=5"));
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r.json()), vec![11, 12, 13, 14, 15]);
    assert_eq!(r.header("x-total-count"), Some("100"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total-Count")
    );

    let r = get(&format!("{base}/comments?_start=3&_end=6"));
    assert_eq!(ids(&r.json()), vec![4, 5, 6]);
    assert_eq!(r.header("x-total-count"), Some("500"));

    // json-server 0.17.4: `_start` alone neither slices nor counts.
    let r = get(&format!("{base}/todos?_start=190"));
    assert_eq!(ids(&r.json()).len(), 200);
    assert_eq!(r.header("x-total-count"), None);

    // No pagination parameter: everything, no count.
    let r = get(&format!("{base}/photos"));
    assert_eq!(ids(&r.json()).len(), 5000);
    assert_eq!(r.header("x-total-count"), None);

    // Total is counted after filtering.
    let r = get(&format!("{base}/comments?postId=2&_limit=2"));
    assert_eq!(ids(&r.json()), vec![6, 7]);
    assert_eq!(r.header("x-total-count"), Some("5"));
}

#[test]
fn page_link_header_walks_all_records() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();

    let r = get(&format!("{base}/posts?_page=3&_limit=10"));
    assert_eq!(ids(&r.json()), (21..=30).collect::<Vec<_>>());
    assert_eq!(r.header("x-total-count"), Some("100"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total-Count, Link")
    );
    assert_eq!(
        r.link("first"),
        Some(format!("{base}/posts?_page=1&_limit=10"))
    );
    assert_eq!(
        r.link("prev"),
        Some(format!("{base}/posts?_page=2&_limit=10"))
    );
    assert_eq!(
        r.link("next"),
        Some(format!("{base}/posts?_page=4&_limit=10"))
    );
    assert_eq!(
        r.link("last"),
        Some(format!("{base}/posts?_page=10&_limit=10"))
    );

    // `_page` without `_limit`: 10 per page; follow rel="next" to the end.
    let mut url = Some(format!("{base}/albums?_page=1"));
    let mut seen = Vec::new();
    while let Some(u) = url {
        let r = get(&u);
        seen.extend(ids(&r.json()));
        url = r.link("next");
    }
    assert_eq!(seen, (1..=100).collect::<Vec<_>>());

    // Past the end: empty page, empty Link header.
    let r = get(&format!("{base}/posts?_page=11"));
    assert_eq!(ids(&r.json()), Vec::<u64>::new());
    assert_eq!(r.header("link"), Some(""));
}

#[test]
fn filters_sort_single_nested_and_404() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();

    let r = get(&format!("{base}/comments?postId=1&postId=3"));
    let body = r.json();
    assert_eq!(ids(&body).len(), 10);
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|c| c["postId"] == 1 || c["postId"] == 3)
    );

    // Unknown filter keys are ignored, like json-server does.
    assert_eq!(ids(&get(&format!("{base}/users?nope=1")).json()).len(), 10);

    let r = get(&format!("{base}/posts?_sort=id&_order=desc&_limit=3"));
    assert_eq!(ids(&r.json()), vec![100, 99, 98]);

    let r = get(&format!("{base}/posts/1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], 1);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    let r = get(&format!("{base}/posts/1000"));
    assert_eq!((r.status, r.json()), (404, serde_json::json!({})));
    let r = get(&format!("{base}/nope"));
    assert_eq!((r.status, r.json()), (404, serde_json::json!({})));

    let r = get(&format!("{base}/posts/1/comments"));
    assert_eq!(ids(&r.json()), vec![1, 2, 3, 4, 5]);
    let r = get(&format!("{base}/posts/2/comments?_limit=2"));
    assert_eq!(ids(&r.json()), vec![6, 7]);
    assert_eq!(r.header("x-total-count"), Some("5"));
    assert_eq!(ids(&get(&format!("{base}/users/1/todos")).json()).len(), 20);
    assert_eq!(
        ids(&get(&format!("{base}/users/2/posts")).json()),
        (11..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&get(&format!("{base}/users/1/albums")).json()).len(),
        10
    );
    assert_eq!(
        ids(&get(&format!("{base}/albums/1/photos")).json()).len(),
        50
    );
}
