//! A small Jinja parser and printer: templates as text, `{{ expression }}`
//! and `{% statement %}` segments, and expressions as a tree, printed back
//! in the syntax minijinja reads. [`super::interpolation`] rewrites the
//! trees from Airbyte's variables and Python idioms to ours.

use std::fmt::Write;

/// One part of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Text(String),
    /// `{{ expr }}`, with its whitespace-control dashes.
    Print(Expr, bool, bool),
    /// `{% ... %}`.
    Stmt(Stmt, bool, bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    If(Expr),
    Elif(Expr),
    Else,
    EndIf,
    Set(String, Expr),
    For(Vec<String>, Expr),
    EndFor,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Var(String),
    Str(String),
    Int(i64),
    Float(String),
    Bool(bool),
    None,
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    Call(Box<Expr>, Vec<Arg>),
    Filter(Box<Expr>, String, Vec<Arg>),
    Test(Box<Expr>, String, Vec<Arg>, bool),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

impl Arg {
    pub fn pos(value: Expr) -> Arg {
        Arg { name: None, value }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "**", "//", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|", "~", "+",
    "-", "*", "/", "%", "<", ">", "=",
];

/// Tokens of an expression starting at `src`, up to the closing `}}` or
/// `%}` (`close`) at bracket depth zero. Returns the tokens and the bytes
/// consumed, the closing delimiter included.
fn tokenize(src: &str, close: &str) -> Result<(Vec<Tok>, usize, bool), String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut depth = 0i32;
    loop {
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Err(format!(
                "unclosed `{}`",
                if close == "}}" { "{{" } else { "{%" }
            ));
        }
        // Whitespace control before the closing delimiter.
        if depth == 0 && b[i] == b'-' && src[i + 1..].starts_with(close) {
            return Ok((out, i + 1 + close.len(), true));
        }
        if depth == 0 && src[i..].starts_with(close) {
            return Ok((out, i + close.len(), false));
        }
        let c = b[i] as char;
        if c == '\'' || c == '"' {
            let mut s = String::new();
            let mut j = i + 1;
            let chars: Vec<(usize, char)> = src[j..].char_indices().collect();
            let mut k = 0;
            let mut closed = false;
            while k < chars.len() {
                let (_, ch) = chars[k];
                if ch == '\\' && k + 1 < chars.len() {
                    let (_, n) = chars[k + 1];
                    match n {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '\\' => s.push('\\'),
                        '\'' => s.push('\''),
                        '"' => s.push('"'),
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                    k += 2;
                    continue;
                }
                if ch == c {
                    closed = true;
                    j += chars[k].0 + ch.len_utf8();
                    break;
                }
                s.push(ch);
                k += 1;
            }
            if !closed {
                return Err("unclosed string".into());
            }
            out.push(Tok::Str(s));
            i = j;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            let mut float = false;
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text = src[start..i].replace('_', "");
            if float {
                out.push(Tok::Float(text));
            } else {
                out.push(Tok::Int(
                    text.parse().map_err(|_| format!("bad number `{text}`"))?,
                ));
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Name(src[start..i].to_string()));
            continue;
        }
        let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) else {
            return Err(format!("unexpected `{c}`"));
        };
        match *op {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
        out.push(Tok::Op(op));
        i += op.len();
    }
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.i + n)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn is_name(&self, n: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(x)) if x == n)
    }
    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_name(&mut self, n: &str) -> bool {
        if self.is_name(n) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(format!("expected `{op}`, found {:?}", self.peek()))
        }
    }
    fn name(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Name(n)) => {
                self.i += 1;
                Ok(n)
            }
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let e = self.or()?;
        if self.eat_name("if") {
            let cond = self.or()?;
            let other = if self.eat_name("else") {
                Some(Box::new(self.expr()?))
            } else {
                None
            };
            return Ok(Expr::Cond(Box::new(e), Box::new(cond), other));
        }
        Ok(e)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat_name("or") {
            e = Expr::Bin("or", Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat_name("and") {
            e = Expr::Bin("and", Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.is_name("not") && !matches!(self.peek_at(1), Some(Tok::Name(n)) if n == "in") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }
    fn compare(&mut self) -> Result<Expr, String> {
        let mut e = self.concat()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(o)) if ["==", "!=", "<", ">", "<=", ">="].contains(o) => *o,
                Some(Tok::Name(n)) if n == "in" => "in",
                Some(Tok::Name(n))
                    if n == "not" && matches!(self.peek_at(1), Some(Tok::Name(x)) if x == "in") =>
                {
                    self.i += 1;
                    "not in"
                }
                _ => return Ok(e),
            };
            self.i += 1;
            e = Expr::Bin(op, Box::new(e), Box::new(self.concat()?));
        }
    }
    fn concat(&mut self) -> Result<Expr, String> {
        let mut e = self.add()?;
        while self.eat_op("~") {
            e = Expr::Bin("~", Box::new(e), Box::new(self.add()?));
        }
        Ok(e)
    }
    fn add(&mut self) -> Result<Expr, String> {
        let mut e = self.mul()?;
        loop {
            let op = if self.eat_op("+") {
                "+"
            } else if self.eat_op("-") {
                "-"
            } else {
                return Ok(e);
            };
            e = Expr::Bin(op, Box::new(e), Box::new(self.mul()?));
        }
    }
    fn mul(&mut self) -> Result<Expr, String> {
        let mut e = self.pow()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(o)) if ["*", "/", "//", "%"].contains(o) => *o,
                _ => return Ok(e),
            };
            self.i += 1;
            e = Expr::Bin(op, Box::new(e), Box::new(self.pow()?));
        }
    }
    fn pow(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.eat_op("**") {
            e = Expr::Bin("**", Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_op("-") {
            let e = self.unary_nofilter()?;
            return self.filters(Expr::Neg(Box::new(e)));
        }
        if self.eat_op("+") {
            return self.unary();
        }
        let e = self.postfix()?;
        self.filters(e)
    }
    fn unary_nofilter(&mut self) -> Result<Expr, String> {
        if self.eat_op("-") {
            return Ok(Expr::Neg(Box::new(self.unary_nofilter()?)));
        }
        self.postfix()
    }
    fn filters(&mut self, mut e: Expr) -> Result<Expr, String> {
        loop {
            if self.eat_op("|") {
                let name = self.name()?;
                let args = if self.is_op("(") {
                    self.i += 1;
                    self.args()?
                } else {
                    Vec::new()
                };
                e = Expr::Filter(Box::new(e), name, args);
                e = self.postfix_of(e)?;
            } else if self.is_name("is") {
                self.i += 1;
                let negated = self.eat_name("not");
                let name = self.name()?;
                let args = if self.is_op("(") {
                    self.i += 1;
                    self.args()?
                } else if let Some(Tok::Str(_) | Tok::Int(_)) = self.peek() {
                    vec![Arg::pos(self.primary()?)]
                } else {
                    Vec::new()
                };
                e = Expr::Test(Box::new(e), name, args, negated);
            } else {
                return Ok(e);
            }
        }
    }
    fn args(&mut self) -> Result<Vec<Arg>, String> {
        let mut args = Vec::new();
        while !self.eat_op(")") {
            if let (Some(Tok::Name(n)), Some(Tok::Op("="))) =
                (self.peek().cloned(), self.peek_at(1))
            {
                self.i += 2;
                args.push(Arg {
                    name: Some(n),
                    value: self.expr()?,
                });
            } else {
                args.push(Arg::pos(self.expr()?));
            }
            if !self.eat_op(",") {
                self.expect_op(")")?;
                break;
            }
        }
        Ok(args)
    }
    fn postfix(&mut self) -> Result<Expr, String> {
        let e = self.primary()?;
        self.postfix_of(e)
    }
    fn postfix_of(&mut self, mut e: Expr) -> Result<Expr, String> {
        loop {
            if self.eat_op(".") {
                match self.peek().cloned() {
                    Some(Tok::Name(n)) => {
                        self.i += 1;
                        e = Expr::Attr(Box::new(e), n);
                    }
                    Some(Tok::Int(n)) => {
                        self.i += 1;
                        e = Expr::Index(Box::new(e), Box::new(Expr::Int(n)));
                    }
                    other => return Err(format!("expected an attribute, found {other:?}")),
                }
            } else if self.eat_op("[") {
                let start = if self.is_op(":") {
                    None
                } else {
                    Some(Box::new(self.expr()?))
                };
                if self.eat_op(":") {
                    let end = if self.is_op("]") {
                        None
                    } else {
                        Some(Box::new(self.expr()?))
                    };
                    self.expect_op("]")?;
                    e = Expr::Slice(Box::new(e), start, end);
                } else {
                    self.expect_op("]")?;
                    e = Expr::Index(Box::new(e), start.ok_or("empty subscript")?);
                }
            } else if self.eat_op("(") {
                let args = self.args()?;
                e = Expr::Call(Box::new(e), args);
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Name(n)) => {
                self.i += 1;
                Ok(match n.as_str() {
                    "true" | "True" => Expr::Bool(true),
                    "false" | "False" => Expr::Bool(false),
                    "none" | "None" => Expr::None,
                    _ => Expr::Var(n),
                })
            }
            Some(Tok::Str(s)) => {
                self.i += 1;
                let mut s = s;
                while let Some(Tok::Str(more)) = self.peek().cloned() {
                    self.i += 1;
                    s.push_str(&more);
                }
                Ok(Expr::Str(s))
            }
            Some(Tok::Int(n)) => {
                self.i += 1;
                Ok(Expr::Int(n))
            }
            Some(Tok::Float(f)) => {
                self.i += 1;
                Ok(Expr::Float(f))
            }
            Some(Tok::Op("(")) => {
                self.i += 1;
                if self.eat_op(")") {
                    return Ok(Expr::Tuple(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat_op(")") {
                    return Ok(first);
                }
                let mut items = vec![first];
                while self.eat_op(",") {
                    if self.is_op(")") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                self.expect_op(")")?;
                Ok(Expr::Tuple(items))
            }
            Some(Tok::Op("[")) => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat_op("]") {
                    items.push(self.expr()?);
                    if !self.eat_op(",") {
                        self.expect_op("]")?;
                        break;
                    }
                }
                Ok(Expr::List(items))
            }
            Some(Tok::Op("{")) => {
                self.i += 1;
                let mut items = Vec::new();
                while !self.eat_op("}") {
                    let k = self.expr()?;
                    self.expect_op(":")?;
                    let v = self.expr()?;
                    items.push((k, v));
                    if !self.eat_op(",") {
                        self.expect_op("}")?;
                        break;
                    }
                }
                Ok(Expr::Dict(items))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

/// Parses a whole expression.
pub(crate) fn parse_expr(src: &str) -> Result<Expr, String> {
    let (toks, _, _) = tokenize(&format!("{src} }}}}"), "}}")?;
    let mut p = P { toks, i: 0 };
    let e = p.expr()?;
    if p.i != p.toks.len() {
        return Err(format!("unexpected {:?}", p.peek()));
    }
    Ok(e)
}

/// Parses a template into segments.
pub(crate) fn parse_template(src: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut text = String::new();
    while !rest.is_empty() {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|d| rest.find(d).map(|i| (i, *d)))
            .min();
        let Some((i, d)) = next else {
            text.push_str(rest);
            break;
        };
        text.push_str(&rest[..i]);
        if !text.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut text)));
        }
        let mut after = &rest[i + 2..];
        let left = after.starts_with('-');
        if left {
            after = &after[1..];
        }
        match d {
            "{#" => {
                let end = after.find("#}").ok_or("unclosed comment")?;
                rest = &after[end + 2..];
            }
            "{{" => {
                let (toks, used, right) = tokenize(after, "}}")?;
                let mut p = P { toks, i: 0 };
                let e = p.expr()?;
                if p.i != p.toks.len() {
                    return Err(format!("unexpected {:?}", p.peek()));
                }
                out.push(Segment::Print(e, left, right));
                rest = &after[used..];
            }
            _ => {
                let (toks, used, right) = tokenize(after, "%}")?;
                let mut p = P { toks, i: 0 };
                let kw = p.name()?;
                let stmt = match kw.as_str() {
                    "if" => Stmt::If(p.expr()?),
                    "elif" => Stmt::Elif(p.expr()?),
                    "else" => Stmt::Else,
                    "endif" => Stmt::EndIf,
                    "endfor" => Stmt::EndFor,
                    "set" => {
                        let n = p.name()?;
                        p.expect_op("=")?;
                        Stmt::Set(n, p.expr()?)
                    }
                    "for" => {
                        let mut names = vec![p.name()?];
                        while p.eat_op(",") {
                            names.push(p.name()?);
                        }
                        if !p.eat_name("in") {
                            return Err("expected `in`".into());
                        }
                        Stmt::For(names, p.or()?)
                    }
                    other => return Err(format!("the statement `{{% {other} %}}`")),
                };
                if p.i != p.toks.len() {
                    return Err(format!("unexpected {:?} in a statement", p.peek()));
                }
                out.push(Segment::Stmt(stmt, left, right));
                rest = &after[used..];
            }
        }
    }
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Cond(..) => 0,
        Expr::Bin("or", ..) => 1,
        Expr::Bin("and", ..) => 2,
        Expr::Not(_) => 3,
        Expr::Bin("==" | "!=" | "<" | ">" | "<=" | ">=" | "in" | "not in", ..) => 4,
        Expr::Bin("~", ..) => 5,
        Expr::Bin("+" | "-", ..) => 6,
        Expr::Bin(..) => 7, // * / // %
        Expr::Neg(_) => 8,
        Expr::Filter(..) | Expr::Test(..) => 9,
        _ => 10,
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A string literal as minijinja reads it.
pub(crate) fn quote_str(s: &str) -> String {
    quote(s)
}

fn wrap(out: &mut String, e: &Expr, min: u8) {
    if prec(e) < min {
        out.push('(');
        print_into(out, e);
        out.push(')');
    } else {
        print_into(out, e);
    }
}

fn print_args(out: &mut String, args: &[Arg]) {
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(n) = &a.name {
            let _ = write!(out, "{n}=");
        }
        print_into(out, &a.value);
    }
    out.push(')');
}

fn print_into(out: &mut String, e: &Expr) {
    match e {
        Expr::Var(n) => out.push_str(n),
        Expr::Str(s) => out.push_str(&quote(s)),
        Expr::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Expr::Float(f) => out.push_str(f),
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::None => out.push_str("none"),
        Expr::List(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_into(out, it);
            }
            out.push(']');
        }
        Expr::Tuple(items) => {
            out.push('(');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_into(out, it);
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Expr::Dict(items) => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_into(out, k);
                out.push_str(": ");
                print_into(out, v);
            }
            out.push('}');
        }
        Expr::Attr(o, n) => {
            wrap(out, o, 10);
            let _ = write!(out, ".{n}");
        }
        Expr::Index(o, i) => {
            wrap(out, o, 10);
            out.push('[');
            print_into(out, i);
            out.push(']');
        }
        Expr::Slice(o, a, b) => {
            wrap(out, o, 10);
            out.push('[');
            if let Some(a) = a {
                print_into(out, a);
            }
            out.push(':');
            if let Some(b) = b {
                print_into(out, b);
            }
            out.push(']');
        }
        Expr::Call(f, args) => {
            wrap(out, f, 10);
            print_args(out, args);
        }
        Expr::Filter(o, name, args) => {
            wrap(out, o, 9);
            let _ = write!(out, " | {name}");
            if !args.is_empty() {
                print_args(out, args);
            }
        }
        Expr::Test(o, name, args, neg) => {
            wrap(out, o, 9);
            out.push_str(if *neg { " is not " } else { " is " });
            out.push_str(name);
            if !args.is_empty() {
                print_args(out, args);
            }
        }
        Expr::Not(o) => {
            out.push_str("not ");
            wrap(out, o, 3);
        }
        Expr::Neg(o) => {
            out.push('-');
            wrap(out, o, 9);
        }
        Expr::Bin(op, a, b) => {
            let p = prec(e);
            // Left-associative: the right side needs a higher precedence.
            wrap(out, a, if *op == "**" { p + 1 } else { p });
            let _ = write!(out, " {op} ");
            wrap(out, b, p + 1);
        }
        Expr::Cond(a, c, b) => {
            wrap(out, a, 1);
            out.push_str(" if ");
            wrap(out, c, 1);
            if let Some(b) = b {
                out.push_str(" else ");
                print_into(out, b);
            }
        }
    }
}

/// An expression in minijinja syntax.
pub(crate) fn print(e: &Expr) -> String {
    let mut out = String::new();
    print_into(&mut out, e);
    out
}

/// A template in minijinja syntax.
pub(crate) fn print_template(segs: &[Segment]) -> String {
    let mut out = String::new();
    let open = |out: &mut String, d: &str, dash: bool| {
        out.push_str(d);
        out.push_str(if dash { "- " } else { " " });
    };
    let close = |out: &mut String, d: &str, dash: bool| {
        out.push_str(if dash { " -" } else { " " });
        out.push_str(d);
    };
    for s in segs {
        match s {
            Segment::Text(t) => out.push_str(t),
            Segment::Print(e, l, r) => {
                open(&mut out, "{{", *l);
                print_into(&mut out, e);
                close(&mut out, "}}", *r);
            }
            Segment::Stmt(st, l, r) => {
                open(&mut out, "{%", *l);
                match st {
                    Stmt::If(e) => {
                        out.push_str("if ");
                        print_into(&mut out, e);
                    }
                    Stmt::Elif(e) => {
                        out.push_str("elif ");
                        print_into(&mut out, e);
                    }
                    Stmt::Else => out.push_str("else"),
                    Stmt::EndIf => out.push_str("endif"),
                    Stmt::EndFor => out.push_str("endfor"),
                    Stmt::Set(n, e) => {
                        let _ = write!(out, "set {n} = ");
                        print_into(&mut out, e);
                    }
                    Stmt::For(names, e) => {
                        let _ = write!(out, "for {} in ", names.join(", "));
                        print_into(&mut out, e);
                    }
                }
                close(&mut out, "%}", *r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(src: &str) -> String {
        print_template(&parse_template(src).unwrap())
    }

    #[test]
    fn templates_print_back() {
        assert_eq!(round("a {{ config['x'] }} b"), "a {{ config['x'] }} b");
        assert_eq!(
            round("{{ 'a' if config.get(\"r\") == 'EU' else \"b\" }}"),
            "{{ 'a' if config.get('r') == 'EU' else 'b' }}"
        );
        assert_eq!(round("{{ {'a': {'b': 1}} }}"), "{{ {'a': {'b': 1}} }}");
        assert_eq!(
            round("{% if x is not none %}{{ x|int }}{% endif %}"),
            "{% if x is not none %}{{ x | int }}{% endif %}"
        );
        assert_eq!(round("{{ (a + b) * 2 }}"), "{{ (a + b) * 2 }}");
        assert_eq!(round("{{ not a and b }}"), "{{ not a and b }}");
        assert_eq!(
            round("{{ 'x' not in headers['link'] }}"),
            "{{ 'x' not in headers['link'] }}"
        );
        assert_eq!(round("{{- a[1:] -}}"), "{{- a[1:] -}}");
        assert_eq!(round("{# c #}x"), "x");
    }
}
