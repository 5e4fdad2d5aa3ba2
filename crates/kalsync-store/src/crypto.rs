//! Secrets at rest: AES-256-GCM under a master key from `KALSYNC_MASTER_KEY` or a key file
//! created with mode 0600 on first run.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};

/// The prefix of a sealed value; the version lets the format change later.
const PREFIX: &str = "sealed:v1:";

/// Seals and opens secrets. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
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
        Ok(SecretBox { cipher })
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
        SecretBox {
            cipher: Aes256Gcm::new(&key.into()),
        }
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
