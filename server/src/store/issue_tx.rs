//! The common enrollment — a new device, a one-time challenge, a profile
//! that approves at once — written in ONE statement: use the challenge,
//! store the request (already Issued) and the certificate, both history
//! rows, both audit entries and the contacts' mails. One statement is one
//! transaction in autocommit mode, so it is all or nothing like the general
//! path (`enroll::requests_flow`), which it must match row for row; it just
//! costs one round trip and one cached plan instead of a dozen.
//!
//! Everything hangs off the challenge UPDATE: when the challenge is no
//! longer usable (a racing request took it, or its organization or
//! department was disabled meanwhile) nothing at all is written and
//! the caller falls back to the general path, which finds out why. A
//! retransmission racing us hits the (transaction_id, key) unique index
//! and the whole statement fails with `Conflict`.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};

use super::StoreError;

/// What the statement writes, all computed before it runs.
#[derive(Debug)]
pub struct IssueWithChallenge<'a> {
    pub secret_hash: &'a [u8],
    pub profile_id: i64,
    /// The request's CN / serialNumber, for challenges bound to a device.
    pub identities: &'a [String],
    pub transaction_id: &'a str,
    pub public_key_sha256: &'a [u8],
    pub message_type: &'a str,
    pub request_subject: &'a str,
    pub common_name: Option<&'a str>,
    pub sans: &'a [String],
    pub key_desc: &'a str,
    pub csr_der: &'a [u8],
    pub client_ip: Option<&'a str>,
    pub serial: &'a str,
    pub cert_subject: &'a str,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub fingerprint_sha256: &'a [u8],
    pub issuer_sha256: &'a [u8],
    pub der: &'a [u8],
    /// Details of the `challenge.used` audit entry.
    pub challenge_details: &'a serde_json::Value,
    /// Details of the `certificate.issued` entry; `request_id` is added.
    pub issued_details: &'a serde_json::Value,
    /// Payload of the contacts' "issued" mails; the IDs are added.
    pub mail_payload: &'a serde_json::Value,
}

/// The rows the statement created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct Issued {
    pub request_id: i64,
    pub certificate_id: i64,
    pub challenge_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
}

// `{name}` marks a bind parameter (pushed where it appears, so large
// values such as the DER are not carried through a CTE row). Sequence
// values are drawn in `ids` (materialised once) so the request and the
// certificate can name each other; their foreign keys are checked at the
// end of the statement. Status words, event names and actors are those of
// `requests::Status`, `audit::AuditKind` and `requests_flow`.
const ISSUE_SQL: &str = "
WITH ch AS (
  UPDATE challenges c SET used_at = now()
   WHERE c.secret_hash = {secret_hash} AND c.profile_id = {profile_id}
     AND c.used_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > now()
     AND (c.device_identity IS NULL OR c.device_identity = ANY({identities}))
     AND EXISTS (SELECT 1 FROM organizations o WHERE o.id = c.organization_id AND o.enabled)
     AND (c.department_id IS NULL
          OR EXISTS (SELECT 1 FROM departments d WHERE d.id = c.department_id AND d.enabled))
  RETURNING c.id, c.organization_id, c.department_id
), ids AS MATERIALIZED (
  SELECT ch.id AS challenge_id, ch.organization_id, ch.department_id,
         nextval('enrollment_requests_id_seq') AS rid,
         nextval('certificates_id_seq') AS cid
    FROM ch
), req AS (
  INSERT INTO enrollment_requests (id, transaction_id, public_key_sha256, message_type,
      profile_id, organization_id, department_id, status, subject, common_name, sans,
      key_desc, csr_der, challenge_id, certificate_id, client_ip)
  SELECT rid, {transaction_id}, {public_key_sha256}, {message_type}, {profile_id},
         organization_id, department_id, 'issued', {request_subject}, {common_name},
         {sans}, {key_desc}, {csr_der}, challenge_id, cid, {client_ip}
    FROM ids
), cert AS (
  INSERT INTO certificates (id, serial, request_id, profile_id, organization_id,
      department_id, subject, common_name, sans, not_before, not_after,
      fingerprint_sha256, public_key_sha256, issuer_sha256, der)
  SELECT cid, {serial}, rid, {profile_id}, organization_id, department_id,
         {cert_subject}, {common_name}, {sans}, {not_before}, {not_after},
         {fingerprint_sha256}, {public_key_sha256}, {issuer_sha256}, {der}
    FROM ids
), ev AS (
  INSERT INTO request_events (request_id, from_status, to_status, actor)
  SELECT rid, s.f, s.t, 'auto-approve'
    FROM ids, (VALUES (NULL::text, 'applied'), ('applied', 'issued')) AS s(f, t)
), au AS (
  INSERT INTO audit_log (actor, event, target, details, client_ip, organization_id,
      department_id)
  SELECT 'scep', 'challenge.used', 'challenge:' || challenge_id, {challenge_details},
         {client_ip}, organization_id, department_id
    FROM ids
  UNION ALL
  SELECT 'auto-approve', 'certificate.issued', 'certificate:' || {serial},
         {issued_details} || jsonb_build_object('request_id', rid), {client_ip},
         organization_id, department_id
    FROM ids
), mail AS (
  INSERT INTO outbox (kind, recipient, payload)
  SELECT DISTINCT 'issued', nc.email,
         {mail_payload} || jsonb_build_object('request_id', ids.rid, 'certificate_id', ids.cid)
    FROM ids
    JOIN notification_contacts nc ON nc.organization_id = ids.organization_id
   WHERE (nc.profile_id IS NULL OR nc.profile_id = {profile_id}) AND 'issued' = ANY(nc.events)
)
SELECT rid, cid, challenge_id, organization_id, department_id FROM ids";

fn unknown_bind(name: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("no bind parameter {name:?}").into())
}

/// Push `template`, turning each `{name}` into a bind parameter by `bind`.
fn push_template<'b>(
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

impl QueryFragment<Pg> for IssueWithChallenge<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_template(&mut out, ISSUE_SQL, |name, out| match name {
            "secret_hash" => out.push_bind_param::<Bytea, _>(&self.secret_hash),
            "profile_id" => out.push_bind_param::<BigInt, _>(&self.profile_id),
            "identities" => out.push_bind_param::<Array<Text>, _>(&self.identities),
            "transaction_id" => out.push_bind_param::<Text, _>(&self.transaction_id),
            "public_key_sha256" => out.push_bind_param::<Bytea, _>(&self.public_key_sha256),
            "message_type" => out.push_bind_param::<Text, _>(&self.message_type),
            "request_subject" => out.push_bind_param::<Text, _>(&self.request_subject),
            "common_name" => out.push_bind_param::<Nullable<Text>, _>(&self.common_name),
            "sans" => out.push_bind_param::<Array<Text>, _>(&self.sans),
            "key_desc" => out.push_bind_param::<Text, _>(&self.key_desc),
            "csr_der" => out.push_bind_param::<Bytea, _>(&self.csr_der),
            "client_ip" => out.push_bind_param::<Nullable<Text>, _>(&self.client_ip),
            "serial" => out.push_bind_param::<Text, _>(&self.serial),
            "cert_subject" => out.push_bind_param::<Text, _>(&self.cert_subject),
            "not_before" => out.push_bind_param::<Timestamptz, _>(&self.not_before),
            "not_after" => out.push_bind_param::<Timestamptz, _>(&self.not_after),
            "fingerprint_sha256" => out.push_bind_param::<Bytea, _>(&self.fingerprint_sha256),
            "issuer_sha256" => out.push_bind_param::<Bytea, _>(&self.issuer_sha256),
            "der" => out.push_bind_param::<Bytea, _>(&self.der),
            "challenge_details" => out.push_bind_param::<Jsonb, _>(self.challenge_details),
            "issued_details" => out.push_bind_param::<Jsonb, _>(self.issued_details),
            "mail_payload" => out.push_bind_param::<Jsonb, _>(self.mail_payload),
            other => Err(unknown_bind(other)),
        })
    }
}

/// Statement-cache identities: both statements are prepared once per
/// connection, as diesel does for its static queries.
pub struct IssueWithChallengeId;
pub struct FastPathCheckId;

impl QueryId for IssueWithChallenge<'_> {
    type QueryId = IssueWithChallengeId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryId for FastPathCheck<'_> {
    type QueryId = FastPathCheckId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for IssueWithChallenge<'_> {
    type SqlType = (BigInt, BigInt, BigInt, BigInt, Nullable<BigInt>);
}

impl RunQueryDsl<PgConnection> for IssueWithChallenge<'_> {}

/// Runs the statement. `Ok(None)`: the challenge was no longer usable and
/// nothing was written. `Err(Conflict)`: this transaction is already stored.
pub fn issue_with_challenge(
    conn: &mut PgConnection,
    w: IssueWithChallenge<'_>,
) -> Result<Option<Issued>, StoreError> {
    Ok(w.get_result::<Issued>(conn).optional()?)
}

/// Whether the general path can be skipped: the client is not locked out
/// and the secret is a usable one-time challenge of this profile and
/// device. A read; `issue_with_challenge` checks the challenge again.
#[derive(Debug)]
pub struct FastPathCheck<'a> {
    pub secret_hash: &'a [u8],
    pub profile_id: i64,
    pub identities: &'a [String],
    pub client_ip: &'a str,
    pub window_start: DateTime<Utc>,
    /// Failures that lock a client out (0: no limit).
    pub failure_limit: i32,
}

impl QueryFragment<Pg> for FastPathCheck<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT EXISTS (SELECT 1 FROM challenges c WHERE c.secret_hash = ");
        out.push_bind_param::<Bytea, _>(&self.secret_hash)?;
        out.push_sql(" AND c.profile_id = ");
        out.push_bind_param::<BigInt, _>(&self.profile_id)?;
        out.push_sql(
            " AND c.used_at IS NULL AND c.revoked_at IS NULL AND c.expires_at > now() \
             AND (c.device_identity IS NULL OR c.device_identity = ANY(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.identities)?;
        out.push_sql(
            ")) AND EXISTS (SELECT 1 FROM organizations o \
               WHERE o.id = c.organization_id AND o.enabled) \
             AND (c.department_id IS NULL OR EXISTS (SELECT 1 FROM departments d \
               WHERE d.id = c.department_id AND d.enabled))) \
             AND NOT EXISTS (SELECT 1 FROM challenge_failures f WHERE f.client_ip = ",
        );
        out.push_bind_param::<Text, _>(&self.client_ip)?;
        out.push_sql(" AND f.window_start = ");
        out.push_bind_param::<Timestamptz, _>(&self.window_start)?;
        out.push_sql(" AND f.count >= ");
        out.push_bind_param::<Integer, _>(&self.failure_limit)?;
        out.push_sql(" AND ");
        out.push_bind_param::<Integer, _>(&self.failure_limit)?;
        out.push_sql(" > 0)");
        Ok(())
    }
}

impl Query for FastPathCheck<'_> {
    type SqlType = Bool;
}

impl RunQueryDsl<PgConnection> for FastPathCheck<'_> {}

pub fn fast_path_open(conn: &mut PgConnection, c: FastPathCheck<'_>) -> Result<bool, StoreError> {
    Ok(c.get_result::<bool>(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_becomes_a_bind() {
        let v = serde_json::json!({});
        let names = ["dev-1".to_string()];
        let q = IssueWithChallenge {
            secret_hash: b"h",
            profile_id: 1,
            identities: &names,
            transaction_id: "t",
            public_key_sha256: b"k",
            message_type: "PKCSReq",
            request_subject: "CN=dev-1",
            common_name: Some("dev-1"),
            sans: &[],
            key_desc: "RSA 2048",
            csr_der: b"c",
            client_ip: None,
            serial: "01",
            cert_subject: "CN=dev-1",
            not_before: Utc::now(),
            not_after: Utc::now(),
            fingerprint_sha256: b"f",
            issuer_sha256: b"i",
            der: b"d",
            challenge_details: &v,
            issued_details: &v,
            mail_payload: &v,
        };
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        let placeholders = ISSUE_SQL.matches('{').count();
        assert_eq!(placeholders, 31);
        assert!(sql.contains(&format!("${placeholders}")), "{sql}");
        assert!(!sql.contains(&format!("${}", placeholders + 1)));
        assert!(!sql.split("-- binds:").next().unwrap().contains('{'));
    }
}
