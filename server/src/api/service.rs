//! What each `/api/v1` endpoint does, given an authenticated caller: scope
//! checks against the key's organizations, then the challenge service or a
//! read from the store. Out-of-scope objects answer `not_found`, so a key
//! cannot probe other organizations' requests or devices.

use chrono::{DateTime, Duration, Utc};
use diesel::pg::PgConnection;
use serde::{Deserialize, Serialize};

use super::keys::Caller;
use super::ApiError;
use crate::admin::profile_settings::SettingsPatch;
use crate::admin::{self, Actor, AdminError};
use crate::challenge::{self, MintRequest, Minted};
use crate::store::admins::Role;
use crate::store::certificates::{self, Certificate};
use crate::store::profiles;
use crate::store::queue::Scope;
use crate::store::requests::{self, EnrollmentRequest};

/// Lifetime of a challenge minted without `ttl_minutes`.
const DEFAULT_TTL_MINUTES: u64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub device_identity: Option<String>,
    pub ttl_minutes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkMintBody {
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub ttl_minutes: Option<u64>,
    /// Unbound challenges to mint (exclusive with `device_identities`).
    pub count: Option<u32>,
    /// One challenge bound to each identity (CN or serialNumber).
    pub device_identities: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct ChallengeOut {
    pub id: i64,
    /// The secret: shown in this response only.
    pub challenge: String,
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub device_identity: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct ProfileOut {
    pub id: String,
    pub name: String,
    pub approval_mode: String,
    pub enabled: bool,
    pub scep_url: String,
    /// The caller's organizations this profile is enabled for.
    pub organizations: Vec<i64>,
    /// A SUCCESS CertRep carries the CA chain after the certificate.
    pub certrep_includes_chain: bool,
    /// A first enrollment must be signed with the key being certified.
    pub signer_key_must_match: bool,
    /// A manual profile issues a renewal that keeps the identity at once.
    pub auto_renew: bool,
    /// A renewal may change the subject or SANs (an officer decides).
    pub renewal_allows_identity_change: bool,
    /// The certificate a new one replaces is revoked (per-device limit;
    /// a renewal's, once its successor is delivered).
    pub revoke_on_replace: bool,
    /// The weakest envelope cipher accepted: des, des3 or aes.
    pub min_cipher: String,
    /// Issued certificates carry the CRL distribution point.
    pub include_crl_dp: bool,
    /// Issued certificates carry the OCSP URL (authorityInfoAccess).
    pub include_ocsp_url: bool,
    /// A CSR's requested validity shortens the certificate's.
    pub honor_requested_validity: bool,
}

#[derive(Debug, Serialize)]
pub struct RequestOut {
    pub id: i64,
    pub transaction_id: String,
    pub status: String,
    pub message_type: String,
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub subject: String,
    pub common_name: Option<String>,
    pub certificate_serial: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct CertificateOut {
    pub serial: String,
    pub subject: String,
    pub common_name: Option<String>,
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// valid, revoked or expired.
    pub status: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub fingerprint_sha256: String,
    pub pem: String,
}

/// The longest a challenge may live (as `challenge::mint` enforces).
pub(crate) const MAX_TTL_MINUTES: u64 = 30 * 24 * 60;

/// A lifetime in minutes; beyond 30 days it is refused here, before any
/// arithmetic on it (0 is left to `challenge::mint`, which refuses it).
pub(crate) fn ttl_of(minutes: u64) -> Result<Duration, ApiError> {
    match i64::try_from(minutes) {
        Ok(m) if minutes <= MAX_TTL_MINUTES => Ok(Duration::minutes(m)),
        _ => Err(ApiError::OutOfRange(format!(
            "ttl_minutes must be at most {MAX_TTL_MINUTES} (30 days)"
        ))),
    }
}

fn ttl(minutes: Option<u64>) -> Result<Duration, ApiError> {
    ttl_of(minutes.unwrap_or(DEFAULT_TTL_MINUTES))
}

fn require_scope(caller: &Caller, organization_id: i64) -> Result<(), ApiError> {
    if caller.may_act_for(organization_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this API key may not act for organization {organization_id}"
        )))
    }
}

/// A key limited to some profiles may use only those.
pub(crate) fn require_profile(
    conn: &mut PgConnection,
    caller: &Caller,
    profile: &str,
) -> Result<(), ApiError> {
    if caller.profiles.is_empty() {
        return Ok(());
    }
    match profiles::by_profile_id(conn, profile)? {
        Some(p) if caller.may_use_profile(p.id) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "this API key may not use profile {profile:?}"
        ))),
    }
}

fn render(minted: Vec<Minted>, profile: &str) -> Vec<ChallengeOut> {
    minted
        .into_iter()
        .map(|m| ChallengeOut {
            id: m.challenge.id,
            challenge: m.secret,
            profile: profile.to_string(),
            organization_id: m.challenge.organization_id,
            department_id: m.challenge.department_id,
            device_identity: m.challenge.device_identity,
            expires_at: m.challenge.expires_at,
        })
        .collect()
}

pub fn mint_one(
    conn: &mut PgConnection,
    caller: &Caller,
    body: &MintBody,
    max_unused: u32,
) -> Result<ChallengeOut, ApiError> {
    require_scope(caller, body.organization_id)?;
    require_profile(conn, caller, &body.profile)?;
    let actor = caller.actor();
    let minted = challenge::mint_limited(
        conn,
        &MintRequest {
            profile: &body.profile,
            organization_id: body.organization_id,
            department_id: body.department_id,
            device_identity: body.device_identity.as_deref(),
            ttl: ttl(body.ttl_minutes)?,
            count: 1,
            actor: &actor,
        },
        max_unused,
    )?;
    render(minted, &body.profile)
        .pop()
        .ok_or(ApiError::Internal)
}

pub fn mint_bulk(
    conn: &mut PgConnection,
    caller: &Caller,
    body: &BulkMintBody,
    max_unused: u32,
) -> Result<Vec<ChallengeOut>, ApiError> {
    require_scope(caller, body.organization_id)?;
    require_profile(conn, caller, &body.profile)?;
    let actor = caller.actor();
    let req = MintRequest {
        profile: &body.profile,
        organization_id: body.organization_id,
        department_id: body.department_id,
        device_identity: None,
        ttl: ttl(body.ttl_minutes)?,
        count: body.count.unwrap_or(0),
        actor: &actor,
    };
    let minted = match (&body.count, &body.device_identities) {
        (Some(_), None) => challenge::mint_limited(conn, &req, max_unused)?,
        (None, Some(ids)) => {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            challenge::mint_bound(conn, &req, &ids, max_unused)?
        }
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of count and device_identities".into(),
            ))
        }
    };
    Ok(render(minted, &body.profile))
}

pub fn list_profiles(
    conn: &mut PgConnection,
    caller: &Caller,
    public_url: &str,
) -> Result<Vec<ProfileOut>, ApiError> {
    let mut out = vec![];
    for p in profiles::list(conn)? {
        if let Some(p) = render_profile(conn, caller, public_url, p)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// `PATCH /profiles/{id}`: change some of a profile's switches. The key
/// acts as an RAO of its organizations would (`admin::rules`): only a
/// profile enabled for its organizations alone, checked inside the
/// transaction that changes it, audited under the key.
pub fn change_profile(
    conn: &mut PgConnection,
    caller: &Caller,
    public_url: &str,
    profile_id: &str,
    patch: &SettingsPatch,
) -> Result<ProfileOut, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::Invalid(
            "nothing to change: give at least one setting".into(),
        ));
    }
    require_profile(conn, caller, profile_id)?;
    let scope = Scope::Limited {
        organizations: caller.organizations.clone(),
        departments: vec![],
    };
    let name = caller.actor();
    let actor = Actor {
        username: &name,
        role: Role::Rao,
        scope: &scope,
    };
    let changed = admin::profiles::change(conn, &actor, profile_id, |d| patch.apply(d)).map_err(
        |e| match e {
            AdminError::NotFound => ApiError::NotFound("no such profile".into()),
            AdminError::Forbidden => ApiError::Forbidden(
                "the profile is enabled for organizations outside this key's".into(),
            ),
            AdminError::Store(e) => e.into(),
            e => ApiError::Invalid(e.to_string()),
        },
    )?;
    render_profile(conn, caller, public_url, changed)?
        .ok_or_else(|| ApiError::NotFound("no such profile".into()))
}

/// A profile as the caller sees it; `None` when none of its organizations
/// is the caller's.
fn render_profile(
    conn: &mut PgConnection,
    caller: &Caller,
    public_url: &str,
    p: profiles::Profile,
) -> Result<Option<ProfileOut>, ApiError> {
    if !caller.may_use_profile(p.id) {
        return Ok(None);
    }
    let organizations: Vec<i64> = profiles::organizations_of(conn, p.id)?
        .into_iter()
        .filter(|o| caller.may_act_for(*o))
        .collect();
    if organizations.is_empty() {
        return Ok(None);
    }
    Ok(Some(ProfileOut {
        scep_url: format!("{public_url}/scep/{}", p.profile_id),
        id: p.profile_id,
        name: p.name,
        approval_mode: p.approval_mode,
        enabled: p.enabled,
        organizations,
        certrep_includes_chain: p.certrep_includes_chain,
        signer_key_must_match: p.signer_key_must_match,
        auto_renew: p.auto_renew,
        renewal_allows_identity_change: p.renewal_allows_identity_change,
        revoke_on_replace: p.revoke_on_replace,
        min_cipher: p.min_cipher,
        include_crl_dp: p.include_crl_dp,
        include_ocsp_url: p.include_ocsp_url,
        honor_requested_validity: p.honor_requested_validity,
    }))
}

fn render_request(conn: &mut PgConnection, r: EnrollmentRequest) -> Result<RequestOut, ApiError> {
    let profile = profiles::by_id(conn, r.profile_id)?.profile_id;
    let certificate_serial = match r.certificate_id {
        Some(id) => Some(certificates::by_id(conn, id)?.serial),
        None => None,
    };
    Ok(RequestOut {
        id: r.id,
        transaction_id: r.transaction_id,
        status: r.status,
        message_type: r.message_type,
        profile,
        organization_id: r.organization_id,
        department_id: r.department_id,
        subject: r.subject,
        common_name: r.common_name,
        certificate_serial,
        decline_reason: r.decline_reason,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

/// A request by ID or by transactionID, if the caller may see it.
pub fn request_status(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Option<i64>,
    transaction_id: Option<&str>,
) -> Result<RequestOut, ApiError> {
    let found = match (id, transaction_id) {
        (Some(id), None) => Some(requests::by_id(conn, id).map_err(|_| not_found_request())?),
        (None, Some(t)) => requests::latest_by_transaction_in(conn, t, &caller.organizations)?,
        _ => {
            return Err(ApiError::Invalid(
                "give a request ID or a transaction_id".into(),
            ))
        }
    };
    match found {
        Some(r)
            if caller.may_act_for(r.organization_id) && caller.may_use_profile(r.profile_id) =>
        {
            render_request(conn, r)
        }
        _ => Err(not_found_request()),
    }
}

fn not_found_request() -> ApiError {
    ApiError::NotFound("no such enrollment request".into())
}

fn render_certificate(conn: &mut PgConnection, c: Certificate) -> Result<CertificateOut, ApiError> {
    let profile = profiles::by_id(conn, c.profile_id)?.profile_id;
    let pem = openssl::x509::X509::from_der(&c.der)
        .and_then(|x| x.to_pem())
        .map_err(|e| {
            tracing::error!(error = %e, serial = %c.serial, "stored certificate unreadable");
            ApiError::Internal
        })?;
    let status = if c.is_revoked() {
        "revoked".to_string()
    } else if c.not_after <= Utc::now() {
        "expired".to_string()
    } else {
        c.status.clone()
    };
    Ok(CertificateOut {
        serial: c.serial,
        subject: c.subject,
        common_name: c.common_name,
        profile,
        organization_id: c.organization_id,
        department_id: c.department_id,
        status,
        not_before: c.not_before,
        not_after: c.not_after,
        fingerprint_sha256: hex::encode(&c.fingerprint_sha256),
        pem: String::from_utf8_lossy(&pem).into_owned(),
    })
}

/// Certificates issued to the device with this CN in the caller's organizations.
pub fn device_certificates(
    conn: &mut PgConnection,
    caller: &Caller,
    identity: &str,
) -> Result<Vec<CertificateOut>, ApiError> {
    certificates::by_common_name_in(conn, identity, &caller.organizations)?
        .into_iter()
        .filter(|c| caller.may_use_profile(c.profile_id))
        .map(|c| render_certificate(conn, c))
        .collect()
}
