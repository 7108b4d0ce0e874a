//! Building blocks for the fixture-based interop tests: the RA certificates
//! as a client picks them from GetCACert, requesters with any signer
//! certificate (static fixtures from `tests/data/interop/`, or made here),
//! PKIMessages with any attribute values, byte patches after signing, a
//! BER re-encoder (indefinite lengths, chunked OCTET STRINGs), and the
//! server's answer read as an HTTP error or a signed CertRep.

use std::path::PathBuf;

use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use server::wire::client::{
    build_request, parse_cert_rep, parse_certs_only, CertRepMsg, ClientContent, ClientRequest,
};
use server::wire::pkcs7_ffi::{scep_nids, sign_with_attributes, AttrKind, AttrSpec};
use server::wire::{
    ContentCipher, DigestAlg, FailInfo, KeyTransport, MessageType, Nonce, PkiStatus, TransactionId,
};

use crate::device::Device;
use crate::support::Scepd;

/// `tests/data/interop/<name>`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/interop")
        .join(name)
}

/// The CA and RA certificates of a running scepd as a client picks them
/// from GetCACert: the request is enveloped to an RA certificate whose
/// keyUsage allows keyEncipherment (preferring one that cannot sign, as
/// NDES-aware clients do), and the reply is verified against whichever RA
/// certificate signed it.
pub struct Ra {
    /// Everything GetCACert returns but CA certificates.
    pub ras: Vec<X509>,
    /// The certificate requests are enveloped to.
    pub recipient: X509,
}

impl Ra {
    /// From the `default` profile's GetCACert.
    pub fn fetch(s: &Scepd) -> Ra {
        Self::fetch_for(s, "default")
    }

    pub fn fetch_for(s: &Scepd, profile: &str) -> Ra {
        let body = get(&format!("{}?operation=GetCACert", s.scep_url(profile)))
            .unwrap_or_else(|e| panic!("GetCACert: {e:?}"));
        Self::from_get_ca_cert(s, &body)
    }

    pub fn from_get_ca_cert(s: &Scepd, body: &[u8]) -> Ra {
        let certs = parse_certs_only(body).expect("GetCACert body");
        let ca_der = s.ca_cert().to_der().unwrap();
        let is_ca = |c: &X509| {
            c.to_der().unwrap() == ca_der
                || c.subject_name().to_der().unwrap() == c.issuer_name().to_der().unwrap()
        };
        assert!(certs.iter().any(is_ca), "GetCACert carries the CA");
        let ras: Vec<X509> = certs.into_iter().filter(|c| !is_ca(c)).collect();
        assert!(!ras.is_empty(), "GetCACert carries an RA certificate");
        const DIGITAL_SIGNATURE: u8 = 0x80;
        const KEY_ENCIPHERMENT: u8 = 0x20;
        let can = |c: &X509, bit: u8| key_usage(c).is_none_or(|ku| ku & bit != 0);
        let recipient = ras
            .iter()
            .find(|c| can(c, KEY_ENCIPHERMENT) && !can(c, DIGITAL_SIGNATURE))
            .or_else(|| ras.iter().find(|c| can(c, KEY_ENCIPHERMENT)))
            .expect("an RA certificate for key encipherment")
            .clone();
        Ra { ras, recipient }
    }

    /// The RA certificate whose signature the CertRep `der` carries.
    pub fn reply_signer(&self, der: &[u8]) -> &X509 {
        let p7 = Pkcs7::from_der(der).expect("CertRep is PKCS#7");
        let store = X509StoreBuilder::new().unwrap().build();
        self.ras
            .iter()
            .find(|ra| {
                let mut certs = Stack::new().unwrap();
                certs.push((*ra).clone()).unwrap();
                p7.verify(
                    &certs,
                    &store,
                    None,
                    None,
                    Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN,
                )
                .is_ok()
            })
            .expect("the CertRep is signed by an RA certificate from GetCACert")
    }
}

/// The first byte of a certificate's keyUsage bits, if it has the extension.
fn key_usage(cert: &X509) -> Option<u8> {
    let der = cert.to_der().unwrap();
    const OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x0f];
    let at = der.windows(OID.len()).position(|w| w == OID)? + OID.len();
    let mut rest = &der[at..];
    if rest.first() == Some(&0x01) {
        rest = &rest[3..]; // critical BOOLEAN
    }
    let (os, _) = read(rest);
    let (bits, _) = read(os.content);
    assert_eq!(bits.tag, 0x03, "keyUsage is a BIT STRING");
    bits.content.get(1).copied().or(Some(0))
}

/// A requester: the key that signs the PKIMessage and its certificate.
pub struct Requester {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Requester {
    /// A static signer fixture: certificate then PKCS#8 key in one PEM.
    pub fn fixture(name: &str) -> Requester {
        let pem = std::fs::read(fixture_path(name)).unwrap();
        Requester {
            cert: X509::from_pem(&pem).unwrap(),
            key: PKey::private_key_from_pem(&pem).unwrap(),
        }
    }

    /// A fresh RSA-2048 key and its self-signed certificate.
    pub fn fresh(cn: &str) -> Requester {
        let dev = Device::new(cn, 2048);
        Requester {
            cert: dev.signer,
            key: dev.key,
        }
    }

    /// A PKCS#10 request for this requester's key, made by `openssl req`.
    pub fn csr(&self, cn: &str, challenge: Option<&str>, extra_dn: &[(&str, &str)]) -> Vec<u8> {
        Device::with_key(cn, self.key.clone()).csr_with(challenge, extra_dn, &[])
    }

    /// A request PKIMessage from the project's client, signed by this
    /// requester whatever key `content` carries.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &self,
        ra: &Ra,
        message_type: MessageType,
        txid: &TransactionId,
        nonce: &Nonce,
        content: ClientContent<'_>,
        cipher: ContentCipher,
        digest: DigestAlg,
    ) -> Vec<u8> {
        build_request(&ClientRequest {
            message_type,
            transaction_id: txid.clone(),
            sender_nonce: nonce.clone(),
            signer_cert: &self.cert,
            signer_key: &self.key,
            recipient: &ra.recipient,
            cipher,
            key_transport: KeyTransport::RsaPkcs1v15,
            digest,
            content,
        })
        .unwrap()
    }

    /// A PKCSReq for `csr` (AES-128, SHA-256).
    pub fn pkcs_req(&self, ra: &Ra, txid: &TransactionId, nonce: &Nonce, csr: &[u8]) -> Vec<u8> {
        self.request(
            ra,
            MessageType::PkcsReq,
            txid,
            nonce,
            ClientContent::Csr(csr),
            ContentCipher::Aes128Cbc,
            DigestAlg::Sha256,
        )
    }

    /// A PKIMessage signed by this requester with the attribute values
    /// given as they go on the wire (any messageType code, say "99"), whose
    /// encapsulated content is `content` verbatim.
    pub fn signed_raw(
        &self,
        message_type: &str,
        txid: &str,
        nonce: &[u8],
        content: &[u8],
    ) -> Vec<u8> {
        let nids = scep_nids().unwrap();
        let attrs = [
            AttrSpec {
                nid: nids.transaction_id,
                kind: AttrKind::PrintableString,
                value: txid.as_bytes(),
            },
            AttrSpec {
                nid: nids.message_type,
                kind: AttrKind::PrintableString,
                value: message_type.as_bytes(),
            },
            AttrSpec {
                nid: nids.sender_nonce,
                kind: AttrKind::OctetString,
                value: nonce,
            },
        ];
        sign_with_attributes(
            &self.cert,
            &self.key,
            MessageDigest::sha256(),
            &[],
            &attrs,
            content,
        )
        .unwrap()
    }

    /// The CertRep `der` read with this requester's key (the envelope of a
    /// SUCCESS is opened with it).
    pub fn read_reply(&self, ra: &Ra, der: &[u8]) -> Result<CertRepMsg, String> {
        parse_cert_rep(der, ra.reply_signer(der), &self.cert, &self.key).map_err(|e| e.to_string())
    }

    /// POST `msg`; the answer as an HTTP error or the CertRep read with
    /// this requester's key (a 200 must be a CertRep signed by the RA).
    pub fn send(&self, s: &Scepd, ra: &Ra, msg: &[u8]) -> Answer {
        self.send_to(s, "default", ra, msg)
    }

    /// As `send`, to the profile `profile`.
    pub fn send_to(&self, s: &Scepd, profile: &str, ra: &Ra, msg: &[u8]) -> Answer {
        match crate::device::post(s, profile, msg) {
            Ok(body) => Answer::Rep(
                self.read_reply(ra, &body)
                    .unwrap_or_else(|e| panic!("HTTP 200 but not a CertRep for us: {e}")),
            ),
            Err((code, text)) => Answer::Http(code, text),
        }
    }
}

/// An EnvelopedData (DER) of `plain` for the RA, made by OpenSSL's PKCS#7
/// code (RSA PKCS#1 v1.5 key transport).
pub fn envelope(ra: &Ra, plain: &[u8], cipher: Cipher) -> Vec<u8> {
    let mut certs = Stack::new().unwrap();
    certs.push(ra.recipient.clone()).unwrap();
    Pkcs7::encrypt(&certs, plain, cipher, Pkcs7Flags::BINARY)
        .unwrap()
        .to_der()
        .unwrap()
}

/// What the server answered a PKIOperation with.
#[derive(Debug)]
pub enum Answer {
    Http(u16, String),
    Rep(CertRepMsg),
}

impl Answer {
    /// The CertRep; panics on an HTTP error.
    pub fn rep(self, s: &Scepd) -> CertRepMsg {
        match self {
            Answer::Rep(r) => r,
            Answer::Http(code, text) => panic!("HTTP {code}: {text}\nlog:\n{}", s.log()),
        }
    }

    /// A refusal answered cleanly: HTTP 400 (when `http_400` allows it) or
    /// a signed CertRep FAILURE with one of `fail_infos`.
    pub fn assert_refused(&self, what: &str, http_400: bool, fail_infos: &[FailInfo]) {
        match self {
            Answer::Http(400, _) if http_400 => {}
            Answer::Rep(r)
                if r.status == PkiStatus::Failure
                    && r.fail_info.is_some_and(|f| fail_infos.contains(&f)) => {}
            other => panic!(
                "{what}: expected {}a FAILURE with one of {fail_infos:?}, got {other:?}",
                if http_400 { "HTTP 400 or " } else { "" }
            ),
        }
    }
}

/// A successful enrollment: SUCCESS, one certificate for `key`, the
/// transactionID echoed and the senderNonce returned as recipientNonce
/// (RFC 8894 §3.3.2). On a refusal, the server's reason (from its log).
pub fn assert_issued(
    s: &Scepd,
    rep: &CertRepMsg,
    txid: &TransactionId,
    nonce: &Nonce,
    key: &PKey<Private>,
) {
    if rep.status != PkiStatus::Success {
        let log = s.log();
        let reasons: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("FAILURE") || l.contains("refused"))
            .collect();
        panic!("{rep:?}\nserver: {}", reasons.join("\n"));
    }
    assert_eq!(&rep.transaction_id, txid);
    assert_eq!(&rep.recipient_nonce, nonce);
    assert_eq!(rep.certs.len(), 1, "{rep:?}");
    assert!(
        rep.certs[0].public_key().unwrap().public_eq(key),
        "the certificate is for the CSR's key"
    );
}

/// GET `url`; the body, or (status, body) for an HTTP error.
pub fn get(url: &str) -> Result<Vec<u8>, (u16, String)> {
    match ureq::get(url).call() {
        Ok(r) => {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
            Ok(v)
        }
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
        Err(e) => panic!("transport error {e}"),
    }
}

/// `bytes` with the single occurrence of `from` replaced by `to` (same
/// length): a corruption after signing.
pub fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let hits: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "the pattern occurs exactly once");
    let mut out = bytes.to_vec();
    out[hits[0]..hits[0] + to.len()].copy_from_slice(to);
    out
}

/// One DER element: its tag, its content octets and all its octets.
#[derive(Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads one definite-length element from the front of `input`.
pub fn read(input: &[u8]) -> (Tlv<'_>, &[u8]) {
    let tag = input[0];
    assert_ne!(tag & 0x1f, 0x1f, "single-byte tags only");
    let (len, head) = match input[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x80 => panic!("indefinite length in DER input"),
        n => {
            let k = usize::from(n & 0x7f);
            let len = input[2..2 + k]
                .iter()
                .fold(0usize, |a, b| (a << 8) | usize::from(*b));
            (len, 2 + k)
        }
    };
    let end = head + len;
    (
        Tlv {
            tag,
            content: &input[head..end],
            raw: &input[..end],
        },
        &input[end..],
    )
}

/// The elements of a constructed element's content.
pub fn children<'a>(t: &Tlv<'a>) -> Vec<Tlv<'a>> {
    let mut rest = t.content;
    let mut out = vec![];
    while !rest.is_empty() {
        let (c, after) = read(rest);
        out.push(c);
        rest = after;
    }
    out
}

/// DER encoding of one element.
pub fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// BER re-encoding of CMS ContentInfos as Apple's Security framework
/// writes them (X.690 §8.1.3.6 indefinite lengths, §8.7.3 constructed
/// OCTET STRINGs), taken further: every constructed element of the CMS
/// structure gets an indefinite length, and the encapsulated content and
/// the encrypted content go in constructed OCTET STRINGs of uneven chunks.
/// The content octets stay byte for byte (the messageDigest covers them).
/// Left in DER, as every client leaves them: the certificates (each signed
/// over its own DER), the signed attributes (RFC 5652 §5.3: the signature
/// covers their DER, and they must be sent in DER), Names, INTEGERs and
/// the other primitive values.
pub mod ber {
    use super::{children, der, read, Tlv};

    const TAG_SEQUENCE: u8 = 0x30;
    const TAG_SET: u8 = 0x31;
    const TAG_OCTET_STRING: u8 = 0x04;

    /// Chunk sizes, in turn: uneven, so no chunk boundary falls where a
    /// block or a DER element would end.
    const CHUNKS: [usize; 3] = [1000, 17, 512];

    fn indefinite(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![tag | 0x20, 0x80];
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// `content` as a constructed string (tag `tag`) of primitive OCTET
    /// STRING chunks.
    pub fn chunked(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut parts = vec![];
        let mut rest = content;
        let mut i = 0;
        while !rest.is_empty() {
            let n = CHUNKS[i % CHUNKS.len()].min(rest.len());
            parts.push(der(TAG_OCTET_STRING, &rest[..n]));
            rest = &rest[n..];
            i += 1;
        }
        indefinite(tag, &parts)
    }

    fn raw(t: &Tlv<'_>) -> Vec<u8> {
        t.raw.to_vec()
    }

    /// AlgorithmIdentifier: the SEQUENCE indefinite, OID and parameters as
    /// they are.
    fn algorithm(t: &Tlv<'_>) -> Vec<u8> {
        assert_eq!(t.tag, TAG_SEQUENCE, "AlgorithmIdentifier");
        indefinite(
            TAG_SEQUENCE,
            &children(t).iter().map(raw).collect::<Vec<_>>(),
        )
    }

    /// SignerIdentifier / RecipientIdentifier: an IssuerAndSerialNumber
    /// gets an indefinite length (its Name and INTEGER stay DER); a
    /// [0] subjectKeyIdentifier stays as it is.
    fn identifier(t: &Tlv<'_>) -> Vec<u8> {
        if t.tag == TAG_SEQUENCE {
            indefinite(
                TAG_SEQUENCE,
                &children(t).iter().map(raw).collect::<Vec<_>>(),
            )
        } else {
            raw(t)
        }
    }

    /// ContentInfo { contentType, [0] EXPLICIT content }, with `body` the
    /// re-encoding of the content.
    fn content_info(der_in: &[u8], body: impl Fn(&Tlv<'_>) -> Vec<u8>) -> Vec<u8> {
        let (ci, rest) = read(der_in);
        assert!(rest.is_empty(), "one ContentInfo");
        let kids = children(&ci);
        let inner = children(&kids[1]);
        indefinite(
            TAG_SEQUENCE,
            &[raw(&kids[0]), indefinite(0xa0, &[body(&inner[0])])],
        )
    }

    /// A SignedData ContentInfo (RFC 5652 §5).
    pub fn signed_data(der_in: &[u8]) -> Vec<u8> {
        content_info(der_in, |sd| {
            let mut out = vec![];
            for (i, f) in children(sd).iter().enumerate() {
                out.push(match (i, f.tag) {
                    (0, _) => raw(f),
                    // digestAlgorithms
                    (1, TAG_SET) => indefinite(
                        TAG_SET,
                        &children(f).iter().map(algorithm).collect::<Vec<_>>(),
                    ),
                    // encapContentInfo { eContentType, [0] EXPLICIT eContent }
                    (2, TAG_SEQUENCE) => {
                        let k = children(f);
                        let mut parts = vec![raw(&k[0])];
                        if let Some(explicit) = k.get(1) {
                            let os = children(explicit)[0];
                            assert_eq!(os.tag, TAG_OCTET_STRING, "eContent");
                            parts.push(indefinite(0xa0, &[chunked(TAG_OCTET_STRING, os.content)]));
                        }
                        indefinite(TAG_SEQUENCE, &parts)
                    }
                    // [0] IMPLICIT certificates: the set indefinite, each
                    // certificate as it was signed.
                    (_, 0xa0) => indefinite(0xa0, &children(f).iter().map(raw).collect::<Vec<_>>()),
                    // signerInfos
                    (_, TAG_SET) => indefinite(
                        TAG_SET,
                        &children(f).iter().map(signer_info).collect::<Vec<_>>(),
                    ),
                    // [1] crls, anything else
                    _ => raw(f),
                });
            }
            indefinite(TAG_SEQUENCE, &out)
        })
    }

    fn signer_info(si: &Tlv<'_>) -> Vec<u8> {
        // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm,
        // signature, [1] unsignedAttrs
        let kids = children(si);
        let mut out = vec![raw(&kids[0]), identifier(&kids[1]), algorithm(&kids[2])];
        let mut rest = &kids[3..];
        if rest[0].tag == 0xa0 {
            // DER, as signed.
            out.push(raw(&rest[0]));
            rest = &rest[1..];
        }
        out.push(algorithm(&rest[0]));
        out.extend(rest[1..].iter().map(raw));
        indefinite(TAG_SEQUENCE, &out)
    }

    /// An EnvelopedData ContentInfo (RFC 5652 §6) with key transport
    /// recipients.
    pub fn enveloped_data(der_in: &[u8]) -> Vec<u8> {
        content_info(der_in, |ed| {
            let mut out = vec![];
            for (i, f) in children(ed).iter().enumerate() {
                out.push(match (i, f.tag) {
                    (0, _) => raw(f),
                    // recipientInfos: KeyTransRecipientInfo is the SEQUENCE
                    // choice { version, rid, keyEncryptionAlgorithm,
                    // encryptedKey }.
                    (_, TAG_SET) => indefinite(
                        TAG_SET,
                        &children(f)
                            .iter()
                            .map(|r| {
                                if r.tag != TAG_SEQUENCE {
                                    return raw(r);
                                }
                                let k = children(r);
                                indefinite(
                                    TAG_SEQUENCE,
                                    &[raw(&k[0]), identifier(&k[1]), algorithm(&k[2]), raw(&k[3])],
                                )
                            })
                            .collect::<Vec<_>>(),
                    ),
                    // encryptedContentInfo { contentType,
                    // contentEncryptionAlgorithm, [0] IMPLICIT encryptedContent }
                    (_, TAG_SEQUENCE) => {
                        let k = children(f);
                        let mut parts = vec![raw(&k[0]), algorithm(&k[1])];
                        if let Some(content) = k.get(2) {
                            assert_eq!(content.tag, 0x80, "primitive encryptedContent");
                            parts.push(chunked(0xa0, content.content));
                        }
                        indefinite(TAG_SEQUENCE, &parts)
                    }
                    _ => raw(f),
                });
            }
            indefinite(TAG_SEQUENCE, &out)
        })
    }

    /// How many elements of `ber` have an indefinite length (walking every
    /// constructed element).
    pub fn indefinite_count(ber: &[u8]) -> usize {
        fn walk(mut input: &[u8], n: &mut usize) -> usize {
            // Returns how many bytes were consumed up to (and including) an
            // end-of-contents, or all of them.
            let start = input.len();
            while !input.is_empty() {
                if input.starts_with(&[0, 0]) {
                    return start - input.len() + 2;
                }
                let tag = input[0];
                let constructed = tag & 0x20 != 0;
                if input[1] == 0x80 {
                    *n += 1;
                    let used = walk(&input[2..], n);
                    input = &input[2 + used..];
                } else {
                    let (t, after) = super::read(input);
                    if constructed {
                        walk(t.content, n);
                    }
                    input = after;
                }
            }
            start
        }
        let mut n = 0;
        walk(ber, &mut n);
        n
    }
}
