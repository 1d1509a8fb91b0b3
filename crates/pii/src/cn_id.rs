//! Chinese resident identity card numbers (GB 11643-1999).
//!
//! 18 characters written as one run: six digits of region (the first two a
//! real province code), the birth date `YYYYMMDD` (a real calendar date,
//! year 1900 to this year), three digits of sequence, and a check character
//! (`0-9` or `X`/`x`) by ISO 7064 MOD 11-2. A random 18-digit number passes
//! all of this about once in 4,000 times; order numbers and timestamps of
//! that length almost never do.
//!
//! Not matched: 15-digit first-generation numbers (retired in 2013), numbers
//! written with spaces, and any 18-digit run that fails a check.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::boundary::char_after;
use crate::numbers::Window;

/// ISO 7064 MOD 11-2 weights for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";

pub(crate) fn check(w: &Window) -> Option<(usize, usize)> {
    if w.len() != 1 {
        return None;
    }
    let digits = w.digits(0).as_bytes();
    let (id, end) = match digits.len() {
        18 => (digits_to_id(digits, None)?, w.end()),
        // The 'X' is a letter, so it is not part of the digit group.
        17 => match char_after(w.text, w.end()) {
            Some(c @ ('X' | 'x')) => (digits_to_id(digits, Some(c as u8))?, w.end() + 1),
            _ => return None,
        },
        _ => return None,
    };
    is_valid(&id).then_some((w.start(), end))
}

fn digits_to_id(digits: &[u8], last: Option<u8>) -> Option<[u8; 18]> {
    let mut id = [0u8; 18];
    let n = digits.len();
    id.get_mut(..n)?.copy_from_slice(digits);
    if let Some(c) = last {
        id[17] = c.to_ascii_uppercase();
    }
    Some(id)
}

/// Whether the 18 characters are a valid ID number.
pub(crate) fn is_valid(id: &[u8; 18]) -> bool {
    if !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let value = |range: std::ops::Range<usize>| id[range].iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    let province = value(0..2);
    let (year, month, day) = (value(6..10), value(10..12), value(12..14));
    is_province(province) && is_birth_date(year, month, day) && id[17] == check_char(id)
}

/// Province-level codes in use (GB/T 2260), plus 71 Taiwan, 81 Hong Kong,
/// 82 Macau and 83 (IDs for Taiwan residents).
fn is_province(code: u32) -> bool {
    matches!(code, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83)
}

fn is_birth_date(year: u32, month: u32, day: u32) -> bool {
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=current_year()).contains(&year) && (1..=days_in_month).contains(&day)
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// This year, near enough (it may be a day early or late at New Year): only
/// an 18-digit candidate that already passed the province check gets here.
fn current_year() -> u32 {
    const FALLBACK: u32 = 2100;
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        // 146,097 days in 400 Gregorian years.
        Ok(since) => u32::try_from(1970 + since.as_secs() / 86_400 * 400 / 146_097).unwrap_or(FALLBACK),
        Err(_) => FALLBACK,
    }
}

fn check_char(id: &[u8; 18]) -> u8 {
    let sum: u32 = id[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK[(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use crate::Kind;

    fn ids(text: &str) -> Vec<&str> {
        crate::detect::found(text, Kind::CnId)
    }

    #[test]
    fn valid_numbers() {
        assert_eq!(ids("身份证号11010519491231002X，"), ["11010519491231002X"]);
        assert_eq!(ids("ID 110105194912310021"), Vec::<&str>::new());
        assert_eq!(ids("id: 11010519491231002x"), ["11010519491231002x"]);
        assert_eq!(ids("440524188001010014"), Vec::<&str>::new());
        assert_eq!(ids("身份证：320311199001019998"), Vec::<&str>::new());
    }

    #[test]
    fn check_digit_and_date() {
        // 11010519900307xxxx with each check character: only one is right.
        let right: Vec<String> = (0..10)
            .map(|d| format!("1101051990030712{d}"))
            .flat_map(|p| ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "X"].map(|c| format!("{p}{c}")))
            .filter(|id| ids(id).len() == 1)
            .collect();
        assert_eq!(right.len(), 10, "one check character per 17-digit prefix: {right:?}");
        assert!(ids("110105199002300010").is_empty(), "30 February");
        assert!(ids("990105199003070015").is_empty(), "no province 99");
    }

    #[test]
    fn not_inside_longer_runs() {
        let id = "11010519491231002X";
        assert!(ids(&format!("9{id}")).is_empty());
        assert!(ids(&format!("{id}9")).is_empty());
        assert!(ids(&format!("A{id}")).is_empty());
    }
}
