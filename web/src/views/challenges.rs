//! One-time challenges (RFC 8894 §2.3): mint one or many for a profile,
//! organization, department and device in the officer's scope through
//! `challenge::mint` (which audits each), show the values once on the
//! response (never stored, never shown again; `Cache-Control: no-store`),
//! list the outstanding ones without values, and revoke one (audited).

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, Utc};
use serde::Deserialize;
use server::challenge::{self, ChallengeError, MintRequest};
use server::enroll::Enroll;
use server::input;
use server::store::queue::Scope;
use server::store::{console_challenges, orgs, profiles, PgPooled, StoreError};

use super::blocking;
use super::form::{self, FormState};
use super::{see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

/// Outstanding challenges listed (newest first).
const LIST_LIMIT: i64 = 200;
/// Challenges one console form may mint (the CLI and API do bulk).
pub const MAX_COUNT: u32 = 100;

pub struct Outstanding {
    pub id: i64,
    pub profile: String,
    pub place: String,
    pub device: String,
    pub expires: String,
    pub created_by: String,
}

/// A freshly minted value, shown on this response only.
pub struct Shown {
    pub id: i64,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "challenges.html")]
pub struct ChallengesView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    /// (profile_id, name)
    pub profiles: Vec<(String, String)>,
    /// (organization id, department id or "", label), all in scope.
    pub places: Vec<(String, String)>,
    pub minted: Vec<Shown>,
    pub outstanding: Vec<Outstanding>,
    /// The mint form: as typed when it was refused.
    pub form: FormState,
}

impl ChallengesView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }

    pub fn invalid(&self, name: &str) -> bool {
        self.form.error(name).is_some()
    }
}

/// Where an officer may mint: whole organizations it holds, and every
/// department it holds (directly or through its organization). The value
/// is `org` or `org:dept`.
pub fn places(conn: &mut PgPooled, scope: &Scope) -> Result<Vec<(String, String)>, WebError> {
    let mut out = vec![];
    for (org, name) in super::orgs_in_scope(conn, scope)? {
        if scope.allows(org, None) {
            out.push((org.to_string(), name.clone()));
        }
        for d in orgs::departments_of(conn, org)? {
            if scope.allows(org, Some(d.id)) {
                out.push((format!("{org}:{}", d.id), format!("{name} / {}", d.name)));
            }
        }
    }
    Ok(out)
}

/// Parse a place value and check it against the scope server-side (the
/// select only offers places in scope, but a form can be forged).
pub fn parse_place(value: &str, scope: &Scope) -> Result<(i64, Option<i64>), WebError> {
    let bad = || WebError::BadRequest("choose an organization or department".into());
    let (org, dept) = match value.split_once(':') {
        Some((o, d)) => (
            o.parse().map_err(|_| bad())?,
            Some(d.parse().map_err(|_| bad())?),
        ),
        None => (value.parse().map_err(|_| bad())?, None),
    };
    if !scope.allows(org, dept) {
        return Err(WebError::Forbidden);
    }
    Ok((org, dept))
}

fn load(conn: &mut PgPooled, scope: &Scope) -> Result<ChallengesView, WebError> {
    let all_profiles = profiles::list(conn)?;
    let orgs_all = orgs::list_orgs(conn)?;
    let outstanding = console_challenges::outstanding(conn, scope, Utc::now(), LIST_LIMIT)?
        .into_iter()
        .map(|c| -> Result<Outstanding, WebError> {
            let org = orgs_all
                .iter()
                .find(|o| o.id == c.organization_id)
                .map_or_else(|| c.organization_id.to_string(), |o| o.name.clone());
            let place = match c.department_id {
                Some(d) => format!("{org} / {}", orgs::department_by_id(conn, d)?.name),
                None => org,
            };
            Ok(Outstanding {
                id: c.id,
                profile: all_profiles
                    .iter()
                    .find(|p| p.id == c.profile_id)
                    .map_or_else(|| c.profile_id.to_string(), |p| p.profile_id.clone()),
                place,
                device: c.device_identity.unwrap_or_default(),
                expires: when(c.expires_at),
                created_by: c.created_by,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChallengesView {
        nav: None,
        flash: None,
        profiles: all_profiles
            .into_iter()
            .filter(|p| p.enabled)
            .map(|p| (p.profile_id, p.name))
            .collect(),
        places: places(conn, scope)?,
        minted: vec![],
        outstanding,
        form: fresh_form(),
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
    let scope = officer.scope.clone();
    let mut page = blocking(&enroll, move |conn| load(conn, &scope)).await?;
    page.nav = Some(Nav::of(&officer));
    page.flash = match q.msg.as_deref() {
        Some("revoked") => Some("Revoked: the challenge can no longer be used."),
        _ => None,
    };
    super::html_no_store(&page)
}

#[derive(Deserialize)]
pub struct MintForm {
    profile: String,
    place: String,
    device: Option<String>,
    count: Option<String>,
    ttl: Option<String>,
}

/// The mint form as first shown.
fn fresh_form() -> FormState {
    let mut f = FormState::new();
    f.keep("count", "1").keep("ttl", "24h");
    f
}

/// The form as typed, the count and lifetime it asks for, and a message
/// per field that cannot be read.
fn read_mint(f: &MintForm) -> (FormState, u32, Duration) {
    let mut state = FormState::new();
    let count_text = f.count.as_deref().unwrap_or("").trim().to_string();
    let ttl_text = f.ttl.as_deref().unwrap_or("").trim().to_string();
    state
        .keep("profile", f.profile.as_str())
        .keep("place", f.place.as_str())
        .keep("device", f.device.clone().unwrap_or_default())
        .keep("count", count_text.as_str())
        .keep("ttl", ttl_text.as_str());
    let count = match count_text.as_str() {
        "" => Some(1),
        t => input::parse_whole(t, 1, i64::from(MAX_COUNT))
            .ok()
            .and_then(|n| u32::try_from(n).ok()),
    };
    if count.is_none() {
        state.refuse("count", format!("count must be between 1 and {MAX_COUNT}"));
    }
    let ttl = input::parse_duration(if ttl_text.is_empty() {
        "24h"
    } else {
        &ttl_text
    })
    .map_err(|e| state.refuse("ttl", format!("lifetime: {e}")))
    .ok();
    (state, count.unwrap_or(1), ttl.unwrap_or_default())
}

pub async fn mint(
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<MintForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    // A place outside the scope is a forged form: refused outright (403).
    let (org, dept) = parse_place(&f.place, &officer.scope)?;
    let (mut state, count, ttl) = read_mint(&f);
    let device = f
        .device
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty());
    let scope = officer.scope.clone();
    let actor = officer.username.clone();
    let (mut page, refused) = blocking(&enroll, move |conn| {
        if state.is_refused() {
            let mut page = load(conn, &scope)?;
            page.form = state;
            return Ok((page, true));
        }
        let minted = challenge::mint(
            conn,
            &MintRequest {
                profile: &f.profile,
                organization_id: org,
                department_id: dept,
                device_identity: device.as_deref(),
                ttl,
                count,
                actor: &actor,
            },
        );
        let minted = match minted {
            Ok(m) => m,
            Err(e) => {
                let name = match &e {
                    ChallengeError::UnknownProfile(_)
                    | ChallengeError::ProfileNotEnabled { .. } => "profile",
                    // The count was checked above; what is left is the lifetime.
                    ChallengeError::Invalid(_) => "ttl",
                    ChallengeError::LimitReached { .. } => "count",
                    _ => return Err(e.into()),
                };
                state.refuse(name, e.to_string());
                let mut page = load(conn, &scope)?;
                page.form = state;
                return Ok((page, true));
            }
        };
        let mut page = load(conn, &scope)?;
        page.minted = minted
            .into_iter()
            .map(|m| Shown {
                id: m.challenge.id,
                secret: m.secret,
            })
            .collect();
        Ok((page, false))
    })
    .await?;
    page.nav = Some(Nav::of(&officer));
    if refused {
        form::refused(&page)
    } else {
        super::html_no_store(&page)
    }
}

pub async fn revoke(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let pool = enroll.pool().clone();
    web::block(move || -> Result<(), WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        console_challenges::revoke(&mut conn, &officer.scope, id, &officer.username)?;
        Ok(())
    })
    .await??;
    Ok(see_other("/challenges?msg=revoked"))
}
