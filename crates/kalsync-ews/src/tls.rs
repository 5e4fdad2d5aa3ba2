//! TLS details EWS needs beyond the connection itself: the trusted CA certificates of a
//! company's own PKI (PEM), and the `tls-server-end-point` channel binding of RFC 5929
//! that NTLM carries for Extended Protection for Authentication. Written here because
//! the binding is a hash choice over one certificate field, which no TLS crate exposes.

use sha2::Digest as _;
use x509_cert::der::Decode as _;

use crate::error::EwsError;

/// The DER certificates in a PEM text; an error when there are none or one is broken.
pub fn certificates(pem: &str) -> Result<Vec<Vec<u8>>, EwsError> {
    let blocks = pem::parse_many(pem).map_err(|e| bad(&e.to_string()))?;
    let mut found = Vec::new();
    for block in blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
        let der = block.into_contents();
        x509_cert::Certificate::from_der(&der)
            .map_err(|e| bad(&format!("not an X.509 certificate: {e}")))?;
        found.push(der);
    }
    if found.is_empty() {
        return Err(bad("no `BEGIN CERTIFICATE` block"));
    }
    Ok(found)
}

fn bad(why: &str) -> EwsError {
    EwsError::Transport(format!("trusted CA certificates: {why}"))
}

/// `tls-server-end-point:` and the hash of the server's certificate (RFC 5929 §4.1):
/// the hash of the certificate's signature algorithm, SHA-256 when that is MD5 or
/// SHA-1 (or not a plain hash, as for RSASSA-PSS and Ed25519).
pub fn server_end_point(certificate: &[u8]) -> Result<Vec<u8>, EwsError> {
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|e| {
        EwsError::Transport(format!("the server's certificate cannot be read: {e}"))
    })?;
    let algorithm = cert.signature_algorithm.oid.to_string();
    let hash: Vec<u8> = match algorithm.as_str() {
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => {
            sha2::Sha384::digest(certificate).to_vec()
        }
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => {
            sha2::Sha512::digest(certificate).to_vec()
        }
        _ => sha2::Sha256::digest(certificate).to_vec(),
    };
    let mut token = b"tls-server-end-point:".to_vec();
    token.extend_from_slice(&hash);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(algorithm: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(algorithm).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["exchange.corp.example".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = cert.der().to_vec();
        (server_end_point(&der).expect("token"), der)
    }

    #[test]
    fn the_binding_hashes_with_the_certificates_own_hash() {
        let (token, der) = token_of(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (prefix, hash) = token.split_at(21);
        assert_eq!(prefix, b"tls-server-end-point:");
        assert_eq!(hash, &sha2::Sha256::digest(&der)[..]);
        let (token, der) = token_of(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(&token[21..], &sha2::Sha384::digest(&der)[..]);
        // Ed25519 names no hash: SHA-256.
        let (token, der) = token_of(&rcgen::PKCS_ED25519);
        assert_eq!(&token[21..], &sha2::Sha256::digest(&der)[..]);
        assert!(server_end_point(b"not DER").is_err());
    }
}
