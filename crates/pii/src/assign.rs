//! `key: value` findings: passwords, and secrets known only by their label.
//!
//! Triggered by `:`, `=`, `：` (after an ASCII key) and by `密码` / `口令`.
//! The key is the identifier right before the operator (spaces and one quote
//! may sit between: `"api_key": "…"`), compared with `_ - .` dropped and
//! case ignored, so `DB_PASSWORD`, `db.password` and `dbPassword` are one
//! key. Only the value is reported, never the label.
//!
//! | key | kind | value |
//! | --- | --- | --- |
//! | ends with `password`, `passwd`, `pwd`, `passphrase`; or is `pass` | password | see [`plausible_password`] |
//! | `密码` / `口令` + `：`, `:`, `=`, `是` or `为` | password | ASCII only, so `密码是多少` is not one |
//! | ends with `apikey`, `secret`, `secretkey`, `token`, `accesskey`, `privatekey` | API key | see [`looks_random`] |
//! | `authorization` (an optional `Bearer`/`Basic`/`Token` scheme is skipped) | API key | see [`looks_random`] |
//!
//! `==` is a comparison and not looked at; `:=` and `=>` are assignments.

use crate::{Finding, Kind};

/// Longest key looked at; longer identifiers are not labels.
const MAX_KEY: usize = 64;
/// Longest password taken; longer values are not typed passwords.
const MAX_PASSWORD: usize = 128;

enum KeyClass {
    /// `password`, `pass`: a bare `pass` needs a value with a non-letter.
    Password {
        bare_pass: bool,
    },
    Secret,
    Authorization,
}

/// The cheap trigger, checked inline by the scan: `:`, `=`, or the first
/// bytes of `：`, `密码`, `口令` (so ordinary Chinese text passes at once).
#[inline]
pub(crate) fn may_start(bytes: &[u8], at: usize) -> bool {
    match bytes[at] {
        b':' | b'=' => true,
        // '：' is EF BC 9A; '密' is E5 AF 86 and '口' is E5 8F A3.
        0xEF => matches!(bytes.get(at + 1..at + 3), Some([0xBC, 0x9A])),
        0xE5 => matches!(bytes.get(at + 1..at + 3), Some([0xAF, 0x86] | [0x8F, 0xA3])),
        _ => false,
    }
}

/// The `key: value` finding whose operator (or Chinese label) is at byte
/// `at`, if there is one.
pub(crate) fn at(text: &str, at: usize) -> Option<Finding> {
    match text.as_bytes()[at] {
        b':' | b'=' => after_ascii_key(text, at, 1),
        // '：' (U+FF1A), as typed by a Chinese input method after "password".
        0xEF if text.get(at..).is_some_and(|r| r.starts_with('：')) => after_ascii_key(text, at, '：'.len_utf8()),
        // '密' and '口' both start with 0xE5 in UTF-8.
        0xE5 => after_chinese_key(text, at),
        _ => None,
    }
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// The value after `key <op>`, where the operator (`op_len` bytes) is at `op`.
fn after_ascii_key(text: &str, op: usize, op_len: usize) -> Option<Finding> {
    let bytes = text.as_bytes();
    let (key_start, mut key) = key_before(text, op)?;
    // "My password is: …": the label is the word before "is".
    if key.eq_ignore_ascii_case("is") {
        key = key_before(text, skip_blanks_back(text, key_start))?.1;
    }
    let mut pos = op + op_len;
    match (bytes[op], bytes.get(pos)) {
        (b'=', Some(b'=')) => return None,
        (b':', Some(b'=')) | (b'=', Some(b'>')) => pos += 1,
        _ => {}
    }
    match classify_key(key)? {
        KeyClass::Password { bare_pass } => password_value(text, pos, bare_pass),
        KeyClass::Secret => secret_value(text, skip_blanks(text, pos)),
        KeyClass::Authorization => {
            // 'Authorization': 'Bearer …' — the quote comes before the scheme.
            let mut pos = skip_blanks(text, pos);
            if matches!(bytes.get(pos), Some(b'"' | b'\'' | b'`')) {
                pos += 1;
            }
            secret_value(text, skip_auth_scheme(text, pos))
        }
    }
}

/// The identifier before the operator at `op`, and where it starts: up to a
/// few blanks and one quote may sit between (`"password" : …`).
fn key_before(text: &str, op: usize) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut end = op;
    while end > 0 && op - end < 4 && matches!(bytes[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end > 0 && matches!(bytes[end - 1], b'"' | b'\'' | b'`') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && end - start <= MAX_KEY && is_key_byte(bytes[start - 1]) {
        start -= 1;
    }
    let too_long = end - start > MAX_KEY;
    (start < end && !too_long).then(|| (start, &text[start..end]))
}

/// The key's letters and digits, lower-cased, from the end: `DB_Password` →
/// `d r o w s s a p b d`.
fn compact_rev(key: &str) -> impl Iterator<Item = u8> + '_ {
    key.bytes().rev().filter(|b| !matches!(b, b'_' | b'-' | b'.')).map(|b| b.to_ascii_lowercase())
}

fn compact_ends_with(key: &str, suffix: &str) -> bool {
    let mut compact = compact_rev(key);
    suffix.bytes().rev().all(|s| compact.next() == Some(s))
}

fn compact_is(key: &str, word: &str) -> bool {
    compact_ends_with(key, word) && compact_rev(key).count() == word.len()
}

fn classify_key(key: &str) -> Option<KeyClass> {
    if ["password", "passwd", "pwd", "passphrase"].iter().any(|s| compact_ends_with(key, s)) {
        return Some(KeyClass::Password { bare_pass: false });
    }
    if compact_is(key, "pass") {
        return Some(KeyClass::Password { bare_pass: true });
    }
    if compact_is(key, "authorization") || compact_is(key, "proxyauthorization") {
        return Some(KeyClass::Authorization);
    }
    let secret = ["apikey", "secret", "secretkey", "token", "accesskey", "privatekey"];
    secret.iter().any(|s| compact_ends_with(key, s)).then_some(KeyClass::Secret)
}

/// `密码` / `口令`, blanks, then `：`, `:`, `=`, `是` or `为` (optionally
/// followed by a colon), blanks, and an ASCII password.
fn after_chinese_key(text: &str, at: usize) -> Option<Finding> {
    let rest = text.get(at..)?;
    if !(rest.starts_with("密码") || rest.starts_with("口令")) {
        return None;
    }
    let mut pos = skip_blanks(text, at + "密码".len());
    let operator = ["：", ":", "=", "是：", "是:", "是", "为：", "为:", "为"];
    let op = operator.iter().find(|op| text[pos..].starts_with(**op))?;
    pos += op.len();
    password_value(text, pos, false)
}

/// Skips spaces, tabs and ideographic spaces (not line breaks).
fn skip_blanks(text: &str, mut pos: usize) -> usize {
    while let Some(c) = text.get(pos..).and_then(|r| r.chars().next()) {
        if !matches!(c, ' ' | '\t' | '\u{3000}') {
            break;
        }
        pos += c.len_utf8();
    }
    pos
}

/// Steps back over spaces and tabs before byte `pos`.
fn skip_blanks_back(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    while pos > 0 && matches!(bytes[pos - 1], b' ' | b'\t') {
        pos -= 1;
    }
    pos
}

/// Skips an HTTP auth scheme word and the blanks after it.
fn skip_auth_scheme(text: &str, pos: usize) -> usize {
    let rest = &text[pos..];
    let word_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    let is_scheme = ["bearer", "basic", "token", "bot"].iter().any(|s| rest[..word_len].eq_ignore_ascii_case(s));
    if is_scheme && rest[word_len..].starts_with(' ') {
        skip_blanks(text, pos + word_len)
    } else {
        pos
    }
}

fn is_secret_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'+' | b'=' | b'~')
}

/// A secret value at `pos` (after an optional quote), if it looks random.
fn secret_value(text: &str, pos: usize) -> Option<Finding> {
    let bytes = text.as_bytes();
    let start = if matches!(bytes.get(pos), Some(b'"' | b'\'' | b'`')) { pos + 1 } else { pos };
    let mut end = start;
    while end < bytes.len() && is_secret_byte(bytes[end]) {
        end += 1;
    }
    // A full stop ends the sentence, not the secret.
    while end > start && bytes[end - 1] == b'.' {
        end -= 1;
    }
    looks_random(&bytes[start..end]).then_some(Finding { kind: Kind::ApiKey, start, end })
}

/// Whether a value looks like a generated secret rather than a word, a
/// variable or a placeholder: at least 16 characters, letters and digits,
/// mixed case or at least one digit in five (hex), and at least 8 distinct
/// characters. `os.environ.get`, `YOUR_API_KEY_HERE`, `text-embedding-3-small`
/// and `xxxxxxxxxxxxxxxx1` fail; `5f4dcc3b5aa765d61d8327deb882cf99` and
/// `Zm9vYmFyYmF6cXV4MTIz` pass.
pub(crate) fn looks_random(value: &[u8]) -> bool {
    if value.len() < 16 {
        return false;
    }
    let upper = value.iter().filter(|b| b.is_ascii_uppercase()).count();
    let lower = value.iter().filter(|b| b.is_ascii_lowercase()).count();
    let digits = value.iter().filter(|b| b.is_ascii_digit()).count();
    let mut seen = [false; 128];
    for &b in value {
        seen[usize::from(b & 0x7f)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    let letters = upper + lower;
    letters > 0 && digits > 0 && ((upper > 0 && lower > 0) || digits * 5 >= value.len()) && distinct >= 8
}

/// A password value at `pos`: quoted (`"…"`, `'…'`, no blanks inside) or a
/// run of printable ASCII up to a blank, a quote, the end of the line or the
/// next `&name=` of a query string, without trailing `. , ; : ) ] } >`.
fn password_value(text: &str, pos: usize, bare_pass: bool) -> Option<Finding> {
    let bytes = text.as_bytes();
    let pos = skip_blanks(text, pos);
    let (start, end) = match bytes.get(pos) {
        Some(&q @ (b'"' | b'\'' | b'`')) => {
            let start = pos + 1;
            let len = bytes[start..].iter().take(MAX_PASSWORD + 1).position(|&b| b == q || b == b'\n')?;
            if bytes[start + len] != q {
                return None;
            }
            (start, start + len)
        }
        _ => {
            let mut end = pos;
            while end < bytes.len()
                && bytes[end].is_ascii_graphic()
                && !matches!(bytes[end], b'"' | b'\'' | b'`')
                && !starts_query_parameter(&bytes[end..])
            {
                end += 1;
            }
            while end > pos && matches!(bytes[end - 1], b'.' | b',' | b';' | b':' | b')' | b']' | b'}' | b'>') {
                end -= 1;
            }
            (pos, end)
        }
    };
    let value = &text[start..end];
    plausible_password(value, bare_pass).then_some(Finding { kind: Kind::Password, start, end })
}

/// Whether `rest` is `&name=…`: the next parameter of a query string, which
/// ends a password (`password=hunter22&user=bob`) where a lone `&` does not
/// (`Tr0ub4dor&3`).
fn starts_query_parameter(rest: &[u8]) -> bool {
    let Some(after) = rest.strip_prefix(b"&") else { return false };
    let name_len = after.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
    name_len > 0 && after.get(name_len) == Some(&b'=')
}

/// Words that follow `password:` in prose and code but are not passwords.
const NOT_PASSWORDS: &[&str] = &[
    "string",
    "bool",
    "boolean",
    "none",
    "null",
    "undefined",
    "true",
    "false",
    "required",
    "optional",
    "empty",
    "hidden",
    "masked",
    "redacted",
    "secret",
    "text",
    "varchar",
    "char",
    "bytes",
    "self",
    "this",
    "value",
    "must",
    "should",
    "will",
    "cannot",
    "your",
    "same",
    "invalid",
    "incorrect",
    "wrong",
    "changed",
    "updated",
    "reset",
    "expired",
    "expires",
    "unset",
    "default",
    "field",
    "input",
    "type",
    "length",
    "format",
    "policy",
    "rules",
    "enter",
    "please",
    "confirm",
    "sent",
    "omitted",
    "example",
    "placeholder",
    "strong",
    "weak",
    "protected",
    "encrypted",
    "hashed",
    "stored",
    "unknown",
    "forgotten",
    "below",
    "above",
];

/// Whether a value after a password key is one, rather than code or prose.
/// Rejected:
/// - shorter than 4 or longer than 128 characters, or containing blanks;
/// - starting like a variable, template, path or mask: `$ % { < [ ( / \ ~ *`,
///   or a Windows drive (`C:\`);
/// - containing `(` or `[` (a call or an index: `getpass()`, `form['pw']`);
/// - one non-digit repeated (`********`, `xxxxxx`; `888888` is kept);
/// - containing `password` or `passwd` (`your_password`, `DB_PASSWORD`);
/// - an identifier path or snake_case name (`self.pw`, `db_pass`);
/// - a word from [`NOT_PASSWORDS`] (`string`, `required`, `none` …);
/// - a number range (`8-16`);
/// - after a bare `pass:`, letters only (`pass: Gate` is prose).
fn plausible_password(value: &str, bare_pass: bool) -> bool {
    let v = value.as_bytes();
    let Some(&first) = v.first() else { return false };
    if v.len() < 4 || v.len() > MAX_PASSWORD || v.iter().any(|b| b.is_ascii_whitespace()) {
        return false;
    }
    if matches!(first, b'$' | b'%' | b'{' | b'<' | b'[' | b'(' | b'/' | b'\\' | b'~' | b'*') {
        return false;
    }
    if v.len() >= 3 && first.is_ascii_alphabetic() && v[1] == b':' && v[2] == b'\\' {
        return false;
    }
    // "********" and "xxxxxx" are masks; "888888" is a (bad) real password.
    let repeated_mask = !first.is_ascii_digit() && v.iter().all(|&b| b == first);
    if v.contains(&b'(') || v.contains(&b'[') || repeated_mask {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    if lower.contains("password") || lower.contains("passwd") || NOT_PASSWORDS.contains(&lower.as_str()) {
        return false;
    }
    let identifier_path = v.iter().all(|&b| b.is_ascii_alphabetic() || b == b'_' || b == b'.');
    if identifier_path && (v.contains(&b'.') || v.contains(&b'_')) {
        return false;
    }
    let number_range = v.iter().all(|&b| b.is_ascii_digit() || b == b'-') && v.contains(&b'-');
    if number_range {
        return false;
    }
    !(bare_pass && v.iter().all(u8::is_ascii_alphabetic))
}

#[cfg(test)]
mod tests;
