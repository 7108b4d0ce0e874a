//! Who is mailed about an organization's certificates: notification
//! contacts (per organization, optionally narrowed to one profile) with the
//! events each wants, and the officers whose scope covers a request.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{admin_scopes, admins, notification_contacts};
use super::StoreError;

/// Events a contact can subscribe to.
pub const EVENTS: [&str; 4] = ["issued", "declined", "revoked", "expiring"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notification_contacts)]
pub struct Contact {
    pub id: i64,
    pub organization_id: i64,
    pub profile_id: Option<i64>,
    pub email: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Add a contact, or replace the events of an existing one.
pub fn upsert(
    conn: &mut PgConnection,
    organization_id: i64,
    profile_id: Option<i64>,
    email: &str,
    events: &[String],
) -> Result<Contact, StoreError> {
    // NULLS NOT DISTINCT does not serve ON CONFLICT inference with a NULL
    // profile, so update first and insert when nothing matched.
    let mut q = diesel::update(notification_contacts::table)
        .filter(notification_contacts::organization_id.eq(organization_id))
        .filter(notification_contacts::email.eq(email))
        .into_boxed();
    q = match profile_id {
        Some(p) => q.filter(notification_contacts::profile_id.eq(p)),
        None => q.filter(notification_contacts::profile_id.is_null()),
    };
    if let Some(c) = q
        .set(notification_contacts::events.eq(events))
        .returning(Contact::as_returning())
        .get_result(conn)
        .optional()?
    {
        return Ok(c);
    }
    Ok(diesel::insert_into(notification_contacts::table)
        .values((
            notification_contacts::organization_id.eq(organization_id),
            notification_contacts::profile_id.eq(profile_id),
            notification_contacts::email.eq(email),
            notification_contacts::events.eq(events),
        ))
        .returning(Contact::as_returning())
        .get_result(conn)?)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Contact>, StoreError> {
    Ok(notification_contacts::table
        .select(Contact::as_select())
        .order(notification_contacts::id)
        .load(conn)?)
}

/// Addresses of the contacts of `organization_id` (all profiles, or this
/// one) that want `event`; each address once.
pub fn emails_for(
    conn: &mut PgConnection,
    organization_id: i64,
    profile_id: i64,
    event: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(notification_contacts::table
        .filter(notification_contacts::organization_id.eq(organization_id))
        .filter(
            notification_contacts::profile_id
                .is_null()
                .or(notification_contacts::profile_id.eq(profile_id)),
        )
        .filter(notification_contacts::events.contains(vec![event.to_string()]))
        .select(notification_contacts::email)
        .distinct()
        .order(notification_contacts::email)
        .load(conn)?)
}

/// Addresses of the enabled RAOs and DRAOs whose scope covers a request of
/// `organization_id`/`department_id` and who have not turned mail off.
pub fn officer_emails(
    conn: &mut PgConnection,
    organization_id: i64,
    department_id: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    let mut q = admins::table
        .inner_join(admin_scopes::table)
        .filter(admins::enabled.eq(true))
        .filter(admins::notify_email.eq(true))
        .filter(admins::role.eq_any(["rao", "drao"]))
        .filter(admin_scopes::organization_id.eq(organization_id))
        .into_boxed();
    // A scope without a department covers the whole organization.
    q = match department_id {
        Some(d) => q.filter(
            admin_scopes::department_id
                .is_null()
                .or(admin_scopes::department_id.eq(d)),
        ),
        None => q.filter(admin_scopes::department_id.is_null()),
    };
    let emails: Vec<Option<String>> = q.select(admins::email).distinct().load(conn)?;
    let mut emails: Vec<String> = emails
        .into_iter()
        .flatten()
        .filter(|e| !e.trim().is_empty())
        .collect();
    emails.sort();
    Ok(emails)
}

/// An officer turns their own pending-request mails on or off.
pub fn set_officer_mail(
    conn: &mut PgConnection,
    username: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    let n = diesel::update(admins::table.filter(admins::username.eq(username)))
        .set(admins::notify_email.eq(enabled))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Whether an officer receives pending-request mails, and at which address.
pub fn officer_mail(
    conn: &mut PgConnection,
    username: &str,
) -> Result<(bool, Option<String>), StoreError> {
    Ok(admins::table
        .filter(admins::username.eq(username))
        .select((admins::notify_email, admins::email))
        .first(conn)?)
}
