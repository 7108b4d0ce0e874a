//! The envelope and messageData parsers behind a *valid* signature
//! (RFC 8894 §3.2.2): the input is the encapsulated content, which the
//! target signs with a fixed small device key before `decode` + `open`.
//! Mutating a whole PKIMessage (the `decode` target) almost always breaks
//! its signature first, so this is how the fuzzer reaches EnvelopedData
//! parsing, RSA key transport and content decryption with hostile bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use server::wire::pkcs7_ffi::{scep_nids, sign_with_attributes, AttrKind, AttrSpec};
use server::wire::{decode, MessageContent, MessageType};

mod common;

/// A P-256 device: signing costs microseconds, so the target stays fast.
fn device() -> &'static (X509, PKey<Private>) {
    static DEV: OnceLock<(X509, PKey<Private>)> = OnceLock::new();
    DEV.get_or_init(|| {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .expect("P-256");
        let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("EC key"))
            .expect("EC key");
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "fuzz device").expect("CN");
        let name = name.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("version");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("key");
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("time"))
            .expect("nb");
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).expect("time"))
            .expect("na");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        (b.build(), key)
    })
}

fuzz_target!(|data: &[u8]| {
    let (cert, key) = device();
    let Ok(nids) = scep_nids() else { return };
    // The first byte picks the message type, so every messageData parser
    // (PKCSReq, CertPoll, GetCert, GetCRL, RenewalReq) is reached.
    let Some((&which, content)) = data.split_first() else {
        return;
    };
    let mt = [
        MessageType::PkcsReq,
        MessageType::RenewalReq,
        MessageType::CertPoll,
        MessageType::GetCert,
        MessageType::GetCrl,
    ][usize::from(which) % 5];
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: b"fuzz",
        },
        AttrSpec {
            nid: nids.message_type,
            kind: AttrKind::PrintableString,
            value: mt.code().as_bytes(),
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &[7u8; 16],
        },
    ];
    let Ok(msg) = sign_with_attributes(cert, key, MessageDigest::sha256(), &[], &attrs, content)
    else {
        return;
    };
    let Ok(signed) = decode(&msg) else {
        return;
    };
    if let Ok(m) = signed.open(common::ra()) {
        if let MessageContent::CertReq { csr_der } = &m.content {
            let _ = server::csr::Csr::from_der(csr_der);
        }
    }
});
