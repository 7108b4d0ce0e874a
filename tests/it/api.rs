//! Issue 3: the `/api/v1` JSON API for MDMs against a real scepd and
//! PostgreSQL: API keys scoped to organizations and revocable, minting
//! challenges that micromdm's scepclient then uses, request status and a
//! device's certificates, JSON errors with stable codes, OpenAPI.

use serde_json::{json, Value};

use crate::challenges::audit_of;
use crate::support::{scepclient, Scepd};
use server::store::audit::AuditKind;

/// (status, JSON body) of an API call.
pub(crate) fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = ureq::request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let (code, resp) = match res {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("transport error {e}"),
    };
    assert!(
        resp.content_type() == "application/json",
        "{url}: {}",
        resp.content_type()
    );
    (
        code,
        serde_json::from_str(&resp.into_string().unwrap()).unwrap(),
    )
}

fn assert_error(r: &(u16, Value), status: u16, code: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["error"]["code"], code, "{}", r.1);
    assert!(r.1["error"]["message"].is_string());
}

#[test]
fn scoped_key_mints_for_its_organization_only_and_follows_the_enrollment() {
    let s = Scepd::start();
    let a: i64 = s.cli_ok(&["org", "create", "OrgA"]).trim().parse().unwrap();
    let b: i64 = s.cli_ok(&["org", "create", "OrgB"]).trim().parse().unwrap();
    s.cli_ok(&[
        "profile", "create", "laptops", "--org", "OrgA", "--org", "OrgB",
    ]);
    let key_a = s
        .cli_ok(&["api-key", "create", "--name", "mdm-a", "--org", "OrgA"])
        .trim()
        .to_string();
    let key_b = s
        .cli_ok(&["api-key", "create", "--name", "mdm-b", "--org", "OrgB"])
        .trim()
        .to_string();
    assert!(key_a.starts_with("scepd_"));
    let api = format!("{}/api/v1", s.url);

    // Mint for A, enroll with scepclient.
    let r = call(
        "POST",
        &format!("{api}/challenges"),
        Some(&key_a),
        Some(
            json!({ "profile": "laptops", "organization_id": a, "device_identity": "laptop-1", "ttl_minutes": 30 }),
        ),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    let ch = r.1["challenge"].as_str().unwrap().to_string();
    assert_eq!(r.1["device_identity"], "laptop-1");
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(work.path(), &s.scep_url("laptops"), &ch, "laptop-1");
    assert!(run.ok, "{}\n{}", run.output, s.log());
    let serial = hex::encode_upper(run.cert.unwrap().serial_number().to_bn().unwrap().to_vec());

    // A key for A cannot mint for B.
    let r = call(
        "POST",
        &format!("{api}/challenges"),
        Some(&key_a),
        Some(json!({ "profile": "laptops", "organization_id": b })),
    );
    assert_error(&r, 403, "forbidden");

    // Bulk: a count, or one per device.
    let r = call(
        "POST",
        &format!("{api}/challenges/bulk"),
        Some(&key_b),
        Some(json!({ "profile": "laptops", "organization_id": b, "count": 3 })),
    );
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["challenges"].as_array().unwrap().len(), 3);
    let r = call(
        "POST",
        &format!("{api}/challenges/bulk"),
        Some(&key_b),
        Some(
            json!({ "profile": "laptops", "organization_id": b, "device_identities": ["d1", "d2"] }),
        ),
    );
    let ids: Vec<&str> = r.1["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["device_identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d1", "d2"]);
    let r = call(
        "POST",
        &format!("{api}/challenges/bulk"),
        Some(&key_b),
        Some(
            json!({ "profile": "laptops", "organization_id": b, "count": 1, "device_identities": ["x"] }),
        ),
    );
    assert_error(&r, 400, "invalid_request");
    assert_eq!(audit_of(&s, AuditKind::ChallengeMinted).len(), 6);

    // Profiles, with only the caller's organizations.
    let r = call("GET", &format!("{api}/profiles"), Some(&key_a), None);
    let p = r.1["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "laptops")
        .unwrap()
        .clone();
    assert_eq!(p["organizations"], json!([a]));
    assert_eq!(p["scep_url"], format!("{}/scep/laptops", s.url));

    // The request by transactionID and by ID; invisible to B's key.
    let txid = {
        let mut pg = s.pg();
        use diesel::prelude::*;
        use server::store::schema::enrollment_requests as er;
        er::table
            .select(er::transaction_id)
            .first::<String>(&mut pg)
            .unwrap()
    };
    // scepclient's transactionIDs are base64: escape for the query.
    let q: String = txid
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let r = call(
        "GET",
        &format!("{api}/requests?transaction_id={q}"),
        Some(&key_a),
        None,
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["status"], "issued");
    assert_eq!(
        r.1["certificate_serial"]
            .as_str()
            .unwrap()
            .trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    let id = r.1["id"].as_i64().unwrap();
    let r2 = call("GET", &format!("{api}/requests/{id}"), Some(&key_a), None);
    assert_eq!(r2.1["transaction_id"], txid.as_str());
    assert_error(
        &call("GET", &format!("{api}/requests/{id}"), Some(&key_b), None),
        404,
        "not_found",
    );

    // The device's certificates.
    let r = call(
        "GET",
        &format!("{api}/devices/laptop-1/certificates"),
        Some(&key_a),
        None,
    );
    let certs = r.1["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["status"], "valid");
    assert!(certs[0]["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));
    let r = call(
        "GET",
        &format!("{api}/devices/laptop-1/certificates"),
        Some(&key_b),
        None,
    );
    assert_eq!(r.1["certificates"], json!([]));

    // Revocation takes effect at once; creation and revocation are audited.
    let list = s.cli_ok(&["api-key", "list"]);
    let id_a = list
        .lines()
        .find(|l| l.contains("mdm-a"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    s.cli_ok(&["api-key", "revoke", &id_a]);
    assert_error(
        &call("GET", &format!("{api}/profiles"), Some(&key_a), None),
        401,
        "unauthorized",
    );
    assert_eq!(
        call("GET", &format!("{api}/profiles"), Some(&key_b), None).0,
        200
    );
    assert_eq!(audit_of(&s, AuditKind::ApiKeyCreated).len(), 2);
    assert_eq!(audit_of(&s, AuditKind::ApiKeyRevoked).len(), 1);
    // Tokens are stored hashed only.
    let all = server::store::audit::recent(&mut s.pg(), None, 1000).unwrap();
    assert!(all.iter().all(|e| !e.details.to_string().contains(&key_b)));
}

#[test]
fn errors_are_json_with_stable_codes_and_openapi_is_served() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_CHALLENGE_MAX_UNUSED", "2")],
    );
    let key = s
        .cli_ok(&["api-key", "create", "--name", "k", "--org", "Default"])
        .trim()
        .to_string();
    let api = format!("{}/api/v1", s.url);
    let org: i64 = s
        .cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    assert_error(
        &call("GET", &format!("{api}/profiles"), None, None),
        401,
        "unauthorized",
    );
    assert_error(
        &call(
            "GET",
            &format!("{api}/profiles"),
            Some("scepd_notakey"),
            None,
        ),
        401,
        "unauthorized",
    );
    assert_error(
        &call("GET", &format!("{api}/nope"), Some(&key), None),
        404,
        "not_found",
    );
    assert_error(
        &call(
            "POST",
            &format!("{api}/challenges"),
            Some(&key),
            Some(json!({ "profile": 1 })),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        &call(
            "POST",
            &format!("{api}/challenges"),
            Some(&key),
            Some(json!({ "profile": "missing", "organization_id": org })),
        ),
        404,
        "not_found",
    );
    s.cli_ok(&["org", "add-department", "Default", "Lab"]);
    s.cli_ok(&["profile", "create", "lab-only", "--org", "Default"]);
    let r = call(
        "POST",
        &format!("{api}/challenges"),
        Some(&key),
        Some(json!({ "profile": "default", "organization_id": org, "ttl_minutes": 0 })),
    );
    assert_error(&r, 400, "invalid_request");
    let bulk = json!({ "profile": "default", "organization_id": org, "count": 2 });
    assert_eq!(
        call(
            "POST",
            &format!("{api}/challenges/bulk"),
            Some(&key),
            Some(bulk.clone())
        )
        .0,
        201
    );
    assert_error(
        &call(
            "POST",
            &format!("{api}/challenges/bulk"),
            Some(&key),
            Some(bulk),
        ),
        429,
        "limit_reached",
    );

    let (code, doc) = call("GET", &format!("{api}/openapi.json"), None, None);
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/challenges"]["post"].is_object());
}

/// The profile `id` as `GET /api/v1/profiles` lists it for `token`.
pub(crate) fn listed_profile(s: &Scepd, token: &str, id: &str) -> Value {
    let (status, body) = call(
        "GET",
        &format!("{}/api/v1/profiles", s.url),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {body}"))
}
