//! `/metrics` (issue 7): Prometheus text with requests by SCEP operation
//! (RFC 8894 §4.1) and outcome, latency histograms, and the queue and
//! certificate figures read from the database — checked by scraping a real
//! scepd after real enrollments, refusals and an officer's revocation.

use std::collections::HashMap;

use server::wire::PkiStatus;

use crate::device::{post, Device};
use crate::support::Scepd;

/// `name{labels}` → value, for every sample line of a scrape.
pub(crate) fn scrape(s: &Scepd) -> HashMap<String, f64> {
    let r = ureq::get(&format!("{}/metrics", s.url)).call().unwrap();
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    let text = r.into_string().unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

fn requests(m: &HashMap<String, f64>, op: &str, outcome: &str) -> f64 {
    m[&format!("scepd_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}}")]
}

#[test]
fn scrape_counts_operations_outcomes_latency_queue_and_certificates() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let before = scrape(&s);
    assert_eq!(before["scepd_certificates_issued_total"], 0.0);

    ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("default")))
        .call()
        .unwrap();
    let mut issued = vec![];
    for i in 0..2 {
        let dev = Device::new(&format!("metrics-{i}"), 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
        issued.push(rep.certs[0].clone());
    }
    let refused = Device::new("metrics-refused", 2048).pkcs_req(&s, "default", Some("wrong"));
    assert_eq!(refused.status, PkiStatus::Failure);
    let pending =
        Device::new("metrics-pending", 2048).pkcs_req(&s, "manual", Some(&s.mint("manual")));
    assert_eq!(pending.status, PkiStatus::Pending);
    assert_eq!(post(&s, "default", b"garbage").unwrap_err().0, 400);
    let serial = hex::encode_upper(issued[0].serial_number().to_bn().unwrap().to_vec());
    s.cli_ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);

    let m = scrape(&s);
    assert_eq!(requests(&m, "GetCACaps", "success"), 1.0);
    assert_eq!(requests(&m, "PKIOperation", "success"), 2.0);
    assert_eq!(requests(&m, "PKIOperation", "failure"), 1.0);
    assert_eq!(requests(&m, "PKIOperation", "pending"), 1.0);
    assert_eq!(requests(&m, "PKIOperation", "bad_request"), 1.0);
    assert_eq!(requests(&m, "PKIOperation", "error"), 0.0);
    assert_eq!(requests(&m, "PKIOperation", "unavailable"), 0.0);
    // Device::pkcs_req fetches nothing else, so five PKIOperations were timed.
    let count = m["scepd_request_duration_seconds_count{operation=\"PKIOperation\"}"];
    assert_eq!(count, 5.0);
    assert_eq!(
        m["scepd_request_duration_seconds_bucket{operation=\"PKIOperation\",le=\"+Inf\"}"],
        5.0
    );
    assert!(m["scepd_request_duration_seconds_sum{operation=\"PKIOperation\"}"] > 0.0);
    // Buckets are cumulative.
    let small = m["scepd_request_duration_seconds_bucket{operation=\"PKIOperation\",le=\"0.001\"}"];
    let large = m["scepd_request_duration_seconds_bucket{operation=\"PKIOperation\",le=\"30\"}"];
    assert!(small <= large && large <= 5.0);
    assert_eq!(m["scepd_pending_requests"], 1.0);
    assert_eq!(m["scepd_certificates_issued_total"], 2.0);
    assert_eq!(m["scepd_certificates_revoked_total"], 1.0);
    // The two issued took the one-statement path, one after the other:
    // two statements of one enrollment each. The wrong challenge was
    // turned away by the read before signing, so no statement carried it.
    assert_eq!(m["scepd_commit_batches_total"], 2.0);
    assert_eq!(m["scepd_commit_enrollments_total"], 2.0);
    // Two certificates signed; four CertReps (two SUCCESS, the FAILURE,
    // the PENDING).
    assert_eq!(m["scepd_signatures_total{key=\"ca\"}"], 2.0);
    assert_eq!(m["scepd_signatures_total{key=\"ra\"}"], 4.0);

    // A second process on the same database reports the same database
    // figures, and its own (zero) request counters.
    let second = s.second();
    let r = ureq::get(&format!("{}/metrics", second.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        r.lines().any(|l| l == "scepd_certificates_issued_total 2"),
        "{r}"
    );
    assert!(r.lines().any(|l| l == "scepd_pending_requests 1"), "{r}");
    assert!(r
        .lines()
        .any(|l| l == "scepd_requests_total{operation=\"PKIOperation\",outcome=\"success\"} 0"));
}

#[test]
fn a_configured_token_guards_the_scrape() {
    let db = server::testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_with(db, dir, &[("SCEPD_METRICS_TOKEN", "scrape-secret-1")]);
    let get = |auth: Option<&str>| {
        let mut r = ureq::get(&format!("{}/metrics", s.url));
        if let Some(a) = auth {
            r = r.set("Authorization", a);
        }
        match r.call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(get(None).0, 401);
    assert_eq!(get(Some("Bearer wrong")).0, 401);
    assert_eq!(get(Some("Basic scrape-secret-1")).0, 401);
    let (status, body) = get(Some("Bearer scrape-secret-1"));
    assert_eq!(status, 200);
    assert!(body.contains("scepd_requests_total"), "{body}");
    assert!(
        !s.log().contains("scrape-secret-1"),
        "the token is never logged"
    );
}
