//! Organization access codes in the officer's scope: create one for an
//! organization or department (optionally one profile), list them (never
//! the codes: only argon2id hashes exist), disable or enable one. Rules
//! and audit are `server::admin::access_codes`'s. A refused form keeps
//! the place, profile and label, never the code.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::admin::access_codes::{self as codes, CodeDraft};
use server::admin::AdminError;
use server::enroll::Enroll;
use server::store::{profiles, PgPooled};

use super::challenges::{parse_place, places};
use super::form::{self, FormState};
use super::profiles::place_names;
use super::{actor, blocking, see_other, switch, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

pub struct CodeRow {
    pub id: i64,
    pub label: String,
    pub place: String,
    pub profile: String,
    pub enabled: bool,
    pub created_by: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "access_codes.html")]
pub struct AccessCodesView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub form: FormState,
    /// (value, label) of the organizations/departments in scope.
    pub places: Vec<(String, String)>,
    /// (profile ID, name) of the profiles the officer sees.
    pub profiles: Vec<(String, String)>,
    pub codes: Vec<CodeRow>,
}

impl AccessCodesView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }

    pub fn invalid(&self, name: &str) -> bool {
        self.form.error(name).is_some()
    }
}

fn load(
    conn: &mut PgPooled,
    officer: &Officer,
    form: FormState,
) -> Result<AccessCodesView, WebError> {
    let who = actor(officer);
    let all = profiles::list(conn)?;
    let mut rows = vec![];
    for c in codes::listing(conn, &who)? {
        rows.push(CodeRow {
            id: c.id,
            place: place_names(conn, &[(c.organization_id, c.department_id)])?,
            profile: c
                .profile_id
                .and_then(|p| all.iter().find(|x| x.id == p))
                .map_or_else(|| "any".to_string(), |p| p.profile_id.clone()),
            enabled: c.enabled,
            created_by: c.created_by,
            created: when(c.created_at),
            label: c.label,
        });
    }
    Ok(AccessCodesView {
        nav: Some(Nav::of(officer)),
        flash: None,
        form,
        places: places(conn, &officer.scope)?,
        profiles: server::admin::profiles::listing(conn, &who)?
            .into_iter()
            .filter(|l| l.profile.enabled)
            .map(|l| (l.profile.profile_id, l.profile.name))
            .collect(),
        codes: rows,
    })
}

#[derive(Deserialize)]
pub struct PageQuery {
    msg: Option<String>,
}

pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = blocking(&enroll, move |conn| load(conn, &officer, FormState::new())).await?;
    page.flash = match q.msg.as_deref() {
        Some("created") => Some("Access code created: devices may now enroll with it."),
        Some("disabled") => Some("Access code disabled: enrollments with it are refused."),
        Some("enabled") => Some("Access code enabled again."),
        _ => None,
    };
    super::html(&page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    place: String,
    profile: Option<String>,
    label: Option<String>,
    code: Option<String>,
}

/// POST /access-codes
pub async fn create(
    officer: Officer,
    enroll: web::Data<Enroll>,
    body: web::Form<CreateForm>,
) -> Result<HttpResponse, WebError> {
    let f = body.into_inner();
    let place = parse_place(&f.place, &officer.scope)?;
    let refused = blocking(&enroll, move |conn| {
        let label = f.label.unwrap_or_default();
        let profile = f.profile.unwrap_or_default();
        let made = codes::create(
            conn,
            &actor(&officer),
            &CodeDraft {
                place,
                profile: Some(profile.as_str()),
                label: &label,
                code: f.code.as_deref().unwrap_or_default(),
            },
        );
        match made {
            Ok(_) => Ok(None),
            Err(AdminError::Refused(errors)) => {
                // The code itself is never sent back.
                let mut state = FormState::new();
                state
                    .keep("place", f.place)
                    .keep("profile", profile)
                    .keep("label", label);
                state.refuse_fields(&errors);
                Ok(Some(load(conn, &officer, state)?))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match refused {
        None => Ok(see_other("/access-codes?msg=created")),
        Some(page) => form::refused(&page),
    }
}

async fn set_enabled(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    enabled: bool,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    switch(
        officer,
        &enroll,
        enabled,
        move |c, a, on| codes::set_enabled(c, a, id, on),
        |s| format!("/access-codes?msg={s}"),
    )
    .await
}

/// POST /access-codes/{id}/disable
pub async fn disable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path, false).await
}

/// POST /access-codes/{id}/enable
pub async fn enable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path, true).await
}
