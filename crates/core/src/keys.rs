//! API keys: generated from the OS's CSPRNG, shown once, stored as a
//! SHA-256 hash, looked up in memory.
//!
//! SHA-256 (not a slow password hash) is enough because the secrets are 40
//! random base62 characters (~238 bits): nothing to brute-force, and the
//! lookup stays a hash-map probe on the hot path (see docs/adr/0003).

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

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

/// A key as stored. Designed to grow: tenants, teams, users, roles, limits
/// and budgets hang off it (their own issues).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret.
    #[serde(skip_serializing)]
    pub hash: String,
    /// The first characters of the secret, to recognise it in listings.
    pub prefix: String,
    pub tenant_id: String,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub roles: Vec<String>,
    /// Routes this key may use; `None` means all.
    pub allowed_routes: Option<Vec<String>>,
    pub status: KeyStatus,
    /// Unix ms after which the key no longer works.
    pub expires_at: Option<i64>,
    pub metadata: serde_json::Value,
    pub created_at: i64,
}

impl KeyRecord {
    pub fn may_use(&self, route: &str) -> bool {
        self.allowed_routes.as_ref().is_none_or(|r| r.iter().any(|x| x == route))
    }
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
fn parse_hex(hash: &str) -> Option<[u8; 32]> {
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

/// Keys by hash, read on every request without a lock; replaced whole on
/// change (changes are rare: admin actions).
#[derive(Default)]
pub struct KeyCache {
    by_hash: ArcSwap<HashMap<[u8; 32], Arc<KeyRecord>>>,
}

impl KeyCache {
    pub fn replace_all(&self, keys: Vec<KeyRecord>) {
        let map = keys.into_iter().filter_map(|k| Some((parse_hex(&k.hash)?, Arc::new(k)))).collect();
        self.by_hash.store(Arc::new(map));
    }

    pub fn upsert(&self, key: KeyRecord) {
        let Some(digest) = parse_hex(&key.hash) else { return };
        let key = Arc::new(key);
        self.by_hash.rcu(|old| {
            let mut map = HashMap::clone(old);
            map.insert(digest, key.clone());
            map
        });
    }

    pub fn find(&self, secret: &str) -> Option<Arc<KeyRecord>> {
        self.by_hash.load().get(&digest(secret)).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_hash.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

    #[test]
    fn cache_finds_by_secret_only() {
        let cache = KeyCache::default();
        let secret = generate_secret().unwrap();
        cache.upsert(KeyRecord {
            id: "k1".into(),
            name: "n".into(),
            hash: hash_secret(&secret),
            prefix: secret[..10].into(),
            tenant_id: "default".into(),
            team_id: None,
            user_id: None,
            roles: vec![],
            allowed_routes: Some(vec!["chat".into()]),
            status: KeyStatus::Active,
            expires_at: None,
            metadata: serde_json::Value::Null,
            created_at: 0,
        });
        let k = cache.find(&secret).unwrap();
        assert!(k.may_use("chat"));
        assert!(!k.may_use("other"));
        assert!(cache.find("sk-sy-wrong").is_none());
    }
}
