//! Typed configuration: defaults < TOML file (`--config`) < environment
//! (`SCEPD_*`, `DATABASE_URL`) < command-line flags. Every key is a
//! `serve`/`init` flag, so `scepd serve --help` documents them all.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ca::KeySpec;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Settings as given (flags, environment, file); `None` means "not set here".
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "snake_case")]
pub struct Settings {
    /// TOML file with any of these settings (snake_case keys).
    #[arg(long, env = "SCEPD_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Plain-HTTP address: SCEP, CRL, health and metrics, and the console
    /// and API unless console_listen is set [default: 127.0.0.1:8080].
    #[arg(long, env = "SCEPD_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// HTTPS address of the console and the JSON API (SCEP too); the
    /// listen address then serves only SCEP, CRL, health and metrics
    /// [default: none].
    #[arg(long, env = "SCEPD_CONSOLE_LISTEN", global = true)]
    pub console_listen: Option<SocketAddr>,
    /// PEM certificate of the HTTPS listener, followed by its chain;
    /// reloaded on SIGHUP. Unset: scepd's CA issues one for tls_names.
    #[arg(long, env = "SCEPD_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Unencrypted PEM private key of tls_cert; reloaded on SIGHUP.
    #[arg(long, env = "SCEPD_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// DNS names and IP addresses of the self-issued HTTPS certificate,
    /// comma-separated [default: localhost,127.0.0.1,::1, the
    /// console_listen address and the public URL's host].
    #[arg(long, env = "SCEPD_TLS_NAMES", global = true)]
    pub tls_names: Option<String>,
    /// Serve the console and API over plain HTTP although listen is not a
    /// loopback address (only behind a TLS-terminating proxy) [default: false].
    #[arg(
        long,
        env = "SCEPD_CONSOLE_INSECURE_HTTP",
        global = true,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub console_insecure_http: Option<bool>,
    /// Data directory: CA/RA keys, and the private PostgreSQL cluster when
    /// no database URL is given [default: ./scepd-data].
    #[arg(long, env = "SCEPD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL. Unset: scepd runs its own cluster under the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connections per process [default: 16].
    #[arg(long, env = "SCEPD_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// URL devices use to reach scepd; written into certificates as the CRL
    /// distribution point [default: http://<listen>].
    #[arg(long, env = "SCEPD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// HTTP worker threads [default: number of CPUs].
    #[arg(long, env = "SCEPD_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Key of a newly generated CA: rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 [default: rsa3072].
    #[arg(long, env = "SCEPD_CA_KEY_TYPE", global = true)]
    pub ca_key_type: Option<String>,
    /// Key of the RA certificate (RSA, used for SCEP key transport): rsa2048, rsa3072, rsa4096 [default: rsa2048].
    #[arg(long, env = "SCEPD_RA_KEY_TYPE", global = true)]
    pub ra_key_type: Option<String>,
    /// Common name of a newly generated CA [default: scepd CA].
    #[arg(long, env = "SCEPD_CA_COMMON_NAME", global = true)]
    pub ca_common_name: Option<String>,
    /// Organization (O) of a newly generated CA [default: scepd].
    #[arg(long, env = "SCEPD_CA_ORGANIZATION", global = true)]
    pub ca_organization: Option<String>,
    /// Validity of a newly generated CA in days [default: 3650].
    #[arg(long, env = "SCEPD_CA_VALIDITY_DAYS", global = true)]
    pub ca_validity_days: Option<u32>,
    /// Validity of the RA certificate in days [default: 730].
    #[arg(long, env = "SCEPD_RA_VALIDITY_DAYS", global = true)]
    pub ra_validity_days: Option<u32>,
    /// Username of the first MRAO created at bootstrap [default: admin].
    #[arg(long, env = "SCEPD_ADMIN_USERNAME", global = true)]
    pub admin_username: Option<String>,
    /// Password of the first MRAO; when unset a random one is printed once.
    #[arg(
        long,
        env = "SCEPD_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
    /// Largest accepted PKIOperation body in bytes [default: 262144].
    #[arg(long, env = "SCEPD_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// Accept requests enveloped with single DES, as micromdm's scepclient
    /// sends them; replies then use DES too [default: true].
    #[arg(long, env = "SCEPD_ALLOW_SINGLE_DES", global = true)]
    pub allow_single_des: Option<bool>,
    /// Seconds an OCSP answer's certificate status may be served from this
    /// process's memory (its nextUpdate says so); a revocation is answered
    /// by every node within it. 0: read PostgreSQL for every answer [default: 60].
    #[arg(long, env = "SCEPD_OCSP_CACHE_SECONDS", global = true)]
    pub ocsp_cache_seconds: Option<u32>,
    /// RA console session idle timeout in seconds [default: 1800].
    #[arg(long, env = "SCEPD_CONSOLE_IDLE_SECONDS", global = true)]
    pub console_idle_seconds: Option<u32>,
    /// Unused one-time challenges allowed per profile and organization;
    /// minting beyond it is refused [default: 10000].
    #[arg(long, env = "SCEPD_CHALLENGE_MAX_UNUSED", global = true)]
    pub challenge_max_unused: Option<u32>,
    /// Failed challenge attempts per client address and window before the
    /// client is refused unexamined; 0 disables the limit [default: 20].
    #[arg(long, env = "SCEPD_CHALLENGE_FAILURE_LIMIT", global = true)]
    pub challenge_failure_limit: Option<u32>,
    /// Length of the failed-attempt window in seconds, at most 86400 [default: 900].
    #[arg(long, env = "SCEPD_CHALLENGE_FAILURE_WINDOW_SECONDS", global = true)]
    pub challenge_failure_window_seconds: Option<u32>,
    /// Seconds between purges of expired challenges [default: 300].
    #[arg(long, env = "SCEPD_CHALLENGE_PURGE_INTERVAL_SECONDS", global = true)]
    pub challenge_purge_interval_seconds: Option<u32>,
    /// PEM certificates trusted for Microsoft Intune's and Entra ID's HTTPS
    /// besides the public roots (a TLS-inspecting proxy's CA) [default: none].
    #[arg(long, env = "SCEPD_INTUNE_CA_BUNDLE", global = true)]
    pub intune_ca_bundle: Option<PathBuf>,
    /// Longest wait, in seconds, for Intune while a device waits (token,
    /// discovery and validation together), 1 to 120 [default: 15].
    #[arg(long, env = "SCEPD_INTUNE_TIMEOUT_SECONDS", global = true)]
    pub intune_timeout_seconds: Option<u32>,
    /// Seconds between fetches of Intune's revocation requests; 0: never
    /// [default: 300].
    #[arg(long, env = "SCEPD_INTUNE_REVOCATION_POLL_SECONDS", global = true)]
    pub intune_revocation_poll_seconds: Option<u32>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SCEPD_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// SMTP server for notifications; unset: mails are queued, not sent.
    #[arg(long, env = "SCEPD_SMTP_HOST", global = true)]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 25, 587 with starttls, 465 with tls].
    #[arg(long, env = "SCEPD_SMTP_PORT", global = true)]
    pub smtp_port: Option<u16>,
    /// SMTP transport security: none, starttls or tls (implicit) [default: starttls].
    #[arg(long, env = "SCEPD_SMTP_TLS", global = true)]
    pub smtp_tls: Option<String>,
    /// SMTP user name (authentication only when set with the password).
    #[arg(long, env = "SCEPD_SMTP_USERNAME", global = true)]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(
        long,
        env = "SCEPD_SMTP_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,
    /// Sender address of notifications [default: scepd@localhost].
    #[arg(long, env = "SCEPD_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// Seconds pending-request notices wait to be folded into one digest per officer [default: 300].
    #[arg(long, env = "SCEPD_NOTIFY_DIGEST_SECONDS", global = true)]
    pub notify_digest_seconds: Option<u32>,
    /// Seconds between outbox polls [default: 10].
    #[arg(long, env = "SCEPD_NOTIFY_POLL_SECONDS", global = true)]
    pub notify_poll_seconds: Option<u32>,
    /// Delivery attempts before a mail is marked failed [default: 8].
    #[arg(long, env = "SCEPD_NOTIFY_MAX_ATTEMPTS", global = true)]
    pub notify_max_attempts: Option<u32>,
    /// First retry delay in seconds, doubled per attempt, at most an hour [default: 30].
    #[arg(long, env = "SCEPD_NOTIFY_RETRY_BASE_SECONDS", global = true)]
    pub notify_retry_base_seconds: Option<u32>,
    /// Seconds between scans for expiring certificates [default: 3600].
    #[arg(long, env = "SCEPD_NOTIFY_EXPIRY_SCAN_SECONDS", global = true)]
    pub notify_expiry_scan_seconds: Option<u32>,
    /// Days before expiry to remind contacts, comma-separated [default: 30,7,1].
    #[arg(long, env = "SCEPD_EXPIRY_REMINDER_DAYS", global = true)]
    pub expiry_reminder_days: Option<String>,
    /// Bearer token a scraper must send to read /metrics; unset, /metrics
    /// is open (serve it to a trusted network only). Only its SHA-256 is
    /// kept in memory.
    #[arg(long, env = "SCEPD_METRICS_TOKEN", global = true)]
    pub metrics_token: Option<String>,
    /// MRAOs must set up a TOTP second factor before the console lets them
    /// do anything else [default: false].
    #[arg(long, env = "SCEPD_REQUIRE_MRAO_SECOND_FACTOR", global = true)]
    pub require_mrao_second_factor: Option<bool>,
    /// Passphrase that encrypts the private keys in <data>/ca (prefer
    /// --key-passphrase-file or the systemd credential scepd-key-passphrase)
    /// [default: generated into <data>/key-passphrase].
    #[arg(
        long,
        env = "SCEPD_KEY_PASSPHRASE",
        global = true,
        hide_env_values = true
    )]
    pub key_passphrase: Option<String>,
    /// File holding the passphrase that encrypts the private keys.
    #[arg(long, env = "SCEPD_KEY_PASSPHRASE_FILE", global = true)]
    pub key_passphrase_file: Option<PathBuf>,
    /// Reverse proxies whose X-Forwarded-For is believed, comma-separated
    /// addresses and networks (127.0.0.1,10.0.0.0/8,::1); unset, the TCP
    /// peer is the client for the challenge lockout, login throttling and
    /// the audit log [default: none].
    #[arg(long, env = "SCEPD_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// PKCS#11 module of the HSM holding the CA key (docs/hsm.md); unset,
    /// the CA key is a file [e.g. /usr/lib/softhsm/libsofthsm2.so].
    #[arg(long, env = "SCEPD_PKCS11_MODULE", global = true)]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the HSM token [default: the only initialized token].
    #[arg(long, env = "SCEPD_PKCS11_TOKEN", global = true)]
    pub pkcs11_token: Option<String>,
    /// Slot of the HSM token, instead of its label.
    #[arg(long, env = "SCEPD_PKCS11_SLOT", global = true)]
    pub pkcs11_slot: Option<u64>,
    /// User PIN of the token (prefer --pkcs11-pin-file).
    #[arg(long, env = "SCEPD_PKCS11_PIN", global = true, hide_env_values = true)]
    pub pkcs11_pin: Option<String>,
    /// File holding the user PIN of the token.
    #[arg(long, env = "SCEPD_PKCS11_PIN_FILE", global = true)]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// Label of the CA key `scepd init` creates or uses in the token [default: scepd-ca].
    #[arg(long, env = "SCEPD_PKCS11_KEY_LABEL", global = true)]
    pub pkcs11_key_label: Option<String>,
}

/// Resolved, validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The console's HTTPS listener, when there is one.
    pub console_tls: Option<crate::tls::ConsoleTls>,
    /// The operator accepts a plain-HTTP console on a non-loopback address.
    pub console_insecure_http: bool,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub db_pool_size: u32,
    pub public_url: String,
    pub workers: usize,
    pub ca_key_type: KeySpec,
    pub ra_key_type: KeySpec,
    pub ca_common_name: String,
    pub ca_organization: String,
    pub ca_validity_days: u32,
    pub ra_validity_days: u32,
    pub admin_username: String,
    pub admin_password: Option<String>,
    pub max_body_bytes: usize,
    pub allow_single_des: bool,
    pub ocsp_cache_seconds: u32,
    pub console_idle_seconds: u32,
    pub challenge_max_unused: u32,
    pub challenge_failure_limit: u32,
    pub challenge_failure_window_seconds: u32,
    pub challenge_purge_interval_seconds: u32,
    pub log_json: bool,
    /// Extra roots for Intune's HTTPS (`intune::Client`).
    pub intune_ca_bundle: Option<PathBuf>,
    pub intune_timeout_seconds: u32,
    pub intune_revocation_poll_seconds: u32,
    /// SHA-256 of the token /metrics requires (None: open).
    pub metrics_token_sha256: Option<[u8; 32]>,
    /// SMTP and notification settings (issue 6).
    pub mail: crate::notify::MailSettings,
    /// Proxies whose X-Forwarded-For names the client (empty: none).
    pub trusted_proxies: crate::http::TrustedProxies,
    /// MRAOs need a second factor (`admin::second_factor`).
    pub require_mrao_second_factor: bool,
    /// The keys' passphrase itself, or the file holding it (`key_store`).
    pub key_passphrase: Option<String>,
    pub key_passphrase_file: Option<PathBuf>,
    /// The HSM holding the CA key, if any.
    pub pkcs11: Option<crate::ca::pkcs11::Pkcs11Settings>,
}

impl std::fmt::Debug for Config {
    // Secrets stay out of logs: the admin password and any password in the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("console_tls", &self.console_tls)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("db_pool_size", &self.db_pool_size)
            .field("public_url", &self.public_url)
            .field("workers", &self.workers)
            .field("ca_key_type", &self.ca_key_type)
            .field("ra_key_type", &self.ra_key_type)
            .field("admin_username", &self.admin_username)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("mail", &self.mail)
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "metrics_token",
                &self.metrics_token_sha256.map(|_| "<redacted>"),
            )
            .field(
                "key_passphrase",
                &self.key_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("key_passphrase_file", &self.key_passphrase_file)
            .field("pkcs11", &self.pkcs11)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also
/// a `password=` (or `sslpassword=`) parameter in a URL's query or in libpq's keyword/value
/// form (`host=a,b password=secret ...`).
pub fn redact_url(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    redact_password_parameter(&url)
}

/// Replaces the value of every `password=` or `sslpassword=` keyword
/// (after the start, a space, `?` or `&`) with `***`; a quoted value ends
/// at its closing quote.
fn redact_password_parameter(s: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(KEY) {
        // `sslpassword` (the client key's passphrase) is a secret too.
        let before = rest[..i].strip_suffix("ssl").unwrap_or(&rest[..i]);
        let starts_key = before.is_empty()
            || before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || c == '?' || c == '&');
        out.push_str(&rest[..i + KEY.len()]);
        rest = &rest[i + KEY.len()..];
        if !starts_key {
            continue;
        }
        let end = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find(|&(_, c)| {
                let closes = c == '\'' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            });
            close.map_or(rest.len(), |(j, _)| j + 2)
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '&')
                .unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

impl Settings {
    /// Fill what flags/env left unset from the TOML file, then defaults.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(p) => Self::from_file(p)?,
            None => Settings::default(),
        };
        let s = self.or(file);
        let mail = mail_settings(&s)?;
        let listen = s
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let public_url = s
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: "must start with http:// or https://".into(),
            });
        }
        let console_tls = console_tls(&s, listen, &public_url)?;
        let key = |k: &'static str, v: Option<String>, d: &str| -> Result<KeySpec, ConfigError> {
            v.as_deref()
                .unwrap_or(d)
                .parse()
                .map_err(|e: crate::ca::CaError| ConfigError::Invalid {
                    key: k,
                    message: e.to_string(),
                })
        };
        let pkcs11 = pkcs11_settings(&s)?;
        let ra_key_type = key("ra_key_type", s.ra_key_type, "rsa2048")?;
        if !matches!(ra_key_type, KeySpec::Rsa(_)) {
            return Err(ConfigError::Invalid {
                key: "ra_key_type",
                message: "the RA key must be RSA (SCEP key transport)".into(),
            });
        }
        let log_json = match s.log_format.as_deref().unwrap_or("text") {
            "text" => false,
            "json" => true,
            other => {
                return Err(ConfigError::Invalid {
                    key: "log_format",
                    message: format!("{other:?} is neither text nor json"),
                })
            }
        };
        let pool = s.db_pool_size.unwrap_or(16);
        if pool == 0 {
            return Err(ConfigError::Invalid {
                key: "db_pool_size",
                message: "must be at least 1".into(),
            });
        }
        let window = s.challenge_failure_window_seconds.unwrap_or(900);
        if window == 0 || window > 86_400 {
            return Err(ConfigError::Invalid {
                key: "challenge_failure_window_seconds",
                message: "must be between 1 and 86400".into(),
            });
        }
        let ocsp_cache = s.ocsp_cache_seconds.unwrap_or(60);
        if ocsp_cache > 86_400 {
            return Err(ConfigError::Invalid {
                key: "ocsp_cache_seconds",
                message: "must be at most 86400 (a day)".into(),
            });
        }
        let intune_timeout = s.intune_timeout_seconds.unwrap_or(15);
        if !(1..=120).contains(&intune_timeout) {
            return Err(ConfigError::Invalid {
                key: "intune_timeout_seconds",
                message: "must be between 1 and 120".into(),
            });
        }
        let trusted_proxies = s
            .trusted_proxies
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|message| ConfigError::Invalid {
                key: "trusted_proxies",
                message,
            })?;
        Ok(Config {
            listen,
            console_tls,
            console_insecure_http: s.console_insecure_http.unwrap_or(false),
            data_dir: s.data_dir.unwrap_or_else(|| PathBuf::from("scepd-data")),
            database_url: s.database_url.filter(|u| !u.trim().is_empty()),
            db_pool_size: pool,
            public_url: public_url.trim_end_matches('/').to_string(),
            workers: s.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            }),
            ca_key_type: key("ca_key_type", s.ca_key_type, "rsa3072")?,
            ra_key_type,
            ca_common_name: s.ca_common_name.unwrap_or_else(|| "scepd CA".into()),
            ca_organization: s.ca_organization.unwrap_or_else(|| "scepd".into()),
            ca_validity_days: s.ca_validity_days.unwrap_or(3650),
            ra_validity_days: s.ra_validity_days.unwrap_or(730),
            admin_username: s.admin_username.unwrap_or_else(|| "admin".into()),
            admin_password: s.admin_password.filter(|p| !p.is_empty()),
            max_body_bytes: s.max_body_bytes.unwrap_or(256 * 1024),
            allow_single_des: s.allow_single_des.unwrap_or(true),
            ocsp_cache_seconds: ocsp_cache,
            console_idle_seconds: s.console_idle_seconds.unwrap_or(1800).max(1),
            challenge_max_unused: s.challenge_max_unused.unwrap_or(10_000),
            challenge_failure_limit: s.challenge_failure_limit.unwrap_or(20),
            challenge_failure_window_seconds: window,
            challenge_purge_interval_seconds: s
                .challenge_purge_interval_seconds
                .unwrap_or(300)
                .max(1),
            log_json,
            intune_ca_bundle: s.intune_ca_bundle,
            intune_timeout_seconds: intune_timeout,
            intune_revocation_poll_seconds: s.intune_revocation_poll_seconds.unwrap_or(300),
            metrics_token_sha256: s
                .metrics_token
                .filter(|t| !t.is_empty())
                .map(|t| openssl::sha::sha256(t.as_bytes())),
            mail,
            trusted_proxies,
            require_mrao_second_factor: s.require_mrao_second_factor.unwrap_or(false),
            pkcs11,
            key_passphrase: s.key_passphrase.filter(|p| !p.is_empty()),
            key_passphrase_file: s.key_passphrase_file,
        })
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    fn or(self, o: Settings) -> Settings {
        Settings {
            config: self.config,
            listen: self.listen.or(o.listen),
            console_listen: self.console_listen.or(o.console_listen),
            tls_cert: self.tls_cert.or(o.tls_cert),
            tls_key: self.tls_key.or(o.tls_key),
            tls_names: self.tls_names.or(o.tls_names),
            console_insecure_http: self.console_insecure_http.or(o.console_insecure_http),
            data_dir: self.data_dir.or(o.data_dir),
            database_url: self.database_url.or(o.database_url),
            db_pool_size: self.db_pool_size.or(o.db_pool_size),
            public_url: self.public_url.or(o.public_url),
            workers: self.workers.or(o.workers),
            ca_key_type: self.ca_key_type.or(o.ca_key_type),
            ra_key_type: self.ra_key_type.or(o.ra_key_type),
            ca_common_name: self.ca_common_name.or(o.ca_common_name),
            ca_organization: self.ca_organization.or(o.ca_organization),
            ca_validity_days: self.ca_validity_days.or(o.ca_validity_days),
            ra_validity_days: self.ra_validity_days.or(o.ra_validity_days),
            admin_username: self.admin_username.or(o.admin_username),
            admin_password: self.admin_password.or(o.admin_password),
            max_body_bytes: self.max_body_bytes.or(o.max_body_bytes),
            allow_single_des: self.allow_single_des.or(o.allow_single_des),
            ocsp_cache_seconds: self.ocsp_cache_seconds.or(o.ocsp_cache_seconds),
            console_idle_seconds: self.console_idle_seconds.or(o.console_idle_seconds),
            challenge_max_unused: self.challenge_max_unused.or(o.challenge_max_unused),
            challenge_failure_limit: self.challenge_failure_limit.or(o.challenge_failure_limit),
            challenge_failure_window_seconds: self
                .challenge_failure_window_seconds
                .or(o.challenge_failure_window_seconds),
            challenge_purge_interval_seconds: self
                .challenge_purge_interval_seconds
                .or(o.challenge_purge_interval_seconds),
            intune_ca_bundle: self.intune_ca_bundle.or(o.intune_ca_bundle),
            intune_timeout_seconds: self.intune_timeout_seconds.or(o.intune_timeout_seconds),
            intune_revocation_poll_seconds: self
                .intune_revocation_poll_seconds
                .or(o.intune_revocation_poll_seconds),
            log_format: self.log_format.or(o.log_format),
            smtp_host: self.smtp_host.or(o.smtp_host),
            smtp_port: self.smtp_port.or(o.smtp_port),
            smtp_tls: self.smtp_tls.or(o.smtp_tls),
            smtp_username: self.smtp_username.or(o.smtp_username),
            smtp_password: self.smtp_password.or(o.smtp_password),
            mail_from: self.mail_from.or(o.mail_from),
            notify_digest_seconds: self.notify_digest_seconds.or(o.notify_digest_seconds),
            notify_poll_seconds: self.notify_poll_seconds.or(o.notify_poll_seconds),
            notify_max_attempts: self.notify_max_attempts.or(o.notify_max_attempts),
            notify_retry_base_seconds: self
                .notify_retry_base_seconds
                .or(o.notify_retry_base_seconds),
            notify_expiry_scan_seconds: self
                .notify_expiry_scan_seconds
                .or(o.notify_expiry_scan_seconds),
            expiry_reminder_days: self.expiry_reminder_days.or(o.expiry_reminder_days),
            metrics_token: self.metrics_token.or(o.metrics_token),
            trusted_proxies: self.trusted_proxies.or(o.trusted_proxies),
            require_mrao_second_factor: self
                .require_mrao_second_factor
                .or(o.require_mrao_second_factor),
            key_passphrase: self.key_passphrase.or(o.key_passphrase),
            key_passphrase_file: self.key_passphrase_file.or(o.key_passphrase_file),
            pkcs11_module: self.pkcs11_module.or(o.pkcs11_module),
            pkcs11_token: self.pkcs11_token.or(o.pkcs11_token),
            pkcs11_slot: self.pkcs11_slot.or(o.pkcs11_slot),
            pkcs11_pin: self.pkcs11_pin.or(o.pkcs11_pin),
            pkcs11_pin_file: self.pkcs11_pin_file.or(o.pkcs11_pin_file),
            pkcs11_key_label: self.pkcs11_key_label.or(o.pkcs11_key_label),
        }
    }
}

impl Config {
    /// Why `serve` must not start as configured: the console and API (with
    /// their passwords, cookies, API keys and enrollment challenges) would
    /// be served over plain HTTP on an address other hosts reach. A
    /// loopback address stays on the machine, so the zero-config default
    /// (127.0.0.1:8080) is allowed.
    pub fn plain_console_refusal(&self) -> Option<String> {
        let ip = self.listen.ip().to_canonical();
        if self.console_tls.is_some() || self.console_insecure_http || ip.is_loopback() {
            return None;
        }
        let https = std::net::SocketAddr::new(self.listen.ip(), 8443);
        Some(format!(
            "refusing to serve the console and API over plain HTTP on {listen}, which is not a \
             loopback address: officers' passwords, session cookies, API keys and the challenges \
             in .mobileconfig downloads would cross the network unencrypted.\n\
             Serve them over HTTPS with --console-listen {https} (SCEPD_CONSOLE_LISTEN; scepd's CA \
             issues a certificate for --tls-names, or give your own with --tls-cert and --tls-key); \
             SCEP stays on {listen}.\n\
             Behind a TLS-terminating proxy, pass --console-insecure-http \
             (SCEPD_CONSOLE_INSECURE_HTTP=true) instead.",
            listen = self.listen,
        ))
    }
}

/// The console's HTTPS listener and its certificate source, validated.
fn console_tls(
    s: &Settings,
    listen: SocketAddr,
    public_url: &str,
) -> Result<Option<crate::tls::ConsoleTls>, ConfigError> {
    use crate::tls::{ConsoleTls, TlsSource};
    if s.tls_cert.is_some() != s.tls_key.is_some() {
        return Err(ConfigError::Invalid {
            key: if s.tls_cert.is_some() {
                "tls_key"
            } else {
                "tls_cert"
            },
            message: "tls_cert and tls_key go together: give both".into(),
        });
    }
    let Some(addr) = s.console_listen else {
        if s.tls_cert.is_some() || s.tls_names.is_some() {
            return Err(ConfigError::Invalid {
                key: "console_listen",
                message: "tls_cert, tls_key and tls_names are for the HTTPS listener: set \
                          console_listen too (e.g. 0.0.0.0:8443); SCEP stays on listen"
                    .into(),
            });
        }
        return Ok(None);
    };
    if addr == listen {
        return Err(ConfigError::Invalid {
            key: "console_listen",
            message: format!("{addr} is also the plain-HTTP listen address; choose another port"),
        });
    }
    let source = match (&s.tls_cert, &s.tls_key, &s.tls_names) {
        (Some(_), Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "tls_names",
                message: "names the self-issued certificate; with tls_cert the names are that \
                          certificate's own"
                    .into(),
            })
        }
        (Some(cert), Some(key), None) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        (_, _, Some(names)) => TlsSource::SelfIssued {
            names: crate::tls::parse_names(names).map_err(|message| ConfigError::Invalid {
                key: "tls_names",
                message,
            })?,
        },
        _ => TlsSource::SelfIssued {
            names: crate::tls::default_names(addr, public_url),
        },
    };
    Ok(Some(ConsoleTls {
        listen: addr,
        source,
    }))
}

/// The HSM settings; the PIN is read here so that a missing one stops
/// start-up with its name.
fn pkcs11_settings(s: &Settings) -> Result<Option<crate::ca::pkcs11::Pkcs11Settings>, ConfigError> {
    let Some(module) = s.pkcs11_module.clone() else {
        return Ok(None);
    };
    let invalid = |key, message: String| ConfigError::Invalid { key, message };
    let pin = match (&s.pkcs11_pin, &s.pkcs11_pin_file) {
        (Some(pin), _) => pin.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| invalid("pkcs11_pin_file", format!("{}: {e}", path.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, None) => {
            return Err(invalid(
                "pkcs11_pin",
                "SCEPD_PKCS11_MODULE is set: give the token's PIN in SCEPD_PKCS11_PIN_FILE \
                 (or SCEPD_PKCS11_PIN)"
                    .into(),
            ))
        }
    };
    Ok(Some(crate::ca::pkcs11::Pkcs11Settings {
        module,
        token_label: s.pkcs11_token.clone().filter(|t| !t.is_empty()),
        slot: s.pkcs11_slot,
        pin,
        key_label: s
            .pkcs11_key_label
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "scepd-ca".into()),
    }))
}

/// The notification settings, validated.
fn mail_settings(s: &Settings) -> Result<crate::notify::MailSettings, ConfigError> {
    use crate::notify::SmtpTls;
    let smtp_tls: SmtpTls = s
        .smtp_tls
        .as_deref()
        .unwrap_or("starttls")
        .parse()
        .map_err(|message| ConfigError::Invalid {
            key: "smtp_tls",
            message,
        })?;
    let default_port = match smtp_tls {
        SmtpTls::None => 25,
        SmtpTls::StartTls => 587,
        SmtpTls::Tls => 465,
    };
    let days = s
        .expiry_reminder_days
        .as_deref()
        .unwrap_or("30,7,1")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<u32>().ok().filter(|d| (1..=3650).contains(d)))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| ConfigError::Invalid {
            key: "expiry_reminder_days",
            message: "must be comma-separated day counts between 1 and 3650".into(),
        })?;
    let from = s
        .mail_from
        .clone()
        .unwrap_or_else(|| "scepd@localhost".into());
    if !from.contains('@') {
        return Err(ConfigError::Invalid {
            key: "mail_from",
            message: "must be an email address".into(),
        });
    }
    Ok(crate::notify::MailSettings {
        smtp_host: s.smtp_host.clone().filter(|h| !h.trim().is_empty()),
        smtp_port: s.smtp_port.unwrap_or(default_port),
        smtp_tls,
        smtp_username: s.smtp_username.clone().filter(|u| !u.is_empty()),
        smtp_password: s.smtp_password.clone().filter(|p| !p.is_empty()),
        from,
        digest_seconds: s.notify_digest_seconds.unwrap_or(300),
        poll_seconds: s.notify_poll_seconds.unwrap_or(10).max(1),
        max_attempts: s.notify_max_attempts.unwrap_or(8).max(1),
        retry_base_seconds: s.notify_retry_base_seconds.unwrap_or(30).max(1),
        expiry_scan_seconds: s.notify_expiry_scan_seconds.unwrap_or(3600).max(1),
        expiry_reminder_days: days,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
