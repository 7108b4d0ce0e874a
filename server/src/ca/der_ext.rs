//! DER builders for the RFC 5280 §4.2 extensions we attach ourselves
//! (SKI, AKI, EKU, SAN, CRL distribution points, authority information
//! access) and time conversions.
//!
//! Building the DER directly keeps user-supplied strings (SAN values, OIDs,
//! URLs) out of OpenSSL's `X509V3_EXT_nconf` parser, where a comma in a value
//! could smuggle in extra extension settings.

use chrono::{DateTime, Utc};
use der::asn1::{Any, Ia5String, ObjectIdentifier, OctetString, Utf8StringRef};
use der::{Decode, Encode};
use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
use openssl::pkey::{HasPublic, PKeyRef};
use openssl::x509::X509Extension;
use std::net::IpAddr;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CrlDistributionPoints,
    ExtendedKeyUsage, SubjectAltName,
};
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::CaError;
use crate::csr::San;

/// Microsoft User Principal Name otherName (used by Windows/Intune clients).
/// Evaluated at compile time, so a typo fails the build rather than a request.
pub(crate) const UPN_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");

pub(crate) const OID_SKI: &str = "2.5.29.14";
pub(crate) const OID_SAN: &str = "2.5.29.17";
pub(crate) const OID_CRL_DP: &str = "2.5.29.31";
pub(crate) const OID_AKI: &str = "2.5.29.35";
pub(crate) const OID_EKU: &str = "2.5.29.37";
/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1).
pub(crate) const OID_AIA: &str = "1.3.6.1.5.5.7.1.1";
/// id-ad-ocsp (RFC 5280 §4.2.2.1, RFC 6960 §4.2.2.1).
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");

/// Wraps an already DER-encoded extension value into an OpenSSL extension.
pub(crate) fn extension(oid: &str, critical: bool, value: &[u8]) -> Result<X509Extension, CaError> {
    let oid = Asn1Object::from_str(oid)?;
    let value = Asn1OctetString::new_from_bytes(value)?;
    Ok(X509Extension::new_from_der(&oid, critical, &value)?)
}

/// Key identifier per RFC 5280 §4.2.1.2 method (1): SHA-1 of the
/// subjectPublicKey BIT STRING contents. This matches what OpenSSL writes for
/// `subjectKeyIdentifier=hash`, so our AKIs line up with OpenSSL-made CAs.
pub(crate) fn key_identifier<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>, CaError> {
    key_identifier_from_spki(&key.public_key_to_der()?)
}

/// RFC 5280 §4.2.1.2 method 1 from SubjectPublicKeyInfo DER (no OpenSSL
/// key encoding, which is slow in OpenSSL 3).
pub(crate) fn key_identifier_from_spki(spki_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)?;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CaError::Der("public key BIT STRING has unused bits".into()))?;
    Ok(openssl::sha::sha1(bits).to_vec())
}

pub(crate) fn ski_extension(key_id: &[u8]) -> Result<X509Extension, CaError> {
    let value = OctetString::new(key_id)?.to_der()?;
    extension(OID_SKI, false, &value)
}

/// DER of an AKI extension value holding only the keyIdentifier.
pub(crate) fn aki_value(key_id: &[u8]) -> Result<Vec<u8>, CaError> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    Ok(aki.to_der()?)
}

pub(crate) fn aki_extension(aki_value: &[u8]) -> Result<X509Extension, CaError> {
    extension(OID_AKI, false, aki_value)
}

/// extendedKeyUsage extension value (DER).
pub(crate) fn eku_value(oids: &[&str]) -> Result<Vec<u8>, CaError> {
    let parsed = oids
        .iter()
        .map(|o| ObjectIdentifier::new(o).map_err(|_| CaError::InvalidEku((*o).to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ExtendedKeyUsage(parsed).to_der()?)
}

fn ia5(kind: &str, s: &str) -> Result<Ia5String, CaError> {
    Ia5String::new(s).map_err(|_| CaError::InvalidSan(format!("{kind} {s:?} is not IA5 (ASCII)")))
}

fn general_name(san: &San) -> Result<GeneralName, CaError> {
    Ok(match san {
        San::Dns(d) => GeneralName::DnsName(ia5("DNS name", d)?),
        San::Email(e) => GeneralName::Rfc822Name(ia5("email", e)?),
        San::Uri(u) => GeneralName::UniformResourceIdentifier(ia5("URI", u)?),
        San::Ip(IpAddr::V4(v4)) => GeneralName::IpAddress(OctetString::new(v4.octets())?),
        San::Ip(IpAddr::V6(v6)) => GeneralName::IpAddress(OctetString::new(v6.octets())?),
        San::Upn(upn) => GeneralName::OtherName(OtherName {
            type_id: UPN_OID,
            value: Any::encode_from(&Utf8StringRef::new(upn)?)?,
        }),
    })
}

/// subjectAltName extension value (DER); the caller marks it critical
/// when the subject DN is empty (RFC 5280 §4.2.1.6).
pub(crate) fn san_value(sans: &[San]) -> Result<Vec<u8>, CaError> {
    let names = sans
        .iter()
        .map(general_name)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubjectAltName(names).to_der()?)
}

/// cRLDistributionPoints extension value (DER) with one URI.
pub(crate) fn crl_dp_value(url: &str) -> Result<Vec<u8>, CaError> {
    let uri = GeneralName::UniformResourceIdentifier(
        Ia5String::new(url)
            .map_err(|_| CaError::InvalidSan(format!("CRL URL {url:?} is not ASCII")))?,
    );
    let dp = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri])),
        reasons: None,
        crl_issuer: None,
    };
    Ok(CrlDistributionPoints(vec![dp]).to_der()?)
}

/// authorityInfoAccess extension value (DER) naming one OCSP responder.
pub(crate) fn aia_ocsp_value(url: &str) -> Result<Vec<u8>, CaError> {
    let uri = GeneralName::UniformResourceIdentifier(
        Ia5String::new(url)
            .map_err(|_| CaError::InvalidSan(format!("OCSP URL {url:?} is not ASCII")))?,
    );
    let ad = AccessDescription {
        access_method: ID_AD_OCSP,
        access_location: uri,
    };
    Ok(AuthorityInfoAccessSyntax(vec![ad]).to_der()?)
}

pub(crate) fn asn1_time(t: DateTime<Utc>) -> Result<Asn1Time, CaError> {
    Ok(Asn1Time::from_unix(t.timestamp())?)
}

/// RFC 5280 §4.1.2.5 time: UTCTime through 2049, GeneralizedTime after.
pub(crate) fn x509_time(t: DateTime<Utc>) -> Result<x509_cert::time::Time, CaError> {
    let secs = u64::try_from(t.timestamp())
        .map_err(|_| CaError::InvalidValidity(format!("time {t} is before 1970")))?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))?;
    Ok(x509_cert::time::Time::from(dt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{generate_key, KeySpec};

    #[test]
    fn key_identifier_matches_openssl_hash_method() {
        // OpenSSL's own "hash" SKI for the same key must equal ours.
        let key = generate_key(KeySpec::EcP256).unwrap();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_pubkey(&key).unwrap();
        let ctx = b.x509v3_context(None, None);
        let ext = openssl::x509::extension::SubjectKeyIdentifier::new()
            .build(&ctx)
            .unwrap();
        b.append_extension(ext).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let cert = b.build();
        assert_eq!(
            cert.subject_key_id().unwrap().as_slice(),
            key_identifier(&key).unwrap().as_slice()
        );
    }

    #[test]
    fn non_ascii_dns_san_is_rejected() {
        let res = san_value(&[San::Dns("bücher.example".into())]);
        assert!(matches!(res, Err(CaError::InvalidSan(_))));
    }

    #[test]
    fn bad_eku_oid_is_rejected() {
        assert!(matches!(
            eku_value(&["1.3.6.1,critical"]),
            Err(CaError::InvalidEku(_))
        ));
    }

    #[test]
    fn times_after_2049_use_generalized_time() {
        let t = DateTime::parse_from_rfc3339("2051-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(matches!(
            x509_time(t).unwrap(),
            x509_cert::time::Time::GeneralTime(_)
        ));
        let t = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(matches!(
            x509_time(t).unwrap(),
            x509_cert::time::Time::UtcTime(_)
        ));
    }
}
