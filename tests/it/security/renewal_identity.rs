//! RFC 8894 §3.3.1.2: a renewal authenticated by a certificate we issued
//! renews that certificate, nothing else. It keeps the subject and SANs
//! (an identity change goes to an officer, and only where the profile
//! allows one), it waits for an officer on a manual profile unless the
//! profile renews automatically, it happens once per certificate, and the
//! certificate it supersedes is revoked once its successor is delivered
//! (when the profile revokes on replace).

use openssl::x509::X509;
use server::store::audit::{self, AuditKind};
use server::store::certificates::{self, Certificate};
use server::wire::client::CertRepMsg;
use server::wire::{ContentCipher, FailInfo, MessageType, PkiStatus, TransactionId};

use crate::device::Device;
use crate::support::{last_refusal, Scepd};

fn stored(s: &Scepd, cert: &X509) -> Certificate {
    let serial = hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec());
    certificates::by_serial(&mut s.pg(), &serial)
        .unwrap()
        .unwrap()
}

/// A RenewalReq for a new key, signed by `old`'s certificate: the CSR's
/// CN is `cn`, with `sans`.
fn renewal(s: &Scepd, old: &Device, cn: &str, sans: &[&str]) -> (Vec<u8>, TransactionId) {
    let new_key = Device::new(cn, 2048);
    let csr = new_key.csr_with(None, &[], sans);
    let txid = new_key.txid();
    let msg = old.csr_request(
        s,
        MessageType::RenewalReq,
        &txid,
        &csr,
        ContentCipher::Aes128Cbc,
    );
    (msg, txid)
}

fn renew(s: &Scepd, profile: &str, old: &Device, cn: &str, sans: &[&str]) -> CertRepMsg {
    let (msg, _) = renewal(s, old, cn, sans);
    old.send(s, profile, &msg)
}

fn refused(s: &Scepd, rep: &CertRepMsg, reason: &str) {
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    let got = last_refusal(s);
    assert!(got.contains(reason), "{reason:?} not in {got:?}");
}

fn sql(s: &Scepd, q: &str) {
    diesel::RunQueryDsl::execute(diesel::sql_query(q), &mut s.pg()).unwrap();
}

fn request_id(s: &Scepd, txid: &TransactionId) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct R {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let r: R = diesel::sql_query(
        "SELECT max(id) AS id FROM enrollment_requests WHERE transaction_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(&txid.0)
    .get_result(&mut s.pg())
    .unwrap();
    r.id
}

fn superseded_audited(s: &Scepd, cert: &Certificate) -> bool {
    audit::recent(&mut s.pg(), Some(AuditKind::CertificateRevoked), 100)
        .unwrap()
        .iter()
        .any(|e| {
            e.target.as_deref() == Some(&format!("certificate:{}", cert.serial))
                && e.details["reason"] == "superseded"
        })
}

#[test]
fn a_renewal_keeps_the_subject_and_sans_of_the_certificate_it_replaces() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    let old = Device::enrolled(&s, "renew", "printer-7");

    let rep = renew(&s, "renew", &old, "ceo-laptop", &[]);
    refused(&s, &rep, "a renewal keeps the subject and SANs");
    let rep = renew(
        &s,
        "renew",
        &old,
        "printer-7",
        &["DNS:ceo-laptop.corp.example"],
    );
    refused(&s, &rep, "a renewal keeps the subject and SANs");
    assert_eq!(s.count("certificates"), 1);

    // The same identity renews at once on an auto-approve profile.
    let rep = renew(&s, "renew", &old, "printer-7", &[]);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
}

#[test]
fn an_identity_change_the_profile_allows_goes_to_an_officer() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    s.cli_ok(&[
        "profile",
        "set",
        "renew",
        "--renewal-allows-identity-change=true",
    ]);
    let old = Device::enrolled(&s, "renew", "printer-7");
    let (msg, txid) = renewal(&s, &old, "printer-7b", &[]);
    let rep = old.send(&s, "renew", &msg);
    assert_eq!(rep.status, PkiStatus::Pending, "{rep:?}");
    assert_eq!(s.count("certificates"), 1);
    s.cli_ok(&["request", "approve", &request_id(&s, &txid).to_string()]);
    let rep = old.poll(&s, "renew", &txid);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
}

#[test]
fn a_manual_profile_renews_at_once_only_when_it_says_so() {
    let s = Scepd::start();
    s.cli_ok(&[
        "profile",
        "create",
        "manual",
        "--renewal-window-days",
        "400",
    ]);
    let first = Device::enrolled(&s, "manual", "kiosk-1");
    let second = Device::enrolled(&s, "manual", "kiosk-2");
    sql(
        &s,
        "UPDATE device_profiles SET approval_mode = 'manual' WHERE profile_id = 'manual'",
    );

    let rep = renew(&s, "manual", &first, "kiosk-1", &[]);
    assert_eq!(rep.status, PkiStatus::Pending, "{rep:?}");

    s.cli_ok(&["profile", "set", "manual", "--auto-renew=true"]);
    let rep = renew(&s, "manual", &second, "kiosk-2", &[]);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
}

#[test]
fn a_certificate_is_renewed_once_and_a_retransmission_gets_the_same_answer() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    let old = Device::enrolled(&s, "renew", "printer-7");
    let (msg, txid) = renewal(&s, &old, "printer-7", &[]);
    let first = old.send(&s, "renew", &msg);
    assert_eq!(first.status, PkiStatus::Success, "{first:?}");

    // RFC 8894 §3.3.1: the same transaction again is answered as before.
    let again = old.send(&s, "renew", &msg);
    assert_eq!(again.status, PkiStatus::Success, "{again:?}");
    assert_eq!(
        again.certs[0].to_der().unwrap(),
        first.certs[0].to_der().unwrap()
    );

    // Another key under another transaction: the certificate is spent.
    let rep = renew(&s, "renew", &old, "printer-7", &[]);
    let id = request_id(&s, &txid);
    refused(
        &s,
        &rep,
        &format!("certificate already renewed: request {id}"),
    );
    assert_eq!(s.count("certificates"), 2);
}

#[test]
fn the_superseded_certificate_is_revoked_once_its_successor_is_delivered() {
    let s = Scepd::start();
    s.cli_ok(&[
        "profile",
        "create",
        "renew",
        "--renewal-window-days",
        "400",
        "--revoke-on-replace",
    ]);

    // Issued at once: delivered in the reply, revoked with it.
    let old = Device::enrolled(&s, "renew", "printer-7");
    let rep = renew(&s, "renew", &old, "printer-7", &[]);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let was = stored(&s, &old.signer);
    assert!(was.is_revoked());
    assert!(superseded_audited(&s, &was), "revocation not audited");

    // Approved by an officer: still valid until the device fetches the
    // new certificate, which may be never.
    let old = Device::enrolled(&s, "renew", "printer-8");
    sql(
        &s,
        "UPDATE device_profiles SET approval_mode = 'manual' WHERE profile_id = 'renew'",
    );
    let (msg, txid) = renewal(&s, &old, "printer-8", &[]);
    assert_eq!(old.send(&s, "renew", &msg).status, PkiStatus::Pending);
    s.cli_ok(&["request", "approve", &request_id(&s, &txid).to_string()]);
    assert!(
        !stored(&s, &old.signer).is_revoked(),
        "revoked before its successor was delivered"
    );
    let rep = old.poll(&s, "renew", &txid);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let was = stored(&s, &old.signer);
    assert!(was.is_revoked());
    assert!(superseded_audited(&s, &was));
}
