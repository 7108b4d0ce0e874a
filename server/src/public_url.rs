//! Whether the public URL — the base of every SCEP URL scepd hands out in
//! configuration profiles, the console and the API — is one a device can
//! reach. The default (`http://<listen>`, `127.0.0.1:8080` unless told)
//! is not: a profile carrying it sends each device to itself.

use std::net::IpAddr;

/// Why devices cannot reach `public_url`, or None when they may. A name
/// other than `localhost` cannot be judged without resolving it, and is
/// taken at its word.
pub fn unreachable_reason(public_url: &str) -> Option<String> {
    let host = crate::tls::url_host(public_url)?;
    let what = if host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
    {
        "a loopback name"
    } else {
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => "a loopback address",
            Ok(ip) if ip.is_unspecified() => "the unspecified address",
            _ => return None,
        }
    };
    Some(format!(
        "the public URL {public_url} names {what}: devices given SCEP URLs under it \
         cannot reach scepd. Set public_url (SCEPD_PUBLIC_URL or --public-url) to the \
         address devices use"
    ))
}

#[cfg(test)]
mod tests {
    use super::unreachable_reason;

    #[test]
    fn loopback_and_unspecified_hosts_are_unreachable() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.8.9.1",
            "https://localhost/",
            "http://dev.localhost:80",
            "http://[::1]:8080",
            "http://0.0.0.0:8080",
        ] {
            let reason = unreachable_reason(url).unwrap_or_else(|| panic!("{url}"));
            assert!(reason.contains(url), "{reason}");
        }
    }

    #[test]
    fn other_hosts_are_taken_at_their_word() {
        for url in [
            "https://scep.example.com",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]/",
            "https://localhost.example.com",
        ] {
            assert_eq!(unreachable_reason(url), None, "{url}");
        }
    }
}
