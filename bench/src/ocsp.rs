//! `--ocsp-requests`: OCSP answers/s (RFC 6960) from the scepd under test,
//! after its enrollment levels. Every certificate the run enrolled is asked
//! about in turn (every tenth revoked first, through the CLI), each request
//! with its own 16-octet nonce, POSTed to `/ocsp`. After the clock stops
//! each answer is checked: successful, signed by a responder the CA
//! delegated (OpenSSL's `OCSP_basic_verify` with the CA as the only trust),
//! the status the database holds, the nonce echoed. An answer costs one
//! RSA-2048 signature (the responder's), so its floor is every core signing.

use std::time::Instant;

use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

use crate::servers::Server;
use crate::{cpu, load, verify_db, Row};

type R<T> = Result<T, String>;

/// A certificate to ask about and whether it was revoked before the run.
pub struct Subject {
    cert: X509,
    revoked: bool,
}

/// The certificates in scepd's database; every tenth revoked now.
pub fn subjects(server: &Server) -> R<Vec<Subject>> {
    let rows = verify_db::psql(
        &server.database_url()?,
        "SELECT serial || ',' || encode(der, 'hex') FROM certificates ORDER BY id",
    )?;
    let mut out = vec![];
    for (i, line) in rows.lines().enumerate() {
        let (serial, der) = line.split_once(',').ok_or("unexpected psql output")?;
        let der = hex::decode(der).map_err(|e| e.to_string())?;
        let cert = X509::from_der(&der).map_err(|e| e.to_string())?;
        let revoked = i % 10 == 9;
        if revoked {
            let o = server
                .cli(&["cert", "revoke", serial, "--reason", "keyCompromise"])
                .output()
                .map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!(
                    "scepd cert revoke: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
        out.push(Subject { cert, revoked });
    }
    if out.is_empty() {
        return Err("no certificate to ask about (run an enrollment level first)".into());
    }
    Ok(out)
}

/// `n` OCSP requests over `subjects` at concurrency `c`, verified.
pub fn level(
    server: &Server,
    own_cluster: bool,
    ca: &X509,
    subjects: &[Subject],
    n: usize,
    c: usize,
) -> R<Row> {
    let mut prepared = Vec::with_capacity(n);
    for i in 0..n {
        let s = &subjects[i % subjects.len()];
        let mut nonce = [0u8; 16];
        openssl::rand::rand_bytes(&mut nonce).map_err(|e| e.to_string())?;
        let der =
            server::ocsp::client::request(ca, &s.cert, Some(&nonce)).map_err(|e| e.to_string())?;
        prepared.push((i % subjects.len(), nonce, der));
    }
    let bodies: Vec<&[u8]> = prepared.iter().map(|(_, _, d)| &d[..]).collect();
    let url = server.scep_url.replace("/scep", "/ocsp");
    eprintln!("scepd ocsp c{c}: {n} requests prepared, firing");
    let before = cpu::snapshot(server.pid(), own_cluster);
    let (outcomes, elapsed) = load::fire(&url, &bodies, "application/ocsp-request", c);
    let cpu = before.per_item_ms(&cpu::snapshot(server.pid(), own_cluster), n);
    let t = Instant::now();
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    store.add_cert(ca.clone()).map_err(|e| e.to_string())?;
    let store = store.build();
    let mut failed = 0;
    let mut reasons: Vec<String> = vec![];
    for ((subject, nonce, _), o) in prepared.iter().zip(&outcomes) {
        let res = o
            .answer
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|body| check(body, ca, &store, &subjects[*subject], nonce));
        if let Err(e) = res {
            failed += 1;
            if reasons.len() < 5 && !reasons.contains(&e) {
                reasons.push(e);
            }
        }
    }
    for r in &reasons {
        eprintln!("  failure: {r}");
    }
    eprintln!("  verified in {:.1}s", t.elapsed().as_secs_f64());
    let row = crate::row(
        server,
        &format!("ocsp c{c}"),
        c,
        failed,
        elapsed,
        &outcomes,
        cpu,
        1.0,
    );
    eprintln!(
        "  {:.0} OCSP answers/s, p50 {:.1} ms, p99 {:.1} ms, {} failed, CPU ms/answer: server {:.2}",
        row.rate(),
        crate::ms(row.p50),
        crate::ms(row.p99),
        row.failed,
        row.cpu.server,
    );
    Ok(row)
}

fn check(
    body: &[u8],
    ca: &X509,
    store: &openssl::x509::store::X509Store,
    subject: &Subject,
    nonce: &[u8],
) -> R<()> {
    let resp = OcspResponse::from_der(body).map_err(|e| e.to_string())?;
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(format!("responseStatus {:?}", resp.status().as_raw()));
    }
    let basic = resp.basic().map_err(|e| e.to_string())?;
    let none: Stack<X509> = Stack::new().map_err(|e| e.to_string())?;
    basic
        .verify(&none, store, OcspFlag::empty())
        .map_err(|e| format!("signature: {e}"))?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), &subject.cert, ca)
        .map_err(|e| e.to_string())?;
    let status = basic
        .find_status(&id)
        .ok_or("the certificate is not answered")?;
    let want = if subject.revoked {
        OcspCertStatus::REVOKED
    } else {
        OcspCertStatus::GOOD
    };
    if status.status != want {
        return Err(format!("status {:?}", status.status.as_raw()));
    }
    if server::ocsp::client::response_nonce(body).as_deref() != Some(nonce) {
        return Err("nonce not echoed".into());
    }
    Ok(())
}
