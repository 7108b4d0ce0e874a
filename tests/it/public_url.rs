//! The SCEP URL devices are given comes from the public URL: exported
//! `.mobileconfig` files, the console and the API show it. Left at its
//! loopback default, `serve` warns, the console shows a banner and
//! `scepd profile export` refuses unless forced.

use std::process::Command;

use plist::Value;
use serde_json::json;

use crate::api::call;
use crate::console::{Client, ADMIN_PW};
use crate::support::{Scepd, BIN};

const PUBLIC: &str = "http://scep.example.com:8080";

fn reachable() -> Scepd {
    let db = server::testdb::test_db().expect("test database");
    Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_PUBLIC_URL", PUBLIC)],
    )
}

/// `scepd profile export --unsigned` into `file`, with `extra` arguments
/// and the server's public URL (the CLI reads the configuration as serve does).
fn export(
    s: &Scepd,
    public_url: Option<&str>,
    file: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "profile",
        "export",
        "--unsigned",
        "--device",
        "iphone-9",
        "-o",
    ])
    .arg(file)
    .args(extra)
    .envs(s.cli_env());
    if let Some(u) = public_url {
        cmd.env("SCEPD_PUBLIC_URL", u);
    }
    cmd.output().unwrap()
}

fn scep_url_in(file: &std::path::Path) -> String {
    let top = Value::from_file(file).unwrap().into_dictionary().unwrap();
    top.get("PayloadContent")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_dictionary)
        .find(|p| {
            p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.security.scep")
        })
        .and_then(|p| p.get("PayloadContent"))
        .and_then(Value::as_dictionary)
        .and_then(|c| c.get("URL"))
        .and_then(Value::as_string)
        .unwrap()
        .to_string()
}

#[test]
fn a_loopback_public_url_is_warned_about_at_start_and_in_the_console() {
    let s = Scepd::start();
    let log = s.log();
    assert!(
        log.contains("names a loopback address") && log.contains("SCEPD_PUBLIC_URL"),
        "{log}"
    );
    let mut c = Client::new(&s);
    let login = c.get("/login");
    assert!(
        login.body.contains("id=\"public-url-warning\""),
        "{}",
        login.body
    );
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    for page in ["/", "/profiles"] {
        let a = c.get(page);
        assert_eq!(a.status, 200, "{page}");
        assert!(
            a.body.contains("id=\"public-url-warning\""),
            "{page}: {}",
            a.body
        );
        assert!(a.body.contains(&s.url), "{page}");
    }
}

#[test]
fn a_reachable_public_url_is_the_scep_url_in_exports_the_console_and_the_api() {
    let s = reachable();
    let want = format!("{PUBLIC}/scep/default");
    assert!(!s.log().contains("loopback"), "{}", s.log());

    // The console: no banner, the device URL on the profiles page.
    let mut c = Client::new(&s);
    assert!(!c.get("/login").body.contains("public-url-warning"));
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    let page = c.get("/profiles").body;
    assert!(page.contains(&format!("<code>{want}</code>")), "{page}");
    assert!(!page.contains("public-url-warning"));
    assert!(!c.get("/").body.contains("public-url-warning"));

    // The API: listings and configuration profiles.
    let k = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let api = format!("{}/api/v1", s.url);
    let r = call("GET", &format!("{api}/profiles"), Some(&k), None);
    assert_eq!(r.1["profiles"][0]["scep_url"], want.as_str(), "{}", r.1);
    let org = r.1["profiles"][0]["organizations"][0].as_i64().unwrap();
    let resp = ureq::post(&format!("{api}/mobileconfig"))
        .set("Authorization", &format!("Bearer {k}"))
        .set("Content-Type", "application/json")
        .send_string(&json!({ "profile": "default", "organization_id": org, "device_identity": "iphone-9", "signed": false }).to_string())
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("api.mobileconfig");
    std::fs::write(&file, resp.into_string().unwrap()).unwrap();
    assert_eq!(scep_url_in(&file), want);

    // The CLI export needs no --force here.
    let file = work.path().join("cli.mobileconfig");
    let out = export(&s, Some(PUBLIC), &file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(scep_url_in(&file), want);
}

#[test]
fn profile_export_refuses_a_loopback_public_url_unless_forced() {
    let s = Scepd::start();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("p.mobileconfig");
    let out = export(&s, None, &file, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("loopback") && err.contains("--force"), "{err}");
    // Refused before anything was minted or written.
    assert!(!file.exists());
    assert_eq!(s.count("challenges"), 0);

    let out = export(&s, None, &file, &["--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(scep_url_in(&file), s.scep_url("default"));
    assert_eq!(s.count("challenges"), 1);
}
