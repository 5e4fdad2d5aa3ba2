//! Error texts as the people of a company see them (SPEC §6, `docs/THREAT_MODEL.md`
//! T5): what failed — cannot connect, TLS, refused credentials, throttled — without the
//! host names, addresses and ports an error from the network carries, and without long
//! fragments of someone else's answer. The full text goes to the log.

/// The most characters of an error text shown.
pub const SHOWN_CHARS: usize = 240;

/// An error from a source or a target as the company sees it: [`without_addresses`],
/// cut to [`SHOWN_CHARS`] (the rest of someone else's answer is for the log).
pub fn shown_error(text: &str) -> String {
    let out = without_addresses(text);
    if out.chars().count() > SHOWN_CHARS {
        let cut: String = out.chars().take(SHOWN_CHARS).collect();
        return format!("{cut}…");
    }
    out
}

/// `text` with every URL, IP address and `host:port` replaced by `(address)`.
pub fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            out.push_str(&redact_word(word));
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One word: an address becomes `(address)`, keeping the punctuation around it.
fn redact_word(word: &str) -> String {
    const AROUND: &[char] = &['(', ')', '<', '>', '"', '\'', '`', ',', ';'];
    let core = word
        .trim_start_matches(|c| AROUND.contains(&c))
        .trim_end_matches(|c| AROUND.contains(&c) || c == '.' || c == ':');
    if core.is_empty() || !is_address(core) {
        return word.to_owned();
    }
    word.replacen(core, "(address)", 1)
}

/// A URL, an IP address (with or without a port), or a `host:port`.
fn is_address(core: &str) -> bool {
    if core.contains("://") {
        return true;
    }
    if core
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
        || core.parse::<std::net::SocketAddr>().is_ok()
    {
        return true;
    }
    // `mail.corp.example:443`, `localhost:8080`
    if let Some((host, port)) = core.rsplit_once(':') {
        let host_like = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            && (host.contains('.') || host.eq_ignore_ascii_case("localhost"));
        return host_like && !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_failed_stays_and_where_goes() {
        assert_eq!(
            without_addresses(
                "cannot reach Microsoft Graph: error sending request for url (http://10.0.0.5:8080/v1.0/users): connection refused"
            ),
            "cannot reach Microsoft Graph: error sending request for url ((address)): connection refused"
        );
        assert_eq!(
            without_addresses("127.0.0.1:443: connection timed out"),
            "(address): connection timed out"
        );
        assert_eq!(
            without_addresses("mail.corp.example:443: certificate not trusted"),
            "(address): certificate not trusted"
        );
        assert_eq!(
            without_addresses("ami [fd00::1]:5038: refused"),
            "ami (address): refused"
        );
        assert_eq!(
            without_addresses("throttled: retry after 20 s"),
            "throttled: retry after 20 s"
        );
        assert_eq!(
            without_addresses("the e-mail anna@acme.example has no mailbox; 12:00 lunch"),
            "the e-mail anna@acme.example has no mailbox; 12:00 lunch"
        );
        let long = "x".repeat(1000);
        assert_eq!(without_addresses(&long).chars().count(), 1000);
        assert_eq!(shown_error(&long).chars().count(), SHOWN_CHARS + 1);
    }
}
