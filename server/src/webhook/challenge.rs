//! The challenge-validation webhook: the question scepd asks about a
//! PKCSReq whose challengePassword is no one-time challenge and no access
//! code, the reply it accepts, and where an allowed request is filed
//! (docs/webhooks.md). The enrollment service calls it before anything is
//! signed (`enroll::webhook_flow`).

use std::time::Duration;

use diesel::pg::PgConnection;
use serde::{Deserialize, Serialize};

use super::{post, CallError, Sealer};
use crate::store::webhooks::{Webhook, PURPOSE_CHALLENGE};
use crate::store::{orgs, profiles, StoreError};

/// The JSON body of the question.
#[derive(Debug, Serialize)]
pub struct Question<'a> {
    /// Always `challenge`.
    pub event: &'static str,
    pub delivery: String,
    /// The profile ID (as in `/scep/<profile-id>`).
    pub profile: &'a str,
    /// The organizations the profile is enabled for.
    pub organizations: Vec<String>,
    pub transaction_id: &'a str,
    /// `PKCSReq` (RenewalReq never reaches a webhook).
    pub message_type: &'a str,
    /// The PKCS#10 request, base64 of its DER.
    pub csr: String,
    pub challenge: &'a str,
    pub client_ip: Option<&'a str>,
    /// The subject the certificate would carry (the profile's template
    /// applied), RFC 4514-like text.
    pub subject: &'a str,
    pub sans: Vec<San>,
}

#[derive(Debug, Serialize)]
pub struct San {
    /// `dns`, `email`, `uri`, `upn` or `ip`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

/// The reply: `allow`, and optionally why and where to file the request.
#[derive(Debug, Deserialize)]
pub struct Reply {
    pub allow: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
}

/// The decision, with the organization and department resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        organization_id: i64,
        department_id: Option<i64>,
        reason: Option<String>,
    },
    Deny(String),
}

/// Longest reason kept (audit and log).
const MAX_REASON: usize = 200;

/// Ask `hook` about `q`. The shared secret is opened here and dropped
/// (zeroed) when the call returns.
pub fn ask(sealer: &Sealer, hook: &Webhook, q: &Question<'_>) -> Result<Reply, CallError> {
    let secret = sealer
        .open(&hook.secret_sealed, hook.profile_id, PURPOSE_CHALLENGE)
        .map_err(|e| CallError::BadReply(e.to_string()))?;
    let body = serde_json::to_vec(q).map_err(|e| CallError::BadReply(e.to_string()))?;
    let timeout = Duration::from_millis(
        hook.timeout_ms
            .clamp(super::TIMEOUT_MS.0, super::TIMEOUT_MS.1) as u64,
    );
    let raw = post(&hook.url, &secret, "challenge", &q.delivery, &body, timeout)?;
    serde_json::from_slice::<Reply>(&raw)
        .map_err(|e| CallError::BadReply(format!("malformed JSON: {e}")))
}

/// A reason as it may be recorded: control characters dropped, at most
/// [`MAX_REASON`] characters.
pub fn clean_reason(r: &str) -> String {
    r.chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Resolve a reply against the database. An allow files the request
/// under the organization (and department) it names, which must exist and
/// be a place the profile is enabled for; one that names none, under the
/// profile's only place. Anything else is a bad reply (`Err` with why).
pub fn verdict(
    conn: &mut PgConnection,
    profile_id: i64,
    reply: &Reply,
) -> Result<Result<Verdict, String>, StoreError> {
    let reason = reply
        .reason
        .as_deref()
        .map(clean_reason)
        .filter(|r| !r.is_empty());
    if !reply.allow {
        return Ok(Ok(Verdict::Deny(
            reason.unwrap_or_else(|| "no reason given".into()),
        )));
    }
    let places = profiles::places_of(conn, profile_id)?;
    let (org, dept) = match (&reply.organization, &reply.department) {
        (None, Some(_)) => return Ok(Err("a department without its organization".into())),
        (None, None) => match places.as_slice() {
            [only] => *only,
            _ => {
                return Ok(Err(
                    "no organization named, and the profile is enabled for more than one place"
                        .into(),
                ))
            }
        },
        (Some(o), d) => {
            let Some(org) = orgs::org_by_name(conn, o)? else {
                return Ok(Err(format!("unknown organization {:?}", clean_reason(o))));
            };
            let dept = match d {
                None => None,
                Some(d) => match orgs::departments_of(conn, org.id)?
                    .into_iter()
                    .find(|x| x.name == *d)
                {
                    Some(x) => Some(x.id),
                    None => {
                        return Ok(Err(format!(
                            "no department {:?} in organization {:?}",
                            clean_reason(d),
                            org.name
                        )))
                    }
                },
            };
            (org.id, dept)
        }
    };
    // The profile is usable there: enabled for the whole organization, or
    // for that very department.
    let enabled_here = places
        .iter()
        .any(|(o, d)| *o == org && (d.is_none() || *d == dept));
    if !enabled_here {
        return Ok(Err(
            "the profile is not enabled for the organization or department named".into(),
        ));
    }
    Ok(Ok(Verdict::Allow {
        organization_id: org,
        department_id: dept,
        reason,
    }))
}

/// The profile's only place, for a request filed PENDING while the
/// webhook is unavailable (None when there is not exactly one).
pub fn only_place(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Option<(i64, Option<i64>)>, StoreError> {
    let places = profiles::places_of(conn, profile_id)?;
    Ok(match places.as_slice() {
        [only] => Some(*only),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_needs_allow_and_nothing_else() {
        let r: Reply = serde_json::from_str(r#"{"allow": false}"#).unwrap();
        assert!(!r.allow && r.reason.is_none() && r.organization.is_none());
        // Unknown fields are ignored, so a receiver may add its own.
        assert!(serde_json::from_str::<Reply>(r#"{"allow": true, "ticket": 7}"#).is_ok());
        assert!(serde_json::from_str::<Reply>(r#"{"reason": "x"}"#).is_err());
        assert!(serde_json::from_str::<Reply>(r#"{"allow": "yes"}"#).is_err());
    }

    #[test]
    fn reasons_lose_control_characters_and_are_capped() {
        assert_eq!(clean_reason(" not\u{1b}[31m ours\n"), "not[31m ours");
        assert_eq!(clean_reason(&"x".repeat(500)).len(), MAX_REASON);
    }
}
