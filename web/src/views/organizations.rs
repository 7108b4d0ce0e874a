//! Organizations and departments in the console (issue 4). An MRAO
//! creates, renames, disables and re-enables organizations; an MRAO, or an
//! RAO holding the organization, does the same for its departments; a DRAO
//! sees its departments read-only. The rules and every write live in
//! `server::admin`; a refused form comes back (422) with what was typed
//! and a message beside each bad field.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::admin::orgs::{self, OrgInSight};
use server::admin::{rules, AdminError};
use server::enroll::Enroll;
use server::store::orgs::Department;

use super::form::FormState;
use super::officers::refused_page;
use super::{actor, blocking, html, see_other, switch, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

pub struct OrgRow {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub departments: usize,
    pub created: String,
}

#[derive(Template)]
#[template(path = "organizations.html")]
pub struct OrganizationsView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub may_create: bool,
    pub orgs: Vec<OrgRow>,
    pub form: FormState,
}

impl OrganizationsView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

#[derive(Template)]
#[template(path = "organization.html")]
pub struct OrganizationView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub org: OrgRow,
    pub may_edit: bool,
    pub may_edit_departments: bool,
    pub departments: Vec<Department>,
    /// Fields `name` (rename) and `department` (new department).
    pub form: FormState,
}

impl OrganizationView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

#[derive(Template)]
#[template(path = "department.html")]
pub struct DepartmentView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub org_id: i64,
    pub org_name: String,
    pub dept: Department,
    pub may_edit: bool,
    pub form: FormState,
}

impl DepartmentView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

fn row(seen: &OrgInSight) -> OrgRow {
    OrgRow {
        id: seen.org.id,
        name: seen.org.name.clone(),
        enabled: seen.org.enabled,
        departments: seen.departments.len(),
        created: when(seen.org.created_at),
    }
}

fn flash(msg: Option<&str>) -> Option<&'static str> {
    Some(match msg? {
        "org-created" => "Organization created.",
        "org-renamed" => "Organization renamed.",
        "org-disabled" => "Organization disabled: no challenges are minted and no enrollments are accepted for it.",
        "org-enabled" => "Organization enabled.",
        "dept-created" => "Department created.",
        "dept-renamed" => "Department renamed.",
        "dept-disabled" => "Department disabled: no challenges are minted and no enrollments are accepted for it.",
        "dept-enabled" => "Department enabled.",
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

async fn list_view(
    officer: &Officer,
    enroll: &Enroll,
    form: FormState,
) -> Result<OrganizationsView, WebError> {
    let o = officer.clone();
    let seen = blocking(enroll, move |conn| Ok(orgs::in_sight(conn, &actor(&o))?)).await?;
    Ok(OrganizationsView {
        nav: Some(Nav::of(officer)),
        flash: None,
        may_create: rules::may_manage_organizations(&actor(officer)),
        orgs: seen.iter().map(row).collect(),
        form,
    })
}

pub async fn list(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = list_view(&officer, &enroll, FormState::new()).await?;
    page.flash = flash(q.msg.as_deref());
    html(&page)
}

pub async fn create(
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, WebError> {
    let name = form.into_inner().name;
    let (o, n) = (officer.clone(), name.clone());
    let res = blocking(&enroll, move |conn| {
        Ok(orgs::create_org(conn, &actor(&o), &n).map(|org| org.id))
    })
    .await?;
    match res {
        Ok(id) => Ok(see_other(&format!("/organizations/{id}?msg=org-created"))),
        Err(e) => {
            let mut state = FormState::new();
            state.keep("name", name);
            refused_page(e, state, |form| list_view(&officer, &enroll, form)).await
        }
    }
}

async fn org_view(
    officer: &Officer,
    enroll: &Enroll,
    id: i64,
    form: Option<FormState>,
) -> Result<OrganizationView, WebError> {
    let o = officer.clone();
    let seen = blocking(enroll, move |conn| {
        Ok(orgs::org_in_sight(conn, &actor(&o), id)?)
    })
    .await?;
    let form = form.unwrap_or_else(|| {
        let mut f = FormState::new();
        f.keep("name", seen.org.name.clone());
        f
    });
    Ok(OrganizationView {
        nav: Some(Nav::of(officer)),
        flash: None,
        org: row(&seen),
        may_edit: seen.may_edit,
        may_edit_departments: seen.may_edit_departments,
        departments: seen.departments,
        form,
    })
}

pub async fn show(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = org_view(&officer, &enroll, path.into_inner(), None).await?;
    page.flash = flash(q.msg.as_deref());
    html(&page)
}

pub async fn rename(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let name = form.into_inner().name;
    let (o, n) = (officer.clone(), name.clone());
    let res = blocking(&enroll, move |conn| {
        Ok(orgs::rename_org(conn, &actor(&o), id, &n).map(|_| ()))
    })
    .await?;
    match res {
        Ok(()) => Ok(see_other(&format!("/organizations/{id}?msg=org-renamed"))),
        Err(e) => {
            let mut state = FormState::new();
            state.keep("name", name);
            refused_page(e, state, |form| org_view(&officer, &enroll, id, Some(form))).await
        }
    }
}

async fn set_org(
    officer: Officer,
    enroll: web::Data<Enroll>,
    id: i64,
    enabled: bool,
) -> Result<HttpResponse, WebError> {
    switch(
        officer,
        &enroll,
        enabled,
        move |c, a, on| orgs::set_org_enabled(c, a, id, on),
        |s| format!("/organizations/{id}?msg=org-{s}"),
    )
    .await
}

pub async fn disable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_org(officer, enroll, path.into_inner(), false).await
}

pub async fn enable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_org(officer, enroll, path.into_inner(), true).await
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    #[serde(default)]
    department: String,
}

pub async fn add_department(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    form: web::Form<DepartmentForm>,
) -> Result<HttpResponse, WebError> {
    let org = path.into_inner();
    let name = form.into_inner().department;
    let (o, n) = (officer.clone(), name.clone());
    let res = blocking(&enroll, move |conn| {
        Ok(orgs::create_department(conn, &actor(&o), org, &n).map(|d| d.id))
    })
    .await?;
    match res {
        Ok(id) => Ok(see_other(&format!("/departments/{id}?msg=dept-created"))),
        Err(e) => {
            // This page's `name` field is the organization's own: the
            // department's refusal belongs to the `department` field.
            let e = match e {
                AdminError::Refused(mut v) => {
                    for f in v.iter_mut().filter(|f| f.field == "name") {
                        f.field = "department";
                    }
                    AdminError::Refused(v)
                }
                e => e,
            };
            let mut state = FormState::new();
            state.keep("department", name);
            refused_page(e, state, |mut form| async {
                let page = org_view(&officer, &enroll, org, None).await?;
                form.keep("name", page.org.name.clone());
                Ok(OrganizationView { form, ..page })
            })
            .await
        }
    }
}

async fn dept_view(
    officer: &Officer,
    enroll: &Enroll,
    id: i64,
    form: Option<FormState>,
) -> Result<DepartmentView, WebError> {
    let o = officer.clone();
    let (seen, dept) = blocking(enroll, move |conn| {
        Ok(orgs::department_in_sight(conn, &actor(&o), id)?)
    })
    .await?;
    let form = form.unwrap_or_else(|| {
        let mut f = FormState::new();
        f.keep("name", dept.name.clone());
        f
    });
    Ok(DepartmentView {
        nav: Some(Nav::of(officer)),
        flash: None,
        org_id: seen.org.id,
        org_name: seen.org.name,
        may_edit: seen.may_edit_departments,
        dept,
        form,
    })
}

pub async fn department(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = dept_view(&officer, &enroll, path.into_inner(), None).await?;
    page.flash = flash(q.msg.as_deref());
    html(&page)
}

pub async fn rename_department(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
    form: web::Form<NameForm>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let name = form.into_inner().name;
    let (o, n) = (officer.clone(), name.clone());
    let res = blocking(&enroll, move |conn| {
        Ok(orgs::rename_department(conn, &actor(&o), id, &n).map(|_| ()))
    })
    .await?;
    match res {
        Ok(()) => Ok(see_other(&format!("/departments/{id}?msg=dept-renamed"))),
        Err(e) => {
            let mut state = FormState::new();
            state.keep("name", name);
            refused_page(e, state, |form| {
                dept_view(&officer, &enroll, id, Some(form))
            })
            .await
        }
    }
}

async fn set_dept(
    officer: Officer,
    enroll: web::Data<Enroll>,
    id: i64,
    enabled: bool,
) -> Result<HttpResponse, WebError> {
    switch(
        officer,
        &enroll,
        enabled,
        move |c, a, on| orgs::set_department_enabled(c, a, id, on),
        |s| format!("/departments/{id}?msg=dept-{s}"),
    )
    .await
}

pub async fn disable_department(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_dept(officer, enroll, path.into_inner(), false).await
}

pub async fn enable_department(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    set_dept(officer, enroll, path.into_inner(), true).await
}
