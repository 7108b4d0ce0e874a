//! Integration tests: a real `scepd` process, real PostgreSQL, real SCEP
//! clients (micromdm `scepclient` and the project's own client code).

mod device;
mod protocol;
mod scepclient;
mod support;
