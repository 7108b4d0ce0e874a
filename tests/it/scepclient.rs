//! RFC 8894 enrollment with micromdm's `scepclient` (Debian package `scep`),
//! over POST and GET, checked with OpenSSL.

use crate::support::{openssl_text, openssl_verify, scepclient, Scepd};

#[test]
fn scepclient_enrolls_over_post_and_certificate_checks_out() {
    let s = Scepd::start();
    let challenge = s.mint("default");
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(
        work.path(),
        &s.scep_url("default"),
        &challenge,
        "device-post-1",
    );
    assert!(
        run.ok,
        "scepclient failed:\n{}\nserver log:\n{}",
        run.output,
        s.log()
    );
    let cert = run.cert.expect("certificate written");

    // Chains to the CA, for TLS client use (the profile's EKU).
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &cert, &["-purpose", "sslclient"]);
    assert!(ok, "{msg}");
    // Carries the key scepclient generated.
    let key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(work.path().join("key.pem")).unwrap(),
    )
    .unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key));
    // The profile's subject template and extensions.
    let text = openssl_text(&cert);
    assert!(
        text.contains("CN = device-post-1") || text.contains("CN=device-post-1"),
        "{text}"
    );
    assert!(
        text.contains("Digital Signature, Key Encipherment"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    let dp = cert
        .crl_distribution_points()
        .expect("CRL distribution point");
    let uri = dp
        .iter()
        .flat_map(|p| {
            p.distpoint()
                .and_then(|n| n.fullname())
                .into_iter()
                .flatten()
        })
        .filter_map(|g| g.uri().map(str::to_string))
        .next()
        .unwrap();
    assert!(uri.starts_with(&format!("{}/crl/", s.url)), "{uri}");
    // The CRL URL works and the CRL is signed by the CA.
    let crl_der = ureq_bytes(&uri);
    let crl = openssl::x509::X509Crl::from_der(&crl_der).unwrap();
    assert!(crl.verify(&s.ca_cert().public_key().unwrap()).unwrap());
}

#[test]
fn reused_challenge_is_refused_and_wrong_challenge_too() {
    let s = Scepd::start();
    let challenge = s.mint("default");
    let a = tempfile::tempdir().unwrap();
    assert!(scepclient(a.path(), &s.scep_url("default"), &challenge, "dev-a").ok);
    let b = tempfile::tempdir().unwrap();
    let second = scepclient(b.path(), &s.scep_url("default"), &challenge, "dev-b");
    assert!(!second.ok, "second use of a one-time challenge must fail");
    assert!(second.output.contains("badRequest"), "{}", second.output);
    assert!(second.cert.is_none());
    let c = tempfile::tempdir().unwrap();
    let wrong = scepclient(c.path(), &s.scep_url("default"), "NOT-A-CHALLENGE", "dev-c");
    assert!(!wrong.ok);
    assert!(wrong.output.contains("badRequest"), "{}", wrong.output);
}

#[test]
fn scepclient_enrolls_over_get_when_post_is_not_advertised() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "getonly", "--no-post"]);
    let caps = ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("getonly")))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(!caps.contains("POSTPKIOperation"), "{caps}");
    let challenge = s.mint("getonly");
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(
        work.path(),
        &s.scep_url("getonly"),
        &challenge,
        "device-get-1",
    );
    assert!(
        run.ok,
        "scepclient failed:\n{}\nserver log:\n{}",
        run.output,
        s.log()
    );
    // The server saw a GET PKIOperation, not a POST.
    let log = s.log();
    assert!(
        log.lines().any(|l| l.contains("\"GET /scep/getonly?")
            && l.contains("operation=PKIOperation")
            && l.contains("message=")),
        "{log}"
    );
    assert!(!log.contains("\"POST /scep/getonly"), "{log}");
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &run.cert.unwrap(), &[]);
    assert!(ok, "{msg}");
}

fn ureq_bytes(url: &str) -> Vec<u8> {
    let mut v = vec![];
    std::io::Read::read_to_end(&mut ureq::get(url).call().unwrap().into_reader(), &mut v).unwrap();
    v
}

#[test]
fn single_des_can_be_refused_with_bad_alg() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_ALLOW_SINGLE_DES", "false")],
    );
    let challenge = s.mint("default");
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(work.path(), &s.scep_url("default"), &challenge, "des-dev");
    assert!(!run.ok);
    assert!(run.output.contains("badAlg"), "{}", run.output);
}

/// Told PENDING, scepclient sleeps and sends its PKCSReq again (the same
/// transactionID); once an officer approved, the retransmission gets the
/// certificate.
#[test]
fn scepclient_is_told_pending_and_gets_the_certificate_once_approved() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let challenge = s.mint("manual");
    let work = tempfile::tempdir().unwrap();
    let url = s.scep_url("manual");
    let run = std::thread::scope(|t| {
        let client = t.spawn(|| scepclient(work.path(), &url, &challenge, "pending-dev"));
        // Approve the request once it waits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let id = loop {
            let list = s.cli_ok(&["request", "list", "--status", "requested"]);
            if let Some(id) = list.split('\t').next().filter(|id| !id.trim().is_empty()) {
                break id.trim().to_string();
            }
            assert!(std::time::Instant::now() < deadline, "no request came");
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        s.cli_ok(&["request", "approve", &id, "--actor", "officer1"]);
        client.join().unwrap()
    });
    assert!(run.ok, "{}\nserver log:\n{}", run.output, s.log());
    assert!(run.output.contains("PENDING"), "{}", run.output);
    let cert = run.cert.expect("certificate written");
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &cert, &[]);
    assert!(ok, "{msg}");
    assert_eq!(s.count("certificates"), 1);
}

/// Run again with its certificate in place, scepclient signs the new
/// PKCSReq with it: a renewal of the same key, which keeps the first
/// enrollment's transactionID (scepclient derives it from the key).
#[test]
fn scepclient_renews_with_the_certificate_it_holds() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    let work = tempfile::tempdir().unwrap();
    let url = s.scep_url("renew");
    let first = scepclient(work.path(), &url, &s.mint("renew"), "renew-dev");
    assert!(first.ok, "{}", first.output);
    let old = first.cert.unwrap();
    let second = scepclient(work.path(), &url, "NO-CHALLENGE-NEEDED", "renew-dev");
    assert!(second.ok, "{}\nserver log:\n{}", second.output, s.log());
    let new = second.cert.unwrap();
    assert_ne!(
        new.serial_number().to_bn().unwrap(),
        old.serial_number().to_bn().unwrap()
    );
    assert!(new
        .public_key()
        .unwrap()
        .public_eq(&old.public_key().unwrap()));
    assert_eq!(s.count("certificates"), 2);
    assert_eq!(
        s.count("enrollment_requests WHERE renewal_of IS NOT NULL"),
        1
    );
}
