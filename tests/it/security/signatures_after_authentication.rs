//! No private-key operation before a request is authenticated: a PKCSReq
//! whose challenge is not outstanding gets a signed FAILURE but no
//! certificate is signed for it, and a client out of failed attempts gets
//! HTTP 429 with no signature at all. Counted by `/metrics`
//! (`scepd_signatures_total`).

use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::device::{post, Device};
use crate::metrics::scrape;
use crate::support::Scepd;

fn signatures(s: &Scepd) -> (f64, f64) {
    let m = scrape(s);
    (
        m["scepd_signatures_total{key=\"ca\"}"],
        m["scepd_signatures_total{key=\"ra\"}"],
    )
}

#[test]
fn a_request_with_a_bad_challenge_costs_no_certificate_signature() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_CHALLENGE_FAILURE_LIMIT", "3")],
    );
    assert_eq!(signatures(&s), (0.0, 0.0));
    // A challenge that was never minted, and one already spent.
    let spent = s.mint("default");
    let first = Device::new("first", 2048);
    assert_eq!(
        first.pkcs_req(&s, "default", Some(&spent)).status,
        PkiStatus::Success
    );
    assert_eq!(signatures(&s), (1.0, 1.0));
    for (i, pw) in ["NEVER-MINTED-CHALLENGE", spent.as_str()]
        .iter()
        .enumerate()
    {
        let rep = Device::new(&format!("guess-{i}"), 2048).pkcs_req(&s, "default", Some(pw));
        assert_eq!(rep.status, PkiStatus::Failure);
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }
    // Two FAILUREs signed by the RA; no certificate signed by the CA.
    assert_eq!(signatures(&s), (1.0, 3.0));

    // The third failure locks the client out; after that, nothing is
    // signed, not even a FAILURE.
    let rep = Device::new("guess-3", 2048).pkcs_req(&s, "default", Some("NOPE"));
    assert_eq!(rep.status, PkiStatus::Failure);
    assert_eq!(signatures(&s), (1.0, 4.0));
    let late = Device::new("late", 2048);
    let good = s.mint("default");
    let msg = late.pkcs_req_message(&s, &late.csr(Some(&good)), ContentCipher::Aes128Cbc);
    for _ in 0..3 {
        assert_eq!(post(&s, "default", &msg).unwrap_err().0, 429);
    }
    assert_eq!(signatures(&s), (1.0, 4.0));
}
