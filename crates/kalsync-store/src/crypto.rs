//! Secrets at rest: AES-256-GCM under a master key from `KALSYNC_MASTER_KEY` or a key file
//! created with mode 0600 on first run.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The prefix of a sealed value; the version lets the format change later.
const PREFIX: &str = "sealed:v1:";

/// The prefix of a minted token ([`SecretBox::mint_token`]).
const TOKEN_PREFIX: &str = "kt1.";
/// The prefix of a token that names what it was minted for ([`SecretBox::mint_bound_token`]).
const BOUND_PREFIX: &str = "kt2.";

/// Seals and opens secrets, and mints tokens it recognises again without a look-up.
/// Its `Debug` shows nothing of the keys.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Tags minted tokens; derived from the master key, never the key itself.
    token_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

/// Why a key or a sealed value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    /// The key file could not be read or created.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// Path.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored value was not sealed by this key (or was altered).
    #[error("a stored secret cannot be opened with this master key")]
    Open,
}

impl SecretBox {
    /// A box for a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::BadKey)?;
        let mut mac =
            <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).map_err(|_| CryptoError::BadKey)?;
        mac.update(b"kalsync token key v1");
        let token_key = mac.finalize().into_bytes().into();
        Ok(SecretBox { cipher, token_key })
    }

    /// A box for a base64 key, as `KALSYNC_MASTER_KEY` holds it.
    pub fn from_base64(key: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Self::new(&bytes)
    }

    /// The key from a file, created (random, mode 0600) when it does not exist yet.
    pub fn from_key_file(path: &Path) -> Result<Self, CryptoError> {
        let error = |message: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let text = STANDARD.encode(key);
                write_private(path, &text).map_err(|e| error(e.to_string()))?;
                Self::new(&key)
            }
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// A throw-away box (tests, the demo): a random key that lives in memory only.
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        // A 32-byte key is always a valid key.
        Self::new(&key).expect("a 32-byte key")
    }

    /// A fresh random token for `purpose` that only this key recognises: `kt1.` and
    /// base64url of 16 random bytes and a 16-byte HMAC-SHA256 tag over the purpose and
    /// them. An endpoint that receives such a token from outside (a Graph `clientState`,
    /// an EWS push address) throws forged ones away before any look-up.
    pub fn mint_token(&self, purpose: &str) -> String {
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let mut out = random.to_vec();
        out.extend_from_slice(&self.token_tag(purpose, &random));
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Whether `token` was minted by this key for `purpose` (in constant time).
    pub fn is_minted(&self, purpose: &str, token: &str) -> bool {
        let Some(bytes) = token
            .strip_prefix(TOKEN_PREFIX)
            .filter(|b| b.len() == 43)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
        else {
            return false;
        };
        let (random, tag) = bytes.split_at(16);
        bool::from(self.token_tag(purpose, random).ct_eq(tag))
    }

    /// A fresh random token for `purpose` that names `subject` (16 bytes, a record's
    /// id) and that only this key recognises: `kt2.` and base64url of the subject, 8
    /// random bytes and a 16-byte HMAC-SHA256 tag over the purpose and both. An endpoint
    /// learns from the token alone, before any look-up, whom it is about — a Graph
    /// `clientState` names its user, so a notification that arrives before its
    /// subscription's id is stored still finds the user, on any node.
    pub fn mint_bound_token(&self, purpose: &str, subject: &[u8; 16]) -> String {
        let mut out = subject.to_vec();
        let mut random = [0u8; 8];
        rand::rng().fill_bytes(&mut random);
        out.extend_from_slice(&random);
        let tag = self.token_tag(purpose, &out);
        out.extend_from_slice(&tag);
        format!("{BOUND_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The subject of a token this key minted for `purpose` with
    /// [`SecretBox::mint_bound_token`] (checked in constant time); none for anything else.
    pub fn bound_subject(&self, purpose: &str, token: &str) -> Option<[u8; 16]> {
        let bytes = token
            .strip_prefix(BOUND_PREFIX)
            .filter(|b| b.len() == 54)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())?;
        let (signed, tag) = bytes.split_at(24);
        if !bool::from(self.token_tag(purpose, signed).ct_eq(tag)) {
            return None;
        }
        signed.get(..16)?.try_into().ok()
    }

    fn token_tag(&self, purpose: &str, random: &[u8]) -> [u8; 16] {
        // A 32-byte key is always a valid HMAC key.
        let Ok(mut mac) = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.token_key) else {
            return [0; 16];
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(random);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// Seals a secret: `sealed:v1:` and base64 of a random 96-bit nonce and the
    /// ciphertext with its tag.
    pub fn seal(&self, secret: &SecretString) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 12-byte nonce does not fail.
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), secret.expose_secret().as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens a sealed secret.
    pub fn open(&self, sealed: &str) -> Result<SecretString, CryptoError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > 12)
            .ok_or(CryptoError::Open)?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Open)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let a = SecretBox::ephemeral();
        let sealed = a.seal(&SecretString::from("client-secret-value"));
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("client-secret-value"));
        assert_eq!(
            a.open(&sealed).map(|s| s.expose_secret().to_owned()),
            Ok("client-secret-value".into())
        );
        assert_ne!(
            a.seal(&SecretString::from("x")),
            a.seal(&SecretString::from("x")),
            "a fresh nonce each time"
        );
        assert_eq!(
            SecretBox::ephemeral().open(&sealed).err(),
            Some(CryptoError::Open)
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(a.open(&tampered).is_err());
        assert!(a.open("plain text").is_err());
        assert!(!format!("{a:?}").contains('['));
    }

    #[test]
    fn minted_tokens_are_recognised_only_by_their_key_and_purpose() {
        let a = SecretBox::ephemeral();
        let token = a.mint_token("graph-client-state");
        assert!(
            token.len() <= 128,
            "Graph takes a clientState of 128 characters"
        );
        assert!(a.is_minted("graph-client-state", &token));
        assert_ne!(token, a.mint_token("graph-client-state"), "random");
        assert!(!a.is_minted("ews-push", &token), "bound to its purpose");
        assert!(!SecretBox::ephemeral().is_minted("graph-client-state", &token));
        let mut forged = token.clone();
        let last = forged.pop().expect("a character");
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!a.is_minted("graph-client-state", &forged));
        for junk in [
            "",
            "kt1.",
            "kt1.\n",
            "8f14e45fceea167a5a36dedd4bea2543",
            &"x".repeat(10_000),
        ] {
            assert!(!a.is_minted("graph-client-state", junk), "{junk}");
        }
    }

    #[test]
    fn bound_tokens_name_their_subject_to_their_key_and_purpose_only() {
        let a = SecretBox::ephemeral();
        let subject = *uuid::Uuid::new_v4().as_bytes();
        let token = a.mint_bound_token("graph-client-state", &subject);
        assert!(
            token.len() <= 128,
            "Graph takes a clientState of 128 characters"
        );
        assert_eq!(a.bound_subject("graph-client-state", &token), Some(subject));
        assert_ne!(
            token,
            a.mint_bound_token("graph-client-state", &subject),
            "random"
        );
        assert_eq!(
            a.bound_subject("ews-push", &token),
            None,
            "bound to its purpose"
        );
        assert_eq!(
            SecretBox::ephemeral().bound_subject("graph-client-state", &token),
            None
        );
        assert!(
            !a.is_minted("graph-client-state", &token),
            "not a plain token"
        );
        // Another subject under the same tag is refused.
        let mut bytes = URL_SAFE_NO_PAD
            .decode(token.trim_start_matches("kt2."))
            .expect("base64");
        bytes[0] ^= 1;
        let forged = format!("kt2.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(a.bound_subject("graph-client-state", &forged), None);
        let plain = a.mint_token("graph-client-state");
        for junk in ["", "kt2.", &plain, &"x".repeat(10_000), "kt2.é"] {
            assert_eq!(a.bound_subject("graph-client-state", junk), None, "{junk}");
        }
    }

    #[test]
    fn keys_come_from_base64_or_a_private_file() {
        assert_eq!(
            SecretBox::from_base64("short").err(),
            Some(CryptoError::BadKey)
        );
        let dir = std::env::temp_dir().join(format!("kalsync-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("master.key");
        let first = SecretBox::from_key_file(&path).expect("created");
        let sealed = first.seal(&SecretString::from("s"));
        let again = SecretBox::from_key_file(&path).expect("read");
        assert!(again.open(&sealed).is_ok(), "the same key is read back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
