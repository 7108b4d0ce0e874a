//! cryptlib's SCEP fault tests (test/s_scep.c, `SCEP_TEST_CORRUPT_*`, with
//! the corruptions of misc/fault.h) turned on this server: a byte of the
//! transactionID, the senderNonce or the challengePassword incremented,
//! another valid transactionID in place of the right one, and messageType
//! "99" where PKCSReq belongs. Done before signing, the message is valid
//! and must be refused for what it says; done after signing (as a
//! network would), the signature no longer verifies: badMessageCheck.
//! Every answer is HTTP 400 (undecodable) or a signed CertRep FAILURE —
//! never a 500, never a request or certificate row, never a used
//! challenge — and the intact message still enrolls afterwards.

use openssl::symm::Cipher;
use server::wire::client::ClientContent;
use server::wire::{
    ContentCipher, DigestAlg, FailInfo, MessageType, Nonce, PkiStatus, TransactionId,
};

use super::messages::{assert_issued, envelope, patch, Answer, Ra, Requester};
use crate::support::Scepd;

/// cryptlib's test subject (s_scep.c `scepRequestData`).
const CN: &str = "Test SCEP PKI user";
const DN: [(&str, &str); 3] = [
    ("C", "NZ"),
    ("O", "Dave's Wetaburgers"),
    ("OU", "Procurement"),
];

/// The messageType attribute as it is signed: OID 2.16.840.1.113733.1.9.2,
/// SET { PrintableString "19" }.
const MESSAGE_TYPE_PKCSREQ: [u8; 18] = [
    0x06, 0x0a, 0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x45, 0x01, 0x09, 0x02, 0x31, 0x04, 0x13, 0x02,
    b'1', b'9',
];

struct Setup {
    s: Scepd,
    ra: Ra,
    dev: Requester,
    challenge: String,
    csr: Vec<u8>,
    txid: TransactionId,
    nonce: Nonce,
}

fn setup() -> Setup {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    let dev = Requester::fresh(CN);
    let challenge = s.mint("default");
    let csr = dev.csr(CN, Some(&challenge), &DN);
    Setup {
        s,
        ra,
        dev,
        challenge,
        csr,
        txid: TransactionId("CRYPTLIB-TRANSID-4E1F0A2B3C4D5E6F".into()),
        // Sixteen bytes that occur nowhere else in the message.
        nonce: Nonce(b"\x8a\x1f\x00\xfe\x5c\x33\xa7\x10\x42\x99\xd1\x06\xe8\x7b\x2c\xb4".to_vec()),
    }
}

impl Setup {
    /// The PKCSReq cryptlib would send, before any fault.
    fn intact(&self) -> Vec<u8> {
        self.dev
            .pkcs_req(&self.ra, &self.txid, &self.nonce, &self.csr)
    }

    /// Nothing was written and the challenge is unused.
    fn assert_nothing_written(&self, what: &str) {
        assert_eq!(
            self.s.count("enrollment_requests"),
            0,
            "{what}: request rows"
        );
        assert_eq!(self.s.count("certificates"), 0, "{what}: certificate rows");
        assert_eq!(
            self.s.count("challenges WHERE used_at IS NOT NULL"),
            0,
            "{what}: challenge used"
        );
    }

    /// The intact message enrolls: the refusal spent nothing.
    fn assert_intact_enrolls(&self) {
        let rep = self
            .dev
            .send(&self.s, &self.ra, &self.intact())
            .rep(&self.s);
        assert_issued(&self.s, &rep, &self.txid, &self.nonce, &self.dev.key);
        assert_eq!(self.s.count("certificates"), 1);
    }
}

/// `text` with its fifth byte incremented, as fault.h does (`value[4]++`).
fn bump_fifth(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    out[4] += 1;
    out
}

#[test]
fn cryptlib_transaction_id_corrupted_after_signing_is_bad_message_check() {
    let t = setup();
    let msg = t.intact();
    let corrupted = bump_fifth(t.txid.0.as_bytes());
    let msg = patch(&msg, t.txid.0.as_bytes(), &corrupted);
    let answer = t.dev.send(&t.s, &t.ra, &msg);
    answer.assert_refused("transactionID", false, &[FailInfo::BadMessageCheck]);
    let Answer::Rep(rep) = answer else {
        unreachable!()
    };
    // RFC 8894 §3.3.2: the FAILURE carries the transactionID it received.
    assert_eq!(rep.transaction_id.0.as_bytes(), corrupted.as_slice());
    t.assert_nothing_written("transactionID");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_sender_nonce_corrupted_after_signing_is_bad_message_check() {
    let t = setup();
    let corrupted = bump_fifth(&t.nonce.0);
    let msg = patch(&t.intact(), &t.nonce.0, &corrupted);
    let answer = t.dev.send(&t.s, &t.ra, &msg);
    answer.assert_refused("senderNonce", false, &[FailInfo::BadMessageCheck]);
    let Answer::Rep(rep) = answer else {
        unreachable!()
    };
    assert_eq!(rep.recipient_nonce.0, corrupted, "the nonce it received");
    t.assert_nothing_written("senderNonce");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_message_type_corrupted_after_signing_is_refused() {
    let t = setup();
    let intact = t.intact();
    // To another request type (RenewalReq): readable, but not what was signed.
    let mut to = MESSAGE_TYPE_PKCSREQ;
    to[16..].copy_from_slice(b"17");
    let msg = patch(&intact, &MESSAGE_TYPE_PKCSREQ, &to);
    t.dev.send(&t.s, &t.ra, &msg).assert_refused(
        "messageType 17",
        false,
        &[FailInfo::BadMessageCheck],
    );
    // To cryptlib's "99": no message type at all, so undecodable (HTTP 400),
    // or refused unread.
    to[16..].copy_from_slice(b"99");
    let msg = patch(&intact, &MESSAGE_TYPE_PKCSREQ, &to);
    t.dev.send(&t.s, &t.ra, &msg).assert_refused(
        "messageType 99",
        true,
        &[FailInfo::BadMessageCheck, FailInfo::BadRequest],
    );
    t.assert_nothing_written("messageType");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_message_type_99_signed_is_refused() {
    // FAULT_SESSION_SCEP_CORRUPT_MESSAGETYPE: the client itself writes "99"
    // and signs it.
    let t = setup();
    let env = envelope(&t.ra, &t.csr, Cipher::aes_128_cbc());
    let msg = t.dev.signed_raw("99", &t.txid.0, &t.nonce.0, &env);
    t.dev
        .send(&t.s, &t.ra, &msg)
        .assert_refused("messageType 99", true, &[FailInfo::BadRequest]);
    t.assert_nothing_written("messageType 99");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_cert_rep_message_type_from_a_client_is_bad_request() {
    // A messageType that exists but is not a request (CertRep, "3"), signed.
    let t = setup();
    let env = envelope(&t.ra, &t.csr, Cipher::aes_128_cbc());
    let msg = t
        .dev
        .signed_raw(MessageType::CertRep.code(), &t.txid.0, &t.nonce.0, &env);
    let answer = t.dev.send(&t.s, &t.ra, &msg);
    answer.assert_refused("CertRep as a request", false, &[FailInfo::BadRequest]);
    t.assert_nothing_written("CertRep as a request");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_corrupted_challenge_is_bad_request_and_spends_nothing() {
    // FAULT_CORRUPT_AUTHENTICATOR: the password's fifth byte incremented
    // before the request is made, so the message itself is valid.
    let t = setup();
    let wrong = String::from_utf8(bump_fifth(t.challenge.as_bytes())).unwrap();
    assert_ne!(wrong, t.challenge);
    let csr = t.dev.csr(CN, Some(&wrong), &DN);
    let msg = t.dev.pkcs_req(&t.ra, &t.txid, &t.nonce, &csr);
    let answer = t.dev.send(&t.s, &t.ra, &msg);
    answer.assert_refused("challenge", false, &[FailInfo::BadRequest]);
    let Answer::Rep(rep) = answer else {
        unreachable!()
    };
    assert_eq!(rep.transaction_id, t.txid);
    assert_eq!(rep.recipient_nonce, t.nonce);
    t.assert_nothing_written("challenge");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_encrypted_content_corrupted_after_signing_is_bad_message_check() {
    // The challenge travels inside the envelope: corrupting it on the wire
    // means corrupting the ciphertext, which the messageDigest covers.
    let t = setup();
    let env = envelope(&t.ra, &t.csr, Cipher::aes_128_cbc());
    let msg = t
        .dev
        .signed_raw(MessageType::PkcsReq.code(), &t.txid.0, &t.nonce.0, &env);
    let tail = &env[env.len() - 16..];
    let msg = patch(&msg, tail, &bump_fifth(tail));
    t.dev.send(&t.s, &t.ra, &msg).assert_refused(
        "encrypted content",
        false,
        &[FailInfo::BadMessageCheck],
    );
    t.assert_nothing_written("encrypted content");
    t.assert_intact_enrolls();
}

#[test]
fn cryptlib_other_transaction_id_in_cert_poll_is_bad_cert_id() {
    // FAULT_CORRUPT_ID: a valid transactionID, but not the transaction's.
    // Polled for, it names a transaction the server never saw.
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let ra = Ra::fetch_for(&s, "manual");
    let dev = Requester::fresh(CN);
    let csr = dev.csr(CN, Some(&s.mint("manual")), &DN);
    let txid = TransactionId("CRYPTLIB-TRANSID-0A1B2C3D4E5F6071".into());
    let msg = dev.pkcs_req(&ra, &txid, &Nonce::random().unwrap(), &csr);
    let rep = dev.send_to(&s, "manual", &ra, &msg).rep(&s);
    assert_eq!(rep.status, PkiStatus::Pending, "{rep:?}");
    assert_eq!(s.count("enrollment_requests"), 1);

    let issuer = s.ca_cert().subject_name().to_der().unwrap();
    let subject = dev.cert.subject_name().to_der().unwrap();
    let poll = |txid: &TransactionId| {
        let msg = dev.request(
            &ra,
            MessageType::CertPoll,
            txid,
            &Nonce::random().unwrap(),
            ClientContent::IssuerAndSubject {
                issuer_der: &issuer,
                subject_der: &subject,
            },
            ContentCipher::Aes128Cbc,
            DigestAlg::Sha256,
        );
        dev.send_to(&s, "manual", &ra, &msg)
    };
    let other = TransactionId(String::from_utf8(bump_fifth(txid.0.as_bytes())).unwrap());
    poll(&other).assert_refused("other transactionID", false, &[FailInfo::BadCertId]);
    assert_eq!(s.count("enrollment_requests"), 1, "no request row added");
    assert_eq!(s.count("certificates"), 0);
    // The right transactionID is still pending.
    let rep = poll(&txid).rep(&s);
    assert_eq!(rep.status, PkiStatus::Pending, "{rep:?}");
}
