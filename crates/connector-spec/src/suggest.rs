//! Did-you-mean suggestions for misspelled keys, names and types.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let (w, cl) = (word.to_lowercase(), c.to_lowercase());
        // Jaro-Winkler for typos in long words; one edit (incl. a swap) for short ones.
        let score =
            strsim::jaro_winkler(&w, &cl).max(if strsim::damerau_levenshtein(&w, &cl) <= 1 {
                0.95
            } else {
                0.0
            });
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` as a hint, if there is a likely candidate.
pub(crate) fn hint<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("pagnation", ["pagination", "path"]),
            Some("pagination")
        );
        assert_eq!(
            did_you_mean("recrods", ["records", "retry"]),
            Some("records")
        );
        assert_eq!(did_you_mean("zzz", ["pagination", "path"]), None);
    }
}
