//! Delivery of notification webhooks: a thread in every `scepd serve`
//! leases due `webhook_outbox` rows (`FOR UPDATE SKIP LOCKED`), POSTs each
//! signed, and records the outcome; a failed delivery is retried with
//! exponential backoff (the mail outbox's settings: poll interval, attempts,
//! first retry delay). A row is marked sent once; only a process that dies
//! between the receiver's 2xx and that mark lets another send it again
//! after the lease, which the unchanged `X-Scepd-Delivery` lets the
//! receiver recognise.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{post, Sealer};
use crate::store::webhooks::{self, Webhook, PURPOSE_NOTIFY};
use crate::store::{PgPool, StoreError};

/// Rows leased per round; with [`DELIVERY_TIMEOUT`] a whole round ends well
/// before the lease does, so no other process sends a leased row.
const BATCH: i64 = 10;
const LEASE_SECS: f64 = 300.0;
/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub struct SenderSettings {
    pub poll_seconds: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
}

/// Lease due rows, deliver them, record each outcome. Returns the number
/// delivered.
pub fn deliver_due(
    pool: &PgPool,
    sealer: &Sealer,
    s: &SenderSettings,
) -> Result<usize, StoreError> {
    let mut conn = pool.get()?;
    let claimed = webhooks::claim(&mut conn, LEASE_SECS, BATCH)?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = claimed.iter().map(|c| c.webhook_id).collect();
    let hooks: HashMap<i64, Webhook> = webhooks::by_ids(&mut conn, &ids)?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    let max = i32::try_from(s.max_attempts).unwrap_or(i32::MAX);
    let base = f64::from(s.retry_base_seconds);
    let mut sent = 0;
    for row in claimed {
        let delivery = format!("notify-{}", row.id);
        let outcome = match hooks.get(&row.webhook_id) {
            Some(h) if h.enabled => deliver(sealer, h, &row.event, &delivery, &row.payload),
            Some(_) => Err("webhook disabled".to_string()),
            None => Err("webhook removed".to_string()),
        };
        match outcome {
            Ok(()) => {
                webhooks::mark_sent(&mut conn, row.id)?;
                webhooks::note_outcome(&mut conn, row.webhook_id, None)?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(webhook = row.webhook_id, event = %row.event, error = %e, "webhook not delivered");
                webhooks::mark_attempt_failed(&mut conn, &[row.id], &e, max, base)?;
                if hooks.contains_key(&row.webhook_id) {
                    webhooks::note_outcome(&mut conn, row.webhook_id, Some(&e))?;
                }
            }
        }
    }
    Ok(sent)
}

fn deliver(
    sealer: &Sealer,
    hook: &Webhook,
    event: &str,
    delivery: &str,
    payload: &serde_json::Value,
) -> Result<(), String> {
    let secret = sealer
        .open(&hook.secret_sealed, hook.profile_id, PURPOSE_NOTIFY)
        .map_err(|e| e.to_string())?;
    let mut body = payload.clone();
    body["delivery"] = delivery.into();
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    post(&hook.url, &secret, event, delivery, &body, DELIVERY_TIMEOUT)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The background task of `scepd serve`, on a thread of its own because
/// the calls are blocking I/O.
pub fn spawn(
    pool: PgPool,
    sealer: std::sync::Arc<Sealer>,
    s: SenderSettings,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("scepd-webhooks".into())
        .spawn(move || run(pool, sealer, s))
}

fn run(pool: PgPool, sealer: std::sync::Arc<Sealer>, s: SenderSettings) {
    let poll = Duration::from_secs(u64::from(s.poll_seconds.max(1)));
    let mut outage: Option<Instant> = None;
    loop {
        match deliver_due(&pool, &sealer, &s) {
            Ok(n) => {
                if let Some(since) = outage.take() {
                    tracing::info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "webhook sender reconnected to the database"
                    );
                }
                if n > 0 {
                    tracing::info!(delivered = n, "webhooks delivered");
                }
            }
            Err(e) if e.is_unavailable() => {
                if outage.is_none() {
                    tracing::warn!(error = %e, "webhook sender lost the database; events wait in the outbox");
                    outage = Some(Instant::now());
                }
            }
            Err(e) => tracing::warn!(error = %e, "delivering webhooks"),
        }
        std::thread::sleep(poll);
    }
}
