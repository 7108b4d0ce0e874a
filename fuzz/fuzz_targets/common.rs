//! The fixed RA identity every target opens messages with. It is checked in
//! (`fuzz/fixtures/`, a throwaway key made for fuzzing only) so that the
//! seed corpus — real client messages enveloped to this RA — decrypts, and
//! a crash found on one machine reproduces on another.

use std::sync::OnceLock;

use openssl::pkey::PKey;
use openssl::x509::X509;
use server::wire::RaIdentity;

pub fn ra() -> &'static RaIdentity {
    static RA: OnceLock<RaIdentity> = OnceLock::new();
    RA.get_or_init(|| {
        RaIdentity::new(
            X509::from_pem(include_bytes!("../fixtures/ra.crt")).expect("fixture RA certificate"),
            PKey::private_key_from_pem(include_bytes!("../fixtures/ra.key"))
                .expect("fixture RA key"),
        )
        .expect("fixture RA identity")
    })
}
