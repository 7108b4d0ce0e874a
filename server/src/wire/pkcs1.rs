//! RSASSA-PKCS1-v1_5 signatures (RFC 8017 §8.2.1) made with the key's RSA
//! object: the DigestInfo of §9.2 step 2 is encoded here and OpenSSL pads
//! and exponentiates it (`RSA_private_encrypt`, PKCS#1 type 1 padding).
//! The result is what `EVP_DigestSign` gives, byte for byte (the scheme is
//! deterministic; the tests compare), without its per-call set-up: OpenSSL
//! 3.0 fetches the signature algorithm and the digest by name and builds a
//! provider context on every `EVP_DigestSignInit`, about 60,000
//! instructions, a tenth of an enrollment's work outside the RSA arithmetic
//! (it signs twice: the certificate and the CertRep).

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKeyRef, Private};
use openssl::rsa::Padding;
use openssl::sign::Signer;

use super::asn1::{algorithm, encode, TAG_OCTET_STRING, TAG_SEQUENCE};
use super::DigestAlg;

/// The signature of `data` by the RSA `key` with `md`. Keys or digests this
/// shortcut does not cover (not RSA, a key OpenSSL cannot hand out as an
/// RSA object such as one held by another provider, a digest other than
/// SHA-1/SHA-2) are signed through `EVP_DigestSign` as before.
pub(crate) fn sign(
    key: &PKeyRef<Private>,
    md: MessageDigest,
    data: &[u8],
) -> Result<Vec<u8>, ErrorStack> {
    if let Some(sig) = with_rsa_object(key, md, data)? {
        return Ok(sig);
    }
    let mut signer = Signer::new(md, key)?;
    signer.sign_oneshot_to_vec(data)
}

fn with_rsa_object(
    key: &PKeyRef<Private>,
    md: MessageDigest,
    data: &[u8],
) -> Result<Option<Vec<u8>>, ErrorStack> {
    let Some(alg) = DigestAlg::from_nid(md.type_()) else {
        return Ok(None);
    };
    if key.id() != Id::RSA {
        return Ok(None);
    }
    let Ok(rsa) = key.rsa() else {
        return Ok(None);
    };
    // DigestInfo ::= SEQUENCE { AlgorithmIdentifier (parameters NULL),
    // digest OCTET STRING }
    let digest_info = encode(
        TAG_SEQUENCE,
        &[
            algorithm(alg.oid()),
            encode(TAG_OCTET_STRING, &hash(md, data)?),
        ]
        .concat(),
    );
    let mut sig = vec![0u8; rsa.size() as usize];
    let n = rsa.private_encrypt(&digest_info, &mut sig, Padding::PKCS1)?;
    sig.truncate(n);
    Ok(Some(sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::self_signed;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::sign::Verifier;

    fn evp_sign(key: &PKeyRef<Private>, md: MessageDigest, data: &[u8]) -> Vec<u8> {
        Signer::new(md, key)
            .unwrap()
            .sign_oneshot_to_vec(data)
            .unwrap()
    }

    #[test]
    fn equals_evp_digest_sign_for_every_scep_digest() {
        let key = &self_signed("pkcs1 sign").key;
        let data = b"TBSCertificate or signed attributes";
        for md in [
            MessageDigest::sha1(),
            MessageDigest::sha256(),
            MessageDigest::sha384(),
            MessageDigest::sha512(),
        ] {
            let ours = with_rsa_object(key, md, data).unwrap().unwrap();
            assert_eq!(ours, evp_sign(key, md, data), "{:?}", md.type_());
            let mut v = Verifier::new(md, key).unwrap();
            assert!(v.verify_oneshot(&ours, data).unwrap());
        }
    }

    #[test]
    fn other_digests_and_keys_go_through_evp() {
        let rsa = &self_signed("pkcs1 other").key;
        let data = b"data";
        // SHA-224 is not a SCEP digest: no shortcut, EVP signs.
        assert!(with_rsa_object(rsa, MessageDigest::sha224(), data)
            .unwrap()
            .is_none());
        let sig = sign(rsa, MessageDigest::sha224(), data).unwrap();
        assert_eq!(sig, evp_sign(rsa, MessageDigest::sha224(), data));

        let ec = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        assert!(with_rsa_object(&ec, MessageDigest::sha256(), data)
            .unwrap()
            .is_none());
        let sig = sign(&ec, MessageDigest::sha256(), data).unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &ec).unwrap();
        assert!(v.verify_oneshot(&sig, data).unwrap());
    }
}
