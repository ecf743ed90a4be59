use std::time::Duration;

use mock_api::{
    API_KEY, CLIENT_ID, CLIENT_SECRET, MockConfig, MockServer, Origin, REFRESH_TOKEN, TOKEN,
};

use crate::client::{get, get_with, ids, post};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn basic(user: &str, pass: &str) -> String {
    // Standard base64, enough for the ASCII test credentials.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[test]
fn static_credentials() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let bearer = format!("Bearer {TOKEN}");
    let custom = format!("Token {API_KEY}");
    let good_basic = basic("user", "p4ss");
    let bad_basic = basic("user", "nope");
    type Headers<'a> = Vec<(&'a str, &'a str)>;
    // (path, good headers, bad headers, expected WWW-Authenticate scheme)
    let cases: Vec<(&str, Headers, Headers, &str)> = vec![
        (
            "/auth/bearer?limit=3",
            vec![("Authorization", &bearer)],
            vec![("Authorization", "Bearer nope")],
            "Bearer",
        ),
        (
            "/auth/api_key_header?limit=3",
            vec![("X-API-Key", API_KEY)],
            vec![("X-API-Key", "nope")],
            "ApiKey",
        ),
        (
            "/auth/basic?limit=3",
            vec![("Authorization", &good_basic)],
            vec![("Authorization", &bad_basic)],
            "Basic",
        ),
        (
            "/auth/custom?limit=3",
            vec![("X-Custom-Auth", &custom)],
            vec![("X-Custom-Auth", API_KEY)],
            "Token",
        ),
    ];
    let mut failures = 0;
    for (path, good, bad, scheme) in cases {
        let r = get_with(&format!("{base}{path}"), &good);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(ids(&r.json()["data"]), vec![1, 2, 3], "{path}");
        for h in [bad, vec![]] {
            let r = get_with(&format!("{base}{path}"), &h);
            assert_eq!(r.status, 401, "{path}");
            failures += 1;
            assert!(
                r.header("www-authenticate").unwrap().starts_with(scheme),
                "{path}"
            );
        }
    }
    let r = get(&format!(
        "{base}/auth/api_key_query?limit=3&api_key={API_KEY}"
    ));
    assert_eq!(ids(&r.json()["data"]), vec![1, 2, 3]);
    assert_eq!(
        get(&format!("{base}/auth/api_key_query?api_key=x")).status,
        401
    );
    assert_eq!(s.counters().auth_failures, failures + 1);
}

#[test]
fn oauth_client_credentials_refresh_and_expiry() {
    let s = MockServer::start(MockConfig::default().oauth_token_ttl(Duration::from_secs(1)));
    let base = s.url();
    let token_url = format!("{base}/oauth/token");

    let r = post(
        &token_url,
        &[FORM],
        &format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        ),
    );
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_string();
    assert!(token.len() >= 16);

    let auth = format!("Bearer {token}");
    let r = get_with(
        &format!("{base}/auth/oauth2?limit=2"),
        &[("Authorization", &auth)],
    );
    assert_eq!((r.status, ids(&r.json()["data"])), (200, vec![1, 2]));
    let r = get_with(
        &format!("{base}/auth/oauth2"),
        &[("Authorization", "Bearer made-up")],
    );
    assert_eq!(r.status, 401);

    // HTTP basic client authentication.
    let r = post(
        &token_url,
        &[FORM, ("Authorization", &basic(CLIENT_ID, CLIENT_SECRET))],
        "grant_type=client_credentials",
    );
    assert_eq!(r.status, 200);
    // Refresh token grant.
    let r = post(
        &token_url,
        &[FORM],
        &format!("grant_type=refresh_token&refresh_token={REFRESH_TOKEN}"),
    );
    assert_eq!(r.status, 200);
    let refreshed = format!("Bearer {}", r.json()["access_token"].as_str().unwrap());

    // Wrong credentials.
    let r = post(
        &token_url,
        &[FORM],
        &format!("grant_type=client_credentials&client_id={CLIENT_ID}&client_secret=wrong"),
    );
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = post(
        &token_url,
        &[FORM],
        "grant_type=refresh_token&refresh_token=nope",
    );
    assert_eq!(r.status, 400);
    assert_eq!(s.counters().tokens_issued, 3);

    // Tokens expire after the TTL.
    std::thread::sleep(Duration::from_millis(1100));
    let r = get_with(&format!("{base}/auth/oauth2"), &[("Authorization", &auth)]);
    assert_eq!(r.status, 401);
    let r = get_with(
        &format!("{base}/auth/oauth2"),
        &[("Authorization", &refreshed)],
    );
    assert_eq!(r.status, 401);
}

#[test]
fn redirect_to_other_origin_and_cross_origin_next_link() {
    let s = MockServer::start(MockConfig::default());
    let base = s.url();
    let other = s.other_origin_url();
    assert_ne!(base, other);
    let bearer = format!("Bearer {TOKEN}");

    assert_eq!(
        get(&format!("{base}/auth/redirect_other?limit=2")).status,
        401
    );
    let r = get_with(
        &format!("{base}/auth/redirect_other?limit=2"),
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("{other}/gen/offset?limit=2"));

    s.clear_requests();
    // A well-behaved client drops Authorization across origins.
    let r = get(&location);
    assert_eq!(ids(&r.json()["data"]), vec![1, 2]);
    let log = s.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].origin, Origin::Other);
    assert_eq!(log[0].header("authorization"), None);

    // Same-origin redirect keeps the query.
    let r = get(&format!("{base}/redirect/same?offset=5&limit=1"));
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/gen/offset?offset=5&limit=1"))
    );

    // next_other: authenticated first page, next link on the other origin.
    let r = get_with(
        &format!("{base}/auth/next_other?limit=4"),
        &[("Authorization", &bearer)],
    );
    let body = r.json();
    assert_eq!(ids(&body["data"]), vec![1, 2, 3, 4]);
    let next = body["links"]["next"].as_str().unwrap();
    assert_eq!(next, format!("{other}/gen/next_absolute?limit=4&after=4"));
    assert_eq!(ids(&get(next).json()["data"]), vec![5, 6, 7, 8]);
    assert_eq!(get(&format!("{other}/auth/bearer")).status, 404);
}
