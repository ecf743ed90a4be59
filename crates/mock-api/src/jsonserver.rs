//! json-server 0.17.4 over the JSONPlaceholder database, i.e. what
//! `jsonplaceholder.typicode.com` runs, read-only.
//!
//! Supported, with json-server's quirks: `GET /{resource}` with `_start`/`_end`/`_limit`
//! slicing, `_page`(+`_limit`, default 10) with a `Link` header, `X-Total-Count` whenever
//! `_end`, `_limit` or `_page` is given, field filters (`?postId=1`, repeated = OR, dotted
//! paths, `_gte`/`_lte`/`_ne`/`_like`), unknown filter keys silently ignored, `q` full-text
//! search, `_sort`/`_order`, `_embed`/`_expand`, `_delay`; `GET /{resource}/{id}`;
//! `GET /{resource}/{id}/{nested}` (= `/{nested}?{singular(resource)}Id={id}`); `GET /db`.
//! Anything else is `404 {}`.

use std::cmp::Ordering;
use std::path::Path as FsPath;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value};

use crate::state::AppState;

/// Loads a json-server database file (a JSON object of collections).
pub(crate) fn load_db(path: &FsPath) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read json-server db {}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{}: the db must be a JSON object", path.display())),
        Err(e) => Err(format!("{}: invalid JSON: {e}", path.display())),
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/db", get(whole_db))
        .route("/{resource}", get(list))
        .route("/{resource}/{id}", get(show))
        .route("/{resource}/{id}/{nested}", get(nested))
}

/// Express's `req.query`: keys in first-seen order, repeated keys as arrays.
#[derive(Debug, Default)]
struct Query(Vec<(String, Vec<String>)>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match q.0.iter_mut().find(|(qk, _)| *qk == k) {
                Some((_, vs)) => vs.push(v.into_owned()),
                None => q.0.push((k.into_owned(), vec![v.into_owned()])),
            }
        }
        q
    }

    /// Removes `key` and returns its first value (Express would hand over an array when the
    /// key is repeated; the numeric parameters then behave like their first value).
    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        self.0.remove(i).1.into_iter().next()
    }

    fn set(&mut self, key: String, value: String) {
        self.0.retain(|(k, _)| *k != key);
        self.0.push((key, vec![value]));
    }

    /// All values of `key` (for `_embed`/`_expand`).
    fn take_all(&mut self, key: &str) -> Vec<String> {
        match self.0.iter().position(|(k, _)| k == key) {
            Some(i) => self.0.remove(i).1,
            None => Vec::new(),
        }
    }
}

/// JavaScript truthiness of a query value (`""` is falsy).
fn truthy(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

/// JavaScript `parseInt(s, 10)`; `None` is `NaN`.
fn parse_int(s: Option<&str>) -> Option<i64> {
    let s = s?.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let n: i64 = digits[..end].parse().unwrap_or(i64::MAX);
    Some(if neg { -n } else { n })
}

/// JavaScript `Array.prototype.slice(start, end)` bounds.
fn js_slice<T: Clone>(items: &[T], start: i64, end: i64) -> Vec<T> {
    let len = items.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (s, e) = (clamp(start), clamp(end));
    if s >= e {
        Vec::new()
    } else {
        items[s as usize..e as usize].to_vec()
    }
}

/// JavaScript `String(value)`.
fn js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Null => String::new(),
                x => js_string(x),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// JavaScript `Number(string)`.
fn js_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        0.0
    } else {
        t.parse().unwrap_or(f64::NAN)
    }
}

/// A JavaScript primitive, for relational comparisons.
enum Prim {
    Str(String),
    Num(f64),
}

fn to_prim(v: &Value) -> Prim {
    match v {
        Value::Number(n) => Prim::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Prim::Num(if *b { 1.0 } else { 0.0 }),
        Value::Null => Prim::Num(0.0),
        other => Prim::Str(js_string(other)),
    }
}

/// JavaScript's abstract relational comparison; `None` when `NaN` is involved.
fn js_cmp(a: &Prim, b: &Prim) -> Option<Ordering> {
    match (a, b) {
        (Prim::Str(x), Prim::Str(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        _ => {
            let n = |p: &Prim| match p {
                Prim::Str(s) => js_number(s),
                Prim::Num(f) => *f,
            };
            n(a).partial_cmp(&n(b))
        }
    }
}

/// lodash `_.get(obj, path)`: the literal key first, then a dotted path.
fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(path) {
        return Some(x);
    }
    if !path.contains('.') {
        return None;
    }
    path.split('.').try_fold(v, |cur, seg| match cur {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// json-server's `deepQuery` (full-text search of `q`, already lower-cased).
fn deep_query(v: &Value, q: &str) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) if s.is_empty() => false,
        Value::Number(n) if n.as_f64() == Some(0.0) => false,
        Value::Array(a) => a.iter().any(|x| deep_query(x, q)),
        Value::Object(m) => m.values().any(|x| deep_query(x, q)),
        other => js_string(other).to_lowercase().contains(q),
    }
}

/// lodash `compareAscending`: `null` and `undefined` sort last.
fn compare_ascending(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| match v {
        None => 2,
        Some(Value::Null) => 1,
        Some(_) => 0,
    };
    match (rank(a), rank(b)) {
        (0, 0) => {}
        (x, y) => return x.cmp(&y),
    }
    let (pa, pb) = (
        to_prim(a.unwrap_or(&Value::Null)),
        to_prim(b.unwrap_or(&Value::Null)),
    );
    js_cmp(&pa, &pb).unwrap_or(Ordering::Equal)
}

/// `pluralize.singular` for ordinary English plurals.
fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if word.ends_with("sses")
        || word.ends_with("xes")
        || word.ends_with("ches")
        || word.ends_with("shes")
    {
        word[..word.len() - 2].to_string()
    } else if word.ends_with('s') && !word.ends_with("ss") {
        word[..word.len() - 1].to_string()
    } else {
        word.to_string()
    }
}

/// `pluralize(word)`, trusting the db: a word that names a collection is already plural.
fn plural(db: &Map<String, Value>, word: &str) -> String {
    if db.contains_key(word) {
        return word.to_string();
    }
    let consonant_y = word.ends_with('y')
        && !word.ends_with("ay")
        && !word.ends_with("ey")
        && !word.ends_with("oy")
        && !word.ends_with("uy");
    if consonant_y {
        format!("{}ies", &word[..word.len() - 1])
    } else if ["s", "x", "ch", "sh"].iter().any(|s| word.ends_with(s)) {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

/// lodash-id `getById`: compares `String(doc.id)` with the id.
fn get_by_id<'a>(items: &'a [Value], id: &str) -> Option<&'a Value> {
    items
        .iter()
        .find(|d| d.get("id").is_some_and(|x| js_string(x) == id))
}

fn embed_expand(
    db: &Map<String, Value>,
    name: &str,
    item: &mut Value,
    embed: &[String],
    expand: &[String],
) {
    let Value::Object(obj) = item else { return };
    for ext in embed {
        let fk = format!("{}Id", singular(name));
        let id = obj.get("id").cloned().unwrap_or(Value::Null);
        let children: Vec<Value> = match db.get(ext) {
            Some(Value::Array(a)) => a
                .iter()
                .filter(|c| c.get(&fk) == Some(&id))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        obj.insert(ext.clone(), Value::Array(children));
    }
    for inner in expand {
        if let Some(Value::Array(parents)) = db.get(&plural(db, inner)) {
            let fk = format!("{inner}Id");
            let parent = obj
                .get(&fk)
                .and_then(|id| get_by_id(parents, &js_string(id)))
                .cloned();
            if let Some(p) = parent {
                obj.insert(inner.clone(), p);
            }
        }
    }
}

/// The body and extra headers of `GET /{name}` (plural.js `list`).
fn list_data(
    db: &Map<String, Value>,
    name: &str,
    mut query: Query,
    full_url: &str,
) -> Option<(Value, Vec<(&'static str, String)>)> {
    let collection = match db.get(name)? {
        Value::Array(a) => a,
        other => return Some((other.clone(), Vec::new())), // a singular resource
    };
    let q = query.take("q");
    let start = query.take("_start");
    let end = query.take("_end");
    let sort = query.take("_sort");
    let order = query.take("_order");
    let limit = query.take("_limit");
    let embed = query.take_all("_embed");
    let expand = query.take_all("_expand");
    let page = query
        .0
        .iter()
        .find(|(k, _)| k == "_page")
        .map(|(_, v)| v[0].clone());

    // Query parameters that match no field of any record are ignored.
    query.0.retain(|(key, _)| {
        !collection.is_empty()
            && (key == "callback"
                || key == "_"
                || ["_lte", "_gte", "_ne", "_like"]
                    .iter()
                    .any(|s| key.ends_with(s))
                || collection.iter().any(|el| get_path(el, key).is_some()))
    });

    let mut items: Vec<&Value> = collection.iter().collect();

    if let Some(q) = q.filter(|q| !q.is_empty()) {
        let q = q.to_lowercase();
        items.retain(|el| match el {
            Value::Object(m) => m.values().any(|v| deep_query(v, &q)),
            _ => false,
        });
    }

    for (key, values) in &query.0 {
        if key == "callback" || key == "_" {
            continue;
        }
        let suffix = ["_lte", "_gte", "_ne", "_like"]
            .into_iter()
            .find(|s| key.ends_with(s));
        let path = suffix.map_or(key.as_str(), |s| &key[..key.len() - s.len()]);
        let likes: Vec<Option<regex_lite::Regex>> = if suffix == Some("_like") {
            values
                .iter()
                .map(|v| {
                    regex_lite::RegexBuilder::new(v)
                        .case_insensitive(true)
                        .build()
                        .ok()
                })
                .collect()
        } else {
            Vec::new()
        };
        items.retain(|el| {
            let results = values.iter().enumerate().map(|(i, value)| {
                let ev = match get_path(el, path) {
                    None | Some(Value::Null) => return false,
                    Some(ev) => ev,
                };
                match suffix {
                    Some("_gte") => matches!(
                        js_cmp(&Prim::Str(value.clone()), &to_prim(ev)),
                        Some(Ordering::Less | Ordering::Equal)
                    ),
                    Some("_lte") => matches!(
                        js_cmp(&Prim::Str(value.clone()), &to_prim(ev)),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Some("_ne") => *value != js_string(ev),
                    Some(_) => likes[i]
                        .as_ref()
                        .is_some_and(|re| re.is_match(&js_string(ev))),
                    None => *value == js_string(ev),
                }
            });
            let mut results = results.collect::<Vec<_>>().into_iter();
            if suffix == Some("_ne") {
                results.all(|b| b)
            } else {
                results.any(|b| b)
            }
        });
    }

    if let Some(sort) = sort.filter(|s| !s.is_empty()) {
        let keys: Vec<&str> = sort.split(',').collect();
        let orders: Vec<String> = order
            .unwrap_or_default()
            .split(',')
            .map(str::to_lowercase)
            .collect();
        items.sort_by(|a, b| {
            for (i, k) in keys.iter().enumerate() {
                let mut o = compare_ascending(get_path(a, k), get_path(b, k));
                if orders.get(i).map(String::as_str) == Some("desc") {
                    o = o.reverse();
                }
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }

    let mut headers = Vec::new();
    if truthy(&end) || truthy(&limit) || truthy(&page) {
        headers.push(("x-total-count", items.len().to_string()));
        headers.push((
            "access-control-expose-headers",
            format!("X-Total-Count{}", if truthy(&page) { ", Link" } else { "" }),
        ));
    }

    let start_n = || parse_int(start.as_deref()).filter(|n| *n != 0).unwrap_or(0);
    let sliced: Vec<&Value> = if truthy(&page) {
        let page = parse_int(page.as_deref()).filter(|p| *p >= 1).unwrap_or(1);
        let per_page = parse_int(limit.as_deref())
            .filter(|l| *l != 0)
            .unwrap_or(10);
        let (s, e) = (
            page.saturating_sub(1).saturating_mul(per_page),
            page.saturating_mul(per_page),
        );
        let slice = js_slice(&items, s, e);
        let len = items.len() as i64;
        let mut links: Vec<(&str, i64)> = Vec::new();
        let mut current = None;
        if !slice.is_empty() {
            let whole = slice.len() as i64 == len;
            let last = (len as f64 / per_page as f64).ceil() as i64;
            if !whole {
                current = Some(page);
                links.push(("first", 1));
            }
            if page > 1 {
                links.push(("prev", page - 1));
            }
            if e < len {
                links.push(("next", page + 1));
            }
            if !whole && last != 0 {
                links.push(("last", last));
            }
        }
        let from = match current {
            Some(c) => format!("page={c}"),
            None => "page=undefined".to_string(),
        };
        let link = links
            .iter()
            .map(|(rel, n)| {
                format!(
                    "<{}>; rel=\"{rel}\"",
                    full_url.replacen(&from, &format!("page={n}"), 1)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        headers.push(("link", link));
        slice
    } else if truthy(&end) {
        js_slice(&items, start_n(), parse_int(end.as_deref()).unwrap_or(0))
    } else if truthy(&limit) {
        let s = start_n();
        js_slice(
            &items,
            s,
            s.saturating_add(parse_int(limit.as_deref()).unwrap_or(0)),
        )
    } else {
        items
    };

    let data = sliced
        .into_iter()
        .map(|el| {
            let mut el = el.clone();
            embed_expand(db, name, &mut el, &embed, &expand);
            el
        })
        .collect();
    Some((Value::Array(data), headers))
}

/// Renders like json-server: pretty JSON (2-space indent) and Express's no-cache headers.
fn render(status: StatusCode, data: &Value, extra: Vec<(&'static str, String)>) -> Response {
    let body = serde_json::to_string_pretty(data).unwrap_or_default();
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in [
        ("x-powered-by", "Express"),
        ("vary", "Origin, Accept-Encoding"),
        ("access-control-allow-credentials", "true"),
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("expires", "-1"),
        ("x-content-type-options", "nosniff"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
    resp
}

fn not_found() -> Response {
    render(
        StatusCode::NOT_FOUND,
        &Value::Object(Map::new()),
        Vec::new(),
    )
}

/// `http://{Host}{original url}`, as json-server's `getFullURL`.
fn full_url(st: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) => format!("http://{host}{path_and_query}"),
        None => format!("{}{path_and_query}", st.base_url()),
    }
}

/// json-server's `delay` middleware: `_delay` milliseconds, removed from the query.
async fn delay(query: &mut Query) {
    let ms = query
        .take("_delay")
        .and_then(|d| d.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms > 0.0);
    if let Some(ms) = ms {
        tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
    }
}

async fn respond_list(st: &AppState, name: &str, mut query: Query, full_url: String) -> Response {
    delay(&mut query).await;
    match list_data(&st.shared.db, name, query, &full_url) {
        Some((data, headers)) => render(StatusCode::OK, &data, headers),
        None => not_found(),
    }
}

async fn list(
    State(st): State<AppState>,
    Path(resource): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let url = full_url(&st, &headers, &uri);
    respond_list(&st, &resource, Query::parse(uri.query()), url).await
}

async fn nested(
    State(st): State<AppState>,
    Path((resource, id, nested)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let url = full_url(&st, &headers, &uri);
    let mut query = Query::parse(uri.query());
    query.set(format!("{}Id", singular(&resource)), id);
    respond_list(&st, &nested, query, url).await
}

async fn show(
    State(st): State<AppState>,
    Path((resource, id)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let mut query = Query::parse(uri.query());
    delay(&mut query).await;
    let db = &st.shared.db;
    let Some(Value::Array(items)) = db.get(&resource) else {
        return not_found();
    };
    match get_by_id(items, &id) {
        Some(item) => {
            let mut item = item.clone();
            let (embed, expand) = (query.take_all("_embed"), query.take_all("_expand"));
            embed_expand(db, &resource, &mut item, &embed, &expand);
            render(StatusCode::OK, &item, Vec::new())
        }
        None => not_found(),
    }
}

async fn whole_db(State(st): State<AppState>) -> Response {
    render(
        StatusCode::OK,
        &Value::Object(st.shared.db.clone()),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Map<String, Value> {
        let Value::Object(m) = json!({
            "posts": [
                {"id": 1, "userId": 1, "title": "Alpha", "meta": {"lang": "en"}},
                {"id": 2, "userId": 1, "title": "beta", "meta": {"lang": "fr"}},
                {"id": 3, "userId": 2, "title": "Gamma", "meta": {"lang": "en"}},
            ],
            "comments": [
                {"id": 1, "postId": 1}, {"id": 2, "postId": 1}, {"id": 3, "postId": 3},
            ],
            "users": [{"id": 1, "name": "u1"}, {"id": 2, "name": "u2"}],
            "profile": {"name": "p"},
        }) else {
            unreachable!()
        };
        m
    }

    fn ids(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_i64().unwrap())
            .collect()
    }

    fn run(name: &str, q: &str) -> (Value, Vec<(&'static str, String)>) {
        list_data(
            &db(),
            name,
            Query::parse(Some(q)),
            &format!("http://h/{name}?{q}"),
        )
        .unwrap()
    }

    #[test]
    fn filters() {
        assert_eq!(ids(&run("posts", "userId=1").0), vec![1, 2]);
        assert_eq!(ids(&run("posts", "userId=1&userId=2").0), vec![1, 2, 3]);
        assert_eq!(ids(&run("posts", "nope=1").0), vec![1, 2, 3]);
        assert_eq!(ids(&run("posts", "meta.lang=en").0), vec![1, 3]);
        assert_eq!(ids(&run("posts", "id_gte=2").0), vec![2, 3]);
        assert_eq!(ids(&run("posts", "id_ne=2").0), vec![1, 3]);
        assert_eq!(ids(&run("posts", "title_like=^[ab]").0), vec![1, 2]);
        assert_eq!(ids(&run("posts", "q=GAM").0), vec![3]);
    }

    #[test]
    fn sort_and_slice() {
        assert_eq!(ids(&run("posts", "_sort=title").0), vec![1, 3, 2]);
        assert_eq!(
            ids(&run("posts", "_sort=userId,id&_order=desc,desc").0),
            vec![3, 2, 1]
        );
        let (v, h) = run("posts", "_start=1&_limit=1");
        assert_eq!(ids(&v), vec![2]);
        assert_eq!(h[0], ("x-total-count", "3".to_string()));
        assert_eq!(ids(&run("posts", "_start=1&_end=3").0), vec![2, 3]);
        let (v, h) = run("posts", "_start=1");
        assert_eq!((ids(&v).len(), h.len()), (3, 0));
    }

    #[test]
    fn page_links() {
        let (v, h) = run("posts", "_page=2&_limit=1");
        assert_eq!(ids(&v), vec![2]);
        let link = &h.iter().find(|(k, _)| *k == "link").unwrap().1;
        assert_eq!(
            link,
            "<http://h/posts?_page=1&_limit=1>; rel=\"first\", <http://h/posts?_page=1&_limit=1>; rel=\"prev\", <http://h/posts?_page=3&_limit=1>; rel=\"next\", <http://h/posts?_page=3&_limit=1>; rel=\"last\""
        );
        let (_, h) = run("posts", "_page=9");
        assert_eq!(h.iter().find(|(k, _)| *k == "link").unwrap().1, "");
    }

    #[test]
    fn embed_and_expand() {
        let (v, _) = run("posts", "_embed=comments&id=1");
        assert_eq!(ids(&v[0]["comments"]), vec![1, 2]);
        let (v, _) = run("posts", "_expand=user&id=3");
        assert_eq!(v[0]["user"]["name"], "u2");
        let (v, _) = run("profile", "");
        assert_eq!(v["name"], "p");
    }

    #[test]
    fn js_helpers() {
        assert_eq!(parse_int(Some(" 12abc")), Some(12));
        assert_eq!(parse_int(Some("abc")), None);
        assert_eq!(js_slice(&[1, 2, 3, 4], -2, 10), vec![3, 4]);
        assert_eq!(singular("todos"), "todo");
        assert_eq!(singular("categories"), "category");
        assert_eq!(js_string(&json!([1, null, "a"])), "1,,a");
    }
}
