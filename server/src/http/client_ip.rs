//! The address of the client behind a request: the one input to the
//! failed-challenge lockout (`challenge::gate`), the console's login
//! throttle, and every `client_ip` recorded in the audit log and on
//! requests.
//!
//! `X-Forwarded-For` and `Forwarded` are written by whoever sends the
//! request, so they count only when the TCP peer is a proxy the operator
//! listed in `trusted_proxies`; otherwise the peer is the client. Behind a
//! trusted proxy, each proxy appends the address it saw to
//! `X-Forwarded-For`, so only the entries right of the last untrusted one
//! were written by proxies: the client is the right-most entry that is not
//! itself a trusted proxy, and anything left of it is what the client
//! claimed. `Forwarded` (RFC 7239) is never read; the proxies in front of
//! scepd are expected to set `X-Forwarded-For`.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::{web, HttpRequest};
use ipnet::IpNet;

/// The addresses and networks whose forwarding headers are believed.
/// Empty (the default): no header is, the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Returned by [`TrustedProxies::of`] when the app carries no set, so a
/// test app without one behaves as the default configuration.
static NONE: TrustedProxies = TrustedProxies(Vec::new());

impl TrustedProxies {
    /// The set the app was given as `web::Data<TrustedProxies>`, or none.
    pub fn of(req: &HttpRequest) -> &TrustedProxies {
        req.app_data::<web::Data<TrustedProxies>>()
            .map(|d| d.get_ref())
            .unwrap_or(&NONE)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses (`127.0.0.1`, `::1`) and
    /// networks (`10.0.0.0/8`); blanks between commas are ignored.
    fn from_str(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.parse::<IpNet>()
                    .map(|n| n.trunc())
                    .or_else(|_| e.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
                    .map_err(|_| {
                        format!("{e:?} is neither an IP address nor a network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not a trusted
/// proxy. `None` only when actix knows no peer (a request built in a test).
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .flat_map(|v| v.to_str().unwrap_or_default().split(','))
        .collect::<Vec<_>>();
    Some(resolve(peer, &forwarded, trusted))
}

fn resolve(peer: IpAddr, forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; the
    // trusted list and the lockout key use the plain IPv4 form.
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    for entry in forwarded.iter().rev() {
        match parse_entry(entry) {
            Some(ip) => {
                client = ip;
                if !trusted.contains(ip) {
                    return ip;
                }
            }
            // A trusted proxy wrote something unreadable: nothing to its
            // left can be attributed, so the last hop read stands.
            None => return client,
        }
    }
    // Every hop is a trusted proxy: the left-most one is the client.
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &str) -> TrustedProxies {
        list.parse().unwrap()
    }

    fn from(peer: &str, xff: &[&str], t: &TrustedProxies) -> Option<IpAddr> {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:40000").parse().unwrap());
        for v in xff {
            req = req.append_header(("X-Forwarded-For", *v));
        }
        client_ip(&req.to_http_request(), t)
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_headers_say() {
        let none = TrustedProxies::default();
        let req = TestRequest::default()
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .insert_header(("Forwarded", "for=203.0.113.9"))
            .insert_header(("X-Real-IP", "203.0.113.9"))
            .to_http_request();
        assert_eq!(client_ip(&req, &none), Some(ip("127.0.0.1")));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_even_when_others_are_trusted() {
        let t = trusted("10.0.0.0/8");
        assert_eq!(from("127.0.0.1", &["10.1.2.3"], &t), Some(ip("127.0.0.1")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() {
        let t = trusted("127.0.0.1, 10.0.0.0/8");
        // The client forged 192.0.2.66; the outer proxy 10.0.0.5 appended
        // the client's real 198.51.100.23, the inner one appended 10.0.0.5.
        assert_eq!(
            from("127.0.0.1", &["192.0.2.66, 198.51.100.23, 10.0.0.5"], &t),
            Some(ip("198.51.100.23"))
        );
        // Several header lines read as one list, in order.
        assert_eq!(
            from("127.0.0.1", &["192.0.2.66", "198.51.100.23,10.0.0.5"], &t),
            Some(ip("198.51.100.23"))
        );
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_the_client() {
        let t = trusted("127.0.0.1");
        assert_eq!(from("127.0.0.1", &[], &t), Some(ip("127.0.0.1")));
        assert_eq!(from("127.0.0.1", &[""], &t), Some(ip("127.0.0.1")));
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_the_client() {
        let t = trusted("127.0.0.0/8,10.0.0.0/8");
        assert_eq!(
            from("127.0.0.1", &["10.9.9.9, 10.0.0.5"], &t),
            Some(ip("10.9.9.9"))
        );
    }

    #[test]
    fn an_unreadable_entry_stops_the_walk_at_the_last_hop_read() {
        let t = trusted("127.0.0.1,10.0.0.0/8");
        assert_eq!(
            from("127.0.0.1", &["198.51.100.1, unknown, 10.0.0.5"], &t),
            Some(ip("10.0.0.5"))
        );
        assert_eq!(
            from("127.0.0.1", &["198.51.100.1, garbage"], &t),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn entries_with_ports_and_ipv6_are_read() {
        let t = trusted("::1,127.0.0.1");
        assert_eq!(
            from("[::1]", &["[2001:db8::7]:4711"], &t),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            from("127.0.0.1", &["198.51.100.4:4711"], &t),
            Some(ip("198.51.100.4"))
        );
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_entry() {
        let t = trusted("127.0.0.1");
        assert_eq!(
            from("[::ffff:127.0.0.1]", &["198.51.100.4"], &t),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            from(
                "[::ffff:192.0.2.1]",
                &["198.51.100.4"],
                &TrustedProxies::default()
            ),
            Some(ip("192.0.2.1"))
        );
    }

    #[test]
    fn no_peer_is_no_client() {
        let req = TestRequest::default().to_http_request();
        assert_eq!(client_ip(&req, &trusted("127.0.0.1")), None);
    }

    #[test]
    fn the_list_takes_addresses_and_networks_and_refuses_anything_else() {
        let t = trusted(" 127.0.0.1, 10.0.0.0/8 ,::1,, 192.168.1.77/24 ");
        assert!(t.contains(ip("10.255.0.1")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("192.168.1.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(trusted("").is_empty());
        let err = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(err.contains("\"10.0.0.0/33\""), "{err}");
        assert!("127.0.0.1,localhost".parse::<TrustedProxies>().is_err());
        assert!("127.0.0.1;10.0.0.1".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn an_app_without_the_set_trusts_no_proxy() {
        let req = TestRequest::default().to_http_request();
        assert!(TrustedProxies::of(&req).is_empty());
        let req = TestRequest::default()
            .app_data(web::Data::new(trusted("127.0.0.1")))
            .to_http_request();
        assert!(!TrustedProxies::of(&req).is_empty());
    }
}
