//! A transactionID travels in clear text, so it never names a request on
//! its own: CertPoll finds a request by the transactionID together with
//! the key that signed it (RFC 8894 §3.3.3), and the JSON API by the
//! request id, or the transactionID within the caller's organizations.

use serde_json::json;
use server::wire::{ContentCipher, FailInfo, MessageType, PkiStatus, TransactionId};

use crate::api::call;
use crate::device::Device;
use crate::support::Scepd;

fn approve_only_pending(s: &Scepd) {
    let list = s.cli_ok(&["request", "list", "--status", "requested"]);
    let id = list.split('\t').next().unwrap().trim().to_string();
    s.cli_ok(&["request", "approve", &id, "--actor", "officer1"]);
}

#[test]
fn a_poll_signed_by_another_key_does_not_get_the_certificate() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let dev = Device::new("polled", 2048);
    let rep = dev.pkcs_req(&s, "manual", Some(&s.mint("manual")));
    assert_eq!(rep.status, PkiStatus::Pending);
    approve_only_pending(&s);

    // Someone who saw the transactionID on the wire polls for it.
    let eavesdropper = Device::new("polled", 2048);
    let stolen = eavesdropper.poll(&s, "manual", &dev.txid());
    assert_eq!(stolen.status, PkiStatus::Failure, "{stolen:?}");
    assert_eq!(stolen.fail_info, Some(FailInfo::BadCertId));
    assert!(stolen.certs.is_empty());

    let mine = dev.poll(&s, "manual", &dev.txid());
    assert_eq!(mine.status, PkiStatus::Success);
    assert!(mine.certs[0].public_key().unwrap().public_eq(&dev.key));
}

/// A request signed by a throwaway certificate of another key than the
/// CSR's is polled with that signer, as it was sent.
#[test]
fn a_request_signed_by_another_key_is_polled_by_its_signer() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let signer = Device::new("throwaway", 2048);
    let subject = Device::new("subject", 2048);
    let csr = subject.csr(Some(&s.mint("manual")));
    let txid = subject.txid();
    let msg = signer.csr_request(
        &s,
        MessageType::PkcsReq,
        &txid,
        &csr,
        ContentCipher::Aes128Cbc,
    );
    assert_eq!(signer.send(&s, "manual", &msg).status, PkiStatus::Pending);
    approve_only_pending(&s);
    let poll = signer.poll(&s, "manual", &txid);
    assert_eq!(poll.status, PkiStatus::Success, "{poll:?}");
    assert!(poll.certs[0].public_key().unwrap().public_eq(&subject.key));
}

#[test]
fn the_api_finds_a_transaction_id_within_the_callers_organizations() {
    let s = Scepd::start();
    let a: i64 = s.cli_ok(&["org", "create", "OrgA"]).trim().parse().unwrap();
    let b: i64 = s.cli_ok(&["org", "create", "OrgB"]).trim().parse().unwrap();
    s.cli_ok(&[
        "profile", "create", "laptops", "--org", "OrgA", "--org", "OrgB",
    ]);
    let api = format!("{}/api/v1", s.url);
    let key = |org: &str| {
        s.cli_ok(&["api-key", "create", "--name", org, "--org", org])
            .trim()
            .to_string()
    };
    let (key_a, key_b) = (key("OrgA"), key("OrgB"));
    let mint = |token: &str, org: i64| {
        let r = call(
            "POST",
            &format!("{api}/challenges"),
            Some(token),
            Some(json!({ "profile": "laptops", "organization_id": org })),
        );
        assert_eq!(r.0, 201, "{}", r.1);
        r.1["challenge"].as_str().unwrap().to_string()
    };
    // Two devices of two organizations that chose one transactionID; B's
    // request is the newer.
    let txid = TransactionId("SHARED-TRANSACTION-ID".into());
    for (name, token, org) in [("dev-a", &key_a, a), ("dev-b", &key_b, b)] {
        let dev = Device::new(name, 2048);
        let csr = dev.csr(Some(&mint(token, org)));
        let msg = dev.csr_request(
            &s,
            MessageType::PkcsReq,
            &txid,
            &csr,
            ContentCipher::Aes128Cbc,
        );
        assert_eq!(dev.send(&s, "laptops", &msg).status, PkiStatus::Success);
    }
    let by_txid = |token: &str| {
        call(
            "GET",
            &format!("{api}/requests?transaction_id={}", txid.0),
            Some(token),
            None,
        )
    };
    for (token, org) in [(&key_a, a), (&key_b, b)] {
        let r = by_txid(token);
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["organization_id"], org, "{}", r.1);
    }
}
