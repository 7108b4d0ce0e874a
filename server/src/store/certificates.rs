//! Issued certificates and their revocations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{certificates, revocations};
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = certificates)]
pub struct Certificate {
    pub id: i64,
    pub serial: String,
    pub request_id: Option<i64>,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub subject: String,
    pub common_name: Option<String>,
    pub sans: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub status: String,
    pub fingerprint_sha256: Vec<u8>,
    pub public_key_sha256: Vec<u8>,
    pub issuer_sha256: Vec<u8>,
    pub der: Vec<u8>,
    pub replaces_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl Certificate {
    pub fn is_revoked(&self) -> bool {
        self.status == "revoked"
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = certificates)]
pub struct NewCertificate<'a> {
    pub serial: &'a str,
    pub request_id: Option<i64>,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub subject: &'a str,
    pub common_name: Option<&'a str>,
    pub sans: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub fingerprint_sha256: &'a [u8],
    pub public_key_sha256: &'a [u8],
    pub issuer_sha256: &'a [u8],
    pub der: &'a [u8],
    pub replaces_id: Option<i64>,
}

pub fn insert(conn: &mut PgConnection, c: &NewCertificate<'_>) -> Result<Certificate, StoreError> {
    Ok(diesel::insert_into(certificates::table)
        .values(c)
        .returning(Certificate::as_returning())
        .get_result(conn)?)
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<Certificate, StoreError> {
    Ok(certificates::table
        .find(id)
        .select(Certificate::as_select())
        .first(conn)?)
}

/// The certificate, locked until the transaction ends (a renewal of it
/// and the revocation of it as superseded queue behind each other).
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<Certificate, StoreError> {
    Ok(certificates::table
        .find(id)
        .for_update()
        .select(Certificate::as_select())
        .first(conn)?)
}

pub fn by_serial(
    conn: &mut PgConnection,
    serial_hex: &str,
) -> Result<Option<Certificate>, StoreError> {
    Ok(certificates::table
        .filter(certificates::serial.eq(serial_hex))
        .select(Certificate::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_fingerprint(
    conn: &mut PgConnection,
    sha256: &[u8],
) -> Result<Option<Certificate>, StoreError> {
    Ok(certificates::table
        .filter(certificates::fingerprint_sha256.eq(sha256))
        .select(Certificate::as_select())
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = revocations)]
pub struct Revocation {
    pub certificate_id: i64,
    pub reason: String,
    pub revoked_at: DateTime<Utc>,
    pub revoked_by: String,
}

/// Revoke a valid certificate. `Conflict` if it is already revoked.
pub fn revoke(
    conn: &mut PgConnection,
    certificate_id: i64,
    reason: &str,
    revoked_by: &str,
) -> Result<Revocation, StoreError> {
    let n = diesel::update(
        certificates::table
            .find(certificate_id)
            .filter(certificates::status.eq("valid")),
    )
    .set(certificates::status.eq("revoked"))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "certificate {certificate_id} is not valid"
        )));
    }
    Ok(diesel::insert_into(revocations::table)
        .values((
            revocations::certificate_id.eq(certificate_id),
            revocations::reason.eq(reason),
            revocations::revoked_by.eq(revoked_by),
        ))
        .returning(Revocation::as_returning())
        .get_result(conn)?)
}

/// What OCSP says of the certificate `serial_hex` of the CA
/// `issuer_sha256`: `None` when there is no such certificate,
/// `Some(None)` when it is not revoked, else its revocation.
pub fn revocation_status(
    conn: &mut PgConnection,
    issuer_sha256: &[u8],
    serial_hex: &str,
) -> Result<Option<Option<Revocation>>, StoreError> {
    let row: Option<(i64, Option<Revocation>)> = certificates::table
        .left_join(revocations::table)
        .filter(certificates::serial.eq(serial_hex))
        .filter(certificates::issuer_sha256.eq(issuer_sha256))
        .select((certificates::id, Option::<Revocation>::as_select()))
        .first(conn)
        .optional()?;
    Ok(row.map(|(_, r)| r))
}

/// Every revocation by the CA `issuer_sha256`, with the serial: the CRL's entries.
pub fn revoked_by_issuer(
    conn: &mut PgConnection,
    issuer_sha256: &[u8],
) -> Result<Vec<(String, Revocation)>, StoreError> {
    Ok(revocations::table
        .inner_join(certificates::table)
        .filter(certificates::issuer_sha256.eq(issuer_sha256))
        .order(revocations::revoked_at)
        .select((certificates::serial, Revocation::as_select()))
        .load(conn)?)
}

/// Next CRL number (RFC 5280 §5.2.3), shared by every process.
pub fn next_crl_number(conn: &mut PgConnection) -> Result<i64, StoreError> {
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let r: N = diesel::sql_query("SELECT nextval('crl_number_seq') AS n").get_result(conn)?;
    Ok(r.n)
}

/// Certificates whose CN is `common_name`, issued under one of
/// `organizations`, newest first (the JSON API's device view).
pub fn by_common_name_in(
    conn: &mut PgConnection,
    common_name: &str,
    organizations: &[i64],
) -> Result<Vec<Certificate>, StoreError> {
    Ok(certificates::table
        .filter(certificates::common_name.eq(common_name))
        .filter(certificates::organization_id.eq_any(organizations))
        .order(certificates::id.desc())
        .select(Certificate::as_select())
        .load(conn)?)
}

/// Valid, unexpired certificates of one device under one profile, oldest
/// expiry first; locked so concurrent issuances for the device count each
/// other. A device is a CN within one organization and department: the
/// same CN elsewhere is another tenant's device, which an enrollment here
/// must neither count nor supersede.
pub fn active_for_device(
    conn: &mut PgConnection,
    profile_id: i64,
    (organization_id, department_id): (i64, Option<i64>),
    common_name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Certificate>, StoreError> {
    Ok(certificates::table
        .filter(certificates::profile_id.eq(profile_id))
        .filter(certificates::organization_id.eq(organization_id))
        .filter(certificates::department_id.is_not_distinct_from(department_id))
        .filter(certificates::common_name.eq(common_name))
        .filter(certificates::status.eq("valid"))
        .filter(certificates::not_after.gt(now))
        .order((certificates::not_after.asc(), certificates::id.asc()))
        .select(Certificate::as_select())
        .for_update()
        .load(conn)?)
}

/// SHA-256 of each CA that issued stored certificates, with how many.
pub fn issuers(conn: &mut PgConnection) -> Result<Vec<(Vec<u8>, i64)>, StoreError> {
    use diesel::dsl::count_star;
    Ok(certificates::table
        .group_by(certificates::issuer_sha256)
        .select((certificates::issuer_sha256, count_star()))
        .order_by(certificates::issuer_sha256)
        .load(conn)?)
}
