//! What a JSONPath's text says before it runs: the member chain of a
//! plain path (`$.data` → `["data"]`), and whether a pagination path reads
//! inside the records (Stripe's `$.data[-1].id`).

/// `$`, `$.a.b`, `$.a.b[*]`, `$['a']` → the member names; None otherwise.
pub fn member_chain(path: &str) -> Option<Vec<String>> {
    let rest = path.trim().strip_prefix('$')?;
    let rest = rest.strip_suffix("[*]").unwrap_or(rest);
    let mut keys = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '@')
                || key.contains('*')
            {
                return None;
            }
            keys.push(key.to_string());
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix("['") {
            let end = r.find("']")?;
            keys.push(r[..end].to_string());
            s = &r[end + 2..];
        } else {
            return None;
        }
    }
    Some(keys)
}

/// One leading step of a JSONPath: a member name, or anything else
/// (index, slice, wildcard, filter, descendant).
#[derive(Debug, PartialEq)]
enum Step {
    Member(String),
    Other,
}

/// The leading steps of a JSONPath text, up to the first it cannot read.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let Some(mut s) = path.trim().strip_prefix('$') else {
        return vec![Step::Other];
    };
    while !s.is_empty() {
        if s.starts_with("..") {
            out.push(Step::Other);
            return out;
        }
        if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            out.push(if key == "*" || key.is_empty() {
                Step::Other
            } else {
                Step::Member(key.to_string())
            });
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix("['").or_else(|| s.strip_prefix("[\"")) {
            let quote = if s.starts_with("['") { "']" } else { "\"]" };
            let Some(end) = r.find(quote) else {
                out.push(Step::Other);
                return out;
            };
            out.push(Step::Member(r[..end].to_string()));
            s = &r[end + 2..];
        } else {
            out.push(Step::Other);
            return out;
        }
    }
    out
}

/// True when a JSONPath (a cursor, next-URL, has-more or total path) may
/// read the records at the member chain `records`, or the array holding
/// them: such a path needs the body before the records are taken out.
/// Conservative: anything but a member name that leaves the chain counts.
pub fn reads_into(records: &[String], path: &str) -> bool {
    let steps = steps(path);
    if records.is_empty() {
        // Records at `$`: an object body stays whole for the paginator; an
        // array body is reached by an index, a slice or a wildcard.
        return !matches!(steps.first(), Some(Step::Member(_)));
    }
    for (i, key) in records.iter().enumerate() {
        match steps.get(i) {
            Some(Step::Member(m)) if m == key => continue,
            Some(Step::Member(_)) => return false,
            Some(Step::Other) | None => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_into_the_records_are_recognised() {
        let data = vec!["data".to_string()];
        assert!(reads_into(&data, "$.data[-1].id"));
        assert!(reads_into(&data, "$['data'][-1]['id']"));
        assert!(reads_into(&data, "$..id"));
        assert!(reads_into(&data, "$[*].x"));
        assert!(reads_into(&data, "$"));
        assert!(!reads_into(&data, "$.has_more"));
        assert!(!reads_into(&data, "$['@odata.nextLink']"));
        assert!(!reads_into(&data, "$.meta.next_cursor"));
        assert!(reads_into(&[], "$[-1].id"));
        assert!(!reads_into(&[], "$.next"));
        let nested = vec!["a".to_string(), "items".to_string()];
        assert!(reads_into(&nested, "$.a"));
        assert!(!reads_into(&nested, "$.a.next"));
    }
}
