//! `scepd serve`: bootstrap, then the HTTP service until SIGINT/SIGTERM,
//! then stop the private PostgreSQL cluster if we started one.

use std::sync::Arc;

use actix_web::{middleware, web as aweb, App, HttpServer};
use server::bootstrap::{self, Database};
use server::challenge::gate::{self, Gate};
use server::config::Config;
use server::enroll::Enroll;
use server::store;

use crate::console_tls::{self, ConsoleCert};

pub fn init_logging(cfg: &Config, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if cfg.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Everything a command needs: the service, and the cluster to stop after.
pub struct Running {
    pub enroll: Enroll,
    pub db: Database,
    pub data: std::path::PathBuf,
    /// What the keys in `<data>/ca` are encrypted with.
    pub key_passphrase: server::ca::key_file::Passphrase,
}

/// Bootstrap the data directory, database, identities and seed rows. The
/// database comes first: the identity it records decides whether this node
/// may create one (see `bootstrap::authority`).
pub fn start(cfg: &Config, identity: bootstrap::IdentityOptions) -> Result<Running, String> {
    let data = bootstrap::data_dir(cfg).map_err(|e| e.to_string())?;
    let db = bootstrap::database(cfg, &data).map_err(|e| e.to_string())?;
    let pool = store::pool(&db.url, cfg.db_pool_size).map_err(|e| e.to_string())?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    store::run_migrations(&mut conn).map_err(|e| e.to_string())?;
    let auth = bootstrap::authority(cfg, &data, identity, &mut conn).map_err(|e| e.to_string())?;
    let key_passphrase = server::key_store::passphrase(cfg, &data).map_err(|e| e.to_string())?;
    let seeded = bootstrap::seed(&mut conn, cfg).map_err(|e| e.to_string())?;
    drop(conn);
    if let Some(user) = &seeded.created_admin {
        match &seeded.admin_password {
            Some(pw) => {
                let path =
                    bootstrap::write_initial_password(&data, pw).map_err(|e| e.to_string())?;
                eprintln!(
                    "\n  First MRAO created: username {user:?}; its password is in {}\n  \
                     (readable by this account only; the console asks for a new one at first login)\n",
                    path.display()
                );
            }
            None => {
                eprintln!("First MRAO created: username {user:?} (password from configuration)")
            }
        }
    }
    let intune = intune(cfg, &key_passphrase)?;
    Ok(Running {
        enroll: Enroll::new(pool, Arc::new(auth))
            .with_intune(intune)
            .with_single_des(cfg.allow_single_des)
            .with_ocsp_cache(cfg.ocsp_cache_seconds)
            .with_gate(Gate::new(
                cfg.challenge_failure_limit,
                chrono::Duration::seconds(i64::from(cfg.challenge_failure_window_seconds)),
            ))
            .with_webhooks(
                server::webhook::Sealer::from_passphrase(&key_passphrase)
                    .map_err(|e| format!("deriving the webhook key: {e}"))?,
            ),
        db,
        data,
        key_passphrase,
    })
}

/// The Intune client (docs/intune.md): its trust roots and longest wait.
fn intune(
    cfg: &Config,
    pass: &server::ca::key_file::Passphrase,
) -> Result<server::intune::Intune, String> {
    let bundle = match &cfg.intune_ca_bundle {
        Some(p) => {
            Some(std::fs::read(p).map_err(|e| format!("intune_ca_bundle {}: {e}", p.display()))?)
        }
        None => None,
    };
    server::intune::Intune::new(
        pass,
        bundle.as_deref(),
        std::time::Duration::from_secs(u64::from(cfg.intune_timeout_seconds)),
    )
    .map_err(|e| format!("Intune client: {e}"))
}

/// Fetch Intune's revocation requests every `every` (docs/intune.md).
fn spawn_intune_revocations(enroll: Enroll, every: std::time::Duration) -> Result<(), String> {
    std::thread::Builder::new()
        .name("intune-revocations".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            match enroll.intune_revocation_round() {
                Ok(rounds) => {
                    for r in rounds.iter().filter(|r| r.downloaded > 0) {
                        tracing::info!(
                            profile = r.profile_id,
                            downloaded = r.downloaded,
                            revoked = r.revoked,
                            failed = r.failed,
                            "Intune revocation requests applied"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Intune revocation round"),
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the Intune revocation thread: {e}"))
}

pub fn run(cfg: Config) -> Result<(), String> {
    if let Some(why) = cfg.plain_console_refusal() {
        return Err(why);
    }
    // The operator's certificate is checked before anything starts, so a
    // bad file stops start-up with nothing to undo.
    if let Some(server::tls::ConsoleTls {
        source: server::tls::TlsSource::Files { cert, key },
        ..
    }) = &cfg.console_tls
    {
        server::tls::load_files(cert, key).map_err(|e| format!("console TLS: {e}"))?;
    }
    let running = start(&cfg, bootstrap::IdentityOptions::default())?;
    let result = serve(&cfg, &running);
    if let Some(cluster) = running.db.cluster {
        if let Err(e) = cluster.stop() {
            tracing::warn!(error = %e, "stopping the private PostgreSQL cluster");
        }
    }
    result
}

fn serve(cfg: &Config, running: &Running) -> Result<(), String> {
    // Profiles, the console and the API hand out SCEP URLs under it.
    if let Some(reason) = server::public_url::unreachable_reason(&cfg.public_url) {
        tracing::warn!("{reason}");
    }
    let enroll = running.enroll.clone();
    let site = ::web::SiteInfo {
        public_url: cfg.public_url.clone(),
        ca_fingerprint: enroll.authority().ca.fingerprint().to_string(),
        public_url_warning: server::public_url::unreachable_reason(&cfg.public_url),
    };
    let console_settings = ::web::ConsoleSettings {
        require_mrao_second_factor: cfg.require_mrao_second_factor,
        ..::web::ConsoleSettings::new(cfg.console_idle_seconds, &cfg.public_url)
    };
    let second_factor_key = aweb::Data::new(
        server::admin::second_factor::SecretBox::from_passphrase(&running.key_passphrase)
            .map_err(|e| format!("deriving the second-factor key: {e}"))?,
    );
    let signing = aweb::Data::new(::web::ProfileSigning(
        server::mobileconfig::ensure_signer(
            &running.data,
            &enroll.authority().ca,
            &running.key_passphrase,
        )
        .map(std::sync::Arc::new)
        .map_err(
            |e| tracing::warn!(error = %e, "no profile signer; console profile downloads are off"),
        )
        .ok(),
    ));
    let tls = match &cfg.console_tls {
        Some(t) => {
            let (cert, first) = ConsoleCert::load(
                t.source.clone(),
                running.data.clone(),
                enroll.clone(),
                running.key_passphrase.clone(),
            )?;
            let rustls =
                server::tls::server_config(cert.store.clone()).map_err(|e| e.to_string())?;
            Some((t.listen, Arc::new(cert), rustls, first))
        }
        None => None,
    };
    tracing::info!(
        listen = %cfg.listen,
        console_listen = %cfg.console_tls.as_ref().map_or_else(|| "-".into(), |t| t.listen.to_string()),
        scep_url = %format!("{}/scep", cfg.public_url),
        data_dir = %running.data.display(),
        "scepd starting"
    );
    let max_body = cfg.max_body_bytes;
    let blocking_threads = (cfg.db_pool_size as usize / cfg.workers.max(1)).max(2);
    let api = server::api::ApiState {
        pool: enroll.pool().clone(),
        enroll: enroll.clone(),
        signer: signing.0.clone(),
        max_unused: cfg.challenge_max_unused,
        public_url: cfg.public_url.clone(),
    };
    // Notifications: one sender per process; rows are leased, so several
    // processes never deliver the same mail.
    server::notify::sender::spawn(
        enroll.pool().clone(),
        cfg.mail.clone(),
        cfg.public_url.clone(),
    )
    .map_err(|e| format!("cannot start the notification sender: {e}"))?;
    if cfg.intune_revocation_poll_seconds > 0 {
        spawn_intune_revocations(
            enroll.clone(),
            std::time::Duration::from_secs(u64::from(cfg.intune_revocation_poll_seconds)),
        )?;
    }
    // Notification webhooks: one sender per process, rows leased likewise.
    if let Some(sealer) = enroll.webhook_sealer() {
        server::webhook::sender::spawn(
            enroll.pool().clone(),
            sealer,
            server::webhook::sender::SenderSettings {
                poll_seconds: cfg.mail.poll_seconds,
                max_attempts: cfg.mail.max_attempts,
                retry_base_seconds: cfg.mail.retry_base_seconds,
            },
        )
        .map_err(|e| format!("cannot start the webhook sender: {e}"))?;
    }
    // One set of counters for all workers (App factories run per worker).
    let metrics = aweb::Data::new(
        server::http::metrics::Metrics::new().with_token_sha256(cfg.metrics_token_sha256),
    );
    // Read by the SCEP endpoint, the console and the access log alike, so
    // each names the same client.
    let trusted_proxies = aweb::Data::new(cfg.trusted_proxies.clone());
    // The console's access-code checks are limited like a device's
    // challenge attempts, with the same settings (keyed by officer).
    let code_gate = aweb::Data::new(Gate::new(
        cfg.challenge_failure_limit,
        chrono::Duration::seconds(i64::from(cfg.challenge_failure_window_seconds)),
    ));
    let purge_every =
        std::time::Duration::from_secs(u64::from(cfg.challenge_purge_interval_seconds));
    let mail = cfg.mail.clone();
    let pool = api.pool.clone();
    // The App of one listener: SCEP, CRL, health and metrics always; the
    // API and the console only where `console` says.
    let app = move |console: bool| {
        let second_factor_key = second_factor_key.clone();
        let (enroll, metrics, site, console_cfg, signing, mail, api, code_gate, trusted_proxies) = (
            enroll.clone(),
            metrics.clone(),
            site.clone(),
            console_settings.clone(),
            signing.clone(),
            mail.clone(),
            api.clone(),
            code_gate.clone(),
            trusted_proxies.clone(),
        );
        move || {
            let trusted = trusted_proxies.clone();
            App::new()
                .app_data(aweb::Data::new(enroll.clone()))
                .app_data(metrics.clone())
                .app_data(aweb::Data::new(site.clone()))
                .app_data(aweb::Data::new(console_cfg.clone()))
                .app_data(second_factor_key.clone())
                .app_data(signing.clone())
                .app_data(aweb::Data::new(mail.clone()))
                .app_data(aweb::PayloadConfig::new(max_body))
                .app_data(aweb::Data::new(api.clone()))
                .app_data(code_gate.clone())
                .app_data(trusted_proxies.clone())
                .wrap(
                    // Not `%r`: a GET PKIOperation's query holds the request.
                    middleware::Logger::new("%{client}xi \"%{request}xi\" %s %b %Dms")
                        .custom_request_replace("client", move |req| {
                            server::http::client_ip(req.request(), &trusted)
                                .map_or_else(|| "-".to_string(), |ip| ip.to_string())
                        })
                        .custom_request_replace("request", server::http::request_line)
                        .log_target("scepd::http"),
                )
                .configure(server::http::configure)
                .configure(move |c| {
                    if console {
                        server::api::configure(c);
                        ::web::configure(c);
                    }
                })
        }
    };
    let (workers, listen, data) = (cfg.workers, cfg.listen, running.data.clone());
    actix_web::rt::System::new().block_on(async move {
        actix_web::rt::spawn(purge_challenges(pool, purge_every));
        let plain = HttpServer::new(app(tls.is_none()))
            .workers(workers)
            // Enrollment work (RSA, diesel) runs on blocking threads; more of
            // them than database connections only queues on the pool.
            .worker_max_blocking_threads(blocking_threads)
            .bind(listen)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?
            .run();
        let Some((addr, cert, rustls, first)) = tls else {
            actix_web::rt::spawn(console_tls::on_sighup(None));
            announce(cfg, &data, &format!("http://{}/", shown(listen)));
            return plain.await.map_err(|e| e.to_string());
        };
        let secure = HttpServer::new(app(true))
            .workers(workers)
            .worker_max_blocking_threads(blocking_threads)
            .bind_rustls_0_23(addr, rustls)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?
            .run();
        actix_web::rt::spawn(console_tls::on_sighup(Some(cert.clone())));
        actix_web::rt::spawn(console_tls::renew_self_issued(cert));
        let host = first
            .names
            .iter()
            .find_map(|n| n.strip_prefix("DNS:").filter(|d| !d.starts_with('*')))
            .map_or_else(
                || shown(addr).to_string(),
                |d| format!("{d}:{}", addr.port()),
            );
        announce(cfg, &data, &format!("https://{host}/"));
        futures_util::future::try_join(plain, secure)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// A wildcard listen address as a browser would be pointed at it.
fn shown(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            (std::net::Ipv4Addr::LOCALHOST, addr.port()).into()
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            (std::net::Ipv6Addr::LOCALHOST, addr.port()).into()
        }
        _ => addr,
    }
}

/// Where the console is and how to log in, once the listeners are open.
fn announce(cfg: &Config, data: &std::path::Path, console_url: &str) {
    let trust = match &cfg.console_tls {
        Some(server::tls::ConsoleTls {
            source: server::tls::TlsSource::SelfIssued { .. },
            ..
        }) => format!(
            "\n  Its certificate is issued by scepd's CA: have browsers trust {}",
            data.join("ca").join("ca.crt").display()
        ),
        _ => String::new(),
    };
    eprintln!(
        "\n  RA console: {console_url}  (log in as an MRAO; the first one is {:?}){trust}\n  SCEP:       {}/scep\n",
        cfg.admin_username, cfg.public_url
    );
}

/// Delete expired, unused challenges now and then (audited by `gate::purge`).
/// Every process runs this; the deletes are idempotent.
async fn purge_challenges(pool: store::PgPool, every: std::time::Duration) {
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        let pool = pool.clone();
        let res = aweb::block(move || {
            let mut conn = pool.get()?;
            gate::purge(&mut conn, chrono::Utc::now())
        })
        .await;
        match res {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(purged = n, "expired challenges purged"),
            Ok(Err(e)) => tracing::warn!(error = %e, "purging expired challenges"),
            Err(e) => tracing::warn!(error = %e, "purging expired challenges"),
        }
    }
}
