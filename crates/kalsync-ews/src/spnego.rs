//! SPNEGO (RFC 4178, MS-SPNG) as far as NTLM inside HTTP `Negotiate` needs it: reading
//! a `NegTokenInit` (in its RFC 2743 `0x60` wrapper) or a `NegTokenResp`, and writing a
//! `NegTokenResp`. Only the NTLM mechanism (1.3.6.1.4.1.311.2.2.10) is spoken; Kerberos
//! is not needed.
//!
//! The DER is read and written here by hand: `sspi`'s Negotiate package cannot be had
//! without its Kerberos client, and these are two small structures of optional,
//! context-tagged fields in which only lengths need care; the reader is bounded by the
//! token and never recurses more than three levels.

/// The NTLM mechanism's OID, 1.3.6.1.4.1.311.2.2.10, as its DER content.
pub const NTLM_MECH: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// SPNEGO's OID, 1.3.6.1.5.5.2, as its DER content.
const SPNEGO_MECH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

const OID: u8 = 0x06;
const OCTETS: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const SEQUENCE: u8 = 0x30;
/// `[APPLICATION 0]`: the GSS-API initial context token.
const INITIAL: u8 = 0x60;
const INIT: u8 = 0xa0;
const RESP: u8 = 0xa1;

/// `negState` of a `NegTokenResp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    /// `accept-completed`.
    AcceptCompleted,
    /// `accept-incomplete`: more tokens follow.
    AcceptIncomplete,
    /// `reject`.
    Reject,
    /// `request-mic`.
    RequestMic,
}

/// A SPNEGO token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiation {
    /// `NegTokenInit`: the initiator's first token.
    Init {
        /// The mechanisms offered, most preferred first (OIDs' DER content).
        mech_types: Vec<Vec<u8>>,
        /// The optimistic token of the first of them.
        mech_token: Option<Vec<u8>>,
    },
    /// `NegTokenResp`: every later token.
    Response {
        /// How the negotiation stands.
        state: Option<NegState>,
        /// The mechanism the acceptor chose (its first answer only).
        mech: Option<Vec<u8>>,
        /// The mechanism's token.
        token: Option<Vec<u8>>,
    },
}

/// Whether `token` looks like SPNEGO (rather than a raw NTLMSSP message): a
/// `NegTokenInit` in its wrapper, or a `NegTokenResp`.
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(&INITIAL | &RESP))
}

/// One DER element of `b`: its tag, its content and what follows it.
fn element(b: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, b) = b.split_first().ok_or("a truncated element")?;
    let (&first, b) = b.split_first().ok_or("a truncated length")?;
    let (len, b) = if first < 0x80 {
        (usize::from(first), b)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return Err("a length DER does not allow".into());
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        (len, &b[n..])
    };
    if b.len() < len {
        return Err("an element longer than the token".into());
    }
    Ok((tag, &b[..len], &b[len..]))
}

/// The elements of a constructed value's content.
fn elements(mut b: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    let mut found = Vec::new();
    while !b.is_empty() {
        let (tag, content, rest) = element(b)?;
        found.push((tag, content));
        b = rest;
    }
    Ok(found)
}

/// The content of the single element of `b`, which must have `tag`.
fn only(b: &[u8], tag: u8) -> Result<&[u8], String> {
    match element(b)? {
        (t, content, []) if t == tag => Ok(content),
        (t, _, []) => Err(format!("tag {t:#04x} where {tag:#04x} was expected")),
        _ => Err("bytes after an element".into()),
    }
}

/// Reads a SPNEGO token.
pub fn decode(token: &[u8]) -> Result<Negotiation, String> {
    let (tag, content, rest) = element(token)?;
    if !rest.is_empty() {
        return Err("bytes after the token".into());
    }
    match tag {
        INITIAL => {
            let (oid, mech, inner) = element(content)?;
            if oid != OID || mech != SPNEGO_MECH {
                return Err("not a SPNEGO token (another mechanism's OID)".into());
            }
            let body = only(only(inner, INIT)?, SEQUENCE)?;
            let mut mech_types = Vec::new();
            let mut mech_token = None;
            for (field, value) in elements(body)? {
                match field {
                    0xa0 => {
                        for (t, oid) in elements(only(value, SEQUENCE)?)? {
                            if t != OID {
                                return Err("a mechanism that is not an OID".into());
                            }
                            mech_types.push(oid.to_vec());
                        }
                    }
                    0xa2 => mech_token = Some(only(value, OCTETS)?.to_vec()),
                    // reqFlags, mechListMIC and Windows's negHints are not needed.
                    _ => {}
                }
            }
            Ok(Negotiation::Init {
                mech_types,
                mech_token,
            })
        }
        RESP => {
            let body = only(content, SEQUENCE)?;
            let mut state = None;
            let mut mech = None;
            let mut token = None;
            for (field, value) in elements(body)? {
                match field {
                    0xa0 => {
                        state = Some(match only(value, ENUMERATED)? {
                            [0] => NegState::AcceptCompleted,
                            [1] => NegState::AcceptIncomplete,
                            [2] => NegState::Reject,
                            [3] => NegState::RequestMic,
                            _ => return Err("an unknown negState".into()),
                        });
                    }
                    0xa1 => mech = Some(only(value, OID)?.to_vec()),
                    0xa2 => token = Some(only(value, OCTETS)?.to_vec()),
                    // mechListMIC: not checked (see `response`).
                    _ => {}
                }
            }
            Ok(Negotiation::Response { state, mech, token })
        }
        other => Err(format!("not a SPNEGO token (tag {other:#04x})")),
    }
}

/// Appends a DER element.
fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// A `NegTokenResp` with `state`, naming NTLM as the chosen mechanism when `ntlm_mech`,
/// carrying `token`. No `mechListMIC`: with NTLM as the initiator's only and preferred
/// mechanism, RFC 4178 §5 leaves the MIC exchange out.
pub fn response(state: Option<NegState>, ntlm_mech: bool, token: Option<&[u8]>) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(state) = state {
        let mut e = Vec::new();
        let value = match state {
            NegState::AcceptCompleted => 0,
            NegState::AcceptIncomplete => 1,
            NegState::Reject => 2,
            NegState::RequestMic => 3,
        };
        put(&mut e, ENUMERATED, &[value]);
        put(&mut fields, 0xa0, &e);
    }
    if ntlm_mech {
        let mut e = Vec::new();
        put(&mut e, OID, NTLM_MECH);
        put(&mut fields, 0xa1, &e);
    }
    if let Some(token) = token {
        let mut e = Vec::new();
        put(&mut e, OCTETS, token);
        put(&mut fields, 0xa2, &e);
    }
    let mut sequence = Vec::new();
    put(&mut sequence, SEQUENCE, &fields);
    let mut out = Vec::new();
    put(&mut out, RESP, &sequence);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `NegTokenInit` as a Windows client sends it for NTLM alone, assembled from
    /// RFC 4178 §4.2.1 byte by byte: wrapper, SPNEGO OID, [0] SEQUENCE { [0] mechTypes
    /// { NTLM }, [2] mechToken }.
    fn windows_init(token: &[u8]) -> Vec<u8> {
        // Short lengths only: the test tokens stay under 90 bytes.
        let t = token.len() as u8;
        let mut v = vec![0x60, 32 + t];
        v.extend_from_slice(&[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
        v.extend_from_slice(&[0xa0, 22 + t, 0x30, 20 + t]);
        v.extend_from_slice(&[0xa0, 0x0e, 0x30, 0x0c, 0x06, 0x0a]);
        v.extend_from_slice(NTLM_MECH);
        v.extend_from_slice(&[0xa2, 2 + t, 0x04, t]);
        v.extend_from_slice(token);
        v
    }

    #[test]
    fn a_windows_negtokeninit_is_read() {
        let ntlm = b"NTLMSSP\0\x01\0\0\0";
        let init = windows_init(ntlm);
        assert!(is_spnego(&init));
        assert_eq!(
            decode(&init),
            Ok(Negotiation::Init {
                mech_types: vec![NTLM_MECH.to_vec()],
                mech_token: Some(ntlm.to_vec()),
            })
        );
        assert!(!is_spnego(ntlm));
    }

    #[test]
    fn a_negtokenresp_is_written_as_rfc_4178_says_and_read_back() {
        let written = response(Some(NegState::AcceptIncomplete), true, Some(b"CH"));
        let mut expected = vec![0xa1, 0x1b, 0x30, 0x19];
        expected.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, 0x01]);
        expected.extend_from_slice(&[0xa1, 0x0c, 0x06, 0x0a]);
        expected.extend_from_slice(NTLM_MECH);
        expected.extend_from_slice(&[0xa2, 0x04, 0x04, 0x02, b'C', b'H']);
        assert_eq!(written, expected);
        assert_eq!(
            decode(&written),
            Ok(Negotiation::Response {
                state: Some(NegState::AcceptIncomplete),
                mech: Some(NTLM_MECH.to_vec()),
                token: Some(b"CH".to_vec()),
            })
        );
        // A long token takes a long-form length.
        let long = vec![7u8; 300];
        let written = response(None, false, Some(&long));
        assert_eq!(&written[..4], &[0xa1, 0x82, 0x01, 0x38]);
        assert_eq!(
            decode(&written),
            Ok(Negotiation::Response {
                state: None,
                mech: None,
                token: Some(long),
            })
        );
    }

    #[test]
    fn broken_tokens_are_refused_not_panicked_on() {
        let good = response(Some(NegState::AcceptIncomplete), true, Some(&[1; 200]));
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "cut at {n}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        for bad in [
            &[0xa1, 0x85, 0, 0, 0, 0, 1][..],
            &[0xa1, 0x80],
            &[0x60, 0x02, 0x06, 0x00],
            &[0xff; 8],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let mut kerberos = windows_init(b"x");
        kerberos[4] = 0x2a;
        assert!(decode(&kerberos).is_err(), "not SPNEGO's OID");
    }
}
