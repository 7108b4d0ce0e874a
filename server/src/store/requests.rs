//! Enrollment requests and their state history. The state machine itself
//! is `enroll`'s; this module only records transitions, each with an event
//! row, and refuses a transition from a state the row is no longer in.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{enrollment_requests, request_events};
use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Requested,
    Applied,
    Issued,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Applied => "applied",
            Self::Issued => "issued",
            Self::Declined => "declined",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "requested" => Self::Requested,
            "applied" => Self::Applied,
            "issued" => Self::Issued,
            "declined" => Self::Declined,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = enrollment_requests)]
pub struct EnrollmentRequest {
    pub id: i64,
    pub transaction_id: String,
    pub public_key_sha256: Vec<u8>,
    pub message_type: String,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub status: String,
    pub subject: String,
    pub common_name: Option<String>,
    pub sans: Vec<String>,
    pub key_desc: String,
    pub csr_der: Vec<u8>,
    pub challenge_id: Option<i64>,
    pub renewal_of: Option<i64>,
    pub certificate_id: Option<i64>,
    pub decline_reason: Option<String>,
    pub client_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EnrollmentRequest {
    pub fn status(&self) -> Option<Status> {
        Status::parse(&self.status)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = enrollment_requests)]
pub struct NewRequest<'a> {
    pub transaction_id: &'a str,
    pub public_key_sha256: &'a [u8],
    pub message_type: &'a str,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub status: &'a str,
    pub subject: &'a str,
    pub common_name: Option<&'a str>,
    pub sans: Vec<String>,
    pub key_desc: &'a str,
    pub csr_der: &'a [u8],
    pub challenge_id: Option<i64>,
    pub renewal_of: Option<i64>,
    pub client_ip: Option<&'a str>,
    /// SHA-256 of the signer's key when it is not the CSR's (a renewal,
    /// or a throwaway signer of another key); CertPoll finds it by this.
    pub signer_key_sha256: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = request_events)]
pub struct RequestEvent {
    pub id: i64,
    pub request_id: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Insert a request and its first history event. A duplicate
/// (transactionID, key) is `StoreError::Conflict`: the caller treats it as
/// a retransmission.
pub fn insert(
    conn: &mut PgConnection,
    r: &NewRequest<'_>,
    actor: &str,
) -> Result<EnrollmentRequest, StoreError> {
    let req = diesel::insert_into(enrollment_requests::table)
        .values(r)
        .returning(EnrollmentRequest::as_returning())
        .get_result(conn)?;
    add_event(conn, req.id, None, r.status, actor, None)?;
    Ok(req)
}

fn add_event(
    conn: &mut PgConnection,
    request_id: i64,
    from: Option<&str>,
    to: &str,
    actor: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    diesel::insert_into(request_events::table)
        .values((
            request_events::request_id.eq(request_id),
            request_events::from_status.eq(from),
            request_events::to_status.eq(to),
            request_events::actor.eq(actor),
            request_events::note.eq(note),
        ))
        .execute(conn)?;
    Ok(())
}

/// Move a request from `from` to `to`. Returns `Conflict` when the request
/// is no longer in `from` (another officer or process got there first).
pub fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: Status,
    to: Status,
    actor: &str,
    note: Option<&str>,
) -> Result<EnrollmentRequest, StoreError> {
    let updated = diesel::update(
        enrollment_requests::table
            .find(id)
            .filter(enrollment_requests::status.eq(from.as_str())),
    )
    .set((
        enrollment_requests::status.eq(to.as_str()),
        enrollment_requests::updated_at.eq(diesel::dsl::now),
    ))
    .returning(EnrollmentRequest::as_returning())
    .get_result(conn)
    .optional()?;
    let req = updated
        .ok_or_else(|| StoreError::Conflict(format!("request {id} is not {}", from.as_str())))?;
    add_event(conn, id, Some(from.as_str()), to.as_str(), actor, note)?;
    Ok(req)
}

pub fn set_certificate(
    conn: &mut PgConnection,
    id: i64,
    certificate_id: i64,
) -> Result<(), StoreError> {
    diesel::update(enrollment_requests::table.find(id))
        .set(enrollment_requests::certificate_id.eq(certificate_id))
        .execute(conn)?;
    Ok(())
}

pub fn set_decline_reason(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
) -> Result<(), StoreError> {
    diesel::update(enrollment_requests::table.find(id))
        .set(enrollment_requests::decline_reason.eq(reason))
        .execute(conn)?;
    Ok(())
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<EnrollmentRequest, StoreError> {
    Ok(enrollment_requests::table
        .find(id)
        .select(EnrollmentRequest::as_select())
        .first(conn)?)
}

/// Lock the row for a decision (SELECT ... FOR UPDATE).
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<EnrollmentRequest, StoreError> {
    Ok(enrollment_requests::table
        .find(id)
        .select(EnrollmentRequest::as_select())
        .for_update()
        .first(conn)?)
}

/// The request a retransmission repeats (RFC 8894 §3.3.1): the same
/// transactionID and key, renewing the same certificate (`None`: a first
/// enrollment).
pub fn by_transaction(
    conn: &mut PgConnection,
    transaction_id: &str,
    public_key_sha256: &[u8],
    renewal_of: Option<i64>,
) -> Result<Option<EnrollmentRequest>, StoreError> {
    use diesel::PgExpressionMethods;
    Ok(enrollment_requests::table
        .filter(enrollment_requests::transaction_id.eq(transaction_id))
        .filter(enrollment_requests::public_key_sha256.eq(public_key_sha256))
        .filter(enrollment_requests::renewal_of.is_not_distinct_from(renewal_of))
        .select(EnrollmentRequest::as_select())
        .first(conn)
        .optional()?)
}

/// The request a CertPoll names (RFC 8894 §3.3.3): its transactionID, which
/// travels in clear text, together with the key that signs the poll as it
/// signed the request, the CSR's or, when they differed, the signer's.
pub fn by_transaction_and_signer(
    conn: &mut PgConnection,
    transaction_id: &str,
    signer_key_sha256: &[u8],
) -> Result<Option<EnrollmentRequest>, StoreError> {
    Ok(enrollment_requests::table
        .filter(enrollment_requests::transaction_id.eq(transaction_id))
        .filter(
            enrollment_requests::public_key_sha256
                .eq(signer_key_sha256)
                .or(enrollment_requests::signer_key_sha256.eq(signer_key_sha256)),
        )
        .order(enrollment_requests::id.desc())
        .select(EnrollmentRequest::as_select())
        .first(conn)
        .optional()?)
}

/// The newest request with `transaction_id` filed under one of
/// `organizations` (what an API key may see): a transactionID names a
/// request only together with who asks.
pub fn latest_by_transaction_in(
    conn: &mut PgConnection,
    transaction_id: &str,
    organizations: &[i64],
) -> Result<Option<EnrollmentRequest>, StoreError> {
    Ok(enrollment_requests::table
        .filter(enrollment_requests::transaction_id.eq(transaction_id))
        .filter(enrollment_requests::organization_id.eq_any(organizations))
        .order(enrollment_requests::id.desc())
        .select(EnrollmentRequest::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_by_status(
    conn: &mut PgConnection,
    status: Status,
    limit: i64,
) -> Result<Vec<EnrollmentRequest>, StoreError> {
    Ok(enrollment_requests::table
        .filter(enrollment_requests::status.eq(status.as_str()))
        .order((
            enrollment_requests::created_at.desc(),
            enrollment_requests::id.desc(),
        ))
        .limit(limit)
        .select(EnrollmentRequest::as_select())
        .load(conn)?)
}

pub fn events(conn: &mut PgConnection, request_id: i64) -> Result<Vec<RequestEvent>, StoreError> {
    Ok(request_events::table
        .filter(request_events::request_id.eq(request_id))
        .order(request_events::id)
        .select(RequestEvent::as_select())
        .load(conn)?)
}

/// Applied → Issued, linking the certificate, with its history event.
pub fn mark_issued(
    conn: &mut PgConnection,
    id: i64,
    certificate_id: i64,
    actor: &str,
) -> Result<(), StoreError> {
    let n = diesel::update(
        enrollment_requests::table
            .find(id)
            .filter(enrollment_requests::status.eq(Status::Applied.as_str())),
    )
    .set((
        enrollment_requests::status.eq(Status::Issued.as_str()),
        enrollment_requests::certificate_id.eq(certificate_id),
        enrollment_requests::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("request {id} is not applied")));
    }
    add_event(
        conn,
        id,
        Some(Status::Applied.as_str()),
        Status::Issued.as_str(),
        actor,
        None,
    )
}

/// The request that renews certificate `certificate_id` and has not been
/// declined (RFC 8894 §3.3.1.2: a certificate is renewed once; a declined
/// renewal leaves it to renew).
pub fn renewing(
    conn: &mut PgConnection,
    certificate_id: i64,
) -> Result<Option<EnrollmentRequest>, StoreError> {
    Ok(enrollment_requests::table
        .filter(enrollment_requests::renewal_of.eq(certificate_id))
        .filter(enrollment_requests::status.ne(Status::Declined.as_str()))
        .order(enrollment_requests::id.asc())
        .select(EnrollmentRequest::as_select())
        .first(conn)
        .optional()?)
}
