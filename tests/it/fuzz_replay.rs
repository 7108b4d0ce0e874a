//! The `pki_operation` fuzz targets' corpus and crash reproducers replayed
//! through the real handler (`Enroll::pki_operation`, real PostgreSQL)
//! with the targets' own invariants (`fuzz/fuzz_targets/pki_harness.rs`,
//! included here): HTTP 400 or a CertRep signed by the RA, never an
//! internal error. CI runs this without the sanitizer build the fuzzer
//! needs (docs/FUZZING.md).

use std::path::{Path, PathBuf};

#[path = "../../fuzz/fuzz_targets/pki_harness.rs"]
mod pki_harness;

use pki_harness::{run_raw, run_signed, Harness, SEED_CHALLENGE};
use server::wire::client::{build_request, ClientContent, ClientRequest};
use server::wire::{ContentCipher, DigestAlg, KeyTransport, MessageType, Nonce, TransactionId};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The files of a directory in name order (none when it is missing).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn pki_operation_corpus_and_reproducers_stay_within_the_invariants() {
    let db = server::testdb::test_db().expect("test database");
    let h = Harness::new(&db.url);
    let raw = [
        root().join("fuzz/corpus/pki_operation"),
        root().join("tests/data/fuzz/pki_operation"),
    ];
    let signed = [
        root().join("fuzz/corpus/pki_operation_signed"),
        root().join("tests/data/fuzz/pki_operation_signed"),
    ];
    let mut n = 0;
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for dir in &raw {
        for (name, body) in files(dir) {
            eprintln!("raw {name}");
            let status = h.call(&pki_harness::Sent {
                body: &body,
                profile: 0,
                gated: false,
                client_ip: Some("192.0.2.1"),
            });
            *statuses.entry(format!("{status:?}")).or_default() += 1;
            n += 1;
        }
    }
    for dir in &signed {
        for (name, data) in files(dir) {
            eprintln!("signed {name}");
            run_signed(&h, &data);
            n += 1;
        }
    }
    // The seeds must exist, and some must get through to issuance.
    assert!(n >= 40, "only {n} inputs replayed");
    assert!(
        statuses.get("Some(Success)").copied().unwrap_or(0) > 0,
        "no seed was issued a certificate: {statuses:?}"
    );
    // Unchanged behaviour for the trivial inputs too.
    run_raw(&h, b"");
    run_signed(&h, b"");
}

/// Writes the `pki_operation` and `pki_operation_signed` seeds
/// (docs/FUZZING.md): the `decode` corpus (scepclient captures and the
/// project's client, to the fuzzing RA) plus requests signed with the
/// fixed fuzzing device key (`fuzz/fixtures/device.key`) carrying the
/// `seed-challenge` secret the harness keeps valid, so replies decrypt and
/// enrollment reaches issuance; and structured inputs for every message
/// type. Run by hand:
/// `cargo test --test it -- --ignored write_pki_operation_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_pki_operation_seed_corpus() {
    let corpus = root().join("fuzz/corpus");
    let raw_dir = corpus.join("pki_operation");
    let signed_dir = corpus.join("pki_operation_signed");
    std::fs::create_dir_all(&raw_dir).unwrap();
    std::fs::create_dir_all(&signed_dir).unwrap();
    for (name, bytes) in files(&corpus.join("decode")) {
        std::fs::write(raw_dir.join(name), bytes).unwrap();
    }
    let key = pki_harness::fixture_device_key();
    let cert = pki_harness::self_signed(&key, "fuzz device");
    let ra = pki_harness::fixture_ra();
    let csr = |challenge: Option<&str>, cn: &[u8], san: &[u8]| {
        // Fields as `build_csr` reads them: one CN, one dNSName.
        let mut spec = vec![1u8, 0, cn.len() as u8];
        spec.extend_from_slice(cn);
        spec.extend([1u8, 0, san.len() as u8]);
        spec.extend_from_slice(san);
        pki_harness::build_csr(
            &mut pki_harness::Input(&spec),
            &key,
            challenge.map(|c| (0u8, c.as_bytes())),
        )
        .unwrap()
    };
    let issuer_serial = pki_harness::tlv(
        0x30,
        &[
            cert.subject_name().to_der().unwrap(),
            pki_harness::tlv(0x02, &[1]),
        ]
        .concat(),
    );
    let with_challenge = csr(Some(SEED_CHALLENGE), b"fuzz device", b"fuzz.example");
    let no_challenge = csr(None, b"fuzz device", b"fuzz.example");
    let cases: [(&str, MessageType, &[u8], ContentCipher, KeyTransport); 6] = [
        (
            "pkcsreq-aes128-v15",
            MessageType::PkcsReq,
            &with_challenge,
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        ),
        (
            "pkcsreq-des-v15",
            MessageType::PkcsReq,
            &with_challenge,
            ContentCipher::DesCbc,
            KeyTransport::RsaPkcs1v15,
        ),
        (
            "pkcsreq-aes256-oaep-nochallenge",
            MessageType::PkcsReq,
            &no_challenge,
            ContentCipher::Aes256Cbc,
            KeyTransport::RsaOaep,
        ),
        (
            "certpoll-aes128-v15",
            MessageType::CertPoll,
            &pki_harness::tlv(0x30, &cert.subject_name().to_der().unwrap().repeat(2)),
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaPkcs1v15,
        ),
        (
            "getcert-des3-v15",
            MessageType::GetCert,
            &issuer_serial,
            ContentCipher::Des3Cbc,
            KeyTransport::RsaPkcs1v15,
        ),
        (
            "getcrl-aes128-oaep",
            MessageType::GetCrl,
            &issuer_serial,
            ContentCipher::Aes128Cbc,
            KeyTransport::RsaOaep,
        ),
    ];
    for (i, (name, mt, content, cipher, kt)) in cases.into_iter().enumerate() {
        let msg = build_request(&ClientRequest {
            message_type: mt,
            transaction_id: TransactionId(format!("FUZZSEED{i:02}")),
            sender_nonce: Nonce::random().unwrap(),
            signer_cert: &cert,
            signer_key: &key,
            recipient: ra.cert(),
            cipher,
            key_transport: kt,
            digest: DigestAlg::Sha256,
            content: ClientContent::Csr(content),
        })
        .unwrap();
        std::fs::write(raw_dir.join(format!("device-{name}.der")), msg).unwrap();
    }

    // Structured seeds (layout in `pki_harness::signed_message`).
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    // PKCSReq, RSA device, AES-128, default profile, fresh challenge, CSR
    // with CN and a dNSName.
    let fields = |cn: &[u8], san: &[u8]| {
        let mut v = vec![1u8, 0, cn.len() as u8];
        v.extend_from_slice(cn);
        v.extend([1u8, 0, san.len() as u8]);
        v.extend_from_slice(san);
        v
    };
    let mut s = vec![0x00, 0x00, 0x01 | (1 << 4), 0, 0];
    s.extend(fields(b"fuzz device", b"fuzz.example"));
    seeds.push(("pkcsreq-fresh-challenge", s));
    // The same on the manual profile (PENDING), from 2001:db8::1.
    let mut s = vec![0x00, 0x20, 0x02 | (1 << 4), 0, 0];
    s.extend(fields(b"fuzz pending", b"pending.example"));
    seeds.push(("pkcsreq-manual-pending", s));
    // P-256 device on the wide profile, fresh challenge, subject with a
    // serialNumber (the wide template needs one).
    let mut s = vec![0x08, 0x40, 1 << 4, 0, 0];
    s.extend([2u8, 0, 8]);
    s.extend_from_slice(b"ecdevice");
    s.extend([1u8, 3]);
    s.extend_from_slice(b"SN1");
    s.extend([1u8, 0, 10]);
    s.extend_from_slice(b"ec.example");
    seeds.push(("pkcsreq-ec-wide", s));
    // RenewalReq signed by the certificate issued to the RSA device.
    let mut s = vec![0x01 | (2 << 3), 0x00, 0, 0, 0];
    s.extend(fields(b"fuzz device", b"fuzz.example"));
    seeds.push(("renewalreq-issued-signer", s));
    // CertPoll, GetCert, GetCRL with our CA's name (content mode 0).
    seeds.push(("certpoll-ca", vec![0x02, 0x00, 0, 0, 0]));
    seeds.push(("getcert-ca-last-serial", vec![0x03, 0x01, 0, 0, 0]));
    seeds.push(("getcrl-ca", vec![0x04, 0x02, 0, 0, 0]));
    // GetCRL signed by the DSA device.
    seeds.push(("getcrl-dsa-signer", vec![0x04 | (3 << 3), 0x00, 0, 0, 0]));
    // A txid with a free string type and explicit nonce.
    let mut s = vec![0x40, 0x00, 0x01 | (3 << 4), 4];
    s.extend_from_slice(b"TXID");
    s.extend([4u8, 1, 2, 3, 4]);
    s.extend([6u8]);
    s.extend_from_slice(b"secret");
    s.extend(fields(b"fuzz device", b"x.example"));
    seeds.push(("pkcsreq-utf8-txid-own-challenge", s));
    for (name, s) in seeds {
        std::fs::write(signed_dir.join(name), s).unwrap();
    }
}
