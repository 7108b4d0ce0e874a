//! Test helpers for the wire module: throwaway RSA identities, a hand-built
//! CRL, byte patching, a BER re-encoder (indefinite lengths and constructed
//! OCTET STRINGs, as Apple clients send, X.690 §8.1.3.6, §8.7.3) and a DER
//! walker that rejects constructed OCTET STRINGs.

use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

use super::asn1::{encode, read_single, read_tlv, Tlv, TAG_OCTET_STRING, TAG_SEQUENCE};
use super::client::{ClientContent, ClientRequest};
use super::RaIdentity;
use super::{ContentCipher, DigestAlg, KeyTransport, MessageType, Nonce, TransactionId};

pub(crate) struct Identity {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Identity {
    pub fn ra(&self) -> RaIdentity {
        RaIdentity::new(self.cert.clone(), self.key.clone()).unwrap()
    }
}

// RSA-2048 generation is slow; a small pool keyed by name hash is enough
// for distinct signer / RA / other-recipient identities.
fn pooled_key(name: &str) -> PKey<Private> {
    static POOL: OnceLock<Vec<PKey<Private>>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        (0..4)
            .map(|_| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
            .collect()
    });
    let idx = match name {
        n if n.contains("other") => 3,
        n if n.contains("ra") || n.contains(" ca") => 1,
        n if n.contains("client") => 2,
        _ => 0,
    };
    pool[idx].clone()
}

/// A self-signed RSA-2048 certificate with CN `cn`.
pub(crate) fn self_signed(cn: &str) -> Identity {
    let key = pooled_key(cn);
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial
        .rand(63, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Identity {
        cert: b.build(),
        key,
    }
}

/// A v2 CRL with no entries, issued and signed by `issuer`.
pub(crate) fn empty_crl(issuer: &Identity) -> Vec<u8> {
    // sha256WithRSAEncryption, NULL parameters
    let alg = encode(
        TAG_SEQUENCE,
        &[
            &[
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
            ][..],
            &[0x05, 0x00],
        ]
        .concat(),
    );
    let tbs = encode(
        TAG_SEQUENCE,
        &[
            &[0x02, 0x01, 0x01][..],
            &alg,
            &issuer.cert.subject_name().to_der().unwrap(),
            &encode(0x17, b"250101000000Z"),
            &encode(0x17, b"350101000000Z"),
        ]
        .concat(),
    );
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &issuer.key).unwrap();
    signer.update(&tbs).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    let crl = encode(
        TAG_SEQUENCE,
        &[&tbs[..], &alg, &encode(0x03, &[&[0u8][..], &sig].concat())].concat(),
    );
    assert!(openssl::x509::X509Crl::from_der(&crl).is_ok());
    crl
}

/// Replaces the single occurrence of `from` with `to` (same length).
pub(crate) fn patch(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let hits: Vec<usize> = der
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "pattern must occur exactly once");
    let mut out = der.to_vec();
    out[hits[0]..hits[0] + to.len()].copy_from_slice(to);
    out
}

fn indefinite(tag: u8, children: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![tag | 0x20, 0x80];
    for c in children {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// An OCTET STRING (or implicit [0]) re-encoded as a constructed,
/// indefinite-length string of 64-byte primitive chunks.
fn chunked(tag: u8, content: &[u8]) -> Vec<u8> {
    let chunks: Vec<Vec<u8>> = content
        .chunks(64)
        .map(|c| encode(TAG_OCTET_STRING, c))
        .collect();
    indefinite(tag, &chunks)
}

fn kids(t: &Tlv<'_>) -> Vec<Vec<u8>> {
    t.children()
        .unwrap()
        .iter()
        .map(|c| c.raw.to_vec())
        .collect()
}

/// BER re-encoding of a ContentInfo along its spine (ContentInfo, [0],
/// SignedData/EnvelopedData, encapContentInfo/encryptedContentInfo and the
/// content octets, chunked but unchanged). Certificates and SignerInfos are
/// left as they are, as real clients do.
pub(crate) fn berify(der: &[u8]) -> Vec<u8> {
    let ci = read_single(der).unwrap();
    let ci_kids = ci.children().unwrap();
    let body = ci_kids[1].children().unwrap()[0];
    let mut fields = kids(&body);
    // SignedData: version, digestAlgorithms, encapContentInfo, ...
    // EnvelopedData: version, recipientInfos, encryptedContentInfo, ...
    let idx = 2;
    let inner = read_single(&fields[idx]).unwrap();
    let inner_kids = inner.children().unwrap();
    let mut new_inner = vec![inner_kids[0].raw.to_vec()];
    for k in &inner_kids[1..] {
        match k.tag {
            // encapContentInfo [0] EXPLICIT OCTET STRING
            0xa0 => {
                let os = k.children().unwrap()[0];
                // The content octets are signed, so they stay byte-identical.
                new_inner.push(indefinite(0xa0, &[chunked(TAG_OCTET_STRING, os.content)]));
            }
            // encryptedContent [0] IMPLICIT OCTET STRING
            0x80 => new_inner.push(chunked(0xa0, k.content)),
            _ => new_inner.push(k.raw.to_vec()),
        }
    }
    fields[idx] = indefinite(TAG_SEQUENCE, &new_inner);
    let body = indefinite(TAG_SEQUENCE, &fields);
    indefinite(
        TAG_SEQUENCE,
        &[ci_kids[0].raw.to_vec(), indefinite(0xa0, &[body])],
    )
}

/// Fails if any constructed OCTET STRING or indefinite length appears,
/// descending into OCTET STRINGs that hold a whole ContentInfo.
pub(crate) fn assert_strict_der(der: &[u8]) {
    fn walk(input: &[u8]) {
        let mut rest = input;
        while !rest.is_empty() {
            let (t, after) = read_tlv(rest).unwrap();
            assert_ne!(t.raw[1], 0x80, "indefinite length in output");
            assert_ne!(t.tag, 0x24, "constructed OCTET STRING in output");
            if t.constructed() {
                // [0] IMPLICIT encryptedContent must be primitive (0x80).
                if t.tag == 0xa0 && t.content.first() == Some(&0x04) && t.content.len() > 2 {
                    let first = read_tlv(t.content).unwrap().0;
                    if first.raw.len() < t.content.len() {
                        panic!("constructed [0] OCTET STRING chunks in output");
                    }
                }
                walk(t.content);
            } else if t.tag == TAG_OCTET_STRING && t.content.first() == Some(&TAG_SEQUENCE) {
                if let Ok(inner) = read_single(t.content) {
                    walk(inner.raw);
                }
            }
            rest = after;
        }
    }
    walk(der);
}

#[test]
#[should_panic(expected = "in output")]
fn strict_der_check_rejects_ber() {
    let id = self_signed("strict check");
    let der = super::pkcs7_ffi::sign_with_attributes(
        &id.cert,
        &id.key,
        MessageDigest::sha256(),
        &[],
        &[],
        &[0x30; 200],
    )
    .unwrap();
    assert_strict_der(&berify(&der));
}

/// A PKCSReq from `client` to `ra` carrying `content`: transactionID
/// `TXID-ABCDEF`, AES-256, PKCS#1 v1.5, SHA-256 (tests change fields).
pub(crate) fn request<'a>(
    client: &'a Identity,
    ra: &'a Identity,
    content: ClientContent<'a>,
) -> ClientRequest<'a> {
    ClientRequest {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId("TXID-ABCDEF".into()),
        sender_nonce: Nonce(vec![0x5a; 16]),
        signer_cert: &client.cert,
        signer_key: &client.key,
        recipient: &ra.cert,
        cipher: ContentCipher::Aes256Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
        digest: DigestAlg::Sha256,
        content,
    }
}
