//! Windows MDM (the ClientCertificateInstall CSP's SCEP client): the
//! PKCSReq is signed with a self-signed certificate that carries a
//! *critical* authorityKeyIdentifier (beside keyUsage and
//! subjectKeyIdentifier). A server that treats that signer as a CA
//! certificate to validate, or refuses unknown critical extensions in it,
//! refuses the device. Fixture: `tests/data/interop/windows-mdm-critical-aki.pem`.

use server::wire::{Nonce, TransactionId};

use super::messages::{assert_issued, Ra, Requester};
use crate::support::Scepd;

#[test]
fn windows_mdm_signer_with_critical_authority_key_identifier_enrolls() {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    let dev = Requester::fixture("windows-mdm-critical-aki.pem");
    // The fixture is what it claims: v3, self-signed, AKI marked critical.
    let text = crate::support::openssl_text(&dev.cert);
    assert!(
        text.contains("X509v3 Authority Key Identifier: critical"),
        "{text}"
    );
    assert_eq!(
        dev.cert.subject_name().to_der().unwrap(),
        dev.cert.issuer_name().to_der().unwrap()
    );

    let cn = "WinMDM-7F3C2A91-5B0E-4D7A-9C11-3E8A2D4B6F00";
    let csr = dev.csr(cn, Some(&s.mint("default")), &[]);
    let txid = TransactionId("6D3E1C0B8A1F4E55B0A92C7D4E9F1A37".into());
    let nonce = Nonce::random().unwrap();
    let msg = dev.pkcs_req(&ra, &txid, &nonce, &csr);
    let rep = dev.send(&s, &ra, &msg).rep(&s);
    assert_issued(&s, &rep, &txid, &nonce, &dev.key);
    assert_eq!(s.count("certificates"), 1);
}
