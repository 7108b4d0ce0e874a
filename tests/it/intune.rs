//! scepd as a Microsoft Intune third-party CA (docs/intune.md), against a
//! local HTTPS stand-in that answers as Microsoft's published SCEP
//! validation library (microsoft/Intune-Resource-Access,
//! `src/CsrValidation`) says Entra ID, Graph and Intune answer: the token
//! endpoint, Graph service discovery, validateRequest, the success and
//! failure notifications, and the revocation download and upload.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{json, Value};
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::device::Device;
use crate::support::Scepd;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "app-secret-value";
const INTUNE_APP: &str = "0000000a-0000-0000-c000-000000000000";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How validateRequest answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Validate {
    /// `Success` for a challenge starting "VALID", ChallengeExpired else.
    ByChallenge,
    Slow,
    Malformed,
    Huge,
    Redirect,
}

struct State {
    seen: Vec<Seen>,
    validate: Validate,
    revocations: Vec<Value>,
    /// successNotification answers an error code.
    refuse_success: bool,
}

struct StandIn {
    port: u16,
    ca_pem: std::path::PathBuf,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

impl StandIn {
    fn start() -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed_localhost();
        let ca_pem = dir.path().join("standin.pem");
        std::fs::write(&ca_pem, cert.to_pem().unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(
                    cert.to_der().unwrap(),
                )],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.private_key_to_pkcs8().unwrap().into()),
            )
            .unwrap();
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            seen: vec![],
            validate: Validate::ByChallenge,
            revocations: vec![],
            refuse_success: false,
        }));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (cfg, st) = (cfg.clone(), st.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(cfg).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let _ = serve_one(&mut tls, &st, port);
                });
            }
        });
        StandIn {
            port,
            ca_pem,
            state,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    fn set_validate(&self, v: Validate) {
        self.state.lock().unwrap().validate = v;
    }

    fn seen(&self, path_end: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path.ends_with(path_end))
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

fn self_signed_localhost() -> (openssl::x509::X509, PKey<Private>) {
    use openssl::x509::extension::SubjectAlternativeName;
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "intune stand-in").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(
        &openssl::bn::BigNum::from_u32(7)
            .unwrap()
            .to_asn1_integer()
            .unwrap(),
    )
    .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

fn serve_one(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    st: &Mutex<State>,
    port: u16,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(&mut *tls);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let seen = Seen {
        method,
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let mode = {
        let mut s = st.lock().unwrap();
        s.seen.push(seen.clone());
        s.validate
    };
    let (status, body): (&str, String) = answer(&seen, st, mode, port);
    if status == "302 Found" {
        write!(
            tls,
            "HTTP/1.1 302 Found\r\nLocation: https://example.com/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
    } else {
        write!(
            tls,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        tls.write_all(body.as_bytes())?;
    }
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn bearer_ok(s: &Seen) -> bool {
    s.headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("Bearer token-for-"))
}

fn answer(s: &Seen, st: &Mutex<State>, mode: Validate, port: u16) -> (&'static str, String) {
    let ok = |v: Value| ("200 OK", v.to_string());
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    if s.path == token_path && s.method == "POST" {
        let form: HashMap<String, String> = s
            .body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    percent_encoding::percent_decode_str(&v.replace('+', " "))
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect();
        if form.get("grant_type").map(String::as_str) != Some("client_credentials")
            || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || form.get("client_secret").map(String::as_str) != Some(SECRET)
        {
            return (
                "401 Unauthorized",
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}).to_string(),
            );
        }
        let scope = form.get("scope").cloned().unwrap_or_default();
        return ok(json!({
            "token_type": "Bearer", "expires_in": 3599,
            "access_token": format!("token-for-{}", scope.replace(['/', ':'], "_")),
        }));
    }
    if !bearer_ok(s) {
        return (
            "401 Unauthorized",
            json!({"error": "unauthorized"}).to_string(),
        );
    }
    if s.path == format!("/v1.0/servicePrincipals/appId={INTUNE_APP}/endpoints") {
        let base = format!("https://127.0.0.1:{port}");
        return ok(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('appId%3D0000000a-0000-0000-c000-000000000000')/endpoints",
            "value": [
                {"capability": "ScepRequestValidationFQDN", "providerId": null,
                 "providerName": "ScepRequestValidationFEService", "providerResourceId": null,
                 "uri": format!("{base}/TrafficGateway/TrafficRoutingService/ScepRequestValidationFEService")},
                {"capability": "PkiConnectorFQDN", "providerId": null,
                 "providerName": "PkiConnectorFEService", "providerResourceId": null,
                 "uri": format!("{base}/TrafficGateway/TrafficRoutingService/PkiConnectorFEService")},
            ]
        }));
    }
    let version = s.headers.get("api-version").cloned().unwrap_or_default();
    if s.path
        .contains("/ScepRequestValidationFEService/ScepActions/")
    {
        if version != "2018-02-20" {
            return (
                "400 Bad Request",
                json!({"code": "BadApiVersion"}).to_string(),
            );
        }
        if s.path.ends_with("/validateRequest") {
            match mode {
                Validate::Slow => std::thread::sleep(Duration::from_secs(5)),
                Validate::Malformed => return ("200 OK", "{\"code\": \"Succ".into()),
                Validate::Huge => {
                    return (
                        "200 OK",
                        format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20)),
                    )
                }
                Validate::Redirect => return ("302 Found", String::new()),
                Validate::ByChallenge => {}
            }
            let csr_b64 = s.json()["request"]["certificateRequest"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let der = base64::engine::general_purpose::STANDARD
                .decode(csr_b64)
                .unwrap_or_default();
            let challenge = server::csr::Csr::from_der(&der)
                .ok()
                .and_then(|c| c.challenge_password);
            return match challenge {
                Some(c) if c.starts_with("VALID") => {
                    ok(json!({"code": "Success", "errorDescription": ""}))
                }
                _ => ok(
                    json!({"code": "ChallengeExpired", "errorDescription": "The challenge has expired."}),
                ),
            };
        }
        if s.path.ends_with("/successNotification") && st.lock().unwrap().refuse_success {
            return ok(
                json!({"code": "SigningCertThumbprintMismatch", "errorDescription": "Not expected."}),
            );
        }
        return ok(json!({"code": "Success", "errorDescription": ""}));
    }
    if s.path
        .contains("/PkiConnectorFEService/CertificateAuthorityRequests/")
    {
        if version != "5019-05-05" {
            return (
                "400 Bad Request",
                json!({"code": "BadApiVersion"}).to_string(),
            );
        }
        if s.path.ends_with("/downloadRevocationRequests") {
            let pending = std::mem::take(&mut st.lock().unwrap().revocations);
            return ok(json!({ "value": pending }));
        }
        if s.path.ends_with("/uploadRevocationResults") {
            return ok(json!({ "value": true }));
        }
    }
    ("404 Not Found", json!({"error": "not found"}).to_string())
}

// ---- CSRs with what Intune puts in them ----

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    der(
        6,
        openssl::asn1::Asn1Object::from_str(dotted)
            .unwrap()
            .as_slice(),
    )
}

/// A PKCS#10 request of `dev` with a challengePassword of any length (as a
/// UTF8String; `openssl req` refuses more than 255 characters) and URI SANs.
fn csr_with_long_challenge(dev: &Device, challenge: &str, uri_sans: &[&str]) -> Vec<u8> {
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", &dev.cn).unwrap();
    let name = name.build().to_der().unwrap();
    let spki = dev.key.public_key_to_der().unwrap();
    let pw_attr = der(
        0x30,
        &[
            oid("1.2.840.113549.1.9.7"),
            der(0x31, &der(0x0c, challenge.as_bytes())),
        ]
        .concat(),
    );
    let mut attrs = pw_attr;
    if !uri_sans.is_empty() {
        let names: Vec<u8> = uri_sans
            .iter()
            .flat_map(|u| der(0x86, u.as_bytes()))
            .collect();
        let san_ext = der(
            0x30,
            &[oid("2.5.29.17"), der(0x04, &der(0x30, &names))].concat(),
        );
        let ext_req = der(
            0x30,
            &[
                oid("1.2.840.113549.1.9.14"),
                der(0x31, &der(0x30, &san_ext)),
            ]
            .concat(),
        );
        attrs.extend(ext_req);
    }
    let info = der(
        0x30,
        &[der(2, &[0]), name, spki, der(0xa0, &attrs)].concat(),
    );
    let mut signer = Signer::new(MessageDigest::sha256(), &dev.key).unwrap();
    signer.update(&info).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    let alg = der(0x30, &[oid("1.2.840.113549.1.1.11"), vec![5, 0]].concat());
    der(
        0x30,
        &[info, alg, der(3, &[&[0u8][..], &sig].concat())].concat(),
    )
}

/// A challenge as long as Intune's (several KB), valid or not.
fn intune_challenge(valid: bool) -> String {
    let prefix = if valid { "VALID" } else { "STALE" };
    format!("{prefix}{}", "eyJhbGciOiJSUzI1NiJ9".repeat(200))
}

const SID_URI: &str =
    "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-512";

// ---- scepd set up as Intune's CA ----

fn start(timeout_s: &str) -> (Scepd, StandIn) {
    let stand_in = StandIn::start();
    let db = server::testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let bundle = stand_in.ca_pem.display().to_string();
    let s = Scepd::start_with(
        db,
        dir,
        &[
            ("SCEPD_INTUNE_CA_BUNDLE", &bundle),
            ("SCEPD_INTUNE_TIMEOUT_SECONDS", timeout_s),
            ("SCEPD_INTUNE_REVOCATION_POLL_SECONDS", "0"),
        ],
    );
    // Intune's SID SAN, allowed by the profile's pattern.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE device_profiles SET san_types = '{dns,uri}', \
             san_pattern = 'tag:microsoft\\.com,2022-09-14:sid:S-1-5-[0-9-]+' \
             WHERE profile_id = 'default'",
        ),
        &mut s.pg(),
    )
    .unwrap();
    let secret = s.dir.path().join("intune-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let url = stand_in.url();
    let out = intune_cli(
        &s,
        &stand_in,
        &[
            "intune",
            "set",
            "default",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--organization",
            "Default",
            "--authority-url",
            &url,
            "--graph-url",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (s, stand_in)
}

fn intune_cli(s: &Scepd, stand_in: &StandIn, args: &[&str]) -> std::process::Output {
    let bundle = stand_in.ca_pem.display().to_string();
    let mut all = vec!["--intune-ca-bundle", bundle.as_str()];
    all.extend_from_slice(args);
    s.cli(&all)
}

fn enroll(s: &Scepd, dev: &Device, csr: &[u8]) -> server::wire::client::CertRepMsg {
    let msg = dev.pkcs_req_message(s, csr, ContentCipher::Aes128Cbc);
    dev.send(s, "default", &msg)
}

fn ca_signatures(s: &Scepd) -> u64 {
    let body = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    body.lines()
        .find(|l| l.starts_with("scepd_signatures_total{key=\"ca\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn intune_validated_request_is_issued_and_intune_told_of_the_certificate() {
    let (s, intune) = start("5");
    let dev = Device::new("intune-device", 2048);
    let challenge = intune_challenge(true);
    let csr = csr_with_long_challenge(&dev, &challenge, &[SID_URI]);
    let rep = enroll(&s, &dev, &csr);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}\n{}", s.log());
    let cert = &rep.certs[0];
    let text = crate::support::openssl_text(cert);
    assert!(text.contains(&format!("URI:{SID_URI}")), "{text}");

    // Token by client credentials, for Graph and for Intune.
    let tokens = intune.seen("/oauth2/v2.0/token");
    let scopes: Vec<String> = tokens.iter().map(|t| t.body.clone()).collect();
    // Graph's scope on the stand-in, and Intune's as the library forms it.
    let graph_scope = format!("scope=https%3A%2F%2F127.0.0.1%3A{}%2F.default", intune.port);
    assert!(
        scopes.iter().any(|b| b.contains(&graph_scope)),
        "{scopes:?}"
    );
    let intune_scope = "scope=https%3A%2F%2Fapi.manage.microsoft.com%2F%2F.default";
    assert!(
        scopes.iter().any(|b| b.contains(intune_scope)),
        "{scopes:?}"
    );
    assert!(tokens.iter().all(|t| !t.path.contains(SECRET)));
    // Service discovery through Graph, then validateRequest with the CSR.
    assert_eq!(intune.seen("/endpoints").len(), 1);
    let validate = intune.seen("/ScepActions/validateRequest");
    assert_eq!(validate.len(), 1);
    let v = &validate[0];
    assert_eq!(v.headers["api-version"], "2018-02-20");
    assert!(v.headers["useragent"].starts_with("scepd/"));
    assert_eq!(v.headers["content-type"], "application/json");
    assert!(uuid::Uuid::parse_str(&v.headers["client-request-id"]).is_ok());
    let req = &v.json()["request"];
    assert_eq!(req["transactionId"], dev.txid().0.as_str());
    let sent_csr = base64::engine::general_purpose::STANDARD
        .decode(req["certificateRequest"].as_str().unwrap())
        .unwrap();
    assert_eq!(sent_csr, csr);
    assert!(req["callerInfo"].as_str().unwrap().starts_with("scepd/"));

    // The success notification names the certificate as Windows does.
    let success = intune.seen("/ScepActions/successNotification");
    assert_eq!(success.len(), 1);
    let n = &success[0].json()["notification"];
    assert_eq!(n["transactionId"], dev.txid().0.as_str());
    let thumb = hex::encode_upper(openssl::sha::sha1(&cert.to_der().unwrap()));
    assert_eq!(n["certificateThumbprint"], thumb.as_str());
    let serial = hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec());
    assert_eq!(n["certificateSerialNumber"], serial.as_str());
    let expires = n["certificateExpirationDateUtc"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.contains('T'), "{expires}");
    let issuer = n["issuingCertificateAuthority"].as_str().unwrap();
    assert!(issuer.contains("scepd CA"), "{issuer}");
    assert!(intune.seen("/failureNotification").is_empty());

    // Filed under the organization the settings name, and audited.
    assert_eq!(s.count("certificates"), 1);
    assert_eq!(s.count("audit_log WHERE event = 'intune.validated'"), 1);
    // The request is stored whole, its several-KB challenge included.
    let stored = format!(
        "enrollment_requests WHERE csr_der = decode('{}', 'hex')",
        hex::encode(&csr)
    );
    assert_eq!(s.count(&stored), 1);

    // A second enrollment reuses the tokens and the discovered services.
    let dev2 = Device::new("intune-device-2", 2048);
    let rep = enroll(&s, &dev2, &csr_with_long_challenge(&dev2, &challenge, &[]));
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    assert_eq!(intune.seen("/endpoints").len(), 1);
    assert_eq!(intune.seen("/oauth2/v2.0/token").len(), tokens.len());

    // The several-KB challenge also fits a GET PKIOperation's URL.
    let dev3 = Device::new("intune-device-get", 2048);
    let csr = csr_with_long_challenge(&dev3, &challenge, &[SID_URI]);
    let msg = dev3.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
    assert!(b64.len() > 8000, "{}", b64.len());
    let url = format!(
        "{}?operation=PKIOperation&message={}",
        s.scep_url("default"),
        percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC)
    );
    let r = ureq::get(&url)
        .call()
        .unwrap_or_else(|e| panic!("{e}\n{}", s.log()));
    let mut der = vec![];
    r.into_reader().read_to_end(&mut der).unwrap();
    let rep =
        server::wire::client::parse_cert_rep(&der, &s.ra_cert(), &dev3.signer, &dev3.key).unwrap();
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
}

#[test]
fn intune_refused_challenge_is_a_failure_with_its_reason_and_nothing_signed_by_the_ca() {
    let (s, intune) = start("5");
    let dev = Device::new("stale-device", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(false), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure);
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    let reason = crate::support::last_refusal(&s);
    assert!(reason.contains("ChallengeExpired"), "{reason}");
    assert_eq!(s.count("certificates"), 0);
    assert_eq!(s.count("enrollment_requests"), 0);
    assert_eq!(ca_signatures(&s), 0);
    assert!(intune.seen("/successNotification").is_empty());
    // A refusal is Intune working: no integration error recorded.
    assert_eq!(
        s.count("intune_settings WHERE last_error IS NULL AND last_success_at IS NOT NULL"),
        1
    );
}

#[test]
fn a_validated_request_the_profile_refuses_is_reported_to_intune_as_a_failure() {
    let (s, intune) = start("5");
    // Validated by Intune, but its key is below the profile's minimum.
    let dev = Device::new("weak-intune", 1024);
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE device_profiles SET min_rsa_bits = 2048"),
        &mut s.pg(),
    )
    .unwrap();
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure);
    // Refused by policy before Intune was asked: nothing to report.
    assert!(intune.seen("/validateRequest").is_empty());

    // A SAN outside the profile's pattern after validation would be the
    // same; an organization disabled after validation is not: Intune is
    // told why.
    diesel::RunQueryDsl::execute(
        diesel::sql_query("UPDATE organizations SET enabled = false"),
        &mut s.pg(),
    )
    .unwrap();
    let dev = Device::new("org-off", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(intune.seen("/validateRequest").len(), 1);
    let failure = intune.seen("/ScepActions/failureNotification");
    assert_eq!(failure.len(), 1, "{}", s.log());
    let n = &failure[0].json()["notification"];
    assert_eq!(n["hResult"], 0x8000_4005u32);
    assert!(
        n["errorDescription"].as_str().unwrap().contains("disabled"),
        "{n}"
    );
    assert_eq!(n["transactionId"], dev.txid().0.as_str());
    assert!(intune.seen("/successNotification").is_empty());
    assert_eq!(s.count("certificates"), 0);
}

#[test]
fn intune_unreachable_or_misbehaving_answers_failure_in_bounded_time_and_records_the_error() {
    let (s, intune) = start("2");
    for (mode, expect) in [
        (Validate::Slow, "in time"),
        (Validate::Malformed, "not the expected JSON"),
        (Validate::Huge, "more than 1 MiB"),
        (Validate::Redirect, "redirect"),
    ] {
        intune.set_validate(mode);
        let dev = Device::new("unlucky", 2048);
        let started = std::time::Instant::now();
        let rep = enroll(
            &s,
            &dev,
            &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{mode:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(rep.status, PkiStatus::Failure, "{mode:?}");
        let reason = crate::support::last_refusal(&s);
        assert!(
            reason.contains("validation unavailable") && reason.contains(expect),
            "{mode:?}: {reason}"
        );
        #[derive(diesel::QueryableByName)]
        struct E {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            last_error: Option<String>,
        }
        let e: E = diesel::RunQueryDsl::get_result(
            diesel::sql_query("SELECT last_error FROM intune_settings"),
            &mut s.pg(),
        )
        .unwrap();
        assert!(
            e.last_error.unwrap_or_default().contains(expect),
            "{mode:?}"
        );
    }
    assert_eq!(s.count("certificates"), 0);
    assert_eq!(s.count("enrollment_requests"), 0);
    assert_eq!(ca_signatures(&s), 0);
    assert!(s.log().lines().all(|l| !l.contains(SECRET)));
}

#[test]
fn a_wrong_client_secret_is_a_token_failure_shown_as_the_last_error() {
    let (s, intune) = start("5");
    let bad = s.dir.path().join("bad-secret");
    std::fs::write(&bad, "not-the-secret").unwrap();
    let out = intune_cli(
        &s,
        &intune,
        &[
            "intune",
            "set",
            "default",
            "--client-secret-file",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains("not-the-secret"), "{shown}");
    let dev = Device::new("no-token", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure);
    let reason = crate::support::last_refusal(&s);
    assert!(
        reason.contains("refused the app's credentials") && reason.contains("invalid_client"),
        "{reason}"
    );
    let shown =
        String::from_utf8(intune_cli(&s, &intune, &["intune", "show", "default"]).stdout).unwrap();
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert!(v["last_error"].as_str().unwrap().contains("invalid_client"));
    assert!(v["last_error_at"].is_string());
    assert_eq!(v["client_secret_set"], true);
    assert!(!shown.contains("not-the-secret") && !shown.contains(SECRET));
    // Sealed in the database, and every change audited without it.
    assert_eq!(
        s.count(&format!(
            "intune_settings WHERE position('{SECRET}'::bytea in client_secret_sealed) > 0"
        )),
        0
    );
    assert_eq!(
        s.count("audit_log WHERE event = 'intune.settings_changed'"),
        2
    );
    assert_eq!(s.count("audit_log WHERE event = 'intune.settings_changed' AND details::text LIKE '%secret-value%'"), 0);
}

#[test]
fn intune_revocation_requests_are_applied_and_their_results_uploaded() {
    let (s, intune) = start("5");
    let dev = Device::new("to-revoke", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let serial = hex::encode_upper(rep.certs[0].serial_number().to_bn().unwrap().to_vec());
    intune.state.lock().unwrap().revocations = vec![
        json!({"requestContext": "ctx-1", "serialNumber": serial, "issuerName": "scepd CA", "caConfiguration": "scepd"}),
        json!({"requestContext": "ctx-2", "serialNumber": "0BADC0FFEE", "issuerName": "scepd CA", "caConfiguration": "scepd"}),
        json!({"requestContext": "ctx-3", "serialNumber": "not hex", "issuerName": null, "caConfiguration": null}),
    ];
    intune.clear();
    // While another process runs the round (holds its lock), this one
    // downloads nothing.
    {
        use diesel::RunQueryDsl;
        let mut other = s.pg();
        diesel::sql_query("SELECT pg_advisory_lock(4240004)")
            .execute(&mut other)
            .unwrap();
        let out = intune_cli(&s, &intune, &["intune", "sync-revocations"]);
        assert!(out.status.success());
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(intune.seen("/downloadRevocationRequests").is_empty());
    }
    let out = intune_cli(&s, &intune, &["intune", "sync-revocations"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let download = intune.seen("/downloadRevocationRequests");
    assert_eq!(download.len(), 1);
    assert_eq!(download[0].headers["api-version"], "5019-05-05");
    assert!(
        download[0].json()["downloadParameters"]["maxRequests"]
            .as_u64()
            .unwrap()
            <= 500
    );
    let upload = intune.seen("/uploadRevocationResults");
    assert_eq!(upload.len(), 1);
    let results = upload[0].json()["results"].clone();
    assert_eq!(
        results,
        json!([
            {"requestContext": "ctx-1", "succeeded": true, "errorCode": 0, "errorMessage": ""},
            {"requestContext": "ctx-2", "succeeded": false, "errorCode": 4004, "errorMessage": "no such certificate"},
            {"requestContext": "ctx-3", "succeeded": false, "errorCode": 4002, "errorMessage": "the serial number is not hexadecimal"},
        ])
    );
    // Revoked through the usual path: revocation row, audit, CRL.
    assert_eq!(
        s.count(&format!(
            "certificates WHERE serial = '{serial}' AND status = 'revoked'"
        )),
        1
    );
    assert_eq!(
        s.count("audit_log WHERE event = 'certificate.revoked' AND actor = 'intune'"),
        1
    );
    assert_eq!(
        s.count("audit_log WHERE event = 'intune.revocations_applied'"),
        1
    );

    // Asked again: a conflict, as the library names it.
    intune.state.lock().unwrap().revocations =
        vec![json!({"requestContext": "ctx-4", "serialNumber": serial})];
    intune.clear();
    assert!(intune_cli(&s, &intune, &["intune", "sync-revocations"])
        .status
        .success());
    let results = intune.seen("/uploadRevocationResults")[0].json()["results"].clone();
    assert_eq!(results[0]["errorCode"], 4005);
    // Nothing to do: nothing uploaded.
    intune.clear();
    assert!(intune_cli(&s, &intune, &["intune", "sync-revocations"])
        .status
        .success());
    assert_eq!(intune.seen("/downloadRevocationRequests").len(), 1);
    assert!(intune.seen("/uploadRevocationResults").is_empty());
}

#[test]
fn intune_settings_through_the_api_seal_the_secret_and_refuse_bad_values() {
    let s = Scepd::start();
    let key = s
        .cli_ok(&["api-key", "create", "--name", "k", "--org", "Default"])
        .trim()
        .to_string();
    let org: i64 = s
        .cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .parse()
        .unwrap();
    let url = format!("{}/api/v1/profiles/default/intune", s.url);
    let call = crate::api::call;
    assert_eq!(call("GET", &url, Some(&key), None).0, 404);
    // A key of another organization reaches nothing of this profile.
    s.cli_ok(&["org", "create", "Other"]);
    let other = s
        .cli_ok(&["api-key", "create", "--name", "o", "--org", "Other"])
        .trim()
        .to_string();
    let (code, _) = call(
        "PUT",
        &url,
        Some(&other),
        Some(
            json!({"tenant": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
                    "organization_id": org}),
        ),
    );
    assert_eq!(code, 404);
    assert_eq!(s.count("intune_settings"), 0);
    // Bad values: refused, nothing stored.
    let (code, body) = call(
        "PUT",
        &url,
        Some(&key),
        Some(
            json!({"tenant": "bad tenant!", "client_id": CLIENT_ID, "organization_id": org,
                    "graph_url": "http://plain.example/"}),
        ),
    );
    assert_eq!(code, 400, "{body}");
    let msg = body.to_string();
    assert!(
        msg.contains("tenant") && msg.contains("graph_url") && msg.contains("client_secret"),
        "{msg}"
    );
    assert_eq!(s.count("intune_settings"), 0);
    let (code, body) = call(
        "PUT",
        &url,
        Some(&key),
        Some(
            json!({"tenant": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
                    "organization_id": org}),
        ),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["client_secret_set"], true);
    assert_eq!(body["graph_url"], "https://graph.microsoft.com/");
    assert!(!body.to_string().contains(SECRET));
    let (code, body) = call("GET", &url, Some(&key), None);
    assert_eq!(code, 200);
    assert!(!body.to_string().contains(SECRET));
    assert_eq!(
        s.count("audit_log WHERE event = 'intune.settings_changed' AND actor LIKE 'api-key:%'"),
        1
    );
    let del = ureq::delete(&url)
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(s.count("intune_settings"), 0);
    assert_eq!(
        s.count("audit_log WHERE event = 'intune.settings_changed'"),
        2
    );
}

#[test]
fn intune_settings_in_the_console_keep_the_secret_hidden_and_show_the_last_error() {
    use crate::console::{Client, ADMIN_PW};
    let stand_in = StandIn::start();
    let db = server::testdb::test_db().expect("test database");
    let bundle = stand_in.ca_pem.display().to_string();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[
            ("SCEPD_INTUNE_CA_BUNDLE", &bundle),
            ("SCEPD_INTUNE_REVOCATION_POLL_SECONDS", "0"),
        ],
    );
    let org = s
        .cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    assert!(c.get("/profiles").body.contains("/profiles/default/intune"));
    let page = c.get("/profiles/default/intune");
    assert_eq!(page.status, 200);
    let token = c.csrf();
    let url = stand_in.url();

    // Without the CSRF token: refused, nothing stored.
    let r = c.post("/profiles/default/intune", &[("tenant", TENANT)]);
    assert_eq!(r.status, 403);
    // Refused fields come back marked; nothing stored.
    let r = c.post(
        "/profiles/default/intune",
        &[
            ("csrf", &token),
            ("tenant", "no spaces allowed"),
            ("client_id", CLIENT_ID),
            ("place", &org),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("id=\"tenant-error\"") && r.body.contains("id=\"client_secret-error\"")
    );
    assert_eq!(s.count("intune_settings"), 0);

    // A wrong secret: saved, but Intune's token endpoint refuses it.
    let r = c.post(
        "/profiles/default/intune",
        &[
            ("csrf", &token),
            ("tenant", TENANT),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong-secret"),
            ("place", &org),
            ("revocation_enabled", "on"),
            ("authority_url", &url),
            ("graph_url", &url),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = c.get("/profiles/default/intune?msg=saved");
    assert!(!page.body.contains("wrong-secret"));
    assert!(page.body.contains("No error recorded"));
    let dev = Device::new("console-intune", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure);
    let page = c.get("/profiles/default/intune");
    assert!(
        page.body.contains("id=\"intune-last-error\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("invalid_client") && page.body.contains(" UTC"),
        "{}",
        page.body
    );

    // The right secret; the stored one stays when the field is left empty.
    let r = c.post(
        "/profiles/default/intune",
        &[
            ("csrf", &token),
            ("tenant", TENANT),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("place", &org),
            ("authority_url", &url),
            ("graph_url", &url),
        ],
    );
    assert_eq!(r.status, 303);
    let r = c.post(
        "/profiles/default/intune",
        &[
            ("csrf", &token),
            ("tenant", TENANT),
            ("client_id", CLIENT_ID),
            ("client_secret", ""),
            ("place", &org),
            ("authority_url", &url),
            ("graph_url", &url),
        ],
    );
    assert_eq!(r.status, 303);
    let dev = Device::new("console-intune-2", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    assert_eq!(
        s.count("audit_log WHERE event = 'intune.settings_changed' AND actor = 'admin'"),
        3
    );

    let r = c.post("/profiles/default/intune/remove", &[("csrf", &token)]);
    assert_eq!(r.status, 303);
    assert_eq!(s.count("intune_settings"), 0);
}

#[test]
fn once_intune_issues_a_profiles_challenges_scepd_mints_none_and_earlier_ones_stop_working() {
    let stand_in = StandIn::start();
    let bundle = stand_in.ca_pem.display().to_string();
    let s = Scepd::start_with(
        server::testdb::test_db().expect("test database"),
        tempfile::tempdir().unwrap(),
        &[
            ("SCEPD_INTUNE_CA_BUNDLE", &bundle),
            ("SCEPD_INTUNE_REVOCATION_POLL_SECONDS", "0"),
        ],
    );
    let earlier = s.mint("default");
    let secret = s.dir.path().join("intune-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let url = stand_in.url();
    let out = intune_cli(
        &s,
        &stand_in,
        &[
            "intune",
            "set",
            "default",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--organization",
            "Default",
            "--authority-url",
            &url,
            "--graph-url",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The challenge minted before would take the one-statement path if it
    // were still usable; it is not, and Intune does not know it.
    let dev = Device::new("minted-before", 2048);
    let rep = dev.pkcs_req(&s, "default", Some(&earlier));
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(s.count("certificates"), 0);
    assert_eq!(s.count("challenges WHERE revoked_at IS NOT NULL"), 1);
    let out = s.cli(&["challenge", "mint", "--profile", "default"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("issued by Microsoft Intune"));
}

#[test]
fn a_serving_scepd_fetches_intune_revocation_requests_by_itself() {
    let stand_in = StandIn::start();
    let bundle = stand_in.ca_pem.display().to_string();
    let s = Scepd::start_with(
        server::testdb::test_db().expect("test database"),
        tempfile::tempdir().unwrap(),
        &[
            ("SCEPD_INTUNE_CA_BUNDLE", &bundle),
            ("SCEPD_INTUNE_REVOCATION_POLL_SECONDS", "1"),
        ],
    );
    let secret = s.dir.path().join("intune-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let url = stand_in.url();
    let out = intune_cli(
        &s,
        &stand_in,
        &[
            "intune",
            "set",
            "default",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--organization",
            "Default",
            "--authority-url",
            &url,
            "--graph-url",
            &url,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = Device::new("polled", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let serial = hex::encode_upper(rep.certs[0].serial_number().to_bn().unwrap().to_vec());
    stand_in.state.lock().unwrap().revocations =
        vec![json!({"requestContext": "ctx-poll", "serialNumber": serial})];
    let revoked = format!("certificates WHERE serial = '{serial}' AND status = 'revoked'");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while s.count(&revoked) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.count(&revoked), 1, "{}", s.log());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stand_in.seen("/uploadRevocationResults").is_empty()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let results = stand_in.seen("/uploadRevocationResults")[0].json()["results"].clone();
    assert_eq!(results[0]["requestContext"], "ctx-poll");
    assert_eq!(results[0]["succeeded"], true);
    assert_eq!(
        s.count("intune_settings WHERE last_revocation_sync_at IS NOT NULL"),
        1
    );
}

#[test]
fn a_success_notification_intune_refuses_rolls_the_enrollment_back() {
    let (s, intune) = start("5");
    intune.state.lock().unwrap().refuse_success = true;
    let dev = Device::new("unnotified", 2048);
    let rep = enroll(
        &s,
        &dev,
        &csr_with_long_challenge(&dev, &intune_challenge(true), &[]),
    );
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    let reason = crate::support::last_refusal(&s);
    assert!(
        reason.contains("success notification") && reason.contains("SigningCertThumbprintMismatch"),
        "{reason}"
    );
    // Nothing of the enrollment stays: no request, no certificate.
    assert_eq!(s.count("certificates"), 0);
    assert_eq!(s.count("enrollment_requests"), 0);
    assert_eq!(s.count("audit_log WHERE event = 'certificate.issued'"), 0);
    assert_eq!(intune.seen("/successNotification").len(), 1);
    let failure = intune.seen("/failureNotification");
    assert_eq!(failure.len(), 1);
    assert_eq!(
        failure[0].json()["notification"]["transactionId"],
        dev.txid().0.as_str()
    );
}
