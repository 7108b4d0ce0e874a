//! The CA's certificates and capabilities as a client first meets them:
//! GetCACert (RFC 8894 §4.2, §3.5.1) with the RA's signing and encryption
//! certificates, which envelopes open and which are refused, and GetCACaps
//! (§3.5.2).

use openssl::x509::X509;
use server::wire::client::ClientContent;
use server::wire::{ContentCipher, DigestAlg, FailInfo, KeyTransport, MessageType, PkiStatus};

use crate::device::Device;
use crate::support::Scepd;

/// RFC 8894 §4.2 / §3.5.1: GetCACert returns the CA and the RA's signing
/// and encryption certificates; Cisco-style paths work.
mod rfc8894_4_2_get_ca_cert {
    use super::*;

    fn ra_encryption_cert(s: &Scepd) -> X509 {
        X509::from_pem(&std::fs::read(s.dir.path().join("ca/ra-enc.crt")).unwrap()).unwrap()
    }

    #[test]
    fn ca_and_ra_are_served_and_ra_can_sign_and_decrypt() {
        let s = Scepd::start();
        for path in [
            "/scep?operation=GetCACert",
            "/scep/default/pkiclient.exe?operation=GetCACert",
            "/cgi-bin/pkiclient.exe?operation=GetCACert",
        ] {
            let r = ureq::get(&format!("{}{path}", s.url)).call().unwrap();
            assert_eq!(r.content_type(), "application/x-x509-ca-ra-cert");
            let mut der = vec![];
            std::io::Read::read_to_end(&mut r.into_reader(), &mut der).unwrap();
            let certs = server::wire::client::parse_certs_only(&der).unwrap();
            assert_eq!(certs.len(), 3, "{path}");
            assert_eq!(certs[0].to_der().unwrap(), s.ca_cert().to_der().unwrap());
            assert_eq!(certs[1].to_der().unwrap(), s.ra_cert().to_der().unwrap());
            assert_eq!(
                certs[2].to_der().unwrap(),
                ra_encryption_cert(&s).to_der().unwrap()
            );
        }
        let text = crate::support::openssl_text(&s.ra_cert());
        assert!(
            text.contains("Digital Signature, Key Encipherment"),
            "{text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
        // NDES's encryption certificate: keyEncipherment alone, RSA, under
        // the CA, with a key of its own.
        let enc = ra_encryption_cert(&s);
        let text = crate::support::openssl_text(&enc);
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Key Encipherment\n"),
            "{text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(enc.public_key().unwrap().rsa().is_ok());
        assert!(enc.verify(&s.ca_cert().public_key().unwrap()).unwrap());
        assert!(!enc
            .public_key()
            .unwrap()
            .public_eq(&s.ra_cert().public_key().unwrap()));
    }

    /// A client that picks the recipient by keyUsage envelopes to the
    /// encryption certificate; one that picks the RA's signing certificate
    /// keeps working.
    #[test]
    fn a_request_enveloped_to_either_ra_certificate_enrolls() {
        let s = Scepd::start();
        for (i, to) in [ra_encryption_cert(&s), s.ra_cert()].iter().enumerate() {
            let dev = Device::new(&format!("recipient-{i}"), 2048);
            let csr = dev.csr(Some(&s.mint("default")));
            let msg = dev.request_to(
                to,
                MessageType::PkcsReq,
                &dev.txid(),
                ClientContent::Csr(&csr),
                ContentCipher::Aes256Cbc,
                KeyTransport::RsaPkcs1v15,
                DigestAlg::Sha256,
            );
            let rep = dev.send(&s, "default", &msg);
            assert_eq!(rep.status, PkiStatus::Success, "recipient {i}");
        }
    }

    /// The CA's key signs: it never decrypts (a PKCS#1 v1.5 decryption
    /// oracle on it would forge signatures). The refusal says which
    /// certificate the client chose, in the FAILURE's audit entry.
    #[test]
    fn a_request_enveloped_to_the_ca_is_refused_and_the_reason_names_it() {
        let s = Scepd::start();
        let dev = Device::new("to-the-ca", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let msg = dev.request_to(
            &s.ca_cert(),
            MessageType::PkcsReq,
            &dev.txid(),
            ClientContent::Csr(&csr),
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
            DigestAlg::Sha256,
        );
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadMessageCheck));
        let reason = crate::support::last_refusal(&s);
        let ca_serial = s
            .ca_cert()
            .serial_number()
            .to_bn()
            .unwrap()
            .to_hex_str()
            .unwrap();
        assert!(
            reason.starts_with(
                "envelope cannot be decrypted: addressed to a certificate we do not hold: issuer "
            ) && reason.contains(&ca_serial.to_string()),
            "{reason}"
        );
        assert_eq!(s.count("enrollment_requests"), 0);
    }
}

/// RFC 8894 §3.5.2: GetCACaps lists exactly what the server accepts, and
/// each listed digest and cipher enrolls.
mod rfc8894_3_5_2_get_ca_caps {
    use super::*;

    fn caps(s: &Scepd) -> Vec<String> {
        let text = ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("default")))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let mut caps: Vec<String> = text.lines().map(str::to_string).collect();
        caps.sort();
        caps
    }

    #[test]
    fn the_default_profile_lists_exactly_what_it_accepts() {
        let s = Scepd::start();
        assert_eq!(
            caps(&s),
            [
                "AES",
                "DES3",
                "POSTPKIOperation",
                "Renewal",
                "SCEPStandard",
                "SHA-1",
                "SHA-256",
                "SHA-384",
                "SHA-512"
            ]
        );
        let listed = [
            (DigestAlg::Sha1, ContentCipher::Aes128Cbc),
            (DigestAlg::Sha256, ContentCipher::Des3Cbc),
            (DigestAlg::Sha384, ContentCipher::Aes192Cbc),
            (DigestAlg::Sha512, ContentCipher::Aes256Cbc),
        ];
        for (i, (digest, cipher)) in listed.into_iter().enumerate() {
            let dev = Device::new(&format!("caps-{i}"), 2048);
            let csr = dev.csr(Some(&s.mint("default")));
            let msg = dev.request_with(
                &s,
                MessageType::PkcsReq,
                &dev.txid(),
                ClientContent::Csr(&csr),
                cipher,
                KeyTransport::RsaPkcs1v15,
                digest,
            );
            let rep = dev.send(&s, "default", &msg);
            assert_eq!(rep.status, PkiStatus::Success, "{digest:?} {cipher:?}");
        }
    }
}
