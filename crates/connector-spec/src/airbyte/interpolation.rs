//! Airbyte's Jinja → our minijinja templates.
//!
//! Templates are parsed ([`super::jinja`]), rewritten, and printed back:
//!
//! | Airbyte | ours |
//! |---|---|
//! | `config['a']['b']`, `config.get('a', d)` | `config.a_b`, `config.a \| default(d)` (flat names, see [`super::config`]) |
//! | `parameters.x` | the literal value of `$parameters.x` |
//! | `stream_interval.start_time`, `stream_slice['end_time']` | `window.start`, `window.end` (or the lower bound `state.cursor`) |
//! | `stream_partition.<partition_field>` | `parent.<parent_key>` or `partition.<as>` |
//! | `next_page_token.next_page_token` | the paginator's own token (where a paginator can send it) |
//! | `response.x`, `headers['X-Y']`, `last_page_size` | `response.x`, `headers['x-y']`, `page.records` (stop conditions) |
//! | `record['x']` | `record.x` |
//! | `x.strftime(f)`, `x.lower()`, `x.split(',')`, `s.startswith(p)` | `x \| format_datetime(f)`, `x \| lower`, `x \| split(',')`, `s is startingwith(p)` |
//! | `now_utc() - duration('P1D')` | `((now_utc() \| timestamp) - duration('P1D')) \| str_to_datetime` |
//! | `max(a, b)`, `day_delta(n, format=f)` | `max(a, b)`, `day_delta(n) \| format_datetime(f)` |
//!
//! A config key that is optional and has no default reads as
//! `| default(none)` (printed: `| default('')`), as Airbyte's lenient
//! undefined renders it empty and drops the request option. What cannot be
//! expressed (macros we lack, `stream_state`, Python methods without a
//! filter) is an error naming it; what differs slightly is an
//! approximation.

use super::config::{ConfigMap, Lookup};
use super::jinja::{self, Arg, Expr, Segment, Stmt};
use crate::Pos;

/// Which variables a template may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `config` only (base URL, auth, config-level defaults).
    Connection,
    /// A request: slices, partitions, the page token.
    Request,
    /// A record (filters, added fields): request variables and `record`.
    Record,
    /// A response (stop conditions, cursor values): `response`, `headers`.
    Stop,
}

/// What a template's variables mean in one place of a stream.
#[derive(Debug, Clone)]
pub(crate) struct Vars {
    pub scope: Scope,
    /// `stream_slice.<key>` → our expression text.
    pub slice: Vec<(String, String)>,
    /// The component's `$parameters`.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The incremental cursor field, for `stream_state`.
    pub cursor_field: Option<String>,
    /// `last_record` in a stop condition, e.g. `(response.data | last)`.
    pub last_record: Option<String>,
    /// What `next_page_token.next_page_token` is here, if anything.
    pub page_token: Option<String>,
    /// A missing optional config value is `none` (a request parameter,
    /// then not sent) rather than empty text.
    pub none_if_missing: bool,
    pub pos: Pos,
}

impl Vars {
    pub fn new(scope: Scope, pos: Pos) -> Vars {
        Vars {
            scope,
            slice: Vec::new(),
            params: serde_json::Map::new(),
            cursor_field: None,
            last_record: None,
            page_token: None,
            none_if_missing: false,
            pos,
        }
    }
    #[cfg(test)]
    pub fn with_scope(&self, scope: Scope, pos: Pos) -> Vars {
        let mut v = self.clone();
        v.scope = scope;
        v.pos = pos;
        v
    }
}

/// A template rewritten, and what it only approximates.
pub(crate) struct Rewritten {
    pub text: String,
    pub approx: Vec<String>,
}

/// One access of a chain: `.x`, `['x']`, `.get('x', d)` or `[expr]`.
#[derive(Debug, Clone)]
enum Acc {
    Key(String),
    Get(String, Option<Expr>),
    Idx(Expr),
}

struct Rw<'a> {
    vars: &'a Vars,
    config: &'a mut ConfigMap,
    approx: Vec<String>,
    locals: Vec<String>,
}

/// Rewrites a template. An error names what cannot be expressed.
pub(crate) fn template(
    src: &str,
    vars: &Vars,
    config: &mut ConfigMap,
) -> Result<Rewritten, String> {
    if !src.contains("{{") && !src.contains("{%") && !src.contains("{#") {
        return Ok(Rewritten {
            text: src.to_string(),
            approx: Vec::new(),
        });
    }
    let segs =
        jinja::parse_template(src).map_err(|e| format!("template `{src}` does not parse: {e}"))?;
    let mut rw = Rw {
        vars,
        config,
        approx: Vec::new(),
        locals: Vec::new(),
    };
    let single = segs.len() == 1;
    let mut out = Vec::new();
    for s in segs {
        out.push(match s {
            Segment::Text(t) => Segment::Text(t),
            Segment::Print(e, l, r) => Segment::Print(simplify(rw.top(&e, single)?), l, r),
            Segment::Stmt(st, l, r) => Segment::Stmt(rw.stmt(st)?, l, r),
        });
    }
    Ok(Rewritten {
        text: fold(&out).unwrap_or_else(|| jinja::print_template(&out)),
        approx: rw.approx,
    })
}

fn literal_truth(e: &Expr) -> Option<bool> {
    match e {
        Expr::Str(s) => Some(!s.is_empty()),
        Expr::Int(i) => Some(*i != 0),
        Expr::Bool(b) => Some(*b),
        Expr::None => Some(false),
        _ => None,
    }
}

/// Folds what `$parameters` made constant: `'' or 'brands'` → `'brands'`.
fn simplify(e: Expr) -> Expr {
    match e {
        Expr::Bin(op, a, b) => {
            let (a, b) = (simplify(*a), simplify(*b));
            match (op, literal_truth(&a), &a, &b) {
                ("or", Some(true), _, _) => a,
                ("or", Some(false), _, _) => b,
                ("and", Some(false), _, _) => a,
                ("and", Some(true), _, _) => b,
                ("~" | "+", _, Expr::Str(x), Expr::Str(y)) => Expr::Str(format!("{x}{y}")),
                ("==", _, Expr::Str(x), Expr::Str(y)) => Expr::Bool(x == y),
                ("!=", _, Expr::Str(x), Expr::Str(y)) => Expr::Bool(x != y),
                _ => Expr::Bin(op, Box::new(a), Box::new(b)),
            }
        }
        Expr::Cond(a, c, b) => {
            let c = simplify(*c);
            match literal_truth(&c) {
                Some(true) => simplify(*a),
                Some(false) => b.map(|b| simplify(*b)).unwrap_or(Expr::Str(String::new())),
                None => Expr::Cond(
                    Box::new(simplify(*a)),
                    Box::new(c),
                    b.map(|b| Box::new(simplify(*b))),
                ),
            }
        }
        Expr::Not(a) => {
            let a = simplify(*a);
            match literal_truth(&a) {
                Some(t) => Expr::Bool(!t),
                None => Expr::Not(Box::new(a)),
            }
        }
        Expr::Filter(o, n, args) => Expr::Filter(Box::new(simplify(*o)), n, args),
        other => other,
    }
}

/// Literal printed parts (`$parameters` substituted) folded into the text;
/// a template left with no expression is plain text.
fn fold(segs: &[Segment]) -> Option<String> {
    let mut out: Vec<Segment> = Vec::new();
    for s in segs {
        let lit = match s {
            Segment::Print(Expr::Str(s), _, _)
                if !s.contains("{{") && !s.contains("{%") && !s.contains("{#") =>
            {
                Some(s.clone())
            }
            Segment::Print(Expr::Int(i), _, _) => Some(i.to_string()),
            Segment::Text(t) => Some(t.clone()),
            _ => None,
        };
        match (lit, out.last_mut()) {
            (Some(l), Some(Segment::Text(prev))) => prev.push_str(&l),
            (Some(l), _) => out.push(Segment::Text(l)),
            (None, _) => out.push(s.clone()),
        }
    }
    Some(match out.as_slice() {
        [] => String::new(),
        [Segment::Text(t)] => t.clone(),
        _ => jinja::print_template(&out),
    })
}

/// Rewrites an Airbyte condition (`"{{ expr }}"`, truthy when it holds)
/// into an expression of ours.
pub(crate) fn condition(
    src: &str,
    vars: &Vars,
    config: &mut ConfigMap,
) -> Result<Rewritten, String> {
    let e = condition_expr(src)?;
    let mut rw = Rw {
        vars,
        config,
        approx: Vec::new(),
        locals: Vec::new(),
    };
    let e = simplify(rw.expr(&e)?);
    Ok(Rewritten {
        text: jinja::print(&e),
        approx: rw.approx,
    })
}

/// The expression of a condition template `{{ expr }}`.
pub(crate) fn condition_expr(src: &str) -> Result<Expr, String> {
    let t = src.trim();
    if !t.contains("{{") {
        return jinja::parse_expr(t).map_err(|e| format!("condition `{src}` does not parse: {e}"));
    }
    let segs =
        jinja::parse_template(t).map_err(|e| format!("condition `{src}` does not parse: {e}"))?;
    match segs.as_slice() {
        [Segment::Print(e, _, _)] => Ok(e.clone()),
        _ => Err(format!(
            "condition `{src}` is not a single `{{{{ expression }}}}`"
        )),
    }
}

/// The chain of literal accesses from a variable: `config['a'].b`.
fn chain_of(e: &Expr) -> Option<(String, Vec<Acc>)> {
    match e {
        Expr::Var(v) => Some((v.clone(), Vec::new())),
        Expr::Attr(o, n) => {
            let (root, mut accs) = chain_of(o)?;
            accs.push(Acc::Key(n.clone()));
            Some((root, accs))
        }
        Expr::Index(o, i) => {
            let (root, mut accs) = chain_of(o)?;
            match &**i {
                Expr::Str(s) => accs.push(Acc::Key(s.clone())),
                other => accs.push(Acc::Idx(other.clone())),
            }
            Some((root, accs))
        }
        Expr::Call(f, args) => {
            let Expr::Attr(o, m) = &**f else { return None };
            if m != "get" || args.is_empty() || args.len() > 2 {
                return None;
            }
            let Expr::Str(k) = &args[0].value else {
                return None;
            };
            let (root, mut accs) = chain_of(o)?;
            accs.push(Acc::Get(k.clone(), args.get(1).map(|a| a.value.clone())));
            Some((root, accs))
        }
        _ => None,
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            s,
            "true" | "false" | "none" | "and" | "or" | "not" | "in" | "is" | "if" | "else"
        )
}

fn attr(base: Expr, key: &str) -> Expr {
    if is_ident(key) {
        Expr::Attr(Box::new(base), key.to_string())
    } else {
        Expr::Index(Box::new(base), Box::new(Expr::Str(key.to_string())))
    }
}

fn default_to(e: Expr, d: Expr) -> Expr {
    Expr::Filter(Box::new(e), "default".into(), vec![Arg::pos(d)])
}

fn filter(e: Expr, name: &str, args: Vec<Expr>) -> Expr {
    Expr::Filter(
        Box::new(e),
        name.into(),
        args.into_iter().map(Arg::pos).collect(),
    )
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Call(
        Box::new(Expr::Var(name.into())),
        args.into_iter().map(Arg::pos).collect(),
    )
}

/// JSON as a template literal.
pub(crate) fn json_expr(v: &serde_json::Value) -> Expr {
    use serde_json::Value as J;
    match v {
        J::Null => Expr::None,
        J::Bool(b) => Expr::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Expr::Int(i),
            None => Expr::Float(n.to_string()),
        },
        J::String(s) => Expr::Str(s.clone()),
        J::Array(a) => Expr::List(a.iter().map(json_expr).collect()),
        J::Object(m) => Expr::Dict(
            m.iter()
                .map(|(k, v)| (Expr::Str(k.clone()), json_expr(v)))
                .collect(),
        ),
    }
}

/// Python strftime → chrono: `%f` is microseconds in Python.
pub(crate) fn strftime(f: &str) -> String {
    f.replace("%f", "%6f")
}

fn is_datetime_expr(e: &Expr) -> bool {
    match e {
        Expr::Call(f, _) => {
            matches!(&**f, Expr::Var(n) if n == "now_utc" || n == "str_to_datetime" || n == "today_utc")
        }
        Expr::Filter(_, n, _) => n == "str_to_datetime",
        _ => false,
    }
}

fn is_duration(e: &Expr) -> bool {
    matches!(e, Expr::Call(f, _) if matches!(&**f, Expr::Var(n) if n == "duration"))
}

impl Rw<'_> {
    fn stmt(&mut self, st: Stmt) -> Result<Stmt, String> {
        Ok(match st {
            Stmt::If(e) => Stmt::If(self.expr(&e)?),
            Stmt::Elif(e) => Stmt::Elif(self.expr(&e)?),
            Stmt::Set(n, e) => {
                let e = self.expr(&e)?;
                self.locals.push(n.clone());
                Stmt::Set(n, e)
            }
            Stmt::For(names, e) => {
                let e = self.expr(&e)?;
                self.locals.extend(names.iter().cloned());
                Stmt::For(names, e)
            }
            other => other,
        })
    }

    /// A printed expression: `single` when it is the whole template.
    fn top(&mut self, e: &Expr, single: bool) -> Result<Expr, String> {
        if let Some((root, accs)) = chain_of(e)
            && root == "config"
        {
            let e = self.config_chain(
                &accs,
                if single && self.vars.none_if_missing {
                    Some(Expr::None)
                } else {
                    Some(Expr::Str(String::new()))
                },
            )?;
            if matches!(e, Expr::Test(..) | Expr::Bin("or", ..)) {
                // The whole object, printed.
                return Err("a config object printed whole".into());
            }
            return Ok(e);
        }
        if matches!(e, Expr::Call(f, _) if matches!(&**f, Expr::Var(n) if n == "now_utc")) {
            self.approx.push(
                "`now_utc()` prints as RFC 3339 (`2024-01-02T03:04:05Z`), not Python's `2024-01-02 03:04:05.678901+00:00`".into(),
            );
        }
        self.expr(e)
    }

    fn expr(&mut self, e: &Expr) -> Result<Expr, String> {
        if let Some((root, accs)) = chain_of(e) {
            return self.chain(&root, &accs);
        }
        Ok(match e {
            Expr::Var(_) => unreachable!("variables are chains"),
            Expr::Str(_) | Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::None => e.clone(),
            Expr::List(items) => Expr::List(self.all(items)?),
            Expr::Tuple(items) => Expr::List(self.all(items)?),
            Expr::Dict(items) => Expr::Dict(
                items
                    .iter()
                    .map(|(k, v)| Ok((self.expr(k)?, self.expr(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Expr::Attr(o, n) => Expr::Attr(Box::new(self.expr(o)?), n.clone()),
            Expr::Index(o, i) => Expr::Index(Box::new(self.expr(o)?), Box::new(self.expr(i)?)),
            Expr::Slice(o, a, b) => Expr::Slice(
                Box::new(self.expr(o)?),
                a.as_ref().map(|a| self.expr(a).map(Box::new)).transpose()?,
                b.as_ref().map(|b| self.expr(b).map(Box::new)).transpose()?,
            ),
            Expr::Call(f, args) => match &**f {
                Expr::Attr(o, m) => self.method(o, m, args)?,
                Expr::Var(name) => self.function(name, args)?,
                _ => return Err(format!("the call `{}`", jinja::print(e))),
            },
            Expr::Filter(o, name, args) => self.filter(o, name, args)?,
            Expr::Test(o, name, args, neg) => Expr::Test(
                Box::new(self.expr(o)?),
                name.clone(),
                self.args(args)?,
                *neg,
            ),
            Expr::Not(o) => Expr::Not(Box::new(self.expr(o)?)),
            Expr::Neg(o) => Expr::Neg(Box::new(self.expr(o)?)),
            Expr::Bin(op, a, b) => {
                if *op == "%" && matches!(&**a, Expr::Str(_)) {
                    return Err(format!("Python string formatting `{}`", jinja::print(e)));
                }
                let a2 = self.expr(a)?;
                let b2 = self.expr(b)?;
                if (*op == "-" || *op == "+")
                    && is_duration(&b2)
                    && (is_datetime_expr(&a2) || !is_duration(&a2))
                    && !matches!(a2, Expr::Int(_))
                {
                    // Datetime arithmetic, in epoch seconds.
                    let secs =
                        Expr::Bin(op, Box::new(filter(a2, "timestamp", vec![])), Box::new(b2));
                    return Ok(filter(secs, "str_to_datetime", vec![]));
                }
                Expr::Bin(op, Box::new(a2), Box::new(b2))
            }
            Expr::Cond(a, c, b) => Expr::Cond(
                Box::new(self.expr(a)?),
                Box::new(self.expr(c)?),
                b.as_ref().map(|b| self.expr(b).map(Box::new)).transpose()?,
            ),
        })
    }

    fn all(&mut self, items: &[Expr]) -> Result<Vec<Expr>, String> {
        items.iter().map(|i| self.expr(i)).collect()
    }

    fn args(&mut self, args: &[Arg]) -> Result<Vec<Arg>, String> {
        args.iter()
            .map(|a| {
                Ok(Arg {
                    name: a.name.clone(),
                    value: self.expr(&a.value)?,
                })
            })
            .collect()
    }

    fn arg(&mut self, args: &[Arg], i: usize, name: &str) -> Result<Option<Expr>, String> {
        let a = args
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .or_else(|| args.get(i).filter(|a| a.name.is_none()));
        a.map(|a| self.expr(&a.value)).transpose()
    }

    /// Appends accesses to a rewritten base.
    fn accesses(&mut self, mut base: Expr, accs: &[Acc]) -> Result<Expr, String> {
        for a in accs {
            base = match a {
                Acc::Key(k) => attr(base, k),
                Acc::Get(k, d) => {
                    let d = match d {
                        Some(d) => self.expr(d)?,
                        None => Expr::None,
                    };
                    default_to(attr(base, k), d)
                }
                Acc::Idx(i) => Expr::Index(Box::new(base), Box::new(self.expr(i)?)),
            };
        }
        Ok(base)
    }

    fn chain(&mut self, root: &str, accs: &[Acc]) -> Result<Expr, String> {
        let shown = || {
            let mut s = root.to_string();
            for a in accs {
                match a {
                    Acc::Key(k) | Acc::Get(k, _) => {
                        s.push('.');
                        s.push_str(k);
                    }
                    Acc::Idx(_) => s.push_str("[…]"),
                }
            }
            s
        };
        let first = accs.first().and_then(|a| match a {
            Acc::Key(k) | Acc::Get(k, _) => Some(k.clone()),
            Acc::Idx(Expr::Int(i)) => Some(i.to_string()),
            Acc::Idx(_) => None,
        });
        match root {
            _ if self.locals.iter().any(|l| l == root) => {
                self.accesses(Expr::Var(root.into()), accs)
            }
            "config" => self.config_chain(accs, Some(Expr::None)),
            "parameters" => {
                let mut v = serde_json::Value::Object(self.vars.params.clone());
                let mut i = 0;
                let mut default = None;
                while i < accs.len() {
                    let (k, d) = match &accs[i] {
                        Acc::Key(k) => (k, None),
                        Acc::Get(k, d) => (k, d.clone()),
                        Acc::Idx(_) => break,
                    };
                    if !v.is_object() {
                        break;
                    }
                    match v.get(k) {
                        Some(x) => v = x.clone(),
                        None => {
                            default = Some(
                                d.map(|d| self.expr(&d))
                                    .transpose()?
                                    .unwrap_or(Expr::Str(String::new())),
                            );
                            i = accs.len();
                            break;
                        }
                    }
                    i += 1;
                }
                if let Some(d) = default {
                    return Ok(d);
                }
                let base = json_expr(&v);
                self.accesses(base, &accs[i..])
            }
            "stream_slice" | "stream_partition" | "stream_interval" => {
                let Some(k) = first else {
                    return Err(format!("`{}` (the whole slice)", shown()));
                };
                // `parent_slice.<field>`: the parent's own slice.
                if k == "parent_slice"
                    && let Some(Acc::Key(f) | Acc::Get(f, _)) = accs.get(1)
                    && let Some((_, ours)) = self
                        .vars
                        .slice
                        .iter()
                        .find(|(s, _)| *s == format!("parent_slice.{f}"))
                {
                    let base = jinja::parse_expr(ours)?;
                    return self.accesses(base, &accs[2..]);
                }
                let Some((_, ours)) = self.vars.slice.iter().find(|(s, _)| *s == k) else {
                    return Err(format!(
                        "`{}`: this stream has no such slice field",
                        shown()
                    ));
                };
                let base = jinja::parse_expr(ours)?;
                self.accesses(base, &accs[1..])
            }
            "next_page_token" => match (&first, &self.vars.page_token) {
                (Some(k), Some(t)) if k == "next_page_token" => {
                    let base = jinja::parse_expr(t)?;
                    self.accesses(base, &accs[1..])
                }
                _ => Err(format!("`{}` outside the paginator", shown())),
            },
            "stream_state" => match (&first, &self.vars.cursor_field) {
                (Some(k), Some(c)) if k == c && self.vars.scope != Scope::Connection => {
                    self.approx.push(format!(
                        "`{}` reads our saved cursor `state.cursor` (with lookback applied)",
                        shown()
                    ));
                    Ok(Expr::Attr(
                        Box::new(Expr::Var("state".into())),
                        "cursor".into(),
                    ))
                }
                _ => Err(format!("`{}`", shown())),
            },
            "response" if self.vars.scope == Scope::Stop => {
                self.accesses(Expr::Var("response".into()), accs)
            }
            "headers" if self.vars.scope == Scope::Stop => {
                let Some(k) = first else {
                    return Err("`headers` as a whole".into());
                };
                let k = k.to_ascii_lowercase();
                if k == "link" && accs.len() > 1 {
                    return Err("the parsed `Link` header (`headers.link.<rel>`)".into());
                }
                let base = Expr::Index(
                    Box::new(Expr::Var("headers".into())),
                    Box::new(Expr::Str(k)),
                );
                let base = match &accs[0] {
                    Acc::Get(_, d) => default_to(
                        base,
                        d.as_ref()
                            .map(|d| self.expr(d))
                            .transpose()?
                            .unwrap_or(Expr::None),
                    ),
                    _ => base,
                };
                self.accesses(base, &accs[1..])
            }
            "last_page_size" if self.vars.scope == Scope::Stop => self.accesses(
                Expr::Attr(Box::new(Expr::Var("page".into())), "records".into()),
                accs,
            ),
            "last_record" if self.vars.scope == Scope::Stop => match &self.vars.last_record {
                Some(t) => {
                    let base = jinja::parse_expr(t)?;
                    self.accesses(base, accs)
                }
                None => Err("`last_record` where the records path is not a plain path".into()),
            },
            "record" if self.vars.scope == Scope::Record => {
                self.accesses(Expr::Var("record".into()), accs)
            }
            "now_utc" | "today_utc" | "day_delta" | "duration" | "format_datetime"
            | "str_to_datetime" | "timestamp" | "max" | "min"
                if accs.is_empty() =>
            {
                Ok(Expr::Var(root.into()))
            }
            other => Err(format!("the variable `{other}` here")),
        }
    }

    /// A `config` chain; `missing` is what an absent optional value reads as.
    fn config_chain(&mut self, accs: &[Acc], missing: Option<Expr>) -> Result<Expr, String> {
        let mut keys = Vec::new();
        let mut defaults = Vec::new();
        for a in accs {
            match a {
                Acc::Key(k) => {
                    keys.push(k.clone());
                    defaults.push(None);
                }
                Acc::Get(k, d) => {
                    keys.push(k.clone());
                    defaults.push(Some(d.clone().unwrap_or(Expr::None)));
                }
                Acc::Idx(_) => break,
            }
        }
        if keys.is_empty() {
            return Err("`config` as a whole".into());
        }
        match self.config.lookup(&keys, self.vars.pos) {
            Lookup::Object if accs.len() == keys.len() => {
                // Tested for presence (`if config.get('credentials')`): any
                // of its flattened keys set.
                let names = self.config.under(&keys);
                self.approx.push(format!(
                    "the config object `{}` reads as whether any of its keys is set",
                    keys.join(".")
                ));
                let tests: Vec<Expr> = names
                    .into_iter()
                    .map(|n| {
                        Expr::Test(
                            Box::new(Expr::Attr(Box::new(Expr::Var("config".into())), n)),
                            "defined".into(),
                            vec![],
                            false,
                        )
                    })
                    .collect();
                Ok(tests
                    .into_iter()
                    .reduce(|a, b| Expr::Bin("or", Box::new(a), Box::new(b)))
                    .unwrap_or(Expr::Bool(false)))
            }
            Lookup::Object => Err(format!("the config object `{}` read whole", keys.join("."))),
            Lookup::Param(name, used, optional) => {
                let mut e = Expr::Attr(Box::new(Expr::Var("config".into())), name);
                let explicit = defaults[..used].iter().rev().flatten().next().cloned();
                if let Some(d) = explicit {
                    // `.get(k, {})` on an object whose keys were flattened
                    // is no default of the leaf.
                    let d = if matches!(d, Expr::Dict(_)) && used < keys.len() {
                        Expr::None
                    } else {
                        self.expr(&d)?
                    };
                    e = default_to(e, d);
                } else if optional && let Some(m) = missing {
                    e = default_to(e, m);
                }
                self.accesses(e, &accs[used..])
            }
        }
    }

    fn method(&mut self, o: &Expr, m: &str, args: &[Arg]) -> Result<Expr, String> {
        let obj = self.expr(o)?;
        let a0 = self.arg(args, 0, "")?;
        Ok(match (m, args.len()) {
            ("get", 1 | 2) => {
                let Some(k) = a0 else { unreachable!() };
                let d = self.arg(args, 1, "")?.unwrap_or(Expr::None);
                default_to(Expr::Index(Box::new(obj), Box::new(k)), d)
            }
            ("strftime", 1) => {
                let f = match a0 {
                    Some(Expr::Str(f)) => Expr::Str(strftime(&f)),
                    Some(other) => other,
                    None => unreachable!(),
                };
                filter(obj, "format_datetime", vec![f])
            }
            ("isoformat", 0) => filter(obj, "str_to_datetime", vec![]),
            ("timestamp", 0) => filter(obj, "timestamp", vec![]),
            ("date", 0) => filter(obj, "format_datetime", vec![Expr::Str("%Y-%m-%d".into())]),
            ("lower" | "upper" | "title" | "capitalize", 0) => filter(obj, m, vec![]),
            ("strip", 0) => filter(obj, "trim", vec![]),
            ("strip" | "rstrip" | "lstrip", 1) => {
                if m != "strip" {
                    self.approx
                        .push(format!("`.{m}(…)` trims both ends (`| trim`)"));
                }
                filter(obj, "trim", a0.into_iter().collect())
            }
            ("rstrip" | "lstrip", 0) => filter(obj, "trim", vec![]),
            ("split", 0 | 1) => filter(obj, "split", a0.into_iter().collect()),
            ("replace", 2) => {
                let b = self.arg(args, 1, "")?.unwrap_or(Expr::None);
                filter(obj, "replace", vec![a0.unwrap_or(Expr::None), b])
            }
            ("join", 1) => filter(a0.unwrap_or(Expr::None), "join", vec![obj]),
            ("startswith", 1) => Expr::Test(
                Box::new(obj),
                "startingwith".into(),
                vec![Arg::pos(a0.unwrap_or(Expr::None))],
                false,
            ),
            ("endswith", 1) => Expr::Test(
                Box::new(obj),
                "endingwith".into(),
                vec![Arg::pos(a0.unwrap_or(Expr::None))],
                false,
            ),
            ("items", 0) => filter(obj, "items", vec![]),
            ("keys", 0) => filter(obj, "list", vec![]),
            _ => return Err(format!("the Python method `.{m}()`")),
        })
    }

    fn function(&mut self, name: &str, args: &[Arg]) -> Result<Expr, String> {
        Ok(match name {
            "now_utc" | "today_utc" => call(name, vec![]),
            "day_delta" => {
                let n = self
                    .arg(args, 0, "num_days")?
                    .ok_or("`day_delta()` without days")?;
                match self.arg(args, 1, "format")? {
                    Some(Expr::Str(f)) => filter(
                        call("day_delta", vec![n]),
                        "format_datetime",
                        vec![Expr::Str(strftime(&f))],
                    ),
                    Some(f) => filter(call("day_delta", vec![n]), "format_datetime", vec![f]),
                    None => {
                        self.approx.push("`day_delta(n)` is RFC 3339 (`…T00:00:00Z`), not Python's `%Y-%m-%dT%H:%M:%S.%f%z`".into());
                        call("day_delta", vec![n])
                    }
                }
            }
            "duration" => {
                let d = self
                    .arg(args, 0, "datestring")?
                    .ok_or("`duration()` without a duration")?;
                call("duration", vec![d])
            }
            "format_datetime" => {
                let dt = self
                    .arg(args, 0, "dt")?
                    .ok_or("`format_datetime()` without a datetime")?;
                let f = match self.arg(args, 1, "format")? {
                    Some(Expr::Str(f)) => Expr::Str(strftime(&f)),
                    Some(f) => f,
                    None => return Err("`format_datetime()` without a format".into()),
                };
                if self.arg(args, 2, "input_format")?.is_some() {
                    self.approx.push("`format_datetime`'s input format is not used: the value is parsed as RFC 3339, a date or epoch seconds".into());
                }
                call("format_datetime", vec![dt, f])
            }
            "str_to_datetime" | "timestamp" => {
                let v = self
                    .arg(args, 0, "")?
                    .ok_or_else(|| format!("`{name}()` without a value"))?;
                call(name, vec![v])
            }
            "max" | "min" => {
                let vals = args
                    .iter()
                    .map(|a| self.expr(&a.value))
                    .collect::<Result<Vec<_>, _>>()?;
                call(name, vals)
            }
            "sanitize_url" => {
                self.approx.push("`sanitize_url` percent-encodes (`| urlencode`) rather than Python's quote_plus".into());
                let v = self
                    .arg(args, 0, "value")?
                    .ok_or("`sanitize_url()` without a value")?;
                filter(v, "urlencode", vec![])
            }
            other => return Err(format!("the macro `{other}()`")),
        })
    }

    fn filter(&mut self, o: &Expr, name: &str, args: &[Arg]) -> Result<Expr, String> {
        let obj = self.expr(o)?;
        let args = self.args(args)?;
        let name = match name {
            "d" => "default",
            "hash" | "regex_replace" | "hmac" | "base64binascii_decode" => {
                return Err(format!("the filter `{name}`"));
            }
            "strftime" => "format_datetime",
            other => other,
        };
        Ok(Expr::Filter(Box::new(obj), name.into(), args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ConfigMap {
        let node = super::super::refs::parse(
            "connection_specification:\n  required: [subdomain]\n  properties:\n    subdomain: {type: string}\n    start_date: {type: string}\n    region: {type: string, default: US}\n    credentials:\n      type: object\n      properties:\n        api_key: {type: string, airbyte_secret: true}\n",
        )
        .unwrap();
        ConfigMap::from_spec(Some(&node))
    }

    fn rw(src: &str, vars: &Vars) -> Result<String, String> {
        template(src, vars, &mut config()).map(|r| r.text)
    }

    #[test]
    fn config_reads_become_flat_and_optional_ones_default() {
        let v = Vars::new(Scope::Connection, Pos::default());
        assert_eq!(
            rw("https://{{ config['subdomain'] }}.zendesk.com/", &v).unwrap(),
            "https://{{ config.subdomain }}.zendesk.com/"
        );
        assert_eq!(
            rw("{{ config['credentials']['api_key'] }}", &v).unwrap(),
            "{{ config.credentials_api_key | default('') }}"
        );
        let mut p = v.clone();
        p.none_if_missing = true;
        assert_eq!(
            rw("{{ config.start_date }}", &p).unwrap(),
            "{{ config.start_date | default(none) }}"
        );
        assert_eq!(
            rw("x{{ config.start_date }}", &v).unwrap(),
            "x{{ config.start_date | default('') }}"
        );
        assert_eq!(
            rw(
                "{{ 'eu' if config.get('region', 'US') == 'EU' else 'us' }}",
                &v
            )
            .unwrap(),
            "{{ 'eu' if config.region | default('US') == 'EU' else 'us' }}"
        );
        assert_eq!(
            rw("{{ config.get('credentials', {}).get('api_key') }}", &v).unwrap(),
            "{{ config.credentials_api_key | default(none) }}"
        );
        assert!(
            rw("{{ config['credentials'] }}", &v)
                .unwrap_err()
                .contains("whole")
        );
    }

    #[test]
    fn python_idioms_become_filters() {
        let v = Vars::new(Scope::Connection, Pos::default());
        assert_eq!(
            rw("{{ now_utc().strftime('%Y-%m-%dT%H:%M:%S.%fZ') }}", &v).unwrap(),
            "{{ now_utc() | format_datetime('%Y-%m-%dT%H:%M:%S.%6fZ') }}"
        );
        assert_eq!(
            rw(
                "{{ (now_utc() - duration('P30D')).strftime('%Y-%m-%d') }}",
                &v
            )
            .unwrap(),
            "{{ (now_utc() | timestamp - duration('P30D')) | str_to_datetime | format_datetime('%Y-%m-%d') }}"
        );
        assert_eq!(rw("{{ max(1, 2) }}", &v).unwrap(), "{{ max(1, 2) }}");
        assert_eq!(
            rw("{{ day_delta(-1, format='%Y-%m-%d') }}", &v).unwrap(),
            "{{ day_delta(-1) | format_datetime('%Y-%m-%d') }}"
        );
        assert_eq!(
            rw("{{ config.subdomain.rstrip('/').lower() }}", &v).unwrap(),
            "{{ config.subdomain | trim('/') | lower }}"
        );
        assert!(rw("{{ generate_uuid() }}", &v).is_err());
        assert!(rw("{{ config.subdomain | hash('md5') }}", &v).is_err());
    }

    #[test]
    fn slices_partitions_and_parameters() {
        let mut v = Vars::new(Scope::Request, Pos::default());
        v.slice = vec![
            ("start_time".into(), "window.start".into()),
            ("parent_id".into(), "parent.id".into()),
        ];
        v.params = json!({"path": "users", "n": 5})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            rw("{{ parameters.path }}/{{ stream_partition.parent_id }}?since={{ stream_interval['start_time'] }}", &v).unwrap(),
            "users/{{ parent.id }}?since={{ window.start }}"
        );
        assert_eq!(rw("{{ parameters['n'] * 2 }}", &v).unwrap(), "{{ 5 * 2 }}");
        assert_eq!(rw("{{ parameters['n'] }}", &v).unwrap(), "5");
        assert!(rw("{{ stream_slice.end_time }}", &v).is_err());
        assert!(rw("{{ next_page_token.next_page_token }}", &v).is_err());
        assert!(rw("{{ response.next }}", &v).is_err());
        let stop = v.with_scope(Scope::Stop, Pos::default());
        assert_eq!(
            rw(
                "{{ not response.get('has_more') or last_page_size < 100 }}",
                &stop
            )
            .unwrap(),
            "{{ not response.has_more | default(none) or page.records < 100 }}"
        );
        assert_eq!(
            rw("{{ headers['X-Next'] }}", &stop).unwrap(),
            "{{ headers['x-next'] }}"
        );
    }
}
