//! Mail (issue 6) in the console: every officer turns their own
//! pending-request mails on or off; an MRAO sees mails that wait or failed
//! in the outbox and sends a test mail through the configured SMTP server.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::enroll::Enroll;
use server::notify::MailSettings;
use server::store::admins::Role;
use server::store::audit::{self, AuditEvent, AuditKind};
use server::store::{notification_contacts, outbox, StoreError};

use super::{see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

const OUTBOX_LIMIT: i64 = 100;

pub struct Undelivered {
    pub id: i64,
    pub status: String,
    pub kind: String,
    pub recipient: String,
    pub attempts: i32,
    pub next: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "mail.html")]
pub struct MailView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    /// The result of a test mail, shown on the page that sent it.
    pub test_result: Option<String>,
    pub my_mail_on: bool,
    pub my_address: String,
    pub mrao: bool,
    pub smtp: String,
    pub outbox: Vec<Undelivered>,
}

impl MailView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

async fn load(
    officer: &Officer,
    enroll: &Enroll,
    mail: &MailSettings,
) -> Result<MailView, WebError> {
    let pool = enroll.pool().clone();
    let username = officer.username.clone();
    let mrao = officer.role == Role::Mrao;
    let (me, rows) = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let me = notification_contacts::officer_mail(&mut conn, &username)?;
        let rows = if mrao {
            outbox::undelivered(&mut conn, OUTBOX_LIMIT)?
        } else {
            vec![]
        };
        Ok((me, rows))
    })
    .await??;
    Ok(MailView {
        nav: Some(Nav::of(officer)),
        flash: None,
        test_result: None,
        my_mail_on: me.0,
        my_address: me.1.unwrap_or_default(),
        mrao,
        smtp: mail.describe(),
        outbox: rows
            .into_iter()
            .map(|r| Undelivered {
                id: r.id,
                status: r.status,
                kind: r.kind,
                recipient: r.recipient,
                attempts: r.attempts,
                next: when(r.next_attempt_at),
                error: r.last_error.unwrap_or_default(),
            })
            .collect(),
    })
}

fn render(v: &MailView) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(v.render()?))
}

#[derive(Deserialize)]
pub struct PageQuery {
    msg: Option<String>,
}

pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    mail: web::Data<MailSettings>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let mut v = load(&officer, &enroll, &mail).await?;
    v.flash = match q.msg.as_deref() {
        Some("on") => Some("You will receive mails about requests waiting for you."),
        Some("off") => Some("You will no longer receive mails about waiting requests."),
        _ => None,
    };
    render(&v)
}

#[derive(Deserialize)]
pub struct MeForm {
    mail: String,
}

/// An officer's own switch; audited like any configuration change.
pub async fn set_mine(
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<MeForm>,
) -> Result<HttpResponse, WebError> {
    let on = match form.mail.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(WebError::BadRequest("mail must be on or off".into())),
    };
    let pool = enroll.pool().clone();
    let username = officer.username.clone();
    web::block(move || -> Result<(), WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        server::notify::set_officer_mail(&mut conn, &username, on)?;
        Ok(())
    })
    .await??;
    Ok(see_other(if on { "/mail?msg=on" } else { "/mail?msg=off" }))
}

#[derive(Deserialize)]
pub struct TestForm {
    to: String,
}

/// MRAO only: send one mail now, bypassing the outbox, and show the
/// SMTP server's answer.
pub async fn send_test(
    officer: Officer,
    enroll: web::Data<Enroll>,
    mail: web::Data<MailSettings>,
    site: web::Data<crate::SiteInfo>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, WebError> {
    if officer.role != Role::Mrao {
        return Err(WebError::Forbidden);
    }
    let to = form.into_inner().to.trim().to_string();
    if to.is_empty() || !to.contains('@') || to.len() > 254 {
        return Err(WebError::BadRequest("give an email address".into()));
    }
    let settings = mail.get_ref().clone();
    let url = site.public_url.clone();
    let pool = enroll.pool().clone();
    let (actor, target) = (officer.username.clone(), to.clone());
    let result = web::block(move || -> Result<Result<(), String>, WebError> {
        let sent =
            server::notify::sender::send_test(&settings, &url, &target).map_err(|e| e.to_string());
        let mut conn = pool.get().map_err(StoreError::from)?;
        audit::record(
            &mut conn,
            &AuditEvent::new(&actor, AuditKind::TestMailSent)
                .target(format!("mail:{target}"))
                .details(serde_json::json!({ "delivered": sent.is_ok() })),
        )?;
        Ok(sent)
    })
    .await??;
    let mut v = load(&officer, &enroll, &mail).await?;
    v.test_result = Some(match result {
        Ok(()) => format!("Test mail sent to {to}."),
        Err(e) => format!("Test mail to {to} failed: {e}"),
    });
    render(&v)
}
