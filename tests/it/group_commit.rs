//! The one-statement enrollment written in batches (`store::issue_tx`,
//! `store::group_commit`) against real PostgreSQL: every enrollment of a
//! batch is written whole or not at all, a refused one costs the others
//! nothing, and answers do not depend on how enrollments were batched.

use std::sync::Arc;

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Text};
use server::store::group_commit::GroupCommit;
use server::store::issue_tx::{self, IssueRow};
use server::store::StoreError;

struct Db {
    _db: server::testdb::TestDb,
    url: String,
    profile_id: i64,
}

/// An organization, a profile and `challenges` unused challenges whose
/// secret hashes are `[k; 32]` for k in 0..challenges.
fn seeded(challenges: u8) -> Db {
    let db = server::testdb::test_db().expect("test database");
    let url = db.url.clone();
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO organizations (name) VALUES ('Batch');
         INSERT INTO device_profiles (profile_id, name) VALUES ('batch', 'Batch');
         INSERT INTO challenges (secret_hash, profile_id, organization_id, expires_at, created_by)
         SELECT decode(repeat(lpad(to_hex(k), 2, '0'), 32), 'hex'), p.id, o.id,
                now() + interval '1 day', 'test'
           FROM generate_series(0, {}) k, organizations o, device_profiles p;",
        i32::from(challenges) - 1
    ))
    .unwrap();
    let profile_id = count(&mut conn, "SELECT id AS n FROM device_profiles");
    Db {
        _db: db,
        url,
        profile_id,
    }
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

/// Enrollment `k`, with challenge `secret`.
fn row(db: &Db, k: u32, secret: u8) -> IssueRow {
    IssueRow {
        secret_hash: vec![secret; 32],
        profile_id: db.profile_id,
        profile_revision: 1,
        device_identity: Some(format!("dev-{k}")),
        lockout_key: "192.0.2.1".into(),
        window_start: Utc::now(),
        failure_limit: 5,
        transaction_id: format!("tx-{k}"),
        public_key_sha256: format!("key-{k}").into_bytes(),
        message_type: "PKCSReq",
        request_subject: format!("CN=dev-{k}"),
        common_name: Some(format!("dev-{k}")),
        sans: vec![format!("dev-{k}.example.com"), "shared.example.com".into()],
        key_desc: "RSA 2048".into(),
        csr_der: vec![1, 2, 3],
        client_ip: Some("192.0.2.1".into()),
        serial: format!("{:040X}", 0xC0DE_0000u64 + u64::from(k)),
        cert_subject: format!("CN=dev-{k}"),
        not_before: Utc::now(),
        not_after: Utc::now() + Duration::days(365),
        fingerprint_sha256: format!("fp-{k}").into_bytes(),
        issuer_sha256: vec![9; 32],
        der: format!("der-{k}").into_bytes(),
        challenge_details: serde_json::json!({ "transaction_id": format!("tx-{k}") }),
        issued_details: serde_json::json!({ "transaction_id": format!("tx-{k}") }),
        mail_payload: serde_json::json!({}),
    }
}

#[derive(QueryableByName, Debug)]
struct Whole {
    #[diesel(sql_type = Text)]
    transaction_id: String,
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = BigInt)]
    audit: i64,
    #[diesel(sql_type = Text)]
    sans: String,
    #[diesel(sql_type = Bytea)]
    der: Vec<u8>,
}

/// Per stored request: its certificate (pointing back), history and audit.
fn stored(conn: &mut PgConnection) -> Vec<Whole> {
    diesel::sql_query(
        "SELECT r.transaction_id,
                (SELECT count(*) FROM request_events e WHERE e.request_id = r.id) AS events,
                (SELECT count(*) FROM audit_log a
                  WHERE a.details->>'transaction_id' = r.transaction_id
                    AND (a.event = 'challenge.used'
                         OR (a.details->>'request_id')::bigint = r.id)) AS audit,
                array_to_string(c.sans, ',') AS sans, c.der
           FROM enrollment_requests r JOIN certificates c ON c.id = r.certificate_id
          WHERE c.request_id = r.id AND r.status = 'issued'
          ORDER BY r.transaction_id",
    )
    .load(conn)
    .unwrap()
}

#[test]
fn a_batch_writes_every_enrollment_whole() {
    let db = seeded(5);
    let mut conn = PgConnection::establish(&db.url).unwrap();
    let rows: Vec<IssueRow> = (0..5).map(|k| row(&db, k, k as u8)).collect();
    let out = issue_tx::issue_batch(&mut conn, &rows).unwrap();
    assert!(out.iter().all(Option::is_some), "{out:?}");
    let ids: std::collections::HashSet<i64> =
        out.iter().map(|w| w.unwrap().certificate_id).collect();
    assert_eq!(ids.len(), 5, "distinct certificates");

    let stored = stored(&mut conn);
    assert_eq!(stored.len(), 5);
    for (k, w) in stored.iter().enumerate() {
        assert_eq!(w.transaction_id, format!("tx-{k}"));
        assert_eq!((w.events, w.audit), (2, 2), "{w:?}");
        assert_eq!(w.sans, format!("dev-{k}.example.com,shared.example.com"));
        assert_eq!(
            w.der,
            format!("der-{k}").into_bytes(),
            "each row its own values"
        );
    }
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM challenges WHERE used_at IS NOT NULL"
        ),
        5
    );
}

#[test]
fn refused_enrollments_write_nothing_and_cost_the_others_nothing() {
    let db = seeded(4);
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(
        "INSERT INTO challenge_failures (client_ip, window_start, count)
         VALUES ('198.51.100.7', '2026-01-01T00:00:00Z', 5)",
    )
    .unwrap();
    let mut locked = row(&db, 3, 3);
    locked.lockout_key = "198.51.100.7".into();
    locked.window_start = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut stale = row(&db, 2, 2);
    stale.profile_revision = 0;
    let rows = vec![
        row(&db, 0, 0),
        row(&db, 1, 0), // the same challenge as enrollment 0
        stale,
        locked,
        row(&db, 4, 1),
    ];
    let out = issue_tx::issue_batch(&mut conn, &rows).unwrap();
    let written: Vec<bool> = out.iter().map(Option::is_some).collect();
    assert!(
        written[0] ^ written[1],
        "one challenge, one enrollment: {written:?}"
    );
    assert_eq!(&written[2..], [false, false, true]);
    assert_eq!(stored(&mut conn).len(), 2);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM challenges WHERE used_at IS NULL"
        ),
        2,
        "the stale and the locked-out enrollments left their challenges unused"
    );
}

#[test]
fn a_stored_transaction_fails_its_whole_batch_as_a_conflict() {
    let db = seeded(3);
    let mut conn = PgConnection::establish(&db.url).unwrap();
    issue_tx::issue_batch(&mut conn, &[row(&db, 0, 0)]).unwrap();
    // The same transaction and key again, with another challenge.
    let res = issue_tx::issue_batch(&mut conn, &[row(&db, 1, 1), row(&db, 0, 2)]);
    assert!(matches!(res, Err(StoreError::Conflict(_))), "{res:?}");
    assert_eq!(stored(&mut conn).len(), 1, "nothing of the batch written");
}

#[test]
fn concurrent_enrollments_get_the_same_answers_however_they_are_batched() {
    const N: u32 = 48;
    let db = seeded(N as u8);
    let pool = server::store::pool(&db.url, 4).unwrap();
    let commit = GroupCommit::start(pool, 2, 8);
    let db = Arc::new(db);
    // Enrollment 7 repeats a transaction stored beforehand: it may sink
    // its batch, which must then be written one by one.
    let mut conn = PgConnection::establish(&db.url).unwrap();
    issue_tx::issue_batch(&mut conn, &[row(&db, 7, (N - 1) as u8)]).unwrap();
    let threads: Vec<_> = (0..N - 1)
        .map(|k| {
            let (db, commit) = (Arc::clone(&db), commit.clone());
            std::thread::spawn(move || (k, commit.run(row(&db, k, k as u8))))
        })
        .collect();
    for t in threads {
        let (k, answer) = t.join().unwrap();
        match (k, answer) {
            (7, Err(StoreError::Conflict(_))) => {}
            (7, other) => panic!("the stored transaction: {other:?}"),
            (_, Ok(Some(_))) => {}
            (k, other) => panic!("enrollment {k}: {other:?}"),
        }
    }
    let stored = stored(&mut conn);
    assert_eq!(
        stored.len(),
        N as usize - 1,
        "46 new and the one stored before"
    );
    assert!(stored.iter().all(|w| (w.events, w.audit) == (2, 2)));
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM challenges WHERE used_at IS NULL"
        ),
        1,
        "enrollment 7's challenge stays unused"
    );
}

/// The writer's pooled connection ended by the server while idle (a
/// restarted database): the next batch fails on it, and the one after
/// gets a new connection rather than the dead one again. diesel does not
/// mark a connection broken when a statement cannot even be sent to it,
/// and the pool does not test connections it hands out
/// (`store::conn_pool`).
#[test]
fn a_connection_lost_while_idle_is_replaced_after_one_failed_batch() {
    let db = seeded(3);
    // One connection, so a dead one would come back every time. It has
    // served another statement but not yet prepared the writer's, as most
    // connections of a pool have when the database goes away.
    let pool = server::store::pool(&db.url, 1).unwrap();
    assert_eq!(count(&mut pool.get().unwrap(), "SELECT 1::bigint AS n"), 1);
    let commit = GroupCommit::start(pool, 1, 8);

    let mut other = PgConnection::establish(&db.url).unwrap();
    other
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(
        &mut other,
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ) > 0
    {
        assert!(std::time::Instant::now() < deadline, "backends still there");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let lost = commit.run(row(&db, 1, 1));
    assert!(lost.is_err(), "written on a dead connection? {lost:?}");
    let next = commit.run(row(&db, 2, 2));
    assert!(matches!(next, Ok(Some(_))), "{next:?}");
    assert_eq!(stored(&mut other).len(), 1);
}

/// The checks before signing that ride along in a write statement
/// (`issue_tx::issue_and_check`) reach the verdicts the check's own
/// statement reaches: outstanding, used before, unknown, locked out, and
/// locked out where the profile sets no limit.
#[test]
fn checks_carried_by_a_write_answer_as_the_check_alone_does() {
    use server::store::challenges::{SigningCheck, SigningChecks};
    let db = seeded(4);
    let mut conn = PgConnection::establish(&db.url).unwrap();
    issue_tx::issue_batch(&mut conn, &[row(&db, 2, 2)]).unwrap();
    // Whole seconds: PostgreSQL keeps microseconds.
    let window_start = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO challenge_failures (client_ip, window_start, count)
         VALUES ('198.51.100.9', '{}', 9)",
        window_start.to_rfc3339()
    ))
    .unwrap();
    let check = |secret: u8, client: &str, limit: i32| SigningCheck {
        secret_hash: vec![secret; 32],
        profile_id: db.profile_id,
        lockout_key: client.into(),
        window_start,
        failure_limit: limit,
    };
    let checks = [
        check(1, "192.0.2.1", 5),
        check(2, "192.0.2.1", 5),
        check(0x77, "192.0.2.1", 5),
        check(3, "198.51.100.9", 5),
        check(3, "198.51.100.9", 0),
    ];
    let refs: Vec<&SigningCheck> = checks.iter().collect();
    let alone = SigningChecks::run_refs(&mut conn, &refs).unwrap();
    assert_eq!(alone, [true, false, false, false, true]);
    let write = row(&db, 0, 0);
    let (written, carried) = issue_tx::issue_and_check(&mut conn, &[&write], &refs).unwrap();
    assert_eq!(carried, alone);
    assert!(written[0].is_some(), "the write beside them: {written:?}");
    assert_eq!(stored(&mut conn).len(), 2);

    // Through the writer, checks and writes from many threads at once.
    let pool = server::store::pool(&db.url, 2).unwrap();
    let commit = GroupCommit::start(pool, 1, 8);
    let threads: Vec<_> = (0..8u8)
        .map(|k| {
            let commit = commit.clone();
            let (c, w) = (
                check(1, "192.0.2.1", 5),
                row(&db, 100 + u32::from(k), 0x60 + k),
            );
            std::thread::spawn(move || (commit.check(c), commit.run(w)))
        })
        .collect();
    for t in threads {
        let (checked, written) = t.join().unwrap();
        assert!(matches!(checked, Ok(true)), "{checked:?}");
        // Unknown challenges: nothing written, no error.
        assert!(matches!(written, Ok(None)), "{written:?}");
    }
}

/// With the database gone, a batch waits one connection timeout (3 s) and
/// fails; the rows that queued behind it meanwhile are answered with it,
/// not after a wait of their own, so no client waits two timeouts.
#[test]
fn rows_queued_behind_a_batch_that_found_no_database_fail_with_it() {
    use server::store::challenges::SigningCheck;
    let db = seeded(1);
    let pool = server::store::pool(&db.url, 1).unwrap();
    let commit = GroupCommit::start(pool, 1, 8);
    let mut admin = PgConnection::establish(&db.url).unwrap();
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let name = diesel::sql_query("SELECT current_database() AS name")
        .get_result::<Name>(&mut admin)
        .unwrap()
        .name;
    // From another database: one cannot close its own.
    let mut admin =
        PgConnection::establish(&db.url.replacen(&format!("/{name}"), "/postgres", 1)).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .unwrap();
    let check = || SigningCheck {
        secret_hash: vec![0; 32],
        profile_id: db.profile_id,
        lockout_key: "192.0.2.1".into(),
        window_start: Utc::now(),
        failure_limit: 5,
    };
    let first = {
        let commit = commit.clone();
        let c = check();
        std::thread::spawn(move || commit.check(c))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let queued: Vec<_> = (0..4)
        .map(|_| {
            let (commit, c) = (commit.clone(), check());
            std::thread::spawn(move || {
                let t = std::time::Instant::now();
                (commit.check(c), t.elapsed())
            })
        })
        .collect();
    assert!(first.join().unwrap().is_err());
    for q in queued {
        let (answer, waited) = q.join().unwrap();
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
        assert!(
            waited < std::time::Duration::from_millis(4_500),
            "waited {waited:?}: a timeout of its own after the first one's"
        );
    }
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .unwrap();
}
