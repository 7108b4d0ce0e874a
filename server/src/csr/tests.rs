use super::*;
use crate::ca::test_support::{openssl, Scratch};
use crate::ca::{generate_key, KeySpec};
use openssl::hash::MessageDigest;
use openssl::x509::X509ReqBuilder;

/// Builds a CSR with the `openssl req` CLI so that attributes
/// (challengePassword) and extensionRequest come from a real implementation.
fn cli_csr(subj_section: &str, attrs: &str, addext: Option<&str>, utf8: bool) -> Vec<u8> {
    let dir = Scratch::new();
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let key_path = dir.write("key.pem", &key.private_key_to_pem_pkcs8().unwrap());
    let mask = if utf8 { "utf8only" } else { "default" };
    let cfg = format!(
        "[req]\nprompt = no\nstring_mask = {mask}\ndistinguished_name = dn\nattributes = attrs\n\
         [dn]\n{subj_section}\n[attrs]\n{attrs}\n"
    );
    let cfg_path = dir.write("req.cnf", cfg.as_bytes());
    let out = dir.path("req.der");
    let mut args = vec![
        "req", "-new", "-config", &cfg_path, "-key", &key_path, "-outform", "DER", "-out", &out,
    ];
    if utf8 {
        args.push("-utf8");
    }
    if let Some(e) = addext {
        args.push("-addext");
        args.push(e);
    }
    let (ok, text) = openssl(&args);
    assert!(ok, "{text}");
    std::fs::read(&out).unwrap()
}

fn rust_csr(key: &PKey<openssl::pkey::Private>, cn: &str) -> Vec<u8> {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Acme")
        .unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

/// Tag of the challengePassword value as found in the DER, to prove the test
/// exercises the string type it claims to.
fn challenge_tag(der: &[u8]) -> Tag {
    let req = CertReq::from_der(der).unwrap();
    let attr = req
        .info
        .attributes
        .iter()
        .find(|a| a.oid == OID_CHALLENGE_PASSWORD)
        .unwrap();
    attr.values.iter().next().unwrap().tag()
}

#[test]
fn cli_csr_with_challenge_and_sans_is_parsed() {
    let der = cli_csr(
        "O = Acme\nCN = dev1\nserialNumber = C02XYZ",
        "challengePassword = s3cret-Challenge",
        Some(
            "subjectAltName=DNS:dev1.example.com,IP:10.0.0.1,IP:2001:db8::1,\
             email:dev1@example.com,URI:urn:uuid:42,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:dev1@corp",
        ),
        false,
    );
    assert_eq!(challenge_tag(&der), Tag::PrintableString);
    let csr = Csr::from_der(&der).unwrap();
    assert_eq!(csr.challenge_password.as_deref(), Some("s3cret-Challenge"));
    assert_eq!(csr.common_name.as_deref(), Some("dev1"));
    assert_eq!(csr.serial_number.as_deref(), Some("C02XYZ"));
    assert_eq!(csr.subject_text, "serialNumber=C02XYZ,CN=dev1,O=Acme");
    assert_eq!(csr.key, KeyInfo::Rsa { bits: 2048 });
    assert_eq!(
        csr.sans,
        vec![
            San::Dns("dev1.example.com".into()),
            San::Ip("10.0.0.1".parse().unwrap()),
            San::Ip("2001:db8::1".parse().unwrap()),
            San::Email("dev1@example.com".into()),
            San::Uri("urn:uuid:42".into()),
            San::Upn("dev1@corp".into()),
        ]
    );
    assert_eq!(csr.der, der);
}

#[test]
fn utf8_challenge_password_is_decoded() {
    let der = cli_csr("CN = dev2", "challengePassword = pässwört-ü", None, true);
    assert_eq!(challenge_tag(&der), Tag::Utf8String);
    let csr = Csr::from_der(&der).unwrap();
    assert_eq!(csr.challenge_password.as_deref(), Some("pässwört-ü"));
    assert!(csr.sans.is_empty());
}

#[test]
fn requested_key_usage_and_eku_are_reported() {
    let der = cli_csr(
        "CN = dev3",
        "challengePassword = x",
        Some("keyUsage=critical,digitalSignature,keyEncipherment"),
        false,
    );
    // openssl req accepts only one -addext per call in our helper; check KU here.
    let csr = Csr::from_der(&der).unwrap();
    assert_eq!(
        csr.requested_key_usage,
        vec!["digitalSignature", "keyEncipherment"]
    );
    let der = cli_csr(
        "CN = dev3",
        "challengePassword = x",
        Some("extendedKeyUsage=clientAuth,1.2.3.4"),
        false,
    );
    let csr = Csr::from_der(&der).unwrap();
    assert_eq!(csr.requested_eku, vec!["1.3.6.1.5.5.7.3.2", "1.2.3.4"]);
}

#[test]
fn rust_built_ec_csr_has_no_challenge_and_correct_key_hash() {
    let key = generate_key(KeySpec::EcP256).unwrap();
    let der = rust_csr(&key, "dev4");
    let csr = Csr::from_der(&der).unwrap();
    assert_eq!(csr.challenge_password, None);
    assert_eq!(
        csr.key,
        KeyInfo::Ec {
            curve: "P-256".into()
        }
    );
    assert_eq!(
        csr.public_key_sha256,
        openssl::sha::sha256(&key.public_key_to_der().unwrap())
    );
    assert!(csr.public_key.public_eq(&key));
    assert_eq!(csr.subject_text, "CN=dev4,O=Acme");
    assert_eq!(
        csr.subject_name().to_der().unwrap(),
        csr.subject.to_der().unwrap()
    );
}

#[test]
fn tampered_csr_fails_signature_check() {
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let mut der = rust_csr(&key, "dev5");
    // Change one character of the CN inside the signed part.
    let pos = der.windows(4).position(|w| w == b"dev5").unwrap();
    der[pos + 3] = b'6';
    assert!(matches!(Csr::from_der(&der), Err(CsrError::BadSignature)));
}

#[test]
fn garbage_is_malformed() {
    assert!(matches!(
        Csr::from_der(b"\x30\x03abc"),
        Err(CsrError::Malformed(_))
    ));
    let key = generate_key(KeySpec::EcP256).unwrap();
    let mut der = rust_csr(&key, "dev7");
    der.push(0);
    assert!(matches!(Csr::from_der(&der), Err(CsrError::Malformed(_))));
}

#[test]
fn debug_hides_the_challenge_password() {
    let der = cli_csr("CN = dev8", "challengePassword = TopSecret99", None, false);
    let csr = Csr::from_der(&der).unwrap();
    let dbg = format!("{csr:?}");
    assert!(!dbg.contains("TopSecret99"), "{dbg}");
    assert!(dbg.contains("<redacted>"));
    assert!(dbg.contains("CN=dev8"));
}

#[test]
fn pem_input_is_accepted() {
    let key = generate_key(KeySpec::EcP384).unwrap();
    let der = rust_csr(&key, "dev9");
    let pem = X509Req::from_der(&der).unwrap().to_pem().unwrap();
    let csr = Csr::from_pem(&pem).unwrap();
    assert_eq!(
        csr.key,
        KeyInfo::Ec {
            curve: "P-384".into()
        }
    );
}

#[test]
fn directory_string_handles_bmp_and_teletex() {
    let bmp: Vec<u8> = "pw€".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let any = Any::new(Tag::BmpString, bmp).unwrap();
    assert_eq!(directory_string(&any).unwrap(), "pw€");
    let any = Any::new(Tag::TeletexString, vec![b'a', 0xe9]).unwrap();
    assert_eq!(directory_string(&any).unwrap(), "aé");
    let any = Any::new(Tag::Integer, vec![1]).unwrap();
    assert!(directory_string(&any).is_err());
}

#[test]
fn rfc4514_escapes_special_characters() {
    let mut b = X509Name::builder().unwrap();
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, " Acme, Inc.")
        .unwrap();
    b.append_entry_by_nid(Nid::COMMONNAME, "#a+b").unwrap();
    let name = b.build();
    assert_eq!(rfc4514(&name), "CN=\\#a\\+b,O=\\ Acme\\, Inc.");
}

/// Generated by micromdm `scepclient` 2.1.0 (Go) with `-challenge 'pä55'
/// -cn dev-go -organization Acme`: a real client's encoding (UTF8String
/// challenge, C/O/OU/CN subject).
const MICROMDM_CSR: &[u8] = include_bytes!("testdata/micromdm_scepclient_2.1.0.csr.pem");

#[test]
fn micromdm_scepclient_csr_is_parsed() {
    let csr = Csr::from_pem(MICROMDM_CSR).unwrap();
    assert_eq!(csr.challenge_password.as_deref(), Some("pä55"));
    assert_eq!(csr.subject_text, "CN=dev-go,OU=MDM,O=Acme,C=US");
    assert_eq!(csr.common_name.as_deref(), Some("dev-go"));
    assert_eq!(csr.key, KeyInfo::Rsa { bits: 2048 });
    assert!(csr.sans.is_empty());
}

/// Found by the `pki_operation_signed` fuzz target: a CN with a NUL byte
/// reached the challenge lookup and PostgreSQL refused the text ("invalid
/// byte sequence for encoding UTF8: 0x00"), an internal error (HTTP 500).
#[test]
fn nul_in_common_name_serial_number_or_san_is_malformed() {
    let key = generate_key(KeySpec::EcP256).unwrap();
    let err = Csr::from_der(&rust_csr(&key, "bank.example\0.evil.example")).unwrap_err();
    assert!(
        matches!(err, CsrError::Malformed(ref m) if m.contains("NUL")),
        "{err:?}"
    );

    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "dev").unwrap();
    name.append_entry_by_nid_with_type(
        Nid::SERIALNUMBER,
        "X1\0",
        openssl::asn1::Asn1Type::UTF8STRING,
    )
    .unwrap();
    let name = name.build();
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let err = Csr::from_der(&b.build().to_der().unwrap()).unwrap_err();
    assert!(
        matches!(err, CsrError::Malformed(ref m) if m.contains("NUL")),
        "{err:?}"
    );
    // A NUL in a dNSName: tests/data/fuzz/pki_operation_signed/nul-in-dns-san
    // (replayed by tests/it/fuzz_replay.rs).

    // Without a NUL the same shapes still parse.
    assert!(Csr::from_der(&rust_csr(&key, "bank.example")).is_ok());
}

/// The signer's key as the SCEP path hands it over: its SPKI hash and a
/// public-key object of its own.
fn known(key: &PKey<openssl::pkey::Private>) -> ([u8; 32], PKey<Public>) {
    let spki = key.public_key_to_der().unwrap();
    let public = PKey::public_key_from_der(&spki).unwrap();
    (openssl::sha::sha256(&spki), public)
}

#[test]
fn a_known_key_that_is_the_requests_own_is_reused() {
    use foreign_types_shared::ForeignTypeRef;
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let (sha, public) = known(&key);
    let csr = Csr::from_der_known_key(&rust_csr(&key, "dev7"), Some((sha, &public))).unwrap();
    assert_eq!(csr.public_key_sha256, sha);
    assert_eq!(csr.public_key.as_ptr(), public.as_ptr());
    assert_eq!(csr.key.to_string(), "RSA 2048");
}

#[test]
fn a_known_key_of_another_device_is_not_used() {
    use foreign_types_shared::ForeignTypeRef;
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let other = generate_key(KeySpec::Rsa(2048)).unwrap();
    let (other_sha, other_public) = known(&other);
    let der = rust_csr(&key, "dev8");
    let csr = Csr::from_der_known_key(&der, Some((other_sha, &other_public))).unwrap();
    assert_ne!(csr.public_key.as_ptr(), other_public.as_ptr());
    assert!(csr.public_key.public_eq(&key));
    assert_eq!(csr.public_key_sha256, known(&key).0);
}

#[test]
fn a_reused_key_still_checks_the_requests_signature() {
    let key = generate_key(KeySpec::Rsa(2048)).unwrap();
    let (sha, public) = known(&key);
    let mut der = rust_csr(&key, "dev9");
    let pos = der.windows(4).position(|w| w == b"dev9").unwrap();
    der[pos + 3] = b'0';
    assert!(matches!(
        Csr::from_der_known_key(&der, Some((sha, &public))),
        Err(CsrError::BadSignature)
    ));
}
