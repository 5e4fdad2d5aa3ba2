//! Random secrets (session ids, CSRF and API tokens) and the hash they are stored as.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::Digest as _;

/// API tokens start with this, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "kst_";

/// A fresh random secret, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a session id or API token: SHA-256, hex. (They are random and
/// long, so a fast hash is enough; passwords get argon2.)
pub fn secret_hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
