//! A SignedData over id-data with signed attributes (RFC 5652 §5),
//! assembled here for an RSA signer: the CertRep of every enrollment.
//! OpenSSL's PKCS#7 signing builds and re-encodes the whole structure
//! around the one RSA signature; that cost about a twentieth of an
//! enrollment (docs/BENCHMARKS.md). The layout is the one
//! `pkcs7_ffi::sign_with_attributes` writes, which stays for other keys.

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKeyRef, Private};

use super::asn1::{
    algorithm, encode, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET,
};
use super::asn1::{OID_DATA, OID_RSA_ENCRYPTION, OID_SIGNED_DATA};
use super::pkcs1;
use super::pkcs7_ffi::{scep_nids, AttrSpec};
use super::signer::raw_issuer_and_serial;
use super::{DigestAlg, WireError};

const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;

fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
    encode(
        TAG_SEQUENCE,
        &[encode(TAG_OID, oid), encode(TAG_SET, &encode(tag, value))].concat(),
    )
}

/// The OID content of a SCEP attribute's NID (2.16.840.1.113733.1.9.n).
fn scep_oid(nid: openssl::nid::Nid) -> Result<Vec<u8>, WireError> {
    let n = scep_nids()?;
    let arc = [
        (n.message_type, 2u8),
        (n.pki_status, 3),
        (n.fail_info, 4),
        (n.sender_nonce, 5),
        (n.recipient_nonce, 6),
        (n.transaction_id, 7),
    ]
    .into_iter()
    .find(|(m, _)| *m == nid)
    .ok_or_else(|| WireError::Malformed("not a SCEP attribute".into()))?
    .1;
    Ok([0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, arc].to_vec())
}

/// RFC 5652 §11.3: UTCTime until 2049, GeneralizedTime after.
fn signing_time(now: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    use chrono::Datelike;
    let (tag, text) = if now.year() < 2050 {
        (TAG_UTC_TIME, now.format("%y%m%d%H%M%SZ"))
    } else {
        (TAG_GENERALIZED_TIME, now.format("%Y%m%d%H%M%SZ"))
    };
    attribute(OID_SIGNING_TIME, tag, text.to_string().as_bytes())
}

/// `None` when `key` is not RSA (the caller uses OpenSSL's PKCS#7 then).
pub(crate) fn sign_rsa(
    cert_der: &[u8],
    key: &PKeyRef<Private>,
    digest: DigestAlg,
    attrs: &[AttrSpec<'_>],
    content: &[u8],
) -> Result<Option<Vec<u8>>, WireError> {
    if key.id() != Id::RSA {
        return Ok(None);
    }
    let md: MessageDigest = digest.message_digest();
    let (issuer, serial) = raw_issuer_and_serial(cert_der)?;
    let mut signed = vec![
        attribute(OID_CONTENT_TYPE, TAG_OID, OID_DATA),
        signing_time(chrono::Utc::now()),
        attribute(OID_MESSAGE_DIGEST, TAG_OCTET_STRING, &hash(md, content)?),
    ];
    for a in attrs {
        // The kinds a CertRep uses are universal types whose tag number is
        // their OpenSSL type code.
        let tag = u8::try_from(a.kind.raw())
            .map_err(|_| WireError::Malformed("attribute type".into()))?;
        signed.push(attribute(&scep_oid(a.nid)?, tag, a.value));
    }
    // DER: a SET OF in ascending order of its elements' encodings.
    signed.sort();
    let signed = signed.concat();
    let signature = pkcs1::sign(key, md, &encode(TAG_SET, &signed))?;
    let signer_info = encode(
        TAG_SEQUENCE,
        &[
            encode(TAG_INTEGER, &[1]),
            encode(TAG_SEQUENCE, &[issuer, serial].concat()),
            algorithm(digest.oid()),
            encode(0xa0, &signed),
            algorithm(OID_RSA_ENCRYPTION),
            encode(TAG_OCTET_STRING, &signature),
        ]
        .concat(),
    );
    let signed_data = encode(
        TAG_SEQUENCE,
        &[
            encode(TAG_INTEGER, &[1]),
            encode(TAG_SET, &algorithm(digest.oid())),
            encode(
                TAG_SEQUENCE,
                &[
                    encode(TAG_OID, OID_DATA),
                    encode(0xa0, &encode(TAG_OCTET_STRING, content)),
                ]
                .concat(),
            ),
            encode(0xa0, cert_der),
            encode(TAG_SET, &signer_info),
        ]
        .concat(),
    );
    Ok(Some(encode(
        TAG_SEQUENCE,
        &[encode(TAG_OID, OID_SIGNED_DATA), encode(0xa0, &signed_data)].concat(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::pkcs7_ffi::{sign_with_attributes, AttrKind};
    use crate::wire::testutil::self_signed;

    /// The signingTime value (UTCTime content) of a SignedData.
    fn time_at(der: &[u8]) -> usize {
        let oid = encode(TAG_OID, OID_SIGNING_TIME);
        let at = der.windows(oid.len()).position(|w| w == oid).unwrap();
        // OID, SET header, UTCTime header, then the 13 characters.
        at + oid.len() + 4
    }

    #[test]
    fn the_same_bytes_as_openssl_but_for_time_and_signature() {
        let ra = self_signed("signed ra");
        let nids = scep_nids().unwrap();
        let attrs = [
            AttrSpec {
                nid: nids.transaction_id,
                kind: AttrKind::PrintableString,
                value: b"TX-1",
            },
            AttrSpec {
                nid: nids.message_type,
                kind: AttrKind::PrintableString,
                value: b"3",
            },
            AttrSpec {
                nid: nids.sender_nonce,
                kind: AttrKind::OctetString,
                value: &[7; 16],
            },
            AttrSpec {
                nid: nids.fail_info,
                kind: AttrKind::PrintableString,
                value: b"2",
            },
        ];
        for (digest, content) in [
            (DigestAlg::Sha256, &b""[..]),
            (DigestAlg::Sha1, &b"enveloped bytes"[..]),
            (DigestAlg::Sha512, &[0x30; 300][..]),
        ] {
            let ours = sign_rsa(&ra.cert.to_der().unwrap(), &ra.key, digest, &attrs, content)
                .unwrap()
                .expect("RSA is signed here");
            let theirs = sign_with_attributes(
                &ra.cert,
                &ra.key,
                digest.message_digest(),
                &[],
                &attrs,
                content,
            )
            .unwrap();
            assert_eq!(ours.len(), theirs.len(), "{digest:?}");
            let (a, b) = (time_at(&ours), time_at(&theirs));
            assert_eq!(a, b);
            let mut same_time = ours.clone();
            same_time[a..a + 13].copy_from_slice(&theirs[b..b + 13]);
            // Everything but the signature (the last 256 bytes) is the same.
            let body = ours.len() - 256;
            assert_eq!(same_time[..body], theirs[..body], "{digest:?}");
            // And it verifies as OpenSSL's does.
            let p7 = openssl::pkcs7::Pkcs7::from_der(&ours).unwrap();
            let content_back = super::super::decode::verify_content(&p7, &ra.cert).unwrap();
            assert_eq!(content_back, content);
        }
    }

    #[test]
    fn an_ec_key_is_left_to_openssl() {
        let key = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let key = openssl::pkey::PKey::from_ec_key(key).unwrap();
        let ra = self_signed("signed ra");
        assert!(sign_rsa(
            &ra.cert.to_der().unwrap(),
            &key,
            DigestAlg::Sha256,
            &[],
            b""
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn signing_time_is_utc_until_2049_then_generalized() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2049, 12, 31, 23, 59, 59)
            .unwrap();
        assert!(signing_time(t).ends_with(&encode(TAG_UTC_TIME, b"491231235959Z")));
        let t = chrono::Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0).unwrap();
        assert!(signing_time(t).ends_with(&encode(TAG_GENERALIZED_TIME, b"20500101000000Z")));
    }
}
