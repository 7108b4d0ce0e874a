//! The PKIOperation handler behind a valid signature and envelope: the
//! input chooses the message type, signer (RSA, P-256, DSA, or a
//! certificate issued here), cipher, digest, profile, client, challenge,
//! transactionID, nonce and the content — a CSR built from hostile
//! subject/SAN/challengePassword bytes and signed by the device, or raw
//! messageData — and the target signs and envelopes it to the fuzzing RA
//! (layout in `pki_harness::signed_message`). Random mutations of a whole
//! message almost never pass the signature check; this puts them in front
//! of CSR parsing, policy, challenge use, issuance and the database.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod pki_harness;

fuzz_target!(|data: &[u8]| {
    pki_harness::run_signed(pki_harness::Harness::global(), data);
});
