//! The common PKIMessage read and its signature checked without OpenSSL's
//! PKCS#7 parser: one SignerInfo with signed attributes, an RSA signer
//! certificate among the message's certificates, SHA-1/SHA-2 with PKCS#1
//! v1.5, the content a primitive OCTET STRING. `d2i_PKCS7` parses every
//! certificate's key through OpenSSL 3's decoder framework, which cost
//! about a tenth of an enrollment (docs/BENCHMARKS.md).
//!
//! Only a message that verifies is returned. Anything else — another
//! layout, a bad signature, a BER-only encoding — gives `None` and goes to
//! `decode`'s OpenSSL path, which gives the established answer (or error),
//! so the two cannot disagree on what is refused.

use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::sign::Verifier;

use super::asn1::{read_single, Tlv, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET};
use super::decode::Attrs;
use super::pkcs7_ffi::{scep_nids, AttrKind};
use super::signer::{raw_issuer_and_serial, SignerCert};

const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 2.16.840.1.113733.1.9 (VeriSign's SCEP attributes); the last arc follows.
const SCEP_ARC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09];

/// A message whose signature verified.
pub(super) struct Verified {
    pub attrs: SignedAttrs,
    pub signer: SignerCert,
    /// The signed content (the pkcsPKIEnvelope).
    pub content: Vec<u8>,
}

/// One signed attribute: OID content, its value's tag and content.
type Attr = (Vec<u8>, u8, Vec<u8>);

/// The signed attributes and the SignerInfo's digest.
pub(super) struct SignedAttrs {
    attrs: Vec<Attr>,
    digest: Nid,
}

impl Attrs for SignedAttrs {
    fn signed_attribute(&self, nid: Nid) -> Option<(AttrKind, Vec<u8>)> {
        let n = scep_nids().ok()?;
        let arc = [
            (n.message_type, 2u8),
            (n.pki_status, 3),
            (n.fail_info, 4),
            (n.sender_nonce, 5),
            (n.recipient_nonce, 6),
            (n.transaction_id, 7),
        ]
        .into_iter()
        .find(|(m, _)| *m == nid)?
        .1;
        let oid = [SCEP_ARC, &[arc]].concat();
        self.attrs
            .iter()
            .find(|(o, _, _)| *o == oid)
            .map(|(_, tag, v)| (AttrKind::from_tag(*tag), v.clone()))
    }

    fn signer_count(&self) -> usize {
        1
    }

    fn digest_nid(&self) -> Option<Nid> {
        Some(self.digest)
    }
}

/// The digest of a SignerInfo, and the signature algorithms that go with
/// it (rsaEncryption, or the matching shaNWithRSAEncryption).
fn digest(oid: &[u8]) -> Option<(Nid, MessageDigest, u8)> {
    const SHA2: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    match oid {
        [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Some((Nid::SHA1, MessageDigest::sha1(), 5)),
        [p @ .., 1] if p == SHA2 => Some((Nid::SHA256, MessageDigest::sha256(), 11)),
        [p @ .., 2] if p == SHA2 => Some((Nid::SHA384, MessageDigest::sha384(), 12)),
        [p @ .., 3] if p == SHA2 => Some((Nid::SHA512, MessageDigest::sha512(), 13)),
        _ => None,
    }
}

fn first_oid<'a>(alg: &Tlv<'a>) -> Option<&'a [u8]> {
    let kids = alg.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    Some(kids.first()?.expect(TAG_OID, "").ok()?.content)
}

/// `Some` only for a message in the common layout whose signature checks.
pub(super) fn decode(der: &[u8]) -> Option<Verified> {
    let ci = read_single(der).ok()?.expect(TAG_SEQUENCE, "").ok()?;
    let ci = ci.children().ok()?;
    let [ct, explicit] = ci.as_slice() else {
        return None;
    };
    if ct.expect(TAG_OID, "").ok()?.content != OID_SIGNED_DATA {
        return None;
    }
    let inner = explicit.expect(0xa0, "").ok()?.children().ok()?;
    let [sd] = inner.as_slice() else {
        return None;
    };
    let fields = sd.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates,
    // [1] crls (optional), signerInfos
    let (encap, certs, signer_infos) = match fields.as_slice() {
        [_, _, e, c, s] if c.tag == 0xa0 => (e, c, s),
        [_, _, e, c, r, s] if c.tag == 0xa0 && r.tag == 0xa1 => (e, c, s),
        _ => return None,
    };
    let content = econtent(encap)?;
    let infos = signer_infos.expect(TAG_SET, "").ok()?.children().ok()?;
    let [info] = infos.as_slice() else {
        return None;
    };
    let si = info.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm,
    // signature [, [1] unsignedAttrs]
    let [_, sid, dig, signed, sig_alg, signature, ..] = si.as_slice() else {
        return None;
    };
    if signed.tag != 0xa0 || signature.tag != TAG_OCTET_STRING || si.len() > 7 {
        return None;
    }
    let (digest_nid, md, with_rsa) = digest(first_oid(dig)?)?;
    match first_oid(sig_alg)? {
        OID_RSA_ENCRYPTION => {}
        [p @ .., last] if p == &OID_RSA_ENCRYPTION[..8] && *last == with_rsa => {}
        _ => return None,
    }
    // The signer: the certificate whose issuer and serial the sid names.
    let sid = sid.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    let [sid_issuer, sid_serial] = sid.as_slice() else {
        return None;
    };
    let cert = certs.children().ok()?.into_iter().find(|c| {
        raw_issuer_and_serial(c.raw).is_ok_and(|(i, s)| i == sid_issuer.raw && s == sid_serial.raw)
    })?;
    let signer = SignerCert::from_der(cert.raw).ok()?;
    if !signer.is_rsa() {
        return None;
    }
    // RFC 5652 §5.4: the signature covers the DER of the attributes with
    // the SET OF tag. An indefinite length is not DER: OpenSSL's path then.
    if signed.raw.get(1) == Some(&0x80) {
        return None;
    }
    let mut attrs_der = signed.raw.to_vec();
    attrs_der[0] = TAG_SET;
    let verified = Verifier::new(md, signer.public_key())
        .and_then(|mut v| v.verify_oneshot(signature.content, &attrs_der))
        .unwrap_or(false);
    if !verified {
        return None;
    }
    let attrs = read_attrs(signed)?;
    let message_digest = attrs
        .iter()
        .find(|(oid, _, _)| oid == OID_MESSAGE_DIGEST)
        .filter(|(_, tag, _)| *tag == TAG_OCTET_STRING)?;
    if hash(md, &content).ok()?.as_ref() != message_digest.2.as_slice() {
        return None;
    }
    Some(Verified {
        attrs: SignedAttrs {
            attrs,
            digest: digest_nid,
        },
        signer,
        content,
    })
}

/// The eContent of id-data as one primitive OCTET STRING.
fn econtent(encap: &Tlv<'_>) -> Option<Vec<u8>> {
    let fields = encap.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    match fields.as_slice() {
        // No eContent: OpenSSL's path says what is wrong with it.
        [ct, explicit] if ct.content == OID_DATA && ct.tag == TAG_OID => {
            let inner = explicit.expect(0xa0, "").ok()?.children().ok()?;
            let [octets] = inner.as_slice() else {
                return None;
            };
            Some(octets.expect(TAG_OCTET_STRING, "").ok()?.content.to_vec())
        }
        _ => None,
    }
}

/// Each Attribute with exactly one value.
fn read_attrs(signed: &Tlv<'_>) -> Option<Vec<Attr>> {
    let mut out = Vec::new();
    for attr in signed.children().ok()? {
        let kids = attr.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
        let [oid, values] = kids.as_slice() else {
            return None;
        };
        let values = values.expect(TAG_SET, "").ok()?.children().ok()?;
        let [value] = values.as_slice() else {
            return None;
        };
        let oid = oid.expect(TAG_OID, "").ok()?.content.to_vec();
        if out.iter().any(|(o, _, _)| *o == oid) {
            return None;
        }
        out.push((oid, value.tag, value.content.to_vec()));
    }
    Some(out)
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
