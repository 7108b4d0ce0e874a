//! The console and API over HTTPS (`--console-listen`), with real clients:
//! curl and Chromium for the console, ureq (rustls) for the API, OpenSSL
//! for the handshakes that read the served certificate. SCEP stays on the
//! plain listener; certificates from files reload on SIGHUP; bad
//! certificate files and a plain-HTTP console off loopback stop start-up
//! with a clear message.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use crate::console::{csrf_in, ADMIN_PW};
use crate::console_browser::{browser_with, login_at, Chromedriver};
use crate::support::{free_port, nix_kill, Scepd, BIN};

/// scepd with its console on HTTPS at 127.0.0.1:<port>, plus `extra`.
fn start_tls(extra: &[(&str, &str)]) -> (Scepd, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut env = vec![("SCEPD_CONSOLE_LISTEN", listen.as_str())];
    env.extend_from_slice(extra);
    let db = server::testdb::test_db().expect("test database");
    (
        Scepd::start_with(db, tempfile::tempdir().unwrap(), &env),
        port,
    )
}

/// curl with `args`, resolving localhost to 127.0.0.1 on `port`.
fn curl(port: u16, args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(args)
        .output()
        .expect("curl is installed")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The certificate the server presents in a fresh handshake for `sni`;
/// verified against `ca` (and the name) when given.
fn served_cert(port: u16, sni: &str, ca: Option<&Path>) -> Result<X509, String> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    match ca {
        Some(ca) => b.set_ca_file(ca).unwrap(),
        None => b.set_verify(SslVerifyMode::NONE),
    }
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let ssl = b
        .build()
        .connect(sni, tcp)
        .map_err(|e| format!("handshake for {sni}: {e}"))?;
    ssl.ssl()
        .peer_certificate()
        .ok_or_else(|| "no peer certificate".to_string())
}

fn serial(c: &X509) -> String {
    c.serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_string()
}

fn sans(c: &X509) -> Vec<String> {
    c.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .map(|n| match (n.dnsname(), n.ipaddress()) {
                    (Some(d), _) => format!("DNS:{d}"),
                    (_, Some(ip)) if ip.len() == 4 => {
                        format!(
                            "IP:{}",
                            std::net::Ipv4Addr::from(<[u8; 4]>::try_from(ip).unwrap())
                        )
                    }
                    (_, Some(ip)) => format!(
                        "IP:{}",
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap())
                    ),
                    _ => "other".into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

fn audit_count(s: &Scepd, event: &str) -> i64 {
    s.count(&format!("audit_log WHERE event = '{event}'"))
}

#[test]
fn curl_logs_in_over_https_with_host_prefixed_secure_cookies_and_hsts() {
    let (s, port) = start_tls(&[]);
    let ca = s.ca_pem_path();
    let ca = ca.to_str().unwrap();
    let base = format!("https://localhost:{port}");
    let jar = s.dir.path().join("cookies.txt");
    let jar = jar.to_str().unwrap();

    // The certificate is really checked: without scepd's CA curl refuses.
    let untrusted = curl(port, &["-o", "/dev/null", &format!("{base}/login")]);
    assert_eq!(untrusted.status.code(), Some(60), "{}", text(&untrusted));

    let page = curl(
        port,
        &[
            "--cacert",
            ca,
            "-D",
            "-",
            "-c",
            jar,
            &format!("{base}/login"),
        ],
    );
    let page = text(&page);
    assert!(
        page.starts_with("HTTP/2 200") || page.starts_with("HTTP/1.1 200"),
        "{page}"
    );
    assert_eq!(
        header(&page, "strict-transport-security"),
        ["max-age=31536000"]
    );
    let csrf_cookie = header(&page, "set-cookie").join("\n");
    assert!(
        csrf_cookie.starts_with("__Host-scepd_login_csrf="),
        "{csrf_cookie}"
    );
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(csrf_cookie.contains(attr), "{attr} in {csrf_cookie}");
    }
    assert!(!csrf_cookie.contains("Domain"), "{csrf_cookie}");

    let csrf = csrf_in(&page);
    let login = curl(
        port,
        &[
            "--cacert",
            ca,
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-b",
            jar,
            "-c",
            jar,
            "--data-urlencode",
            "username=admin",
            "--data-urlencode",
            &format!("password={ADMIN_PW}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
            &format!("{base}/login"),
        ],
    );
    let login = text(&login);
    assert!(login.contains(" 303"), "{login}");
    let session = header(&login, "set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Host-scepd_session="))
        .unwrap_or_else(|| panic!("a __Host- session cookie in {login}"))
        .to_string();
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );

    let dash = curl(port, &["--cacert", ca, "-b", jar, &format!("{base}/")]);
    assert!(text(&dash).contains("Dashboard"), "{}", text(&dash));

    // The audit log names the TCP peer of the TLS connection.
    let ip: Vec<String> = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            client_ip: String,
        }
        diesel::sql_query(
            "SELECT client_ip FROM audit_log WHERE event = 'console.login' AND client_ip IS NOT NULL",
        )
        .load::<Row>(&mut s.pg())
        .unwrap()
        .into_iter()
        .map(|r| r.client_ip)
        .collect()
    };
    assert_eq!(ip, ["127.0.0.1"]);

    // The plain listener serves SCEP, not the console or the API.
    let plain_login = ureq::get(&format!("{}/login", s.url)).call();
    assert!(
        matches!(plain_login, Err(ureq::Error::Status(404, _))),
        "{plain_login:?}"
    );
    let plain_api = ureq::get(&format!("{}/api/v1/profiles", s.url)).call();
    assert!(
        matches!(plain_api, Err(ureq::Error::Status(404, _))),
        "{plain_api:?}"
    );
    let caps = ureq::get(&format!("{}/scep?operation=GetCACaps", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(caps.contains("POSTPKIOperation"), "{caps}");
    let ca_cert = ureq::get(&format!("{}/scep?operation=GetCACert", s.url))
        .call()
        .unwrap();
    assert_eq!(ca_cert.status(), 200);
    // A device enrolls over plain HTTP as before.
    let dev = crate::device::Device::new("tls-split-device", 2048);
    let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
    assert_eq!(rep.status, server::wire::PkiStatus::Success, "{rep:?}");
}

#[test]
fn the_self_issued_certificate_names_the_configured_hosts_and_survives_restarts() {
    let names = "scepd.test,127.0.0.1,2001:db8::5";
    let (s, port) = start_tls(&[("SCEPD_TLS_NAMES", names)]);
    let ca = s.ca_pem_path();
    let first = served_cert(port, "scepd.test", Some(&ca)).unwrap();
    let mut got = sans(&first);
    got.sort();
    assert_eq!(got, ["DNS:scepd.test", "IP:127.0.0.1", "IP:2001:db8::5"]);
    let text = crate::support::openssl_text(&first);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(
        text.contains("Issuer: ") && text.contains("scepd CA"),
        "{text}"
    );
    // The handshake checks the name (SslConnector verifies the host): one
    // the certificate was not issued for fails.
    let other = served_cert(port, "other.test", Some(&ca)).unwrap_err();
    assert!(other.contains("other.test"), "{other}");

    use std::os::unix::fs::PermissionsExt;
    let key = s.dir.path().join("tls/console.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Encrypted at rest under the keys' passphrase, like the CA's.
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
    assert_eq!(audit_count(&s, "tls.certificate_issued"), 1);

    // Restarted with the same names: the same certificate.
    let listen = format!("127.0.0.1:{port}");
    let s = s.restart_with(&[
        ("SCEPD_CONSOLE_LISTEN", &listen),
        ("SCEPD_TLS_NAMES", names),
    ]);
    let again = served_cert(port, "scepd.test", Some(&ca)).unwrap();
    assert_eq!(serial(&again), serial(&first));
    assert_eq!(audit_count(&s, "tls.certificate_issued"), 1);

    // Other names: a new one, audited.
    let s = s.restart_with(&[
        ("SCEPD_CONSOLE_LISTEN", &listen),
        ("SCEPD_TLS_NAMES", "console.scepd.test"),
    ]);
    let renamed = served_cert(port, "console.scepd.test", Some(&ca)).unwrap();
    assert_ne!(serial(&renamed), serial(&first));
    assert_eq!(sans(&renamed), ["DNS:console.scepd.test"]);
    assert_eq!(audit_count(&s, "tls.certificate_issued"), 2);
}

/// A self-signed certificate for localhost and its key, via the openssl CLI.
fn self_signed(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", &format!("/CN={stem}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (cert, key)
}

/// Wait until a handshake shows serial `want`.
fn wait_for_serial(port: u16, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = served_cert(port, "localhost", None).map(|c| serial(&c));
        if got.as_deref() == Ok(want) || Instant::now() > deadline {
            return got.unwrap_or_else(|e| e);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn certificate_files_are_reloaded_on_sighup_and_a_bad_pair_keeps_the_old_one() {
    let files = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = self_signed(files.path(), "a");
    let (b_cert, b_key) = self_signed(files.path(), "b");
    let (cert, key) = (files.path().join("tls.crt"), files.path().join("tls.key"));
    std::fs::copy(&a_cert, &cert).unwrap();
    std::fs::copy(&a_key, &key).unwrap();
    let (s, port) = start_tls(&[
        ("SCEPD_TLS_CERT", cert.to_str().unwrap()),
        ("SCEPD_TLS_KEY", key.to_str().unwrap()),
    ]);
    let load = |p: &Path| X509::from_pem(&std::fs::read(p).unwrap()).unwrap();
    let (a, b) = (load(&a_cert), load(&b_cert));
    // Verified against the file itself: it is what is served.
    let served = served_cert(port, "localhost", Some(&a_cert)).unwrap();
    assert_eq!(serial(&served), serial(&a));

    std::fs::copy(&b_cert, &cert).unwrap();
    std::fs::copy(&b_key, &key).unwrap();
    assert!(nix_kill(s.pid(), "HUP"));
    assert_eq!(wait_for_serial(port, &serial(&b)), serial(&b));
    // The plain listener was not dropped either.
    assert_eq!(
        ureq::get(&format!("{}/healthz", s.url))
            .call()
            .unwrap()
            .status(),
        200
    );

    // A key that is not the certificate's: refused, B stays.
    std::fs::copy(&a_key, &key).unwrap();
    assert!(nix_kill(s.pid(), "HUP"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.log().contains("NOT reloaded") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.log();
    assert!(
        log.contains("NOT reloaded") && log.contains("does not match"),
        "{log}"
    );
    assert_eq!(
        serial(&served_cert(port, "localhost", None).unwrap()),
        serial(&b)
    );
}

#[test]
fn the_api_answers_over_tls_to_ureq_trusting_only_the_scepd_ca() {
    let (s, port) = start_tls(&[]);
    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            s.ca_cert().to_der().unwrap(),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = ureq::AgentBuilder::new()
        .tls_config(Arc::new(tls))
        .resolver(move |_: &str| Ok(vec![([127, 0, 0, 1], port).into()]))
        .build();
    let r = agent
        .get(&format!("https://localhost:{port}/api/v1/profiles"))
        .set("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.into_string().unwrap();
    assert!(body.contains("\"default\""), "{body}");
    // The default ureq agent trusts public roots only: refused.
    let public = ureq::get(&format!("https://127.0.0.1:{port}/api/v1/profiles")).call();
    assert!(
        matches!(public, Err(ureq::Error::Transport(_))),
        "{public:?}"
    );
}

/// `scepd serve` with `env` that must stop before serving: its stderr.
fn refused(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("SCEPD_DATA_DIR", dir.path())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scepd kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing was started: no database cluster, no CA.
    assert!(!dir.path().join("ca/ca.crt").exists());
    err
}

#[test]
fn a_plain_console_off_loopback_is_refused_with_the_way_out() {
    let listen = format!("0.0.0.0:{}", free_port());
    let err = refused(&[("SCEPD_LISTEN", &listen)]);
    assert!(
        err.contains("refusing to serve the console and API over plain HTTP"),
        "{err}"
    );
    assert!(
        err.contains("--console-listen") && err.contains("--console-insecure-http"),
        "{err}"
    );
}

#[test]
fn a_key_that_does_not_match_or_a_missing_certificate_stops_start_up() {
    let files = tempfile::tempdir().unwrap();
    let (a_cert, _) = self_signed(files.path(), "a");
    let (_, b_key) = self_signed(files.path(), "b");
    let console = format!("127.0.0.1:{}", free_port());
    let err = refused(&[
        ("SCEPD_CONSOLE_LISTEN", &console),
        ("SCEPD_TLS_CERT", a_cert.to_str().unwrap()),
        ("SCEPD_TLS_KEY", b_key.to_str().unwrap()),
    ]);
    assert!(
        err.contains("b.key does not match the certificate in"),
        "{err}"
    );
    let missing = files.path().join("missing.crt");
    let err = refused(&[
        ("SCEPD_CONSOLE_LISTEN", &console),
        ("SCEPD_TLS_CERT", missing.to_str().unwrap()),
        ("SCEPD_TLS_KEY", b_key.to_str().unwrap()),
    ]);
    assert!(
        err.contains("cannot read") && err.contains("missing.crt"),
        "{err}"
    );
    let err = refused(&[
        ("SCEPD_CONSOLE_LISTEN", &console),
        ("SCEPD_TLS_CERT", a_cert.to_str().unwrap()),
    ]);
    assert!(err.contains("give both"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_over_https_and_holds_a_secure_host_cookie() {
    let (s, port) = start_tls(&[]);
    // Chromium accepts exactly this server key (its SPKI hash), as it
    // would after the CA were installed; nothing else is waved through.
    let served = served_cert(port, "localhost", Some(&s.ca_pem_path())).unwrap();
    let spki = served.public_key().unwrap().public_key_to_der().unwrap();
    use base64::Engine;
    let pin = base64::engine::general_purpose::STANDARD.encode(openssl::sha::sha256(&spki));
    let cd = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let d = browser_with(
        &cd,
        profile.path(),
        &[format!("--ignore-certificate-errors-spki-list={pin}")],
    )
    .await;
    let base = format!("https://localhost:{port}");
    login_at(&d, &base).await;
    assert!(d
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with("https://"));
    let cookie = d.get_named_cookie("__Host-scepd_session").await.unwrap();
    assert_eq!(cookie.secure, Some(true));
    assert_eq!(cookie.http_only, Some(true));
    d.quit().await.unwrap();
}
