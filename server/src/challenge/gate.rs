//! What stands before the challenge check: the per-client limit on failed
//! challenge attempts (as NDES locks out a client that guesses), the
//! access-code verification cache, and the purge of expired challenges.
//!
//! Counters live in PostgreSQL (`store::attempts`) so that all scepd
//! processes behind one load balancer enforce a single limit.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::access_codes::VerifyCache;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{attempts, challenges, StoreError};

/// Key for requests whose client address is unknown: they share a budget.
pub(crate) const UNKNOWN_CLIENT: &str = "unknown";

pub struct Gate {
    /// Failed attempts per client and window before it is refused
    /// unexamined; 0 disables the limit.
    pub failure_limit: u32,
    pub window: Duration,
    pub cache: VerifyCache,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new(20, Duration::minutes(15))
    }
}

impl Gate {
    pub fn new(failure_limit: u32, window: Duration) -> Self {
        Self {
            failure_limit,
            window: window.max(Duration::seconds(1)),
            cache: VerifyCache::default(),
        }
    }

    /// Start of the fixed window containing `now`.
    pub(crate) fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let w = self.window.num_seconds().max(1);
        let start = now.timestamp() - now.timestamp().rem_euclid(w);
        Utc.timestamp_opt(start, 0).single().unwrap_or(now)
    }

    /// Seconds until the window containing `now` ends (when a locked-out
    /// client may try again).
    pub(crate) fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        let end = self.window_start(now) + self.window;
        u64::try_from((end - now).num_seconds()).unwrap_or(0).max(1)
    }

    /// True when `client_ip` has used up its failed attempts.
    pub fn locked_out(
        &self,
        conn: &mut PgConnection,
        client_ip: Option<&str>,
    ) -> Result<bool, StoreError> {
        if self.failure_limit == 0 {
            return Ok(false);
        }
        let ip = client_ip.unwrap_or(UNKNOWN_CLIENT);
        let n = attempts::failures(conn, ip, self.window_start(Utc::now()))?;
        Ok(n >= i32::try_from(self.failure_limit).unwrap_or(i32::MAX))
    }

    /// Audit a rejected challenge (never the secret) and, when `counts`,
    /// add it to the client's failures; one transaction.
    pub fn reject(
        &self,
        conn: &mut PgConnection,
        client_ip: Option<&str>,
        txid: &str,
        reason: &str,
        counts: bool,
    ) -> Result<(), StoreError> {
        let window = self.window_start(Utc::now());
        conn.transaction(|conn| {
            let failures = if counts {
                Some(attempts::record_failure(
                    conn,
                    client_ip.unwrap_or(UNKNOWN_CLIENT),
                    window,
                )?)
            } else {
                None
            };
            audit::record(
                conn,
                &AuditEvent {
                    actor: "scep",
                    kind: AuditKind::ChallengeRejected,
                    target: Some(format!("transaction:{txid}")),
                    details: serde_json::json!({
                        "reason": reason,
                        "failures_in_window": failures,
                    }),
                    client_ip,
                    // Rejected before any challenge matched: no organization.
                    organization_id: None,
                    department_id: None,
                },
            )
        })
    }
}

/// Delete expired, never-used challenges and old failure windows; the
/// deleted challenges are audited by ID. Returns how many challenges went.
pub fn purge(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    conn.transaction(|conn| {
        let ids = challenges::purge_expired(conn, now)?;
        if !ids.is_empty() {
            audit::record(
                conn,
                &AuditEvent {
                    actor: "purge",
                    kind: AuditKind::ChallengesExpired,
                    target: None,
                    details: serde_json::json!({ "count": ids.len(), "challenge_ids": ids }),
                    client_ip: None,
                    // One entry for challenges of any organization.
                    organization_id: None,
                    department_id: None,
                },
            )?;
        }
        // Windows longer than a day are not supported, so older rows are dead.
        attempts::purge_before(conn, now - Duration::days(1))?;
        Ok(ids.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_contain_now() {
        let g = Gate::new(5, Duration::minutes(15));
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 10, 37, 12).unwrap();
        let s = g.window_start(now);
        assert_eq!(s, Utc.with_ymd_and_hms(2026, 1, 2, 10, 30, 0).unwrap());
        assert_eq!(g.window_start(now + Duration::minutes(7)), s);
        assert_ne!(g.window_start(now + Duration::minutes(8)), s);
    }
}
