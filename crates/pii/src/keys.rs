//! Credentials recognisable by their own shape: vendor API keys, JWTs, PEM
//! private keys. (Values recognisable only by their label, `api_key=…`, are
//! in `assign`.)
//!
//! A token is a run of `A-Z a-z 0-9 _ -` not glued to a longer one; only a
//! token starting with `sk rk AK AS AI gh gi xo ey` or a `-----BEGIN ` line is
//! looked at.
//! Every body below must also hold a letter and a digit, which drops
//! placeholders like `sk-your-key-here`.
//!
//! | vendor | shape |
//! | --- | --- |
//! | Anthropic | `sk-ant-` + 32 or more of `A-Z a-z 0-9 _ -` |
//! | OpenAI | `sk-proj-`, `sk-svcacct-`, `sk-admin-` or `sk-` + 32 or more of `A-Z a-z 0-9 _ -` |
//! | Stripe | `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_` + 16 or more alphanumerics |
//! | AWS access key id | `AKIA` or `ASIA` + exactly 16 of `A-Z 0-9` |
//! | Google API key | `AIza` + exactly 35 of `A-Z a-z 0-9 _ -` |
//! | GitHub | `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_` + 30 or more alphanumerics; `github_pat_` + 22 or more of `A-Z a-z 0-9 _` |
//! | Slack | `xoxa-`, `xoxb-`, `xoxp-`, `xoxo-`, `xoxs-`, `xoxr-` + 10 or more of `A-Z a-z 0-9 -` |
//! | JWT | `eyJ…` (10+) `.` `eyJ…` (10+) `.` signature (16+), base64url |
//! | PEM | `-----BEGIN … PRIVATE KEY-----` through its `-----END … PRIVATE KEY-----` line; without an END line, to the end of the text |

use crate::{Finding, Kind};

/// A vendor prefix and what may follow it.
struct Prefix {
    prefix: &'static str,
    body: fn(u8) -> bool,
    min: usize,
    max: usize,
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn alphanumeric(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn upper_alphanumeric(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn alphanumeric_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

const fn p(prefix: &'static str, body: fn(u8) -> bool, min: usize, max: usize) -> Prefix {
    Prefix { prefix, body, min, max }
}

/// Longer prefixes first: the first one whose body fits wins.
const PREFIXES: &[Prefix] = &[
    p("sk-ant-", base64url, 32, 512),
    p("sk-proj-", base64url, 32, 512),
    p("sk-svcacct-", base64url, 32, 512),
    p("sk-admin-", base64url, 32, 512),
    p("sk-", base64url, 32, 512),
    p("sk_live_", alphanumeric, 16, 256),
    p("sk_test_", alphanumeric, 16, 256),
    p("rk_live_", alphanumeric, 16, 256),
    p("rk_test_", alphanumeric, 16, 256),
    p("AKIA", upper_alphanumeric, 16, 16),
    p("ASIA", upper_alphanumeric, 16, 16),
    p("AIza", base64url, 35, 35),
    p("ghp_", alphanumeric, 30, 255),
    p("gho_", alphanumeric, 30, 255),
    p("ghs_", alphanumeric, 30, 255),
    p("ghu_", alphanumeric, 30, 255),
    p("ghr_", alphanumeric, 30, 255),
    p("github_pat_", word, 22, 255),
    p("xoxa-", alphanumeric_dash, 10, 255),
    p("xoxb-", alphanumeric_dash, 10, 255),
    p("xoxp-", alphanumeric_dash, 10, 255),
    p("xoxo-", alphanumeric_dash, 10, 255),
    p("xoxs-", alphanumeric_dash, 10, 255),
    p("xoxr-", alphanumeric_dash, 10, 255),
];

const PEM_BEGIN: &str = "-----BEGIN ";

/// The key starting at byte `at`, if one does (the caller has checked
/// [`start_for`]).
pub(crate) fn at(text: &str, at: usize) -> Option<Finding> {
    let bytes = text.as_bytes();
    let at_token_start = bytes[at] == b'-' || at == 0 || !base64url(bytes[at - 1]);
    if !at_token_start {
        return None;
    }
    let end = key_at(text, at)?;
    Some(Finding { kind: Kind::ApiKey, start: at, end })
}

/// Where a key would start, given the byte at `at` that woke the scan: the
/// first two bytes of every prefix are `sk rk AK AS AI gh gi xo ey --`, and
/// the scan wakes on `k` and `y` rather than on `s`, `r` and `e`, the
/// commonest letters. `None` when the bytes around do not fit.
#[inline]
pub(crate) fn start_for(bytes: &[u8], at: usize) -> Option<usize> {
    let (start, first, second) = match bytes[at] {
        b'k' | b'y' => (at.checked_sub(1)?, *bytes.get(at.checked_sub(1)?)?, bytes[at]),
        b => (at, b, *bytes.get(at + 1)?),
    };
    let fits = match first {
        b's' | b'r' => second == b'k',
        b'A' => matches!(second, b'K' | b'S' | b'I'),
        b'g' => second == b'h' || second == b'i',
        b'x' => second == b'o',
        b'e' => second == b'y',
        b'-' => second == b'-',
        _ => false,
    };
    fits.then_some(start)
}

/// The end of the key starting at byte `at`, if one does.
fn key_at(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let rest = &bytes[at..];
    if rest.starts_with(PEM_BEGIN.as_bytes()) {
        return pem_end(text, at);
    }
    if rest.starts_with(b"eyJ") {
        return jwt_end(bytes, at);
    }
    PREFIXES.iter().filter(|p| rest.starts_with(p.prefix.as_bytes())).find_map(|p| prefixed_end(bytes, at, p))
}

/// End of the run of `allowed` bytes from `from`.
fn run_end(bytes: &[u8], from: usize, allowed: fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < bytes.len() && allowed(bytes[end]) {
        end += 1;
    }
    end
}

fn has_letter_and_digit(body: &[u8]) -> bool {
    body.iter().any(u8::is_ascii_alphabetic) && body.iter().any(u8::is_ascii_digit)
}

fn prefixed_end(bytes: &[u8], at: usize, p: &Prefix) -> Option<usize> {
    let body_start = at + p.prefix.len();
    let end = run_end(bytes, body_start, p.body);
    let body = &bytes[body_start..end];
    // The body may not run on into other token characters ("AKIA…7EXAMPLEx").
    let glued = bytes.get(end).is_some_and(|&b| base64url(b));
    let ok = (p.min..=p.max).contains(&body.len()) && !glued && has_letter_and_digit(body);
    ok.then_some(end)
}

/// `header.payload.signature`, the first two starting `eyJ` (`{"` encoded).
fn jwt_end(bytes: &[u8], at: usize) -> Option<usize> {
    let header_end = run_end(bytes, at, base64url);
    if header_end - at < 10 || bytes.get(header_end) != Some(&b'.') {
        return None;
    }
    let payload_start = header_end + 1;
    if !bytes[payload_start..].starts_with(b"eyJ") {
        return None;
    }
    let payload_end = run_end(bytes, payload_start, base64url);
    if payload_end - payload_start < 10 || bytes.get(payload_end) != Some(&b'.') {
        return None;
    }
    let signature_start = payload_end + 1;
    let end = run_end(bytes, signature_start, base64url);
    (end - signature_start >= 16).then_some(end)
}

/// A private key block: from `-----BEGIN <label>-----` to the matching END
/// line, or to the end of the text when that is missing (a truncated key is
/// still a key).
fn pem_end(text: &str, at: usize) -> Option<usize> {
    let after_begin = at + PEM_BEGIN.len();
    let line = text.get(after_begin..)?;
    let label_len = line.find("-----")?;
    let label = &line[..label_len];
    if label.len() > 64 || label.contains('\n') || !label.contains("PRIVATE KEY") {
        return None;
    }
    let body_start = after_begin + label_len + "-----".len();
    let end_marker = format!("-----END {label}-----");
    match text[body_start..].find(&end_marker) {
        Some(i) => Some(body_start + i + end_marker.len()),
        None => Some(text.len()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Kind;

    fn keys(text: &str) -> Vec<&str> {
        crate::detect::found(text, Kind::ApiKey)
    }

    #[test]
    fn vendor_keys() {
        for key in [
            "sk-ant-api03-Xk2mP9qLr7TzW4vB8nJc5hYd3sFg6aKe1uQo0iRt2wEy",
            "sk-proj-4fGh7JkL9mNp2QrS5tUv8WxY1zAb3CdE6fGh9IjK",
            "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6l",
            "sk_live_51HxYzAbCdEfGh12345678",
            "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
            "xoxb-2048-1024-Ab3dEf6hIj9kLm2n",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(keys(&format!("key=\"{key}\".")), [key], "{key}");
        }
    }

    #[test]
    fn pem_blocks() {
        let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----";
        assert_eq!(keys(&format!("here:\n{block}\nthanks")), [block]);
        let truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
        assert_eq!(keys(&format!("x {truncated}")), [truncated]);
        assert!(keys("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_empty());
        assert!(keys("-----BEGIN PUBLIC KEY-----").is_empty());
    }

    #[test]
    fn lookalikes() {
        for text in [
            "sk-your-openai-key-goes-here-please-replace-it",
            "task-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0f",
            "sk-short1",
            "AKIAIOSFODNN7EXAMPLEX",
            "AKIAIOSFODNN7EXAMPL",
            "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQ",
            "ghp_notarealtoken",
            "xoxb-not-a-token",
            "eyJhbGciOiJIUzI1NiJ9.notapayload.sig",
            "skip-lists and risk-free and a gh_ token and extra",
        ] {
            assert_eq!(keys(text), Vec::<&str>::new(), "{text}");
        }
    }
}
