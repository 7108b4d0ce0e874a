use super::*;

#[test]
fn defaults_apply_when_nothing_is_set() {
    let c = Settings::default().resolve().unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert!(matches!(c.ca_key_type, KeySpec::Rsa(3072)));
    assert!(c.database_url.is_none());
}

#[test]
fn flags_win_over_file_and_unknown_file_keys_are_refused() {
    let dir = std::env::temp_dir().join(format!("scepd-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("a.toml");
    std::fs::write(&f, "listen = \"127.0.0.1:9000\"\nworkers = 3\n").unwrap();
    let s = Settings {
        config: Some(f.clone()),
        workers: Some(5),
        ..Default::default()
    };
    let c = s.resolve().unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.workers, 5);
    std::fs::write(&f, "lisen = \"x\"\n").unwrap();
    let err = Settings {
        config: Some(f),
        ..Default::default()
    }
    .resolve()
    .unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn ec_ra_key_is_refused() {
    let s = Settings {
        ra_key_type: Some("ec-p256".into()),
        ..Default::default()
    };
    assert!(s.resolve().is_err());
}

#[test]
fn trusted_proxies_default_to_none_and_a_bad_entry_is_refused() {
    assert!(Settings::default()
        .resolve()
        .unwrap()
        .trusted_proxies
        .is_empty());
    let c = Settings {
        trusted_proxies: Some("127.0.0.1,10.0.0.0/8,::1".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(
        c.trusted_proxies,
        "127.0.0.1/32, 10.0.0.0/8, ::1/128".parse().unwrap()
    );
    let err = Settings {
        trusted_proxies: Some("127.0.0.1,10.0.0.0/40".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("trusted_proxies") && text.contains("10.0.0.0/40"),
        "{text}"
    );
}

#[test]
fn debug_redacts_secrets() {
    let c = Settings {
        database_url: Some("postgres://u:hunter2@h/db".into()),
        admin_password: Some("sekret-pw".into()),
        smtp_password: Some("smtp-hunter3".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let d = format!("{c:?}");
    assert!(!d.contains("hunter2") && !d.contains("sekret-pw"), "{d}");
    assert!(!d.contains("smtp-hunter3"), "{d}");
}

#[test]
fn an_hsm_needs_a_pin_read_from_its_file_and_kept_out_of_debug() {
    let with_module = || Settings {
        pkcs11_module: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
        ..Default::default()
    };
    assert!(Settings::default().resolve().unwrap().pkcs11.is_none());
    let err = with_module().resolve().unwrap_err();
    assert!(err.to_string().contains("SCEPD_PKCS11_PIN_FILE"), "{err}");

    let dir = std::env::temp_dir().join(format!("scepd-cfg-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pin = dir.join("pin");
    std::fs::write(&pin, "pin-4711\n").unwrap();
    let c = Settings {
        pkcs11_pin_file: Some(pin),
        pkcs11_token: Some("ca-token".into()),
        ..with_module()
    }
    .resolve()
    .unwrap();
    let p11 = c.pkcs11.as_ref().unwrap();
    assert_eq!(p11.pin, "pin-4711");
    assert_eq!(p11.key_label, "scepd-ca");
    assert_eq!(p11.token_label.as_deref(), Some("ca-token"));
    assert!(!format!("{c:?}").contains("pin-4711"));

    let err = Settings {
        pkcs11_pin_file: Some(dir.join("absent")),
        ..with_module()
    }
    .resolve()
    .unwrap_err();
    assert!(err.to_string().contains("pkcs11_pin_file"), "{err}");
}
