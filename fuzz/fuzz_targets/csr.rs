//! RFC 2986 PKCS#10 as scepd reads it (`server::csr::Csr::from_der`:
//! subject, key, challengePassword, extensionRequest SANs). Anyone can
//! reach it: a self-signed signer and an envelope to the public RA
//! certificate are all a client needs, so it gets its own target — the
//! `decode` target only reaches it through a valid signature.
//!
//! Each input is also read as the SCEP path reads a request signed with
//! the fixture device key (`Csr::from_der_known_key`), which then reuses
//! that key object: both readings must reach the same verdict and the
//! same request.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::pkey::{PKey, Public};

fn device() -> &'static ([u8; 32], PKey<Public>) {
    static KEY: OnceLock<([u8; 32], PKey<Public>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = PKey::private_key_from_pem(include_bytes!("../fixtures/device.key"))
            .expect("fixture device key");
        let spki = key.public_key_to_der().expect("device SPKI");
        let public = PKey::public_key_from_der(&spki).expect("device public key");
        (openssl::sha::sha256(&spki), public)
    })
}

fuzz_target!(|data: &[u8]| {
    let plain = server::csr::Csr::from_der(data);
    let (sha, key) = device();
    let known = server::csr::Csr::from_der_known_key(data, Some((*sha, key)));
    match (&plain, &known) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.subject_text, b.subject_text);
            assert_eq!(a.public_key_sha256, b.public_key_sha256);
            assert!(a.public_key.public_eq(&b.public_key));
            assert_eq!(a.challenge_password, b.challenge_password);
            let _ = a.subject_name();
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "the known key changed the verdict: {:?} against {:?}",
            plain.as_ref().err(),
            known.as_ref().err()
        ),
    }
});
