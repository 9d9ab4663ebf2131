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

/// The client's address given the TCP peer and the `X-Forwarded-For` values.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    proxies: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted(peer, proxies) {
        return Some(peer);
    }
    let hops: Vec<IpAddr> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !trusted(*ip, proxies))
            .unwrap_or(peer),
    )
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
    }
}
