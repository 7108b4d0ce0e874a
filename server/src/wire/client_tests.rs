//! Client-side tests: interop of our requests with the `openssl` command
//! line, and requests built by `openssl cms` read by our server side.

use super::*;
use crate::wire::testutil::{request, self_signed};
use crate::wire::{decode, MessageContent};

fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let mut b = [0u8; 6];
    openssl::rand::rand_bytes(&mut b).unwrap();
    let p = std::env::temp_dir().join(format!(
        "scepd-wire-{}-{}-{name}",
        std::process::id(),
        hex::encode(b)
    ));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn openssl_decrypts_our_oaep_and_v15_request_envelopes() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let key = write_tmp("ra.key", &ra.key.private_key_to_pem_pkcs8().unwrap());
    let cert = write_tmp("ra.pem", &ra.cert.to_pem().unwrap());
    for kt in [KeyTransport::RsaOaep, KeyTransport::RsaPkcs1v15] {
        let req = ClientRequest {
            cipher: ContentCipher::Aes128Cbc,
            key_transport: kt,
            ..request(&client, &ra, ClientContent::Csr(b"\x30\x03\x02\x01\x07"))
        };
        let der = build_request(&req).unwrap();
        let env = write_tmp(
            "env.der",
            &SignedData::from_der(&der).unwrap().content().unwrap(),
        );
        let out = std::process::Command::new("openssl")
            .args(["cms", "-decrypt", "-inform", "DER", "-binary", "-in"])
            .arg(&env)
            .arg("-inkey")
            .arg(&key)
            .arg("-recip")
            .arg(&cert)
            .output()
            .unwrap();
        std::fs::remove_file(&env).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"\x30\x03\x02\x01\x07");
    }
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(&cert).unwrap();
}

#[test]
fn request_signed_by_openssl_cms_with_oaep_envelope_opens() {
    // An EnvelopedData made by `openssl cms -encrypt` with OAEP, wrapped in
    // our signed attributes, proves the server side reads foreign OAEP.
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let cert = write_tmp("ra.pem", &ra.cert.to_pem().unwrap());
    let data = write_tmp("csr.der", b"\x30\x03\x02\x01\x09");
    let out = std::process::Command::new("openssl")
        .args([
            "cms",
            "-encrypt",
            "-binary",
            "-aes-192-cbc",
            "-outform",
            "DER",
        ])
        .arg("-in")
        .arg(&data)
        .arg("-recip")
        .arg(&cert)
        // -keyopt applies to the preceding -recip.
        .args(["-keyopt", "rsa_padding_mode:oaep"])
        .output()
        .unwrap();
    std::fs::remove_file(&cert).unwrap();
    std::fs::remove_file(&data).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = ClientRequest {
        cipher: ContentCipher::Aes192Cbc,
        key_transport: KeyTransport::RsaOaep,
        ..request(&client, &ra, ClientContent::Csr(b""))
    };
    let der = sign_request(&req, &out.stdout).unwrap();
    let msg = decode(&der).unwrap().open(&ra.ra()).unwrap();
    assert_eq!(
        (msg.cipher, msg.key_transport),
        (ContentCipher::Aes192Cbc, KeyTransport::RsaOaep)
    );
    assert_eq!(
        msg.content,
        MessageContent::CertReq {
            csr_der: b"\x30\x03\x02\x01\x09".to_vec()
        }
    );
}

#[test]
fn cert_rep_parser_rejects_a_request() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    // Signed by the RA and enveloped to the client: a request, not a CertRep.
    let req = request(&ra, &client, ClientContent::Csr(b"\x30\x00"));
    let der = build_request(&req).unwrap();
    let err = parse_cert_rep(&der, &ra.cert, &client.cert, &client.key).unwrap_err();
    assert!(
        matches!(err, WireError::Malformed(ref m) if m.contains("expected CertRep")),
        "{err:?}"
    );
}

/// Runs `curl` and returns the response body.
fn curl(args: &[&str]) -> Option<Vec<u8>> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "10"])
        .args(args)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Kills the spawned server (by its own handle) when the test ends.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn micromdm_scepserver_accepts_our_request_and_we_read_its_cert_rep() {
    let dir = std::env::temp_dir().join(format!("scepd-micromdm-{}", std::process::id()));
    let depot = dir.join("depot");
    std::fs::create_dir_all(&dir).unwrap();
    let init = std::process::Command::new("scepserver")
        .args(["ca", "-init", "-keySize", "2048", "-depot"])
        .arg(&depot)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = std::process::Command::new("scepserver")
        .arg("-depot")
        .arg(&depot)
        .args(["-port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _reaper = Reaper(server);
    let base = format!("http://127.0.0.1:{port}/scep");
    let ca_body = (0..50)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            curl(&[&format!("{base}?operation=GetCACert")])
        })
        .expect("scepserver did not answer GetCACert");
    let ca = parse_certs_only(&ca_body).unwrap().remove(0);

    let client = self_signed("client micromdm");
    let mut csr = openssl::x509::X509ReqBuilder::new().unwrap();
    csr.set_subject_name(client.cert.subject_name()).unwrap();
    csr.set_pubkey(&client.key).unwrap();
    csr.sign(&client.key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    let csr = csr.build().to_der().unwrap();
    let sender_nonce = Nonce::random().unwrap();
    let req = ClientRequest {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId("micromdm-interop-1".into()),
        sender_nonce: sender_nonce.clone(),
        signer_cert: &client.cert,
        signer_key: &client.key,
        recipient: &ca,
        cipher: ContentCipher::Aes128Cbc,
        key_transport: KeyTransport::RsaPkcs1v15,
        digest: DigestAlg::Sha256,
        content: ClientContent::Csr(&csr),
    };
    let body = write_tmp("req.der", &build_request(&req).unwrap());
    let reply = curl(&[
        "-H",
        "Content-Type: application/x-pki-message",
        "--data-binary",
        &format!("@{}", body.display()),
        &format!("{base}?operation=PKIOperation"),
    ])
    .expect("PKIOperation failed");
    std::fs::remove_file(&body).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // micromdm 2.1.0 envelopes its reply with single DES; we read it.
    let rep = parse_cert_rep(&reply, &ca, &client.cert, &client.key).unwrap();
    assert_eq!(rep.status, PkiStatus::Success);
    assert_eq!(rep.cipher, Some(ContentCipher::DesCbc));
    let nids = scep_nids().unwrap();
    let sd = SignedData::from_der(&reply).unwrap();
    let header = read_header(&sd).unwrap();
    assert_eq!(header.message_type, MessageType::CertRep);
    assert_eq!(header.transaction_id.0, "micromdm-interop-1");
    assert_eq!(
        string_attr(&sd, nids.pki_status, "pkiStatus")
            .unwrap()
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        octets_attr(&sd, nids.recipient_nonce, "rn").unwrap(),
        Some(sender_nonce.0.clone())
    );
    let p7 = openssl::pkcs7::Pkcs7::from_der(&reply).unwrap();
    let env = verify_content(&p7, &ca).unwrap();
    let _legacy = openssl::provider::Provider::try_load(None, "legacy", true).unwrap();
    let plain = openssl::cms::CmsContentInfo::from_der(&env)
        .unwrap()
        .decrypt(&client.key, &client.cert)
        .unwrap();
    let certs = parse_certs_only(&plain).unwrap();
    let issued = certs
        .iter()
        .find(|c| c.public_key().unwrap().public_eq(&client.key))
        .expect("issued cert");
    // Go re-encodes the CN as a PrintableString, so compare the text.
    let cn = |c: &openssl::x509::X509Ref| {
        let e = c
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .unwrap();
        e.data().to_string().unwrap()
    };
    assert_eq!(cn(issued), "client micromdm");
}

/// A throwaway HTTP endpoint (python3) that answers GetCACaps/GetCACert
/// with `ra` and stores the first PKIOperation body in `capture`.
const CAPTURE_SERVER: &str = r#"
import base64, http.server, sys, urllib.parse
port, ra_path, capture = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, ctype, body):
        self.send_response(code); self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def save(self, body):
        open(capture + ".tmp", "wb").write(body)
        import os; os.rename(capture + ".tmp", capture)
        self.reply(500, "text/plain", b"captured")
    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        op = q.get("operation", [""])[0]
        if op == "GetCACaps":
            self.reply(200, "text/plain", b"POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n")
        elif op == "GetCACert":
            self.reply(200, "application/x-x509-ca-cert", open(ra_path, "rb").read())
        elif op == "PKIOperation":
            self.save(base64.b64decode(q["message"][0]))
        else:
            self.reply(404, "text/plain", b"")
    def do_POST(self):
        self.save(self.rfile.read(int(self.headers["Content-Length"])))
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

#[test]
fn micromdm_scepclient_request_decodes_and_opens() {
    let ra = self_signed("ra for scepclient");
    let dir = std::env::temp_dir().join(format!("scepd-scepclient-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ra_path = dir.join("ra.der");
    std::fs::write(&ra_path, ra.cert.to_der().unwrap()).unwrap();
    let capture = dir.join("request.der");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = std::process::Command::new("python3")
        .args(["-c", CAPTURE_SERVER, &port.to_string()])
        .arg(&ra_path)
        .arg(&capture)
        .spawn()
        .unwrap();
    let _reaper = Reaper(server);
    let url = format!("http://127.0.0.1:{port}/scep");
    (0..50)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            curl(&[&format!("{url}?operation=GetCACaps")])
        })
        .expect("capture server did not start");
    // scepclient fails once the capture server answers 500; only the
    // request it sent matters here.
    let _ = std::process::Command::new("scepclient")
        .args([
            "-server-url",
            &url,
            "-cn",
            "go client",
            "-challenge",
            "s3cret-chal",
        ])
        .arg("-private-key")
        .arg(dir.join("client.key"))
        .arg("-certificate")
        .arg(dir.join("client.pem"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let request = std::fs::read(&capture).expect("scepclient sent no PKIOperation");
    std::fs::remove_dir_all(&dir).unwrap();

    let msg = decode(&request).unwrap();
    assert_eq!(msg.header().message_type, MessageType::PkcsReq);
    assert_eq!(msg.header().sender_nonce.0.len(), 16);
    // scepclient 2.1.0 always envelopes with single DES (go pkcs7's
    // default) even when AES is advertised; open() verifies the signature
    // and decrypts it.
    let opened = msg.open(&ra.ra()).unwrap();
    assert_eq!(opened.cipher, ContentCipher::DesCbc);
    // The rest of the request is sound: decrypt it with the legacy provider.
    let p7 = openssl::pkcs7::Pkcs7::from_der(&request).unwrap();
    let env = verify_content(&p7, msg.signer_cert().x509().unwrap()).unwrap();
    let _legacy = openssl::provider::Provider::try_load(None, "legacy", true).unwrap();
    let csr_der = openssl::cms::CmsContentInfo::from_der(&env)
        .unwrap()
        .decrypt(&ra.key, &ra.cert)
        .unwrap();
    let csr = openssl::x509::X509Req::from_der(&csr_der).unwrap();
    let cn = csr
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    assert_eq!(cn.data().to_string().unwrap(), "go client");
    assert!(csr.verify(&csr.public_key().unwrap()).unwrap());
}
