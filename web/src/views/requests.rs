//! The request queue (keyset-paginated, filtered, scoped), one request's
//! detail with its CSR, challenge, policy verdict and history, and the
//! approve/decline actions. Each action re-reads the request through the
//! officer's scope before calling `Enroll`, so a forged POST for another
//! department's request is a 404.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::csr::Csr;
use server::enroll::{policy, Enroll};
use server::store::queue::{self, Cursor, Filter, Scope};
use server::store::requests::{self, EnrollmentRequest, RequestEvent, Status};
use server::store::{challenges, orgs, profiles, PgPool, StoreError};

use super::blocking;
use super::{enc, html, see_other, Nav};
use crate::error::WebError;
use crate::session::Officer;

const PAGE_SIZE: i64 = 50;

/// One queue row as shown.
pub struct Row {
    pub id: i64,
    pub created: String,
    pub common_name: String,
    pub subject: String,
    pub status: String,
    pub organization: String,
}

#[derive(Template)]
#[template(path = "requests.html")]
pub struct QueueView {
    pub nav: Option<Nav>,
    /// The outcome of a bulk decision (built from two numbers only).
    pub flash: Option<String>,
    /// The state filter's choices, and whether each is selected.
    pub options: Vec<(&'static str, bool)>,
    pub text: String,
    pub rows: Vec<Row>,
    /// Query string of the next page, if there is one.
    pub next: Option<String>,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    q: Option<String>,
    after: Option<String>,
    /// Outcome of a bulk decision: how many succeeded and failed.
    done: Option<u32>,
    failed: Option<u32>,
}

fn org_name(names: &[orgs::Organization], id: i64) -> String {
    names
        .iter()
        .find(|o| o.id == id)
        .map_or_else(|| id.to_string(), |o| o.name.clone())
}

pub async fn queue(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let QueueQuery {
        status,
        q,
        after,
        done,
        failed,
    } = q.into_inner();
    let flash = done.map(|d| match failed.unwrap_or(0) {
        0 => format!("{d} request(s) decided."),
        f => format!("{d} request(s) decided; {f} could not be (not found, out of scope, or no longer pending)."),
    });
    let status = status.unwrap_or_else(|| "requested".into());
    let filter = Filter {
        status: match status.as_str() {
            "all" => None,
            s => Some(
                Status::parse(s).ok_or_else(|| WebError::BadRequest("unknown status".into()))?,
            ),
        },
        text: q.clone(),
    };
    let after = match after.as_deref() {
        Some(a) => {
            Some(Cursor::decode(a).ok_or_else(|| WebError::BadRequest("bad page cursor".into()))?)
        }
        None => None,
    };
    let scope = officer.scope.clone();
    let (page, names) = blocking(&enroll, move |conn| {
        let page = queue::list(conn, &scope, &filter, after, PAGE_SIZE)?;
        Ok((page, orgs::list_orgs(conn)?))
    })
    .await?;
    let text = q.unwrap_or_default();
    let next = page.next.map(|c| {
        format!(
            "status={}&q={}&after={}",
            enc(&status),
            enc(&text),
            enc(&c.encode())
        )
    });
    let rows = page
        .rows
        .into_iter()
        .map(|r| Row {
            id: r.id,
            created: r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            common_name: r.common_name.clone().unwrap_or_default(),
            organization: org_name(&names, r.organization_id),
            subject: r.subject,
            status: r.status,
        })
        .collect();
    let options = ["requested", "applied", "issued", "declined", "all"]
        .into_iter()
        .map(|s| (s, s == status))
        .collect();
    html(&QueueView {
        nav: Some(Nav::of(&officer)),
        flash,
        options,
        text,
        rows,
        next,
    })
}

/// What the detail page shows about the challenge used: never its value
/// (scepd keeps only a hash anyway).
pub struct ChallengeInfo {
    pub id: i64,
    pub created_by: String,
    pub created_at: String,
    pub device_identity: String,
}

pub struct EventRow {
    pub at: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "request.html")]
pub struct RequestView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub id: i64,
    pub status: String,
    pub message_type: String,
    pub transaction_id: String,
    pub created: String,
    pub client_ip: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub key: String,
    pub requested_eku: Vec<String>,
    pub profile: String,
    pub organization: String,
    pub department: String,
    pub challenge: Option<ChallengeInfo>,
    /// Ok(subject to issue) or Err(violation).
    pub verdict: Result<String, String>,
    pub decline_reason: String,
    pub certificate_id: Option<i64>,
    pub events: Vec<EventRow>,
    pub can_approve: bool,
    pub can_decline: bool,
    /// The decline form as typed, when it was refused.
    pub form: super::form::FormState,
}

impl RequestView {
    /// The session's CSRF token for the action forms.
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    msg: Option<String>,
}

fn flash(code: Option<&str>) -> Option<&'static str> {
    // Fixed messages by code: the query string never reaches the page.
    match code? {
        "approved" => {
            Some("Approved: the certificate is issued; the device receives it at its next poll.")
        }
        "declined" => Some("Declined: the device's next poll gets a failure."),
        _ => None,
    }
}

fn event_row(e: RequestEvent) -> EventRow {
    EventRow {
        at: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        from: e.from_status.unwrap_or_else(|| "—".into()),
        to: e.to_status,
        actor: e.actor,
        note: e.note.unwrap_or_default(),
    }
}

/// Gather everything the detail page shows about a request in scope.
fn load_detail(pool: &PgPool, scope: &Scope, id: i64) -> Result<RequestView, WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let r: EnrollmentRequest = queue::request(&mut conn, scope, id)?;
    let profile = profiles::by_id(&mut conn, r.profile_id)?;
    let organization = orgs::org_by_id(&mut conn, r.organization_id)?.name;
    let department = match r.department_id {
        Some(d) => orgs::department_by_id(&mut conn, d)?.name,
        None => String::new(),
    };
    let challenge = match r.challenge_id {
        Some(c) => {
            let c = challenges::by_id(&mut conn, c)?;
            Some(ChallengeInfo {
                id: c.id,
                created_by: c.created_by,
                created_at: c.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                device_identity: c.device_identity.unwrap_or_default(),
            })
        }
        None => None,
    };
    let events = requests::events(&mut conn, r.id)?
        .into_iter()
        .map(event_row)
        .collect();
    let (sans, requested_eku, verdict) = match Csr::from_der(&r.csr_der) {
        Ok(csr) => (
            csr.sans
                .iter()
                .map(|s| format!("{}: {}", policy::san_type(s), policy::san_value(s)))
                .collect(),
            csr.requested_eku.clone(),
            policy::check(&profile, &csr)
                .map(|name| server::enroll::name_text(&name))
                .map_err(|v| v.to_string()),
        ),
        Err(e) => (vec![], vec![], Err(format!("stored CSR unreadable: {e}"))),
    };
    let status = r.status();
    Ok(RequestView {
        nav: None,
        flash: None,
        id: r.id,
        status: r.status.clone(),
        message_type: r.message_type,
        transaction_id: r.transaction_id,
        created: r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        client_ip: r.client_ip.unwrap_or_default(),
        subject: r.subject,
        sans,
        key: r.key_desc,
        requested_eku,
        profile: format!("{} ({})", profile.name, profile.profile_id),
        organization,
        department,
        challenge,
        verdict,
        decline_reason: r.decline_reason.unwrap_or_default(),
        certificate_id: r.certificate_id,
        events,
        can_approve: status == Some(Status::Requested),
        can_decline: matches!(status, Some(Status::Requested | Status::Applied)),
        form: super::form::FormState::new(),
    })
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
    let mut page = web::block(move || load_detail(&pool, &scope, id)).await??;
    page.nav = Some(Nav::of(&officer));
    page.flash = flash(q.msg.as_deref());
    html(&page)
}

/// Refuse unless request `id` is in the officer's scope (404 otherwise).
fn ensure_in_scope(enroll: &Enroll, scope: &Scope, id: i64) -> Result<(), WebError> {
    let mut conn = enroll.pool().get().map_err(StoreError::from)?;
    queue::request(&mut conn, scope, id)?;
    Ok(())
}

pub async fn approve(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    web::block(move || -> Result<(), WebError> {
        ensure_in_scope(&enroll, &officer.scope, id)?;
        enroll.approve(id, &officer.username)?;
        Ok(())
    })
    .await??;
    Ok(see_other(&format!("/requests/{id}?msg=approved")))
}

#[derive(Deserialize)]
pub struct DeclineForm {
    reason: String,
}

pub async fn decline(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    form: web::Form<DeclineForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let reason = form.into_inner().reason;
    let refusal = if reason.trim().is_empty() {
        Some("a decline needs a reason")
    } else if reason.chars().count() > 500 {
        Some("the reason is limited to 500 characters")
    } else {
        None
    };
    if let Some(message) = refusal {
        // The detail page again, with the reason as typed and the message
        // next to it (422), not an error page that loses the text.
        let scope = officer.scope.clone();
        let pool = enroll.pool().clone();
        let mut page = web::block(move || load_detail(&pool, &scope, id)).await??;
        page.nav = Some(Nav::of(&officer));
        page.form.keep("reason", reason);
        page.form.refuse("reason", message);
        return Ok(HttpResponse::UnprocessableEntity()
            .content_type("text/html; charset=utf-8")
            .body(askama::Template::render(&page)?));
    }
    web::block(move || -> Result<(), WebError> {
        ensure_in_scope(&enroll, &officer.scope, id)?;
        enroll.decline(id, &officer.username, &reason)?;
        Ok(())
    })
    .await??;
    Ok(see_other(&format!("/requests/{id}?msg=declined")))
}

/// Requests one bulk form may decide.
const MAX_BULK: usize = 100;

/// Approve or decline the selected queue rows. The form repeats `ids`, so
/// the body is read as pairs. Each request is re-read through the scope and
/// decided on its own (one transaction each, audited by `Enroll`); one that
/// cannot be decided does not stop the others, and is counted.
pub async fn bulk(
    officer: Officer,
    enroll: web::Data<Enroll>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("unreadable form".into()))?;
    let field = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let action = field("action").unwrap_or_default();
    let reason = field("reason").unwrap_or_default();
    let ids = pairs
        .iter()
        .filter(|(n, _)| n == "ids")
        .map(|(_, v)| v.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WebError::BadRequest("bad request id".into()))?;
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(WebError::BadRequest(format!(
            "select between 1 and {MAX_BULK} requests"
        )));
    }
    match action.as_str() {
        "approve" => {}
        "decline" if !reason.is_empty() && reason.chars().count() <= 500 => {}
        "decline" => {
            return Err(WebError::BadRequest(
                "a decline needs a reason of at most 500 characters".into(),
            ))
        }
        _ => return Err(WebError::BadRequest("unknown action".into())),
    }
    let (done, failed) = web::block(move || -> Result<(u32, u32), WebError> {
        let (mut done, mut failed) = (0, 0);
        for id in ids {
            let outcome = ensure_in_scope(&enroll, &officer.scope, id).and_then(|()| {
                if action == "approve" {
                    enroll.approve(id, &officer.username).map(|_| ())
                } else {
                    enroll.decline(id, &officer.username, &reason).map(|_| ())
                }
                .map_err(WebError::from)
            });
            match outcome {
                Ok(()) => done += 1,
                Err(WebError::Unavailable) => return Err(WebError::Unavailable),
                Err(e) => {
                    tracing::info!(request = id, error = %e, "bulk decision skipped");
                    failed += 1;
                }
            }
        }
        Ok((done, failed))
    })
    .await??;
    Ok(see_other(&format!(
        "/requests?status=requested&done={done}&failed={failed}"
    )))
}
