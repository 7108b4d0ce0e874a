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
fn a_plain_console_is_refused_off_loopback_unless_asked_for() {
    let at = |listen: &str, extra: Settings| {
        Settings {
            listen: Some(listen.parse().unwrap()),
            ..extra
        }
        .resolve()
        .unwrap()
        .plain_console_refusal()
    };
    assert_eq!(at("127.0.0.1:8080", Settings::default()), None);
    assert_eq!(at("[::1]:8080", Settings::default()), None);
    let why = at("0.0.0.0:8080", Settings::default()).expect("refused");
    assert!(why.contains("--console-listen 0.0.0.0:8443"), "{why}");
    assert!(why.contains("--console-insecure-http"), "{why}");
    let insecure = Settings {
        console_insecure_http: Some(true),
        ..Default::default()
    };
    assert_eq!(at("0.0.0.0:8080", insecure), None);
    let tls = Settings {
        console_listen: Some("0.0.0.0:8443".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(at("0.0.0.0:8080", tls), None);
}

#[test]
fn tls_settings_are_checked_together() {
    let err = |s: Settings| s.resolve().unwrap_err().to_string();
    let e = err(Settings {
        console_listen: Some("127.0.0.1:8443".parse().unwrap()),
        tls_cert: Some("a.crt".into()),
        ..Default::default()
    });
    assert!(e.contains("tls_key") && e.contains("give both"), "{e}");
    let e = err(Settings {
        tls_names: Some("scepd.example".into()),
        ..Default::default()
    });
    assert!(e.contains("console_listen"), "{e}");
    let e = err(Settings {
        console_listen: Some("127.0.0.1:8080".parse().unwrap()),
        ..Default::default()
    });
    assert!(e.contains("choose another port"), "{e}");
    let e = err(Settings {
        console_listen: Some("127.0.0.1:8443".parse().unwrap()),
        tls_names: Some("ok.example, not a name".into()),
        ..Default::default()
    });
    assert!(e.contains("tls_names") && e.contains("not a name"), "{e}");
    let c = Settings {
        console_listen: Some("127.0.0.1:8443".parse().unwrap()),
        tls_cert: Some("a.crt".into()),
        tls_key: Some("a.key".into()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    let tls = c.console_tls.expect("a console listener");
    assert_eq!(
        tls.source,
        crate::tls::TlsSource::Files {
            cert: "a.crt".into(),
            key: "a.key".into()
        }
    );
    let own = Settings {
        console_listen: Some("127.0.0.1:8443".parse().unwrap()),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert!(matches!(
        own.console_tls.map(|t| t.source),
        Some(crate::tls::TlsSource::SelfIssued { names }) if names.len() == 3
    ));
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
fn ocsp_cache_defaults_to_a_minute_and_is_bounded_by_a_day() {
    let c = Settings::default().resolve().unwrap();
    assert_eq!(c.ocsp_cache_seconds, 60);
    let none = Settings {
        ocsp_cache_seconds: Some(0),
        ..Default::default()
    };
    assert_eq!(none.resolve().unwrap().ocsp_cache_seconds, 0);
    let long = Settings {
        ocsp_cache_seconds: Some(86_401),
        ..Default::default()
    };
    let err = long.resolve().unwrap_err().to_string();
    assert!(err.contains("ocsp_cache_seconds"), "{err}");
}

#[test]
fn every_form_of_database_password_is_redacted() {
    for (given, shown) in [
        (
            "postgresql://u:pw1@h1:5432,h2:5432/scepd?target_session_attrs=read-write",
            "postgresql://u:***@h1:5432,h2:5432/scepd?target_session_attrs=read-write",
        ),
        (
            "postgresql://h1,h2/scepd?user=u&password=pw2&target_session_attrs=read-write",
            "postgresql://h1,h2/scepd?user=u&password=***&target_session_attrs=read-write",
        ),
        (
            "host=h1,h2 user=u password=pw3 dbname=scepd",
            "host=h1,h2 user=u password=*** dbname=scepd",
        ),
        (
            "host=h1 password='p w\\'4' dbname=scepd",
            "host=h1 password=*** dbname=scepd",
        ),
        ("host=h1 sslpassword=x", "host=h1 sslpassword=***"),
        // Not a password keyword: left alone.
        (
            "host=h1 application_name=mypassword=x",
            "host=h1 application_name=mypassword=x",
        ),
    ] {
        assert_eq!(redact_url(given), shown);
    }
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
