//! `scepd serve`: bootstrap, then the HTTP service until SIGINT/SIGTERM,
//! then stop the private PostgreSQL cluster if we started one.

use std::sync::Arc;

use actix_web::{middleware, web as aweb, App, HttpServer};
use server::bootstrap::{self, Database};
use server::challenge::gate::{self, Gate};
use server::config::Config;
use server::enroll::Enroll;
use server::store;

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
}

/// Bootstrap the data directory, identities and database.
pub fn start(cfg: &Config, import: Option<bootstrap::ImportCa>) -> Result<Running, String> {
    let data = bootstrap::data_dir(cfg).map_err(|e| e.to_string())?;
    let auth = bootstrap::authority(cfg, &data, import).map_err(|e| e.to_string())?;
    let db = bootstrap::database(cfg, &data).map_err(|e| e.to_string())?;
    let pool = store::pool(&db.url, cfg.db_pool_size).map_err(|e| e.to_string())?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let seeded = bootstrap::seed(&mut conn, cfg).map_err(|e| e.to_string())?;
    drop(conn);
    if let Some(user) = &seeded.created_admin {
        match &seeded.admin_password {
            Some(pw) => eprintln!(
                "\n  First MRAO created: username {user:?}, password {pw}\n  (shown once; set SCEPD_ADMIN_PASSWORD to choose it)\n"
            ),
            None => eprintln!("First MRAO created: username {user:?} (password from configuration)"),
        }
    }
    Ok(Running {
        enroll: Enroll::new(pool, Arc::new(auth))
            .with_single_des(cfg.allow_single_des)
            .with_ocsp_cache(cfg.ocsp_cache_seconds)
            .with_gate(Gate::new(
                cfg.challenge_failure_limit,
                chrono::Duration::seconds(i64::from(cfg.challenge_failure_window_seconds)),
            )),
        db,
        data,
    })
}

pub fn run(cfg: Config) -> Result<(), String> {
    let running = start(&cfg, None)?;
    let enroll = running.enroll.clone();
    let site = ::web::SiteInfo {
        public_url: cfg.public_url.clone(),
        ca_fingerprint: enroll.authority().ca.fingerprint().to_string(),
    };
    let console = ::web::ConsoleSettings::new(cfg.console_idle_seconds, &cfg.public_url);
    let signing = aweb::Data::new(::web::ProfileSigning(
        server::mobileconfig::ensure_signer(&running.data, &enroll.authority().ca)
            .map(std::sync::Arc::new)
            .map_err(|e| tracing::warn!(error = %e, "no profile signer; console profile downloads are off"))
            .ok(),
    ));
    tracing::info!(
        listen = %cfg.listen,
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
    let result = actix_web::rt::System::new().block_on(async move {
        actix_web::rt::spawn(purge_challenges(api.pool.clone(), purge_every));
        HttpServer::new(move || {
            let trusted = trusted_proxies.clone();
            App::new()
                .app_data(aweb::Data::new(enroll.clone()))
                .app_data(metrics.clone())
                .app_data(aweb::Data::new(site.clone()))
                .app_data(aweb::Data::new(console.clone()))
                .app_data(signing.clone())
                .app_data(aweb::Data::new(cfg.mail.clone()))
                .app_data(aweb::PayloadConfig::new(max_body))
                .app_data(aweb::Data::new(api.clone()))
                .app_data(code_gate.clone())
                .app_data(trusted_proxies.clone())
                .wrap(
                    middleware::Logger::new("%{client}xi \"%r\" %s %b %Dms")
                        .custom_request_replace("client", move |req| {
                            server::http::client_ip(req.request(), &trusted)
                                .map_or_else(|| "-".to_string(), |ip| ip.to_string())
                        })
                        .log_target("scepd::http"),
                )
                .configure(server::http::configure)
                .configure(server::api::configure)
                .configure(::web::configure)
        })
        .workers(cfg.workers)
        // Enrollment work (RSA, diesel) runs on blocking threads; more of
        // them than database connections only queues on the pool.
        .worker_max_blocking_threads(blocking_threads)
        .bind(cfg.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?
        .run()
        .await
        .map_err(|e| e.to_string())
    });
    if let Some(cluster) = running.db.cluster {
        if let Err(e) = cluster.stop() {
            tracing::warn!(error = %e, "stopping the private PostgreSQL cluster");
        }
    }
    result
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
