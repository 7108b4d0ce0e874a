//! scepd core: the SCEP wire format, the CA, the enrollment state machine,
//! the challenge service and the PostgreSQL store. `web` and the `scepd`
//! binary use only the public API below.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod api;
pub mod bootstrap;
pub mod ca;
pub mod challenge;
pub mod config;
pub mod csr;
pub mod enroll;
pub(crate) mod fsutil;
pub mod http;
pub mod input;
pub mod intune;
pub mod key_store;
pub mod mobileconfig;
pub mod notify;
pub mod ocsp;
pub mod pgcluster;
pub mod public_url;
pub mod store;
pub mod testdb;
pub mod tls;
pub mod webhook;
pub mod wire;
