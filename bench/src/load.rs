//! One measured run: PKCSReq messages prepared before the clock starts,
//! fired over keep-alive HTTP by `concurrency` threads, every answer
//! checked after the clock stops (RFC 8894 §3.3.2 CertRep: RA signature,
//! recipientNonce = our senderNonce, transactionID echoed, the envelope
//! decrypts with our key, the certificate carries our key and chains to
//! the CA).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use openssl::x509::X509;
use server::wire::client::{build_request, parse_cert_rep, ClientContent, ClientRequest};
use server::wire::{
    ContentCipher, DigestAlg, KeyTransport, MessageType, Nonce, PkiStatus, TransactionId,
};

use crate::device;
use crate::keys::Key;

type R<T> = Result<T, String>;

/// A prepared request and what its answer must match.
pub struct Prepared {
    pub key: Key,
    pub signer: X509,
    pub nonce: Nonce,
    pub txid: TransactionId,
    pub body: Vec<u8>,
}

/// Build one PKCSReq per key, in parallel; `challenges[i]` goes to key i.
pub fn prepare(
    keys: &[Key],
    challenges: &[String],
    ra: &X509,
    tag: &str,
    cipher: ContentCipher,
) -> R<Vec<Prepared>> {
    let threads = std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(2);
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Prepared>>> = Mutex::new((0..keys.len()).map(|_| None).collect());
    let errors = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= keys.len() {
                    break;
                }
                match prepare_one(&keys[i], &challenges[i], ra, &format!("{tag}-{i}"), cipher) {
                    Ok(p) => {
                        if let Ok(mut o) = out.lock() {
                            o[i] = Some(p);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut errs) = errors.lock() {
                            errs.push(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = errors.into_inner().map_err(|e| e.to_string())?.first() {
        return Err(format!("preparing requests: {e}"));
    }
    out.into_inner()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| p.ok_or_else(|| "a request was not prepared".to_string()))
        .collect()
}

fn prepare_one(
    key: &Key,
    challenge: &str,
    ra: &X509,
    cn: &str,
    cipher: ContentCipher,
) -> R<Prepared> {
    let csr = device::csr(key, cn, challenge)?;
    let signer = device::self_signed(key, cn)?;
    let nonce = Nonce::random().map_err(|e| e.to_string())?;
    let mut rnd = [0u8; 16];
    openssl::rand::rand_bytes(&mut rnd).map_err(|e| e.to_string())?;
    let txid = TransactionId(hex::encode_upper(rnd));
    let body = build_request(&ClientRequest {
        message_type: MessageType::PkcsReq,
        transaction_id: txid.clone(),
        sender_nonce: nonce.clone(),
        signer_cert: &signer,
        signer_key: key,
        recipient: ra,
        cipher,
        key_transport: KeyTransport::RsaPkcs1v15,
        digest: DigestAlg::Sha256,
        content: ClientContent::Csr(&csr),
    })
    .map_err(|e| e.to_string())?;
    Ok(Prepared {
        key: key.clone(),
        signer,
        nonce,
        txid,
        body,
    })
}

/// What one request got back.
pub struct Outcome {
    /// When the request was sent, from the start of the level.
    pub sent: Duration,
    pub latency: Duration,
    pub answer: Result<Vec<u8>, String>,
}

/// POST every body to `url` (the whole URL) as `content_type` with
/// `concurrency` threads; outcomes in request order, and the wall time from
/// first send to last answer.
pub fn fire(
    url: &str,
    bodies: &[&[u8]],
    content_type: &str,
    concurrency: usize,
) -> (Vec<Outcome>, Duration) {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..bodies.len()).map(|_| None).collect());
    let start_line = Barrier::new(concurrency + 1);
    let mut started = Instant::now();
    let epoch = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .max_idle_connections_per_host(1)
                    .build();
                let mut mine = vec![];
                start_line.wait();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    let t0 = Instant::now();
                    let answer = post(&agent, url, content_type, bodies[i]);
                    mine.push((
                        i,
                        Outcome {
                            sent: t0.duration_since(epoch),
                            latency: t0.elapsed(),
                            answer,
                        },
                    ));
                }
                if let Ok(mut slots) = slots.lock() {
                    for (i, o) in mine {
                        slots[i] = Some(o);
                    }
                }
            });
        }
        started = Instant::now();
        start_line.wait();
    });
    let elapsed = started.elapsed();
    let outcomes = slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome {
                sent: Duration::ZERO,
                latency: Duration::ZERO,
                answer: Err("no outcome recorded".into()),
            })
        })
        .collect();
    (outcomes, elapsed)
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    match agent
        .post(url)
        .set("Content-Type", content_type)
        .send_bytes(body)
    {
        Ok(r) => {
            let mut v = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut r.into_reader(), &mut v)
                .map_err(|e| format!("reading answer: {e}"))?;
            Ok(v)
        }
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "HTTP {code}: {}",
            r.into_string().unwrap_or_default().trim()
        )),
        Err(e) => Err(format!("transport: {e}")),
    }
}

/// Check one answer completely; Ok gives the certificate's serial (the
/// caller checks uniqueness, RFC 5280 §4.1.2.2) and the SHA-256 of its DER
/// (for `--verify-db`), Err what is wrong.
pub fn verify(p: &Prepared, answer: &[u8], ca: &X509, ra: &X509) -> R<(Vec<u8>, [u8; 32])> {
    let rep = parse_cert_rep(answer, ra, &p.signer, &p.key).map_err(|e| e.to_string())?;
    if rep.status != PkiStatus::Success {
        return Err(format!(
            "pkiStatus {:?}, failInfo {:?}",
            rep.status, rep.fail_info
        ));
    }
    if rep.recipient_nonce.0 != p.nonce.0 {
        return Err("recipientNonce is not our senderNonce".into());
    }
    if rep.transaction_id.0 != p.txid.0 {
        return Err("transactionID not echoed".into());
    }
    let ours = rep
        .certs
        .iter()
        .find(|c| c.public_key().is_ok_and(|k| k.public_eq(&p.key)))
        .ok_or("no certificate with the requested key")?;
    let ca_key = ca.public_key().map_err(|e| e.to_string())?;
    if !ours.verify(&ca_key).map_err(|e| e.to_string())? {
        return Err("certificate is not signed by the CA".into());
    }
    let same_issuer = ours.issuer_name().to_der().map_err(|e| e.to_string())?
        == ca.subject_name().to_der().map_err(|e| e.to_string())?;
    if !same_issuer {
        return Err("certificate issuer is not the CA's subject".into());
    }
    let serial = ours.serial_number().to_bn().map_err(|e| e.to_string())?;
    let der = ours.to_der().map_err(|e| e.to_string())?;
    Ok((serial.to_vec(), openssl::sha::sha256(&der)))
}
