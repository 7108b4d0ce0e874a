//! Integration tests: a real `scepd` process, real PostgreSQL, real SCEP
//! clients (micromdm `scepclient` and the project's own client code).

mod api;
mod api_key_limits;
mod ca_certs;
mod challenges;
mod console;
mod console_admin;
mod console_admin_profiles;
mod console_audit;
mod console_browser;
mod console_bulk;
mod console_pages;
mod console_profiles;
mod console_search;
mod device;
mod enroll_paths;
mod faults;
mod fuzz_replay;
mod group_commit;
mod hostile;
mod hsm;
mod interop;
mod lifecycle;
mod mail;
mod mail_sink;
mod metrics;
mod mobileconfig;
mod policy;
mod protocol;
mod scepclient;
mod security;
mod support;
