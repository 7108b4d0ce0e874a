//! Delivery: SMTP settings, the lettre transport, and the background task
//! that leases due outbox rows, sends them and records the outcome. Also
//! runs the periodic expiry-reminder scan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::Connection;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::render::{self, Rendered};
use super::{events, NotifyError};
use crate::store::outbox::{self, Claimed, KIND_PENDING};
use crate::store::{PgPool, StoreError};

/// How long an SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// Rows leased per round. With the lease below, a whole round of timeouts
/// still ends before the lease does, so no other process re-sends.
const BATCH: i64 = 20;
const LEASE_SECS: f64 = 600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (a local relay).
    None,
    /// STARTTLS required (port 587).
    StartTls,
    /// Implicit TLS (SMTPS, port 465).
    Tls,
}

impl std::str::FromStr for SmtpTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            o => Err(format!("{o:?} is not none, starttls or tls")),
        }
    }
}

/// Mail settings from the configuration.
#[derive(Clone)]
pub struct MailSettings {
    /// None: notifications are queued but not sent.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub from: String,
    pub digest_seconds: u32,
    pub poll_seconds: u32,
    pub max_attempts: u32,
    pub retry_base_seconds: u32,
    pub expiry_scan_seconds: u32,
    pub expiry_reminder_days: Vec<u32>,
}

impl std::fmt::Debug for MailSettings {
    // The SMTP password never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    /// One line for the console: where mail goes, never the password.
    pub fn describe(&self) -> String {
        match &self.smtp_host {
            Some(h) => format!(
                "{h}:{} ({:?}), from {}{}",
                self.smtp_port,
                self.smtp_tls,
                self.from,
                if self.smtp_username.is_some() {
                    ", with login"
                } else {
                    ""
                }
            ),
            None => "no SMTP server configured: mails wait in the outbox".into(),
        }
    }
}

/// An SMTP transport and sender address.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

fn smtp_err(e: lettre::transport::smtp::Error) -> NotifyError {
    NotifyError::Smtp {
        permanent: e.is_permanent(),
        message: e.to_string(),
    }
}

impl Mailer {
    /// None when no SMTP host is configured.
    pub fn new(s: &MailSettings) -> Result<Option<Mailer>, NotifyError> {
        let Some(host) = s.smtp_host.as_deref() else {
            return Ok(None);
        };
        let builder = match s.smtp_tls {
            SmtpTls::None => SmtpTransport::builder_dangerous(host),
            SmtpTls::StartTls => SmtpTransport::starttls_relay(host).map_err(smtp_err)?,
            SmtpTls::Tls => SmtpTransport::relay(host).map_err(smtp_err)?,
        };
        let mut builder = builder.port(s.smtp_port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(u), Some(p)) = (&s.smtp_username, &s.smtp_password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let from = s
            .from
            .parse::<Mailbox>()
            .map_err(|_| NotifyError::Address(s.from.clone()))?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    pub fn send(&self, to: &str, mail: &Rendered) -> Result<(), NotifyError> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|_| NotifyError::Address(to.to_string()))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| NotifyError::Smtp {
                permanent: true,
                message: e.to_string(),
            })?;
        self.transport.send(&msg).map_err(smtp_err)?;
        Ok(())
    }
}

/// Send a test mail right now, bypassing the outbox.
pub fn send_test(s: &MailSettings, public_url: &str, to: &str) -> Result<(), NotifyError> {
    let mailer = Mailer::new(s)?.ok_or(NotifyError::NotConfigured)?;
    let mail = render::notice(public_url, "test", &serde_json::json!({}))?;
    mailer.send(to, &mail)
}

/// Lease due rows, send them (pending-request rows as one digest per
/// recipient), record each outcome. Returns the number of mails sent.
pub fn deliver_due(
    pool: &PgPool,
    mailer: &Mailer,
    s: &MailSettings,
    public_url: &str,
) -> Result<usize, NotifyError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let claimed = outbox::claim(&mut conn, LEASE_SECS, f64::from(s.digest_seconds), BATCH)?;
    // One mail per digest recipient, one per other row; BTreeMap keeps
    // the order stable (oldest first by the first row's id).
    let mut groups: BTreeMap<(String, String, i64), Vec<&Claimed>> = BTreeMap::new();
    let mut digest_key: BTreeMap<String, i64> = BTreeMap::new();
    for c in &claimed {
        let key = if c.kind == KIND_PENDING {
            let first = *digest_key.entry(c.recipient.clone()).or_insert(c.id);
            (c.kind.clone(), c.recipient.clone(), first)
        } else {
            (c.kind.clone(), c.recipient.clone(), c.id)
        };
        groups.entry(key).or_default().push(c);
    }
    let max = i32::try_from(s.max_attempts).unwrap_or(i32::MAX);
    let base = f64::from(s.retry_base_seconds);
    let mut sent = 0;
    let mut down: Option<String> = None;
    for ((kind, recipient, _), rows) in &groups {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        // The server is unreachable: don't wait for a timeout per row.
        if let Some(err) = &down {
            outbox::mark_attempt_failed(&mut conn, &ids, err, max, base)?;
            continue;
        }
        let payloads: Vec<&serde_json::Value> = rows.iter().map(|r| &r.payload).collect();
        let outcome = render::render(public_url, kind, &payloads)
            .and_then(|mail| mailer.send(recipient, &mail).map(|()| mail));
        match outcome {
            Ok(mail) => {
                outbox::mark_sent(&mut conn, &ids, &mail.subject, &mail.text, &mail.html)?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(kind, recipient, error = %e, "mail not delivered");
                let msg = e.to_string();
                outbox::mark_attempt_failed(&mut conn, &ids, &msg, max, base)?;
                if matches!(
                    e,
                    NotifyError::Smtp {
                        permanent: false,
                        ..
                    }
                ) {
                    down = Some(msg);
                }
            }
        }
    }
    Ok(sent)
}

/// Enqueue expiry reminders (idempotent; safe in every process at once).
pub fn scan_expiring(pool: &PgPool, s: &MailSettings) -> Result<usize, NotifyError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let days = s.expiry_reminder_days.clone();
    Ok(conn.transaction(|c| events::expiring(c, &days))?)
}

/// The background task of `scepd serve`, on a thread of its own because
/// SMTP is blocking I/O: poll, deliver, scan for expiring certificates.
pub fn spawn(
    pool: PgPool,
    s: MailSettings,
    public_url: String,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("scepd-notify".into())
        .spawn(move || run(pool, s, public_url))
}

fn run(pool: PgPool, s: MailSettings, public_url: String) {
    let mailer = match Mailer::new(&s) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "mail disabled: bad SMTP settings");
            None
        }
    };
    if mailer.is_none() {
        tracing::info!("no SMTP host: notifications are queued, not sent");
    }
    let poll = Duration::from_secs(u64::from(s.poll_seconds.max(1)));
    let scan_every = Duration::from_secs(u64::from(s.expiry_scan_seconds.max(1)));
    let mut next_scan = Instant::now();
    let mut outage = None;
    loop {
        if Instant::now() >= next_scan {
            next_scan = Instant::now() + scan_every;
            let res = scan_expiring(&pool, &s);
            note_outage(&mut outage, res.as_ref().err());
            match res {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "expiry reminders queued"),
                Err(e) if is_unavailable(&e) => {}
                Err(e) => tracing::warn!(error = %e, "expiry reminder scan"),
            }
        }
        if let Some(m) = &mailer {
            let res = deliver_due(&pool, m, &s, &public_url);
            note_outage(&mut outage, res.as_ref().err());
            match res {
                Ok(0) => {}
                Ok(n) => tracing::info!(sent = n, "notifications sent"),
                Err(e) if is_unavailable(&e) => {}
                Err(e) => tracing::warn!(error = %e, "delivering notifications"),
            }
        }
        std::thread::sleep(poll);
    }
}

fn is_unavailable(e: &NotifyError) -> bool {
    matches!(e, NotifyError::Store(e) if e.is_unavailable())
}

/// Logs once that the sender lost the database (stopped, failing over)
/// and once that it reached it again, instead of a warning every poll.
/// The pool reconnects by itself; the rows wait in the outbox meanwhile.
fn note_outage(outage: &mut Option<Instant>, err: Option<&NotifyError>) {
    match (err.filter(|e| is_unavailable(e)), outage.as_ref()) {
        (Some(e), None) => {
            tracing::warn!(error = %e, "mail sender lost the database; mails wait in the outbox");
            *outage = Some(Instant::now());
        }
        (None, Some(since)) => {
            tracing::info!(
                after_ms = since.elapsed().as_millis() as u64,
                "mail sender reconnected to the database"
            );
            *outage = None;
        }
        _ => {}
    }
}
