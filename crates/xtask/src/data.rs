//! The generated dataset and its pages.
//!
//! Every record is exactly [`RECORD_BYTES`] bytes as compact JSON (the body
//! text is cut to fit), deterministic in its id, with a mix of integers,
//! floats and strings. Pages are rendered the way json-server renders them
//! (`JSON.stringify(page, null, 2)`), or compact, once, into memory, and
//! optionally gzipped once as well, so serving a page costs the server only a
//! reference-count bump and a `write`.

use bytes::Bytes;
use std::io::Write;

/// Size of one record as compact JSON.
pub const RECORD_BYTES: usize = 200;

/// Bodies below this size are never gzipped (json-server's `compression` threshold).
pub const GZIP_THRESHOLD: usize = 1024;

const WORDS: [&str; 64] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
    "quo",
    "vero",
];

const STATUSES: [&str; 3] = ["active", "pending", "archived"];

/// How pages are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// json-server's `JSON.stringify(page, null, 2)`.
    Pretty,
    /// No whitespace.
    Compact,
}

/// What a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A top-level record.
    Item,
    /// A child record, with a `parentId` field.
    Child { parent: u64 },
}

fn mix(mut z: u64) -> u64 {
    // splitmix64
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

enum Val {
    Num(String),
    Str(String),
}

fn words(seed: u64, count: usize) -> String {
    let mut s = String::new();
    let mut h = seed;
    for i in 0..count {
        h = mix(h ^ i as u64);
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[(h % WORDS.len() as u64) as usize]);
    }
    s
}

/// The fields of record `id`, in order; the `body` text is sized so the
/// compact record is exactly [`RECORD_BYTES`] long.
fn fields(id: u64, kind: Kind) -> Vec<(&'static str, Val)> {
    let h = mix(id);
    let created = format!(
        "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        h % 12 + 1,
        (h >> 8) % 28 + 1,
        (h >> 16) % 24,
        (h >> 24) % 60,
        (h >> 32) % 60
    );
    let mut f = vec![
        ("id", Val::Num(id.to_string())),
        ("userId", Val::Num((h % 1000 + 1).to_string())),
        ("title", Val::Str(words(h, 2 + (h >> 40) as usize % 2))),
        ("body", Val::Str(String::new())),
        (
            "status",
            Val::Str(STATUSES[((h >> 44) % 3) as usize].to_string()),
        ),
        (
            "score",
            // Hundredths never end in 0, so serde_json writes the number back unchanged.
            Val::Num(format!(
                "{}.{}{}",
                (h >> 48) % 1000,
                (h >> 12) % 10,
                (h >> 20) % 9 + 1
            )),
        ),
        ("createdAt", Val::Str(created)),
    ];
    if let Kind::Child { parent } = kind {
        f.insert(1, ("parentId", Val::Num(parent.to_string())));
    }
    let without_body = compact_len(&f);
    let want = RECORD_BYTES.saturating_sub(without_body).max(1);
    // Every word takes at least 3 bytes with its space, so this is long enough.
    let mut body = words(h.rotate_left(17), want / 2 + 2);
    body.truncate(want);
    if body.ends_with(' ') {
        body.pop();
        body.push('.');
    }
    f[if matches!(kind, Kind::Child { .. }) {
        4
    } else {
        3
    }]
    .1 = Val::Str(body);
    f
}

fn compact_len(f: &[(&str, Val)]) -> usize {
    // `{` + `"k":v` joined by `,` + `}`
    2 + f.len().saturating_sub(1)
        + f.iter()
            .map(|(k, v)| {
                k.len()
                    + 3
                    + match v {
                        Val::Num(n) => n.len(),
                        Val::Str(s) => s.len() + 2,
                    }
            })
            .sum::<usize>()
}

/// Appends record `id` to `out`.
pub fn write_record(out: &mut Vec<u8>, id: u64, kind: Kind, style: Style) {
    let f = fields(id, kind);
    let (open, sep, kv, close) = match style {
        Style::Compact => ("{", ",", ":", "}"),
        Style::Pretty => ("  {\n    ", ",\n    ", ": ", "\n  }"),
    };
    out.extend_from_slice(open.as_bytes());
    for (i, (k, v)) in f.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.push(b'"');
        out.extend_from_slice(kv.as_bytes());
        match v {
            Val::Num(n) => out.extend_from_slice(n.as_bytes()),
            Val::Str(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
        }
    }
    out.extend_from_slice(close.as_bytes());
}

/// The JSON array of records with the given ids.
pub fn render_page(ids: std::ops::Range<u64>, kind: Kind, style: Style) -> Vec<u8> {
    if ids.is_empty() {
        return b"[]".to_vec();
    }
    let per = match style {
        Style::Compact => RECORD_BYTES + 1,
        Style::Pretty => RECORD_BYTES + 64,
    };
    let mut out = Vec::with_capacity((ids.end - ids.start) as usize * per + 4);
    out.extend_from_slice(match style {
        Style::Compact => b"[",
        Style::Pretty => b"[\n",
    });
    for (i, id) in ids.enumerate() {
        if i > 0 {
            out.extend_from_slice(match style {
                Style::Compact => b",",
                Style::Pretty => b",\n",
            });
        }
        write_record(&mut out, id, kind, style);
    }
    out.extend_from_slice(match style {
        Style::Compact => b"]",
        Style::Pretty => b"\n]",
    });
    out
}

pub fn gzip(body: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3),
        flate2::Compression::new(level),
    );
    enc.write_all(body).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

/// One rendered page.
#[derive(Debug, Clone)]
pub struct Page {
    pub body: Bytes,
    /// The same body gzipped, when gzip is on and the body is large enough.
    pub gzip: Option<Bytes>,
    pub records: u32,
}

impl Page {
    pub fn render(
        ids: std::ops::Range<u64>,
        kind: Kind,
        style: Style,
        gzip_level: Option<u32>,
    ) -> Page {
        let records = (ids.end - ids.start) as u32;
        let body = render_page(ids, kind, style);
        let gz = gzip_level
            .filter(|_| body.len() >= GZIP_THRESHOLD)
            .map(|l| Bytes::from(gzip(&body, l)));
        Page {
            body: Bytes::from(body),
            gzip: gz,
            records,
        }
    }
}

/// A collection of `total` records (ids 1..=total) paged by `page_size`,
/// every page rendered up front.
#[derive(Debug)]
pub struct Collection {
    pub total: u64,
    pub page_size: u64,
    pub style: Style,
    pub gzip_level: Option<u32>,
    /// `pages[k]` answers `?_start=k*page_size&_limit=page_size`.
    pub pages: Vec<Page>,
    pub empty: Page,
}

impl Collection {
    pub fn render(total: u64, page_size: u64, style: Style, gzip_level: Option<u32>) -> Collection {
        let page_size = page_size.max(1);
        let n_pages = total.div_ceil(page_size);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(n_pages.max(1) as usize);
        let per_thread = n_pages.div_ceil(threads as u64).max(1);
        let mut pages: Vec<Page> = Vec::with_capacity(n_pages as usize);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    s.spawn(move || {
                        let first = t * per_thread;
                        let last = ((t + 1) * per_thread).min(n_pages);
                        (first..last)
                            .map(|k| {
                                let start = k * page_size + 1;
                                let end = ((k + 1) * page_size).min(total) + 1;
                                Page::render(start..end, Kind::Item, style, gzip_level)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                pages.extend(h.join().expect("a render thread panicked"));
            }
        });
        Collection {
            total,
            page_size,
            style,
            gzip_level,
            pages,
            empty: Page::render(0..0, Kind::Item, style, gzip_level),
        }
    }

    /// The page for `?_start=start&_limit=limit`: pre-rendered when aligned,
    /// rendered now otherwise.
    pub fn page(&self, start: u64, limit: u64) -> Page {
        if start >= self.total {
            return self.empty.clone();
        }
        if limit == self.page_size && start.is_multiple_of(self.page_size) {
            return self.pages[(start / self.page_size) as usize].clone();
        }
        let end = start.saturating_add(limit).min(self.total);
        Page::render(start + 1..end + 1, Kind::Item, self.style, self.gzip_level)
    }

    /// Bytes held in memory (bodies plus gzipped bodies).
    pub fn memory(&self) -> usize {
        self.pages
            .iter()
            .map(|p| p.body.len() + p.gzip.as_ref().map_or(0, |g| g.len()))
            .sum()
    }
}

/// The children of `parents` parents, `per_parent` each, one page per
/// parent: `children[p - 1]` answers `/parents/{p}/children`. Child ids run
/// 1..=parents*per_parent.
pub fn render_children(
    parents: u64,
    per_parent: u64,
    style: Style,
    gzip_level: Option<u32>,
) -> Vec<Page> {
    (1..=parents)
        .map(|p| {
            let first = (p - 1) * per_parent + 1;
            Page::render(
                first..first + per_parent,
                Kind::Child { parent: p },
                style,
                gzip_level,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn records_are_exactly_200_bytes_of_valid_json() {
        for id in [1u64, 9, 10, 99, 12_345, 999_999, 1_000_000, 123_456_789] {
            for kind in [Kind::Item, Kind::Child { parent: 77 }] {
                let mut out = Vec::new();
                write_record(&mut out, id, kind, Style::Compact);
                assert_eq!(out.len(), RECORD_BYTES, "{}", String::from_utf8_lossy(&out));
                let v: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(v["id"], id);
                assert_eq!(
                    v.get("parentId").and_then(Value::as_u64),
                    match kind {
                        Kind::Child { parent } => Some(parent),
                        Kind::Item => None,
                    }
                );
                // Compact is what serde_json writes back (field order kept).
                assert_eq!(serde_json::to_vec(&v).unwrap(), out);
            }
        }
    }

    #[test]
    fn pretty_pages_are_json_server_layout() {
        let page = render_page(1..3, Kind::Item, Style::Pretty);
        let text = String::from_utf8(page.clone()).unwrap();
        assert!(
            text.starts_with("[\n  {\n    \"id\": 1,\n    \"userId\": "),
            "{text}"
        );
        assert!(text.ends_with("\"\n  }\n]"), "{text}");
        assert!(text.contains("\n  },\n  {\n    \"id\": 2,"), "{text}");
        let v: Vec<Value> = serde_json::from_slice(&page).unwrap();
        assert_eq!(v.len(), 2);
        let compact = render_page(1..3, Kind::Item, Style::Compact);
        let w: Vec<Value> = serde_json::from_slice(&compact).unwrap();
        assert_eq!(v, w);
        assert_eq!(render_page(5..5, Kind::Item, Style::Pretty), b"[]");
    }

    #[test]
    fn collection_pages_cover_every_record_once() {
        let c = Collection::render(2_503, 100, Style::Pretty, Some(1));
        assert_eq!(c.pages.len(), 26);
        let mut ids = Vec::new();
        let mut start = 0;
        loop {
            let p = c.page(start, 100);
            let plain: Vec<Value> = serde_json::from_slice(&p.body).unwrap();
            if let Some(gz) = &p.gzip {
                let mut d = flate2::read::GzDecoder::new(&gz[..]);
                let mut back = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut back).unwrap();
                assert_eq!(back, p.body);
            }
            assert_eq!(plain.len(), p.records as usize);
            if plain.is_empty() {
                break;
            }
            ids.extend(plain.iter().map(|r| r["id"].as_u64().unwrap()));
            start += plain.len() as u64;
        }
        assert_eq!(ids, (1..=2_503).collect::<Vec<_>>());
        // Unaligned requests are rendered on the fly.
        let odd: Vec<Value> = serde_json::from_slice(&c.page(2_490, 7).body).unwrap();
        assert_eq!(odd.len(), 7);
        assert_eq!(odd[0]["id"], 2_491);
        assert!(c.page(5_000, 100).body.as_ref() == b"[]");
    }

    #[test]
    fn children_pages_carry_the_parent_id() {
        let ch = render_children(3, 4, Style::Compact, None);
        let v: Vec<Value> = serde_json::from_slice(&ch[2].body).unwrap();
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|r| r["parentId"] == 3));
        assert_eq!(v[0]["id"], 9);
    }
}
