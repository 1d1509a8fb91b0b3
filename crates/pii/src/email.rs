//! Email addresses: `local@domain.tld`.
//!
//! Triggered by `@` only.
//!
//! | part | rule |
//! | --- | --- |
//! | local part | 1–64 of `A-Z a-z 0-9 . _ % + - '`, starting with a letter or digit (leading punctuation is left outside), not ending with `.`, no `..` |
//! | domain | two or more labels of `A-Z a-z 0-9 -` (not starting or ending with `-`), at most 253 bytes |
//! | top-level label | 2–24 ASCII letters (or an `xn--` IDN label), not a file extension such as `png` or `js` |
//!
//! Deliberately not matched: `user@localhost` (no dot: a host, not a
//! mailbox), `https://user@host.com` and `https://user:pw@host` (URL
//! user-info), `git@github.com:org/repo.git` (an scp-style remote: the domain
//! is followed by `:` and a path), `user@host.com/path`, `lodash@4.17.21`
//! (numeric "TLD"), `icon@2x.png` (retina image names).

use crate::boundary::{char_after, is_word};
use crate::{Finding, Kind};

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;

/// File extensions that look like top-level domains in `name@2x.png`-style
/// file names. None of them is a delegated TLD.
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "js", "mjs", "ts", "tsx", "jsx", "css",
    "scss", "json", "yaml", "yml", "toml", "txt", "html", "htm", "xml", "csv", "pdf", "lock", "log", "exe", "dll",
    "tar", "gz", "tgz", "bz2", "xz", "wasm", "mp3", "mp4", "wav", "avi", "mkv", "jar", "whl", "deb", "rpm",
];

/// The address around the `@` at byte `at`, if it is one. Its local part
/// starts no earlier than `not_before` (the end of the previous address), so
/// `x@a.com+y@b.com` is two addresses, not overlapping ones.
pub(crate) fn at(text: &str, at: usize, not_before: usize) -> Option<Finding> {
    let (start, end) = email_around(text, at, not_before)?;
    Some(Finding { kind: Kind::Email, start, end })
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// The address whose `@` is at byte `at`, if it is one.
fn email_around(text: &str, at: usize, not_before: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();

    // Local part: back from '@' over local characters, then forward again
    // to the first letter or digit.
    let mut start = at;
    while start > not_before && is_local_byte(bytes[start - 1]) {
        start -= 1;
    }
    while start < at && !bytes[start].is_ascii_alphanumeric() {
        start += 1;
    }
    let local = &text[start..at];
    if local.is_empty() || local.len() > MAX_LOCAL || local.ends_with('.') || local.contains("..") {
        return None;
    }
    if is_url_user_info(text, start) {
        return None;
    }

    let end = domain_end(bytes, at + 1)?;
    if !domain_ends_cleanly(text, end) {
        return None;
    }
    Some((start, end))
}

/// The end of a valid domain starting at byte `from`.
fn domain_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut labels = 0;
    let mut pos = from;
    let mut first_label = (from, from);
    let mut last_label;
    loop {
        let label_start = pos;
        while pos < bytes.len() && is_label_byte(bytes[pos]) {
            pos += 1;
        }
        let label = &bytes[label_start..pos];
        if label.is_empty() || label.starts_with(b"-") || label.ends_with(b"-") {
            return None;
        }
        labels += 1;
        if labels == 1 {
            first_label = (label_start, pos);
        }
        last_label = (label_start, pos);
        // Another label follows only if a label character comes after the
        // dot; "alice@example.com." ends the sentence, not the domain.
        let dot_then_label = pos + 1 < bytes.len() && bytes[pos] == b'.' && is_label_byte(bytes[pos + 1]);
        if !dot_then_label {
            break;
        }
        pos += 1;
    }
    if labels < 2 || pos - from > MAX_DOMAIN {
        return None;
    }
    let tld = &bytes[last_label.0..last_label.1];
    let tld_ok = (tld.len() >= 2 && tld.len() <= 24 && tld.iter().all(u8::is_ascii_alphabetic))
        || (tld.starts_with(b"xn--") && tld.len() > 4);
    if !tld_ok || FILE_EXTENSIONS.iter().any(|ext| tld.eq_ignore_ascii_case(ext.as_bytes())) {
        return None;
    }
    // "icon@2x.png", "logo@3x.webp": a density suffix, not a mailbox.
    let first = &bytes[first_label.0..first_label.1];
    if first.len() >= 2 && first.ends_with(b"x") && first[..first.len() - 1].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(pos)
}

/// What may follow the domain: not a word character or another `@`, not
/// `:` + text (`git@github.com:org/repo`), not `/` + text (a URL path).
fn domain_ends_cleanly(text: &str, end: usize) -> bool {
    let Some(c) = char_after(text, end) else { return true };
    if is_word(c) || c == '@' {
        return false;
    }
    if c == ':' || c == '/' {
        let continues = char_after(text, end + 1).is_some_and(|n| !n.is_whitespace());
        return !continues;
    }
    true
}

/// Whether the local part starting at byte `start` is the user-info of a URL
/// (`https://user@host`, `ftp://user:pw@host`): a `://` earlier in the same
/// token with no `/ ? # & =` between it and the local part. An address in a
/// query string (`https://x.com/?to=alice@example.com`) is still an email.
fn is_url_user_info(text: &str, start: usize) -> bool {
    // A bounded look-back keeps this linear on long runs without spaces.
    let mut from = start.saturating_sub(256);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let before = &text[from..start];
    let token = match before.rfind(char::is_whitespace) {
        Some(i) => &before[i..],
        None => before,
    };
    match token.rfind("://") {
        Some(i) => !token[i + 3..].contains(['/', '?', '#', '&', '=']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        crate::detect::found(text, Kind::Email)
    }

    #[test]
    fn plain_addresses() {
        assert_eq!(emails("mail alice@example.com now"), ["alice@example.com"]);
        assert_eq!(emails("邮箱：zhang.san+work@mail.example.com.cn。"), ["zhang.san+work@mail.example.com.cn"]);
        assert_eq!(emails("<bob_o'neil@x.org>"), ["bob_o'neil@x.org"]);
        assert_eq!(emails("to = 'grace@example.com'"), ["grace@example.com"]);
        assert_eq!(emails("mailto:carol@example.io"), ["carol@example.io"]);
        assert_eq!(emails("13812345678@163.com"), ["13812345678@163.com"]);
        assert_eq!(emails("end with dot: dave@example.com."), ["dave@example.com"]);
        assert_eq!(emails("...erin@example.com"), ["erin@example.com"]);
        assert_eq!(emails("https://x.com/invite?to=frank@example.com"), ["frank@example.com"]);
        assert_eq!(emails("x@a.com+y@b.com"), ["x@a.com", "y@b.com"]);
    }

    #[test]
    fn lookalikes_are_not_addresses() {
        assert!(emails("user@localhost").is_empty());
        assert!(emails("git@github.com:org/repo.git").is_empty());
        assert!(emails("https://alice@example.com/repo").is_empty());
        assert!(emails("https://user:secret@db.example.com").is_empty());
        assert!(emails("npm i lodash@4.17.21").is_empty());
        assert!(emails("icon@2x.png logo@3x.webp").is_empty());
        assert!(emails("@app.route('/') and @alice").is_empty());
        assert!(emails("a@b.c").is_empty());
        assert!(emails("x@-bad.com y@bad-.com").is_empty());
        assert!(emails("alice@example.com_old").is_empty());
        assert!(emails("alice.@example.com a..b@example.com").is_empty());
    }
}
