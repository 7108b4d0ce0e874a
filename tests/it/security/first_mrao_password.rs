//! The first MRAO's generated password goes to a 0600 file in the data
//! directory, never to the terminal or a container's log, and the console
//! accepts nothing from that officer but its change until it is changed.

use std::os::unix::fs::PermissionsExt;

use crate::console::{csrf_in, Client};
use crate::support::Scepd;

const NEW_PW: &str = "a-password-the-mrao-chose";

#[test]
fn the_generated_password_is_in_a_private_file_and_must_be_changed_first() {
    let db = server::testdb::test_db().unwrap();
    // An empty SCEPD_ADMIN_PASSWORD is no password: scepd generates one.
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_ADMIN_PASSWORD", "")],
    );
    let file = s.dir.path().join("initial-admin-password");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let generated = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(generated.len() >= 20, "{generated:?}");
    let log = s.log();
    assert!(
        !log.contains(&generated),
        "the password reached the log:\n{log}"
    );
    assert!(log.contains(&file.display().to_string()), "{log}");

    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", &generated).status, 303);
    let me = server::store::admins::by_username(&mut s.pg(), "admin")
        .unwrap()
        .unwrap()
        .id;
    let own = format!("/officers/{me}");
    // Every other page, and every other action, leads to the change.
    for path in ["/", "/requests", "/certificates", "/officers", "/api-keys"] {
        let r = c.get(path);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(
            r.location.as_deref(),
            Some(format!("{own}?msg=change-password").as_str()),
            "{path}"
        );
    }
    let page = c.get(&own);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Choose your own password now"),
        "{}",
        page.body
    );
    let token = csrf_in(&page.body);
    let r = c.post(
        "/challenges",
        &[
            ("csrf", &token),
            ("profile", "default"),
            ("organization", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(s.count("challenges"), 0, "a challenge was minted");

    let r = c.post(
        &format!("{own}/password"),
        &[
            ("csrf", &token),
            ("current_password", &generated),
            ("password", NEW_PW),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(c.get("/").status, 200);
    assert_eq!(c.get("/requests").status, 200);
    // The file's password is spent: it no longer logs in.
    let mut other = Client::new(&s);
    assert_ne!(other.login("admin", &generated).status, 303);
    assert_eq!(other.login("admin", NEW_PW).status, 303);
}

#[test]
fn a_configured_first_password_is_not_forced_to_change() {
    let s = Scepd::start();
    assert!(!s.dir.path().join("initial-admin-password").exists());
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", "test-admin-password").status, 303);
    assert_eq!(c.get("/").status, 200);
}
