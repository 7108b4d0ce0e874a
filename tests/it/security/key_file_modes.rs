//! A private key other accounts can read is refused at start-up, with the
//! file, its mode and the fix in the message; scepd signs nothing with it.

use std::os::unix::fs::PermissionsExt;

use crate::support::Scepd;

#[test]
fn a_ca_or_ra_key_readable_by_others_stops_the_start() {
    let mut s = Scepd::start();
    s.stop();
    for name in ["ca.key", "ra.key", "ra-enc.key"] {
        let key = s.dir.path().join("ca").join(name);
        let old = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(old, 0o600, "{name} was written {old:o}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (status, text) = s.serve_refused(s.dir.path());
        assert!(!status.success(), "started with {name} at 0644:\n{text}");
        assert!(text.contains(name), "{text}");
        assert!(text.contains("0644"), "{text}");
        assert!(text.contains("chmod 600"), "{text}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // With the modes fixed it starts and serves again.
    let s = s.restart();
    let caps = ureq::get(&format!("{}/scep/default?operation=GetCACaps", s.url))
        .call()
        .unwrap();
    assert_eq!(caps.status(), 200);
}
