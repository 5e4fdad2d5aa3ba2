//! The server side of NTLM for the simulator, written from MS-NLMP §2.2 and §3.3.2:
//! a CHALLENGE for a NEGOTIATE, and an NTLMv2 AUTHENTICATE checked against the
//! account's password, its flags against the CHALLENGE's (§3.1.5.1.2) and, when asked,
//! its `MsvAvTargetName` against the service's SPN. Hand-written because no crate verifies NTLMv2 as a server:
//! `sspi`'s acceptor never compares the client's NTProofStr, so it would admit a wrong
//! password whenever the client omits the MIC.

use hmac::{Hmac, Mac};
use md4::{Digest as _, Md4};
use md5::Md5;

/// NEGOTIATE.
pub(crate) const NEGOTIATE: u32 = 1;
/// AUTHENTICATE.
pub(crate) const AUTHENTICATE: u32 = 3;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// The message type, if `b` is an NTLM message.
pub(crate) fn message_type(b: &[u8]) -> Option<u32> {
    (b.get(..8)? == SIGNATURE).then(|| u32_at(b, 8))?
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// A `{length, max length, offset}` field's bytes.
fn field(b: &[u8], i: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(b, i)?);
    let offset = usize::try_from(u32_at(b, i + 4)?).ok()?;
    b.get(offset..offset.checked_add(len)?)
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> Option<String> {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // An HMAC key may have any length.
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2: HMAC-MD5 keyed by MD4 of the password, over the upper-cased user and the
/// domain as sent.
fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt = Md4::digest(utf16le(password));
    hmac_md5(&nt, &[&utf16le(&user.to_uppercase()), &utf16le(domain)])
}

/// The flags a CHALLENGE offered.
pub(crate) fn offered_flags(challenge: &[u8]) -> u32 {
    u32_at(challenge, 20).unwrap_or(0)
}

/// The CHALLENGE answering `negotiate`, with `server_challenge`, for the simulated
/// domain `CORP` and server `EXCH01`.
pub(crate) fn challenge(server_challenge: [u8; 8], negotiate: &[u8]) -> Vec<u8> {
    let asked = u32_at(negotiate, 12).unwrap_or(0);
    let flags: u32 = 0x1
        | 0x4
        | 0x200
        | 0x8000
        | 0x1_0000
        | 0x8_0000
        | 0x80_0000
        | 0x200_0000
        | (asked & (0x10 | 0x20 | 0x2000_0000 | 0x4000_0000 | 0x8000_0000));
    let target = utf16le("CORP");
    let mut info = Vec::new();
    let mut pair = |id: u16, value: &[u8]| {
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&u16::try_from(value.len()).unwrap_or(0).to_le_bytes());
        info.extend_from_slice(value);
    };
    pair(2, &utf16le("CORP"));
    pair(1, &utf16le("EXCH01"));
    pair(4, &utf16le("corp.example"));
    pair(3, &utf16le("exch01.corp.example"));
    let now = jiff::Timestamp::now();
    let filetime = (now.as_second() + 11_644_473_600) as u64 * 10_000_000
        + u64::from(now.subsec_nanosecond().unsigned_abs()) / 100;
    pair(7, &filetime.to_le_bytes());
    pair(0, &[]);
    let mut m = Vec::with_capacity(56 + target.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    let target_offset = 56u32;
    let info_offset = target_offset + u32::try_from(target.len()).unwrap_or(0);
    let len16 = |v: &[u8]| u16::try_from(v.len()).unwrap_or(0).to_le_bytes();
    m.extend_from_slice(&len16(&target));
    m.extend_from_slice(&len16(&target));
    m.extend_from_slice(&target_offset.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&len16(&info));
    m.extend_from_slice(&len16(&info));
    m.extend_from_slice(&info_offset.to_le_bytes());
    m.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 0x0f]);
    m.extend_from_slice(&target);
    m.extend_from_slice(&info);
    m
}

/// How the channel binding of an AUTHENTICATE is checked (IIS's Extended Protection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    /// Off, Accept (checked when sent) or Require.
    pub(crate) policy: crate::ExtendedProtection,
    /// The connection's `tls-server-end-point` token (none: not TLS).
    pub(crate) channel: Option<&'a [u8]>,
}

/// `MsvAvChannelBindings`: MD5 over the `gss_channel_bindings_struct` with no addresses
/// and `token` as its application data (MS-NLMP §2.2.2.1, RFC 2744 §3.11).
fn channel_binding_hash(token: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([0u8; 16]);
    md5.update(u32::try_from(token.len()).unwrap_or(0).to_le_bytes());
    md5.update(token);
    md5.finalize().into()
}

/// The value of AV pair `id` in an NTLMv2 blob's list (which starts at byte 28).
fn av_pair(blob: &[u8], id: u16) -> Option<&[u8]> {
    let mut at = 28;
    loop {
        let kind = u16_at(blob, at)?;
        let len = usize::from(u16_at(blob, at + 2)?);
        let value = blob.get(at + 4..at + 4 + len)?;
        if kind == id {
            return Some(value);
        }
        if kind == 0 {
            return None;
        }
        at += 4 + len;
    }
}

/// Whether the blob's channel binding satisfies `binding`.
fn check_binding(blob: &[u8], binding: Binding<'_>) -> Result<(), String> {
    use crate::ExtendedProtection::{Accept, Off, Require};
    let sent = av_pair(blob, 0x000A).filter(|v| v.iter().any(|b| *b != 0));
    match (binding.policy, sent, binding.channel) {
        (Off, _, _) | (Accept, None, _) => Ok(()),
        (Require, None, _) => {
            Err("Extended Protection requires a channel binding; none was sent".into())
        }
        (_, Some(_), None) => {
            Err("a channel binding was sent, but the connection is not TLS".into())
        }
        (_, Some(hash), Some(token)) => {
            if hash == channel_binding_hash(token) {
                Ok(())
            } else {
                Err("the channel binding names another TLS channel (a relay?)".into())
            }
        }
    }
}

/// What an AUTHENTICATE answers: the CHALLENGE sent on its connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Challenged<'a> {
    /// Its server challenge.
    pub(crate) server_challenge: &'a [u8; 8],
    /// Its flags: the AUTHENTICATE may carry no other.
    pub(crate) offered: u32,
}

/// Checks an AUTHENTICATE against what `challenged` its connection, for the account
/// named `account` (`DOMAIN\user`, `user@domain` or `user`) with `password`, its channel
/// binding against `binding` and, when given, its `MsvAvTargetName` against `spn`.
/// `Err` says why not.
pub(crate) fn verify(
    authenticate: &[u8],
    challenged: Challenged<'_>,
    account: &str,
    password: &str,
    binding: Binding<'_>,
    spn: Option<&str>,
) -> Result<(), String> {
    let server_challenge = challenged.server_challenge;
    if message_type(authenticate) != Some(AUTHENTICATE) {
        return Err("not an AUTHENTICATE message".into());
    }
    let flags = u32_at(authenticate, 60).ok_or("truncated")?;
    if flags & 0x1 == 0 {
        return Err("the client does not speak Unicode".into());
    }
    if flags & !challenged.offered != 0 {
        return Err(format!(
            "the AUTHENTICATE sets flags {:#010x} the CHALLENGE did not offer",
            flags & !challenged.offered
        ));
    }
    let nt = field(authenticate, 20).ok_or("no NT response")?;
    let domain = from_utf16le(field(authenticate, 28).ok_or("no domain")?).ok_or("bad domain")?;
    let user = from_utf16le(field(authenticate, 36).ok_or("no user")?).ok_or("bad user")?;
    if crate::http::bare(&user) != crate::http::bare(account) {
        return Err(format!("unknown account `{user}`"));
    }
    if nt.len() < 16 + 28 {
        return Err("NTLMv1 is refused; only NTLMv2 is accepted".into());
    }
    let (proof, blob) = nt.split_at(16);
    if blob[0] != 1 || blob[1] != 1 {
        return Err("not an NTLMv2 response".into());
    }
    let expected = hmac_md5(
        &ntowf_v2(password, &user, &domain),
        &[&server_challenge[..], blob],
    );
    // Constant time: every byte is compared.
    let diff = expected
        .iter()
        .zip(proof)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err("wrong password".into());
    }
    // The blob is covered by the proof just checked, so its binding and target name
    // are the client's.
    check_binding(blob, binding)?;
    if let Some(spn) = spn {
        match av_pair(blob, 0x0009) {
            Some(named) if named == utf16le(spn).as_slice() => {}
            Some(named) => {
                return Err(format!(
                    "the sign-in names the service `{}`, not `{spn}`",
                    from_utf16le(named).unwrap_or_default()
                ));
            }
            None => return Err(format!("the sign-in names no service; `{spn}` is required")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntowf_v2_matches_ms_nlmp() {
        // MS-NLMP §4.2.4.1.1: user "User", domain "Domain", password "Password".
        let key = ntowf_v2("Password", "User", "Domain");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0c868a403bfd7a93a3001ef22ef02e3f");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let challenge = [1u8; 8];
        let off = Binding {
            policy: crate::ExtendedProtection::Off,
            channel: None,
        };
        let challenged = Challenged {
            server_challenge: &challenge,
            offered: u32::MAX,
        };
        for bad in [&b""[..], b"NTLMSSP\0", b"NTLMSSP\0\x03\0\0\0", &[0xff; 100]] {
            assert!(verify(bad, challenged, "svc", "pw", off, None).is_err());
        }
        let mut short = b"NTLMSSP\0".to_vec();
        short.extend_from_slice(&3u32.to_le_bytes());
        short.extend_from_slice(&[0xff; 60]);
        assert!(verify(&short, challenged, "svc", "pw", off, Some("HTTP/x")).is_err());
        // A blob whose AV pairs run off its end has no binding, and no panic.
        let mut blob = vec![1u8, 1];
        blob.extend_from_slice(&[0; 26]);
        blob.extend_from_slice(&[0x0a, 0, 0xff, 0xff, 1, 2]);
        assert_eq!(av_pair(&blob, 0x000A), None);
        assert_eq!(message_type(&challenge_message_for_test()), Some(2));
    }

    #[test]
    fn an_authenticate_with_flags_the_challenge_did_not_offer_is_refused() {
        let off = Binding {
            policy: crate::ExtendedProtection::Off,
            channel: None,
        };
        // Unicode and OEM_DOMAIN_SUPPLIED (a NEGOTIATE-only flag), nothing else set.
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        m.extend_from_slice(&[0; 48]);
        m.extend_from_slice(&0x1001u32.to_le_bytes());
        let offered = offered_flags(&challenge([7; 8], &[]));
        assert_eq!(offered & 0x1000, 0);
        let challenged = Challenged {
            server_challenge: &[7; 8],
            offered,
        };
        let why = verify(&m, challenged, "svc", "pw", off, None).expect_err("refused");
        assert!(why.contains("0x00001000"), "{why}");
        // Offered, the flags pass and the next check (the NT response) refuses it.
        let challenged = Challenged {
            offered: offered | 0x1000,
            ..challenged
        };
        let why = verify(&m, challenged, "svc", "pw", off, None).expect_err("refused");
        assert!(!why.contains("did not offer"), "{why}");
    }

    #[test]
    fn the_binding_hash_is_the_gss_structure_of_the_token() {
        // The hash Windows computes for a `tls-server-end-point` token of 32 zero bytes
        // over the same 16 zero address bytes, length and data.
        let mut token = b"tls-server-end-point:".to_vec();
        token.extend_from_slice(&[0; 32]);
        let mut whole = vec![0u8; 16];
        whole.extend_from_slice(&(token.len() as u32).to_le_bytes());
        whole.extend_from_slice(&token);
        assert_eq!(
            channel_binding_hash(&token),
            <[u8; 16]>::from(Md5::digest(&whole))
        );
        let mut blob = vec![1u8, 1];
        blob.extend_from_slice(&[0; 26]);
        blob.extend_from_slice(&[0x0a, 0, 16, 0]);
        blob.extend_from_slice(&channel_binding_hash(&token));
        blob.extend_from_slice(&[0, 0, 0, 0]);
        let require = |channel| Binding {
            policy: crate::ExtendedProtection::Require,
            channel,
        };
        assert!(check_binding(&blob, require(Some(&token))).is_ok());
        let mut other = token.clone();
        other[30] = 1;
        assert!(check_binding(&blob, require(Some(&other))).is_err());
        assert!(check_binding(&blob, require(None)).is_err());
        assert!(check_binding(&blob[..28], require(Some(&token))).is_err());
    }

    fn challenge_message_for_test() -> Vec<u8> {
        challenge([7; 8], &[])
    }
}
