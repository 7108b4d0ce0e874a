//! API keys for MDMs (`/api/v1`): an MRAO or RAO creates one for
//! organizations in its scope and sees the token once, on that response
//! only (`Cache-Control: no-store`; scepd keeps a SHA-256); keys are listed
//! without tokens and revoked here. Rules and audit are
//! `server::admin::api_keys`'s.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::admin::api_keys as keys;
use server::admin::{rules, AdminError};
use server::api::keys::KeyLimits;
use server::enroll::Enroll;
use server::store::{orgs, profiles, PgPooled};

use super::form::{self, FormState};
use super::{actor, blocking, see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub organizations: String,
    pub revoked: bool,
    pub manageable: bool,
    pub created: String,
    pub created_by: String,
    /// "never" or the date.
    pub expires: String,
    pub expired: bool,
    /// "never" or when it last authenticated (to the minute).
    pub last_used: String,
    /// "no limit" or "N/min".
    pub rate: String,
    /// "all" or the profile IDs.
    pub profiles: String,
}

/// A new key, shown on this response only.
pub struct Shown {
    pub id: i64,
    pub token: String,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
pub struct ApiKeysView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub form: FormState,
    pub may_create: bool,
    /// (id, name) of the organizations a key may be made for.
    pub organizations: Vec<(String, String)>,
    /// (profile ID, name) of the profiles a key may be limited to.
    pub profiles: Vec<(String, String)>,
    pub keys: Vec<KeyRow>,
    pub created: Option<Shown>,
}

impl ApiKeysView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }

    pub fn invalid(&self, name: &str) -> bool {
        self.form.error(name).is_some()
    }
}

fn load(conn: &mut PgPooled, officer: &Officer, form: FormState) -> Result<ApiKeysView, WebError> {
    let who = actor(officer);
    let all = orgs::list_orgs(conn)?;
    let name_of = |id: i64| {
        all.iter()
            .find(|o| o.id == id)
            .map_or_else(|| id.to_string(), |o| o.name.clone())
    };
    let all_profiles = profiles::list(conn)?;
    let slug_of = |id: i64| {
        all_profiles
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_string(), |p| p.profile_id.clone())
    };
    let now = chrono::Utc::now();
    let rows = keys::listing(conn, &who)?
        .into_iter()
        .map(|l| KeyRow {
            expires: l.key.expires_at.map_or_else(|| "never".into(), when),
            expired: l.key.expires_at.is_some_and(|t| t <= now),
            last_used: l.key.last_used_at.map_or_else(|| "never".into(), when),
            rate: match l.key.requests_per_minute {
                0 => "no limit".into(),
                n => format!("{n}/min"),
            },
            profiles: if l.profiles.is_empty() {
                "all".into()
            } else {
                l.profiles
                    .iter()
                    .map(|p| slug_of(*p))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            id: l.key.id,
            organizations: l
                .organizations
                .iter()
                .map(|o| name_of(*o))
                .collect::<Vec<_>>()
                .join(", "),
            revoked: l.key.revoked_at.is_some(),
            manageable: l.manageable,
            created: when(l.key.created_at),
            created_by: l.key.created_by,
            name: l.key.name,
        })
        .collect();
    Ok(ApiKeysView {
        nav: Some(Nav::of(officer)),
        flash: None,
        form,
        may_create: keys::may_create(&who),
        organizations: all
            .iter()
            .filter(|o| rules::may_manage_keys_for(&who, &[o.id]))
            .map(|o| (o.id.to_string(), o.name.clone()))
            .collect(),
        profiles: all_profiles
            .iter()
            .map(|p| (p.profile_id.clone(), p.name.clone()))
            .collect(),
        keys: rows,
        created: None,
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
        Some("revoked") => Some("API key revoked: requests with it are answered 401."),
        _ => None,
    };
    super::html_no_store(&page)
}

/// POST /api-keys
pub async fn create(
    officer: Officer,
    enroll: web::Data<Enroll>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let pairs = body.into_inner();
    let name = form::one(&pairs, "name").to_string();
    let chosen: Vec<&str> = form::all(&pairs, "organizations").collect();
    let ids = chosen
        .iter()
        .map(|o| o.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WebError::BadRequest("choose organizations from the list".into()))?;
    let chosen_profiles: Vec<String> = form::all(&pairs, "profiles").map(str::to_string).collect();
    let expires = form::one(&pairs, "expires_days").trim().to_string();
    let rate = form::one(&pairs, "requests_per_minute").trim().to_string();
    let mut state = FormState::new();
    state
        .keep("name", name.as_str())
        .keep("organizations", chosen.join(","))
        .keep("profiles", chosen_profiles.join(","))
        .keep("expires_days", expires.as_str())
        .keep("requests_per_minute", rate.as_str());
    let mut limits = KeyLimits {
        profiles: chosen_profiles,
        ..KeyLimits::default()
    };
    if !expires.is_empty() {
        match expires.parse::<i64>() {
            Ok(d @ 1..=3650) => {
                limits.expires_at = Some(chrono::Utc::now() + chrono::Duration::days(d))
            }
            _ => state.refuse(
                "expires",
                "give whole days from 1 to 3650, or leave it empty",
            ),
        }
    }
    if !rate.is_empty() {
        match rate.parse::<u32>() {
            Ok(n) => limits.requests_per_minute = n,
            Err(_) => state.refuse("requests_per_minute", "give a whole number, 0 for no limit"),
        }
    }
    let (page, ok) = blocking(&enroll, move |conn| {
        if state.is_refused() {
            return Ok((load(conn, &officer, state)?, false));
        }
        match keys::create(conn, &actor(&officer), &name, &ids, &limits) {
            Ok(created) => {
                let mut page = load(conn, &officer, FormState::new())?;
                page.flash = Some("API key created. Copy the token now: it is shown only once.");
                page.created = Some(Shown {
                    id: created.key.id,
                    token: created.token,
                });
                Ok((page, true))
            }
            Err(AdminError::Refused(errors)) => {
                state.refuse_fields(&errors);
                Ok((load(conn, &officer, state)?, false))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if ok {
        super::html_no_store(&page)
    } else {
        form::refused(&page)
    }
}

/// POST /api-keys/{id}/revoke
pub async fn revoke(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    blocking(&enroll, move |conn| {
        keys::revoke(conn, &actor(&officer), id)?;
        Ok(())
    })
    .await?;
    Ok(see_other("/api-keys?msg=revoked"))
}
