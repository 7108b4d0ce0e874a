//! Integration tests: a real `scepd` process, real PostgreSQL, real SCEP
//! clients (micromdm `scepclient` and the project's own client code).

mod api;
mod challenges;
mod console;
mod console_browser;
mod device;
mod lifecycle;
mod mail;
mod mobileconfig;
mod policy;
mod protocol;
mod scepclient;
mod support;
