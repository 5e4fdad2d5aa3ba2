//! The client's address: the peer's, or the one trusted reverse proxies name in
//! `Forwarded` / `X-Forwarded-For`.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::WebState;

/// The client's address, when the server knows it (rate limiting): the peer's, or the
/// one a trusted reverse proxy names ([`client_address`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub Option<IpAddr>);

impl FromRequestParts<WebState> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| client_address(c.0.ip(), &parts.headers, &state.trusted_proxies)),
        ))
    }
}

/// Who sent a request: `peer` itself unless it is a trusted proxy; then, reading the
/// proxies' `Forwarded` (RFC 7239) or else `X-Forwarded-For` from the nearest hop back,
/// the first address that is not a trusted proxy. A client cannot pose as another by
/// writing the header itself: only what trusted proxies appended is believed.
pub fn client_address(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect()
    };
    let mut hops: Vec<Option<IpAddr>> = values("forwarded")
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| forwarded_for(v))
            })
        })
        .collect();
    if hops.is_empty() {
        hops = values("x-forwarded-for")
            .iter()
            .map(|v| forwarded_for(v))
            .collect();
    }
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return *ip,
            // `unknown` or an obfuscated name: nothing further back can be believed.
            None => break,
        }
    }
    peer
}

/// An address as `Forwarded: for=` or `X-Forwarded-For` write it: `192.0.2.60`,
/// `"192.0.2.60:4711"`, `"[2001:db8::17]:4711"`, `2001:db8::17`.
fn forwarded_for(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':')?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, v.parse().expect("value"));
            }
            h
        };
        let proxy = IpAddr::from([10, 0, 0, 2]);
        let outsider = IpAddr::from([198, 51, 100, 9]);
        let client = IpAddr::from([192, 0, 2, 60]);
        // A client writing the header itself is still itself.
        assert_eq!(
            client_address(
                outsider,
                &headers(&[("x-forwarded-for", "192.0.2.60")]),
                &trusted
            ),
            outsider
        );
        // Behind the proxy: the nearest untrusted hop, not what the client prepended.
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("x-forwarded-for", "203.0.113.1, 192.0.2.60, 10.0.0.7")]),
                &trusted
            ),
            client
        );
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("forwarded", "for=\"[2001:db8::17]:4711\";proto=https")]),
                &trusted
            ),
            "2001:db8::17".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            client_address(
                proxy,
                &headers(&[("forwarded", "for=192.0.2.60:1234")]),
                &trusted
            ),
            client
        );
        assert_eq!(
            client_address(proxy, &headers(&[("forwarded", "for=unknown")]), &trusted),
            proxy
        );
        assert_eq!(client_address(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(
            client_address(proxy, &headers(&[("x-forwarded-for", "192.0.2.60")]), &[]),
            proxy,
            "no proxy trusted: headers are ignored"
        );
    }
}
