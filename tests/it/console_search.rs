//! Certificate search on the console (issue 4): whichever way a search
//! takes (the newest certificates first, the search indexes for few
//! matches, the date index for many), its keyset pages hold exactly the
//! matching certificates, newest first, each once. The limits are shrunk
//! so that 400 certificates take every way.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use server::store::console_certs::{self, CertFilter, CertState, SearchLimits};
use server::store::queue::{Cursor, Scope};

const SMALL: SearchLimits = SearchLimits {
    probe: 10,
    narrow: 50,
};

/// 400 certificates `dev-<i>`, created in 37 distinct minutes (many ties on
/// `created_at`), every tenth revoked.
fn seeded() -> (server::testdb::TestDb, PgConnection) {
    let db = server::testdb::test_db().expect("test database");
    let mut conn = PgConnection::establish(&db.url).unwrap();
    conn.batch_execute(
        "INSERT INTO organizations (name) VALUES ('Search');
         INSERT INTO device_profiles (profile_id, name) VALUES ('search', 'Search');
         INSERT INTO certificates (serial, profile_id, organization_id, subject, common_name,
             sans, not_before, not_after, status, fingerprint_sha256, public_key_sha256,
             issuer_sha256, der, created_at)
         SELECT upper(md5(i::text)), p.id, o.id, 'CN=dev-' || i, 'dev-' || i, '{}',
             now() - interval '1 day', now() + interval '1 year',
             CASE WHEN i % 10 = 0 THEN 'revoked' ELSE 'valid' END,
             decode(md5(i::text) || md5('f' || i), 'hex'), decode(md5('k' || i), 'hex'),
             '\\x00', '\\x00', date_trunc('minute', now()) - (i % 37) * interval '1 minute'
         FROM generate_series(1, 400) i, organizations o, device_profiles p
         WHERE o.name = 'Search' AND p.profile_id = 'search';
         ANALYZE certificates;",
    )
    .unwrap();
    (db, conn)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The matches, newest first, straight from SQL.
fn expected(conn: &mut PgConnection, text: &str, revoked_only: bool) -> Vec<i64> {
    diesel::sql_query(
        "SELECT id FROM certificates WHERE (common_name ILIKE '%' || $1 || '%' \
         OR subject ILIKE '%' || $1 || '%') AND (NOT $2 OR status = 'revoked') \
         ORDER BY created_at DESC, id DESC",
    )
    .bind::<Text, _>(text)
    .bind::<diesel::sql_types::Bool, _>(revoked_only)
    .load::<Id>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect()
}

fn paged(conn: &mut PgConnection, f: &CertFilter, limits: SearchLimits) -> Vec<i64> {
    let now: DateTime<Utc> = Utc::now();
    let mut out = vec![];
    let mut after: Option<Cursor> = None;
    loop {
        let page = console_certs::list_with(conn, &Scope::All, f, after, 7, now, limits).unwrap();
        assert!(page.rows.len() <= 7);
        out.extend(page.rows.iter().map(|r| r.id));
        match page.next {
            Some(c) => after = Some(c),
            None => return out,
        }
    }
}

#[test]
fn every_search_way_pages_exactly_the_matches_newest_first() {
    let (_db, mut conn) = seeded();
    // Common (the newest fill a page), rare (index), many but not among
    // the newest ten (date index), none, short without trigrams.
    for text in [
        "dev-",
        "dev-123",
        "dev-1",
        "dev-3",
        "nothing-here",
        "9",
        "DEV-2",
    ] {
        for revoked_only in [false, true] {
            let f = CertFilter {
                text: Some(text.to_string()),
                state: revoked_only.then_some(CertState::Revoked),
                ..CertFilter::default()
            };
            let want = expected(&mut conn, text, revoked_only);
            for limits in [SMALL, SearchLimits::default()] {
                assert_eq!(
                    paged(&mut conn, &f, limits),
                    want,
                    "{text:?} revoked_only={revoked_only} {limits:?}"
                );
            }
        }
    }
}

#[test]
fn a_search_leaves_no_planner_setting_behind() {
    let (_db, mut conn) = seeded();
    let f = CertFilter {
        text: Some("dev-123".into()),
        ..CertFilter::default()
    };
    paged(&mut conn, &f, SMALL);
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        v: String,
    }
    for name in ["enable_seqscan", "enable_bitmapscan"] {
        let s: Setting = diesel::sql_query(format!("SELECT current_setting('{name}') AS v"))
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(s.v, "on", "{name}");
    }
}
