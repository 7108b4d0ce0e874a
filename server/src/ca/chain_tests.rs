use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509Name, X509};

use super::*;
use crate::ca::{generate_key, random_serial, KeySpec};

fn name(cn: &str) -> X509Name {
    let mut b = X509Name::builder().unwrap();
    b.append_entry_by_text("CN", cn).unwrap();
    b.build()
}

/// A certificate for `key` named `cn`, signed by `issuer` (self-signed
/// when `None`); a CA unless `ca` is false.
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let subject = name(cn);
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&random_serial().unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&subject).unwrap();
    match issuer {
        Some((c, _)) => b.set_issuer_name(c.subject_name()).unwrap(),
        None => b.set_issuer_name(&subject).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    b.build()
}

fn key() -> PKey<Private> {
    generate_key(KeySpec::EcP256).unwrap()
}

/// Root → intermediate → our CA, with our CA's key.
struct Chain {
    root: X509,
    mid: X509,
    ca: X509,
    ca_key: PKey<Private>,
}

fn chain() -> Chain {
    let (rk, mk, ck) = (key(), key(), key());
    let root = cert("Root", &rk, None, true);
    let mid = cert("Mid", &mk, Some((&root, &rk)), true);
    let ca = cert("Issuing", &ck, Some((&mid, &mk)), true);
    Chain {
        root,
        mid,
        ca,
        ca_key: ck,
    }
}

fn pem(certs: &[&X509]) -> Vec<u8> {
    certs.iter().flat_map(|c| c.to_pem().unwrap()).collect()
}

#[test]
fn a_chain_file_yields_the_ca_and_its_issuers_nearest_first() {
    let c = chain();
    let (ca, issuers) = import_ca_chain(
        &pem(&[&c.ca, &c.mid, &c.root]),
        &c.ca_key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(ca.cert().to_der().unwrap(), c.ca.to_der().unwrap());
    let got: Vec<Vec<u8>> = issuers.iter().map(|i| i.to_der().unwrap()).collect();
    assert_eq!(got, vec![c.mid.to_der().unwrap(), c.root.to_der().unwrap()]);
    assert_eq!(
        certs_from_pem(&certs_to_pem(&issuers).unwrap())
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_single_certificate_is_a_ca_without_issuers() {
    let c = chain();
    let (_, issuers) = import_ca_chain(
        &c.ca.to_pem().unwrap(),
        &c.ca_key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap();
    assert!(issuers.is_empty());
}

#[test]
fn issuers_out_of_order_are_refused_naming_both_certificates() {
    let c = chain();
    let err = import_ca_chain(
        &pem(&[&c.ca, &c.root, &c.mid]),
        &c.ca_key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::BrokenChain(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("certificate 2 (CN=Root) did not issue certificate 1 (CN=Issuing)"),
        "{text}"
    );
    assert!(text.contains("names its issuer CN=Mid"), "{text}");
}

#[test]
fn an_issuer_with_the_right_name_but_another_key_is_refused() {
    let c = chain();
    let impostor = cert("Mid", &key(), Some((&c.root, &key())), true);
    let err = check_chain(&c.ca, &[impostor]).unwrap_err();
    assert!(
        err.to_string().contains("does not verify the signature"),
        "{err}"
    );
}

#[test]
fn an_issuer_that_is_not_a_ca_is_refused() {
    let (lk, ck) = (key(), key());
    let leaf = cert("Leaf", &lk, None, false);
    let ca = cert("Issuing", &ck, Some((&leaf, &lk)), true);
    let err = check_chain(&ca, &[leaf]).unwrap_err();
    assert!(err.to_string().contains("not a CA certificate"), "{err}");
}

#[test]
fn a_file_without_certificates_is_refused_clearly() {
    let c = chain();
    let err = import_ca_chain(
        b"not pem",
        &c.ca_key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::BadCertificate(_)), "{err}");
}
