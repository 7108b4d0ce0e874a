//! The common PKIMessage read and its signature checked without parsing
//! its certificates with OpenSSL: `d2i_PKCS7` reads every certificate's
//! key through OpenSSL 3's decoder framework, which cost about a tenth of
//! an enrollment (docs/BENCHMARKS.md). Here OpenSSL parses the message
//! with its certificates cut out; the certificates are read by `x509-cert`
//! (with the name checks OpenSSL makes), the signer's RSA key is built from
//! its numbers, and the signature is checked over the signed attributes.
//!
//! The common layout only: one SignerInfo with signed attributes in DER,
//! an RSA signer among the message's certificates, SHA-1/SHA-2 with PKCS#1
//! v1.5. Only a message that verifies is returned; anything else gives
//! `None` and goes to `decode`'s OpenSSL path, which gives the established
//! answer. `direct_agrees_with_openssl` (unit tests, the `decode` fuzz
//! target) checks that a message read here reads the same there.

use der::{Decode, Tag, Tagged};
use openssl::hash::hash;
use openssl::nid::Nid;

use super::asn1::{canonical_values, der_lengths, encode, read_single, Tlv};
use super::asn1::{OID_RSA_ENCRYPTION, OID_SIGNED_DATA, TAG_OCTET_STRING, TAG_OID};
use super::asn1::{TAG_SEQUENCE, TAG_SET};
use super::pkcs7_ffi::{AttrKind, SignedData};
use super::signer::{raw_issuer_and_serial, SignerCert};
use super::DigestAlg;

/// A message whose signature verified.
pub(super) struct Verified {
    /// OpenSSL's parse of the message without its certificates: the
    /// header is read from it as from any other message.
    pub parsed: SignedData,
    pub signer: SignerCert,
    /// The signed content (the pkcsPKIEnvelope).
    pub content: Vec<u8>,
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
    let (digests, certs, signer_infos) = match fields.as_slice() {
        [_, d, _, c, s] if c.tag == 0xa0 => (d, c, s),
        [_, d, _, c, r, s] if c.tag == 0xa0 && r.tag == 0xa1 => (d, c, s),
        _ => return None,
    };
    // OpenSSL parses everything but the certificates (whose keys its
    // decoder would read): what it refuses is not read here either, and
    // the header comes from its parse, as on the other path.
    let without_certs: Vec<u8> = fields
        .iter()
        .filter(|f| f.tag != 0xa0)
        .flat_map(|f| f.raw.iter().copied())
        .collect();
    let stripped = encode(
        TAG_SEQUENCE,
        &[ct.raw, &encode(0xa0, &encode(TAG_SEQUENCE, &without_certs))].concat(),
    );
    let parsed = SignedData::from_der(&stripped).ok()?;
    let content = parsed.content()?;
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
    let signer_digest = first_oid(dig)?;
    let alg = DigestAlg::from_oid(signer_digest)?;
    let md = alg.message_digest();
    if parsed.digest_nid() != Some(alg.nid()) {
        return None;
    }
    // OpenSSL digests the content with every algorithm of the SignedData's
    // digestAlgorithms (an unknown one fails it) and verifies with the
    // signer's among them.
    let listed: Vec<&[u8]> = digests
        .children()
        .ok()?
        .iter()
        .map(first_oid)
        .collect::<Option<_>>()?;
    if !listed.iter().all(|d| DigestAlg::from_oid(d).is_some()) || !listed.contains(&signer_digest)
    {
        return None;
    }
    match first_oid(sig_alg)? {
        OID_RSA_ENCRYPTION => {}
        [p @ .., last] if p == &OID_RSA_ENCRYPTION[..8] && *last == alg.rsa_signature_arc() => {}
        _ => return None,
    }
    // The certificates, as OpenSSL would have read them all.
    let certs = certs.children().ok()?;
    let parsed_certs = certs
        .iter()
        .map(|c| certificate_reads(c.raw))
        .collect::<Option<Vec<_>>>()?;
    // The signer: the certificate whose issuer and serial the sid names.
    let sid = sid.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    let [sid_issuer, sid_serial] = sid.as_slice() else {
        return None;
    };
    // OpenSSL matches names case- and space-insensitively; with one
    // certificate of that serial both can only pick the same one.
    let mut same_serial = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| raw_issuer_and_serial(c.raw).is_ok_and(|(_, s)| s == sid_serial.raw));
    let (Some((at, cert)), None) = (same_serial.next(), same_serial.next()) else {
        return None;
    };
    if raw_issuer_and_serial(cert.raw).ok()?.0 != sid_issuer.raw {
        return None;
    }
    let signer = SignerCert::from_parsed(cert.raw, &parsed_certs[at]).ok()?;
    if !signer.is_rsa() {
        return None;
    }
    // RFC 5652 §5.4: the signature covers the DER of the attributes with
    // the SET OF tag. OpenSSL checks it over its own DER encoding of them,
    // so only attributes already in DER (lengths, SET order) are checked
    // here over the bytes received.
    let attrs = signed.children().ok()?;
    if !der_lengths(signed) || !attrs.windows(2).all(|w| w[0].raw <= w[1].raw) {
        return None;
    }
    let mut attrs_der = signed.raw.to_vec();
    attrs_der[0] = TAG_SET;
    let verified = super::pkcs1::verify(signer.public_key(), md, &attrs_der, signature.content)
        .unwrap_or(false);
    if !verified {
        return None;
    }
    match parsed.signed_attribute(Nid::PKCS9_MESSAGEDIGEST) {
        Some((AttrKind::OctetString, d)) if hash(md, &content).ok()?.as_ref() == d.as_slice() => {}
        _ => return None,
    }
    Some(Verified {
        parsed,
        signer,
        content,
    })
}

/// The certificate, if OpenSSL would read it and write it back byte for
/// byte: its primitive values are in the form OpenSSL keeps, `x509-cert`
/// reads it (strict DER), and its names hold strings OpenSSL can
/// canonicalize (valid UTF-8, whole BMP characters).
fn certificate_reads(der: &[u8]) -> Option<x509_cert::Certificate> {
    if !read_single(der).is_ok_and(|t| canonical_values(&t)) {
        return None;
    }
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    let names = [tbs.issuer(), tbs.subject()];
    let readable = names.iter().flat_map(|name| name.iter()).all(|atv| {
        let v = atv.value.value();
        match atv.value.tag() {
            Tag::Utf8String => std::str::from_utf8(v).is_ok(),
            Tag::BmpString => v.len().is_multiple_of(2),
            // One byte per character, whatever the byte.
            Tag::PrintableString
            | Tag::TeletexString
            | Tag::Ia5String
            | Tag::NumericString
            | Tag::VisibleString => true,
            // Anything else is OpenSSL's to judge.
            _ => false,
        }
    });
    readable.then_some(cert)
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
