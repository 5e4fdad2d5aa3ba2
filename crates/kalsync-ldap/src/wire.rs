//! The connection to an LDAP server: TCP where the outbound policy allows, StartTLS or
//! LDAPS with the company's CA, and a relay that hands `ldap3` the server's messages one
//! whole message at a time, within limits.
//!
//! Written by hand because `ldap3` bounds nothing a server sends (one message may be as
//! large as its length field says, and is parsed again on every read until complete) and
//! panics on some malformed messages; its BER parser recurses once per nesting level, so
//! a deep enough message overflows the stack and aborts the whole process. The relay
//! sits between the TLS stream and `ldap3` (over a socket pair); it frames each message
//! by its BER header and walks it without recursion before handing it on, refusing one
//! larger than [`MAX_MESSAGE`], nested deeper than [`MAX_DEPTH`] or with more than
//! [`MAX_ELEMENTS`] parts, and a read larger than the caller's byte budget; then it
//! closes the connection — `ldap3` fails its operation, and the reader says why.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kalsync_directory::{DirectoryError, LdapServer};
use kalsync_outbound::OutboundPolicy;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The largest single message a server may send (an entry with the few attributes a
/// read asks for is a few hundred bytes).
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;
/// The deepest nesting of one message (a search entry is five levels deep).
pub(crate) const MAX_DEPTH: usize = 12;
/// The most BER elements in one message.
pub(crate) const MAX_ELEMENTS: usize = 20_000;

/// Why the relay closed the connection, when it was the relay.
#[derive(Clone, Default)]
pub(crate) struct Closed(Arc<Mutex<Option<String>>>);

impl Closed {
    fn set(&self, why: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(why);
    }

    /// The reason, once the relay closed the connection for one.
    pub(crate) fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The TLS settings for a server: the public CAs and the company's own.
pub(crate) fn tls_config(ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca {
        let certs = pem::parse_many(pem)
            .map_err(|e| DirectoryError::Certificate(format!("the CA certificates: {e}")))?;
        let mut added = 0;
        for cert in certs.iter().filter(|c| c.tag() == "CERTIFICATE") {
            roots
                .add(rustls::pki_types::CertificateDer::from(
                    cert.contents().to_vec(),
                ))
                .map_err(|e| DirectoryError::Certificate(format!("a CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(DirectoryError::Certificate(
                "the CA field holds no certificate".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::Certificate(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a connection to `server` and returns the stream `ldap3` speaks over (one end
/// of a socket pair), with the relay running until either side closes, the budget of
/// `max_bytes` from the server is spent, or nothing moves for `idle`.
pub(crate) async fn open(
    server: &LdapServer,
    outbound: &OutboundPolicy,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_bytes: u64,
) -> Result<(std::os::unix::net::UnixStream, Closed), DirectoryError> {
    let (host, port) = (server.host(), server.port());
    let unreachable = |e: String| DirectoryError::Unreachable(format!("{host}:{port}: {e}"));
    let mut tcp = tokio::time::timeout(timeout, outbound.connect(host, port))
        .await
        .map_err(|_| unreachable("no connection within the time allowed".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    if server.starttls() {
        tokio::time::timeout(timeout, starttls(&mut tcp))
            .await
            .map_err(|_| unreachable("no answer to StartTLS".into()))??;
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| unreachable(e.to_string()))?;
    let tls = tokio::time::timeout(
        timeout,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| unreachable("no TLS handshake within the time allowed".into()))?
    .map_err(
        |e| match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(c)) => {
                DirectoryError::Certificate(format!("{host}: {c:?}"))
            }
            _ => unreachable(format!("TLS: {e}")),
        },
    )?;
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| unreachable(e.to_string()))?;
    ours.set_nonblocking(true)
        .map_err(|e| unreachable(e.to_string()))?;
    let ours = tokio::net::UnixStream::from_std(ours).map_err(|e| unreachable(e.to_string()))?;
    let closed = Closed::default();
    tokio::spawn(relay(tls, ours, closed.clone(), timeout, max_bytes));
    Ok((theirs, closed))
}

/// The StartTLS extended request (RFC 4511 §4.14), message 1.
const STARTTLS: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

/// Asks for StartTLS on a plain connection and reads the answer; anything but success
/// ends here (there is no unencrypted fallback).
async fn starttls(tcp: &mut tokio::net::TcpStream) -> Result<(), DirectoryError> {
    let refused = |why: &str| DirectoryError::Protocol(format!("StartTLS: {why}"));
    tcp.write_all(STARTTLS)
        .await
        .map_err(|e| DirectoryError::Unreachable(e.to_string()))?;
    let mut buf = Vec::new();
    let total = loop {
        if let Some(n) = frame(&buf, 64 * 1024).map_err(|e| refused(&e))? {
            if buf.len() >= n {
                break n;
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| DirectoryError::Unreachable(e.to_string()))?;
        if read == 0 {
            return Err(refused("the server closed the connection"));
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    if buf.len() > total {
        return Err(refused("the server spoke before TLS began"));
    }
    match extended_result(&buf[..total]) {
        Some(0) => Ok(()),
        Some(code) => Err(refused(&format!(
            "the server refused it (result {code}); turn on LDAPS or StartTLS on the server"
        ))),
        None => Err(refused("an answer that is not an extended response")),
    }
}

/// The result code of an `ExtendedResponse` to message 1.
fn extended_result(message: &[u8]) -> Option<u8> {
    // SEQUENCE { INTEGER 1, [APPLICATION 24] { ENUMERATED code, … } }
    let (_, body) = element(message, 0x30)?;
    let (rest, id) = element(body, 0x02)?;
    if id != [1] {
        return None;
    }
    let (_, response) = element(rest, 0x78)?;
    let (_, code) = element(response, 0x0a)?;
    match code {
        [c] => Some(*c),
        _ => None,
    }
}

/// One BER element with `tag` at the start of `data`: what follows it, and its content.
fn element(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if data.first() != Some(&tag) {
        return None;
    }
    let (header, len) = length(&data[1..])?;
    let start = 1 + header;
    let end = start.checked_add(len)?;
    Some((data.get(end..)?, data.get(start..end)?))
}

/// A BER length at the start of `data`: the bytes it takes and its value (definite
/// lengths of at most four bytes only).
fn length(data: &[u8]) -> Option<(usize, usize)> {
    let first = *data.first()?;
    if first < 0x80 {
        return Some((1, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || data.len() < 1 + n {
        return None;
    }
    let value = data[1..=n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((1 + n, value))
}

/// The whole length of the LDAP message at the start of `buf`, once its header is there;
/// an error for what is not an LDAP message or is larger than `max`.
fn frame(buf: &[u8], max: usize) -> Result<Option<usize>, String> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    if tag != 0x30 {
        return Err(format!("not an LDAP message (tag {tag:#04x})"));
    }
    match buf.get(1) {
        None => Ok(None),
        Some(&0x80) => Err("an LDAP message of indefinite length".into()),
        Some(&b) if b > 0x84 => Err("an LDAP message with an impossible length".into()),
        Some(&b) if b > 0x80 && buf.len() < 2 + usize::from(b & 0x7f) => Ok(None),
        Some(_) => {
            let (header, len) = length(&buf[1..]).ok_or("an unreadable length")?;
            // The smallest message: an id and an operation (`ldap3` panics on less).
            if len < 5 {
                return Err("an LDAP message too short to be one".into());
            }
            let total = 1 + header + len;
            if total > max {
                return Err(format!(
                    "an LDAP message of {} KiB (at most {} KiB)",
                    total / 1024,
                    max / 1024
                ));
            }
            Ok(Some(total))
        }
    }
}

/// Walks one whole message's BER elements without recursion: every length within its
/// parent, single-byte tags, definite lengths, at most [`MAX_DEPTH`] levels and
/// [`MAX_ELEMENTS`] elements.
fn walk(message: &[u8]) -> Result<(), String> {
    let mut ends: Vec<usize> = vec![message.len()];
    let mut pos = 0;
    let mut elements = 0;
    while pos < message.len() {
        while ends.last().is_some_and(|end| pos == *end) {
            ends.pop();
        }
        let parent = *ends
            .last()
            .ok_or("an LDAP message with bytes after its end")?;
        let tag = message[pos];
        if tag & 0x1f == 0x1f {
            return Err("an LDAP message with a long-form tag".into());
        }
        let (header, len) = length(message.get(pos + 1..parent).unwrap_or_default())
            .ok_or("an LDAP message with an unreadable length")?;
        let start = pos + 1 + header;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= parent)
            .ok_or("an LDAP message with a part longer than what holds it")?;
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(format!("an LDAP message of more than {MAX_ELEMENTS} parts"));
        }
        if tag & 0x20 != 0 {
            if ends.len() > MAX_DEPTH {
                return Err(format!(
                    "an LDAP message nested deeper than {MAX_DEPTH} levels"
                ));
            }
            ends.push(end);
            pos = start;
        } else {
            pos = end;
        }
    }
    Ok(())
}

/// Moves bytes both ways: what `ldap3` sends goes out as it is; what the server sends
/// comes in whole messages, within the limits.
async fn relay<S>(
    server: S,
    client: tokio::net::UnixStream,
    closed: Closed,
    idle: Duration,
    max_bytes: u64,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut server_in, mut server_out) = tokio::io::split(server);
    let (mut client_in, mut client_out) = client.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // No idle limit this way: `ldap3` is quiet while a search streams in, and
            // closes its end when the read is done.
            let n = match client_in.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            if server_out.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut pending: Vec<u8> = Vec::with_capacity(16 * 1024);
        let mut total: u64 = 0;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            // Hand on every whole message there is.
            loop {
                match frame(&pending, MAX_MESSAGE) {
                    Err(why) => return closed.set(why),
                    Ok(Some(n)) if pending.len() >= n => {
                        if let Err(why) = walk(&pending[..n]) {
                            return closed.set(why);
                        }
                        if client_out.write_all(&pending[..n]).await.is_err() {
                            return;
                        }
                        pending.drain(..n);
                    }
                    Ok(_) => break,
                }
            }
            let n = match tokio::time::timeout(idle, server_in.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => n,
                Ok(_) => return,
                Err(_) => {
                    return closed.set(format!("the server sent nothing for {} s", idle.as_secs()));
                }
            };
            total += n as u64;
            if total > max_bytes {
                return closed.set(format!(
                    "the server sent more than {} MB in one read",
                    max_bytes / 1_000_000
                ));
            }
            pending.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_by_their_header_and_bounded() {
        // A bind response: SEQUENCE(12) { INTEGER 1, [APPLICATION 1] { 0, "", "" } }.
        let bind = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(frame(bind, 1024), Ok(Some(14)));
        assert_eq!(frame(&bind[..1], 1024), Ok(None));
        assert_eq!(frame(b"\x30\x84\x00", 1024), Ok(None));
        assert_eq!(frame(b"\x30\x82\x01\x00", 1024), Ok(Some(260)));
        assert!(
            frame(b"\x30\x84\x7f\xff\xff\xff", MAX_MESSAGE)
                .expect_err("too large")
                .contains("at most")
        );
        assert!(frame(b"\x30\x80", 1024).is_err(), "indefinite length");
        assert!(frame(b"\x30\x00", 1024).is_err(), "an empty message");
        assert!(frame(b"HTTP/1.1", 1024).is_err(), "not LDAP");
    }

    /// Runs the relay against a server that sends `sent`; what reached `ldap3`, and
    /// why the relay closed.
    async fn relayed(sent: Vec<u8>, max_bytes: u64) -> (Vec<u8>, Option<String>) {
        let (server, mut far) = tokio::io::duplex(1024 * 1024);
        let (ours, theirs) = tokio::net::UnixStream::pair().expect("pair");
        let closed = Closed::default();
        let task = tokio::spawn(relay(
            server,
            ours,
            closed.clone(),
            Duration::from_secs(5),
            max_bytes,
        ));
        let writer = tokio::spawn(async move {
            let _ = far.write_all(&sent).await;
            // Held open: the relay, not the end of the stream, must stop it.
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(far);
        });
        let mut got = Vec::new();
        let mut theirs = theirs;
        let _ = tokio::time::timeout(Duration::from_secs(10), theirs.read_to_end(&mut got)).await;
        let _ = task.await;
        writer.abort();
        (got, closed.reason())
    }

    #[tokio::test]
    async fn a_hostile_server_is_cut_off_not_buffered() {
        let bind = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00".to_vec();
        // A whole message passes; one that says it is 2 GiB is refused at its header.
        let mut huge = bind.clone();
        huge.extend_from_slice(b"\x30\x84\x7f\xff\xff\xff\x02\x01\x02");
        let (got, why) = relayed(huge, MAX_READ).await;
        assert_eq!(got, bind, "only the whole first message");
        assert!(why.is_some_and(|w| w.contains("at most")));
        // A message nested deeper than anything LDAP sends (the library's parser would
        // recurse once a level) is not handed on.
        let mut deep = b"\x04\x00".to_vec();
        for _ in 0..40 {
            let mut outer = vec![0x30, 0x82];
            outer.extend_from_slice(&(deep.len() as u16).to_be_bytes());
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        let mut sent = bind.clone();
        sent.extend_from_slice(&deep);
        let (got, why) = relayed(sent, MAX_READ).await;
        assert_eq!(got, bind);
        assert!(why.is_some_and(|w| w.contains("deeper")));
        // Many small messages past the read's budget.
        let many: Vec<u8> = bind
            .iter()
            .copied()
            .cycle()
            .take(bind.len() * 1000)
            .collect();
        let (got, why) = relayed(many, 5_000).await;
        assert!(got.len() <= 5_000 + 64 * 1024, "{}", got.len());
        assert!(why.is_some_and(|w| w.contains("more than")));
        // Not LDAP at all.
        let (got, why) = relayed(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(), MAX_READ).await;
        assert!(got.is_empty());
        assert!(why.is_some_and(|w| w.contains("not an LDAP message")));
    }

    const MAX_READ: u64 = 1 << 30;

    #[test]
    fn a_message_is_walked_without_recursion_and_bounded() {
        let bind = b"\x30\x0c\x02\x01\x01\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(walk(bind), Ok(()));
        // A search entry: SEQ { id, [APP 4] { dn, SEQ { SEQ { type, SET { value } } } } }.
        let entry = b"\x30\x1a\x02\x01\x02\x64\x15\x04\x03cn=\x30\x0e\x30\x0c\x04\x02cn\x31\x06\x04\x04Anna";
        assert_eq!(walk(entry), Ok(()));
        // 200,000 levels deep (what overflowed the library's recursive parser).
        let mut deep = Vec::new();
        for _ in 0..200_000 {
            deep.extend_from_slice(b"\x30\x80");
        }
        assert!(walk(&deep).is_err());
        let mut nested = b"\x04\x00".to_vec();
        for _ in 0..20 {
            let mut outer = vec![0x30, 0x81, nested.len() as u8];
            if nested.len() > 255 {
                break;
            }
            outer.extend_from_slice(&nested);
            nested = outer;
        }
        assert!(walk(&nested).expect_err("too deep").contains("deeper"));
        // A part that claims more than its parent holds.
        assert!(walk(b"\x30\x05\x04\x09abcd").is_err());
        // Too many parts.
        let many: Vec<u8> = std::iter::repeat_n([0x04u8, 0x00], MAX_ELEMENTS + 1)
            .flatten()
            .collect();
        let mut msg = vec![0x30, 0x83];
        msg.extend_from_slice(&(many.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&many);
        assert!(walk(&msg).expect_err("too many").contains("parts"));
    }

    #[test]
    fn the_starttls_request_and_answer_are_read() {
        assert_eq!(STARTTLS.len(), 2 + 0x1d);
        assert_eq!(extended_result(STARTTLS), None, "a request, not a response");
        // ExtendedResponse { resultCode success, matchedDN "", diagnosticMessage "" }
        let ok = b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00";
        assert_eq!(extended_result(ok), Some(0));
        let refused = b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x02\x04\x00\x04\x00";
        assert_eq!(extended_result(refused), Some(2));
        assert_eq!(extended_result(&ok[..8]), None, "cut short");
    }
}
