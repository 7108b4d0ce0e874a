//! An officer's password is the officer's. Changing one's own asks for the
//! current one (a session left open is not enough) and ends one's other
//! sessions; an officer cannot set the password of another of its own rank
//! (an MRAO may set anyone's but its own through the reset path). Failed
//! logins are counted before the password is checked, in one step, per
//! account and client address: parallel guesses cannot exceed the limit,
//! and guesses from one address lock nobody out elsewhere.

use std::sync::{Arc, Barrier};

use crate::console::{acme_with_sales_drao, csrf_in, Client, ADMIN_PW};
use crate::support::Scepd;

const NEW_PW: &str = "another-long-password";

fn id_of(s: &Scepd, name: &str) -> i64 {
    server::store::admins::by_username(&mut s.pg(), name)
        .unwrap()
        .unwrap()
        .id
}

fn logged_in(s: &Scepd, user: &str, pw: &str) -> Client {
    let mut c = Client::new(s);
    let r = c.login(user, pw);
    assert_eq!(r.status, 303, "login of {user}: {}", r.body);
    c
}

fn set_password(c: &mut Client, id: i64, fields: &[(&str, &str)]) -> u16 {
    let token = csrf_in(&c.get(&format!("/officers/{id}")).body);
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    c.post(&format!("/officers/{id}/password"), &form).status
}

fn officer(s: &Scepd, name: &str, role: &str, dept: Option<&str>) {
    let mut args = vec![
        "admin",
        "create",
        name,
        "--role",
        role,
        "--password-env",
        "SCEPD_ADMIN_PASSWORD",
    ];
    if role != "mrao" {
        args.extend(["--org", "Acme"]);
    }
    if let Some(d) = dept {
        args.extend(["--department", d]);
    }
    s.cli_ok(&args);
}

#[test]
fn changing_ones_own_password_needs_the_current_one_and_ends_other_sessions() {
    let s = Scepd::start();
    let me = id_of(&s, "admin");
    let mut here = logged_in(&s, "admin", ADMIN_PW);
    let mut elsewhere = logged_in(&s, "admin", ADMIN_PW);

    for current in [None, Some("not-the-password")] {
        let mut f = vec![("password", NEW_PW)];
        if let Some(c) = current {
            f.push(("current_password", c));
        }
        assert_eq!(set_password(&mut here, me, &f), 422, "{current:?}");
        assert_eq!(Client::new(&s).login("admin", NEW_PW).status, 401);
    }
    let ok = set_password(
        &mut here,
        me,
        &[("password", NEW_PW), ("current_password", ADMIN_PW)],
    );
    assert_eq!(ok, 303);
    assert_eq!(here.get("/").status, 200, "this session stays");
    let gone = elsewhere.get("/");
    assert_eq!(gone.status, 303, "the other session ended");
    assert_eq!(gone.location.as_deref(), Some("/login"));
    assert_eq!(Client::new(&s).login("admin", NEW_PW).status, 303);
}

#[test]
fn no_officer_sets_the_password_of_an_equal() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    officer(&s, "acme-rao", "rao", None);
    officer(&s, "acme-rao-2", "rao", None);
    officer(&s, "sales-officer-2", "drao", Some("Sales"));
    officer(&s, "second-mrao", "mrao", None);
    let pw = [("password", NEW_PW)];

    let mut rao = logged_in(&s, "acme-rao", ADMIN_PW);
    assert_eq!(set_password(&mut rao, id_of(&s, "acme-rao-2"), &pw), 403);
    let mut drao = logged_in(&s, "sales-officer", ADMIN_PW);
    assert_eq!(
        set_password(&mut drao, id_of(&s, "sales-officer-2"), &pw),
        403
    );
    for name in ["acme-rao-2", "sales-officer-2"] {
        assert_eq!(Client::new(&s).login(name, NEW_PW).status, 401, "{name}");
    }
    // Downwards is allowed, and an MRAO may reset any other officer.
    assert_eq!(
        set_password(&mut rao, id_of(&s, "sales-officer-2"), &pw),
        303
    );
    let mut m = logged_in(&s, "admin", ADMIN_PW);
    assert_eq!(set_password(&mut m, id_of(&s, "acme-rao-2"), &pw), 303);
    assert_eq!(set_password(&mut m, id_of(&s, "second-mrao"), &pw), 303);
    for name in ["acme-rao-2", "sales-officer-2", "second-mrao"] {
        assert_eq!(Client::new(&s).login(name, NEW_PW).status, 303, "{name}");
    }
}

/// `console.login_failed` entries for `user` with `reason`.
fn failures(s: &Scepd, user: &str, reason: &str) -> i64 {
    s.count(&format!(
        "audit_log WHERE event = 'console.login_failed' AND actor = '{user}' \
         AND details->>'reason' = '{reason}'"
    ))
}

#[test]
fn parallel_wrong_passwords_never_exceed_the_limit() {
    let s = Scepd::start();
    const THREADS: usize = 24;
    let barrier = Arc::new(Barrier::new(THREADS));
    let statuses: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|i| {
                let (b, s) = (barrier.clone(), &s);
                sc.spawn(move || {
                    let mut c = Client::new(s);
                    let token = csrf_in(&c.get("/login").body);
                    b.wait();
                    let pw = format!("wrong-password-{i}");
                    c.post(
                        "/login",
                        &[("csrf", &token), ("username", "admin"), ("password", &pw)],
                    )
                    .status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let verified = statuses.iter().filter(|st| **st == 401).count();
    // The console's per-account limit (web::auth::MAX_PER_ACCOUNT).
    assert!(verified <= 5, "{verified} passwords checked: {statuses:?}");
    assert_eq!(
        statuses.iter().filter(|st| **st == 429).count(),
        THREADS - verified
    );
    assert!(failures(&s, "admin", "bad credentials") <= 5);
    // Locked out now, even with the right password, from this address.
    assert_eq!(Client::new(&s).login("admin", ADMIN_PW).status, 429);
}

#[test]
fn guesses_from_one_address_lock_nobody_out_elsewhere() {
    let s = Scepd::start();
    // Each failure as another address would record it: a guesser at
    // 192.0.2.7 (TEST-NET-1, never contacted) used up its attempts.
    let mut conn = s.pg();
    for _ in 0..20 {
        server::store::sessions::record_failure(&mut conn, "admin", "192.0.2.7").unwrap();
    }
    drop(conn);
    assert_eq!(Client::new(&s).login("admin", ADMIN_PW).status, 303);
}
