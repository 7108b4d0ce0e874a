//! What leaves and what enters the console is inert. A certificate's CN
//! and SANs are chosen by whoever enrolls, so the CSV export neutralises a
//! cell a spreadsheet would run as a formula (OWASP "CSV Injection":
//! leading `=`, `+`, `-`, `@`, tab or CR get a `'`). An absurd challenge
//! lifetime is a refused field (console, API) or a clear CLI error, never
//! a panic or a 500.

use crate::console::{acme_with_sales_drao, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;
use server::wire::PkiStatus;

const ABSURD: &str = "999999999999999d";

#[test]
fn the_certificates_csv_neutralises_formula_cells() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let cns = ["=1+2", "+SUM(A1)", "-2+3", "@SUM(A1)"];
    for cn in cns {
        let ch = s
            .cli_ok(&["challenge", "mint", "--profile", "auto", "--org", "Acme"])
            .trim()
            .to_string();
        let rep = Device::new(cn, 2048).pkcs_req(&s, "auto", Some(&ch));
        assert_eq!(rep.status, PkiStatus::Success, "{cn}");
    }
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let (status, ct, body) = m.get_bytes("/certificates.csv");
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut rd = csv::Reader::from_reader(body.as_slice());
    let cells: Vec<String> = rd
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} in {cells:?}"
        );
    }
    for cn in cns {
        assert!(cells.contains(&format!("'{cn}")), "{cn} in {cells:?}");
    }
}

#[test]
fn an_absurd_challenge_lifetime_is_refused_everywhere() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = server::store::orgs::org_by_name(&mut s.pg(), "Acme")
        .unwrap()
        .unwrap()
        .id;

    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let token = m.csrf();
    let place = acme.to_string();
    for ttl in [ABSURD, "99999999999999999999999d", "-5m", "0h", "1e9s"] {
        let r = m.post(
            "/challenges",
            &[
                ("csrf", &token),
                ("profile", "auto"),
                ("place", &place),
                ("count", "1"),
                ("ttl", ttl),
            ],
        );
        assert_eq!(r.status, 422, "{ttl}: {}", r.body);
        assert!(r.body.contains("id=\"ttl-error\""), "{ttl}: {}", r.body);
    }

    let out = s.cli(&[
        "challenge",
        "mint",
        "--profile",
        "auto",
        "--org",
        "Acme",
        "--ttl",
        ABSURD,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ttl"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Acme"])
        .trim()
        .to_string();
    for body in [
        serde_json::json!({"profile": "auto", "organization_id": acme, "ttl_minutes": 999_999_999_999_999u64}),
        serde_json::json!({"profile": "auto", "organization_id": acme, "ttl_minutes": 43_201}),
    ] {
        let r = ureq::post(&format!("{}/api/v1/challenges", s.url))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        let (status, text) = match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("transport error {e}"),
        };
        assert_eq!(status, 422, "{body}: {text}");
        assert!(text.contains("ttl_minutes"), "{text}");
    }
    assert_eq!(crate::console::audit_count(&s, "challenge.minted"), 0);
}
