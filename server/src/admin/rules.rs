//! Who may manage whom and what: pure decisions over roles and scopes, so
//! that every action (and every forged form) is judged by the same few
//! functions, tested here without a database.
//!
//! - Organizations: only an MRAO creates, renames, disables them.
//! - Departments: an MRAO anywhere; an RAO in the organizations it holds
//!   wholly; a DRAO only sees its own.
//! - Officers: an officer manages officers at its level or below whose
//!   every assignment lies inside its own scope, and gives only roles up to
//!   its own and assignments inside its own scope.
//! - Profiles: an MRAO any; an RAO when every place is in its scope. Below
//!   an MRAO, only the extended key usages of `DEVICE_EKUS` (one CA signs
//!   for every tenant, so a purpose that other relying parties honour is
//!   the MRAO's call alone).
//! - API keys: an MRAO, or an RAO holding every organization of the key.

use super::Place;
use crate::ca::Eku;
use crate::store::admins::{Grant, Role};
use crate::store::audit;
use crate::store::queue::Scope;
use crate::store::StoreError;

/// The officer making a change, as its session resolved it (or the CLI).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub username: &'a str,
    pub role: Role,
    pub scope: &'a Scope,
}

static EVERYTHING: Scope = Scope::All;

impl<'a> Actor<'a> {
    /// The command line: run by whoever holds the data directory and the
    /// database, so it acts with an MRAO's reach.
    pub fn cli(username: &'a str) -> Actor<'a> {
        Actor {
            username,
            role: Role::Mrao,
            scope: &EVERYTHING,
        }
    }

    /// Organizations the officer reaches, wholly or through a department;
    /// `None` means all.
    pub fn reach(&self, conn: &mut diesel::PgConnection) -> Result<Option<Vec<i64>>, StoreError> {
        self.scope.organizations_reached(conn)
    }
}

pub fn may_manage_organizations(actor: &Actor<'_>) -> bool {
    actor.role == Role::Mrao
}

/// Create, rename, disable departments of `organization_id`.
pub fn may_manage_departments(actor: &Actor<'_>, organization_id: i64) -> bool {
    match actor.role {
        Role::Mrao => true,
        // Holding one department of an organization is not holding the
        // organization: only whole-organization RAOs reshape it.
        Role::Rao => actor.scope.allows(organization_id, None),
        Role::Drao => false,
    }
}

/// A role the actor may give: its own or one below.
pub fn may_assign_role(actor: &Actor<'_>, role: Role) -> bool {
    role.rank() <= actor.role.rank()
}

/// An assignment the actor may give: inside its own scope.
pub fn may_assign(actor: &Actor<'_>, grant: Grant) -> bool {
    actor
        .scope
        .allows(grant.organization_id, grant.department_id)
}

/// Whether the actor may edit, disable or reset the password of an officer
/// with `role` and `grants`. Below an MRAO, an officer without assignments
/// belongs to nobody's scope, so nobody but an MRAO may take it over.
pub fn may_manage(actor: &Actor<'_>, role: Role, grants: &[Grant]) -> bool {
    if role.rank() > actor.role.rank() {
        return false;
    }
    actor.role == Role::Mrao || (!grants.is_empty() && grants.iter().all(|g| may_assign(actor, *g)))
}

/// Whether the actor may set the password of an officer with `role` (one
/// it may manage, and not itself: that takes the current password). An
/// equal could otherwise take over its peer's account, and with it the
/// peer's scope; only an MRAO, which holds everything anyway, may.
pub fn may_reset_password(actor: &Actor<'_>, role: Role) -> bool {
    actor.role == Role::Mrao || role.rank() < actor.role.rank()
}

/// The assignments a role needs, or why `grants` do not fit it.
pub fn grants_fit_role(role: Role, grants: &[Grant]) -> Result<(), &'static str> {
    match role {
        Role::Mrao if !grants.is_empty() => {
            Err("an MRAO holds everything; choose no organization or department")
        }
        Role::Mrao => Ok(()),
        Role::Rao if grants.is_empty() => Err("choose at least one organization or department"),
        Role::Rao => Ok(()),
        Role::Drao if grants.is_empty() || grants.iter().any(|g| g.department_id.is_none()) => {
            Err("a DRAO needs departments, not whole organizations")
        }
        Role::Drao => Ok(()),
    }
}

/// Profiles: an MRAO always; an RAO when every place is in its scope.
pub fn may_manage_places(actor: &Actor<'_>, places: &[Place]) -> bool {
    match actor.role {
        Role::Mrao => true,
        Role::Rao => places.iter().all(|(o, d)| actor.scope.allows(*o, *d)),
        Role::Drao => false,
    }
}

/// API keys act for whole organizations: an MRAO, or an RAO holding
/// every one of them.
pub fn may_manage_keys_for(actor: &Actor<'_>, organizations: &[i64]) -> bool {
    match actor.role {
        Role::Mrao => true,
        Role::Rao => organizations.iter().all(|o| actor.scope.allows(*o, None)),
        Role::Drao => false,
    }
}

/// The extended key usages an RAO or DRAO may put on a profile, by OID:
/// purposes a device or its user proves to the tenant's own services.
/// Every tenant's relying parties trust the one CA, so a purpose that
/// other parties honour stays the MRAO's: serverAuth (a device could
/// impersonate any TLS server), codeSigning, timeStamping, OCSPSigning,
/// Microsoft's smartcardLogon (1.3.6.1.4.1.311.20.2.2: a Windows domain
/// logon as anyone the subject names), anyExtendedKeyUsage (2.5.29.37.0:
/// every purpose at once) and any other OID.
pub const DEVICE_EKUS: &[(&str, &str)] = &[
    // id-kp-clientAuth (RFC 5280 §4.2.1.12): TLS, 802.1X EAP-TLS, VPN clients.
    ("clientAuth", "1.3.6.1.5.5.7.3.2"),
    // id-kp-emailProtection: S/MIME for the subject's own address.
    ("emailProtection", "1.3.6.1.5.5.7.3.4"),
    // id-kp-ipsecIKE (RFC 4945 §5.1.3.12): an IKE peer, as VPN clients are.
    ("ipsecIKE", "1.3.6.1.5.5.7.3.17"),
    // id-kp-eapOverLAN (RFC 4334 §2): an 802.1X supplicant on LAN/Wi-Fi.
    ("eapOverLAN", "1.3.6.1.5.5.7.3.14"),
];

/// Whether the actor may give a profile `eku`: an MRAO any; others only
/// those of [`DEVICE_EKUS`] (compared by OID, however it was spelled).
pub fn may_set_eku(actor: &Actor<'_>, eku: &Eku) -> bool {
    actor.role == Role::Mrao || DEVICE_EKUS.iter().any(|(_, oid)| *oid == eku.oid())
}

/// A place as forms carry it: `org` (whole organization) or `org:dept`.
pub fn parse_grant(value: &str) -> Option<Grant> {
    let (org, dept) = match value.trim().split_once(':') {
        Some((o, d)) => (o.parse().ok()?, Some(d.parse().ok()?)),
        None => (value.trim().parse().ok()?, None),
    };
    Some(Grant {
        organization_id: org,
        department_id: dept,
    })
}

pub fn grant_value(g: Grant) -> String {
    match g.department_id {
        Some(d) => format!("{}:{d}", g.organization_id),
        None => g.organization_id.to_string(),
    }
}

/// Names of organizations, departments and officers: trimmed, 1 to `max`
/// characters, no control characters.
pub fn check_name(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("required".into());
    }
    if v.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err("no control characters".into());
    }
    Ok(v.to_string())
}

/// Usernames appear in audit rows and URLs: letters, digits, `.`, `_`,
/// `-` and `@` only, and none of the names the system writes audit entries
/// under (`audit::SYSTEM_ACTORS`), so no officer passes for a device event.
pub fn check_username(value: &str) -> Result<String, String> {
    let v = check_name(value, 100)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("use letters, digits, '.', '_', '-' or '@' only".into());
    }
    if audit::is_system_actor(&v) {
        return Err(format!(
            "'{v}' is reserved for the system ({})",
            audit::SYSTEM_ACTORS.join(", ")
        ));
    }
    Ok(v)
}

/// An optional notification address: empty means none. Deliberately
/// shallow (one `@`, a dotted domain, no spaces): the mail server is the
/// real judge.
pub fn check_email(value: &str) -> Result<Option<String>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(v.split_once('@'), Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.'));
    if ok {
        Ok(Some(v.to_string()))
    } else {
        Err("not an email address".into())
    }
}

/// Same minimum as `scepd admin create`.
pub const MIN_PASSWORD: usize = 12;

pub fn check_password(value: &str) -> Result<(), String> {
    let n = value.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!("at least {MIN_PASSWORD} characters"));
    }
    if n > 1024 {
        return Err("at most 1024 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(o: i64) -> Grant {
        Grant {
            organization_id: o,
            department_id: None,
        }
    }
    fn dept(o: i64, d: i64) -> Grant {
        Grant {
            organization_id: o,
            department_id: Some(d),
        }
    }
    fn actor(role: Role, scope: &Scope) -> Actor<'_> {
        Actor {
            username: "me",
            role,
            scope,
        }
    }
    /// RAO of organization 1; DRAO of department 10 (in organization 1).
    fn scopes() -> (Scope, Scope) {
        (
            Scope::Limited {
                organizations: vec![1],
                departments: vec![],
            },
            Scope::Limited {
                organizations: vec![],
                departments: vec![10],
            },
        )
    }

    #[test]
    fn only_an_mrao_manages_organizations() {
        let (rao, drao) = scopes();
        assert!(may_manage_organizations(&actor(Role::Mrao, &Scope::All)));
        assert!(!may_manage_organizations(&actor(Role::Rao, &rao)));
        assert!(!may_manage_organizations(&actor(Role::Drao, &drao)));
    }

    #[test]
    fn departments_are_managed_by_whole_organization_holders() {
        let (rao, drao) = scopes();
        assert!(may_manage_departments(&actor(Role::Mrao, &Scope::All), 7));
        assert!(may_manage_departments(&actor(Role::Rao, &rao), 1));
        assert!(!may_manage_departments(&actor(Role::Rao, &rao), 2));
        let rao_of_dept = Scope::Limited {
            organizations: vec![],
            departments: vec![10],
        };
        assert!(!may_manage_departments(&actor(Role::Rao, &rao_of_dept), 1));
        assert!(!may_manage_departments(&actor(Role::Drao, &drao), 1));
    }

    #[test]
    fn roles_are_given_at_or_below_ones_own() {
        let (rao, drao) = scopes();
        let r = actor(Role::Rao, &rao);
        assert!(!may_assign_role(&r, Role::Mrao));
        assert!(may_assign_role(&r, Role::Rao));
        assert!(may_assign_role(&r, Role::Drao));
        let d = actor(Role::Drao, &drao);
        assert!(!may_assign_role(&d, Role::Rao));
        assert!(may_assign_role(&d, Role::Drao));
        assert!(may_assign_role(&actor(Role::Mrao, &Scope::All), Role::Mrao));
    }

    #[test]
    fn an_rao_manages_officers_inside_its_organizations_only() {
        let (rao, _) = scopes();
        let r = actor(Role::Rao, &rao);
        assert!(may_manage(&r, Role::Drao, &[dept(1, 10)]));
        assert!(may_manage(&r, Role::Rao, &[org(1)]));
        // An MRAO is above it; another organization is outside it; one
        // assignment outside is enough to be out of reach.
        assert!(!may_manage(&r, Role::Mrao, &[]));
        assert!(!may_manage(&r, Role::Rao, &[org(2)]));
        assert!(!may_manage(&r, Role::Rao, &[org(1), org(2)]));
        assert!(!may_manage(&r, Role::Drao, &[dept(2, 20)]));
        // Unassigned officers belong to nobody's scope.
        assert!(!may_manage(&r, Role::Drao, &[]));
    }

    #[test]
    fn a_drao_manages_draos_of_its_departments_only() {
        let (_, drao) = scopes();
        let d = actor(Role::Drao, &drao);
        assert!(may_manage(&d, Role::Drao, &[dept(1, 10)]));
        assert!(!may_manage(&d, Role::Drao, &[dept(1, 10), dept(1, 11)]));
        assert!(!may_manage(&d, Role::Rao, &[org(1)]));
        assert!(!may_assign(&d, org(1)));
        assert!(may_assign(&d, dept(1, 10)));
    }

    #[test]
    fn passwords_are_reset_only_below_ones_rank_or_by_an_mrao() {
        let (rao, drao) = scopes();
        let (r, d) = (actor(Role::Rao, &rao), actor(Role::Drao, &drao));
        assert!(may_reset_password(&r, Role::Drao));
        assert!(!may_reset_password(&r, Role::Rao));
        assert!(!may_reset_password(&d, Role::Drao));
        let m = actor(Role::Mrao, &Scope::All);
        for role in [Role::Mrao, Role::Rao, Role::Drao] {
            assert!(may_reset_password(&m, role));
        }
    }

    #[test]
    fn an_mrao_manages_everyone() {
        let m = actor(Role::Mrao, &Scope::All);
        assert!(may_manage(&m, Role::Mrao, &[]));
        assert!(may_manage(&m, Role::Drao, &[]));
        assert!(may_manage(&m, Role::Rao, &[org(5)]));
    }

    #[test]
    fn profiles_and_keys_follow_role_and_scope() {
        let rao_scope = Scope::Limited {
            organizations: vec![1],
            departments: vec![9],
        };
        let rao = actor(Role::Rao, &rao_scope);
        assert!(may_manage_places(
            &rao,
            &[(1, None), (1, Some(3)), (2, Some(9))]
        ));
        assert!(!may_manage_places(&rao, &[(1, None), (2, None)]));
        assert!(may_manage_keys_for(&rao, &[1]));
        assert!(!may_manage_keys_for(&rao, &[1, 2]));
        let drao = Actor {
            role: Role::Drao,
            ..rao
        };
        assert!(!may_manage_places(&drao, &[(2, Some(9))]));
        assert!(!may_manage_keys_for(&drao, &[1]));
        let cli = Actor::cli("cli");
        assert!(may_manage_places(&cli, &[(7, None)]));
        assert!(may_manage_keys_for(&cli, &[7, 8]));
    }

    #[test]
    fn only_an_mrao_sets_extended_key_usages_beyond_the_device_ones() {
        let (rao_scope, drao_scope) = scopes();
        let (rao, drao) = (actor(Role::Rao, &rao_scope), actor(Role::Drao, &drao_scope));
        let mrao = actor(Role::Mrao, &Scope::All);
        let eku = |s: &str| s.parse::<Eku>().unwrap();
        for ok in [
            "clientAuth",
            "emailProtection",
            "ipsecIKE",
            "1.3.6.1.5.5.7.3.2",
            "1.3.6.1.5.5.7.3.14",
        ] {
            assert!(may_set_eku(&rao, &eku(ok)), "{ok}");
            assert!(may_set_eku(&drao, &eku(ok)), "{ok}");
        }
        for bad in [
            "serverAuth",
            "codeSigning",
            "1.3.6.1.5.5.7.3.1",
            "1.3.6.1.5.5.7.3.8",
            "1.3.6.1.5.5.7.3.9",
            "1.3.6.1.4.1.311.20.2.2",
            "2.5.29.37.0",
        ] {
            assert!(!may_set_eku(&rao, &eku(bad)), "{bad}");
            assert!(!may_set_eku(&drao, &eku(bad)), "{bad}");
            assert!(may_set_eku(&mrao, &eku(bad)), "{bad}");
        }
    }

    #[test]
    fn each_role_needs_its_kind_of_assignment() {
        assert!(grants_fit_role(Role::Mrao, &[]).is_ok());
        assert!(grants_fit_role(Role::Mrao, &[org(1)]).is_err());
        assert!(grants_fit_role(Role::Rao, &[]).is_err());
        assert!(grants_fit_role(Role::Rao, &[org(1), dept(2, 20)]).is_ok());
        assert!(grants_fit_role(Role::Drao, &[dept(1, 10)]).is_ok());
        assert!(grants_fit_role(Role::Drao, &[org(1)]).is_err());
        assert!(grants_fit_role(Role::Drao, &[]).is_err());
    }

    #[test]
    fn places_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_grant("3"), Some(org(3)));
        assert_eq!(parse_grant("3:12"), Some(dept(3, 12)));
        assert_eq!(grant_value(dept(3, 12)), "3:12");
        assert_eq!(parse_grant("x"), None);
        assert_eq!(parse_grant("3:"), None);
        assert_eq!(parse_grant(""), None);
    }

    #[test]
    fn names_usernames_emails_and_passwords_are_checked() {
        assert_eq!(check_name("  Acme ", 200).as_deref(), Ok("Acme"));
        assert!(check_name("   ", 200).is_err());
        assert!(check_name(&"x".repeat(201), 200).is_err());
        assert!(check_name("a\u{7}b", 200).is_err());
        assert!(check_username("jane.doe@acme").is_ok());
        assert!(check_username("jane doe").is_err());
        for reserved in [
            "scep",
            "auto-approve",
            "Purge",
            "SYSTEM",
            "cli",
            "api",
            "bootstrap",
        ] {
            assert!(check_username(reserved).unwrap_err().contains("reserved"));
        }
        assert!(check_username("scep-officer").is_ok());

        assert_eq!(check_email(""), Ok(None));
        assert_eq!(
            check_email("ra@acme.example"),
            Ok(Some("ra@acme.example".into()))
        );
        for bad in ["no-at", "a@b", "a@@b.c", "@b.c", "a b@c.d", "a@.c", "a@c."] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("twelve-chars").is_ok());
    }
}
