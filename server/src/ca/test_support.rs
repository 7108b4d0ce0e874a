//! Test helpers shared by the CA and CSR tests: ready-made identities and a
//! way to run the `openssl` command-line tool on files in a scratch dir.

use std::path::PathBuf;
use std::process::Command;

use super::{generate_key, new_ra_cert, new_root_ca, CaIdentity, KeySpec};

pub(crate) fn make_ca(spec: KeySpec) -> CaIdentity {
    let key = generate_key(spec).unwrap();
    let cert = new_root_ca(&key, "Test Root", "Acme", 365).unwrap();
    CaIdentity::new(cert, key).unwrap()
}

pub(crate) fn make_ra(ca: &CaIdentity) -> CaIdentity {
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let cert = new_ra_cert(ca, &key, "Test RA", 365).unwrap();
    CaIdentity::new(cert, key).unwrap()
}

/// A fresh scratch directory, removed on drop.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("scepd-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(crate) fn write(&self, name: &str, data: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl <args>` and returns (success, stdout + stderr).
pub(crate) fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
