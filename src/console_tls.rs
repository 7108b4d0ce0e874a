//! The console listener's certificate while `serve` runs: loaded before the
//! listener opens (a failure stops start-up), reloaded on SIGHUP (a failure
//! keeps the certificate being served and says why), and, when scepd's CA
//! issued it, renewed before it expires (`server::tls`).

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::rt::signal::unix::{signal, SignalKind};
use server::ca::key_file::Passphrase;
use server::enroll::Enroll;
use server::tls::{self, CertStore, Loaded, TlsSource};

/// How often a self-issued certificate is checked for renewal.
const RENEW_CHECK: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

pub struct ConsoleCert {
    source: TlsSource,
    data: PathBuf,
    enroll: Enroll,
    pass: Passphrase,
    pub store: Arc<CertStore>,
}

impl ConsoleCert {
    /// Load (or issue) the certificate to serve.
    pub fn load(
        source: TlsSource,
        data: PathBuf,
        enroll: Enroll,
        pass: Passphrase,
    ) -> Result<(Self, Loaded), String> {
        let first = fetch(&source, &data, &enroll, &pass)?;
        let store = CertStore::new(&first);
        Ok((
            Self {
                source,
                data,
                enroll,
                pass,
                store,
            },
            first,
        ))
    }

    /// Load the files again (or renew the self-issued certificate when it
    /// needs it) and serve the result from the next handshake on.
    fn reload(&self) -> Result<Loaded, String> {
        let next = fetch(&self.source, &self.data, &self.enroll, &self.pass)?;
        self.store.replace(&next);
        Ok(next)
    }
}

fn fetch(
    source: &TlsSource,
    data: &std::path::Path,
    enroll: &Enroll,
    pass: &Passphrase,
) -> Result<Loaded, String> {
    match source {
        TlsSource::Files { cert, key } => tls::load_files(cert, key).map_err(|e| e.to_string()),
        TlsSource::SelfIssued { names } => {
            let auth = enroll.authority();
            let got = tls::ensure_self_issued(data, &auth.ca, auth.issuers(), names, pass)
                .map_err(|e| format!("console TLS certificate: {e}"))?;
            if let Some(issued) = &got.issued {
                let mut conn = enroll
                    .pool()
                    .get()
                    .map_err(|e| format!("cannot connect to the database: {e}"))?;
                tls::record_issued(&mut conn, issued)
                    .map_err(|e| format!("auditing the console TLS certificate: {e}"))?;
            }
            Ok(got.loaded)
        }
    }
}

/// Reload on SIGHUP for as long as the service runs; without a console
/// listener there is nothing to reload, but SIGHUP no longer ends scepd.
pub async fn on_sighup(cert: Option<Arc<ConsoleCert>>) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; the console certificate is not reloadable");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match &cert {
            Some(c) => reload(c.clone(), "SIGHUP").await,
            None => tracing::info!("SIGHUP: no console TLS certificate to reload"),
        }
    }
}

/// Renew a self-issued certificate before it expires.
pub async fn renew_self_issued(cert: Arc<ConsoleCert>) {
    if !matches!(cert.source, TlsSource::SelfIssued { .. }) {
        return;
    }
    let mut tick = actix_web::rt::time::interval(RENEW_CHECK);
    tick.tick().await; // the first tick is immediate; start-up just loaded it
    loop {
        tick.tick().await;
        reload(cert.clone(), "renewal check").await;
    }
}

async fn reload(cert: Arc<ConsoleCert>, why: &'static str) {
    match actix_web::web::block(move || cert.reload()).await {
        Ok(Ok(l)) => tracing::info!(
            serial = %l.serial,
            names = %l.names.join(", "),
            not_after = %l.not_after,
            "{why}: console TLS certificate loaded"
        ),
        Ok(Err(e)) => tracing::error!(
            "{why}: console TLS certificate NOT reloaded, the previous one is still served: {e}"
        ),
        Err(e) => tracing::error!(error = %e, "{why}: console TLS reload did not run"),
    }
}
