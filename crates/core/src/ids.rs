//! Identifiers the gateway makes up: unique, not secret, and sorted by
//! time (like UUIDv7: milliseconds first, then randomness) so rows keyed by
//! them append to the end of an index instead of landing on random pages.

/// `prefix_<12 hex ms><20 hex random>`, e.g. `req_018c1f…`.
pub fn time_ordered(prefix: &str) -> String {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    format!("{prefix}_{ms:012x}{:016x}{:04x}", fastrand::u64(..), fastrand::u16(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_and_sorted_by_time() {
        let (a, b) = (time_ordered("req"), time_ordered("req"));
        assert!(a.starts_with("req_") && a.len() == 36 && a != b);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(time_ordered("req") > a);
    }
}
