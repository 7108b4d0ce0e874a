//! The client side of OCSP, for tests and the benchmark: a request for one
//! certificate (SHA-1 CertID, RFC 6960 §4.1.1, as `openssl ocsp` sends it)
//! with an optional nonce, and the nonce a response carries.

use openssl::x509::X509Ref;
use x509_cert02::der::asn1::{Null, OctetString};
use x509_cert02::der::{Decode, Encode};
use x509_cert02::ext::Extension;
use x509_cert02::serial_number::SerialNumber;
use x509_cert02::spki::AlgorithmIdentifierOwned;
use x509_cert02::Certificate;
use x509_ocsp::{BasicOcspResponse, CertId, OcspRequest, OcspResponse, TbsRequest};

use super::{OcspError, ID_PKIX_OCSP_NONCE};

const ID_SHA1: x509_cert02::der::asn1::ObjectIdentifier =
    x509_cert02::der::asn1::ObjectIdentifier::new_unwrap("1.3.14.3.2.26");

/// The DER OCSPRequest asking `issuer` about `cert`; `nonce` (1 to 32
/// octets) goes in the nonce extension as an OCTET STRING.
pub fn request(
    issuer: &X509Ref,
    cert: &X509Ref,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    let ca = Certificate::from_der(&issuer.to_der()?)?;
    let leaf = Certificate::from_der(&cert.to_der()?)?;
    let key_bits = ca
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA1,
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(openssl::sha::sha1(
            &ca.tbs_certificate.subject.to_der()?,
        ))?,
        issuer_key_hash: OctetString::new(openssl::sha::sha1(key_bits))?,
        serial_number: SerialNumber::new(leaf.tbs_certificate.serial_number.as_bytes())?,
    };
    let request_extensions = match nonce {
        Some(n) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(n)?.to_der()?)?,
        }]),
        None => None,
    };
    let req = OcspRequest {
        tbs_request: TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    Ok(req.to_der()?)
}

/// The nonce a successful response echoes, if any.
pub fn response_nonce(response: &[u8]) -> Option<Vec<u8>> {
    let r = OcspResponse::from_der(response).ok()?;
    let bytes = r.response_bytes?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).ok()?;
    Some(basic.nonce()?.0.as_bytes().to_vec())
}
