//! API keys: generated from the OS's CSPRNG, shown once, stored as a
//! SHA-256 hash, looked up in memory.
//!
//! SHA-256 (not a slow password hash) is enough because the secrets are 40
//! random base62 characters (~238 bits): nothing to brute-force, and the
//! lookup stays a hash-map probe on the hot path (see docs/adr/0003).

use crate::access::Role;
use crate::limits::Limits;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every generated secret starts with this, so leaked keys are easy to
/// recognise by scanners.
pub const SECRET_PREFIX: &str = "sk-sy-";
const SECRET_CHARS: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Disabled,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "disabled" => Some(KeyStatus::Disabled),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// A key as stored: a JSON document (see [`crate::store`]) whose hash
/// lives beside it, never inside it, so no view of a key can show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret.
    #[serde(default, skip_serializing)]
    pub hash: String,
    /// The first characters of the secret, to recognise it in listings.
    pub prefix: String,
    pub tenant_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default = "developer")]
    pub roles: Vec<Role>,
    /// Routes this key may use; `None` means all (that its tenant may use).
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    #[serde(default = "active")]
    pub status: KeyStatus,
    /// Unix ms after which the key no longer works.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Overrides its plan's `key_limits`, field by field.
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budgets: Vec<crate::access::model::Budget>,
    /// Exempt from every budget (its own, its team's, its tenant's): an
    /// explicit, audited setting only the platform admin may make.
    #[serde(default)]
    pub unlimited: bool,
    /// The data classification of this key's requests when they send no
    /// `x-switchyard-classification` header (`None`: the tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<switchyard_types::Classification>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The key made by rotating this one.
    #[serde(default)]
    pub replaced_by: Option<String>,
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn developer() -> Vec<Role> {
    vec![Role::Developer]
}

fn active() -> KeyStatus {
    KeyStatus::Active
}

/// The stored form: hex of [`digest`].
pub fn hash_secret(secret: &str) -> String {
    let digest = digest(secret);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

/// SHA-256 of a secret: the in-memory lookup key (no hex on the hot path).
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses a stored hex hash back into a digest.
pub(crate) fn parse_hex(hash: &str) -> Option<[u8; 32]> {
    let bytes = hash.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// A new random secret, or an error if the OS has no randomness to give.
pub fn generate_secret() -> Result<String, String> {
    let mut out = String::from(SECRET_PREFIX);
    let mut buf = [0u8; 64];
    while out.len() < SECRET_PREFIX.len() + SECRET_CHARS {
        getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if b < 248 && out.len() < SECRET_PREFIX.len() + SECRET_CHARS {
                out.push(char::from(BASE62[(b % 62) as usize]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_are_random_and_well_formed() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + SECRET_CHARS);
        assert!(a[SECRET_PREFIX.len()..].bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(parse_hex(&hash_secret("abc")), Some(digest("abc")));
        assert_eq!(parse_hex("zz"), None);
    }
}
