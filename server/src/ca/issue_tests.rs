use super::*;
use crate::ca::test_support::{make_ca, openssl, Scratch};
use crate::ca::{generate_key, random_serial, KeySpec};
use chrono::Duration;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509Name, X509StoreContext};
use std::net::IpAddr;

fn subject(cn: &str) -> X509Name {
    let mut b = X509Name::builder().unwrap();
    b.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    b.build()
}

fn device_key() -> PKey<Public> {
    let k = generate_key(KeySpec::EcP256).unwrap();
    PKey::public_key_from_der(&k.public_key_to_der().unwrap()).unwrap()
}

fn sans() -> Vec<San> {
    vec![
        San::Dns("dev1.example.com".into()),
        San::Email("dev1@example.com".into()),
        San::Uri("urn:uuid:1234".into()),
        San::Ip("10.0.0.1".parse().unwrap()),
        San::Ip("2001:db8::1".parse().unwrap()),
        San::Upn("dev1@corp.example".into()),
    ]
}

fn issue_default(
    ca: &CaIdentity,
    key: &PKeyRef<Public>,
    name: &X509NameRef,
    sans: &[San],
) -> Result<X509, CaError> {
    let serial = random_serial().unwrap();
    let now = Utc::now();
    issue(
        ca,
        &IssueParams {
            spki_der: None,
            public_key: key,
            subject: name,
            sans,
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(30),
            key_usage: &[KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            extended_key_usage: &[Eku::ClientAuth, Eku::Other("1.3.6.1.4.1.311.20.2.2".into())],
            crl_url: Some("http://scep.example.com/crl"),
            ocsp_url: Some("http://scep.example.com/ocsp"),
            digest: MessageDigest::sha256(),
            serial: &serial,
        },
    )
}

fn chains_to(leaf: &X509Ref, root: &X509) -> bool {
    let mut sb = X509StoreBuilder::new().unwrap();
    sb.add_cert(root.clone()).unwrap();
    let store = sb.build();
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, leaf, &Stack::new().unwrap(), |c| c.verify_cert())
        .unwrap()
}

use openssl::x509::X509Ref;

#[test]
fn issued_cert_chains_to_ca_and_carries_requested_key() {
    for spec in [KeySpec::Rsa(2048), KeySpec::EcP256, KeySpec::EcP384] {
        let ca = make_ca(spec);
        let key = device_key();
        let name = subject("dev1");
        let cert = issue_default(&ca, &key, &name, &sans()).unwrap();
        assert!(chains_to(&cert, ca.cert()), "{spec}");
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert_eq!(cert.version(), 2);
        assert_eq!(
            cert.subject_name().to_der().unwrap(),
            name.to_der().unwrap()
        );
        assert_eq!(cert.issuer_name().to_der().unwrap(), ca.subject_der());
        assert_eq!(
            cert.authority_key_id().unwrap().as_slice(),
            ca.cert().subject_key_id().unwrap().as_slice()
        );
        assert!(cert.subject_key_id().is_some());
    }
}

#[test]
fn issued_cert_has_requested_key_usage_eku_and_crl_dp() {
    let ca = make_ca(KeySpec::EcP256);
    let cert = issue_default(&ca, &device_key(), &subject("dev1"), &sans()).unwrap();
    let ku = cert.key_usage().unwrap();
    assert_eq!(
        ku,
        X509KeyUsage::DIGITAL_SIGNATURE | X509KeyUsage::KEY_ENCIPHERMENT
    );
    let eku = cert.extended_key_usage().unwrap();
    assert!(eku.contains(X509ExtendedKeyUsage::SSL_CLIENT));
    assert!(!eku.contains(X509ExtendedKeyUsage::SSL_SERVER));
    let dps = cert.crl_distribution_points().unwrap();
    let uri = dps[0].distpoint().unwrap().fullname().unwrap()[0]
        .uri()
        .unwrap()
        .to_string();
    assert_eq!(uri, "http://scep.example.com/crl");
    let ocsp = cert.ocsp_responders().unwrap();
    assert_eq!(ocsp.len(), 1);
    assert_eq!(&*ocsp[0], "http://scep.example.com/ocsp");
}

#[test]
fn issued_cert_has_all_san_kinds() {
    let ca = make_ca(KeySpec::EcP256);
    let cert = issue_default(&ca, &device_key(), &subject("dev1"), &sans()).unwrap();
    let names = cert.subject_alt_names().unwrap();
    assert_eq!(names.len(), 6);
    assert_eq!(names[0].dnsname(), Some("dev1.example.com"));
    assert_eq!(names[1].email(), Some("dev1@example.com"));
    assert_eq!(names[2].uri(), Some("urn:uuid:1234"));
    assert_eq!(names[3].ipaddress(), Some(&[10, 0, 0, 1][..]));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    let IpAddr::V6(v6) = v6 else { unreachable!() };
    assert_eq!(names[4].ipaddress(), Some(&v6.octets()[..]));

    // The UPN otherName and criticality are checked through OpenSSL's own
    // text rendering, which rust-openssl has no accessors for.
    let dir = Scratch::new();
    let path = dir.write("leaf.pem", &cert.to_pem().unwrap());
    let (ok, text) = openssl(&["x509", "-in", &path, "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("othername: UPN::dev1@corp.example"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(
        text.contains("TLS Web Client Authentication, Microsoft Smartcard Login"),
        "{text}"
    );
    assert!(
        !text.contains("Subject Alternative Name: critical"),
        "{text}"
    );
}

#[test]
fn openssl_cli_verifies_leaf_for_client_auth() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let cert = issue_default(&ca, &device_key(), &subject("dev1"), &sans()).unwrap();
    let dir = Scratch::new();
    let ca_path = dir.write("ca.pem", &ca.cert_pem().unwrap());
    let leaf = dir.write("leaf.pem", &cert.to_pem().unwrap());
    let (ok, out) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        &ca_path,
        &leaf,
    ]);
    assert!(ok && out.contains(": OK"), "{out}");
}

#[test]
fn san_is_critical_when_subject_is_empty() {
    let ca = make_ca(KeySpec::EcP256);
    let empty = X509Name::builder().unwrap().build();
    let cert = issue_default(&ca, &device_key(), &empty, &[San::Dns("a.example".into())]).unwrap();
    let dir = Scratch::new();
    let path = dir.write("leaf.pem", &cert.to_pem().unwrap());
    let (_, text) = openssl(&["x509", "-in", &path, "-noout", "-text"]);
    assert!(
        text.contains("X509v3 Subject Alternative Name: critical"),
        "{text}"
    );
}

#[test]
fn empty_subject_without_san_is_rejected() {
    let ca = make_ca(KeySpec::EcP256);
    let empty = X509Name::builder().unwrap().build();
    let err = issue_default(&ca, &device_key(), &empty, &[]).unwrap_err();
    assert!(matches!(err, CaError::InvalidName(_)));
}

#[test]
fn not_after_is_clamped_to_ca_expiry() {
    let ca = make_ca(KeySpec::EcP256); // 365 days
    let serial = random_serial().unwrap();
    let key = device_key();
    let name = subject("dev1");
    let now = Utc::now();
    let cert = issue(
        &ca,
        &IssueParams {
            spki_der: None,
            public_key: &key,
            subject: &name,
            sans: &[],
            not_before: now,
            not_after: now + Duration::days(5000),
            key_usage: &[],
            extended_key_usage: &[],
            crl_url: None,
            ocsp_url: None,
            digest: MessageDigest::sha256(),
            serial: &serial,
        },
    )
    .unwrap();
    let na = crate::ca::identity::to_chrono(cert.not_after()).unwrap();
    assert_eq!(na, ca.not_after());
    assert!(cert.key_usage().is_none());
    assert!(cert.extended_key_usage().is_none());
    assert!(cert.crl_distribution_points().is_none());
    let aia = cert.ocsp_responders().map(|r| r.len()).unwrap_or(0);
    assert_eq!(aia, 0, "no OCSP URL unless asked");
    assert_eq!(cert.serial_number().to_bn().unwrap(), serial);
}

#[test]
fn inverted_validity_is_rejected() {
    let ca = make_ca(KeySpec::EcP256);
    let serial = random_serial().unwrap();
    let key = device_key();
    let name = subject("dev1");
    let now = Utc::now();
    let err = issue(
        &ca,
        &IssueParams {
            spki_der: None,
            public_key: &key,
            subject: &name,
            sans: &[],
            not_before: now,
            not_after: now - Duration::days(1),
            key_usage: &[],
            extended_key_usage: &[],
            crl_url: None,
            ocsp_url: None,
            digest: MessageDigest::sha256(),
            serial: &serial,
        },
    )
    .unwrap_err();
    assert!(matches!(err, CaError::InvalidValidity(_)));
}

#[test]
fn eku_with_bad_oid_fails_issuance() {
    let ca = make_ca(KeySpec::EcP256);
    let serial = random_serial().unwrap();
    let key = device_key();
    let name = subject("dev1");
    let now = Utc::now();
    let bad = [Eku::Other("not-an-oid".into())];
    let err = issue(
        &ca,
        &IssueParams {
            spki_der: None,
            public_key: &key,
            subject: &name,
            sans: &[],
            not_before: now,
            not_after: now + Duration::days(1),
            key_usage: &[],
            extended_key_usage: &bad,
            crl_url: None,
            ocsp_url: None,
            digest: MessageDigest::sha256(),
            serial: &serial,
        },
    )
    .unwrap_err();
    assert!(matches!(err, CaError::InvalidEku(_)));
}
