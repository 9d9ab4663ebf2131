//! The caller's network address, for `context.network` in policy decisions: the TCP
//! peer, or, when the peer is a configured trusted proxy, the right-most address in
//! `X-Forwarded-For` that is not itself a trusted proxy.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::ciba::authorize::Peer;
use crate::state::AppState;

pub struct PeerAddr(pub Peer);

fn trusted(ip: IpAddr, proxies: &[ipnet::IpNet]) -> bool {
    proxies.iter().any(|p| p.contains(&ip))
}

/// Most `X-Forwarded-For` hops read (a real chain of proxies is a handful long).
const MAX_HOPS: usize = 32;

/// The client's address given the TCP peer and the `X-Forwarded-For` values. IPv4
/// addresses mapped into IPv6 (`::ffff:10.1.2.3`, how a dual-stack listener sees IPv4
/// peers) are read as the IPv4 address they are, before any proxy or zone check: else a
/// client could step outside a zone (or a proxy inside the trusted list) by spelling.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    proxies: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted(peer, proxies) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .rev()
        .take(MAX_HOPS)
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !trusted(*ip, proxies))
            .unwrap_or(peer),
    )
}

/// The TCP peer, as it is (no proxy header believed); `None` when not served over TCP.
pub struct TcpPeer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for TcpPeer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(TcpPeer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

impl FromRequestParts<AppState> for PeerAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let proxies: Vec<ipnet::IpNet> = state
            .config
            .trusted_proxies
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(PeerAddr(Peer {
            source_ip: client_address(peer, &forwarded, &proxies),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_address(Some(ip("192.0.2.9")), &["10.1.1.1"], &proxies),
            Some(ip("192.0.2.9"))
        );
        // Through two trusted proxies: the first address they did not add.
        assert_eq!(
            client_address(
                Some(ip("10.0.0.2")),
                &["203.0.113.7, 198.51.100.4", "10.0.0.3"],
                &proxies
            ),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), &["junk"], &proxies),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(client_address(None, &[], &proxies), None);
        // IPv4-mapped IPv6 is the IPv4 address, for the proxy check and the result.
        assert_eq!(
            client_address(
                Some(ip("::ffff:10.0.0.2")),
                &["::ffff:198.51.100.4"],
                &proxies
            ),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_address(Some(ip("::ffff:192.0.2.9")), &[], &proxies),
            Some(ip("192.0.2.9"))
        );
        // Only the nearest hops are read.
        let many = vec!["203.0.113.1"; 10_000].join(",");
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), &[&many], &proxies),
            Some(ip("203.0.113.1"))
        );
    }
}
