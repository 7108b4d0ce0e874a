//! Issued certificates: the scoped list with search and filters (keyset
//! pages, CSV export of the same filter), one certificate's detail with PEM
//! and DER downloads, and revocation with an RFC 5280 §5.3.1 reason through
//! `Enroll::revoke` (which audits it; the next CRL lists it). Every page and
//! action reads the certificate through the officer's scope first, so a
//! forged POST for a certificate outside it is a 404 and changes nothing.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;
use server::enroll::Enroll;
use server::store::certificates::Certificate;
use server::store::console_certs::{self, CertFilter, CertRow, CertState};
use server::store::queue::{Cursor, Scope};
use server::store::{orgs, profiles, PgPool, StoreError};

use super::{enc, html, opt_num, see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

const PAGE_SIZE: i64 = 50;
/// Rows fetched per query while writing a CSV export.
const CSV_BATCH: i64 = 1000;
/// Upper bound on one export, so a mistaken "everything" cannot tie up a
/// connection for minutes; the filter narrows it.
const CSV_MAX_ROWS: usize = 200_000;

/// RFC 5280 §5.3.1 reasons an officer may choose (removeFromCRL and
/// aACompromise make no sense here), with their labels.
pub const REASONS: [(&str, &str); 8] = [
    ("unspecified", "Unspecified"),
    ("keyCompromise", "Key compromise"),
    ("cACompromise", "CA compromise"),
    ("affiliationChanged", "Affiliation changed"),
    ("superseded", "Superseded"),
    ("cessationOfOperation", "Cessation of operation"),
    ("certificateHold", "Certificate hold"),
    ("privilegeWithdrawn", "Privilege withdrawn"),
];

/// The list's query string (also the CSV export's).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    state: Option<String>,
    profile: Option<String>,
    org: Option<String>,
    expiring: Option<String>,
    after: Option<String>,
}

impl ListQuery {
    fn filter(&self) -> Result<CertFilter, WebError> {
        let state = match self.state.as_deref().unwrap_or("") {
            "" | "all" => None,
            s => Some(
                CertState::parse(s)
                    .ok_or_else(|| WebError::BadRequest("unknown certificate state".into()))?,
            ),
        };
        let expiring_days = opt_num(&self.expiring, "expiring within")?;
        if expiring_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            return Err(WebError::BadRequest(
                "expiring within must be 1 to 3650 days".into(),
            ));
        }
        Ok(CertFilter {
            text: self.q.clone().filter(|t| !t.trim().is_empty()),
            state,
            profile_id: opt_num(&self.profile, "profile")?,
            organization_id: opt_num(&self.org, "organization")?,
            expiring_days,
        })
    }

    /// The filter part of the query string (for the next page and the
    /// export link).
    fn params(&self) -> String {
        let v = |o: &Option<String>| enc(o.as_deref().unwrap_or(""));
        format!(
            "q={}&state={}&profile={}&org={}&expiring={}",
            v(&self.q),
            v(&self.state),
            v(&self.profile),
            v(&self.org),
            v(&self.expiring)
        )
    }
}

/// Names by id for the list's columns and filter selects.
struct Names {
    orgs: Vec<(i64, String)>,
    profiles: Vec<(i64, String)>,
}

impl Names {
    fn load(conn: &mut server::store::PgPooled, scope: &Scope) -> Result<Names, WebError> {
        let orgs = super::orgs_in_scope(conn, scope)?;
        let profiles = profiles::list(conn)?
            .into_iter()
            .map(|p| (p.id, p.profile_id))
            .collect();
        Ok(Names { orgs, profiles })
    }

    fn org(&self, id: i64) -> String {
        name_of(&self.orgs, id)
    }

    fn profile(&self, id: i64) -> String {
        name_of(&self.profiles, id)
    }
}

fn name_of(names: &[(i64, String)], id: i64) -> String {
    names
        .iter()
        .find(|(i, _)| *i == id)
        .map_or_else(|| id.to_string(), |(_, n)| n.clone())
}

/// A SHA-256 fingerprint as `AB:CD:…`.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub struct Row {
    pub id: i64,
    pub serial: String,
    pub common_name: String,
    pub sans: String,
    pub not_after: String,
    pub state: &'static str,
    pub profile: String,
    pub organization: String,
}

/// A `<select>` option: value, label, selected.
pub type Choice = (String, String, bool);

#[derive(Template)]
#[template(path = "certificates.html")]
pub struct ListView {
    pub nav: Option<Nav>,
    pub text: String,
    pub expiring: String,
    pub states: Vec<Choice>,
    pub profiles: Vec<Choice>,
    pub orgs: Vec<Choice>,
    pub rows: Vec<Row>,
    pub params: String,
    pub next: Option<String>,
}

fn choices(names: &[(i64, String)], selected: Option<i64>) -> Vec<Choice> {
    let mut out = vec![(String::new(), "any".to_string(), selected.is_none())];
    out.extend(
        names
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone(), Some(*id) == selected)),
    );
    out
}

pub async fn list(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let filter = q.filter()?;
    let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => {
            Some(Cursor::decode(a).ok_or_else(|| WebError::BadRequest("bad page cursor".into()))?)
        }
        None => None,
    };
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    let f = filter.clone();
    let now = Utc::now();
    let (page, names) = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let page = console_certs::list(&mut conn, &scope, &f, after, PAGE_SIZE, now)?;
        Ok((page, Names::load(&mut conn, &scope)?))
    })
    .await??;
    let params = q.params();
    let next = page
        .next
        .map(|c| format!("{params}&after={}", enc(&c.encode())));
    let rows = page
        .rows
        .iter()
        .map(|r| Row {
            id: r.id,
            serial: r.serial.clone(),
            common_name: r.common_name.clone().unwrap_or_default(),
            sans: r.sans.join(", "),
            not_after: r.not_after.format("%Y-%m-%d").to_string(),
            state: r.state(now).as_str(),
            profile: names.profile(r.profile_id),
            organization: names.org(r.organization_id),
        })
        .collect();
    let current = filter.state.map_or("", CertState::as_str);
    let states = ["", "valid", "expired", "revoked"]
        .into_iter()
        .map(|s| {
            let label = if s.is_empty() { "any" } else { s };
            (s.to_string(), label.to_string(), s == current)
        })
        .collect();
    html(&ListView {
        nav: Some(Nav::of(&officer)),
        text: filter.text.clone().unwrap_or_default(),
        expiring: filter
            .expiring_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        states,
        profiles: choices(&names.profiles, filter.profile_id),
        orgs: choices(&names.orgs, filter.organization_id),
        rows,
        params,
        next,
    })
}

/// A cell a spreadsheet would run as a formula (OWASP "CSV Injection":
/// leading `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`,
/// so it is shown as text. The CN, SANs and subject are the enrolling
/// client's choice.
fn neutralised(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn csv_row(
    w: &mut csv::Writer<Vec<u8>>,
    r: &CertRow,
    names: &Names,
    now: chrono::DateTime<Utc>,
) -> Result<(), WebError> {
    w.write_record(
        [
            r.id.to_string(),
            r.serial.clone(),
            r.subject.clone(),
            r.common_name.clone().unwrap_or_default(),
            r.sans.join(" "),
            r.not_before.to_rfc3339(),
            r.not_after.to_rfc3339(),
            r.state(now).as_str().to_string(),
            hex::encode_upper(&r.fingerprint_sha256),
            names.profile(r.profile_id),
            names.org(r.organization_id),
            r.department_id.map(|d| d.to_string()).unwrap_or_default(),
            r.request_id.map(|d| d.to_string()).unwrap_or_default(),
        ]
        .map(neutralised),
    )
    .map_err(|e| WebError::Internal(format!("csv: {e}")))
}

/// The filtered list as CSV (RFC 4180 quoting by the `csv` crate), every
/// page of it up to `CSV_MAX_ROWS`.
pub async fn export_csv(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let filter = q.into_inner().filter()?;
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    let body = web::block(move || -> Result<Vec<u8>, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let names = Names::load(&mut conn, &scope)?;
        let now = Utc::now();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "id",
            "serial",
            "subject",
            "common_name",
            "sans",
            "not_before",
            "not_after",
            "state",
            "sha256_fingerprint",
            "profile",
            "organization",
            "department_id",
            "request_id",
        ])
        .map_err(|e| WebError::Internal(format!("csv: {e}")))?;
        let mut after = None;
        let mut written = 0;
        loop {
            let page = console_certs::list(&mut conn, &scope, &filter, after, CSV_BATCH, now)?;
            for r in &page.rows {
                csv_row(&mut w, r, &names, now)?;
            }
            written += page.rows.len();
            match page.next {
                Some(c) if written < CSV_MAX_ROWS => after = Some(c),
                _ => break,
            }
        }
        w.into_inner()
            .map_err(|e| WebError::Internal(format!("csv: {e}")))
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"certificates.csv\"",
        ))
        .body(body))
}

pub struct RevocationInfo {
    pub reason: String,
    pub at: String,
    pub by: String,
}

#[derive(Template)]
#[template(path = "certificate.html")]
pub struct DetailView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub id: i64,
    pub serial: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub state: &'static str,
    pub fingerprint: String,
    pub profile: String,
    pub organization: String,
    pub department: String,
    pub request_id: Option<i64>,
    pub replaces_id: Option<i64>,
    pub replaced_by: Vec<i64>,
    pub revocation: Option<RevocationInfo>,
    pub crl_url: String,
    pub reasons: Vec<(&'static str, &'static str)>,
}

impl DetailView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

fn load_detail(
    pool: &PgPool,
    enroll: &Enroll,
    scope: &Scope,
    id: i64,
) -> Result<DetailView, WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let c: Certificate = console_certs::certificate(&mut conn, scope, id)?;
    let profile = profiles::by_id(&mut conn, c.profile_id)?;
    let organization = orgs::org_by_id(&mut conn, c.organization_id)?.name;
    let department = match c.department_id {
        Some(d) => orgs::department_by_id(&mut conn, d)?.name,
        None => String::new(),
    };
    let revocation = console_certs::revocation(&mut conn, c.id)?.map(|r| RevocationInfo {
        reason: r.reason,
        at: when(r.revoked_at),
        by: r.revoked_by,
    });
    let replaced_by = console_certs::replaced_by(&mut conn, c.id)?;
    let issuer = hex::encode(&c.issuer_sha256);
    let auth = enroll.authority();
    let crl_url = auth
        .cas()
        .find(|ca| ca.fingerprint().eq_ignore_ascii_case(&issuer))
        .map(|ca| auth.crl_url(ca))
        .unwrap_or_default();
    let now = Utc::now();
    let state = if c.is_revoked() {
        CertState::Revoked
    } else if c.not_after <= now {
        CertState::Expired
    } else {
        CertState::Valid
    };
    Ok(DetailView {
        nav: None,
        flash: None,
        id: c.id,
        serial: c.serial,
        subject: c.subject,
        sans: c.sans,
        not_before: when(c.not_before),
        not_after: when(c.not_after),
        state: state.as_str(),
        fingerprint: colon_hex(&c.fingerprint_sha256),
        profile: format!("{} ({})", profile.name, profile.profile_id),
        organization,
        department,
        request_id: c.request_id,
        replaces_id: c.replaces_id,
        replaced_by,
        revocation,
        crl_url,
        reasons: REASONS.to_vec(),
    })
}

#[derive(Deserialize)]
pub struct DetailQuery {
    msg: Option<String>,
}

pub async fn detail(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    q: web::Query<DetailQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    let mut page = web::block(move || load_detail(&pool, &enroll, &scope, id)).await??;
    page.nav = Some(Nav::of(&officer));
    // Fixed message by code: the query string never reaches the page.
    page.flash = match q.msg.as_deref() {
        Some("revoked") => Some("Revoked: the next CRL lists this certificate."),
        _ => None,
    };
    html(&page)
}

/// The certificate in scope, for the downloads.
async fn scoped(officer: &Officer, enroll: &Enroll, id: i64) -> Result<Certificate, WebError> {
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    web::block(move || -> Result<Certificate, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        Ok(console_certs::certificate(&mut conn, &scope, id)?)
    })
    .await?
}

fn download(body: Vec<u8>, content_type: &str, file_name: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(body)
}

pub async fn pem(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let c = scoped(&officer, &enroll, path.into_inner()).await?;
    let pem = openssl::x509::X509::from_der(&c.der)
        .and_then(|x| x.to_pem())
        .map_err(|e| WebError::Internal(format!("stored certificate unreadable: {e}")))?;
    Ok(download(
        pem,
        "application/x-pem-file",
        format!("{}.pem", c.serial),
    ))
}

pub async fn der(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let c = scoped(&officer, &enroll, path.into_inner()).await?;
    Ok(download(
        c.der,
        "application/pkix-cert",
        format!("{}.cer", c.serial),
    ))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    reason: String,
}

pub async fn revoke(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let reason = form.into_inner().reason;
    if !REASONS.iter().any(|(r, _)| *r == reason) {
        return Err(WebError::BadRequest("unknown revocation reason".into()));
    }
    web::block(move || -> Result<(), WebError> {
        let serial = {
            let mut conn = enroll.pool().get().map_err(StoreError::from)?;
            console_certs::certificate(&mut conn, &officer.scope, id)?.serial
        };
        enroll.revoke(&serial, &reason, &officer.username)?;
        Ok(())
    })
    .await??;
    Ok(see_other(&format!("/certificates/{id}?msg=revoked")))
}

#[cfg(test)]
mod tests {
    use super::neutralised;

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for bad in ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralised(bad.into()), format!("'{bad}"));
        }
        for ok in ["", "laptop-1", "CN==1+2", " =1", "1-2"] {
            assert_eq!(neutralised(ok.into()), ok);
        }
    }
}
