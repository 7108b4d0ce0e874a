//! RFC 2986 PKCS#10 as scepd reads it (`server::csr::Csr::from_der`:
//! subject, key, challengePassword, extensionRequest SANs). Anyone can
//! reach it: a self-signed signer and an envelope to the public RA
//! certificate are all a client needs, so it gets its own target — the
//! `decode` target only reaches it through a valid signature.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = server::csr::Csr::from_der(data) {
        let _ = csr.subject_name();
    }
});
