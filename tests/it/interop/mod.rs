//! Interoperability: every SCEP client in the field, real ones where Debian
//! packages them, and fixtures built from public descriptions of the rest
//! (provenance in `tests/data/README.md`).

mod apple;
mod certmonger;
mod chains;
mod cisco;
mod clients;
mod cryptlib_negative;
mod messages;
mod signer_certs;
mod strongswan;
mod windows;
