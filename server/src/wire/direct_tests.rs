//! The direct path reads the common request exactly as OpenSSL's path
//! does, and leaves everything it does not verify to that path.

use crate::wire::client::{build_request, sign_request, ClientContent};
use crate::wire::decode::decode;
use crate::wire::testutil::{berify, patch, request, self_signed, Identity};
use crate::wire::DigestAlg;
use crate::wire::WireError;

/// Neither read directly nor accepted by OpenSSL's path: BadSignature.
fn refused_as_openssl_refuses(forged: &[u8], ra: &Identity) {
    assert!(super::decode(forged).is_none());
    let msg = decode(forged).unwrap();
    assert!(!msg.read_directly());
    assert!(matches!(msg.open(&ra.ra()), Err(WireError::BadSignature)));
}

#[test]
fn the_common_request_is_read_directly_and_as_openssl_reads_it() {
    let (client, ra) = (self_signed("direct client"), self_signed("direct ra"));
    let csr = b"\x30\x03\x02\x01\x00".to_vec();
    for digest in [
        DigestAlg::Sha1,
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Sha512,
    ] {
        let mut req = request(&client, &ra, ClientContent::Csr(&csr));
        req.digest = digest;
        let der = build_request(&req).unwrap();
        let direct = decode(&der).unwrap();
        assert!(direct.read_directly(), "{digest:?}");
        let via = super::super::decode::decode_openssl(&der).unwrap();
        assert!(!via.read_directly());
        assert_eq!(direct.header(), via.header());
        assert_eq!(direct.header().digest, digest);
        assert_eq!(direct.signer_cert().der(), via.signer_cert().der());
        let (a, b) = (direct.open(&ra.ra()).unwrap(), via.open(&ra.ra()).unwrap());
        assert_eq!((a.content, a.cipher), (b.content, b.cipher));
    }
}

#[test]
fn a_message_that_does_not_verify_is_left_to_openssl() {
    let (client, ra) = (self_signed("direct client"), self_signed("direct ra"));
    let csr = b"\x30\x03\x02\x01\x00".to_vec();
    let der = build_request(&request(&client, &ra, ClientContent::Csr(&csr))).unwrap();
    assert!(super::decode(&der).is_some());

    // A signed attribute changed: the signature no longer covers it.
    refused_as_openssl_refuses(&patch(&der, b"TXID-ABCDEF", b"TXID-ABCDEG"), &ra);

    // The last byte of the signature.
    let mut forged = der.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    refused_as_openssl_refuses(&forged, &ra);
}

#[test]
fn content_that_does_not_match_its_digest_is_left_to_openssl() {
    let (client, ra) = (self_signed("direct client"), self_signed("direct ra"));
    let req = request(&client, &ra, ClientContent::Csr(b"\x30\x00"));
    // Signed over one envelope, carrying another of the same length.
    let env = crate::wire::envelope::encrypt(b"\x30\x00", &ra.cert, req.cipher, req.key_transport)
        .unwrap();
    let der = sign_request(&req, &env).unwrap();
    let mut other = env.clone();
    let n = other.len();
    other[n - 1] ^= 0x80;
    refused_as_openssl_refuses(&patch(&der, &env, &other), &ra);
}

#[test]
fn a_signer_not_among_the_certificates_is_left_to_openssl() {
    let (client, ra) = (self_signed("direct client"), self_signed("direct ra"));
    let csr = b"\x30\x03\x02\x01\x00".to_vec();
    let der = build_request(&request(&client, &ra, ClientContent::Csr(&csr))).unwrap();
    // Change the serial in the SignerInfo's sid only (the certificate's own
    // serial appears first in the message).
    let serial = client.cert.serial_number().to_bn().unwrap().to_vec();
    let first = der.windows(serial.len()).position(|w| w == serial).unwrap();
    let second = first
        + 1
        + der[first + 1..]
            .windows(serial.len())
            .position(|w| w == serial)
            .unwrap();
    let mut forged = der.clone();
    forged[second + serial.len() - 1] ^= 1;
    assert!(super::decode(&forged).is_none());
    assert!(decode(&forged).is_err());
}

#[test]
fn ber_along_the_spine_is_read_directly_as_openssl_reads_it() {
    // Apple's layout: indefinite lengths and a chunked content, with the
    // certificates and the SignerInfo in DER.
    let (client, ra) = (self_signed("direct client"), self_signed("direct ra"));
    let csr = b"\x30\x03\x02\x01\x00".to_vec();
    let der = build_request(&request(&client, &ra, ClientContent::Csr(&csr))).unwrap();
    let ber = berify(&der);
    assert_ne!(ber, der);
    assert!(super::decode(&ber).is_some());
    assert_eq!(
        crate::wire::direct_agrees_with_openssl(&ber, &ra.ra()),
        Ok(true)
    );
    assert_eq!(
        decode(&ber).unwrap().header().transaction_id.0,
        "TXID-ABCDEF"
    );
}

/// What the `decode` fuzz target found the two paths reading differently
/// (a digestAlgorithms entry OpenSSL refuses, which the direct path did not
/// look at): each now reads the same both ways.
#[test]
fn the_decode_fuzz_reproducers_read_the_same_both_ways() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/fuzz/decode");
    let ra = fuzz_ra();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let der = std::fs::read(&path).unwrap();
        n += 1;
        if let Err(e) = crate::wire::direct_agrees_with_openssl(&der, &ra) {
            panic!("{}: {e}", path.display());
        }
    }
    assert!(n >= 1);
}

fn fuzz_ra() -> crate::wire::RaIdentity {
    crate::wire::RaIdentity::new(
        openssl::x509::X509::from_pem(include_bytes!("../../../fuzz/fixtures/ra.crt")).unwrap(),
        openssl::pkey::PKey::private_key_from_pem(include_bytes!("../../../fuzz/fixtures/ra.key"))
            .unwrap(),
    )
    .unwrap()
}

/// The fuzzing seeds (scepclient captures and the project's client, every
/// cipher, key transport and message type) read the same both ways.
#[test]
fn the_decode_seed_corpus_reads_the_same_both_ways() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/decode");
    let ra = fuzz_ra();
    let (mut direct, mut seeds) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let der = std::fs::read(&path).unwrap();
        seeds += 1;
        match crate::wire::direct_agrees_with_openssl(&der, &ra) {
            Ok(true) => direct += 1,
            Ok(false) => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    // The scepclient captures and the project's client's RSA-signed
    // requests are the common case the direct path exists for.
    assert!(seeds >= 20, "{seeds} seeds");
    assert!(
        direct * 2 >= seeds,
        "only {direct} of {seeds} read directly"
    );
}
