//! Writes a translation as native connector YAML: block style, strings
//! quoted only where YAML would misread them, a `# approximated: …`
//! comment above each place that is only approximately equal, and the
//! streams that could not be translated listed at the end.

use serde_json::Value as J;

/// Comments by the path of the key they stand above.
pub(crate) type Comments = Vec<(Vec<String>, String)>;

/// The YAML text, and the lines each stream spans (1-based, inclusive).
pub(crate) struct Emitted {
    pub text: String,
    pub streams: Vec<(String, usize, usize)>,
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    if s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " _./-".contains(c))
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "none"
    )
}

fn scalar(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) if plain_ok(s) => s.clone(),
        J::String(s) => serde_json::to_string(s).unwrap_or_default(),
        J::Array(a) if a.is_empty() => "[]".into(),
        J::Object(o) if o.is_empty() => "{}".into(),
        _ => unreachable!("not a scalar"),
    }
}

fn is_scalar(v: &J) -> bool {
    match v {
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
        _ => true,
    }
}

/// A short list of scalars, written inline: `[id, name]`.
fn inline_list(v: &J) -> Option<String> {
    let J::Array(a) = v else { return None };
    if a.is_empty()
        || !a
            .iter()
            .all(|x| matches!(x, J::String(_) | J::Number(_) | J::Bool(_)))
    {
        return None;
    }
    let parts: Vec<String> = a
        .iter()
        .map(|x| match x {
            J::String(s) if plain_ok(s) && !s.contains(' ') => s.clone(),
            J::String(s) => serde_json::to_string(s).unwrap_or_default(),
            other => other.to_string(),
        })
        .collect();
    let text = format!("[{}]", parts.join(", "));
    (text.len() <= 80).then_some(text)
}

struct W<'a> {
    out: String,
    line: usize,
    comments: &'a Comments,
    streams: Vec<(String, usize, usize)>,
}

impl W<'_> {
    fn push_line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.line += 1;
    }

    fn comments_at(&mut self, path: &[String], indent: usize) {
        let lines: Vec<String> = self
            .comments
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, c)| c.clone())
            .collect();
        for c in lines {
            for (i, l) in c.lines().enumerate() {
                let l = if i == 0 {
                    format!("# approximated: {l}")
                } else {
                    format!("#   {l}")
                };
                self.push_line(indent, &l);
            }
        }
    }

    fn map(&mut self, m: &serde_json::Map<String, J>, indent: usize, path: &mut Vec<String>) {
        for (k, v) in m {
            path.push(k.clone());
            let start = self.line;
            self.comments_at(path, indent);
            let key = if plain_ok(k) {
                k.clone()
            } else {
                serde_json::to_string(k).unwrap_or_default()
            };
            self.value_after(&key, v, indent, path);
            if path.len() == 2 && path[0] == "streams" {
                self.streams.push((k.clone(), start, self.line - 1));
            }
            path.pop();
        }
    }

    /// `key: value`, or `key:` and the value below.
    fn value_after(&mut self, key: &str, v: &J, indent: usize, path: &mut Vec<String>) {
        if is_scalar(v) {
            self.push_line(indent, &format!("{key}: {}", scalar(v)));
        } else if let Some(l) = inline_list(v) {
            self.push_line(indent, &format!("{key}: {l}"));
        } else {
            self.push_line(indent, &format!("{key}:"));
            match v {
                J::Object(m) => self.map(m, indent + 2, path),
                J::Array(a) => self.seq(a, indent + 2, path),
                _ => {}
            }
        }
    }

    fn seq(&mut self, a: &[J], indent: usize, path: &mut Vec<String>) {
        for (i, item) in a.iter().enumerate() {
            path.push(i.to_string());
            match item {
                J::Object(m) if !m.is_empty() => {
                    // `- first: …` then the other keys under it.
                    let mut first = true;
                    for (k, v) in m {
                        path.push(k.clone());
                        let key = if plain_ok(k) {
                            k.clone()
                        } else {
                            serde_json::to_string(k).unwrap_or_default()
                        };
                        if first {
                            let mut sub = W {
                                out: String::new(),
                                line: self.line,
                                comments: self.comments,
                                streams: Vec::new(),
                            };
                            sub.value_after(&key, v, indent + 2, path);
                            let text = sub.out;
                            let mut lines = text.lines();
                            if let Some(l) = lines.next() {
                                self.push_line(indent, &format!("- {}", l.trim_start()));
                            }
                            for l in lines {
                                self.push_line(0, l);
                            }
                            first = false;
                        } else {
                            self.value_after(&key, v, indent + 2, path);
                        }
                        path.pop();
                    }
                }
                v if is_scalar(v) => self.push_line(indent, &format!("- {}", scalar(v))),
                J::Array(inner) => {
                    self.push_line(indent, "-");
                    self.seq(inner, indent + 2, path);
                }
                _ => {}
            }
            path.pop();
        }
    }
}

/// Writes `doc` (a connector in our format) as YAML under `header` lines.
pub(crate) fn emit(doc: &J, comments: &Comments, header: &[String], footer: &[String]) -> Emitted {
    let mut w = W {
        out: String::new(),
        line: 1,
        comments,
        streams: Vec::new(),
    };
    for h in header {
        w.push_line(0, format!("# {h}").trim_end());
    }
    if let J::Object(m) = doc {
        w.map(m, 0, &mut Vec::new());
    }
    if !footer.is_empty() {
        w.push_line(0, "");
        for f in footer {
            w.push_line(0, format!("# {f}").trim_end());
        }
    }
    Emitted {
        text: w.out,
        streams: w.streams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_with_comments() {
        let doc = json!({
            "name": "x",
            "base_url": "{{ config.base_url }}",
            "streams": {"a": {"path": "/a", "primary_key": ["id", "ts"], "records": {"transforms": [{"when": "record.x", "add_fields": {"y": "1"}}]}}},
            "s": "yes",
            "n": 5,
        });
        let comments = vec![(
            vec!["streams".to_string(), "a".to_string(), "path".to_string()],
            "close enough".to_string(),
        )];
        let e = emit(&doc, &comments, &["head".into()], &[]);
        let expected = "# head\nname: x\nbase_url: \"{{ config.base_url }}\"\nstreams:\n  a:\n    # approximated: close enough\n    path: /a\n    primary_key: [id, ts]\n    records:\n      transforms:\n        - when: record.x\n          add_fields:\n            \"y\": \"1\"\ns: \"yes\"\n\"n\": 5\n";
        assert_eq!(e.text, expected);
        assert_eq!(e.streams, vec![("a".to_string(), 5, 13)]);
        let back: J = serde_saphyr::from_str(&e.text).unwrap();
        assert_eq!(back, doc);
    }
}
