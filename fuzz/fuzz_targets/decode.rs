//! RFC 8894 §3.2: a PKIMessage from the network, exactly as the SCEP
//! endpoint receives it — `wire::decode` (BER/DER SignedData, SCEP
//! attributes), then `SignedMessage::open` (signature check, envelope
//! decryption with the RA key, messageData by type), then the PKCS#10
//! parser for PKCSReq/RenewalReq. This is everything scepd runs on
//! untrusted bytes before the first database access. Whatever the direct
//! path (`wire/direct.rs`) reads must read the same through OpenSSL's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::wire::{decode, MessageContent};

mod common;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = server::wire::direct_agrees_with_openssl(data, common::ra()) {
        panic!("invariant: the direct path and OpenSSL's agree: {e}");
    }
    let Ok(signed) = decode(data) else {
        return;
    };
    let _ = signed.header();
    if let Ok(msg) = signed.open(common::ra()) {
        if let MessageContent::CertReq { csr_der } = &msg.content {
            let _ = server::csr::Csr::from_der(csr_der);
        }
    }
});
