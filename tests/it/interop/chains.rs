//! An issuing CA below an external root (`scepd init --import-ca` with a
//! chain file): GetCACert serves the issuers after the CA and RA
//! certificates (RFC 8894 §3.5.1), a SUCCESS CertRep carries the chain
//! only when its profile asks (§3.3.2; some VPN clients need it, others
//! refuse it), and a chain that does not link is refused at import.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509Name, X509};
use server::testdb::TestDb;
use server::wire::client::parse_certs_only;
use server::wire::{MessageType, PkiStatus};

use crate::device::Device;
use crate::support::{openssl_verify, Scepd, BIN};

/// Root → policy CA → our issuing CA (whose key scepd gets).
struct Pki {
    root: X509,
    mid: X509,
    ca: X509,
    ca_key: PKey<Private>,
}

fn rsa() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// A CA certificate named `cn` for `key`, signed by `issuer` (self-signed
/// when `None`).
fn ca_cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>) -> X509 {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("O", "Chain Test").unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = openssl::bn::BigNum::from_u32(rand_u32()).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
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
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u32::from_be_bytes(b) | 1
}

fn pki() -> Pki {
    let (rk, mk, ck) = (rsa(), rsa(), rsa());
    let root = ca_cert("External Root", &rk, None);
    let mid = ca_cert("External Policy CA", &mk, Some((&root, &rk)));
    let ca = ca_cert("scepd Issuing CA", &ck, Some((&mid, &mk)));
    Pki {
        root,
        mid,
        ca,
        ca_key: ck,
    }
}

fn pem(certs: &[&X509]) -> Vec<u8> {
    certs.iter().flat_map(|c| c.to_pem().unwrap()).collect()
}

fn der(c: &X509) -> Vec<u8> {
    c.to_der().unwrap()
}

/// `scepd init --import-ca <chain> --import-ca-key <key>` on `db` and `dir`.
fn init(db: &TestDb, dir: &Path, chain: &[u8], key: &PKey<Private>) -> Output {
    let work = tempfile::tempdir().unwrap();
    let (crt, key_path) = (work.path().join("chain.pem"), work.path().join("ca.key"));
    std::fs::write(&crt, chain).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    Command::new(BIN)
        .args(["init", "--import-ca"])
        .arg(&crt)
        .arg("--import-ca-key")
        .arg(&key_path)
        .env("DATABASE_URL", &db.url)
        .env("SCEPD_DATA_DIR", dir)
        .env("SCEPD_ADMIN_PASSWORD", "x-admin-password")
        .output()
        .unwrap()
}

/// A running scepd whose CA is `p.ca`, imported with its issuers.
fn serve_intermediate(p: &Pki) -> Scepd {
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = init(&db, dir.path(), &pem(&[&p.ca, &p.mid, &p.root]), &p.ca_key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("CA issuers (served with GetCACert): 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Scepd::start_with(db, dir, &[])
}

fn get_ca_cert(s: &Scepd) -> Vec<X509> {
    let r = ureq::get(&format!("{}?operation=GetCACert", s.scep_url("default")))
        .call()
        .unwrap();
    assert_eq!(r.content_type(), "application/x-x509-ca-ra-cert");
    let mut body = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    parse_certs_only(&body).unwrap()
}

/// Enroll a new device on `profile`; the CertRep's certificates.
fn enroll(s: &Scepd, profile: &str, cn: &str) -> Vec<X509> {
    let dev = Device::new(cn, 2048);
    let rep = dev.pkcs_req(s, profile, Some(&s.mint(profile)));
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    rep.certs
}

#[test]
fn get_ca_cert_serves_an_imported_intermediate_then_the_ras_then_its_issuers() {
    let p = pki();
    let s = serve_intermediate(&p);
    let certs = get_ca_cert(&s);
    let ders: Vec<Vec<u8>> = certs.iter().map(der).collect();
    assert_eq!(ders[0], der(&p.ca), "our CA first");
    assert_eq!(ders[1], der(&s.ra_cert()), "then the RA");
    let n = ders.len();
    assert!(n >= 4, "CA, RA(s), issuers: {n} certificates");
    assert_eq!(
        ders[n - 2..],
        [der(&p.mid), der(&p.root)],
        "the issuers last, nearest first"
    );
    // Every certificate between the CA and the issuers is an RA issued by
    // our CA, never an issuer twice.
    for ra in &certs[1..n - 2] {
        assert_eq!(
            ra.issuer_name().to_der().unwrap(),
            p.ca.subject_name().to_der().unwrap()
        );
    }

    let chain_file = s.dir.path().join("ca/ca-chain.crt");
    let mode = std::fs::metadata(&chain_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    let stored = X509::stack_from_pem(&std::fs::read(&chain_file).unwrap()).unwrap();
    assert_eq!(
        stored.iter().map(der).collect::<Vec<_>>(),
        vec![der(&p.mid), der(&p.root)]
    );
    assert_eq!(der(&s.ca_cert()), der(&p.ca), "ca.crt is the CA alone");

    let shown = s.cli_ok(&["ca", "show"]);
    let issuers: Vec<&str> = shown.lines().filter(|l| l.starts_with("issuer ")).collect();
    assert_eq!(issuers.len(), 2, "{shown}");
    assert!(issuers[0].contains("External Policy CA"), "{shown}");
    assert!(issuers[1].contains("External Root"), "{shown}");
}

#[test]
fn certrep_carries_the_chain_only_when_the_profile_asks() {
    let p = pki();
    let s = serve_intermediate(&p);

    // Off by default: the issued certificate alone.
    let certs = enroll(&s, "default", "no-chain");
    assert_eq!(certs.len(), 1, "{certs:?}");

    s.cli_ok(&["profile", "set", "default", "--certrep-includes-chain=true"]);
    let certs = enroll(&s, "default", "with-chain");
    let ders: Vec<Vec<u8>> = certs.iter().map(der).collect();
    assert_eq!(
        ders[1..],
        [der(&p.ca), der(&p.mid), der(&p.root)],
        "the issued certificate, then the CA and its issuers"
    );
    assert_eq!(
        certs[0].subject_name().to_der().unwrap(),
        {
            let mut n = X509Name::builder().unwrap();
            n.append_entry_by_text("CN", "with-chain").unwrap();
            n.build().to_der().unwrap()
        },
        "the issued certificate comes first"
    );
    // What the reply carries is enough to reach the root.
    let work = tempfile::tempdir().unwrap();
    let (root, untrusted) = (work.path().join("root.pem"), work.path().join("chain.pem"));
    std::fs::write(&root, p.root.to_pem().unwrap()).unwrap();
    std::fs::write(&untrusted, pem(&[&certs[1], &certs[2]])).unwrap();
    let untrusted = untrusted.display().to_string();
    let (ok, msg) = openssl_verify(&root, &certs[0], &["-untrusted", &untrusted]);
    assert!(ok, "{msg}");

    // Switched off again, the next reply is back to the certificate alone.
    s.cli_ok(&[
        "profile",
        "set",
        "default",
        "--certrep-includes-chain=false",
    ]);
    assert_eq!(enroll(&s, "default", "chain-off-again").len(), 1);
}

#[test]
fn a_certificate_approved_later_is_polled_with_the_chain_its_profile_asks_for() {
    let p = pki();
    let s = serve_intermediate(&p);
    s.cli_ok(&[
        "profile",
        "create",
        "vpn",
        "--approval",
        "manual",
        "--certrep-includes-chain",
    ]);
    let dev = Device::new("vpn-gateway", 2048);
    let rep = dev.pkcs_req(&s, "vpn", Some(&s.mint("vpn")));
    assert_eq!(rep.status, PkiStatus::Pending, "{rep:?}");
    let listed = s.cli_ok(&["request", "list"]);
    let id = listed
        .lines()
        .find(|l| l.contains("vpn-gateway"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("pending request listed: {listed}"))
        .to_string();
    s.cli_ok(&["request", "approve", &id]);
    let rep = dev.poll(&s, "vpn", &dev.txid());
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let ders: Vec<Vec<u8>> = rep.certs.iter().map(der).collect();
    assert_eq!(ders.len(), 4, "{:?}", rep.certs);
    assert_eq!(ders[1..], [der(&p.ca), der(&p.mid), der(&p.root)]);
    // A retransmitted PKCSReq gets the same answer.
    let again = dev.send(
        &s,
        "vpn",
        &dev.csr_request(
            &s,
            MessageType::PkcsReq,
            &dev.txid(),
            &dev.csr(None),
            server::wire::ContentCipher::Aes256Cbc,
        ),
    );
    assert_eq!(again.status, PkiStatus::Success, "{again:?}");
    assert_eq!(again.certs.len(), 4);
}

#[test]
fn import_refuses_a_chain_that_does_not_link_and_writes_nothing() {
    let p = pki();
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The policy CA left out: the root did not issue our CA.
    let out = init(&db, dir.path(), &pem(&[&p.ca, &p.root]), &p.ca_key);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CA chain does not link"), "{err}");
    assert!(
        err.contains("certificate 2 (O=Chain Test,CN=External Root) did not issue certificate 1"),
        "{err}"
    );
    assert!(!dir.path().join("ca/ca.key").exists());
    assert!(!dir.path().join("ca/ca-chain.crt").exists());
}

#[test]
fn a_chain_file_that_no_longer_fits_the_ca_stops_the_start() {
    let p = pki();
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = init(&db, dir.path(), &pem(&[&p.ca, &p.mid, &p.root]), &p.ca_key);
    assert!(out.status.success());
    let other = pki();
    std::fs::write(dir.path().join("ca/ca-chain.crt"), pem(&[&other.mid])).unwrap();
    let out = Command::new(BIN)
        .args(["ca", "show"])
        .env("DATABASE_URL", &db.url)
        .env("SCEPD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca-chain.crt"), "{err}");
    assert!(err.contains("does not link"), "{err}");
}
