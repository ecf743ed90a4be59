//! `connector_spec::parse` never panics, whatever it is given: arbitrary text,
//! and near-misses of real connector files (lines deleted, duplicated,
//! swapped, YAML punctuation and tabs inserted, the text truncated). When it
//! refuses the input, every diagnostic has a position and renders.
//!
//! 256 cases per property by default; `PROPTEST_CASES=10000` for a longer run.

use proptest::prelude::*;
use proptest::sample::Index;
use std::path::Path;
use std::sync::LazyLock;

/// Real, valid connector files to mutate.
static CORPUS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut texts = Vec::new();
    for dir in ["connectors", "tests/fixtures/valid"] {
        let mut paths: Vec<_> = std::fs::read_dir(repo.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
            .collect();
        paths.sort();
        for p in paths {
            texts.push(std::fs::read_to_string(p).unwrap());
        }
    }
    assert!(texts.len() >= 2, "no connector files to mutate");
    for t in &texts {
        assert!(connector_spec::parse(t, "corpus.yaml").is_ok());
    }
    texts
});

/// Parses `text`; on failure checks that each diagnostic is located and renders.
fn check(text: &str) {
    if let Err(diags) = connector_spec::parse(text, "fuzz.yaml") {
        assert!(!diags.is_empty(), "refused without a diagnostic");
        for d in &diags {
            assert!(d.pos.line >= 1 && d.pos.col >= 1, "unlocated: {d:?}");
            assert!(d.to_string().starts_with("fuzz.yaml:"));
        }
    }
}

/// Text inserted by [`Mutation::Insert`]: YAML punctuation that changes
/// structure, tabs, template and JSONPath syntax, and stray bytes.
const SNIPPETS: &[&str] = &[
    "\t",
    ": ",
    "- ",
    "&a ",
    "*a",
    "&a",
    "*a ",
    "#",
    "---\n",
    "...\n",
    "\n",
    "  ",
    "[",
    "]",
    "{",
    "}",
    "{{",
    "}}",
    "{%",
    "'",
    "\"",
    "|",
    ">",
    "!!str ",
    "!tag ",
    "? ",
    ",",
    "$",
    "$.",
    "[*]",
    "\u{0}",
    "\u{feff}",
    "\r",
    "\u{85}",
    "é",
    "🦀",
    "~",
    "null",
    "0",
    "-1",
    "99999999999999999999",
    "1e999",
    ".nan",
    "<<: *a\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Insert(Index, Index),
    InsertBytes(Index, Vec<u8>),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::DeleteLine),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::InsertBytes(at, b)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary of `text` nearest below `i`.
fn boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match m {
        Mutation::DeleteLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
            lines.concat()
        }
        Mutation::DuplicateLine(i) if !lines.is_empty() => {
            let i = i.index(lines.len());
            lines.insert(i, lines[i]);
            lines.concat()
        }
        Mutation::SwapLines(a, b) if !lines.is_empty() => {
            let (a, b) = (a.index(lines.len()), b.index(lines.len()));
            lines.swap(a, b);
            lines.concat()
        }
        Mutation::Insert(at, s) => {
            let at = boundary(text, at.index(text.len() + 1));
            let snippet = SNIPPETS[s.index(SNIPPETS.len())];
            format!("{}{snippet}{}", &text[..at], &text[at..])
        }
        Mutation::InsertBytes(at, bytes) => {
            let at = boundary(text, at.index(text.len() + 1));
            let junk = String::from_utf8_lossy(bytes);
            format!("{}{junk}{}", &text[..at], &text[at..])
        }
        Mutation::Truncate(at) => text[..boundary(text, at.index(text.len() + 1))].to_string(),
        _ => text.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_text_does_not_panic(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn yaml_shaped_text_does_not_panic(
        text in r#"([a-z_]{1,8}: ?|- |  |\t|[&*]a ?|\{\{ ?[a-z.]* ?\}\}|[\[\]{},:'"|>#$.*!?~0-9-]|\n){0,64}"#
    ) {
        check(&text);
    }

    #[test]
    fn one_mutation_of_a_connector_does_not_panic(
        file in any::<Index>(),
        m in mutation(),
    ) {
        let corpus = &*CORPUS;
        check(&apply(&corpus[file.index(corpus.len())], &m));
    }

    #[test]
    fn several_mutations_of_a_connector_do_not_panic(
        file in any::<Index>(),
        ms in prop::collection::vec(mutation(), 2..6),
    ) {
        let corpus = &*CORPUS;
        let mut text = corpus[file.index(corpus.len())].clone();
        for m in &ms {
            text = apply(&text, m);
        }
        check(&text);
    }
}

/// Runs `f` on a thread with a main thread's 8 MiB stack. In debug builds each
/// level of nested block mappings costs ~32 KiB of stack while deserializing,
/// so the 64 levels the YAML budget allows overflow the 2 MiB stack of a test
/// (or tokio worker) thread and abort the process; release builds are fine.
/// See the spec-crate report. The checks themselves are about the budget.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    on_big_stack(|| {
        for open in ["[", "{a: ", "- "] {
            let text = open.repeat(100_000);
            let diags = connector_spec::parse(&text, "deep.yaml").unwrap_err();
            assert!(diags[0].message.starts_with("invalid YAML"), "{}", diags[0]);
        }
        for depth in [60, 63, 64, 65, 200] {
            let blocks: String = (0..depth)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect();
            assert!(connector_spec::parse(&blocks, "deep.yaml").is_err());
        }
    });
}

#[test]
fn moderately_deep_nesting_fits_a_test_thread() {
    // 40 levels fit a 2 MiB stack even in debug builds (about 62 do).
    let blocks: String = (0..40).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    assert!(connector_spec::parse(&blocks, "deep.yaml").is_err());
}

#[test]
fn oversized_input_is_refused() {
    let text = format!("version: 1\n# {}\n", "x".repeat(5 * 1024 * 1024));
    let diags = connector_spec::parse(&text, "big.yaml").unwrap_err();
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("at most"), "{}", diags[0]);
}
