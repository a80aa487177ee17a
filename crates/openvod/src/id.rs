//! Identifiers and clock helpers shared by every domain.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// A new random identifier: 32 base62 characters (~190 bits), the shape of Mux ids.
pub fn random_id() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Current Unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether `s` could be an id we issued; checked before an id reaches a storage path or a query.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}
