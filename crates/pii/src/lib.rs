//! Detecting and masking personal and secret data in prompt text.
//!
//! A request whose text contains any [`Finding`] is at least P1. A P1 request
//! may go to a cloud provider only masked: [`Masker`] replaces each finding
//! with a typed placeholder (`[EMAIL_1]`, `[PHONE_2]`, …) and hands over a
//! [`Restorer`] that puts the originals back into the answer, whole or
//! streamed in arbitrary chunks ([`StreamRestorer`]).
//!
//! | kind | what | module |
//! | --- | --- | --- |
//! | [`Kind::Email`] | `local@domain.tld` (not URL user-info, not `git@host:path`) | `email` |
//! | [`Kind::Phone`] | China mobile and landline, US/NANP with separators | `phone` |
//! | [`Kind::CnId`] | Chinese resident ID: 18 chars, real birth date, MOD 11-2 check | `cn_id` |
//! | [`Kind::CreditCard`] | 13–19 digits, known issuer prefix, Luhn | `card` |
//! | [`Kind::ApiKey`] | known key prefixes, JWTs, PEM private keys, `api_key=…`-style values | `keys`, `assign` |
//! | [`Kind::Password`] | the value after `password:` / `pwd=` / `密码：` … | `assign` |
//!
//! The exact rules, with examples that match and examples deliberately not
//! matched, are in `docs/pii.md`.
//!
//! ## Why hand-written scanners, not regex
//! This runs on the request path, and ordinary text (no findings) must cost
//! next to nothing. [`detect`] makes one pass over the bytes, and a detector
//! is woken only by its trigger — an `@` for emails, a digit chunk with at
//! least ten digits for numbers, the first bytes of a known prefix for keys,
//! a `:` or `=` for `key: value` pairs — and only then looks closer (table in
//! `detect.rs`). The boundary rules (Chinese text glued to digits is a
//! boundary, `v1.2.3` is not) are plain code a reader can follow, and the
//! crate has no dependencies.
//!
//! Everything here is pure: no I/O, no shared state; one [`Masker`] per
//! request.

mod assign;
mod boundary;
mod card;
mod cn_id;
mod detect;
mod email;
mod keys;
mod kind;
mod mask;
mod numbers;
mod phone;
mod placeholder;
mod restore;

pub use detect::{contains_pii, detect};
pub use kind::{Finding, Kind};
pub use mask::Masker;
pub use restore::{Restorer, StreamRestorer};
