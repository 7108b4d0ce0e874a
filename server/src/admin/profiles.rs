//! Creating, editing, disabling and enabling device certificate profiles
//! within the officer's rights (`rules::may_manage_places`), each change
//! and its audit entry in one transaction. The profile row is locked while
//! its places are checked, so a concurrent edit cannot widen them between
//! the check and the change.

use diesel::pg::PgConnection;
use diesel::Connection;

use super::profile_settings::{ProfileDraft, NEW_MIN_RSA_BITS};
use super::rules::{self, Actor};
use super::{check_places, AdminError, Place, Refusals};
use crate::store::admins::Role;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::profiles::{self, Profile};
use crate::store::StoreError;

/// A profile as an officer sees it in the listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub profile: Profile,
    pub places: Vec<Place>,
    /// Whether this officer may edit, disable or enable it.
    pub manageable: bool,
}

/// Whether this officer may create profiles at all (the form is offered).
pub fn may_create(who: &Actor<'_>) -> bool {
    rules::may_manage_places(who, &[])
}

/// Profiles the officer sees: all for an MRAO; for others those enabled
/// for an organization it reaches (wholly or through a department).
pub fn listing(conn: &mut PgConnection, who: &Actor<'_>) -> Result<Vec<Listed>, StoreError> {
    let reach = who.reach(conn)?;
    let mut out = vec![];
    for p in profiles::list(conn)? {
        let places = profiles::places_of(conn, p.id)?;
        let seen = reach
            .as_ref()
            .is_none_or(|r| places.iter().any(|(o, _)| r.contains(o)));
        if seen {
            out.push(Listed {
                manageable: manageable(who, &places),
                profile: p,
                places,
            });
        }
    }
    Ok(out)
}

/// One profile by its stable ID, if the officer sees it.
pub fn visible(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<Listed, AdminError> {
    let p = profiles::by_profile_id(conn, profile_id)?.ok_or(AdminError::NotFound)?;
    let places = profiles::places_of(conn, p.id)?;
    let reach = who.reach(conn)?;
    if !reach
        .as_ref()
        .is_none_or(|r| places.iter().any(|(o, _)| r.contains(o)))
    {
        return Err(AdminError::NotFound);
    }
    Ok(Listed {
        manageable: manageable(who, &places),
        profile: p,
        places,
    })
}

/// Below an MRAO, a profile enabled nowhere belongs to nobody's scope.
fn manageable(who: &Actor<'_>, places: &[Place]) -> bool {
    rules::may_manage_places(who, places) && (!places.is_empty() || may_manage_unplaced(who))
}

fn may_manage_unplaced(who: &Actor<'_>) -> bool {
    who.role == Role::Mrao
}

/// Validate the draft and the officer's right to its places; `Forbidden`
/// before any field is looked at when the places are not the officer's.
/// `old` is the profile as stored (None for a new one): what it already
/// holds may stay, so an RAO can still edit a profile an MRAO gave a
/// purpose the RAO could not give, and an older profile keeps its key size.
fn vet(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    draft: &ProfileDraft,
    old: Option<&ProfileDraft>,
) -> Result<Refusals, AdminError> {
    if !rules::may_manage_places(who, &draft.places) {
        return Err(AdminError::Forbidden);
    }
    let mut refusals = Refusals::default();
    refusals.extend(draft.check());
    if !refusals.has("extended_key_usage") {
        let kept = old.map_or(&[][..], |o| o.extended_key_usage.as_slice());
        let barred: Vec<&str> = draft
            .extended_key_usage
            .iter()
            .filter(|e| !kept.contains(e))
            .filter(|e| e.parse().is_ok_and(|eku| !rules::may_set_eku(who, &eku)))
            .map(String::as_str)
            .collect();
        if !barred.is_empty() {
            let allowed: Vec<String> = rules::DEVICE_EKUS
                .iter()
                .map(|(name, oid)| match name.parse::<crate::ca::Eku>() {
                    Ok(_) => (*name).to_string(),
                    Err(_) => format!("{oid} ({name})"),
                })
                .collect();
            refusals.add(
                "extended_key_usage",
                format!(
                    "only an MRAO may set {}; you may set {}",
                    barred.join(", "),
                    allowed.join(", ")
                ),
            );
        }
    }
    let kept_bits = old.is_some_and(|o| o.min_rsa_bits == draft.min_rsa_bits);
    if !refusals.has("min_rsa_bits") && draft.min_rsa_bits < NEW_MIN_RSA_BITS && !kept_bits {
        refusals.add(
            "min_rsa_bits",
            format!("minimum RSA key size must be at least {NEW_MIN_RSA_BITS} bits"),
        );
    }
    if draft.places.is_empty() && !may_manage_unplaced(who) {
        refusals.add("places", "choose at least one organization or department");
    }
    check_places(conn, &draft.places, "places", &mut refusals)?;
    Ok(refusals)
}

/// Create a profile enabled for `draft.places`; audited with its settings.
pub fn create(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    draft: &ProfileDraft,
) -> Result<Profile, AdminError> {
    let d = draft.normalized();
    conn.transaction(|conn| {
        let mut refusals = vet(conn, who, &d, None)?;
        if !refusals.has("profile_id") && profiles::by_profile_id(conn, &d.profile_id)?.is_some() {
            refusals.add("profile_id", "profile ID already exists");
        }
        refusals.finish()?;
        let created = profiles::create(conn, &d.as_new()).map_err(|e| match e {
            // Created by someone else since the check above.
            StoreError::Conflict(_) => {
                AdminError::refused("profile_id", "profile ID already exists")
            }
            e => e.into(),
        })?;
        let created = if d.enabled {
            created
        } else {
            profiles::set_enabled(conn, created.id, false)?
        };
        profiles::replace_places(conn, created.id, &d.places)?;
        record_filed(
            conn,
            created.id,
            AuditEvent::new(who.username, AuditKind::ProfileCreated)
                .target(format!("profile:{}", created.profile_id))
                .details(serde_json::to_value(&d).unwrap_or_default()),
        )?;
        Ok(created)
    })
}

/// Replace a profile's settings and places (its ID stays); audited with
/// what changed, from and to.
pub fn update(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
    draft: &ProfileDraft,
) -> Result<Profile, AdminError> {
    change(conn, who, profile_id, |d| *d = draft.clone())
}

/// Change some settings of a profile as it stands (`edit` sees the locked
/// row, so settings it leaves alone keep a concurrent edit); otherwise as
/// [`update`].
pub fn change(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
    edit: impl FnOnce(&mut ProfileDraft),
) -> Result<Profile, AdminError> {
    conn.transaction(|conn| {
        let (before, old) = locked(conn, who, profile_id)?;
        let mut d = old.clone();
        edit(&mut d);
        let mut d = d.normalized();
        d.profile_id = before.profile_id.clone();
        vet(conn, who, &d, Some(&old))?.finish()?;
        let after = profiles::update(conn, before.id, &d.as_new(), d.enabled)?;
        profiles::replace_places(conn, before.id, &d.places)?;
        record_filed(
            conn,
            after.id,
            AuditEvent::new(who.username, AuditKind::ProfileUpdated)
                .target(format!("profile:{}", after.profile_id))
                .details(serde_json::json!({ "changed": changes(&old, &d) })),
        )?;
        Ok(after)
    })
}

/// Disable (the SCEP endpoint then refuses the profile) or enable again.
pub fn set_enabled(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
    enabled: bool,
) -> Result<Profile, AdminError> {
    conn.transaction(|conn| {
        let (before, _) = locked(conn, who, profile_id)?;
        if before.enabled == enabled {
            return Err(AdminError::Conflict(format!(
                "profile {} is already {}",
                before.profile_id,
                if enabled { "enabled" } else { "disabled" }
            )));
        }
        let after = profiles::set_enabled(conn, before.id, enabled)?;
        record_filed(
            conn,
            after.id,
            AuditEvent::new(
                who.username,
                if enabled {
                    AuditKind::ProfileEnabled
                } else {
                    AuditKind::ProfileDisabled
                },
            )
            .target(format!("profile:{}", after.profile_id))
            .details(serde_json::json!({ "name": after.name })),
        )?;
        Ok(after)
    })
}

/// The profile, locked, and its current settings, when the officer may
/// change it: `NotFound` when it cannot even see it, `Forbidden` when it
/// sees it but it is also enabled outside its scope.
/// The profile locked for a change by `who` (NotFound when unseen,
/// Forbidden when seen but not manageable); for settings kept beside the
/// profile row, such as its webhooks (`webhook::settings`).
pub(crate) fn lock_manageable(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<Profile, AdminError> {
    Ok(locked(conn, who, profile_id)?.0)
}

pub(crate) fn locked(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<(Profile, ProfileDraft), AdminError> {
    let seen = visible(conn, who, profile_id)?;
    let p = profiles::lock(conn, seen.profile.id)?;
    let places = profiles::places_of(conn, p.id)?;
    if !manageable(who, &places) {
        return Err(AdminError::Forbidden);
    }
    let draft = ProfileDraft::of(&p, places);
    Ok((p, draft))
}

/// `{field: {"from": old, "to": new}}` for every setting that differs.
fn changes(old: &ProfileDraft, new: &ProfileDraft) -> serde_json::Value {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    ) else {
        return serde_json::Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in b {
        if a.get(&k) != Some(&v) {
            out.insert(k.clone(), serde_json::json!({ "from": a.get(&k), "to": v }));
        }
    }
    serde_json::Value::Object(out)
}

/// A profile change is filed under the profile's organization when it is
/// enabled for exactly one (RAOs of that organization see it); a profile
/// shared by several organizations is the MRAO's to follow.
pub(crate) fn record_filed(
    conn: &mut PgConnection,
    profile: i64,
    ev: AuditEvent<'_>,
) -> Result<(), AdminError> {
    let ev = match profiles::organizations_of(conn, profile)?.as_slice() {
        [only] => ev.org(*only),
        _ => ev,
    };
    audit::record(conn, &ev)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_only_what_differs() {
        let old = ProfileDraft::defaults("p", "P");
        let mut new = old.clone();
        new.validity_days = 30;
        new.approval_mode = "manual".into();
        let c = changes(&old, &new);
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{c}");
        assert_eq!(c["validity_days"]["from"], 365);
        assert_eq!(c["approval_mode"]["to"], "manual");
    }

    #[test]
    fn changes_record_the_reply_and_signer_switches() {
        let old = ProfileDraft::defaults("p", "P");
        let mut new = old.clone();
        new.certrep_includes_chain = true;
        new.signer_key_must_match = true;
        let c = changes(&old, &new);
        assert_eq!(c.as_object().unwrap().len(), 2, "{c}");
        assert_eq!(c["certrep_includes_chain"]["from"], false);
        assert_eq!(c["certrep_includes_chain"]["to"], true);
        assert_eq!(c["signer_key_must_match"]["to"], true);
    }

    #[test]
    fn min_cipher_is_checked_normalized_and_recorded() {
        let old = ProfileDraft::defaults("p", "P");
        assert_eq!(old.min_cipher, "des", "everything accepted by default");
        let mut new = old.clone();
        new.min_cipher = " AES ".into();
        let new = new.normalized();
        assert!(new.check().is_empty(), "{:?}", new.check());
        let c = changes(&old, &new);
        assert_eq!(c["min_cipher"]["from"], "des", "{c}");
        assert_eq!(c["min_cipher"]["to"], "aes", "{c}");
        let mut bad = old.clone();
        bad.min_cipher = "rc2".into();
        let e = bad.normalized().check();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].field, "min_cipher");
        assert!(e[0].message.contains("des or des3 or aes"), "{e:?}");
    }
}
