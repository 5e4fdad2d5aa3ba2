//! SIP messages on the wire (RFC 3261 §7): a request written out, a message read in.
//!
//! Written by hand: the target needs one request kind and the status, headers and body
//! of the answers; the SIP crates on crates.io are either whole stacks or no longer kept
//! up, and the framing is a start line, `Name: value` lines and a `Content-Length` body.

use std::fmt::Write as _;

/// The longest datagram accepted.
pub const MAX_MESSAGE: usize = 65_507;

/// The longest head (start line and headers) read from a stream.
pub const MAX_HEAD: usize = 16 * 1024;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// `PUBLISH`, `SUBSCRIBE`, `OPTIONS`.
    pub method: String,
    /// The Request-URI.
    pub uri: String,
    /// Headers in order (Content-Length is added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The `branch` parameter of a Via header's value.
fn branch_of(via: &str) -> Option<&str> {
    via.split(';')
        .find_map(|p| p.trim().strip_prefix("branch="))
}

impl Request {
    /// The `branch` of its top Via: what its answers are matched by.
    pub fn branch(&self) -> &str {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Via"))
            .and_then(|(_, via)| branch_of(via))
            .unwrap_or_default()
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} SIP/2.0\r\n", self.method, self.uri);
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A message read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// For a response, its status code; `None` for a request.
    pub status: Option<u16>,
    /// The start line.
    pub start: String,
    /// Headers in order, compact names expanded.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a datagram is not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SIP message: {0}")]
pub struct ParseError(String);

/// RFC 3261 §7.3.3 compact header names.
fn expand(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "o" | "O" => "Event",
        _ => name,
    }
}

impl Message {
    /// Reads one datagram.
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        let split = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| ParseError("no end of headers".into()))?;
        let head = std::str::from_utf8(&data[..split])
            .map_err(|_| ParseError("headers are not UTF-8".into()))?;
        let rest = &data[split + 4..];
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let status = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
            let code = rest.get(..3).unwrap_or_default();
            Some(
                code.parse::<u16>()
                    .map_err(|_| ParseError(format!("bad status line `{start}`")))?,
            )
        } else if start.ends_with(" SIP/2.0") {
            None
        } else {
            return Err(ParseError(format!("bad start line `{start}`")));
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded line continues the previous header.
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError(format!("bad header line `{line}`")))?;
            headers.push((expand(name.trim()).to_owned(), value.trim().to_owned()));
        }
        let mut message = Message {
            status,
            start,
            headers,
            body: Vec::new(),
        };
        let length = match message.header("Content-Length") {
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| ParseError(format!("bad Content-Length `{l}`")))?,
            None => rest.len(),
        };
        message.body = rest
            .get(..length)
            .ok_or_else(|| ParseError("the body is shorter than Content-Length".into()))?
            .to_vec();
        Ok(message)
    }

    /// One message from the front of a stream (TCP, TLS), framed by its
    /// `Content-Length` (RFC 3261 §18.3, where it is mandatory): the message and the
    /// bytes it took, `Ok(None)` while more bytes are needed. CRLFs before a message are
    /// keep-alives (RFC 5626 §3.5.1) and are taken. A head past [`MAX_HEAD`] or a body
    /// past [`MAX_MESSAGE`] is an error: the stream is not read further.
    pub fn frame(data: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
        let skipped = data
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let data = &data[skipped..];
        let Some(split) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            if data.len() > MAX_HEAD {
                return Err(ParseError(format!("headers longer than {MAX_HEAD} bytes")));
            }
            return Ok(None);
        };
        if split > MAX_HEAD {
            return Err(ParseError(format!("headers longer than {MAX_HEAD} bytes")));
        }
        let head = std::str::from_utf8(&data[..split])
            .map_err(|_| ParseError("headers are not UTF-8".into()))?;
        let length = head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| expand(name.trim()).eq_ignore_ascii_case("Content-Length"))
            .ok_or_else(|| ParseError("no Content-Length on a stream".into()))?
            .1
            .trim()
            .parse::<usize>()
            .map_err(|_| ParseError("bad Content-Length".into()))?;
        if length > MAX_MESSAGE {
            return Err(ParseError(format!("a body of {length} bytes")));
        }
        let end = split + 4 + length;
        if data.len() < end {
            return Ok(None);
        }
        Ok(Some((Message::parse(&data[..end])?, skipped + end)))
    }

    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        self.status
            .is_none()
            .then(|| self.start.split(' ').next().unwrap_or_default())
    }

    /// The `branch` of the top Via.
    pub fn branch(&self) -> Option<&str> {
        branch_of(self.header("Via")?)
    }

    /// A response to this request with the same Via, From, To, Call-ID and CSeq.
    pub fn reply(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for (name, value) in &self.headers {
            let copy = ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name));
            if copy {
                let _ = write!(out, "{name}: {value}\r\n");
            } else if name.eq_ignore_ascii_case("To") {
                match to_tag {
                    Some(tag) if !value.contains(";tag=") => {
                        let _ = write!(out, "To: {value};tag={tag}\r\n");
                    }
                    _ => {
                        let _ = write!(out, "To: {value}\r\n");
                    }
                }
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out.into_bytes()
    }
}

/// A fresh RFC 3261 branch, tag or Call-ID part.
pub fn token() -> String {
    use rand::Rng as _;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_response_with_compact_and_folded_headers() {
        let raw = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc\r\nSIP-ETag: a.1\r\nWWW-Authenticate: Digest realm=\"x\",\r\n nonce=\"n\"\r\nl: 4\r\n\r\nbodyEXTRA";
        let m = Message::parse(raw).expect("parse");
        assert_eq!(m.status, Some(200));
        assert_eq!(m.branch(), Some("z9hG4bKabc"));
        assert_eq!(m.header("sip-etag"), Some("a.1"));
        assert_eq!(
            m.header("WWW-Authenticate"),
            Some("Digest realm=\"x\", nonce=\"n\"")
        );
        assert_eq!(m.body, b"body");
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for raw in [
            &b"hello"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"SIP/2.0 2x0 OK\r\n\r\n",
            b"SIP/2.0 200 OK\r\nbroken\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: 9\r\n\r\nshort",
        ] {
            assert!(Message::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn a_stream_is_framed_by_content_length() {
        let one = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(one);
        stream.extend_from_slice(b"SIP/2.0 202");
        let (m, used) = Message::frame(&stream).expect("frame").expect("whole");
        assert_eq!((m.status, m.body.as_slice()), (Some(200), &b"body"[..]));
        assert_eq!(used, 4 + one.len());
        assert_eq!(Message::frame(&stream[used..]).expect("partial"), None);
        assert_eq!(
            Message::frame(&one[..one.len() - 1]).expect("partial"),
            None
        );
        // No length, a hostile length, endless headers: the stream is given up.
        assert!(Message::frame(b"SIP/2.0 200 OK\r\n\r\n").is_err());
        assert!(Message::frame(b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n").is_err());
        assert!(Message::frame(&vec![b'a'; MAX_HEAD + 1]).is_err());
    }

    #[test]
    fn a_request_round_trips() {
        let r = Request {
            method: "PUBLISH".into(),
            uri: "sip:1001@kalsync.test".into(),
            headers: vec![(
                "Via".into(),
                "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1".into(),
            )],
            body: b"<x/>".to_vec(),
        };
        let m = Message::parse(&r.to_bytes()).expect("parse");
        assert_eq!(m.method(), Some("PUBLISH"));
        assert_eq!(m.body, b"<x/>");
        let reply = Message::parse(&m.reply(200, "OK", Some("t"))).expect("reply");
        assert_eq!(reply.status, Some(200));
        assert_eq!(reply.branch(), Some("z9hG4bK1"));
    }
}
