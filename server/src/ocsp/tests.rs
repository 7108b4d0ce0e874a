//! RFC 6960 requests and responses, checked against OpenSSL's OCSP code.

use chrono::{Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest as SslRequest, OcspResponse as SslResponse,
    OcspResponseStatus as SslStatus, OcspRevokedStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

use super::*;
use crate::ca::test_support::make_ca;
use crate::ca::{CaIdentity, KeySpec};

fn leaf(ca: &CaIdentity) -> X509 {
    // Any certificate the CA signed will do: the RA's.
    crate::ca::test_support::make_ra(ca).cert().clone()
}

fn request_for(ca: &CaIdentity, cert: &X509, md: MessageDigest) -> Vec<u8> {
    let mut r = SslRequest::new().unwrap();
    r.add_id(OcspCertId::from_cert(md, cert, ca.cert()).unwrap())
        .unwrap();
    r.to_der().unwrap()
}

fn answer(status: Status, next: bool) -> Answer {
    let now = Utc::now();
    Answer {
        status,
        this_update: now,
        next_update: next.then(|| now + Duration::seconds(60)),
    }
}

fn ca_key_bits(ca: &CaIdentity) -> Vec<u8> {
    use der::Decode;
    let der = ca.cert_der().unwrap();
    let c = x509_cert::Certificate::from_der(&der).unwrap();
    c.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()
        .unwrap()
        .to_vec()
}

/// Signs `status` for `cert` and returns OpenSSL's reading of it, verified
/// against the CA alone (the responder certificate travels in the response).
fn round_trip(ca: &CaIdentity, cert: &X509, status: Status) -> (OcspCertStatus, Option<i32>) {
    let req = parse_request(&request_for(ca, cert, MessageDigest::sha1())).unwrap();
    assert!(req.queries[0].is_issued_by(ca.subject_der(), &ca_key_bits(ca)));
    let responder = Responder::issue(ca).unwrap();
    let der = basic_response(
        &responder,
        &req.queries,
        &[answer(status, true)],
        None,
        Utc::now(),
    )
    .unwrap();
    let resp = SslResponse::from_der(&der).unwrap();
    assert_eq!(resp.status(), SslStatus::SUCCESSFUL);
    let basic = resp.basic().unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(ca.cert().clone()).unwrap();
    let store = store.build();
    basic
        .verify(&Stack::new().unwrap(), &store, OcspFlag::empty())
        .expect("signed by a responder the CA delegated");
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, ca.cert()).unwrap();
    let s = basic.find_status(&id).expect("the asked certificate");
    s.check_validity(300, None).unwrap();
    let reason = (s.status == OcspCertStatus::REVOKED).then(|| s.reason.as_raw());
    (s.status, reason)
}

#[test]
fn good_revoked_and_unknown_verify_with_openssl() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let cert = leaf(&ca);
    assert_eq!(round_trip(&ca, &cert, Status::Good).0, OcspCertStatus::GOOD);
    assert_eq!(
        round_trip(&ca, &cert, Status::Unknown).0,
        OcspCertStatus::UNKNOWN
    );
    let revoked = Status::Revoked {
        at: Utc::now() - Duration::hours(1),
        reason: Some(RevocationReason::KeyCompromise),
    };
    let (s, reason) = round_trip(&ca, &cert, revoked);
    assert_eq!(s, OcspCertStatus::REVOKED);
    assert_eq!(reason, Some(OcspRevokedStatus::KEY_COMPROMISE.as_raw()));
}

#[test]
fn an_ec_ca_delegates_to_an_rsa_responder() {
    let ca = make_ca(KeySpec::EcP256);
    let cert = leaf(&ca);
    assert_eq!(round_trip(&ca, &cert, Status::Good).0, OcspCertStatus::GOOD);
}

#[test]
fn responder_certificate_is_delegated_for_ocsp_signing_only() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let r = Responder::issue(&ca).unwrap();
    let text = String::from_utf8(r.cert().to_text().unwrap()).unwrap();
    assert!(text.contains("OCSP Signing"), "{text}");
    assert!(text.contains("OCSP No Check"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert_eq!(
        r.cert().issuer_name().to_der().unwrap(),
        ca.subject_der(),
        "issued by the CA it answers for"
    );
    assert!(!r.is_due_for_renewal(Utc::now()));
    assert!(r.is_due_for_renewal(Utc::now() + Duration::days(4)));
}

#[test]
fn sha256_cert_ids_match_and_another_ca_does_not() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let other = make_ca(KeySpec::Rsa(2048));
    let cert = leaf(&ca);
    let req = parse_request(&request_for(&ca, &cert, MessageDigest::sha256())).unwrap();
    assert!(req.queries[0].is_issued_by(ca.subject_der(), &ca_key_bits(&ca)));
    // Same name, other key: the key hash tells them apart.
    assert_eq!(ca.subject_der(), other.subject_der());
    assert!(!req.queries[0].is_issued_by(other.subject_der(), &ca_key_bits(&other)));
    assert_eq!(
        req.queries[0].serial,
        cert.serial_number().to_bn().unwrap().to_vec()
    );
}

#[test]
fn garbage_and_empty_requests_are_malformed() {
    assert!(parse_request(b"").is_err());
    assert!(parse_request(b"\x30\x03\x02\x01\x00").is_err());
    assert!(parse_request(&[0x30; 40]).is_err());
    let ca = make_ca(KeySpec::Rsa(2048));
    let mut good = request_for(&ca, &leaf(&ca), MessageDigest::sha1());
    good.push(0);
    assert!(parse_request(&good).is_err(), "trailing octets");
}

/// The DER of a one-certificate request carrying `nonce_value` as the
/// nonce extension's extnValue.
fn request_with_nonce(ca: &CaIdentity, nonce_value: &[u8]) -> Vec<u8> {
    use x509_cert02::der::Encode;
    let base = parse_request(&request_for(ca, &leaf(ca), MessageDigest::sha1())).unwrap();
    let req = OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: base.queries[0].id.clone(),
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![x509_cert02::ext::Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(nonce_value).unwrap(),
            }]),
        },
        optional_signature: None,
    };
    req.to_der().unwrap()
}

#[test]
fn rfc8954_nonce_of_1_to_32_octets_is_echoed_longer_refused() {
    let ca = make_ca(KeySpec::Rsa(2048));
    for len in [1usize, 16, 32] {
        let value = OctetString::new(vec![7u8; len]).unwrap().to_der().unwrap();
        let req = parse_request(&request_with_nonce(&ca, &value)).unwrap();
        assert_eq!(req.nonce.as_deref(), Some(&value[..]), "{len}");
        let responder = Responder::issue(&ca).unwrap();
        let der = basic_response(
            &responder,
            &req.queries,
            &[answer(Status::Good, false)],
            req.nonce.as_deref(),
            Utc::now(),
        )
        .unwrap();
        let parsed = OcspResponse::from_der(&der).unwrap();
        let basic = x509_ocsp::BasicOcspResponse::from_der(
            parsed.response_bytes.unwrap().response.as_bytes(),
        )
        .unwrap();
        assert_eq!(basic.nonce().unwrap().0.as_bytes(), &vec![7u8; len][..]);
    }
    for bad in [
        OctetString::new(vec![7u8; 33]).unwrap().to_der().unwrap(),
        OctetString::new(Vec::<u8>::new())
            .unwrap()
            .to_der()
            .unwrap(),
        b"not DER".to_vec(),
    ] {
        assert!(parse_request(&request_with_nonce(&ca, &bad)).is_err());
    }
}

#[test]
fn error_statuses_are_bare_responses() {
    let m = SslResponse::from_der(&malformed_request()).unwrap();
    assert_eq!(m.status(), SslStatus::MALFORMED_REQUEST);
    let u = SslResponse::from_der(&error_response(OcspResponseStatus::Unauthorized)).unwrap();
    assert_eq!(u.status(), SslStatus::UNAUTHORIZED);
    assert!(u.basic().is_err());
}

#[test]
fn the_client_request_reads_back_with_its_nonce() {
    let ca = make_ca(KeySpec::Rsa(2048));
    let cert = leaf(&ca);
    let der = client::request(ca.cert(), &cert, Some(&[9u8; 16])).unwrap();
    let req = parse_request(&der).unwrap();
    assert!(req.queries[0].is_issued_by(ca.subject_der(), &ca_key_bits(&ca)));
    let responder = Responder::issue(&ca).unwrap();
    let resp = basic_response(
        &responder,
        &req.queries,
        &[answer(Status::Good, false)],
        req.nonce.as_deref(),
        Utc::now(),
    )
    .unwrap();
    assert_eq!(client::response_nonce(&resp), Some(vec![9u8; 16]));
    let bare = basic_response(
        &responder,
        &req.queries,
        &[answer(Status::Good, false)],
        None,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(client::response_nonce(&bare), None);
}
