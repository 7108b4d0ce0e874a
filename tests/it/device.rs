//! A simulated SCEP device built on `server::wire::client`: its key, its
//! self-signed signer certificate, CSRs made by the `openssl req` CLI (so
//! the challengePassword attribute is encoded by a real PKCS#10 producer),
//! and HTTP round trips.

use std::process::Command;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use server::wire::client::{
    build_request, parse_cert_rep, CertRepMsg, ClientContent, ClientRequest,
};
use server::wire::{
    ContentCipher, DigestAlg, KeyTransport, MessageType, Nonce, PkiStatus, TransactionId,
};

use crate::support::Scepd;

pub struct Device {
    pub key: PKey<Private>,
    /// The certificate that signs requests (self-signed, or an issued one).
    pub signer: X509,
    pub cn: String,
}

impl Device {
    pub fn new(cn: &str, bits: u32) -> Device {
        Self::with_key(cn, PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap())
    }

    pub fn with_key(cn: &str, key: PKey<Private>) -> Device {
        let signer = self_signed(&key, cn);
        Device {
            key,
            signer,
            cn: cn.to_string(),
        }
    }

    /// A PKCS#10 request made by `openssl req`, with an optional challenge.
    pub fn csr(&self, challenge: Option<&str>) -> Vec<u8> {
        self.csr_with(challenge, &[], &[])
    }

    /// A PKCS#10 request with extra subject attributes (e.g. `("serialNumber",
    /// "X1")`) and subjectAltNames in `openssl req` syntax (`DNS:a.example`).
    pub fn csr_with(
        &self,
        challenge: Option<&str>,
        extra_dn: &[(&str, &str)],
        sans: &[&str],
    ) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("k.pem");
        std::fs::write(&key_path, self.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let mut cfg =
            String::from("[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n");
        if !sans.is_empty() {
            cfg.push_str("req_extensions = ext\n");
        }
        cfg.push_str(&format!("[dn]\nCN = {}\n", self.cn));
        for (k, v) in extra_dn {
            cfg.push_str(&format!("{k} = {v}\n"));
        }
        cfg.push_str("[attrs]\n");
        if let Some(c) = challenge {
            cfg.push_str(&format!("challengePassword = {c}\n"));
        }
        if !sans.is_empty() {
            cfg.push_str(&format!("[ext]\nsubjectAltName = {}\n", sans.join(",")));
        }
        let cfg_path = dir.path().join("req.cnf");
        std::fs::write(&cfg_path, cfg).unwrap();
        let out = Command::new("openssl")
            .args(["req", "-new", "-sha256", "-outform", "DER", "-key"])
            .arg(&key_path)
            .arg("-config")
            .arg(&cfg_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The transactionID scepclient would use: a hash of the public key.
    pub fn txid(&self) -> TransactionId {
        let spki = self.key.public_key_to_der().unwrap();
        TransactionId(hex::encode_upper(openssl::sha::sha256(&spki)))
    }

    pub fn request(
        &self,
        s: &Scepd,
        mt: MessageType,
        txid: &TransactionId,
        content: ClientContent<'_>,
        cipher: ContentCipher,
    ) -> Vec<u8> {
        self.request_with(
            s,
            mt,
            txid,
            content,
            cipher,
            KeyTransport::RsaPkcs1v15,
            DigestAlg::Sha256,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn request_with(
        &self,
        s: &Scepd,
        mt: MessageType,
        txid: &TransactionId,
        content: ClientContent<'_>,
        cipher: ContentCipher,
        key_transport: KeyTransport,
        digest: DigestAlg,
    ) -> Vec<u8> {
        self.request_to(
            &s.ra_cert(),
            mt,
            txid,
            content,
            cipher,
            key_transport,
            digest,
        )
    }

    /// As `request_with`, enveloped for `recipient` instead of a running
    /// scepd's RA (the fuzz corpus is made for a fixed fixture RA).
    #[allow(clippy::too_many_arguments)]
    pub fn request_to(
        &self,
        recipient: &X509,
        mt: MessageType,
        txid: &TransactionId,
        content: ClientContent<'_>,
        cipher: ContentCipher,
        key_transport: KeyTransport,
        digest: DigestAlg,
    ) -> Vec<u8> {
        build_request(&ClientRequest {
            message_type: mt,
            transaction_id: txid.clone(),
            sender_nonce: Nonce::random().unwrap(),
            signer_cert: &self.signer,
            signer_key: &self.key,
            recipient,
            cipher,
            key_transport,
            digest,
            content,
        })
        .unwrap()
    }

    /// A PKCSReq or RenewalReq carrying `csr` under `txid`, signed by this
    /// device's signer (for a renewal, the certificate being replaced).
    pub fn csr_request(
        &self,
        s: &Scepd,
        mt: MessageType,
        txid: &TransactionId,
        csr: &[u8],
        cipher: ContentCipher,
    ) -> Vec<u8> {
        self.request(s, mt, txid, ClientContent::Csr(csr), cipher)
    }

    /// A PKCSReq for `csr` under this device's own transactionID.
    pub fn pkcs_req_message(&self, s: &Scepd, csr: &[u8], cipher: ContentCipher) -> Vec<u8> {
        self.csr_request(s, MessageType::PkcsReq, &self.txid(), csr, cipher)
    }

    /// A GetCert or GetCRL for `serial` as issued by the running scepd's CA.
    pub fn issuer_and_serial_request(
        &self,
        s: &Scepd,
        mt: MessageType,
        txid: &TransactionId,
        serial: &[u8],
    ) -> Vec<u8> {
        let issuer = s.ca_cert().subject_name().to_der().unwrap();
        self.request(
            s,
            mt,
            txid,
            ClientContent::IssuerAndSerial {
                issuer_der: &issuer,
                serial,
            },
            ContentCipher::Aes128Cbc,
        )
    }

    /// POST a PKIOperation and parse the CertRep.
    pub fn send(&self, s: &Scepd, profile: &str, msg: &[u8]) -> CertRepMsg {
        let body = post(s, profile, msg)
            .unwrap_or_else(|(code, text)| panic!("HTTP {code}: {text}\nlog:\n{}", s.log()));
        parse_cert_rep(&body, &s.ra_cert(), &self.signer, &self.key).unwrap()
    }

    pub fn pkcs_req(&self, s: &Scepd, profile: &str, challenge: Option<&str>) -> CertRepMsg {
        let csr = self.csr(challenge);
        let msg = self.pkcs_req_message(s, &csr, ContentCipher::Aes256Cbc);
        self.send(s, profile, &msg)
    }

    /// A device enrolled on `profile` with a fresh challenge, whose signer
    /// is now the certificate it was issued (ready to renew).
    pub fn enrolled(s: &Scepd, profile: &str, cn: &str) -> Device {
        let dev = Device::new(cn, 2048);
        let rep = dev.pkcs_req(s, profile, Some(&s.mint(profile)));
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        Device {
            key: dev.key,
            signer: rep.certs[0].clone(),
            cn: dev.cn,
        }
    }

    pub fn poll(&self, s: &Scepd, profile: &str, txid: &TransactionId) -> CertRepMsg {
        let issuer = s.ca_cert().subject_name().to_der().unwrap();
        let subject = self.signer.subject_name().to_der().unwrap();
        let msg = self.request(
            s,
            MessageType::CertPoll,
            txid,
            ClientContent::IssuerAndSubject {
                issuer_der: &issuer,
                subject_der: &subject,
            },
            ContentCipher::Aes128Cbc,
        );
        self.send(s, profile, &msg)
    }
}

pub fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let now = Asn1Time::days_from_now(0).unwrap();
    let tomorrow = Asn1Time::days_from_now(1).unwrap();
    self_signed_with(key, cn, 1, &now, &tomorrow)
}

/// A self-signed certificate with a chosen serial and validity (e.g. one
/// that expired long ago).
pub fn self_signed_with(
    key: &PKey<Private>,
    cn: &str,
    serial: u32,
    not_before: &Asn1TimeRef,
    not_after: &Asn1TimeRef,
) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(not_before).unwrap();
    b.set_not_after(not_after).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

/// POST a PKIOperation; Err((status, body)) for non-200.
pub fn post(s: &Scepd, profile: &str, msg: &[u8]) -> Result<Vec<u8>, (u16, String)> {
    let url = format!("{}?operation=PKIOperation", s.scep_url(profile));
    match ureq::post(&url)
        .set("Content-Type", "application/x-pki-message")
        .send_bytes(msg)
    {
        Ok(r) => {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
            Ok(v)
        }
        Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
        Err(e) => panic!("transport error {e}"),
    }
}
