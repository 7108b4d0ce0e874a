use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::ca::key_file::{self, Passphrase};
use crate::ca::test_support::{make_ca, Scratch};
use crate::ca::KeySpec;

fn names(list: &str) -> Vec<San> {
    parse_names(list).unwrap()
}

fn pass() -> Passphrase {
    Passphrase::generated(vec![7; 32], "the test's passphrase")
}

#[test]
fn names_are_dns_names_or_addresses_lowercased_once() {
    let n = names("Scepd.Example.com, 192.0.2.7,[::1], scepd.example.com, *.example.net");
    let shown: Vec<String> = n.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "DNS:scepd.example.com",
            "IP:192.0.2.7",
            "IP:::1",
            "DNS:*.example.net"
        ]
    );
    let err = parse_names("ok.example, bad name").unwrap_err();
    assert!(err.contains("\"bad name\""), "{err}");
    assert!(parse_names(" , ").is_err());
    assert!(parse_names("-x.example").is_err());
}

#[test]
fn default_names_add_the_console_address_and_the_public_host() {
    let n = default_names(
        "192.0.2.10:8443".parse().unwrap(),
        "http://scepd.example.com:8080",
    );
    for want in [
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:::1",
        "IP:192.0.2.10",
        "DNS:scepd.example.com",
    ] {
        assert!(n.iter().any(|s| s.to_string() == want), "{want} in {n:?}");
    }
    let wildcard = default_names("0.0.0.0:8443".parse().unwrap(), "http://[2001:db8::1]:80");
    assert!(!wildcard.iter().any(|s| s.to_string() == "IP:0.0.0.0"));
    assert!(wildcard.iter().any(|s| s.to_string() == "IP:2001:db8::1"));
}

#[test]
fn self_issued_is_kept_and_issued_again_when_the_names_change() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    let first =
        ensure_self_issued(&dir.0, &ca, &[], &names("localhost,127.0.0.1"), &pass()).unwrap();
    let issued = first.issued.expect("a first certificate is issued");
    assert_eq!(issued.names, ["DNS:localhost", "IP:127.0.0.1"]);
    let key_mode = std::fs::metadata(dir.0.join("tls/console.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(dir.0.join("tls")).unwrap().permissions();
    assert_eq!(dir_mode.mode() & 0o777, 0o700);
    // The served chain is the leaf, then the CA.
    assert_eq!(first.loaded.key.cert.len(), 2);

    // Same names, same order or not: the stored one is served as it is.
    let again =
        ensure_self_issued(&dir.0, &ca, &[], &names("127.0.0.1,localhost"), &pass()).unwrap();
    assert!(again.issued.is_none());
    assert_eq!(again.loaded.serial, first.loaded.serial);

    let renamed =
        ensure_self_issued(&dir.0, &ca, &[], &names("localhost,scepd.test"), &pass()).unwrap();
    let issued = renamed.issued.expect("new names need a new certificate");
    assert_ne!(issued.serial, first.loaded.serial);
    assert_eq!(issued.names, ["DNS:localhost", "DNS:scepd.test"]);

    // Another CA: issued again, by that CA.
    let other = make_ca(KeySpec::EcP256);
    let moved =
        ensure_self_issued(&dir.0, &other, &[], &names("localhost,scepd.test"), &pass()).unwrap();
    assert!(moved.issued.is_some());
    let leaf = X509::from_pem(&std::fs::read(dir.0.join("tls/console.crt")).unwrap()).unwrap();
    assert!(leaf.verify(&other.public_key().unwrap()).unwrap());
    let text = crate::ca::test_support::openssl(&[
        "x509",
        "-noout",
        "-ext",
        "extendedKeyUsage",
        "-in",
        &dir.path("tls/console.crt"),
    ]);
    assert!(
        text.1.contains("TLS Web Server Authentication"),
        "{}",
        text.1
    );
}

#[test]
fn a_corrupt_stored_certificate_is_replaced() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    ensure_self_issued(&dir.0, &ca, &[], &names("localhost"), &pass()).unwrap();
    std::fs::write(dir.0.join("tls/console.crt"), b"garbage").unwrap();
    let fixed = ensure_self_issued(&dir.0, &ca, &[], &names("localhost"), &pass()).unwrap();
    assert!(fixed.issued.is_some());
}

fn write_pair(dir: &Scratch, ca: &crate::ca::CaIdentity, stem: &str) -> (PathBuf, PathBuf) {
    let sub = Scratch::new();
    let got = ensure_self_issued(&sub.0, ca, &[], &names("localhost"), &pass()).unwrap();
    assert!(got.issued.is_some());
    let cert = dir.0.join(format!("{stem}.crt"));
    let key = dir.0.join(format!("{stem}.key"));
    std::fs::copy(sub.0.join("tls/console.crt"), &cert).unwrap();
    // An operator's files hold the key in the clear.
    let stored = std::fs::read(sub.0.join("tls/console.key")).unwrap();
    let (plain, _) = key_file::decrypt_pem(&stored, &pass()).unwrap();
    std::fs::write(&key, plain.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, key)
}

#[test]
fn files_load_and_a_key_of_another_certificate_is_refused() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    let (cert_a, key_a) = write_pair(&dir, &ca, "a");
    let (_, key_b) = write_pair(&dir, &ca, "b");
    let loaded = load_files(&cert_a, &key_a).unwrap();
    assert_eq!(loaded.names, ["DNS:localhost"]);
    let err = load_files(&cert_a, &key_b).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    // Swapped arguments: the key file holds no certificate.
    let err = load_files(&key_a, &cert_a).unwrap_err().to_string();
    assert!(err.contains("a.key"), "{err}");
    let missing = load_files(&dir.0.join("none.crt"), &key_a).unwrap_err();
    assert!(missing.to_string().contains("none.crt"), "{missing}");
}

#[test]
fn an_expired_certificate_file_is_refused() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    let key = crate::ca::generate_key(KeySpec::EcP256).unwrap();
    let public =
        openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
    let mut subject = openssl::x509::X509Name::builder().unwrap();
    subject
        .append_entry_by_nid(openssl::nid::Nid::COMMONNAME, "old")
        .unwrap();
    let subject = subject.build();
    let now = Utc::now();
    let cert = crate::ca::issue(
        &ca,
        &crate::ca::IssueParams {
            public_key: &public,
            spki_der: None,
            subject: &subject,
            sans: &names("localhost"),
            not_before: now - chrono::Duration::days(10),
            not_after: now - chrono::Duration::days(1),
            key_usage: &[],
            extended_key_usage: &[],
            crl_url: None,
            ocsp_url: None,
            digest: openssl::hash::MessageDigest::sha256(),
            serial: &crate::ca::random_serial().unwrap(),
        },
    )
    .unwrap();
    let c = dir.write("old.crt", &cert.to_pem().unwrap());
    let k = dir.write("old.key", &key.private_key_to_pem_pkcs8().unwrap());
    let err = load_files(c.as_ref(), k.as_ref()).unwrap_err();
    assert!(matches!(err, TlsError::Expired { .. }), "{err}");
}

#[test]
fn the_store_serves_the_replacement_from_the_next_handshake() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    let (ca_, ka) = write_pair(&dir, &ca, "a");
    let (cb, kb) = write_pair(&dir, &ca, "b");
    let a = load_files(&ca_, &ka).unwrap();
    let b = load_files(&cb, &kb).unwrap();
    let store = CertStore::new(&a);
    assert!(Arc::ptr_eq(&store.0.load_full(), &a.key));
    store.replace(&b);
    assert!(Arc::ptr_eq(&store.0.load_full(), &b.key));
    assert!(server_config(store).is_ok());
}

#[test]
fn the_self_issued_key_is_encrypted_at_rest_and_an_old_clear_one_is_encrypted() {
    let dir = Scratch::new();
    let ca = make_ca(KeySpec::EcP256);
    let first = ensure_self_issued(&dir.0, &ca, &[], &names("localhost"), &pass()).unwrap();
    let path = dir.0.join("tls/console.key");
    let stored = std::fs::read(&path).unwrap();
    assert!(key_file::is_encrypted(&stored));
    assert!(openssl::pkey::PKey::private_key_from_pem(&stored).is_err());

    // A key written in the clear (as before keys were encrypted) is served
    // and rewritten encrypted; the certificate stays.
    let (plain, _) = key_file::decrypt_pem(&stored, &pass()).unwrap();
    std::fs::write(&path, plain.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let again = ensure_self_issued(&dir.0, &ca, &[], &names("localhost"), &pass()).unwrap();
    assert!(again.issued.is_none());
    assert_eq!(again.loaded.serial, first.loaded.serial);
    assert!(key_file::is_encrypted(&std::fs::read(&path).unwrap()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Another passphrase cannot open it: a new certificate and key.
    let other = Passphrase::generated(vec![8; 32], "another passphrase");
    let moved = ensure_self_issued(&dir.0, &ca, &[], &names("localhost"), &other).unwrap();
    assert!(moved.issued.is_some());
}
