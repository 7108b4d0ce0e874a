use super::*;
use crate::ca::test_support::{make_ca, make_ra, openssl, Scratch};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509StoreContext;

fn chains_to(leaf: &X509Ref, root: &X509) -> bool {
    let mut sb = X509StoreBuilder::new().unwrap();
    sb.add_cert(root.clone()).unwrap();
    let store = sb.build();
    let mut ctx = X509StoreContext::new().unwrap();
    let chain = Stack::new().unwrap();
    ctx.init(&store, leaf, &chain, |c| c.verify_cert()).unwrap()
}

fn basic_constraints(cert: &X509Ref) -> (bool, BcDer) {
    let parsed = Certificate::from_der(&cert.to_der().unwrap()).unwrap();
    parsed
        .tbs_certificate()
        .get_extension::<BcDer>()
        .unwrap()
        .unwrap()
}

#[test]
fn root_ca_is_self_signed_critical_ca_for_every_key_spec() {
    for spec in [
        KeySpec::Rsa(2048),
        KeySpec::Rsa(3072),
        KeySpec::EcP256,
        KeySpec::EcP384,
    ] {
        let ca = make_ca(spec);
        let cert = ca.cert();
        assert!(cert.verify(&cert.public_key().unwrap()).unwrap(), "{spec}");
        assert!(chains_to(cert, cert), "{spec}");
        let (critical, bc) = basic_constraints(cert);
        assert!(critical && bc.ca, "{spec}");
        let ku = cert.key_usage().unwrap();
        assert!(ku.contains(X509KeyUsage::KEY_CERT_SIGN | X509KeyUsage::CRL_SIGN));
        assert!(!ku.contains(X509KeyUsage::DIGITAL_SIGNATURE));
        assert_eq!(cert.subject_key_id().unwrap().as_slice(), ca.key_id());
        assert!(cert.authority_key_id().is_some());
        assert!(cert.serial_number().to_bn().unwrap().num_bits() >= 128);
        assert_eq!(cert.version(), 2);
    }
}

#[test]
fn p384_ca_signs_with_sha384() {
    let ca = make_ca(KeySpec::EcP384);
    assert_eq!(ca.default_digest().type_(), MessageDigest::sha384().type_());
    assert_eq!(
        ca.cert().signature_algorithm().object().nid(),
        Nid::ECDSA_WITH_SHA384
    );
}

#[test]
fn rsa4096_ca_with_rsa_ra_chains() {
    let ca = make_ca(KeySpec::Rsa(4096));
    let ra = make_ra(&ca);
    assert!(chains_to(ra.cert(), ca.cert()));
}

#[test]
fn ra_cert_is_signing_and_encipherment_end_entity_under_ec_ca() {
    let ca = make_ca(KeySpec::EcP256);
    let ra = make_ra(&ca);
    let cert = ra.cert();
    assert!(chains_to(cert, ca.cert()));
    let ku = cert.key_usage().unwrap();
    assert_eq!(
        ku & (X509KeyUsage::DIGITAL_SIGNATURE
            | X509KeyUsage::KEY_ENCIPHERMENT
            | X509KeyUsage::KEY_CERT_SIGN),
        X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::KEY_ENCIPHERMENT
    );
    let (critical, bc) = basic_constraints(cert);
    assert!(critical && !bc.ca);
    assert_eq!(cert.public_key().unwrap().id(), Id::RSA);
    assert_eq!(
        cert.authority_key_id().unwrap().as_slice(),
        ca.cert().subject_key_id().unwrap().as_slice()
    );
    assert_eq!(first_entry(cert, Nid::ORGANIZATIONNAME), "Acme");
    assert_eq!(first_entry(cert, Nid::COMMONNAME), "Test RA");
}

#[test]
fn openssl_cli_verifies_ra_against_ca() {
    let ca = make_ca(KeySpec::EcP256);
    let ra = make_ra(&ca);
    let dir = Scratch::new();
    let ca_path = dir.write("ca.pem", &ca.cert_pem().unwrap());
    let ra_path = dir.write("ra.pem", &ra.cert_pem().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", &ca_path, &ra_path]);
    assert!(ok && out.contains(": OK"), "{out}");
}

#[test]
fn ra_validity_is_clamped_to_the_ca() {
    let key = generate_key(KeySpec::EcP256).unwrap();
    let ca = CaIdentity::new(new_root_ca(&key, "Short CA", "", 10).unwrap(), key).unwrap();
    let ra_key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let ra = new_ra_cert(&ca, &ra_key, "RA", 3650).unwrap();
    assert_eq!(to_chrono(ra.not_after()).unwrap(), ca.not_after());
}

#[test]
fn ra_refuses_non_rsa_key() {
    let ca = make_ca(KeySpec::EcP256);
    let ec = generate_key(KeySpec::EcP256).unwrap();
    assert!(matches!(
        new_ra_cert(&ca, &ec, "RA", 30),
        Err(CaError::RaKeyNotRsa)
    ));
}

#[test]
fn empty_common_name_is_rejected() {
    let key = generate_key(KeySpec::EcP256).unwrap();
    assert!(matches!(
        new_root_ca(&key, " ", "Acme", 30),
        Err(CaError::InvalidName(_))
    ));
}

#[test]
fn pem_round_trip_and_import_accepts_a_ca() {
    let ca = make_ca(KeySpec::EcP256);
    let key_pem = ca.key_pem().unwrap();
    assert!(String::from_utf8_lossy(&key_pem).contains("BEGIN PRIVATE KEY"));
    let back = import_ca(&ca.cert_pem().unwrap(), &key_pem, None).unwrap();
    assert_eq!(back.fingerprint(), ca.fingerprint());
    assert_eq!(back.key_id(), ca.key_id());
    assert_eq!(back.subject_der(), ca.subject_der());
}

#[test]
fn import_rejects_mismatched_key() {
    let ca = make_ca(KeySpec::EcP256);
    let other = generate_key(KeySpec::EcP256).unwrap();
    let err = import_ca(
        &ca.cert_pem().unwrap(),
        &other.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch));
    assert_eq!(err.to_string(), "imported key does not match certificate");
}

#[test]
fn import_rejects_non_ca_certificate() {
    let ca = make_ca(KeySpec::EcP256);
    let ra = make_ra(&ca);
    let err = import_ca(&ra.cert_pem().unwrap(), &ra.key_pem().unwrap(), None).unwrap_err();
    assert!(matches!(err, CaError::NotACa), "{err}");
}

#[test]
fn import_rejects_ca_without_key_cert_sign() {
    let key = generate_key(KeySpec::EcP256).unwrap();
    let name = build_name("Acme", "Odd CA").unwrap();
    let serial = random_serial().unwrap();
    let (nb, na) = validity(30);
    let public = public_of(&key).unwrap();
    let t = CertTemplate {
        subject: &name,
        issuer: &name,
        public_key: &public,
        serial: &serial,
        not_before: nb,
        not_after: na,
        extensions: vec![
            BasicConstraints::new().critical().ca().build().unwrap(),
            KuExt::new().critical().digital_signature().build().unwrap(),
        ],
    };
    let signer = CaKey::Software(key.clone());
    let cert = build_and_sign(t, &signer, MessageDigest::sha256()).unwrap();
    let err = import_ca(
        &cert.to_pem().unwrap(),
        &key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, CaError::CannotSignCertificates), "{err}");
}

#[test]
fn import_rejects_garbage_key_without_echoing_it() {
    let ca = make_ca(KeySpec::EcP256);
    let err = import_ca(&ca.cert_pem().unwrap(), b"not a key hunter2", None).unwrap_err();
    assert!(matches!(err, CaError::BadKey));
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn debug_output_omits_private_key() {
    let ca = make_ca(KeySpec::EcP256);
    let dbg = format!("{ca:?}");
    assert!(dbg.contains("Test Root"));
    assert!(!dbg.to_lowercase().contains("private"));
}

#[test]
fn rollover_makes_new_ca_and_ra_chaining_to_it() {
    let current = make_ca(KeySpec::EcP256);
    let (next_ca, next_ra) = rollover(&current, KeySpec::EcP384, "", "", 730).unwrap();
    assert_ne!(next_ca.fingerprint(), current.fingerprint());
    assert!(!next_ca
        .public_key()
        .unwrap()
        .public_eq(&current.public_key().unwrap()));
    assert_eq!(first_entry(next_ca.cert(), Nid::COMMONNAME), "Test Root");
    assert_eq!(first_entry(next_ca.cert(), Nid::ORGANIZATIONNAME), "Acme");
    assert!(next_ca.not_before() <= Utc::now());
    assert!(chains_to(next_ra.cert(), next_ca.cert()));
    assert!(!chains_to(next_ra.cert(), current.cert()));
    assert_eq!(next_ra.private_key().unwrap().id(), Id::RSA);
    assert_eq!(first_entry(next_ra.cert(), Nid::COMMONNAME), "Test Root RA");
}

#[test]
fn rollover_uses_given_names() {
    let current = make_ca(KeySpec::EcP256);
    let (next_ca, _) = rollover(&current, KeySpec::Rsa(2048), "Root G2", "Acme2", 30).unwrap();
    assert_eq!(first_entry(next_ca.cert(), Nid::COMMONNAME), "Root G2");
    assert_eq!(first_entry(next_ca.cert(), Nid::ORGANIZATIONNAME), "Acme2");
}

#[test]
fn an_encrypted_ca_key_imports_with_its_passphrase_only() {
    let ca = make_ca(KeySpec::EcP256);
    let encrypted = ca
        .private_key()
        .unwrap()
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"export pw")
        .unwrap();
    let back = import_ca(&ca.cert_pem().unwrap(), &encrypted, Some(b"export pw")).unwrap();
    assert_eq!(back.fingerprint(), ca.fingerprint());
    let err = import_ca(&ca.cert_pem().unwrap(), &encrypted, None).unwrap_err();
    assert!(matches!(err, CaError::KeyNeedsPassphrase), "{err}");
    assert!(err.to_string().contains("--import-ca-key-passphrase-file"));
    let err = import_ca(&ca.cert_pem().unwrap(), &encrypted, Some(b"wrong")).unwrap_err();
    assert!(matches!(err, CaError::WrongPassphrase(_)), "{err}");
}
