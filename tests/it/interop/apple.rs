//! Apple (iOS, macOS: the SCEP payload of a configuration profile). The
//! Security framework's CMS encoder streams: the PKIMessage comes in BER,
//! indefinite lengths on the way down to the content, the encapsulated
//! content and the envelope's encrypted content in constructed OCTET
//! STRINGs, and the pkcsPKIEnvelope is BER as well, so the signature's
//! messageDigest covers those BER octets. The re-encoder here
//! (`messages::ber`) goes further than Apple, giving every constructed CMS
//! element an indefinite length; it leaves in DER what every client does
//! (certificates, signed attributes, Names). By GET, Apple leaves `+`
//! unescaped in the base64.

use base64::Engine;
use openssl::pkcs7::Pkcs7;
use openssl::symm::Cipher;
use server::wire::{MessageType, Nonce, TransactionId};

use super::messages::{assert_issued, ber, envelope, get, Ra, Requester};
use crate::support::Scepd;

/// A PKCSReq as Apple's encoder writes it: the CSR enveloped to the RA in
/// BER, that BER signed, the SignedData re-encoded in BER.
fn apple_pkcs_req(
    ra: &Ra,
    dev: &Requester,
    txid: &TransactionId,
    nonce: &Nonce,
    csr: &[u8],
) -> Vec<u8> {
    let env_der = envelope(ra, csr, Cipher::aes_256_cbc());
    let env_ber = ber::enveloped_data(&env_der);
    assert_ne!(env_ber, env_der);
    // The re-encoding changes the encoding only.
    assert_eq!(
        Pkcs7::from_der(&env_ber).unwrap().to_der().unwrap(),
        env_der,
        "the BER envelope reads as the DER one"
    );
    let signed_der = dev.signed_raw(MessageType::PkcsReq.code(), &txid.0, &nonce.0, &env_ber);
    let signed_ber = ber::signed_data(&signed_der);
    assert_eq!(
        Pkcs7::from_der(&signed_ber).unwrap().to_der().unwrap(),
        signed_der,
        "the BER PKIMessage reads as the DER one"
    );
    // Indefinite lengths all the way: ContentInfo, [0], SignedData,
    // digestAlgorithms and its one algorithm, encapContentInfo, [0],
    // eContent, certificates, signerInfos, SignerInfo, sid, digestAlgorithm
    // and signatureAlgorithm (14); in the envelope ContentInfo, [0],
    // EnvelopedData, recipientInfos, KeyTransRecipientInfo, rid,
    // keyEncryptionAlgorithm, encryptedContentInfo,
    // contentEncryptionAlgorithm, encryptedContent (10).
    assert_eq!(&signed_ber[..2], &[0x30, 0x80]);
    assert_eq!(ber::indefinite_count(&signed_ber), 14, "outer BER");
    assert_eq!(ber::indefinite_count(&env_ber), 10, "envelope BER");
    assert!(
        signed_ber.windows(2).any(|w| w == [0x24, 0x80]),
        "chunked eContent"
    );
    assert!(
        env_ber.windows(3).any(|w| w == [0xa0, 0x80, 0x04]),
        "chunked encryptedContent"
    );
    signed_ber
}

#[test]
fn apple_ber_indefinite_lengths_and_chunked_octet_strings_enroll() {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    let dev = Requester::fresh("apple-ber-device");
    let csr = dev.csr("apple-ber-device", Some(&s.mint("default")), &[]);
    let txid = TransactionId("A1B2C3D4E5F60718293A4B5C6D7E8F90".into());
    let nonce = Nonce::random().unwrap();
    let msg = apple_pkcs_req(&ra, &dev, &txid, &nonce, &csr);
    let rep = dev.send(&s, &ra, &msg).rep(&s);
    assert_issued(&s, &rep, &txid, &nonce, &dev.key);
    assert_eq!(s.count("certificates"), 1);
}

#[test]
fn apple_get_with_unescaped_plus_enrolls() {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    let dev = Requester::fresh("apple-get-device");
    let csr = dev.csr("apple-get-device", Some(&s.mint("default")), &[]);
    let txid = TransactionId("0F1E2D3C4B5A69788796A5B4C3D2E1F0".into());
    let nonce = Nonce::random().unwrap();
    let msg = apple_pkcs_req(&ra, &dev, &txid, &nonce, &csr);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
    assert!(b64.contains('+'), "a message of this size has a '+'");
    // '+' raw, '/' and '=' escaped.
    let message = b64.replace('/', "%2F").replace('=', "%3D");
    let url = format!(
        "{}?operation=PKIOperation&message={message}",
        s.scep_url("default")
    );
    let body = get(&url).unwrap_or_else(|e| panic!("{e:?}\n{}", s.log()));
    let rep = dev.read_reply(&ra, &body).unwrap();
    assert_issued(&s, &rep, &txid, &nonce, &dev.key);
    assert_eq!(s.count("certificates"), 1);
}
