//! Phone numbers: China mobile and landline, US/Canada (NANP).
//!
//! Each rule looks at one window of digit groups (see `numbers`) and says
//! whether the whole window, with its `+` / `(` prefix, is a phone number.
//!
//! | form | matches | not |
//! | --- | --- | --- |
//! | China mobile | `13812345678`, `138 1234 5678`, `138-1234-5678`, `+86 138 1234 5678`, `+8613812345678`, `0086 13812345678`, `86-13812345678`, `(+86) 13812345678` | `12812345678` (second digit not 3–9), `8613812345678` (bare `86` glued on), `138-1234 5678` (mixed separators) |
//! | China landline | `010-62345678`, `021-87654321`, `0571-8888666`, `0755-86013388` | `010-6234567` (Beijing numbers have 8 digits), `010-12345678`, `0571-0888666` (local numbers start with 2–9), `010 62345678` (without `-`) |
//! | NANP | `(415) 555-2671`, `(415)555-2671`, `415-555-2671`, `415.555.2671`, `415 555 2671`, `+1 415 555 2671`, `+1 (415) 555-2671`, `1-800-275-2273`, `+14155552671` | `4155552671` (ten bare digits: too many order numbers look like that), `123-555-2671` (area code starts 0/1), `415-155-2671` (exchange starts 0/1), `911-555-2671` (N11 area), `(555) 555-5555` (no such area), `415-555-0123` (555-01xx is for fiction), `415-555.2671` (mixed) |

use crate::numbers::Window;

pub(crate) fn check(w: &Window) -> Option<(usize, usize)> {
    cn_mobile(w).or_else(|| cn_landline(w)).or_else(|| nanp(w))
}

/// `1[3-9]` + 9 digits.
fn is_cn_mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1]) && d.iter().all(u8::is_ascii_digit)
}

/// The mobile number itself: `[11]` or `[3, 4, 4]` with one kind of separator.
fn cn_mobile_body(w: &Window) -> bool {
    let shape = w.shape_is(&[11]) || (w.shape_is(&[3, 4, 4]) && w.uniform_separator(&[" ", "-"]));
    shape && is_cn_mobile(w.all_digits().get())
}

fn cn_mobile(w: &Window) -> Option<(usize, usize)> {
    let plus = w.char_before() == Some('+');
    let plus_at = w.start().saturating_sub(1);

    // Country code apart: "+86 138…", "(+86) 138…", "0086 138…", "86-138…".
    if w.len() >= 2 {
        let code = w.digits(0);
        let sep = w.sep(0);
        let code_ok = match code {
            "86" if plus => matches!(sep, " " | "-" | ")" | ") "),
            "86" => matches!(sep, " " | "-"),
            "0086" => !plus && matches!(sep, " " | "-"),
            _ => false,
        };
        if code_ok && cn_mobile_body(&w.tail(1)) {
            let start = if !plus {
                w.start()
            } else if sep.starts_with(')') {
                // "(+86) …": the parenthesis belongs to the number.
                let open = plus_at.checked_sub(1)?;
                (w.text.as_bytes()[open] == b'(').then_some(open)?
            } else {
                plus_at
            };
            return Some((start, w.end()));
        }
    }

    // Country code glued on: "+8613812345678", "008613812345678".
    if w.len() == 1 {
        let d = w.digits(0);
        let body = if plus { d.strip_prefix("86") } else { d.strip_prefix("0086") };
        if body.is_some_and(|b| is_cn_mobile(b.as_bytes())) {
            return Some((if plus { plus_at } else { w.start() }, w.end()));
        }
    }

    // No country code. After a '+' the digits are some other country's.
    if !plus && cn_mobile_body(w) {
        return Some((w.start(), w.end()));
    }
    None
}

/// `0` + area code, `-`, local number. Area codes: `010`, `02x` (followed by
/// eight digits), or `0[3-9]xx` (followed by seven or eight). Local numbers
/// start with 2–9.
fn cn_landline(w: &Window) -> Option<(usize, usize)> {
    if w.len() != 2 || w.sep(0) != "-" || w.char_before() == Some('+') {
        return None;
    }
    let area = w.digits(0).as_bytes();
    let local = w.digits(1).as_bytes();
    let lengths_ok = match area {
        [b'0', b'1', b'0'] | [b'0', b'2', _] => local.len() == 8,
        [b'0', b'3'..=b'9', _, _] => local.len() == 7 || local.len() == 8,
        _ => false,
    };
    let local_ok = local.first().is_some_and(|d| (b'2'..=b'9').contains(d));
    (lengths_ok && local_ok).then(|| (w.start(), w.end()))
}

/// NANP: area code and exchange are `[2-9]xx`, not `N11`; an area code's
/// middle digit is not 9 (reserved), and `555` is no area code (never
/// assigned; `(555) 555-5555` is the stock fake number).
fn nanp_digits_ok(area: &[u8], exchange: &[u8]) -> bool {
    let starts_ok = |d: &[u8]| d.len() == 3 && (b'2'..=b'9').contains(&d[0]) && !(d[1] == b'1' && d[2] == b'1');
    starts_ok(area) && starts_ok(exchange) && area[1] != b'9' && area != b"555"
}

/// `555-0100` to `555-0199` are reserved for fiction and examples.
fn is_fictional(exchange: &[u8], line: &[u8]) -> bool {
    exchange == b"555" && line.starts_with(b"01")
}

fn nanp(w: &Window) -> Option<(usize, usize)> {
    let plus = w.char_before() == Some('+');
    let plus_at = w.start().saturating_sub(1);

    // E.164 with the country code glued on: "+14155552671".
    if w.len() == 1 {
        let d = w.digits(0).as_bytes();
        let ok = plus
            && d.len() == 11
            && d[0] == b'1'
            && nanp_digits_ok(&d[1..4], &d[4..7])
            && !is_fictional(&d[4..7], &d[7..]);
        return ok.then_some((plus_at, w.end()));
    }

    // Country code apart: "+1 415…", "+1 (415)…", "1-800-…", "1 (800)…".
    let (body, start) = if w.digits(0) == "1" {
        let sep = w.sep(0);
        let sep_ok = if plus { matches!(sep, " " | "-" | "." | " (" | "(") } else { matches!(sep, "-" | " (") };
        if !sep_ok {
            return None;
        }
        (w.tail(1), if plus { plus_at } else { w.start() })
    } else if plus {
        return None;
    } else {
        (w.tail(0), w.start())
    };

    // "+1 4155552671" (the window has two groups, so the code came apart)
    if body.len() == 1 {
        let d = body.digits(0).as_bytes();
        let ok = plus && d.len() == 10 && nanp_digits_ok(&d[0..3], &d[3..6]) && !is_fictional(&d[3..6], &d[6..]);
        return ok.then_some((start, w.end()));
    }

    if !body.shape_is(&[3, 3, 4]) {
        return None;
    }
    let (area, exchange, line) = (body.digits(0).as_bytes(), body.digits(1).as_bytes(), body.digits(2).as_bytes());
    if !nanp_digits_ok(area, exchange) || is_fictional(exchange, line) {
        return None;
    }
    let paren = body.char_before() == Some('(') && body.sep(0).starts_with(')');
    let separators_ok = if paren {
        matches!(body.sep(0), ")" | ") " | ")-") && matches!(body.sep(1), "-" | " " | ".")
    } else {
        body.uniform_separator(&["-", ".", " "])
    };
    // "+1 (415" opens a parenthesis that the area code must close.
    let code_opens_paren = w.len() == 4 && w.sep(0).ends_with('(');
    if !separators_ok || (code_opens_paren && !paren) {
        return None;
    }
    // "(415) 555-2671": the parenthesis belongs to the number, unless a
    // country code already starts it ("+1 (415) 555-2671").
    let start = if paren && start == body.start() { body.start() - 1 } else { start };
    Some((start, w.end()))
}

#[cfg(test)]
mod tests {
    use crate::Kind;

    fn phones(text: &str) -> Vec<&str> {
        crate::detect::found(text, Kind::Phone)
    }

    #[test]
    fn china_mobile() {
        for number in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+86 138 1234 5678",
            "+86-138-1234-5678",
            "+8613812345678",
            "0086 13812345678",
            "008613812345678",
            "86-13812345678",
            "(+86) 13812345678",
            "+86 19912345678",
        ] {
            assert_eq!(phones(&format!("电话{number}，谢谢")), [number], "{number}");
        }
        for text in
            ["12812345678", "8613812345678", "138-1234 5678", "1381234567", "138123456789", "订单号138123456781"]
        {
            assert_eq!(phones(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn china_landline() {
        for number in ["010-62345678", "021-87654321", "0571-8888666", "0755-86013388"] {
            assert_eq!(phones(&format!("座机 {number}。")), [number], "{number}");
        }
        for text in ["010-6234567", "0571-0888666", "010-12345678", "010 62345678", "0571-888866667", "2024-12345678"] {
            assert_eq!(phones(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn nanp() {
        for number in [
            "(415) 555-2671",
            "(415)555-2671",
            "415-555-2671",
            "415.555.2671",
            "415 555 2671",
            "+1 415 555 2671",
            "+1-415-555-2671",
            "+1 (415) 555-2671",
            "1-800-275-2273",
            "+14155552671",
            "+1 4155552671",
        ] {
            assert_eq!(phones(&format!("Call {number} today.")), [number], "{number}");
        }
        for text in [
            "4155552671",
            "123-555-2671",
            "415-155-2671",
            "911-555-2671",
            "415-911-2671",
            "495-555-2671",
            "415-555.2671",
            "v415.555.2671",
            "415-555-2671-99",
            "$415.555.2671",
            "(555) 555-5555",
            "212-555-0142",
            "+1 212 555 0199",
        ] {
            assert_eq!(phones(text), Vec::<&str>::new(), "{text}");
        }
        // An unclosed parenthesis after the country code: the number is still
        // found, without the "+1 (".
        assert_eq!(phones("+1 (415-555-2671"), ["415-555-2671"]);
    }
}
