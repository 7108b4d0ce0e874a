//! RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) with the key's RSA object: the
//! DigestInfo of §9.2 is encoded here, and OpenSSL pads and exponentiates
//! it (`RSA_private_encrypt` / `RSA_public_decrypt`, PKCS#1 type 1
//! padding). Signatures come out as `EVP_DigestSign` makes them, byte for
//! byte (the scheme is deterministic), and a signature verifies exactly
//! when `EVP_DigestVerify` accepts it (the same length check, padding check
//! and whole-encoding comparison as OpenSSL's `RSA_verify`); the tests
//! compare both. What this saves is EVP's set-up on every call: OpenSSL 3.0
//! fetches the signature algorithm and the digest by name and builds a
//! provider context (40,000-60,000 instructions), and an enrollment signs
//! twice and verifies twice. It also keeps one RSA object per key, so the
//! Montgomery constants of a client's key are derived once.

use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{HasPublic, Id, PKeyRef, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{Signer, Verifier};

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
    let Some((alg, rsa)) = shortcut(key, md) else {
        return Ok(None);
    };
    let digest_info = digest_info(alg, md, data)?;
    let mut sig = vec![0u8; rsa.size() as usize];
    let n = rsa.private_encrypt(&digest_info, &mut sig, Padding::PKCS1)?;
    sig.truncate(n);
    Ok(Some(sig))
}

/// Whether `signature` is `key`'s signature of `data` with `md`; keys and
/// digests without the shortcut go through `EVP_DigestVerify`. An error
/// means the check could not be made (the callers refuse then too).
pub(crate) fn verify<T: HasPublic>(
    key: &PKeyRef<T>,
    md: MessageDigest,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, ErrorStack> {
    if let Some(ok) = verify_with_rsa_object(key, md, data, signature)? {
        return Ok(ok);
    }
    Verifier::new(md, key)?.verify_oneshot(signature, data)
}

fn verify_with_rsa_object<T: HasPublic>(
    key: &PKeyRef<T>,
    md: MessageDigest,
    data: &[u8],
    signature: &[u8],
) -> Result<Option<bool>, ErrorStack> {
    let Some((alg, rsa)) = shortcut(key, md) else {
        return Ok(None);
    };
    // RSA_verify: a signature of exactly the modulus' length, ...
    let size = rsa.size() as usize;
    if signature.len() != size {
        return Ok(Some(false));
    }
    // ... whose type 1 padding checks (a value not below the modulus fails
    // here too), and whose remainder is the whole expected encoding.
    let mut em = vec![0u8; size];
    let Ok(n) = rsa.public_decrypt(signature, &mut em, Padding::PKCS1) else {
        return Ok(Some(false));
    };
    Ok(Some(em[..n] == digest_info(alg, md, data)?[..]))
}

/// The digest and the key's RSA object, when the shortcut covers them.
fn shortcut<T: HasPublic>(key: &PKeyRef<T>, md: MessageDigest) -> Option<(DigestAlg, Rsa<T>)> {
    let alg = DigestAlg::from_nid(md.type_())?;
    if key.id() != Id::RSA {
        return None;
    }
    Some((alg, key.rsa().ok()?))
}

/// DigestInfo ::= SEQUENCE { AlgorithmIdentifier (NULL parameters),
/// digest OCTET STRING } (RFC 8017 §9.2 step 2).
fn digest_info(alg: DigestAlg, md: MessageDigest, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    Ok(encode(
        TAG_SEQUENCE,
        &[
            algorithm(alg.oid()),
            encode(TAG_OCTET_STRING, &hash(md, data)?),
        ]
        .concat(),
    ))
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

    const SCEP_DIGESTS: [DigestAlg; 4] = [
        DigestAlg::Sha1,
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Sha512,
    ];

    #[test]
    fn equals_evp_digest_sign_for_every_scep_digest() {
        let key = &self_signed("pkcs1 sign").key;
        let data = b"TBSCertificate or signed attributes";
        for md in SCEP_DIGESTS.map(DigestAlg::message_digest) {
            let ours = with_rsa_object(key, md, data).unwrap().unwrap();
            assert_eq!(ours, evp_sign(key, md, data), "{:?}", md.type_());
            let mut v = Verifier::new(md, key).unwrap();
            assert!(v.verify_oneshot(&ours, data).unwrap());
        }
    }

    fn evp_verify(key: &PKeyRef<Private>, md: MessageDigest, data: &[u8], sig: &[u8]) -> bool {
        Verifier::new(md, key)
            .and_then(|mut v| v.verify_oneshot(sig, data))
            .unwrap_or(false)
    }

    #[test]
    fn verifies_exactly_what_evp_digest_verify_accepts() {
        let key = &self_signed("pkcs1 verify").key;
        let other = &self_signed("pkcs1 verify other").key;
        let data = b"signed attributes";
        for md in SCEP_DIGESTS.map(DigestAlg::message_digest) {
            let good = evp_sign(key, md, data);
            let mut flipped = good.clone();
            flipped[good.len() / 2] ^= 0x01;
            let mut all_ones = good.clone();
            all_ones.fill(0xff);
            let cases: Vec<(&str, &[u8], Vec<u8>, MessageDigest)> = vec![
                ("good", data, good.clone(), md),
                ("other data", b"other attributes", good.clone(), md),
                ("flipped bit", data, flipped, md),
                ("truncated", data, good[1..].to_vec(), md),
                ("extended", data, [&[0u8][..], &good].concat(), md),
                ("not below the modulus", data, all_ones, md),
                ("another key's", data, evp_sign(other, md, data), md),
                (
                    "another digest",
                    data,
                    evp_sign(key, MessageDigest::sha224(), data),
                    md,
                ),
                ("empty", data, vec![], md),
            ];
            for (what, msg, sig, md) in cases {
                let ours = verify_with_rsa_object(key, md, msg, &sig).unwrap().unwrap();
                assert_eq!(
                    ours,
                    evp_verify(key, md, msg, &sig),
                    "{what}, {:?}",
                    md.type_()
                );
                assert_eq!(ours, what == "good", "{what}, {:?}", md.type_());
            }
        }
    }

    #[test]
    fn a_signature_with_a_short_value_has_the_full_length() {
        // A signature value below 2^(8(k-1)) has a leading zero octet, which
        // RSA_verify keeps (length k) and so do we: find one and check it.
        let key = &self_signed("pkcs1 leading zero").key;
        let md = MessageDigest::sha256();
        let (data, sig) = (0u32..)
            .map(|i| {
                let d = i.to_be_bytes().to_vec();
                let s = evp_sign(key, md, &d);
                (d, s)
            })
            .find(|(_, s)| s[0] == 0)
            .unwrap();
        assert!(verify_with_rsa_object(key, md, &data, &sig)
            .unwrap()
            .unwrap());
        assert!(!verify_with_rsa_object(key, md, &data, &sig[1..])
            .unwrap()
            .unwrap());
        assert!(!evp_verify(key, md, &data, &sig[1..]));
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
        assert!(
            verify_with_rsa_object(&ec, MessageDigest::sha256(), data, &sig)
                .unwrap()
                .is_none()
        );
        assert!(verify(&ec, MessageDigest::sha256(), data, &sig).unwrap());
        assert!(!verify(&ec, MessageDigest::sha256(), b"other", &sig).unwrap());
        let rsa_sig = evp_sign(rsa, MessageDigest::sha224(), data);
        assert!(verify(rsa, MessageDigest::sha224(), data, &rsa_sig).unwrap());
    }
}
