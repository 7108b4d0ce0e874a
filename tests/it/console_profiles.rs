//! The console's profiles page (issue 5): every profile in scope with its
//! SCEP URL, and a configuration-profile download that embeds a fresh
//! one-time challenge or, when the officer chooses, a verified access code.

use crate::console::{audit_count, Client, ADMIN_PW};
use crate::support::Scepd;

/// POST a console form and return (status, body bytes).
fn post_bytes(s: &Scepd, c: &Client, path: &str, form: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let cookie = c
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = match ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&format!("{}{path}", s.url))
        .set("Cookie", &cookie)
        .send_form(form)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = r.status();
    let mut body = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    (status, body)
}

#[test]
fn profiles_page_lists_scep_urls_and_downloads_with_a_challenge_or_an_access_code() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "wifi", "--approval", "manual"]);
    let out = std::process::Command::new(crate::support::BIN)
        .args([
            "access-code",
            "create",
            "--org",
            "Default",
            "--label",
            "lobby",
            "--code",
            "correct-horse-battery",
        ])
        .envs(s.cli_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    let page = c.get("/profiles");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("{}/scep/wifi", s.url)),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("{}/scep/default", s.url)));
    let token = c.csrf();

    let minted = audit_count(&s, "challenge.minted");
    let form = |code: &'static str| -> [(&'static str, String); 5] {
        [
            ("csrf", token.clone()),
            ("profile", "wifi".into()),
            ("place", "1".into()),
            ("device", "lobby-ipad".into()),
            ("access_code", code.into()),
        ]
    };
    fn as_refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        f.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    // A wrong access code is refused; nothing is minted instead.
    let (st, body) = post_bytes(
        &s,
        &c,
        "/challenges/mobileconfig",
        &as_refs(&form("not-the-code")),
    );
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not an access code"));
    // The right one is embedded, signed, and no challenge is minted.
    let (st, body) = post_bytes(
        &s,
        &c,
        "/challenges/mobileconfig",
        &as_refs(&form("correct-horse-battery")),
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(openssl::pkcs7::Pkcs7::from_der(&body)
        .unwrap()
        .signed()
        .is_some());
    assert!(String::from_utf8_lossy(&body).contains("correct-horse-battery"));
    assert_eq!(audit_count(&s, "challenge.minted"), minted);
    // Without a code, a one-time challenge is minted into the file.
    let (st, _) = post_bytes(&s, &c, "/challenges/mobileconfig", &as_refs(&form("")));
    assert_eq!(st, 200);
    assert_eq!(audit_count(&s, "challenge.minted"), minted + 1);
}
