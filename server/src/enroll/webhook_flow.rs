//! The challenge-validation webhook's place in an enrollment
//! (`webhook::challenge`, docs/webhooks.md): a first PKCSReq whose
//! challengePassword matched no one-time challenge and no access code is
//! put to the profile's webhook, if it has one, before anything is signed.
//! An allow re-runs the enrollment transaction filed where the webhook
//! said; a deny, an unavailable webhook or a bad reply is refused
//! (audited), or, for an unavailable webhook on a profile that asks for
//! it, filed PENDING for an officer.

use base64::Engine;
use diesel::pg::PgConnection;
use diesel::Connection;
use openssl::x509::X509Name;

use super::{policy, Answer, Enroll, EnrollError};
use crate::csr::Csr;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::webhooks::{self, Webhook, PURPOSE_CHALLENGE};
use crate::store::{orgs, profiles::Profile, StoreError};
use crate::webhook::challenge::{self, Question, Verdict};
use crate::webhook::CallError;
use crate::wire::{FailInfo, PkiMessage};

/// An enrollment the webhook let in (or that waits for an officer because
/// the webhook could not be asked), filed under these IDs.
#[derive(Debug, Clone)]
pub(super) struct Admitted {
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// Filed as Requested whatever the profile's approval mode.
    pub pending: bool,
    pub webhook_id: i64,
    pub reason: Option<String>,
}

/// Where a request is filed: organization, department, the challenge it
/// used and the certificate it renews (as `requests_flow` names them).
pub(super) type Filing = (i64, Option<i64>, Option<i64>, Option<i64>);

/// What the enrollment does next.
pub(super) enum Step {
    /// The profile has no (enabled) challenge webhook: refused as unknown.
    NotConfigured,
    Admit(Admitted),
    Answer(Answer),
}

impl Enroll {
    /// Ask the profile's challenge webhook about `pw`. Called with no
    /// database connection held: the call may take the webhook's timeout.
    pub(super) fn challenge_webhook(
        &self,
        profile: &Profile,
        msg: &PkiMessage,
        csr: &Csr,
        subject: &X509Name,
        pw: &str,
        client_ip: Option<&str>,
    ) -> Result<Step, EnrollError> {
        let Some(sealer) = self.webhooks.as_deref() else {
            return Ok(Step::NotConfigured);
        };
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let Some(hook) =
            webhooks::of_profile(&mut conn, profile.id, PURPOSE_CHALLENGE)?.filter(|h| h.enabled)
        else {
            return Ok(Step::NotConfigured);
        };
        let txid = msg.header.transaction_id.0.as_str();
        let organizations = profile_org_names(&mut conn, profile.id)?;
        drop(conn);
        let subject_text = super::name_text(subject);
        let q = Question {
            event: "challenge",
            delivery: uuid::Uuid::new_v4().to_string(),
            profile: &profile.profile_id,
            organizations,
            transaction_id: txid,
            message_type: msg.header.message_type.name(),
            csr: base64::engine::general_purpose::STANDARD.encode(&csr.der),
            challenge: pw,
            client_ip,
            subject: &subject_text,
            sans: csr
                .sans
                .iter()
                .map(|s| challenge::San {
                    kind: policy::san_type(s),
                    value: policy::san_value(s),
                })
                .collect(),
        };
        let asked = challenge::ask(sealer, &hook, &q);
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let decided = match asked {
            Ok(reply) => match challenge::verdict(&mut conn, profile.id, &reply)? {
                Ok(v) => Ok(v),
                Err(why) => Err(CallError::BadReply(why)),
            },
            Err(e) => Err(e),
        };
        let note = decided.as_ref().err().map(|e| e.to_string());
        webhooks::note_outcome(&mut conn, hook.id, note.as_deref())?;
        match decided {
            Ok(Verdict::Allow {
                organization_id,
                department_id,
                reason,
            }) => Ok(Step::Admit(Admitted {
                organization_id,
                department_id,
                pending: false,
                webhook_id: hook.id,
                reason,
            })),
            Ok(Verdict::Deny(reason)) => {
                let reason = format!("challenge denied by webhook: {reason}");
                self.audit_webhook(
                    &mut conn,
                    &hook,
                    AuditKind::WebhookDenied,
                    txid,
                    &reason,
                    client_ip,
                );
                // A refused secret counts towards the client's lockout like
                // any other unknown challenge.
                self.gate
                    .reject(&mut conn, client_ip, txid, &reason, true)?;
                Ok(Step::Answer(
                    self.refuse(&mut conn, txid, &reason, client_ip)?,
                ))
            }
            Err(CallError::Unavailable(why)) => {
                let reason = format!("challenge webhook unavailable: {why}");
                self.audit_webhook(
                    &mut conn,
                    &hook,
                    AuditKind::WebhookFailed,
                    txid,
                    &reason,
                    client_ip,
                );
                if hook.pending_on_error {
                    if let Some((org, dept)) = challenge::only_place(&mut conn, profile.id)? {
                        return Ok(Step::Admit(Admitted {
                            organization_id: org,
                            department_id: dept,
                            pending: true,
                            webhook_id: hook.id,
                            reason: Some(reason),
                        }));
                    }
                }
                Ok(Step::Answer(
                    self.refuse(&mut conn, txid, &reason, client_ip)?,
                ))
            }
            Err(CallError::BadReply(why)) => {
                let reason = format!("bad challenge webhook reply: {why}");
                self.audit_webhook(
                    &mut conn,
                    &hook,
                    AuditKind::WebhookFailed,
                    txid,
                    &reason,
                    client_ip,
                );
                Ok(Step::Answer(
                    self.refuse(&mut conn, txid, &reason, client_ip)?,
                ))
            }
        }
    }

    /// Inside the enrollment transaction: where an admitted request is
    /// filed (organization, department, no challenge, no renewal), with
    /// the webhook's allow audited as `challenge.used` is for a challenge.
    pub(super) fn admitted_place(
        &self,
        conn: &mut PgConnection,
        admitted: Option<&Admitted>,
        profile: &Profile,
        txid: &str,
        csr: &Csr,
        client_ip: Option<&str>,
    ) -> Result<Filing, EnrollError> {
        let Some(a) = admitted else {
            return Err(EnrollError::Policy(
                "no challenge webhook admitted this request".into(),
            ));
        };
        let ids: Vec<&str> = [csr.common_name.as_deref(), csr.serial_number.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        self.audit_admitted(conn, a, profile, txid, &ids, client_ip)?;
        Ok((a.organization_id, a.department_id, None, None))
    }

    fn audit_admitted(
        &self,
        conn: &mut PgConnection,
        a: &Admitted,
        profile: &Profile,
        txid: &str,
        identities: &[&str],
        client_ip: Option<&str>,
    ) -> Result<(), StoreError> {
        if a.pending {
            // The webhook was not asked successfully; `request.pending`
            // and `webhook.failed` tell the story.
            return Ok(());
        }
        let mut details = super::secret_used_details(txid, profile, &identities, false);
        details["reason"] = a.reason.clone().into();
        audit::record(
            conn,
            &AuditEvent {
                actor: "scep",
                kind: AuditKind::WebhookAllowed,
                target: Some(format!("webhook:{}", a.webhook_id)),
                details,
                client_ip,
                organization_id: Some(a.organization_id),
                department_id: a.department_id,
            },
        )
    }

    fn audit_webhook(
        &self,
        conn: &mut PgConnection,
        hook: &Webhook,
        kind: AuditKind,
        txid: &str,
        reason: &str,
        client_ip: Option<&str>,
    ) {
        let res = conn.transaction(|conn| {
            audit::record(
                conn,
                &AuditEvent {
                    actor: "scep",
                    kind,
                    target: Some(format!("webhook:{}", hook.id)),
                    details: serde_json::json!({ "transaction_id": txid, "reason": reason }),
                    client_ip,
                    organization_id: None,
                    department_id: None,
                },
            )
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not audit a webhook outcome");
        }
    }

    /// Queue a `failed` notification for an enrollment answered FAILURE
    /// (the refusal is audited in its own transaction, and so is this).
    pub(super) fn notify_failed(
        &self,
        profile: &Profile,
        msg: &PkiMessage,
        info: FailInfo,
        reason: &str,
        client_ip: Option<&str>,
    ) {
        let payload = serde_json::json!({
            "transaction_id": msg.header.transaction_id.0,
            "message_type": msg.header.message_type.name(),
            "fail_info": format!("{info:?}"),
            "reason": reason,
            "client_ip": client_ip,
        });
        let res = self.pool.get().map_err(StoreError::from).and_then(|mut c| {
            c.transaction(|c| webhooks::enqueue(c, profile.id, "failed", &payload))
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not queue the failed-enrollment webhook");
        }
    }
}

fn profile_org_names(conn: &mut PgConnection, profile_id: i64) -> Result<Vec<String>, StoreError> {
    let mut names = vec![];
    for (org, _) in crate::store::profiles::places_of(conn, profile_id)? {
        let name = orgs::org_by_id(conn, org)?.name;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}
