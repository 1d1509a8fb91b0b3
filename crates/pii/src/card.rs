//! Payment card numbers (PANs).
//!
//! 13–19 digits, written as one run or grouped by single spaces or dashes
//! (`4-4-4-4`, `4-4-4-4-3`, `4-4-4-4-2`, Amex `4-6-5`, Diners `4-6-4`), with
//! a Luhn check digit and an issuer prefix from this table, at a length the
//! issuer uses:
//!
//! | issuer | prefix | lengths |
//! | --- | --- | --- |
//! | Visa | `4` | 13, 16, 19 |
//! | Mastercard | `51`–`55`, `2221`–`2720` | 16 |
//! | American Express | `34`, `37` | 15 |
//! | Discover | `6011`, `644`–`649`, `65` | 16–19 |
//! | UnionPay | `62` | 16–19 |
//! | JCB | `3528`–`3589` | 16–19 |
//! | Diners Club | `300`–`305`, `36`, `38` | 14–19 |
//!
//! A random digit run of a card length passes about once in 10 × (issuer
//! share) times, so numbers that merely look long are rarely taken: a
//! 16-digit order number starting with 4 still has a 9-in-10 chance to fail
//! Luhn. Not matched: other groupings (`4111 11111111 1111`), mixed
//! separators, numbers glued to letters or longer digit runs.

use crate::numbers::Window;

pub(crate) fn check(w: &Window) -> Option<(usize, usize)> {
    let grouped = [&[4, 4, 4, 4][..], &[4, 4, 4, 4, 3], &[4, 4, 4, 4, 2], &[4, 6, 5], &[4, 6, 4]];
    let shape_ok = w.len() == 1 || (grouped.iter().any(|s| w.shape_is(s)) && w.uniform_separator(&[" ", "-"]));
    if !shape_ok {
        return None;
    }
    let digits = w.all_digits();
    let digits = digits.get();
    (issuer_accepts(digits) && luhn(digits)).then(|| (w.start(), w.end()))
}

/// Whether a known issuer uses this prefix at this length.
fn issuer_accepts(d: &[u8]) -> bool {
    let len = d.len();
    if !(13..=19).contains(&len) {
        return false;
    }
    let prefix = |n: usize| d[..n].iter().fold(0u32, |acc, x| acc * 10 + u32::from(x - b'0'));
    let lengths: &[usize] = match (prefix(1), prefix(2), prefix(3), prefix(4)) {
        (4, ..) => &[13, 16, 19],
        (_, 51..=55, ..) | (.., 2221..=2720) => &[16],
        (_, 34 | 37, ..) => &[15],
        (.., 6011) | (_, _, 644..=649, _) | (_, 65, ..) => &[16, 17, 18, 19],
        (_, 62, ..) => &[16, 17, 18, 19],
        (.., 3528..=3589) => &[16, 17, 18, 19],
        (_, 36 | 38, ..) | (_, _, 300..=305, _) => &[14, 15, 16, 17, 18, 19],
        _ => &[],
    };
    lengths.contains(&len)
}

/// The Luhn (mod 10) check over all digits, the last one being the check digit.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| {
            let v = u32::from(x - b'0');
            if i % 2 == 1 {
                let doubled = v * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                v
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use crate::Kind;

    fn cards(text: &str) -> Vec<&str> {
        crate::detect::found(text, Kind::CreditCard)
    }

    #[test]
    fn test_numbers_of_each_issuer() {
        for number in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4222222222222",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "6011 0009 9013 9424",
            "6200000000000005",
            "3530111333300000",
            "30569309025904",
            "3056 930902 5904",
            "36227206271667",
            "6212345678901265",
        ] {
            assert_eq!(cards(&format!("card: {number}.")), [number], "{number}");
        }
    }

    #[test]
    fn lookalikes() {
        for text in [
            "4111111111111112",
            "4111 1111 1111 111",
            "4111 11111111 1111",
            "4111 1111-1111 1111",
            "1111111111111117",
            "5611111111111114",
            "SKU4111111111111111",
            "41111111111111110000",
            "#4111111111111111",
        ] {
            assert_eq!(cards(text), Vec::<&str>::new(), "{text}");
        }
    }
}
