//! Identifiers the gateway makes up: unique, not secret, and sorted by
//! time (like UUIDv7: milliseconds first, then a per-process counter and
//! randomness) so rows keyed by
//! them append to the end of an index instead of landing on random pages.

/// `prefix_<12 hex ms><20 hex random>`, e.g. `req_018c1f…`. Written by
/// hand: `format!` with hex widths cost ~6k instructions per id.
pub fn time_ordered(prefix: &str) -> String {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut out = String::with_capacity(prefix.len() + 33);
    out.push_str(prefix);
    out.push('_');
    push_hex(&mut out, ms, 12);
    push_hex(&mut out, next_in_process(), 16);
    push_hex(&mut out, u64::from(fastrand::u16(..)), 4);
    out
}

/// The smallest id [`time_ordered`] can make with `prefix` at unix ms
/// `ms`: ids made at or after `ms` sort at or above it, ids made before it
/// sort below. A store finds the records of a time range through their
/// primary key with it (the usage table has no index on its time column,
/// docs/adr/0005).
pub fn time_ordered_floor(prefix: &str, ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    let mut out = String::with_capacity(prefix.len() + 13);
    out.push_str(prefix);
    out.push('_');
    push_hex(&mut out, ms, 12);
    out
}

/// A counter that starts at a random point per process: ids made in the
/// same millisecond by one process sort in the order they were made (audit
/// entries list newest first), and two processes still do not collide.
fn next_in_process() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: std::sync::LazyLock<AtomicU64> = std::sync::LazyLock::new(|| AtomicU64::new(fastrand::u64(..) >> 1));
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The low `digits` hex digits of `value`, zero-padded.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(char::from(HEX[((value >> (i * 4)) & 0xf) as usize]));
    }
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

    #[test]
    fn floors_bound_the_ids_of_their_millisecond() {
        let id = time_ordered("use");
        let ms = i64::from_str_radix(&id[4..16], 16).unwrap_or(0);
        assert!(time_ordered_floor("use", ms) <= id && id < time_ordered_floor("use", ms + 1));
        assert_eq!(time_ordered_floor("use", -5), "use_000000000000");
        assert_eq!(time_ordered_floor("use", i64::MAX), "use_ffffffffffff");
    }

    #[test]
    fn hex_is_zero_padded() {
        let mut s = String::new();
        push_hex(&mut s, 0xab, 4);
        assert_eq!(s, "00ab");
    }
}
