//! RFC 8894 §3.3 PKIOperation end to end: the input is a request body
//! exactly as POSTed to `/scep/default`, handed to
//! `Enroll::pki_operation` with a real PostgreSQL behind it (a scratch
//! database per process, see `pki_harness.rs`). Seeds are real client
//! messages enveloped to the fuzzing RA. Every call must end in HTTP 400
//! or a CertRep signed by the RA; anything else panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod pki_harness;

fuzz_target!(|data: &[u8]| {
    pki_harness::run_raw(pki_harness::Harness::global(), data);
});
