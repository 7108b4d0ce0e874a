//! A private key other accounts can read is refused at start-up, with the
//! file, its mode and the fix in the message; scepd signs nothing with it.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Scepd, BIN};

/// Runs `scepd serve` with `s`'s environment and returns its exit status
/// and output, or panics if it is still running after 60 s.
fn serve_until_exit(s: &Scepd) -> (bool, String) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(s.cli_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scepd kept running with a world-readable key");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    (out.status.success(), text)
}

#[test]
fn a_ca_or_ra_key_readable_by_others_stops_the_start() {
    let mut s = Scepd::start();
    s.stop();
    for name in ["ca.key", "ra.key", "ra-enc.key"] {
        let key = s.dir.path().join("ca").join(name);
        let old = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(old, 0o600, "{name} was written {old:o}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (ok, text) = serve_until_exit(&s);
        assert!(!ok, "started with {name} at 0644:\n{text}");
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
