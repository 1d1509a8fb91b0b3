//! "Did you mean …?" for names that are almost right.

/// The candidate closest to `word` if it is within a typo of it (edit
/// distance 2, or 1 for short words): `provider` → `providers`,
/// `opnai` → `openai`.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(closest("provider", &["server", "providers", "routes"]), Some("providers"));
        assert_eq!(closest("opnai", &["openai", "local"]), Some("openai"));
        assert_eq!(closest("polices", &["server", "providers", "routes"]), None);
        assert_eq!(closest("d9", &["d1", "x"]), Some("d1"));
        assert_eq!(closest("ab", &["xy"]), None);
    }
}
