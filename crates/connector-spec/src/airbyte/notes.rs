//! What a translation could not carry over exactly: notes with the line and
//! column in the manifest, and each stream's coverage.
//!
//! A note is `Approximated` (translated, but not quite the same: a datetime
//! rendered slightly differently, one authenticator of several) or `Blocked`
//! (not expressible: the stream is left out). `Info` notes say what was
//! dropped on purpose without changing what is fetched (`check`, schema
//! loaders, nested config keys flattened).

use super::refs::NodeExt;
use crate::Pos;
use crate::node::Node;
use std::fmt;

/// How much a note matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// Nothing fetched changes: a renamed key, an ignored schema loader.
    Info,
    /// Translated, but not exactly equivalent.
    Approximated,
    /// Not expressible in our spec: the stream does not run.
    Blocked,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Info => "info",
            NoteKind::Approximated => "approximated",
            NoteKind::Blocked => "blocked",
        }
    }
}

/// One note about the translation, at a place in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The stream it concerns; `None` for the connector as a whole.
    pub stream: Option<String>,
    /// 1-based line and column in the manifest.
    pub line: usize,
    pub col: usize,
    pub kind: NoteKind,
    pub what: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.kind.as_str())?;
        if let Some(s) = &self.stream {
            write!(f, " (stream `{s}`)")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// Whether a stream of the manifest runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Translated faithfully.
    Runs,
    /// Translated; some notes say where it differs.
    Approximated,
    /// Left out of the spec, with the reason.
    Blocked(Blocker),
}

/// Why a stream was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// The reason in words, e.g. `SessionTokenAuthenticator`.
    pub reason: String,
    /// A short, countable name of the missing feature, e.g.
    /// `auth: SessionTokenAuthenticator`; streams group by it.
    pub feature: String,
    /// The reason is a `Custom*` component (Python code in the connector).
    pub custom: bool,
    pub line: usize,
    pub col: usize,
}

/// One stream of the manifest and whether it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCoverage {
    /// The stream's name in the manifest.
    pub name: String,
    /// Its name in the spec, when translated (snake_case).
    pub spec_name: Option<String>,
    pub status: Coverage,
}

/// A reason to block: what is missing, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub pos: Pos,
    pub feature: String,
    pub detail: String,
    pub custom: bool,
}

impl Block {
    pub fn new(pos: Pos, feature: impl Into<String>, detail: impl Into<String>) -> Self {
        Block {
            pos,
            feature: feature.into(),
            detail: detail.into(),
            custom: false,
        }
    }
    pub fn custom(pos: Pos, class: &str, component: &str) -> Self {
        Block {
            pos,
            feature: format!("custom component: {component}"),
            detail: format!("{component} `{class}` is Python code in the connector"),
            custom: true,
        }
    }
    /// A `Custom*` component: its `class_name` is Python code.
    pub fn custom_of(node: &Node, component: &str) -> Self {
        Block::custom(
            node.pos,
            node.str_at("class_name").unwrap_or("?"),
            component,
        )
    }
    /// A component of type `ty` we cannot translate: custom Python for a
    /// `Custom*` type, else `<feature> <ty>`, "`<the> <ty>`".
    pub fn unsupported(node: &Node, ty: &str, feature: &str, the: &str) -> Self {
        if ty.starts_with("Custom") {
            Block::custom_of(node, ty)
        } else {
            Block::new(node.pos, format!("{feature} {ty}"), format!("{the} {ty}"))
        }
    }
    pub fn into_blocker(self) -> Blocker {
        Blocker {
            reason: self.detail,
            feature: self.feature,
            custom: self.custom,
            line: self.pos.line as usize,
            col: self.pos.col as usize,
        }
    }
}

pub(crate) type Res<T> = Result<T, Block>;

/// Notes gathered while translating.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub list: Vec<Note>,
}

impl Notes {
    pub fn push(
        &mut self,
        stream: Option<&str>,
        pos: Pos,
        kind: NoteKind,
        what: impl Into<String>,
    ) {
        let note = Note {
            stream: stream.map(str::to_string),
            line: pos.line as usize,
            col: pos.col as usize,
            kind,
            what: what.into(),
        };
        if !self.list.contains(&note) {
            self.list.push(note);
        }
    }
}
