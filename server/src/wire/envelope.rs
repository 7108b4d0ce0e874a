//! The pkcsPKIEnvelope (RFC 8894 §3.2.2): a CMS EnvelopedData (RFC 5652 §6)
//! with RSA key transport (PKCS#1 v1.5 or OAEP) and DES3/AES-CBC content
//! encryption. Identifies the algorithms, decrypts, and encrypts replies.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{HasPrivate, PKeyRef};
use openssl::stack::Stack;
use openssl::x509::{X509Name, X509Ref, X509};

use openssl::rand::rand_bytes;
use openssl::rsa::Padding;

use super::asn1::{
    self, encode, read_single, Tlv, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET,
};
use super::asn1::{OID_DATA, OID_ENVELOPED_DATA, OID_RSA_ENCRYPTION};
use super::{pkcs7_ffi, ContentCipher, KeyTransport, RaIdentity, SignerCert, WireError};

const OID_DES_CBC: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x07];
const OID_DES_EDE3_CBC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07];
const OID_AES_128_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02];
const OID_AES_192_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x16];
const OID_AES_256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
const OID_RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];

fn malformed(msg: &str) -> WireError {
    WireError::Malformed(format!("pkcsPKIEnvelope: {msg}"))
}

fn first_oid<'a>(alg: &Tlv<'a>, what: &str) -> Result<&'a [u8], WireError> {
    let kids = alg.expect(TAG_SEQUENCE, what)?.children()?;
    let oid = kids.first().ok_or_else(|| malformed(what))?;
    Ok(oid.expect(TAG_OID, what)?.content)
}

/// The recipientInfos and encryptedContentInfo of an EnvelopedData
/// ContentInfo.
fn envelope_fields(der: &[u8]) -> Result<(Tlv<'_>, Tlv<'_>), WireError> {
    let ci = read_single(der)?
        .expect(TAG_SEQUENCE, "ContentInfo")?
        .children()?;
    let (Some(ct), Some(explicit)) = (ci.first(), ci.get(1)) else {
        return Err(malformed("short ContentInfo"));
    };
    if ct.expect(TAG_OID, "contentType")?.content != OID_ENVELOPED_DATA {
        return Err(malformed("content is not EnvelopedData"));
    }
    let inner = explicit.expect(0xa0, "content")?.children()?;
    let env = inner.first().ok_or_else(|| malformed("empty content"))?;
    let fields = env.expect(TAG_SEQUENCE, "EnvelopedData")?.children()?;
    // version, [0] originatorInfo OPTIONAL, recipientInfos, encryptedContentInfo
    let mut rest = fields.into_iter().skip(1).filter(|t| t.tag != 0xa0);
    let recipients = rest.next().ok_or_else(|| malformed("no recipientInfos"))?;
    let eci = rest
        .next()
        .ok_or_else(|| malformed("no encryptedContentInfo"))?;
    Ok((recipients.expect(TAG_SET, "recipientInfos")?, eci))
}

/// The KeyTransRecipientInfos (the only untagged, SEQUENCE, choice of
/// RecipientInfo), each as its fields.
fn key_transport_recipients<'a>(recipients: &Tlv<'a>) -> Result<Vec<Vec<Tlv<'a>>>, WireError> {
    recipients
        .children()?
        .into_iter()
        .filter(|r| r.tag == TAG_SEQUENCE)
        .map(|r| r.children())
        .collect()
}

/// Reads the content-encryption and key-transport algorithms of an
/// EnvelopedData ContentInfo without decrypting it. Algorithms SCEP must
/// not use (single DES, RC2, ...) give `UnsupportedAlgorithm`.
pub(crate) fn algorithms(der: &[u8]) -> Result<(ContentCipher, KeyTransport), WireError> {
    let (recipients, eci) = envelope_fields(der)?;

    let eci = eci
        .expect(TAG_SEQUENCE, "EncryptedContentInfo")?
        .children()?;
    let alg = eci
        .get(1)
        .ok_or_else(|| malformed("no contentEncryptionAlgorithm"))?;
    let cipher = match first_oid(alg, "contentEncryptionAlgorithm")? {
        OID_DES_CBC => ContentCipher::DesCbc,
        OID_DES_EDE3_CBC => ContentCipher::Des3Cbc,
        OID_AES_128_CBC => ContentCipher::Aes128Cbc,
        OID_AES_192_CBC => ContentCipher::Aes192Cbc,
        OID_AES_256_CBC => ContentCipher::Aes256Cbc,
        other => {
            return Err(WireError::UnsupportedAlgorithm(format!(
                "content encryption {}",
                asn1::oid_to_string(other)
            )))
        }
    };

    let ktri = key_transport_recipients(&recipients)?
        .into_iter()
        .next()
        .ok_or_else(|| WireError::UnsupportedAlgorithm("no key transport recipient".into()))?;
    let kea = ktri
        .get(2)
        .ok_or_else(|| malformed("short KeyTransRecipientInfo"))?;
    let transport = match first_oid(kea, "keyEncryptionAlgorithm")? {
        OID_RSA_ENCRYPTION => KeyTransport::RsaPkcs1v15,
        OID_RSAES_OAEP => KeyTransport::RsaOaep,
        other => {
            return Err(WireError::UnsupportedAlgorithm(format!(
                "key transport {}",
                asn1::oid_to_string(other)
            )))
        }
    };
    Ok((cipher, transport))
}

/// OpenSSL 3 keeps single DES in its legacy provider; load it once, beside
/// the default provider, the first time a DES envelope is seen.
fn ensure_cipher(cipher: ContentCipher) -> Result<(), WireError> {
    use std::sync::OnceLock;
    static LEGACY: OnceLock<Option<openssl::provider::Provider>> = OnceLock::new();
    if cipher != ContentCipher::DesCbc {
        return Ok(());
    }
    match LEGACY.get_or_init(|| openssl::provider::Provider::try_load(None, "legacy", true).ok()) {
        Some(_) => Ok(()),
        None => Err(WireError::UnsupportedAlgorithm(
            "single DES (OpenSSL legacy provider not available)".into(),
        )),
    }
}

/// Decrypts with whichever of `ours` a KeyTransRecipientInfo names, by
/// IssuerAndSerialNumber (as sent, or as OpenSSL compares names) or by
/// subjectKeyIdentifier. An envelope for no certificate of ours says whom
/// it was for, so that an administrator can tell which certificate the
/// client chose.
pub(crate) fn decrypt_for(
    der: &[u8],
    ours: &[&RaIdentity],
) -> Result<(Vec<u8>, ContentCipher, KeyTransport), WireError> {
    let (recipients, _) = envelope_fields(der)?;
    let ids: Vec<Tlv<'_>> = key_transport_recipients(&recipients)?
        .into_iter()
        .filter_map(|k| k.get(1).copied())
        .collect();
    if ids.is_empty() {
        return Err(WireError::UnsupportedAlgorithm(
            "no key transport recipient".into(),
        ));
    }
    let Some(ra) = ours
        .iter()
        .find(|ra| ids.iter().any(|id| names(id, ra.cert(), ra.cert_der())))
    else {
        let whom: Vec<String> = ids.iter().map(describe_recipient).collect();
        return Err(WireError::Decrypt(format!(
            "addressed to a certificate we do not hold: {}",
            whom.join("; ")
        )));
    };
    decrypt(der, ra.key(), ra.cert(), ra.cert_der())
}

/// Whether the RecipientIdentifier `id` names `cert`.
fn names(id: &Tlv<'_>, cert: &X509, cert_der: &[u8]) -> bool {
    if id.tag == 0x80 {
        return cert
            .subject_key_id()
            .is_some_and(|ski| ski.as_slice() == id.content);
    }
    let Ok((issuer, serial)) = super::signer::raw_issuer_and_serial(cert_der) else {
        return false;
    };
    let Ok(fields) = id.children() else {
        return false;
    };
    let [their_issuer, their_serial] = fields.as_slice() else {
        return false;
    };
    if their_serial.raw != serial {
        return false;
    }
    their_issuer.raw == issuer
        || X509Name::from_der(their_issuer.raw).is_ok_and(|n| {
            n.try_cmp(cert.issuer_name())
                .is_ok_and(|o| o == std::cmp::Ordering::Equal)
        })
}

/// "issuer <name>, serial <hex>" or "subjectKeyIdentifier <hex>".
fn describe_recipient(id: &Tlv<'_>) -> String {
    if id.tag == 0x80 {
        return format!("subjectKeyIdentifier {}", hex::encode(id.content));
    }
    let fields = id.children().unwrap_or_default();
    let issuer = fields
        .first()
        .and_then(|i| X509Name::from_der(i.raw).ok())
        .map(|n| super::name_text(&n))
        .unwrap_or_else(|| "(unreadable)".into());
    let serial = fields
        .get(1)
        .map(|s| hex::encode_upper(s.content))
        .unwrap_or_default();
    format!("issuer {issuer}, serial {serial}")
}

/// Checks the algorithms, then decrypts with `key` for the recipient `cert`
/// (`cert_der` is its DER encoding).
pub(crate) fn decrypt<T: HasPrivate>(
    der: &[u8],
    key: &PKeyRef<T>,
    cert: &X509,
    cert_der: &[u8],
) -> Result<(Vec<u8>, ContentCipher, KeyTransport), WireError> {
    let (cipher, transport) = algorithms(der)?;
    ensure_cipher(cipher)?;
    if transport == KeyTransport::RsaPkcs1v15 && key.id() == openssl::pkey::Id::RSA {
        if let Some(parts) = pkcs1_parts(der, cert_der, cipher) {
            return Ok((decrypt_parts(&parts, key, cipher)?, cipher, transport));
        }
    }
    let cms = CmsContentInfo::from_der(der).map_err(|e| malformed(&e.to_string()))?;
    let plain = cms
        .decrypt(key, cert)
        .map_err(|e| WireError::Decrypt(e.to_string()))?;
    Ok((plain, cipher, transport))
}

/// What the common envelope carries for us: the wrapped key, the IV and
/// the encrypted content.
struct Parts<'a> {
    wrapped: &'a [u8],
    iv: &'a [u8],
    encrypted: Vec<u8>,
}

/// The common envelope read without OpenSSL's CMS parser: DER, no
/// originatorInfo, a KeyTransRecipientInfo naming `cert_der` by issuer and
/// serial, CBC with its IV, the content in one or more OCTET STRINGs.
/// `None` for anything else (CMS reads it then).
fn pkcs1_parts<'a>(der: &'a [u8], cert_der: &[u8], cipher: ContentCipher) -> Option<Parts<'a>> {
    let (issuer, serial) = super::signer::raw_issuer_and_serial(cert_der).ok()?;
    let rid = encode(TAG_SEQUENCE, &[issuer, serial].concat());
    let ci = read_single(der).ok()?.children().ok()?;
    let inner = ci.get(1)?.expect(0xa0, "").ok()?.children().ok()?;
    let fields = inner
        .first()?
        .expect(TAG_SEQUENCE, "")
        .ok()?
        .children()
        .ok()?;
    let (recipients, eci) = match fields.as_slice() {
        [_, r, e] | [_, r, e, _] if r.tag == TAG_SET => (r, e),
        _ => return None,
    };
    let wrapped = recipients.children().ok()?.into_iter().find_map(|r| {
        let k = r.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
        match k.as_slice() {
            [_, id, _, key] if id.raw == rid.as_slice() => {
                Some(key.expect(TAG_OCTET_STRING, "").ok()?.content)
            }
            _ => None,
        }
    })?;
    let eci = eci.expect(TAG_SEQUENCE, "").ok()?.children().ok()?;
    let [_, alg, content] = eci.as_slice() else {
        return None;
    };
    let alg = alg.children().ok()?;
    let iv = alg.get(1)?.expect(TAG_OCTET_STRING, "").ok()?.content;
    if Some(iv.len()) != cipher.cipher().iv_len() {
        return None;
    }
    let encrypted = match content.tag {
        0x80 => content.content.to_vec(),
        // BER: the encrypted content in pieces.
        0xa0 => {
            let mut all = Vec::new();
            for piece in content.children().ok()? {
                all.extend_from_slice(piece.expect(TAG_OCTET_STRING, "").ok()?.content);
            }
            all
        }
        _ => return None,
    };
    Some(Parts {
        wrapped,
        iv,
        encrypted,
    })
}

/// The one error of everything past the key unwrap (see `decrypt_parts`).
pub(crate) fn undecryptable() -> WireError {
    WireError::Decrypt("cannot unwrap or decrypt the content".into())
}

/// Unwraps the content key (RSA PKCS#1 v1.5) and decrypts. A key that does
/// not unwrap, or unwraps to the wrong length, is replaced by a random one
/// and the content decrypted with it all the same (implicit rejection, as
/// OpenSSL's CMS does when told the recipient and as OpenSSL 3.2 does in
/// RSA itself; this OpenSSL is 3.0). Whether the unwrap succeeded then
/// shows neither in the answer nor in the work done: a Bleichenbacher
/// oracle on the RA key, which also signs replies, needs that bit.
fn decrypt_parts<T: HasPrivate>(
    parts: &Parts<'_>,
    key: &PKeyRef<T>,
    cipher: ContentCipher,
) -> Result<Vec<u8>, WireError> {
    let rsa = key.rsa()?;
    let c = cipher.cipher();
    let mut cek = vec![0u8; rsa.size() as usize];
    let unwrapped = rsa
        .private_decrypt(parts.wrapped, &mut cek, Padding::PKCS1)
        .ok();
    let mut random = vec![0u8; c.key_len()];
    rand_bytes(&mut random)?;
    let cek = match unwrapped {
        Some(n) if n == c.key_len() => &cek[..n],
        _ => &random[..],
    };
    openssl::symm::decrypt(c, cek, Some(parts.iv), &parts.encrypted).map_err(|_| undecryptable())
}

/// Envelopes `content` to `recipient`. Output is DER, so the encrypted
/// content is a primitive OCTET STRING.
pub(crate) fn encrypt(
    content: &[u8],
    recipient: &X509Ref,
    cipher: ContentCipher,
    transport: KeyTransport,
) -> Result<Vec<u8>, WireError> {
    ensure_cipher(cipher)?;
    match transport {
        KeyTransport::RsaPkcs1v15 => {
            let mut certs = Stack::new()?;
            certs.push(recipient.to_owned())?;
            let cms =
                CmsContentInfo::encrypt(&certs, content, cipher.cipher(), CMSOptions::BINARY)?;
            Ok(cms.to_der()?)
        }
        KeyTransport::RsaOaep => {
            pkcs7_ffi::envelope_oaep(&recipient.to_der()?, content, cipher.cipher())
        }
    }
}

/// Envelopes a reply's `content` to the request's signer with PKCS#1 v1.5
/// key transport. For an RSA signer the EnvelopedData is assembled here
/// (`CMS_encrypt` would parse the certificate's key again through
/// OpenSSL 3's decoder); other keys go through [`encrypt`].
pub(crate) fn encrypt_to_signer(
    content: &[u8],
    signer: &SignerCert,
    cipher: ContentCipher,
) -> Result<Vec<u8>, WireError> {
    let (true, Some(rid)) = (signer.is_rsa(), signer.issuer_and_serial()) else {
        return encrypt(content, signer.x509()?, cipher, KeyTransport::RsaPkcs1v15);
    };
    ensure_cipher(cipher)?;
    let c = cipher.cipher();
    let mut key = vec![0u8; c.key_len()];
    let mut iv = vec![0u8; c.iv_len().unwrap_or(0)];
    rand_bytes(&mut key)?;
    rand_bytes(&mut iv)?;
    if matches!(cipher, ContentCipher::DesCbc | ContentCipher::Des3Cbc) {
        // DES keys carry odd parity in each byte's low bit, as OpenSSL's
        // own random DES keys do.
        for b in &mut key {
            let high = *b & 0xfe;
            *b = high | u8::from(high.count_ones() % 2 == 0);
        }
    }
    let encrypted = openssl::symm::encrypt(c, &key, Some(&iv), content)?;
    // The signer's RSA object: on the direct path it checked the request's
    // signature (`pkcs1::verify`) and already holds its Montgomery constants.
    let rsa = signer.public_key().rsa()?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&key, &mut wrapped, Padding::PKCS1)?;
    wrapped.truncate(n);
    let null = [0x05, 0x00];
    let ktri = encode(
        TAG_SEQUENCE,
        &[
            &encode(TAG_INTEGER, &[0])[..],
            rid,
            &encode(
                TAG_SEQUENCE,
                &[&encode(TAG_OID, OID_RSA_ENCRYPTION)[..], &null].concat(),
            ),
            &encode(TAG_OCTET_STRING, &wrapped),
        ]
        .concat(),
    );
    let eci = encode(
        TAG_SEQUENCE,
        &[
            encode(TAG_OID, OID_DATA),
            encode(
                TAG_SEQUENCE,
                &[encode(TAG_OID, cipher.oid()), encode(TAG_OCTET_STRING, &iv)].concat(),
            ),
            // encryptedContent [0] IMPLICIT OCTET STRING, primitive.
            encode(0x80, &encrypted),
        ]
        .concat(),
    );
    let enveloped = encode(
        TAG_SEQUENCE,
        &[encode(TAG_INTEGER, &[0]), encode(TAG_SET, &ktri), eci].concat(),
    );
    Ok(encode(
        TAG_SEQUENCE,
        &[
            encode(TAG_OID, OID_ENVELOPED_DATA),
            encode(0xa0, &enveloped),
        ]
        .concat(),
    ))
}

impl ContentCipher {
    fn oid(self) -> &'static [u8] {
        match self {
            Self::DesCbc => OID_DES_CBC,
            Self::Des3Cbc => OID_DES_EDE3_CBC,
            Self::Aes128Cbc => OID_AES_128_CBC,
            Self::Aes192Cbc => OID_AES_192_CBC,
            Self::Aes256Cbc => OID_AES_256_CBC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::asn1::read_tlv;
    use crate::wire::testutil::{patch, self_signed};

    const CIPHERS: [ContentCipher; 4] = [
        ContentCipher::Des3Cbc,
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes192Cbc,
        ContentCipher::Aes256Cbc,
    ];

    #[test]
    fn every_cipher_and_transport_roundtrips_and_is_identified() {
        let ra = self_signed("envelope ra");
        for cipher in CIPHERS {
            for kt in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
                let der = encrypt(b"payload", &ra.cert, cipher, kt).unwrap();
                assert_eq!(algorithms(&der).unwrap(), (cipher, kt));
                let (plain, c, k) =
                    decrypt(&der, &ra.key, &ra.cert, &ra.cert.to_der().unwrap()).unwrap();
                assert_eq!((plain.as_slice(), c, k), (&b"payload"[..], cipher, kt));
            }
        }
    }

    #[test]
    fn a_reply_enveloped_here_opens_with_cms_for_every_cipher() {
        let client = self_signed("envelope client");
        let signer = SignerCert::from_der(&client.cert.to_der().unwrap()).unwrap();
        for cipher in [ContentCipher::DesCbc].into_iter().chain(CIPHERS) {
            let der = encrypt_to_signer(b"reply", &signer, cipher).unwrap();
            assert_eq!(
                algorithms(&der).unwrap(),
                (cipher, KeyTransport::RsaPkcs1v15)
            );
            let (plain, ..) = decrypt(
                &der,
                &client.key,
                &client.cert,
                &client.cert.to_der().unwrap(),
            )
            .unwrap();
            assert_eq!(plain, b"reply", "{cipher:?}");
        }
    }

    #[test]
    fn the_common_envelope_is_read_without_cms_der_or_ber() {
        let ra = self_signed("envelope ra");
        let ra_der = ra.cert.to_der().unwrap();
        for cipher in CIPHERS {
            let der = encrypt(b"payload", &ra.cert, cipher, KeyTransport::RsaPkcs1v15).unwrap();
            for bytes in [der.clone(), crate::wire::testutil::berify(&der)] {
                let parts = pkcs1_parts(&bytes, &ra_der, cipher).expect("read directly");
                assert_eq!(decrypt_parts(&parts, &ra.key, cipher).unwrap(), b"payload");
            }
            // Another recipient's certificate: not ours to read directly.
            let other = self_signed("envelope other").cert.to_der().unwrap();
            assert!(pkcs1_parts(&der, &other, cipher).is_none());
        }
    }

    #[test]
    fn a_key_that_does_not_unwrap_is_a_decrypt_error() {
        let ra = self_signed("envelope ra");
        let impostor = self_signed("envelope impostor");
        let der = encrypt(
            b"payload",
            &ra.cert,
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        // Named as the recipient, but holding another key.
        assert!(matches!(
            decrypt(&der, &impostor.key, &ra.cert, &ra.cert.to_der().unwrap()),
            Err(WireError::Decrypt(_))
        ));
    }

    /// RFC 5652 §6.2.1: the RecipientInfo names the certificate whose key
    /// opens the envelope; an RA with signing and encryption certificates
    /// opens whichever the client chose.
    #[test]
    fn the_recipient_named_in_the_envelope_is_the_key_used() {
        let sign = self_signed("envelope ra");
        let enc = self_signed("envelope other");
        let ours = [sign.ra(), enc.ra()];
        let ours: Vec<&RaIdentity> = ours.iter().collect();
        for to in [&sign, &enc] {
            for kt in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
                let der = encrypt(b"payload", &to.cert, ContentCipher::Aes128Cbc, kt).unwrap();
                let (plain, _, k) = decrypt_for(&der, &ours).unwrap();
                assert_eq!((plain.as_slice(), k), (&b"payload"[..], kt));
            }
        }
    }

    #[test]
    fn an_envelope_for_a_certificate_we_do_not_hold_names_it() {
        let ra = self_signed("envelope ra");
        let ca = self_signed("envelope client");
        let der = encrypt(
            b"payload",
            &ca.cert,
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        let Err(WireError::Decrypt(why)) = decrypt_for(&der, &[&ra.ra()]) else {
            panic!("an envelope for another certificate must not open");
        };
        let serial = hex::encode_upper(ca.cert.serial_number().to_bn().unwrap().to_vec());
        assert!(
            why.starts_with("addressed to a certificate we do not hold: ")
                && why.contains("issuer CN=envelope client")
                && why.contains(&serial),
            "{why}"
        );
    }

    #[test]
    fn a_recipient_named_by_subject_key_identifier_is_found() {
        use openssl::x509::extension::SubjectKeyIdentifier;
        let ra = self_signed("envelope ra");
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(ra.cert.subject_name()).unwrap();
        b.set_issuer_name(ra.cert.subject_name()).unwrap();
        b.set_pubkey(&ra.key).unwrap();
        b.set_not_before(ra.cert.not_before()).unwrap();
        b.set_not_after(ra.cert.not_after()).unwrap();
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(ski).unwrap();
        b.sign(&ra.key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let cert = b.build();
        let key_id = cert.subject_key_id().unwrap().as_slice().to_vec();
        let der = cert.to_der().unwrap();
        let id = encode(0x80, &key_id);
        let (named, _) = read_tlv(&id).unwrap();
        assert!(names(&named, &cert, &der));
        assert!(describe_recipient(&named).contains(&hex::encode(&key_id)));
        let other = encode(0x80, &[0x5a; 20]);
        let (other, _) = read_tlv(&other).unwrap();
        assert!(!names(&other, &cert, &der));
    }

    #[test]
    fn other_recipient_cannot_decrypt() {
        let ra = self_signed("envelope ra");
        let other = self_signed("envelope other");
        let der = encrypt(
            b"payload",
            &other.cert,
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        assert!(matches!(
            decrypt(&der, &ra.key, &ra.cert, &ra.cert.to_der().unwrap()),
            Err(WireError::Decrypt(_))
        ));
    }

    #[test]
    fn rc2_content_encryption_is_unsupported() {
        let ra = self_signed("envelope ra");
        let der = encrypt(
            b"payload",
            &ra.cert,
            ContentCipher::Des3Cbc,
            KeyTransport::RsaPkcs1v15,
        )
        .unwrap();
        // rc2-cbc 1.2.840.113549.3.2 has the same length as des-ede3-cbc.
        let der = patch(
            &der,
            OID_DES_EDE3_CBC,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x02],
        );
        match decrypt(&der, &ra.key, &ra.cert, &ra.cert.to_der().unwrap()) {
            Err(WireError::UnsupportedAlgorithm(m)) => {
                assert!(m.contains("1.2.840.113549.3.2"), "{m}")
            }
            other => panic!("expected UnsupportedAlgorithm, got {other:?}"),
        }
    }

    #[test]
    fn signed_data_is_not_an_envelope() {
        let certs_only = pkcs7_ffi::degenerate(&[], &[]).unwrap();
        assert!(matches!(
            algorithms(&certs_only),
            Err(WireError::Malformed(_))
        ));
    }
}
