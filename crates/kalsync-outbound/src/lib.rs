//! Where the service may send requests (SPEC §6; `docs/THREAT_MODEL.md`, T5). Company
//! admins type the addresses of their sources and the service sends secrets there, so
//! every outbound client — Graph, Entra ID, EWS, webhooks, SIP, AMI — resolves and
//! checks its destination here: loopback, private, link-local, unique-local, multicast
//! and unspecified addresses (and IPv4 ones mapped into IPv6) are refused unless the
//! operator allows them, and HTTP redirects are never followed.
//!
//! The check is made on the addresses a name resolves to, at every connection, so a
//! name that later resolves elsewhere (DNS rebinding) is caught too. Beside it, how an
//! outbound answer's `Retry-After` is read ([`retry`]).

pub mod retry;

pub use retry::{parse_retry_after, retry_after};

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;

/// What every request Kalsync sends says it is: Exchange's application access policies
/// (`Set-OrganizationConfig -EwsApplicationAccessPolicy`, `EwsAllowList`) and a PBX's
/// or proxy's logs match on it.
pub const USER_AGENT: &str = concat!("Kalsync/", env!("CARGO_PKG_VERSION"));

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// It is (or resolves only to) an address on a local or private network.
    #[error(
        "`{host}` is on a local or private network; the operator allows such addresses in [outbound] allow"
    )]
    Refused {
        /// The name or address asked for.
        host: String,
    },
    /// The name does not resolve.
    #[error("`{host}` cannot be resolved")]
    Unresolved {
        /// The name.
        host: String,
    },
    /// The address has no host (or is not one the service can connect to).
    #[error("`{0}` names no host")]
    NoHost(String),
}

/// Where outbound requests may go: everywhere public, plus the networks the operator
/// allows. One per service, shared by every client it builds.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allow: Arc<Vec<IpNet>>,
}

impl OutboundPolicy {
    /// Public addresses, and `allow` besides.
    pub fn new(allow: Vec<IpNet>) -> OutboundPolicy {
        OutboundPolicy {
            allow: Arc::new(allow),
        }
    }

    /// Public addresses and this machine's loopback (the demo, tests and simulators).
    pub fn with_loopback() -> OutboundPolicy {
        OutboundPolicy::new(vec![
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("a valid prefix")),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// The networks allowed besides public addresses.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether requests may go to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !is_internal(ip) || self.allow.iter().any(|n| n.contains(&ip))
    }

    /// Refuses a URL whose host is an address the policy does not permit (a name is
    /// checked when it is resolved, at each connection).
    pub fn check_url(&self, url: &url::Url) -> Result<(), OutboundError> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip), &ip.to_string()),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip), &ip.to_string()),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(OutboundError::NoHost(url.to_string())),
        }
    }

    fn check_ip(&self, ip: IpAddr, host: &str) -> Result<(), OutboundError> {
        if self.permits(ip) {
            Ok(())
        } else {
            Err(OutboundError::Refused {
                host: host.to_owned(),
            })
        }
    }

    /// The addresses `host` resolves to that the policy permits; refused when it
    /// resolves to none of those.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip, host)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| OutboundError::Unresolved {
                host: host.to_owned(),
            })?
            .collect();
        if found.is_empty() {
            return Err(OutboundError::Unresolved {
                host: host.to_owned(),
            });
        }
        let permitted: Vec<SocketAddr> =
            found.into_iter().filter(|a| self.permits(a.ip())).collect();
        if permitted.is_empty() {
            return Err(OutboundError::Refused {
                host: host.to_owned(),
            });
        }
        Ok(permitted)
    }

    /// A TCP connection to `host:port` at an address the policy permits.
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
        let addresses = self
            .resolve(host, port)
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))?;
        tokio::net::TcpStream::connect(&addresses[..]).await
    }

    /// An HTTP client builder that resolves names through this policy, never follows a
    /// redirect (a redirect would take the request, and its secret, to an address
    /// nobody checked) and never goes through a proxy named in the environment
    /// (`HTTPS_PROXY`…): a proxy resolves names itself, out of this policy's reach.
    pub fn http(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(self.clone()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }
}

impl reqwest::dns::Resolve for OutboundPolicy {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.clone();
        let host = name.as_str().to_owned();
        let resolving: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
            let found = policy.resolve(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(addrs)
        });
        resolving
    }
}

/// An IPv4 address mapped into (or translated to) IPv6, as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and IPv4-compatible (::a.b.c.d) forms.
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0])
                || (s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1))
            {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

/// Loopback, private, shared (CGNAT), link-local, unique-local, multicast, broadcast,
/// unspecified or reserved: not a public destination.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
        }
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn every_request_says_it_is_kalsync() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut head = vec![0; 4096];
            let n = socket.read(&mut head).await.expect("read");
            let _ = socket
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await;
            String::from_utf8_lossy(&head[..n]).to_ascii_lowercase()
        });
        let client = OutboundPolicy::with_loopback()
            .http()
            .build()
            .expect("client");
        client.get(&url).send().await.expect("sent");
        let head = server.await.expect("served");
        assert!(
            head.contains(&format!("user-agent: {}", USER_AGENT.to_ascii_lowercase())),
            "{head}"
        );
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn local_and_private_addresses_are_refused_unless_allowed() {
        let policy = OutboundPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::10.0.0.1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused}");
        }
        for public in ["20.190.160.1", "52.96.0.1", "2603:1036::1", "172.32.0.1"] {
            assert!(policy.permits(ip(public)), "{public}");
        }
        let operator = OutboundPolicy::new(vec!["10.0.0.0/8".parse().expect("net")]);
        assert!(operator.permits(ip("10.20.30.40")));
        assert!(operator.permits(ip("::ffff:10.20.30.40")));
        assert!(!operator.permits(ip("192.168.1.1")));
        let tests = OutboundPolicy::with_loopback();
        assert!(tests.permits(ip("127.0.0.1")) && tests.permits(ip("::1")));
        assert!(!tests.permits(ip("169.254.169.254")));
    }

    #[test]
    fn urls_with_an_address_are_checked_and_names_at_resolution() {
        let policy = OutboundPolicy::default();
        let url = |s: &str| url::Url::parse(s).expect("url");
        assert!(matches!(
            policy.check_url(&url("http://169.254.169.254/latest/meta-data/")),
            Err(OutboundError::Refused { .. })
        ));
        assert!(policy.check_url(&url("http://[::ffff:7f00:1]/")).is_err());
        assert!(
            policy
                .check_url(&url("https://outlook.office365.com/EWS/Exchange.asmx"))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let target = elsewhere.local_addr().expect("addr");
        let redirecting = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener");
        let first = redirecting.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = redirecting.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://{target}/stolen\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let client = OutboundPolicy::with_loopback()
            .http()
            .build()
            .expect("client");
        let answer = client
            .post(format!("http://{first}/token"))
            .body("client_secret=s3cret")
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), reqwest::StatusCode::FOUND);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), elsewhere.accept())
                .await
                .is_err(),
            "the redirect's target was never contacted"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let policy = OutboundPolicy::default();
        assert!(matches!(
            policy.resolve("localhost", 80).await,
            Err(OutboundError::Refused { .. })
        ));
        assert!(policy.connect("127.0.0.1", 9).await.is_err());
        assert!(
            OutboundPolicy::with_loopback()
                .resolve("localhost", 80)
                .await
                .is_ok()
        );
    }
}
