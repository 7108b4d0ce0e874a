use super::*;
use crate::ca::test_support::{make_ca, openssl, Scratch};
use crate::ca::KeySpec;
use chrono::Duration;
use openssl::x509::{ReasonCode, X509Crl};

fn entries() -> Vec<RevokedEntry> {
    let t = DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    vec![
        RevokedEntry {
            serial: vec![0x01, 0x02, 0x03],
            revoked_at: t,
            reason: Some(RevocationReason::KeyCompromise),
        },
        RevokedEntry {
            // High bit set: must still be encoded as a positive INTEGER.
            serial: vec![0x80, 0xff],
            revoked_at: t,
            reason: None,
        },
        RevokedEntry {
            serial: vec![0x7f; 20],
            revoked_at: t,
            reason: Some(RevocationReason::PrivilegeWithdrawn),
        },
    ]
}

fn reason_of(crl: &X509Crl, serial: &[u8]) -> Option<i64> {
    let revoked = crl.get_revoked().unwrap();
    let entry = revoked
        .iter()
        .find(|r| r.serial_number().to_bn().unwrap().to_vec() == serial)
        .unwrap();
    entry
        .extension::<ReasonCode>()
        .unwrap()
        .map(|(_, e)| e.get_i64().unwrap())
}

#[test]
fn crl_lists_revoked_serials_with_reasons_and_verifies() {
    let ca = make_ca(KeySpec::EcP256);
    let now = Utc::now();
    let der = sign_crl(&ca, &entries(), 7, now, now + Duration::days(7)).unwrap();
    let crl = X509Crl::from_der(&der).unwrap();
    assert!(crl.verify(&ca.public_key().unwrap()).unwrap());
    assert_eq!(crl.issuer_name().to_der().unwrap(), ca.subject_der());
    assert_eq!(crl.get_revoked().unwrap().len(), 3);
    assert_eq!(reason_of(&crl, &[1, 2, 3]), Some(1));
    assert_eq!(reason_of(&crl, &[0x80, 0xff]), None);
    assert_eq!(reason_of(&crl, &[0x7f; 20]), Some(9));
    let (_, number) = crl
        .extension::<openssl::x509::extension::CrlNumber>()
        .unwrap()
        .unwrap();
    assert_eq!(
        number.to_bn().unwrap().to_dec_str().unwrap().to_string(),
        "7"
    );
    let other = make_ca(KeySpec::EcP256);
    assert!(!crl.verify(&other.public_key().unwrap()).unwrap());
}

#[test]
fn openssl_cli_reads_crl_and_checks_signature() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let now = Utc::now();
    let der = sign_crl(&ca, &entries(), 42, now, now + Duration::days(1)).unwrap();
    let dir = Scratch::new();
    let crl_path = dir.write("ca.crl", &der);
    let ca_path = dir.write("ca.pem", &ca.cert_pem().unwrap());
    let (ok, text) = openssl(&[
        "crl", "-inform", "DER", "-in", &crl_path, "-noout", "-text", "-CAfile", &ca_path,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Version 2"), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(text.contains("42"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Privilege Withdrawn"), "{text}");
    assert!(text.contains("Serial Number: 80FF"), "{text}");
    assert!(text.contains("Serial Number: 010203"), "{text}");
}

#[test]
fn empty_crl_is_valid() {
    let ca = make_ca(KeySpec::EcP256);
    let now = Utc::now();
    let der = sign_crl(&ca, &[], 1, now, now + Duration::days(1)).unwrap();
    let crl = X509Crl::from_der(&der).unwrap();
    assert!(crl.verify(&ca.public_key().unwrap()).unwrap());
    assert!(crl.get_revoked().is_none_or(|r| r.is_empty()));
}

#[test]
fn crl_rejects_bad_inputs() {
    let ca = make_ca(KeySpec::EcP256);
    let now = Utc::now();
    let later = now + Duration::days(1);
    assert!(matches!(
        sign_crl(&ca, &[], -1, now, later),
        Err(CaError::InvalidCrl(_))
    ));
    assert!(matches!(
        sign_crl(&ca, &[], 1, later, now),
        Err(CaError::InvalidCrl(_))
    ));
    let zero = RevokedEntry {
        serial: vec![0, 0],
        revoked_at: now,
        reason: None,
    };
    assert!(matches!(
        sign_crl(&ca, &[zero], 1, now, later),
        Err(CaError::InvalidCrl(_))
    ));
}

#[test]
fn revocation_reasons_round_trip_with_rfc_codes() {
    let expected = [0u8, 1, 2, 3, 4, 5, 6, 9];
    for (r, code) in RevocationReason::ALL.iter().zip(expected) {
        assert_eq!(r.code(), code);
        assert_eq!(RevocationReason::from_code(code), Some(*r));
        assert_eq!(r.as_str().parse::<RevocationReason>().unwrap(), *r);
    }
    assert_eq!(
        "caCompromise".parse::<RevocationReason>().unwrap(),
        RevocationReason::CaCompromise
    );
    assert_eq!(RevocationReason::from_code(7), None);
    assert!("stolen".parse::<RevocationReason>().is_err());
}
