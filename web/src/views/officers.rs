//! RA officers in the console (issue 4): list, create (with an initial
//! password, never shown again), edit role, email and assignments,
//! disable or enable, reset a password. Each officer manages only officers
//! at its level or below and inside its scope (`server::admin::rules`);
//! an officer out of reach is "not found", also for a forged POST.

use std::future::Future;

use actix_web::{web, HttpResponse};
use askama::Template;
use server::admin::officers::{self, OfficerForm, OfficerInSight};
use server::admin::{rules, AdminError};
use server::enroll::Enroll;
use server::store::admins::Role;

use super::form::FormState;
use super::{actor, blocking, html, see_other, switch, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

/// A refused form shown again (422) with `state`'s values and one message
/// per refused field; any other failure becomes its error page.
pub(crate) async fn refused_page<P, F, Fut>(
    e: AdminError,
    mut state: FormState,
    page: F,
) -> Result<HttpResponse, WebError>
where
    P: Template,
    F: FnOnce(FormState) -> Fut,
    Fut: Future<Output = Result<P, WebError>>,
{
    let AdminError::Refused(fields) = e else {
        return Err(e.into());
    };
    state.refuse_fields(&fields);
    super::form::refused(&page(state).await?)
}

pub struct OfficerRow {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub email: String,
    pub scope: String,
    pub enabled: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "officers.html")]
pub struct OfficersView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub officers: Vec<OfficerRow>,
}

/// The create and the edit form (one template: the fields are the same).
#[derive(Template)]
#[template(path = "officer.html")]
pub struct OfficerView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    /// None: a new officer.
    pub id: Option<i64>,
    pub username: String,
    pub enabled: bool,
    pub is_self: bool,
    /// (value, label) of the roles the actor may give.
    pub roles: Vec<(&'static str, &'static str)>,
    /// (value, label) of the places the actor may assign.
    pub places: Vec<(String, String)>,
    pub form: FormState,
}

impl OfficerView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

fn label(role: Role) -> &'static str {
    match role {
        Role::Mrao => "MRAO (everything)",
        Role::Rao => "RAO (its organizations)",
        Role::Drao => "DRAO (its departments)",
    }
}

fn flash(msg: Option<&str>) -> Option<&'static str> {
    Some(match msg? {
        "created" => "Officer created. Give them the password by a separate channel.",
        "updated" => "Officer saved.",
        "disabled" => "Officer disabled: they can no longer log in and their sessions have ended.",
        "enabled" => "Officer enabled.",
        "password" => "Password changed.",
        "change-password" => {
            "Choose your own password now: the one you logged in with was generated at \
             installation and written to a file, and the console does nothing else until it \
             is replaced."
        }
        _ => return None,
    })
}

#[derive(serde::Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// Everything a page needs from the database, loaded in one trip.
struct Loaded {
    places: Vec<(String, String)>,
    officers: Vec<OfficerInSight>,
}

async fn load(officer: &Officer, enroll: &Enroll, only: Option<i64>) -> Result<Loaded, WebError> {
    let o = officer.clone();
    blocking(enroll, move |conn| {
        let a = actor(&o);
        let places = server::admin::orgs::assignable_places(conn, &a)?
            .into_iter()
            .map(|(g, l)| (rules::grant_value(g), l))
            .collect();
        let officers = match only {
            Some(id) => vec![officers::officer_in_sight(conn, &a, id)?],
            None => officers::in_sight(conn, &a)?,
        };
        Ok(Loaded { places, officers })
    })
    .await
}

pub async fn list(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let loaded = load(&officer, &enroll, None).await?;
    let name = |v: String| {
        loaded
            .places
            .iter()
            .find(|(p, _)| *p == v)
            .map_or(v.clone(), |(_, l)| l.clone())
    };
    let officers = loaded
        .officers
        .iter()
        .map(|o| OfficerRow {
            id: o.admin.id,
            username: o.admin.username.clone(),
            role: o.role.as_str(),
            email: o.admin.email.clone().unwrap_or_default(),
            scope: match o.role {
                Role::Mrao => "everything".into(),
                _ => o
                    .grants
                    .iter()
                    .map(|g| name(rules::grant_value(*g)))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            enabled: o.admin.enabled,
            created: when(o.admin.created_at),
        })
        .collect();
    html(&OfficersView {
        nav: Some(Nav::of(&officer)),
        flash: flash(q.msg.as_deref()),
        officers,
    })
}

/// The form page: for `id` (edit) or a new officer, showing `form`, or the
/// officer's current values when `form` is None.
async fn form_view(
    officer: &Officer,
    enroll: &Enroll,
    id: Option<i64>,
    form: Option<FormState>,
) -> Result<OfficerView, WebError> {
    let loaded = load(officer, enroll, id).await?;
    let target = id.and(loaded.officers.into_iter().next());
    let form = form.unwrap_or_else(|| {
        let mut f = FormState::new();
        if let Some(t) = &target {
            f.keep("role", t.role.as_str());
            f.keep("email", t.admin.email.clone().unwrap_or_default());
            let scope: Vec<String> = t.grants.iter().map(|g| rules::grant_value(*g)).collect();
            f.keep("scope", scope.join(","));
        } else {
            f.keep("role", "drao");
        }
        f
    });
    let me = actor(officer);
    Ok(OfficerView {
        nav: Some(Nav::of(officer)),
        flash: None,
        id,
        username: target
            .as_ref()
            .map(|t| t.admin.username.clone())
            .unwrap_or_default(),
        enabled: target.as_ref().is_none_or(|t| t.admin.enabled),
        is_self: target
            .as_ref()
            .is_some_and(|t| t.admin.username == officer.username),
        roles: [Role::Mrao, Role::Rao, Role::Drao]
            .into_iter()
            .filter(|r| rules::may_assign_role(&me, *r))
            .map(|r| (r.as_str(), label(r)))
            .collect(),
        places: loaded.places,
        form,
    })
}

pub async fn new_form(
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    html(&form_view(&officer, &enroll, None, None).await?)
}

pub async fn edit(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = form_view(&officer, &enroll, Some(path.into_inner()), None).await?;
    // The only page such an officer can reach says why, however it came.
    let must = officer.must_change_password.then_some("change-password");
    page.flash = flash(q.msg.as_deref().or(must));
    html(&page)
}

/// The submitted officer form; `scope` repeats (one per checked box).
#[derive(Default)]
struct Submitted {
    username: String,
    password: String,
    /// Only when an officer changes its own password.
    current_password: String,
    role: String,
    email: String,
    scope: Vec<String>,
}

impl Submitted {
    fn parse(body: &[u8]) -> Result<Submitted, WebError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| WebError::BadRequest("unreadable form".into()))?;
        let mut s = Submitted::default();
        for (k, v) in pairs {
            match k.as_str() {
                "username" => s.username = v,
                "password" => s.password = v,
                "current_password" => s.current_password = v,
                "role" => s.role = v,
                "email" => s.email = v,
                "scope" => s.scope.push(v),
                _ => {}
            }
        }
        Ok(s)
    }

    /// What the form shows again: everything typed but the password.
    fn state(&self) -> FormState {
        let mut f = FormState::new();
        f.keep("username", self.username.clone())
            .keep("role", self.role.clone())
            .keep("email", self.email.clone())
            .keep("scope", self.scope.join(","));
        f
    }
}

pub async fn create(
    officer: Officer,
    enroll: web::Data<Enroll>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let s = Submitted::parse(&body)?;
    let state = s.state();
    let o = officer.clone();
    let res = blocking(&enroll, move |conn| {
        let form = OfficerForm {
            role: &s.role,
            email: &s.email,
            places: &s.scope,
        };
        Ok(officers::create(conn, &actor(&o), &s.username, &s.password, &form).map(|a| a.id))
    })
    .await?;
    match res {
        Ok(id) => Ok(see_other(&format!("/officers/{id}?msg=created"))),
        Err(e) => refused_page(e, state, |f| form_view(&officer, &enroll, None, Some(f))).await,
    }
}

pub async fn update(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let s = Submitted::parse(&body)?;
    let state = s.state();
    let o = officer.clone();
    let res = blocking(&enroll, move |conn| {
        let form = OfficerForm {
            role: &s.role,
            email: &s.email,
            places: &s.scope,
        };
        Ok(officers::update(conn, &actor(&o), id, &form).map(|_| ()))
    })
    .await?;
    match res {
        Ok(()) => Ok(see_other(&format!("/officers/{id}?msg=updated"))),
        Err(e) => {
            refused_page(e, state, |f| {
                form_view(&officer, &enroll, Some(id), Some(f))
            })
            .await
        }
    }
}

async fn set_enabled(
    officer: Officer,
    enroll: web::Data<Enroll>,
    id: i64,
    enabled: bool,
) -> Result<HttpResponse, WebError> {
    switch(
        officer,
        &enroll,
        enabled,
        move |c, a, on| officers::set_enabled(c, a, id, on),
        |s| format!("/officers/{id}?msg={s}"),
    )
    .await
}

pub async fn disable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path.into_inner(), false).await
}

pub async fn enable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path.into_inner(), true).await
}

pub async fn reset_password(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let s = Submitted::parse(&body)?;
    let o = officer.clone();
    let res = blocking(&enroll, move |conn| {
        let done = if id == o.id {
            officers::change_own_password(
                conn,
                &actor(&o),
                o.id,
                &o.session_hash,
                &s.current_password,
                &s.password,
            )
        } else {
            officers::reset_password(conn, &actor(&o), id, &s.password)
        };
        Ok(done.map(|_| ()))
    })
    .await?;
    match res {
        Ok(()) => Ok(see_other(&format!("/officers/{id}?msg=password"))),
        // Nothing typed is kept: the fields are passwords.
        Err(e) => {
            refused_page(e, FormState::new(), |f| {
                form_view_with_current(&officer, &enroll, id, f)
            })
            .await
        }
    }
}

/// The edit page with the officer's current values plus `extra`'s errors
/// (a refused password reset must not disturb the edit form).
async fn form_view_with_current(
    officer: &Officer,
    enroll: &Enroll,
    id: i64,
    extra: FormState,
) -> Result<OfficerView, WebError> {
    let mut page = form_view(officer, enroll, Some(id), None).await?;
    for (f, m) in extra.errors() {
        page.form.refuse(f, m.clone());
    }
    Ok(page)
}
