//! The common enrollment — a new device, a one-time challenge, a profile
//! that approves at once — written in ONE statement: use the challenge,
//! store the request (already Issued) and the certificate, both history
//! rows, both audit entries and the contacts' mails. The statement takes a
//! batch of such enrollments (`store::group_commit` gathers the ones that
//! arrive together) and is one transaction in autocommit mode, so it is all
//! or nothing like the general path (`enroll::requests_flow`), which it must
//! match row for row; it just costs one round trip, one cached plan and one
//! commit for the whole batch instead of a dozen per enrollment.
//!
//! Everything hangs off the challenge UPDATE: an enrollment whose challenge
//! is no longer usable (a racing request took it, or its organization or
//! department was disabled meanwhile), whose client is locked out, or whose
//! profile changed since the enrollment was signed with it writes nothing
//! and is returned as `None`; the caller takes the general path, which
//! finds out why. A retransmission racing us hits the (transaction_id, key)
//! unique index and the whole statement fails with `Conflict`.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};

use super::challenges::{SigningCheck, SigningCheckBatch};
use super::StoreError;

/// One enrollment the statement writes, all computed before it runs.
#[derive(Debug, Clone)]
pub struct IssueRow {
    pub secret_hash: Vec<u8>,
    pub profile_id: i64,
    /// The profile revision the certificate was made with.
    pub profile_revision: i64,
    /// The one identity a challenge bound to a device must name to be
    /// used for this enrollment (`enroll::binding` decides it; `None`:
    /// only an unbound challenge may).
    pub device_identity: Option<String>,
    /// The client's key in `challenge_failures` and its current window.
    pub lockout_key: String,
    pub window_start: DateTime<Utc>,
    /// Failures that lock a client out (0: no limit).
    pub failure_limit: i32,
    pub transaction_id: String,
    pub public_key_sha256: Vec<u8>,
    pub message_type: &'static str,
    pub request_subject: String,
    pub common_name: Option<String>,
    pub sans: Vec<String>,
    pub key_desc: String,
    pub csr_der: Vec<u8>,
    pub client_ip: Option<String>,
    pub serial: String,
    pub cert_subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub fingerprint_sha256: Vec<u8>,
    pub issuer_sha256: Vec<u8>,
    pub der: Vec<u8>,
    /// Details of the `challenge.used` audit entry.
    pub challenge_details: serde_json::Value,
    /// Details of the `certificate.issued` entry; `request_id` is added.
    pub issued_details: serde_json::Value,
    /// Payload of the contacts' "issued" mails; the IDs are added.
    pub mail_payload: serde_json::Value,
}

/// The rows the statement created for one enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub request_id: i64,
    pub certificate_id: i64,
    pub challenge_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
}

// `{name}` marks a bind parameter: one array per column, unnested into the
// batch `i` (`n` is the enrollment's index in the batch). Sequence values
// are drawn in `ids` (materialised once) so the request and the
// certificate can name each other; their foreign keys are checked at the
// end of the statement. Status words, event names and actors are those of
// `requests::Status`, `audit::AuditKind` and `requests_flow`. When two
// enrollments of a batch carry the same challenge, only one of them uses
// it. Every table is reached by its index from the batch's own keys, so
// the plan does not depend on how many challenges are outstanding.
// The checks that came along (`challenges::SigningCheck`) are answered in
// `chk`, read from the statement's snapshot like a check of their own.
const ISSUE_SQL: &str = concat!(
    "
WITH i AS MATERIALIZED (
  SELECT * FROM unnest({n}, {secret_hash}, {profile_id}, {profile_revision},
      {device_identity}, {lockout_key}, {window_start}, {failure_limit}, {transaction_id},
      {public_key_sha256}, {message_type}, {request_subject}, {common_name}, {sans},
      {key_desc}, {csr_der}, {client_ip}, {serial}, {cert_subject}, {not_before},
      {not_after}, {fingerprint_sha256}, {issuer_sha256}, {der}, {challenge_details},
      {issued_details}, {mail_payload})
    AS t(n, secret_hash, profile_id, profile_revision, device_identity,
         lockout_key, window_start, failure_limit, transaction_id, public_key_sha256,
         message_type, request_subject, common_name, sans, key_desc, csr_der, client_ip,
         serial, cert_subject, not_before, not_after, fingerprint_sha256, issuer_sha256,
         der, challenge_details, issued_details, mail_payload)
), k AS MATERIALIZED (
  -- Each enrollment's challenge, probed by its own secret. The fence
  -- (OFFSET 0) keeps the usability conditions out of the probe, so the
  -- planner cannot trade the unique index for a scan of a partial index
  -- over every outstanding challenge, which young statistics make look as
  -- cheap. One enrollment per challenge.
  SELECT DISTINCT ON (c.id) i.n, c.id
    FROM i CROSS JOIN LATERAL (
      SELECT * FROM challenges c WHERE c.secret_hash = i.secret_hash OFFSET 0
    ) c
   WHERE c.profile_id = i.profile_id
     AND c.used_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > now()
     AND (c.device_identity IS NULL OR c.device_identity = i.device_identity)
     AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = c.organization_id AND o.enabled)
     AND (c.department_id IS NULL
          OR EXISTS (SELECT 1 FROM departments d WHERE d.id = c.department_id AND d.enabled))
     AND EXISTS (SELECT 1 FROM device_profiles p
                  WHERE p.id = i.profile_id AND p.revision = i.profile_revision)
     AND NOT EXISTS (SELECT 1 FROM challenge_failures f
                      WHERE f.client_ip = i.lockout_key AND f.window_start = i.window_start
                        AND f.count >= i.failure_limit AND i.failure_limit > 0)
   ORDER BY c.id, i.n
), ch AS (
  -- Rechecked under the row lock: a racing request that used the
  -- challenge first leaves nothing to update here. (The CASE keeps the
  -- partial indexes out of this one too.)
  UPDATE challenges c SET used_at = now()
   WHERE c.id = ANY(ARRAY(SELECT id FROM k))
     AND CASE WHEN c.used_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > now()
              THEN true ELSE false END
  RETURNING c.id, c.organization_id, c.department_id
), ids AS MATERIALIZED (
  SELECT k.n, ch.id AS challenge_id, ch.organization_id, ch.department_id,
         nextval('enrollment_requests_id_seq') AS rid,
         nextval('certificates_id_seq') AS cid
    FROM ch JOIN k ON k.id = ch.id
), req AS (
  INSERT INTO enrollment_requests (id, transaction_id, public_key_sha256, message_type,
      profile_id, organization_id, department_id, status, subject, common_name, sans,
      key_desc, csr_der, challenge_id, certificate_id, client_ip)
  SELECT ids.rid, i.transaction_id, i.public_key_sha256, i.message_type, i.profile_id,
         ids.organization_id, ids.department_id, 'issued', i.request_subject, i.common_name,
         ARRAY(SELECT jsonb_array_elements_text(i.sans)), i.key_desc, i.csr_der,
         ids.challenge_id, ids.cid, i.client_ip
    FROM ids JOIN i ON i.n = ids.n
), cert AS (
  INSERT INTO certificates (id, serial, request_id, profile_id, organization_id,
      department_id, subject, common_name, sans, not_before, not_after,
      fingerprint_sha256, public_key_sha256, issuer_sha256, der)
  SELECT ids.cid, i.serial, ids.rid, i.profile_id, ids.organization_id, ids.department_id,
         i.cert_subject, i.common_name, ARRAY(SELECT jsonb_array_elements_text(i.sans)),
         i.not_before, i.not_after, i.fingerprint_sha256, i.public_key_sha256,
         i.issuer_sha256, i.der
    FROM ids JOIN i ON i.n = ids.n
), ev AS (
  INSERT INTO request_events (request_id, from_status, to_status, actor)
  SELECT ids.rid, s.f, s.t, 'auto-approve'
    FROM ids, (VALUES (1, NULL::text, 'applied'), (2, 'applied', 'issued')) AS s(k, f, t)
   ORDER BY ids.n, s.k
), au AS (
  INSERT INTO audit_log (actor, event, target, details, client_ip, organization_id,
      department_id)
  SELECT e.actor, e.event, e.target, e.details, e.client_ip, e.organization_id,
         e.department_id
    FROM (SELECT ids.n, 1 AS k, 'scep' AS actor, 'challenge.used' AS event,
                 'challenge:' || ids.challenge_id AS target, i.challenge_details AS details,
                 i.client_ip, ids.organization_id, ids.department_id
            FROM ids JOIN i ON i.n = ids.n
          UNION ALL
          SELECT ids.n, 2, 'auto-approve', 'certificate.issued', 'certificate:' || i.serial,
                 i.issued_details || jsonb_build_object('request_id', ids.rid), i.client_ip,
                 ids.organization_id, ids.department_id
            FROM ids JOIN i ON i.n = ids.n) e
   ORDER BY e.n, e.k
), mail AS (
  INSERT INTO outbox (kind, recipient, payload)
  SELECT DISTINCT 'issued', nc.email,
         i.mail_payload || jsonb_build_object('request_id', ids.rid, 'certificate_id', ids.cid)
    FROM ids
    JOIN i ON i.n = ids.n
    JOIN notification_contacts nc ON nc.organization_id = ids.organization_id
   WHERE (nc.profile_id IS NULL OR nc.profile_id = i.profile_id) AND 'issued' = ANY(nc.events)
), chk AS (
  ",
    super::challenges::signing_check_select!(),
    "
)
SELECT 0 AS kind, n, rid, cid, challenge_id, organization_id, department_id FROM ids
UNION ALL
SELECT 1, n, ok::int::bigint, 0::bigint, 0::bigint, 0::bigint, NULL::bigint FROM chk"
);

pub(super) fn unknown_bind(name: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("no bind parameter {name:?}").into())
}

/// Push `template`, turning each `{name}` into a bind parameter by `bind`.
pub(super) fn push_template<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    template: &'static str,
    mut bind: impl FnMut(&str, &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>,
) -> QueryResult<()> {
    let mut rest = template;
    while let Some((head, tail)) = rest.split_once('{') {
        let Some((name, after)) = tail.split_once('}') else {
            return Err(unknown_bind(tail));
        };
        out.push_sql(head);
        bind(name, out)?;
        rest = after;
    }
    out.push_sql(rest);
    Ok(())
}

/// The batch as one array per column, borrowed from its rows.
struct IssueBatch<'a> {
    n: Vec<i32>,
    secret_hash: Vec<&'a [u8]>,
    profile_id: Vec<i64>,
    profile_revision: Vec<i64>,
    device_identity: Vec<Option<&'a str>>,
    lockout_key: Vec<&'a str>,
    window_start: Vec<DateTime<Utc>>,
    failure_limit: Vec<i32>,
    transaction_id: Vec<&'a str>,
    public_key_sha256: Vec<&'a [u8]>,
    message_type: Vec<&'a str>,
    request_subject: Vec<&'a str>,
    common_name: Vec<Option<&'a str>>,
    sans: Vec<serde_json::Value>,
    key_desc: Vec<&'a str>,
    csr_der: Vec<&'a [u8]>,
    client_ip: Vec<Option<&'a str>>,
    serial: Vec<&'a str>,
    cert_subject: Vec<&'a str>,
    not_before: Vec<DateTime<Utc>>,
    not_after: Vec<DateTime<Utc>>,
    fingerprint_sha256: Vec<&'a [u8]>,
    issuer_sha256: Vec<&'a [u8]>,
    der: Vec<&'a [u8]>,
    challenge_details: Vec<&'a serde_json::Value>,
    issued_details: Vec<&'a serde_json::Value>,
    mail_payload: Vec<&'a serde_json::Value>,
    checks: SigningCheckBatch<'a>,
}

impl<'a> IssueBatch<'a> {
    fn new(rows: &[&'a IssueRow], checks: &[&'a SigningCheck]) -> Self {
        fn col<'a, T>(rows: &[&'a IssueRow], f: impl Fn(&'a IssueRow) -> T) -> Vec<T> {
            rows.iter().map(|r| f(r)).collect()
        }
        Self {
            n: (0..rows.len()).map(|k| k as i32).collect(),
            secret_hash: col(rows, |r| &r.secret_hash[..]),
            profile_id: col(rows, |r| r.profile_id),
            profile_revision: col(rows, |r| r.profile_revision),
            device_identity: col(rows, |r| r.device_identity.as_deref()),
            lockout_key: col(rows, |r| &r.lockout_key[..]),
            window_start: col(rows, |r| r.window_start),
            failure_limit: col(rows, |r| r.failure_limit),
            transaction_id: col(rows, |r| &r.transaction_id[..]),
            public_key_sha256: col(rows, |r| &r.public_key_sha256[..]),
            message_type: col(rows, |r| r.message_type),
            request_subject: col(rows, |r| &r.request_subject[..]),
            common_name: col(rows, |r| r.common_name.as_deref()),
            sans: col(rows, |r| serde_json::Value::from(r.sans.clone())),
            key_desc: col(rows, |r| &r.key_desc[..]),
            csr_der: col(rows, |r| &r.csr_der[..]),
            client_ip: col(rows, |r| r.client_ip.as_deref()),
            serial: col(rows, |r| &r.serial[..]),
            cert_subject: col(rows, |r| &r.cert_subject[..]),
            not_before: col(rows, |r| r.not_before),
            not_after: col(rows, |r| r.not_after),
            fingerprint_sha256: col(rows, |r| &r.fingerprint_sha256[..]),
            issuer_sha256: col(rows, |r| &r.issuer_sha256[..]),
            der: col(rows, |r| &r.der[..]),
            challenge_details: col(rows, |r| &r.challenge_details),
            issued_details: col(rows, |r| &r.issued_details),
            mail_payload: col(rows, |r| &r.mail_payload),
            checks: SigningCheckBatch::new(checks),
        }
    }
}

impl QueryFragment<Pg> for IssueBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_template(&mut out, ISSUE_SQL, |name, out| match name {
            "n" => out.push_bind_param::<Array<Integer>, _>(&self.n),
            "secret_hash" => out.push_bind_param::<Array<Bytea>, _>(&self.secret_hash),
            "profile_id" => out.push_bind_param::<Array<BigInt>, _>(&self.profile_id),
            "profile_revision" => out.push_bind_param::<Array<BigInt>, _>(&self.profile_revision),
            "device_identity" => {
                out.push_bind_param::<Array<Nullable<Text>>, _>(&self.device_identity)
            }
            "lockout_key" => out.push_bind_param::<Array<Text>, _>(&self.lockout_key),
            "window_start" => out.push_bind_param::<Array<Timestamptz>, _>(&self.window_start),
            "failure_limit" => out.push_bind_param::<Array<Integer>, _>(&self.failure_limit),
            "transaction_id" => out.push_bind_param::<Array<Text>, _>(&self.transaction_id),
            "public_key_sha256" => out.push_bind_param::<Array<Bytea>, _>(&self.public_key_sha256),
            "message_type" => out.push_bind_param::<Array<Text>, _>(&self.message_type),
            "request_subject" => out.push_bind_param::<Array<Text>, _>(&self.request_subject),
            "common_name" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.common_name),
            "sans" => out.push_bind_param::<Array<Jsonb>, _>(&self.sans),
            "key_desc" => out.push_bind_param::<Array<Text>, _>(&self.key_desc),
            "csr_der" => out.push_bind_param::<Array<Bytea>, _>(&self.csr_der),
            "client_ip" => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.client_ip),
            "serial" => out.push_bind_param::<Array<Text>, _>(&self.serial),
            "cert_subject" => out.push_bind_param::<Array<Text>, _>(&self.cert_subject),
            "not_before" => out.push_bind_param::<Array<Timestamptz>, _>(&self.not_before),
            "not_after" => out.push_bind_param::<Array<Timestamptz>, _>(&self.not_after),
            "fingerprint_sha256" => {
                out.push_bind_param::<Array<Bytea>, _>(&self.fingerprint_sha256)
            }
            "issuer_sha256" => out.push_bind_param::<Array<Bytea>, _>(&self.issuer_sha256),
            "der" => out.push_bind_param::<Array<Bytea>, _>(&self.der),
            "challenge_details" => out.push_bind_param::<Array<Jsonb>, _>(&self.challenge_details),
            "issued_details" => out.push_bind_param::<Array<Jsonb>, _>(&self.issued_details),
            "mail_payload" => out.push_bind_param::<Array<Jsonb>, _>(&self.mail_payload),
            other => {
                if self.checks.bind(other, out)? {
                    Ok(())
                } else {
                    Err(unknown_bind(other))
                }
            }
        })
    }
}

/// Statement-cache identity: prepared once per connection, as diesel does
/// for its static queries (the SQL does not depend on the batch size).
pub struct IssueBatchId;

impl QueryId for IssueBatch<'_> {
    type QueryId = IssueBatchId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for IssueBatch<'_> {
    type SqlType = (
        Integer,
        Integer,
        BigInt,
        BigInt,
        BigInt,
        BigInt,
        Nullable<BigInt>,
    );
}

impl RunQueryDsl<PgConnection> for IssueBatch<'_> {}

/// Runs the statement for `rows`: the answer at index k is that of
/// `rows[k]`. `None`: nothing was written for it (challenge no longer
/// usable, client locked out, profile changed). `Err(Conflict)`: one of
/// the transactions is already stored, and nothing at all was written.
pub fn issue_batch(
    conn: &mut PgConnection,
    rows: &[IssueRow],
) -> Result<Vec<Option<Issued>>, StoreError> {
    let rows: Vec<&IssueRow> = rows.iter().collect();
    Ok(issue_and_check(conn, &rows, &[])?.0)
}

/// [`issue_batch`] for `rows`, and in the same statement the answers to
/// `checks` (`challenges::SigningCheck`), in their order.
pub fn issue_and_check(
    conn: &mut PgConnection,
    rows: &[&IssueRow],
    checks: &[&SigningCheck],
) -> Result<(Vec<Option<Issued>>, Vec<bool>), StoreError> {
    type Row = (i32, i32, i64, i64, i64, i64, Option<i64>);
    let answers: Vec<Row> = IssueBatch::new(rows, checks).load(conn)?;
    let mut written = vec![None; rows.len()];
    let mut checked = vec![false; checks.len()];
    for (kind, n, rid, cid, challenge_id, organization_id, department_id) in answers {
        let Ok(n) = usize::try_from(n) else { continue };
        if kind == 1 {
            if let Some(slot) = checked.get_mut(n) {
                *slot = rid == 1;
            }
        } else if let Some(slot) = written.get_mut(n) {
            *slot = Some(Issued {
                request_id: rid,
                certificate_id: cid,
                challenge_id,
                organization_id,
                department_id,
            });
        }
    }
    Ok((written, checked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: u8) -> IssueRow {
        let v = serde_json::json!({});
        IssueRow {
            secret_hash: vec![k],
            profile_id: 1,
            profile_revision: 1,
            device_identity: Some(format!("dev-{k}")),
            lockout_key: "127.0.0.1".into(),
            window_start: Utc::now(),
            failure_limit: 5,
            transaction_id: format!("t{k}"),
            public_key_sha256: vec![k],
            message_type: "PKCSReq",
            request_subject: format!("CN=dev-{k}"),
            common_name: Some(format!("dev-{k}")),
            sans: vec![],
            key_desc: "RSA 2048".into(),
            csr_der: vec![k],
            client_ip: None,
            serial: format!("{k:02x}"),
            cert_subject: format!("CN=dev-{k}"),
            not_before: Utc::now(),
            not_after: Utc::now(),
            fingerprint_sha256: vec![k],
            issuer_sha256: vec![k],
            der: vec![k],
            challenge_details: v.clone(),
            issued_details: v.clone(),
            mail_payload: v,
        }
    }

    #[test]
    fn every_placeholder_becomes_one_array_bind() {
        let rows = [row(1), row(2)];
        let refs: Vec<&IssueRow> = rows.iter().collect();
        let q = IssueBatch::new(&refs, &[]);
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        let placeholders = ISSUE_SQL.matches('{').count();
        assert_eq!(placeholders, 33);
        assert!(sql.contains(&format!("${placeholders}")), "{sql}");
        assert!(!sql.contains(&format!("${}", placeholders + 1)));
        assert!(!sql.split("-- binds:").next().unwrap().contains('{'));
        assert_eq!(q.n, [0, 1]);
        assert_eq!(q.serial, ["01", "02"]);
    }
}
