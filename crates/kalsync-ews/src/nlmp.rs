//! The client's NTLMv2 messages, from MS-NLMP §2.2.1 and §3.1.5.1.2: the NEGOTIATE,
//! and the AUTHENTICATE answering a CHALLENGE — its flags the CHALLENGE's that this
//! client supports, its AV pairs carrying the MIC flag, the TLS channel binding and the
//! SPN `HTTP/<host>` (`MsvAvTargetName`, which Extended Protection checks behind a
//! proxy), and the MIC over the three messages.
//!
//! Written here rather than taken from `sspi` (0.18): its AUTHENTICATE always sets a
//! fixed flag set, `NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED` among them — a NEGOTIATE-only
//! flag neither side offered — whatever the CHALLENGE said, and it never writes
//! `MsvAvTargetName` (its `with_target_name` is not read by the NTLM package). Neither
//! can be corrected in its finished message: the flags are under the MIC and the AV
//! pairs under NTProofStr, so a correction would recompute NTProofStr, the session key
//! and the MIC — the whole NTLMv2 computation, which is what this module does.

use hmac::{Hmac, Mac};
use md4::{Digest as _, Md4};
use md5::Md5;

use crate::error::EwsError;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Negotiate flags (MS-NLMP §2.2.2.5).
const UNICODE: u32 = 0x0000_0001;
const OEM: u32 = 0x0000_0002;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NTLM: u32 = 0x0000_0200;
const ALWAYS_SIGN: u32 = 0x0000_8000;
const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
const TARGET_INFO: u32 = 0x0080_0000;
const VERSION: u32 = 0x0200_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

/// What this client asks for in its NEGOTIATE. No signing, sealing or key exchange:
/// HTTP sign-in uses no NTLM session security, so the session key is the session base
/// key. OEM is offered beside Unicode only because a NEGOTIATE must name a character
/// set the server may pick from; the AUTHENTICATE is always Unicode.
const ASKED: u32 = UNICODE
    | OEM
    | REQUEST_TARGET
    | NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSION_SECURITY
    | VERSION
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// Of a CHALLENGE's flags, those the AUTHENTICATE may carry (§3.1.5.1.2: the flags of
/// the CHALLENGE that the client supports).
const SUPPORTED: u32 = UNICODE
    | REQUEST_TARGET
    | NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSION_SECURITY
    | TARGET_INFO
    | VERSION
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// Windows 10 1809 (build 17763), NTLM revision 15: the version Windows sends.
const OUR_VERSION: [u8; 8] = [10, 0, 0x63, 0x45, 0, 0, 0, 0x0f];

/// AV pair ids (MS-NLMP §2.2.2.1).
const AV_EOL: u16 = 0;
const AV_FLAGS: u16 = 6;
const AV_TIMESTAMP: u16 = 7;
const AV_TARGET_NAME: u16 = 9;
const AV_CHANNEL_BINDINGS: u16 = 0x000A;
/// `MsvAvFlags`: the AUTHENTICATE carries a MIC.
const AV_FLAG_MIC: u32 = 0x2;

/// Where the MIC lies in the AUTHENTICATE: after the 64-byte header and the version.
const MIC_AT: usize = 72;
/// Where the AUTHENTICATE's payload starts.
const PAYLOAD_AT: usize = MIC_AT + 16;

/// One client handshake: the account, the channel and the server it signs in to.
pub(crate) struct Handshake {
    user: String,
    domain: String,
    /// NTOWFv2 of the password for `user` and `domain`.
    key: [u8; 16],
    /// `MsvAvChannelBindings`: MD5 of the channel's bindings (zeros: none).
    binding_hash: [u8; 16],
    /// `HTTP/<host>`.
    spn: String,
    negotiate: Vec<u8>,
}

fn failed(why: impl std::fmt::Display) -> EwsError {
    EwsError::Unauthorized(format!("NTLM: {why}"))
}

impl Handshake {
    /// A handshake as `account` (`DOMAIN\user`, `user@domain` or `user`) with
    /// `password` for the service `spn`; `binding`: the TLS channel's
    /// `tls-server-end-point` token.
    pub(crate) fn new(
        account: &str,
        password: &str,
        binding: Option<&[u8]>,
        spn: &str,
    ) -> Result<Handshake, EwsError> {
        // A user principal name goes whole as the user with no domain, as Windows
        // sends it.
        let (domain, user) = account.split_once('\\').unwrap_or(("", account));
        if user.is_empty() {
            return Err(failed("the account has no user name"));
        }
        Ok(Handshake {
            key: ntowf_v2(password, user, domain),
            user: user.to_owned(),
            domain: domain.to_owned(),
            binding_hash: binding.map(channel_binding_hash).unwrap_or_default(),
            spn: spn.to_owned(),
            negotiate: negotiate(),
        })
    }

    /// The NEGOTIATE message.
    pub(crate) fn negotiate(&self) -> &[u8] {
        &self.negotiate
    }

    /// The AUTHENTICATE answering `challenge`.
    pub(crate) fn authenticate(&self, challenge: &[u8]) -> Result<Vec<u8>, EwsError> {
        let client_challenge: [u8; 8] = rand::random();
        self.authenticate_with(challenge, client_challenge, None)
    }

    /// [`Handshake::authenticate`] with a chosen client challenge, and the time when the
    /// CHALLENGE carries none (the tests' fixed values).
    fn authenticate_with(
        &self,
        challenge: &[u8],
        client_challenge: [u8; 8],
        now: Option<u64>,
    ) -> Result<Vec<u8>, EwsError> {
        if challenge.get(..8) != Some(&SIGNATURE[..]) || u32_at(challenge, 8) != Some(2) {
            return Err(failed("the server's answer is not a CHALLENGE message"));
        }
        let offered = u32_at(challenge, 20).ok_or_else(|| failed("a truncated CHALLENGE"))?;
        if offered & UNICODE == 0 {
            return Err(failed("the server does not offer Unicode"));
        }
        let server_challenge: [u8; 8] = challenge
            .get(24..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| failed("a truncated CHALLENGE"))?;
        let target_info = field(challenge, 40)
            .filter(|_| offered & TARGET_INFO != 0)
            .ok_or_else(|| failed("the CHALLENGE carries no target information (NTLMv2)"))?;
        let pairs = av_pairs(target_info).ok_or_else(|| failed("malformed target information"))?;

        // The server's pairs, then ours: the MIC flag, the channel and the SPN.
        let mut info = Vec::with_capacity(target_info.len() + 64);
        let mut av_flags = AV_FLAG_MIC;
        let mut timestamp = None;
        for (id, value) in &pairs {
            match *id {
                AV_FLAGS => {
                    av_flags |= u32_at(value, 0).unwrap_or(0);
                    continue;
                }
                AV_TARGET_NAME | AV_CHANNEL_BINDINGS => continue,
                AV_TIMESTAMP => timestamp = Some(*value),
                _ => {}
            }
            push_pair(&mut info, *id, value);
        }
        push_pair(&mut info, AV_FLAGS, &av_flags.to_le_bytes());
        push_pair(&mut info, AV_CHANNEL_BINDINGS, &self.binding_hash);
        push_pair(&mut info, AV_TARGET_NAME, &utf16le(&self.spn));
        push_pair(&mut info, AV_EOL, &[]);

        let time: [u8; 8] = match timestamp {
            Some(t) => t
                .try_into()
                .map_err(|_| failed("a malformed timestamp in the CHALLENGE"))?,
            None => now.unwrap_or_else(filetime_now).to_le_bytes(),
        };
        let mut blob = Vec::with_capacity(32 + info.len());
        blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        blob.extend_from_slice(&time);
        blob.extend_from_slice(&client_challenge);
        blob.extend_from_slice(&[0; 4]);
        blob.extend_from_slice(&info);
        blob.extend_from_slice(&[0; 4]);
        let proof = hmac_md5(&self.key, &[&server_challenge, &blob]);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&blob);
        // With a server timestamp the MIC protects the exchange and the LMv2 response is
        // zeros (§3.1.5.1.2).
        let lm_response = if timestamp.is_some() {
            vec![0; 24]
        } else {
            let mut lm = hmac_md5(&self.key, &[&server_challenge, &client_challenge]).to_vec();
            lm.extend_from_slice(&client_challenge);
            lm
        };
        // No key exchange: the exported session key is the session base key.
        let session_key = hmac_md5(&self.key, &[&proof]);

        let flags = offered & SUPPORTED;
        let domain = utf16le(&self.domain);
        let user = utf16le(&self.user);
        let mut m = Vec::with_capacity(
            PAYLOAD_AT + domain.len() + user.len() + lm_response.len() + nt_response.len(),
        );
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        let mut at = PAYLOAD_AT;
        let mut fields = Vec::new();
        // The header's field order (LM, NT, domain, user, workstation, session key)
        // differs from the payload's (domain, user, workstation, LM, NT).
        let mut place = |len: usize| {
            let offset = at;
            at += len;
            (len, offset)
        };
        let domain_at = place(domain.len());
        let user_at = place(user.len());
        let workstation_at = place(0);
        let lm_at = place(lm_response.len());
        let nt_at = place(nt_response.len());
        let key_at = place(0);
        for (len, offset) in [lm_at, nt_at, domain_at, user_at, workstation_at, key_at] {
            let len = u16::try_from(len).map_err(|_| failed("a field is too long"))?;
            let offset = u32::try_from(offset).map_err(|_| failed("a field is too long"))?;
            fields.extend_from_slice(&len.to_le_bytes());
            fields.extend_from_slice(&len.to_le_bytes());
            fields.extend_from_slice(&offset.to_le_bytes());
        }
        m.extend_from_slice(&fields);
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&OUR_VERSION);
        m.extend_from_slice(&[0; 16]);
        m.extend_from_slice(&domain);
        m.extend_from_slice(&user);
        m.extend_from_slice(&lm_response);
        m.extend_from_slice(&nt_response);
        let mic = hmac_md5(&session_key, &[&self.negotiate, challenge, &m]);
        m[MIC_AT..PAYLOAD_AT].copy_from_slice(&mic);
        Ok(m)
    }
}

/// The NEGOTIATE: flags, empty domain and workstation, the version.
fn negotiate() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&ASKED.to_le_bytes());
    for _ in 0..2 {
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&40u32.to_le_bytes());
    }
    m.extend_from_slice(&OUR_VERSION);
    m
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

/// The AV pairs of a target information, up to its `MsvAvEOL` (which must be there).
fn av_pairs(mut b: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut pairs = Vec::new();
    loop {
        let id = u16_at(b, 0)?;
        let len = usize::from(u16_at(b, 2)?);
        let value = b.get(4..4 + len)?;
        if id == AV_EOL {
            return Some(pairs);
        }
        pairs.push((id, value));
        b = &b[4 + len..];
    }
}

fn push_pair(info: &mut Vec<u8>, id: u16, value: &[u8]) {
    info.extend_from_slice(&id.to_le_bytes());
    // Every value here is far under 64 KiB: the server's came in a 16-bit length.
    info.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
    info.extend_from_slice(value);
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
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

/// `MsvAvChannelBindings`: MD5 over the `gss_channel_bindings_struct` with no addresses
/// and `token` as its application data (MS-NLMP §2.2.2.1, RFC 2744 §3.11).
fn channel_binding_hash(token: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update([0u8; 16]);
    md5.update(u32::try_from(token.len()).unwrap_or(u32::MAX).to_le_bytes());
    md5.update(token);
    md5.finalize().into()
}

/// Now as a FILETIME: 100 ns since 1601.
fn filetime_now() -> u64 {
    let now = jiff::Timestamp::now();
    let seconds = u64::try_from(now.as_second() + 11_644_473_600).unwrap_or(0);
    seconds * 10_000_000 + u64::from(now.subsec_nanosecond().unsigned_abs()) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// MS-NLMP §4.2.4's CHALLENGE: server challenge 0123456789abcdef, the flags of
    /// §4.2.4 and the target information `Domain`/`Server`, no timestamp.
    fn spec_challenge(flags: u32) -> Vec<u8> {
        let mut info = Vec::new();
        push_pair(&mut info, 2, &utf16le("Domain"));
        push_pair(&mut info, 1, &utf16le("Server"));
        push_pair(&mut info, AV_EOL, &[]);
        let target = utf16le("Server");
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&2u32.to_le_bytes());
        let info_at = 56 + target.len() as u32;
        m.extend_from_slice(&(target.len() as u16).to_le_bytes());
        m.extend_from_slice(&(target.len() as u16).to_le_bytes());
        m.extend_from_slice(&56u32.to_le_bytes());
        m.extend_from_slice(&flags.to_le_bytes());
        m.extend_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&(info.len() as u16).to_le_bytes());
        m.extend_from_slice(&info_at.to_le_bytes());
        m.extend_from_slice(&[6, 0, 0x70, 0x17, 0, 0, 0, 0x0f]);
        m.extend_from_slice(&target);
        m.extend_from_slice(&info);
        m
    }

    #[test]
    fn the_keys_and_lmv2_response_match_ms_nlmp_test_vectors() {
        // §4.2.4.1.1 NTOWFv2 and §4.2.4.2.1 LMv2 for user "User", domain "Domain",
        // password "Password", client challenge aa…aa.
        let h = Handshake::new("Domain\\User", "Password", None, "HTTP/server").expect("h");
        assert_eq!(hex(&h.key), "0c868a403bfd7a93a3001ef22ef02e3f");
        let flags = 0xe28a_8233;
        let m = h
            .authenticate_with(&spec_challenge(flags), [0xaa; 8], Some(0))
            .expect("authenticate");
        assert_eq!(
            hex(field(&m, 12).expect("lm")),
            "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"
        );
        let nt = field(&m, 20).expect("nt");
        // The blob begins as the spec's; its AV pairs add ours, so NTProofStr differs.
        assert_eq!(
            hex(&nt[16..44]),
            concat!(
                "0101000000000000",
                "0000000000000000",
                "aaaaaaaaaaaaaaaa",
                "00000000"
            )
        );
        assert_eq!(hex(field(&m, 28).expect("domain")), hex(&utf16le("Domain")));
        assert_eq!(hex(field(&m, 36).expect("user")), hex(&utf16le("User")));
    }

    #[test]
    fn ntproofstr_and_session_key_match_ms_nlmp_over_the_specs_blob() {
        // §4.2.4.2.2: the blob over the spec's target information alone.
        let h = Handshake::new("Domain\\User", "Password", None, "HTTP/server").expect("h");
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&[0; 8]);
        blob.extend_from_slice(&[0xaa; 8]);
        blob.extend_from_slice(&[0; 4]);
        push_pair(&mut blob, 2, &utf16le("Domain"));
        push_pair(&mut blob, 1, &utf16le("Server"));
        push_pair(&mut blob, AV_EOL, &[]);
        blob.extend_from_slice(&[0; 4]);
        let proof = hmac_md5(
            &h.key,
            &[&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef], &blob],
        );
        assert_eq!(hex(&proof), "68cd0ab851e51c96aabc927bebef6a1c");
        assert_eq!(
            hex(&hmac_md5(&h.key, &[&proof])),
            "8de40ccadbc14a82f15cb0ad0de95ca3"
        );
    }

    #[test]
    fn the_authenticate_carries_the_challenges_supported_flags_the_spn_and_a_valid_mic() {
        let token = b"tls-server-end-point:0123456789abcdef0123456789abcdef";
        let h =
            Handshake::new("CORP\\svc", "pw", Some(token), "HTTP/mail.corp.example").expect("h");
        // The CHALLENGE offers signing, key exchange and a target type besides what
        // this client supports; none of those may come back.
        let offered = 0xe28a_8235 | 0x4000_0000;
        let challenge = spec_challenge(offered);
        let m = h.authenticate(&challenge).expect("authenticate");
        let flags = u32_at(&m, 60).expect("flags");
        assert_eq!(flags & !offered, 0, "{flags:#x} only what was offered");
        assert_eq!(flags & (0x1000 | 0x10 | 0x4000_0000 | 0x2), 0, "{flags:#x}");
        assert_ne!(flags & UNICODE, 0);

        let nt = field(&m, 20).expect("nt");
        let pairs = av_pairs(&nt[44..]).expect("pairs");
        let pair = |id| pairs.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
        assert_eq!(
            pair(AV_TARGET_NAME),
            Some(&utf16le("HTTP/mail.corp.example")[..])
        );
        assert_eq!(
            pair(AV_CHANNEL_BINDINGS),
            Some(&channel_binding_hash(token)[..])
        );
        assert_eq!(pair(AV_FLAGS), Some(&AV_FLAG_MIC.to_le_bytes()[..]));

        // The MIC: HMAC-MD5 under the session base key over the three messages, the
        // AUTHENTICATE's MIC zeroed.
        let proof = &nt[..16];
        let key = hmac_md5(&h.key, &[proof]);
        let mut zeroed = m.clone();
        zeroed[MIC_AT..PAYLOAD_AT].fill(0);
        assert_eq!(
            hmac_md5(&key, &[h.negotiate(), &challenge, &zeroed]),
            m[MIC_AT..PAYLOAD_AT]
        );
    }

    #[test]
    fn broken_challenges_are_refused_not_panicked_on() {
        let h = Handshake::new("svc@corp.example", "pw", None, "HTTP/x").expect("h");
        assert_eq!(h.user, "svc@corp.example");
        assert_eq!(h.domain, "");
        let good = spec_challenge(0xe28a_8235);
        assert!(h.authenticate(&good).is_ok());
        for n in 0..good.len() {
            assert!(h.authenticate(&good[..n]).is_err(), "cut at {n}");
        }
        let mut no_unicode = good.clone();
        no_unicode[20] &= !1;
        assert!(h.authenticate(&no_unicode).is_err());
        assert!(h.authenticate(&[0xff; 80]).is_err());
        assert!(Handshake::new("CORP\\", "pw", None, "HTTP/x").is_err());
    }
}
