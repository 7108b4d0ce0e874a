//! RFC 8894 message flows with the project's own client
//! (`server::wire::client`) for what scepclient cannot do: PENDING and
//! polling, decline, renewal, GetCert, GetCRL, retransmission, and every
//! failInfo.

use server::store::{certificates, requests};
use server::wire::{ContentCipher, FailInfo, MessageType, PkiStatus, TransactionId};

use crate::device::{post, Device};
use crate::support::Scepd;

/// RFC 8894 §3.3.1 / §3.3.3: manual approval answers PENDING; the poll
/// gets the certificate once an officer approved.
mod rfc8894_3_3_pending {
    use super::*;

    #[test]
    fn pending_then_approve_then_poll_succeeds() {
        let s = Scepd::start();
        s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
        let dev = Device::new("manual-dev-1", 2048);
        let challenge = s.mint("manual");
        let rep = dev.pkcs_req(&s, "manual", Some(&challenge));
        assert_eq!(rep.status, PkiStatus::Pending);
        assert_eq!(rep.transaction_id, dev.txid());
        assert!(rep.certs.is_empty());

        let poll = dev.poll(&s, "manual", &dev.txid());
        assert_eq!(poll.status, PkiStatus::Pending);

        let list = s.cli_ok(&["request", "list", "--status", "requested"]);
        let id = list.split('\t').next().unwrap().trim().to_string();
        assert!(list.contains(&dev.txid().0), "{list}");
        s.cli_ok(&["request", "approve", &id, "--actor", "officer1"]);

        let poll = dev.poll(&s, "manual", &dev.txid());
        assert_eq!(poll.status, PkiStatus::Success, "{poll:?}");
        assert_eq!(poll.certs.len(), 1);
        assert!(poll.certs[0].public_key().unwrap().public_eq(&dev.key));
        // The state history went Requested -> Applied -> Issued.
        let req = requests::by_id(&mut s.pg(), id.parse().unwrap()).unwrap();
        let history: Vec<String> = requests::events(&mut s.pg(), req.id)
            .unwrap()
            .into_iter()
            .map(|e| e.to_status)
            .collect();
        assert_eq!(history, ["requested", "applied", "issued"]);
    }

    #[test]
    fn declined_request_polls_as_failure_bad_request() {
        let s = Scepd::start();
        s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
        let dev = Device::new("manual-dev-2", 2048);
        let rep = dev.pkcs_req(&s, "manual", Some(&s.mint("manual")));
        assert_eq!(rep.status, PkiStatus::Pending);
        let list = s.cli_ok(&["request", "list"]);
        let id = list.split('\t').next().unwrap().trim().to_string();
        s.cli_ok(&["request", "decline", &id, "--reason", "unknown device"]);
        let poll = dev.poll(&s, "manual", &dev.txid());
        assert_eq!(poll.status, PkiStatus::Failure);
        assert_eq!(poll.fail_info, Some(FailInfo::BadRequest));
        assert_eq!(s.count("certificates"), 0);
    }

    #[test]
    fn poll_for_unknown_transaction_is_bad_cert_id() {
        let s = Scepd::start();
        let dev = Device::new("nobody", 2048);
        let poll = dev.poll(&s, "default", &TransactionId("never-seen".into()));
        assert_eq!(poll.status, PkiStatus::Failure);
        assert_eq!(poll.fail_info, Some(FailInfo::BadCertId));
    }
}

/// RFC 8894 §3.3.1: a retransmitted request gets the same answer, never a
/// second certificate.
mod rfc8894_3_3_1_retransmission {
    use super::*;

    #[test]
    fn same_message_twice_returns_the_same_certificate_once() {
        let s = Scepd::start();
        let dev = Device::new("retrans", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let msg = dev.pkcs_req_message(&s, &csr, ContentCipher::Des3Cbc);
        let a = dev.send(&s, "default", &msg);
        let b = dev.send(&s, "default", &msg);
        assert_eq!(a.status, PkiStatus::Success, "{a:?}");
        assert_eq!(b.status, PkiStatus::Success, "{b:?}");
        assert_eq!(
            a.cipher,
            Some(ContentCipher::Des3Cbc),
            "answered with the client's cipher"
        );
        assert_eq!(a.certs[0].to_der().unwrap(), b.certs[0].to_der().unwrap());
        assert_eq!(s.count("certificates"), 1);
    }
}

/// RFC 8894 §3.3.1.2: renewal authenticated by a certificate we issued.
mod rfc8894_3_3_1_2_renewal {
    use super::*;

    #[test]
    fn renewal_req_signed_by_issued_certificate_is_issued_and_records_replacement() {
        let s = Scepd::start();
        s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
        let old = Device::enrolled(&s, "renew", "renew-dev");
        let old_serial = hex::encode_upper(old.signer.serial_number().to_bn().unwrap().to_vec());
        // New key, signed with the old certificate and its key; no challenge.
        let new_key = Device::new("renew-dev", 2048);
        let csr = new_key.csr(None);
        let txid = new_key.txid();
        let msg = old.csr_request(
            &s,
            MessageType::RenewalReq,
            &txid,
            &csr,
            ContentCipher::Aes128Cbc,
        );
        let rep = old.send(&s, "renew", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        let new_cert = &rep.certs[0];
        assert!(new_cert.public_key().unwrap().public_eq(&new_key.key));
        let new_serial = hex::encode_upper(new_cert.serial_number().to_bn().unwrap().to_vec());
        let stored = certificates::by_serial(&mut s.pg(), &new_serial)
            .unwrap()
            .unwrap();
        let replaced = certificates::by_serial(&mut s.pg(), &old_serial)
            .unwrap()
            .unwrap();
        assert_eq!(stored.replaces_id, Some(replaced.id));
    }

    #[test]
    fn pkcsreq_signed_by_issued_certificate_counts_as_renewal() {
        let s = Scepd::start();
        s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
        let old = Device::enrolled(&s, "renew", "renew-dev2");
        let fresh = Device::new("renew-dev2", 2048);
        let csr = fresh.csr(None);
        let msg = old.csr_request(
            &s,
            MessageType::PkcsReq,
            &fresh.txid(),
            &csr,
            ContentCipher::Aes256Cbc,
        );
        let rep = old.send(&s, "renew", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    }

    #[test]
    fn renewal_outside_the_window_is_refused() {
        let s = Scepd::start();
        // Default profile: 365 days validity, 30-day window.
        let old = Device::enrolled(&s, "default", "early-renewer");
        let fresh = Device::new("early-renewer", 2048);
        let csr = fresh.csr(None);
        let msg = old.csr_request(
            &s,
            MessageType::RenewalReq,
            &fresh.txid(),
            &csr,
            ContentCipher::Aes128Cbc,
        );
        let rep = old.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }

    #[test]
    fn pkcsreq_with_a_challenge_signed_by_an_issued_certificate_enrolls_afresh() {
        let s = Scepd::start();
        // Default profile: outside the renewal window, so not a renewal...
        let old = Device::enrolled(&s, "default", "re-enroller");
        let fresh = Device::new("re-enroller", 2048);
        // ...but the fresh challenge authenticates it.
        let csr = fresh.csr(Some(&s.mint("default")));
        let msg = old.csr_request(
            &s,
            MessageType::PkcsReq,
            &fresh.txid(),
            &csr,
            ContentCipher::Aes128Cbc,
        );
        let rep = old.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        let serial = hex::encode_upper(rep.certs[0].serial_number().to_bn().unwrap().to_vec());
        let stored = certificates::by_serial(&mut s.pg(), &serial)
            .unwrap()
            .unwrap();
        assert_eq!(stored.replaces_id, None);
    }

    #[test]
    fn renewal_req_with_a_self_signed_certificate_is_refused() {
        let s = Scepd::start();
        let dev = Device::new("stranger", 2048);
        let csr = dev.csr(None);
        let msg = dev.csr_request(
            &s,
            MessageType::RenewalReq,
            &dev.txid(),
            &csr,
            ContentCipher::Aes128Cbc,
        );
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }
}

/// RFC 8894 §3.3.4: GetCert and GetCRL.
mod rfc8894_3_3_4_get_cert_and_crl {
    use super::*;

    #[test]
    fn get_cert_returns_the_certificate_and_unknown_serial_is_bad_cert_id() {
        let s = Scepd::start();
        let dev = Device::new("getcert-dev", 2048);
        let issued = dev
            .pkcs_req(&s, "default", Some(&s.mint("default")))
            .certs
            .remove(0);
        let serial = issued.serial_number().to_bn().unwrap().to_vec();
        let msg = dev.issuer_and_serial_request(
            &s,
            MessageType::GetCert,
            &TransactionId("getcert-1".into()),
            &serial,
        );
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        assert_eq!(rep.certs[0].to_der().unwrap(), issued.to_der().unwrap());

        let msg = dev.issuer_and_serial_request(
            &s,
            MessageType::GetCert,
            &TransactionId("getcert-2".into()),
            &[0x42, 0x42],
        );
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadCertId));
    }

    #[test]
    fn get_crl_after_revocation_lists_the_serial() {
        let s = Scepd::start();
        let dev = Device::new("revoked-dev", 2048);
        let issued = dev
            .pkcs_req(&s, "default", Some(&s.mint("default")))
            .certs
            .remove(0);
        let serial_hex = hex::encode_upper(issued.serial_number().to_bn().unwrap().to_vec());
        s.cli_ok(&["cert", "revoke", &serial_hex, "--reason", "keyCompromise"]);

        let serial = issued.serial_number().to_bn().unwrap().to_vec();
        let msg = dev.issuer_and_serial_request(
            &s,
            MessageType::GetCrl,
            &TransactionId("getcrl-1".into()),
            &serial,
        );
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        let crl = openssl::x509::X509Crl::from_der(&rep.crls[0]).unwrap();
        assert!(crl.verify(&s.ca_cert().public_key().unwrap()).unwrap());
        let revoked = crl.get_revoked().expect("one entry");
        assert!(
            revoked
                .iter()
                .any(|r| r.serial_number().to_bn().unwrap()
                    == issued.serial_number().to_bn().unwrap())
        );
        // The same revocation is in the CRL served over HTTP.
        let name = s
            .ca_cert()
            .digest(openssl::hash::MessageDigest::sha256())
            .unwrap();
        let url = format!("{}/crl/{}.crl", s.url, &hex::encode(name)[..16]);
        let mut der = vec![];
        std::io::Read::read_to_end(&mut ureq::get(&url).call().unwrap().into_reader(), &mut der)
            .unwrap();
        let http_crl = openssl::x509::X509Crl::from_der(&der).unwrap();
        assert_eq!(http_crl.get_revoked().map(|r| r.len()), Some(1));
    }
}

/// RFC 8894 §3.3.2.2: refusals are signed CertRep FAILUREs with the right failInfo.
mod rfc8894_3_3_2_fail_info {
    use super::*;

    #[test]
    fn wrong_challenge_is_bad_request() {
        let s = Scepd::start();
        let rep = Device::new("d1", 2048).pkcs_req(&s, "default", Some("WRONGWRONGWRONG"));
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }

    #[test]
    fn missing_challenge_is_bad_request() {
        let s = Scepd::start();
        let rep = Device::new("d2", 2048).pkcs_req(&s, "default", None);
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }

    #[test]
    fn small_key_violates_policy_and_keeps_the_challenge_unused() {
        let s = Scepd::start();
        let challenge = s.mint("default");
        let rep = Device::new("weak", 1024).pkcs_req(&s, "default", Some(&challenge));
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
        assert_eq!(s.count("certificates"), 0);
        assert_eq!(s.count("enrollment_requests"), 0);
        // The refusal was audited with its reason.
        assert!(
            s.count(
                "audit_log WHERE event = 'request.refused' AND details->>'reason' LIKE 'policy:%'"
            ) == 1
        );
        // The challenge still works for a compliant request.
        let ok = Device::new("strong", 2048).pkcs_req(&s, "default", Some(&challenge));
        assert_eq!(ok.status, PkiStatus::Success);
    }

    #[test]
    fn tampered_signature_is_bad_message_check() {
        let s = Scepd::start();
        let dev = Device::new("tamper", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let mut msg = dev.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
        // The last bytes of the DER are the SignerInfo's signature value.
        let n = msg.len();
        msg[n - 1] ^= 0x55;
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadMessageCheck));
        assert_eq!(s.count("certificates"), 0);
    }

    #[test]
    fn garbage_gets_http_400_not_500() {
        let s = Scepd::start();
        for body in [
            &b"garbage"[..],
            &[0x30, 0x80, 0x00][..],
            &[0x30, 0x03, 0x02, 0x01, 0x01][..],
        ] {
            let err = post(&s, "default", body).unwrap_err();
            assert_eq!(err.0, 400, "{err:?}");
            assert_eq!(err.1.trim().lines().count(), 1, "one-line reason: {err:?}");
        }
        let get = ureq::get(&format!(
            "{}?operation=PKIOperation&message=%%%%",
            s.scep_url("default")
        ))
        .call();
        assert!(matches!(get, Err(ureq::Error::Status(400, _))));
        let op = ureq::get(&format!("{}?operation=Nonsense", s.scep_url("default"))).call();
        assert!(matches!(op, Err(ureq::Error::Status(400, _))));
        let prof = ureq::get(&format!(
            "{}?operation=GetCACaps",
            s.scep_url("no-such-profile")
        ))
        .call();
        assert!(matches!(prof, Err(ureq::Error::Status(404, _))));
        let big = vec![0x30u8; 300 * 1024];
        assert_eq!(post(&s, "default", &big).unwrap_err().0, 413);
    }
}

/// RFC 8894 §3.2.2 and §4.3: every envelope the server accepts, and GET as
/// Apple sends it.
mod rfc8894_3_2_2_envelopes {
    use super::*;
    use base64::Engine;
    use server::wire::client::{parse_cert_rep, ClientContent};
    use server::wire::{DigestAlg, KeyTransport};

    #[test]
    fn every_cipher_with_v15_and_oaep_enrolls_and_is_answered_in_kind() {
        let s = Scepd::start();
        let ciphers = [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes192Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::Des3Cbc,
        ];
        let challenges: Vec<String> = s
            .cli_ok(&["challenge", "mint", "--count", "8"])
            .lines()
            .map(str::to_string)
            .collect();
        let mut i = 0;
        for cipher in ciphers {
            for (transport, digest) in [
                (KeyTransport::RsaPkcs1v15, DigestAlg::Sha256),
                (KeyTransport::RsaOaep, DigestAlg::Sha512),
            ] {
                let dev = Device::new(&format!("env-{i}"), 2048);
                let csr = dev.csr(Some(&challenges[i]));
                i += 1;
                let msg = dev.request_with(
                    &s,
                    MessageType::PkcsReq,
                    &dev.txid(),
                    ClientContent::Csr(&csr),
                    cipher,
                    transport,
                    digest,
                );
                let rep = dev.send(&s, "default", &msg);
                assert_eq!(
                    rep.status,
                    PkiStatus::Success,
                    "{cipher:?} {transport:?}: {rep:?}"
                );
                assert_eq!(rep.cipher, Some(cipher), "reply uses the client's cipher");
                assert_eq!(rep.digest, digest, "reply uses the client's digest");
                assert!(rep.certs[0].public_key().unwrap().public_eq(&dev.key));
            }
        }
    }

    #[test]
    fn get_with_unescaped_plus_and_line_breaks_is_understood() {
        let s = Scepd::start();
        // Find a request whose base64 has '+' and '/' so the test means something.
        let (dev, msg) = loop {
            let dev = Device::new("apple-get", 2048);
            let csr = dev.csr(Some(&s.mint("default")));
            let msg = dev.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
            if b64.contains('+') && b64.contains('/') {
                break (dev, b64);
            }
        };
        // Unescaped '+' and '/', a line break every 64 characters (escaped as %0A).
        let wrapped: Vec<String> = msg
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let url = format!(
            "{}?operation=PKIOperation&message={}",
            s.scep_url("default"),
            wrapped.join("%0A")
        );
        let r = ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("{e}\n{}", s.log()));
        let mut der = vec![];
        std::io::Read::read_to_end(&mut r.into_reader(), &mut der).unwrap();
        let rep = parse_cert_rep(&der, &s.ra_cert(), &dev.signer, &dev.key).unwrap();
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    }
}

/// RFC 8894 §2.3 asks the signer of a first enrollment to hold the key it
/// asks to have certified. Clients in the field sign with a throwaway
/// certificate of another key; that is accepted unless the profile
/// insists, and audited either way.
mod rfc8894_2_3_proof_of_possession {
    use super::*;

    /// A PKCSReq for `other`'s CSR, signed by `signer`'s self-signed
    /// certificate.
    fn mismatched(s: &Scepd, profile: &str, signer: &Device, other: &Device) -> Vec<u8> {
        let csr = other.csr(Some(&s.mint(profile)));
        signer.csr_request(
            s,
            MessageType::PkcsReq,
            &other.txid(),
            &csr,
            ContentCipher::Aes128Cbc,
        )
    }

    #[test]
    fn a_signer_with_another_key_enrolls_and_the_reply_goes_to_the_signer() {
        let s = Scepd::start();
        let signer = Device::new("mismatch", 2048);
        let other = Device::new("mismatch", 2048);
        let msg = mismatched(&s, "default", &signer, &other);
        // `send` opens the reply with the signer's key: only it can.
        let rep = signer.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        let cert = &rep.certs[0];
        assert!(cert.public_key().unwrap().public_eq(&other.key));
        assert_eq!(
            s.count(
                "audit_log WHERE event = 'challenge.used' \
                 AND details->>'signer_key_differs' = 'true'"
            ),
            1
        );
        // The common case records nothing of the kind.
        let same = Device::new("same-key", 2048);
        assert_eq!(
            same.pkcs_req(&s, "default", Some(&s.mint("default")))
                .status,
            PkiStatus::Success
        );
        assert_eq!(s.count("audit_log WHERE details ? 'signer_key_differs'"), 1);
    }

    #[test]
    fn a_profile_that_enforces_it_refuses_a_signer_with_another_key() {
        let s = Scepd::start();
        s.cli_ok(&["profile", "set", "default", "--signer-key-must-match=true"]);
        let signer = Device::new("mismatch", 2048);
        let other = Device::new("mismatch", 2048);
        let msg = mismatched(&s, "default", &signer, &other);
        let rep = signer.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
        assert_eq!(s.count("certificates"), 0);
        assert_eq!(s.count("challenges WHERE used_at IS NOT NULL"), 0);
        assert!(crate::support::last_refusal(&s)
            .starts_with("the signer certificate's key is not the key being certified"));
        // The same key still enrolls under the strict profile.
        assert_eq!(
            other
                .pkcs_req(&s, "default", Some(&s.mint("default")))
                .status,
            PkiStatus::Success
        );
    }
}
