//! Apple configuration profiles exported by `scepd profile export`: the
//! signature verifies with OpenSSL against the CA, the property list has
//! Apple's keys and types, and the embedded one-time challenge enrolls
//! micromdm's `scepclient` exactly once (RFC 8894 §2.3).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use plist::{Dictionary, Value};

use crate::support::{openssl_verify, scepclient, Scepd};

fn payloads(top: &Dictionary) -> Vec<&Dictionary> {
    top.get("PayloadContent")
        .and_then(Value::as_array)
        .expect("PayloadContent array")
        .iter()
        .map(|p| p.as_dictionary().expect("payload dictionary"))
        .collect()
}

fn payload<'a>(top: &'a Dictionary, kind: &str) -> &'a Dictionary {
    payloads(top)
        .into_iter()
        .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} payload"))
}

fn s<'a>(d: &'a Dictionary, k: &str) -> &'a str {
    d.get(k)
        .and_then(Value::as_string)
        .unwrap_or_else(|| panic!("{k} is a string"))
}

fn int(d: &Dictionary, k: &str) -> i64 {
    d.get(k)
        .and_then(Value::as_signed_integer)
        .unwrap_or_else(|| panic!("{k} is an integer"))
}

/// `openssl smime -verify` against the CA; the signed content.
fn verify_signed(ca: &Path, signed: &Path) -> Vec<u8> {
    let out = signed.with_extension("xml");
    let st = Command::new("openssl")
        .args(["smime", "-verify", "-inform", "DER", "-in"])
        .arg(signed)
        .arg("-CAfile")
        .arg(ca)
        .arg("-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "signature does not verify: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read(out).unwrap()
}

#[test]
fn signed_profile_verifies_and_its_challenge_enrolls_once() {
    let srv = Scepd::start();
    srv.cli_ok(&[
        "profile",
        "apple-payloads",
        "default",
        "--wifi-ssid",
        "Acme-Corp",
        "--wifi-trusted-server-name",
        "radius.example.com",
        "--vpn-remote-address",
        "vpn.example.com",
        "--vpn-remote-identifier",
        "vpn.example.com",
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("iphone-1.mobileconfig");
    srv.cli_ok(&[
        "profile",
        "export",
        "--force",
        "--profile",
        "default",
        "--org",
        "Default",
        "--device",
        "iphone-1",
        "-o",
        file.to_str().unwrap(),
    ]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the file holds a secret: {mode:o}");

    // Signed by a certificate that chains to the CA, with the chain inside.
    let xml = verify_signed(&srv.ca_pem_path(), &file);
    let top = Value::from_reader_xml(xml.as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(s(&top, "PayloadType"), "Configuration");
    assert_eq!(int(&top, "PayloadVersion"), 1);
    assert_eq!(s(&top, "PayloadIdentifier"), "local.scepd.default.1");
    assert_eq!(s(&top, "PayloadOrganization"), "Default");
    let ca_der = srv.ca_cert().to_der().unwrap();

    let root = payload(&top, "com.apple.security.root");
    assert_eq!(
        root.get("PayloadContent").and_then(Value::as_data),
        Some(ca_der.as_slice())
    );
    let scep = payload(&top, "com.apple.security.scep");
    let c = scep
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .unwrap();
    let url = s(c, "URL").to_string();
    assert_eq!(url, srv.scep_url("default"));
    assert_eq!(int(c, "Keysize"), 2048);
    assert_eq!(s(c, "Key Type"), "RSA");
    assert_eq!(int(c, "Key Usage"), 5, "digitalSignature + keyEncipherment");
    assert_eq!((int(c, "Retries"), int(c, "RetryDelay")), (3, 10));
    assert_eq!(
        c.get("CAFingerprint").and_then(Value::as_data),
        Some(openssl::sha::sha1(&ca_der).as_slice())
    );
    let subject = c.get("Subject").and_then(Value::as_array).unwrap();
    assert_eq!(
        subject,
        &vec![Value::Array(vec![Value::Array(vec![
            Value::String("CN".into()),
            Value::String("iphone-1".into())
        ])])]
    );
    let scep_uuid = s(scep, "PayloadUUID");
    let wifi = payload(&top, "com.apple.wifi.managed");
    assert_eq!(s(wifi, "SSID_STR"), "Acme-Corp");
    assert_eq!(s(wifi, "PayloadCertificateUUID"), scep_uuid);
    let vpn = payload(&top, "com.apple.vpn.managed");
    let ike = vpn.get("IKEv2").and_then(Value::as_dictionary).unwrap();
    assert_eq!(s(ike, "PayloadCertificateUUID"), scep_uuid);
    assert_eq!(s(ike, "LocalIdentifier"), "iphone-1");

    // The embedded challenge enrolls the device once ...
    let challenge = s(c, "Challenge").to_string();
    let a = tempfile::tempdir().unwrap();
    let run = scepclient(a.path(), &url, &challenge, "iphone-1");
    assert!(
        run.ok,
        "scepclient failed:\n{}\nserver log:\n{}",
        run.output,
        srv.log()
    );
    let (ok, msg) = openssl_verify(&srv.ca_pem_path(), &run.cert.unwrap(), &[]);
    assert!(ok, "{msg}");
    // ... and never again.
    let b = tempfile::tempdir().unwrap();
    let again = scepclient(b.path(), &url, &challenge, "iphone-1");
    assert!(!again.ok, "a one-time challenge enrolled twice");
    assert!(again.output.contains("badRequest"), "{}", again.output);
}

#[test]
fn unsigned_export_is_plain_xml_and_manual_profiles_poll_longer() {
    let srv = Scepd::start();
    srv.cli_ok(&[
        "profile",
        "create",
        "laptops",
        "--approval",
        "manual",
        "--min-rsa-bits",
        "3072",
        "--subject",
        "CN={{CommonName}},O=Acme",
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("p.mobileconfig");
    srv.cli_ok(&[
        "profile",
        "export",
        "--force",
        "--profile",
        "laptops",
        "--device",
        "mac-7",
        "--unsigned",
        "--identifier-prefix",
        "com.example",
        "--removal-date",
        "2030-01-01T00:00:00Z",
        "-o",
        file.to_str().unwrap(),
    ]);
    let top = Value::from_file(&file).unwrap().into_dictionary().unwrap();
    assert_eq!(s(&top, "PayloadIdentifier"), "com.example.scepd.laptops.1");
    assert!(matches!(top.get("RemovalDate"), Some(Value::Date(_))));
    let kinds: Vec<&str> = payloads(&top).iter().map(|p| s(p, "PayloadType")).collect();
    assert_eq!(
        kinds,
        ["com.apple.security.root", "com.apple.security.scep"]
    );
    let c = payload(&top, "com.apple.security.scep")
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .unwrap();
    assert_eq!(int(c, "Keysize"), 4096);
    assert!(int(c, "Retries") * int(c, "RetryDelay") >= 3 * 3600);
    assert_eq!(c.get("Subject").and_then(Value::as_array).unwrap().len(), 2);

    // A template variable without a device is refused before any minting.
    let out = srv.cli(&[
        "profile",
        "export",
        "--force",
        "--profile",
        "laptops",
        "-o",
        work.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("device identity"));
}

#[test]
fn an_mdm_downloads_a_signed_profile_over_the_api_within_its_scope() {
    let srv = Scepd::start();
    let other: i64 = srv
        .cli_ok(&["org", "create", "Other"])
        .trim()
        .parse()
        .unwrap();
    let key = srv
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    // (status, body): the ureq error type is too large to pass around.
    let post = |body: serde_json::Value| -> (u16, Vec<u8>, String) {
        let r = match ureq::post(&format!("{}/api/v1/mobileconfig", srv.url))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let (status, ct) = (r.status(), r.content_type().to_string());
        let mut bytes = vec![];
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
        (status, bytes, ct)
    };
    // Another organization's profile is not this key's to hand out.
    let (status, _, _) = post(serde_json::json!({"profile": "default", "organization_id": other}));
    assert_eq!(status, 403);
    let (status, bytes, ct) = post(serde_json::json!({
        "profile": "default", "organization_id": 1, "device_identity": "ipad-7"
    }));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(ct, "application/x-apple-aspen-config");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.mobileconfig");
    std::fs::write(&file, &bytes).unwrap();
    let xml = verify_signed(&srv.ca_pem_path(), &file);
    let top = Value::from_reader_xml(xml.as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap();
    let scep = payload(&top, "com.apple.security.scep");
    let c = scep
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .unwrap();
    let (url, challenge) = (s(c, "URL").to_string(), s(c, "Challenge").to_string());
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(work.path(), &url, &challenge, "ipad-7");
    assert!(run.ok, "{}\n{}", run.output, srv.log());
    // The challenge is bound to the device named in the request.
    let again = tempfile::tempdir().unwrap();
    assert!(!scepclient(again.path(), &url, &challenge, "ipad-7").ok);
}
