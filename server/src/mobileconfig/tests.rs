//! The exported profile parsed back with `plist` and checked against Apple's
//! schema (github.com/apple/device-management `mdm/profiles/*.yaml`): key
//! names, value types, required keys, UUID uniqueness and cross-references.

use std::collections::HashSet;
use std::process::Command;

use plist::{Dictionary, Value};

use super::*;
use crate::ca::test_support::{make_ca, Scratch};
use crate::ca::KeySpec;

fn test_passphrase() -> crate::ca::key_file::Passphrase {
    crate::ca::key_file::Passphrase::generated(b"0123456789abcdef0123456789abcdef".to_vec(), "test")
}

fn subject() -> Vec<(String, String)> {
    vec![
        ("CN".to_string(), "dev-1".to_string()),
        ("O".to_string(), "Acme".to_string()),
    ]
}

struct Fixture {
    ca_der: Vec<u8>,
    subject: Vec<(String, String)>,
    san: SubjectAltName,
    wifi: WifiSettings,
    vpn: VpnSettings,
}

impl Fixture {
    fn new() -> Self {
        let ca = make_ca(KeySpec::Rsa(2048));
        Self {
            ca_der: ca.cert_der().unwrap(),
            subject: subject(),
            san: SubjectAltName {
                dns: vec!["dev-1.example.com".into()],
                rfc822: vec![],
                uri: vec!["urn:a".into(), "urn:b".into()],
                nt_principal: vec![],
            },
            wifi: WifiSettings {
                ssid: "Acme-Corp".into(),
                hidden: false,
                encryption: "WPA3".into(),
                trusted_server_names: vec!["radius.example.com".into()],
            },
            vpn: VpnSettings {
                name: "Acme VPN".into(),
                remote_address: "vpn.example.com".into(),
                remote_identifier: "vpn.example.com".into(),
                local_identifier: "dev-1".into(),
            },
        }
    }

    fn params(&self, full: bool) -> ExportParams<'_> {
        ExportParams {
            identifier_prefix: "com.example",
            scep_url: "https://scep.example.com/scep/laptops",
            profile_id: "laptops",
            profile_name: "Laptops",
            organization_id: 7,
            organization_name: "Acme",
            subject: &self.subject,
            challenge: "CHALLENGE",
            keysize: 2048,
            key_usage: 5,
            retries: Retries::for_approval(false),
            ca_der: &self.ca_der,
            ca_common_name: "Test Root",
            subject_alt_name: &self.san,
            wifi: full.then_some(&self.wifi),
            vpn: full.then_some(&self.vpn),
            removal_date: full.then(|| chrono::Utc::now() + chrono::Duration::days(90)),
        }
    }
}

fn parse(xml: &[u8]) -> Dictionary {
    Value::from_reader_xml(xml)
        .unwrap()
        .into_dictionary()
        .expect("top level is a dictionary")
}

fn string<'a>(d: &'a Dictionary, k: &str) -> &'a str {
    d.get(k)
        .and_then(Value::as_string)
        .unwrap_or_else(|| panic!("{k} is a string"))
}

fn integer(d: &Dictionary, k: &str) -> i64 {
    d.get(k)
        .and_then(Value::as_signed_integer)
        .unwrap_or_else(|| panic!("{k} is an integer"))
}

fn dict<'a>(d: &'a Dictionary, k: &str) -> &'a Dictionary {
    d.get(k)
        .and_then(Value::as_dictionary)
        .unwrap_or_else(|| panic!("{k} is a dictionary"))
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn payloads(top: &Dictionary) -> Vec<&Dictionary> {
    top.get("PayloadContent")
        .and_then(Value::as_array)
        .expect("PayloadContent is an array")
        .iter()
        .map(|v| v.as_dictionary().expect("each payload is a dictionary"))
        .collect()
}

fn payload<'a>(top: &'a Dictionary, kind: &str) -> &'a Dictionary {
    payloads(top)
        .into_iter()
        .find(|p| string(p, "PayloadType") == kind)
        .unwrap_or_else(|| panic!("no {kind} payload"))
}

/// Apple's common payload keys: required ones present with their types.
fn check_header(d: &Dictionary) {
    assert_eq!(integer(d, "PayloadVersion"), 1);
    assert!(!string(d, "PayloadIdentifier").is_empty());
    assert!(is_uuid(string(d, "PayloadUUID")));
    assert!(!string(d, "PayloadType").is_empty());
    assert!(!string(d, "PayloadDisplayName").is_empty());
}

mod top_level {
    use super::*;

    #[test]
    fn configuration_keys_and_types() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(true)).unwrap());
        check_header(&top);
        assert_eq!(string(&top, "PayloadType"), "Configuration");
        assert_eq!(
            string(&top, "PayloadIdentifier"),
            "com.example.scepd.laptops.7"
        );
        assert_eq!(string(&top, "PayloadOrganization"), "Acme");
        assert!(string(&top, "PayloadDisplayName").contains("Laptops"));
        assert!(matches!(
            top.get("PayloadRemovalDisallowed"),
            Some(Value::Boolean(false))
        ));
        assert!(matches!(top.get("RemovalDate"), Some(Value::Date(_))));
        assert_eq!(payloads(&top).len(), 4);
    }

    #[test]
    fn identifiers_are_stable_and_uuids_fresh_and_unique() {
        let f = Fixture::new();
        let a = parse(&build(&f.params(true)).unwrap());
        let b = parse(&build(&f.params(true)).unwrap());
        assert_eq!(
            string(&a, "PayloadIdentifier"),
            string(&b, "PayloadIdentifier")
        );
        let uuids = |d: &Dictionary| {
            std::iter::once(string(d, "PayloadUUID").to_string())
                .chain(payloads(d).iter().map(|p| string(p, "PayloadUUID").into()))
                .collect::<Vec<String>>()
        };
        let (ua, ub) = (uuids(&a), uuids(&b));
        let all: HashSet<&String> = ua.iter().chain(ub.iter()).collect();
        assert_eq!(all.len(), ua.len() + ub.len(), "every UUID is new");
        let ids: HashSet<&str> = payloads(&a)
            .iter()
            .map(|p| string(p, "PayloadIdentifier"))
            .collect();
        assert_eq!(ids.len(), 4, "payload identifiers differ");
        for p in payloads(&a) {
            check_header(p);
            assert!(string(p, "PayloadIdentifier").starts_with("com.example.scepd.laptops.7."));
        }
    }

    #[test]
    fn without_optional_payloads_only_root_and_scep() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(false)).unwrap());
        let kinds: Vec<&str> = payloads(&top)
            .iter()
            .map(|p| string(p, "PayloadType"))
            .collect();
        assert_eq!(
            kinds,
            ["com.apple.security.root", "com.apple.security.scep"]
        );
        assert!(top.get("RemovalDate").is_none());
    }

    #[test]
    fn refuses_a_profile_without_challenge() {
        let f = Fixture::new();
        let mut p = f.params(false);
        p.challenge = "";
        assert!(matches!(build(&p), Err(MobileconfigError::Invalid(_))));
    }
}

mod scep_payload {
    use super::*;

    #[test]
    fn every_key_has_apples_type() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(true)).unwrap());
        let scep = payload(&top, "com.apple.security.scep");
        let c = dict(scep, "PayloadContent");
        assert_eq!(string(c, "URL"), "https://scep.example.com/scep/laptops");
        assert_eq!(string(c, "Name"), "laptops");
        assert_eq!(string(c, "Challenge"), "CHALLENGE");
        assert_eq!(integer(c, "Keysize"), 2048);
        assert_eq!(string(c, "Key Type"), "RSA");
        assert_eq!(integer(c, "Key Usage"), 5);
        assert_eq!(integer(c, "Retries"), 3);
        assert_eq!(integer(c, "RetryDelay"), 10);
        let fp = c.get("CAFingerprint").and_then(Value::as_data).unwrap();
        assert_eq!(fp, openssl::sha::sha1(&f.ca_der).as_slice());
        let allowed: HashSet<&str> = [
            "URL",
            "Name",
            "Subject",
            "Challenge",
            "Keysize",
            "Key Type",
            "Key Usage",
            "CAFingerprint",
            "Retries",
            "RetryDelay",
            "SubjectAltName",
        ]
        .into();
        for k in c.keys() {
            assert!(allowed.contains(k.as_str()), "unexpected key {k}");
        }
    }

    #[test]
    fn subject_is_an_array_of_rdns_of_pairs() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(false)).unwrap());
        let c = dict(payload(&top, "com.apple.security.scep"), "PayloadContent");
        let subject = c.get("Subject").and_then(Value::as_array).unwrap();
        let got: Vec<(String, String)> = subject
            .iter()
            .map(|rdn| {
                let rdn = rdn.as_array().expect("RDN is an array");
                assert_eq!(rdn.len(), 1);
                let pair = rdn[0].as_array().expect("pair is an array");
                assert_eq!(pair.len(), 2);
                (
                    pair[0].as_string().unwrap().to_string(),
                    pair[1].as_string().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, subject_fixture());
    }

    fn subject_fixture() -> Vec<(String, String)> {
        subject()
    }

    #[test]
    fn subject_alt_name_takes_a_string_or_an_array() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(false)).unwrap());
        let c = dict(payload(&top, "com.apple.security.scep"), "PayloadContent");
        let san = dict(c, "SubjectAltName");
        assert_eq!(string(san, "dNSName"), "dev-1.example.com");
        let uris = san
            .get("uniformResourceIdentifier")
            .and_then(Value::as_array);
        assert_eq!(uris.map(Vec::len), Some(2));
        assert!(san.get("rfc822Name").is_none());
    }

    #[test]
    fn no_subject_alt_name_when_none_requested() {
        let mut f = Fixture::new();
        f.san = SubjectAltName::default();
        let top = parse(&build(&f.params(false)).unwrap());
        let c = dict(payload(&top, "com.apple.security.scep"), "PayloadContent");
        assert!(c.get("SubjectAltName").is_none());
    }

    #[test]
    fn manual_approval_polls_for_hours() {
        let manual = Retries::for_approval(true);
        assert!(manual.count * manual.delay_secs >= 3 * 3600);
        let f = Fixture::new();
        let mut p = f.params(false);
        p.retries = manual;
        let top = parse(&build(&p).unwrap());
        let c = dict(payload(&top, "com.apple.security.scep"), "PayloadContent");
        assert_eq!(integer(c, "Retries"), manual.count);
        assert_eq!(integer(c, "RetryDelay"), manual.delay_secs);
    }

    #[test]
    fn root_payload_carries_the_ca_der() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(false)).unwrap());
        let root = payload(&top, "com.apple.security.root");
        let der = root.get("PayloadContent").and_then(Value::as_data).unwrap();
        assert_eq!(der, f.ca_der.as_slice());
        assert!(openssl::x509::X509::from_der(der).is_ok());
    }
}

mod network_payloads {
    use super::*;

    #[test]
    fn wifi_uses_the_scep_identity_and_trusts_the_ca() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(true)).unwrap());
        let scep_uuid = string(payload(&top, "com.apple.security.scep"), "PayloadUUID");
        let root_uuid = string(payload(&top, "com.apple.security.root"), "PayloadUUID");
        let w = payload(&top, "com.apple.wifi.managed");
        assert_eq!(string(w, "SSID_STR"), "Acme-Corp");
        assert_eq!(string(w, "EncryptionType"), "WPA3");
        assert!(matches!(
            w.get("HIDDEN_NETWORK"),
            Some(Value::Boolean(false))
        ));
        assert!(matches!(w.get("AutoJoin"), Some(Value::Boolean(true))));
        assert_eq!(string(w, "PayloadCertificateUUID"), scep_uuid);
        let eap = dict(w, "EAPClientConfiguration");
        let types = eap.get("AcceptEAPTypes").and_then(Value::as_array).unwrap();
        assert_eq!(types, &vec![Value::Integer(13.into())]);
        let anchors = eap
            .get("PayloadCertificateAnchorUUID")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(anchors, &vec![Value::String(root_uuid.into())]);
        let names = eap
            .get("TLSTrustedServerNames")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(names, &vec![Value::String("radius.example.com".into())]);
    }

    #[test]
    fn vpn_is_ikev2_with_the_scep_certificate() {
        let f = Fixture::new();
        let top = parse(&build(&f.params(true)).unwrap());
        let scep_uuid = string(payload(&top, "com.apple.security.scep"), "PayloadUUID");
        let v = payload(&top, "com.apple.vpn.managed");
        assert_eq!(string(v, "VPNType"), "IKEv2");
        assert_eq!(string(v, "UserDefinedName"), "Acme VPN");
        let ike = dict(v, "IKEv2");
        assert_eq!(string(ike, "RemoteAddress"), "vpn.example.com");
        assert_eq!(string(ike, "RemoteIdentifier"), "vpn.example.com");
        assert_eq!(string(ike, "LocalIdentifier"), "dev-1");
        assert_eq!(string(ike, "AuthenticationMethod"), "Certificate");
        assert_eq!(integer(ike, "ExtendedAuthEnabled"), 0);
        assert_eq!(string(ike, "PayloadCertificateUUID"), scep_uuid);
    }
}

mod translation {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn template_variables_come_from_the_device() {
        let none = SubjectAltName::default();
        let s = subject_from_template("CN={{CommonName}},O=Acme,OU=IT", Some("dev-9"), &none);
        assert_eq!(
            s.unwrap(),
            pairs(&[("CN", "dev-9"), ("O", "Acme"), ("OU", "IT")])
        );
    }

    #[test]
    fn the_attribute_a_variable_reads_is_added_for_the_server() {
        let none = SubjectAltName::default();
        // The server reads {{SerialNumber}} from the CSR's serialNumber.
        let s = subject_from_template("CN=Laptop {{SerialNumber}}", Some("C02X"), &none);
        assert_eq!(
            s.unwrap(),
            pairs(&[("CN", "Laptop C02X"), ("2.5.4.5", "C02X")])
        );
        let s = subject_from_template("O=Acme,CN=x-{{DeviceId}}", Some("d1"), &none).unwrap();
        assert_eq!(s, pairs(&[("O", "Acme"), ("CN", "x-d1"), ("CN", "d1")]));
    }

    #[test]
    fn a_variable_without_a_device_is_refused() {
        let none = SubjectAltName::default();
        assert!(subject_from_template("CN={{CommonName}}", None, &none).is_err());
        assert!(subject_from_template("CN=fixed", None, &none).is_ok());
        assert!(subject_from_template("CN={{Nope}}", Some("d"), &none).is_err());
        assert!(subject_from_template("XYZ=1", Some("d"), &none).is_err());
    }

    #[test]
    fn upn_variable_reads_the_nt_principal_name() {
        let san = SubjectAltName {
            nt_principal: vec!["ann@example.com".into()],
            ..Default::default()
        };
        let s = subject_from_template("CN={{UserPrincipalName}}", None, &san).unwrap();
        assert_eq!(s, pairs(&[("CN", "ann@example.com")]));
    }

    #[test]
    fn keysize_is_never_apples_1024_default() {
        assert_eq!(apple_keysize(1024).unwrap(), 2048);
        assert_eq!(apple_keysize(2048).unwrap(), 2048);
        assert_eq!(apple_keysize(3072).unwrap(), 4096);
        assert_eq!(apple_keysize(4096).unwrap(), 4096);
        assert!(apple_keysize(8192).is_err());
    }

    #[test]
    fn key_usage_maps_to_apples_bitmask() {
        let ku = |v: &[&str]| apple_key_usage(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ku(&["digitalSignature"]), 1);
        assert_eq!(ku(&["keyEncipherment"]), 4);
        assert_eq!(ku(&["digitalSignature", "keyEncipherment"]), 5);
        assert_eq!(ku(&["nonRepudiation", "keyAgreement"]), 5);
        assert_eq!(ku(&[]), 0);
    }

    #[test]
    fn identifier_prefix_is_reverse_dns_of_the_host() {
        assert_eq!(
            identifier_prefix("https://scep.example.com:8443/x"),
            "com.example.scep"
        );
        assert_eq!(identifier_prefix("http://127.0.0.1:8080"), "local");
        assert_eq!(identifier_prefix("http://localhost"), "local");
    }
}

mod signature {
    use super::*;

    #[test]
    fn signer_is_created_once_and_openssl_verifies_the_profile() {
        let scratch = Scratch::new();
        std::fs::create_dir_all(scratch.0.join("ca")).unwrap();
        let ca = make_ca(KeySpec::Rsa(2048));
        let signer = ensure_signer(&scratch.0, &ca, &test_passphrase()).unwrap();
        let again = ensure_signer(&scratch.0, &ca, &test_passphrase()).unwrap();
        assert_eq!(
            signer.identity.fingerprint(),
            again.identity.fingerprint(),
            "an existing signer is reused"
        );
        let f = Fixture::new();
        let xml = build(&f.params(true)).unwrap();
        let der = sign(&xml, &signer).unwrap();
        let signed = scratch.write("p.mobileconfig", &der);
        let ca_pem = scratch.write("ca.pem", &ca.cert_pem().unwrap());
        let out = scratch.path("out.xml");
        let st = Command::new("openssl")
            .args(["smime", "-verify", "-inform", "DER", "-in", &signed])
            .args(["-CAfile", &ca_pem, "-out", &out])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            xml,
            "content is attached as is"
        );
    }

    #[test]
    fn a_signer_from_another_ca_is_replaced() {
        let scratch = Scratch::new();
        std::fs::create_dir_all(scratch.0.join("ca")).unwrap();
        let old =
            ensure_signer(&scratch.0, &make_ca(KeySpec::Rsa(2048)), &test_passphrase()).unwrap();
        let ca = make_ca(KeySpec::Rsa(2048));
        let new = ensure_signer(&scratch.0, &ca, &test_passphrase()).unwrap();
        assert_ne!(old.identity.fingerprint(), new.identity.fingerprint());
        assert!(new
            .identity
            .cert()
            .verify(&ca.public_key().unwrap())
            .unwrap());
    }
}
