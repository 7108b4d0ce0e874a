//! A challenge bound to a device identity binds the certificate issued
//! with it, not just the request (docs/scep.md, "Challenges bound to a
//! device"): every CN and serialNumber of the issued subject is that
//! identity, and every SAN is one the profile's pattern allows (or, without
//! a pattern, the identity itself). The default profile copies no UPN,
//! email or URI SAN that no pattern allows. Both enrollment paths give the
//! same verdict: each case is sent once as the one-statement path takes
//! it (signed with the CSR's key) and once as only the general path takes
//! it (signed by another throwaway key).

use openssl::x509::X509;
use server::wire::client::CertRepMsg;
use server::wire::{ContentCipher, FailInfo, MessageType, PkiStatus, TransactionId};

use crate::device::Device;
use crate::support::{last_refusal, Scepd};

#[derive(Clone, Copy, Debug)]
enum Path {
    /// Signed with the CSR's key: the one-statement path serves it.
    Fast,
    /// Signed with another key: only the general path decides.
    General,
}

const PATHS: [Path; 2] = [Path::Fast, Path::General];

fn bound(s: &Scepd, profile: &str, identity: &str) -> String {
    s.cli_ok(&[
        "challenge",
        "mint",
        "--profile",
        profile,
        "--device",
        identity,
    ])
    .trim()
    .to_string()
}

/// Enroll `cn` with extra subject attributes and SANs on `profile` along
/// `path`.
#[allow(clippy::too_many_arguments)]
fn send(
    s: &Scepd,
    profile: &str,
    path: Path,
    challenge: &str,
    cn: &str,
    dn: &[(&str, &str)],
    sans: &[&str],
) -> CertRepMsg {
    let dev = Device::new(cn, 2048);
    let csr = dev.csr_with(Some(challenge), dn, sans);
    let signer = match path {
        Path::Fast => dev,
        Path::General => Device::new("throwaway", 2048),
    };
    let txid = TransactionId(format!("{cn}-{path:?}-{}", hex::encode(rand_bytes())));
    let msg = signer.csr_request(
        s,
        MessageType::PkcsReq,
        &txid,
        &csr,
        ContentCipher::Aes128Cbc,
    );
    signer.send(s, profile, &msg)
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

fn refused(s: &Scepd, rep: &CertRepMsg, path: Path, reason: &str) {
    assert_eq!(rep.status, PkiStatus::Failure, "{path:?}: {rep:?}");
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest), "{path:?}");
    let got = last_refusal(s);
    assert!(got.contains(reason), "{path:?}: {reason:?} not in {got:?}");
}

fn issued(rep: &CertRepMsg, path: Path) -> X509 {
    assert_eq!(rep.status, PkiStatus::Success, "{path:?}: {rep:?}");
    rep.certs[0].clone()
}

fn cn_of(cert: &X509) -> String {
    let e = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    e.data().to_string().unwrap()
}

#[test]
fn a_challenge_bound_to_a_serial_number_issues_no_other_common_name() {
    let s = Scepd::start();
    for path in PATHS {
        // The default subject is CN={{CommonName}}: a CN other than the
        // bound serial number would be a certificate for another device.
        let rep = send(
            &s,
            "default",
            path,
            &bound(&s, "default", "C02XYZ"),
            "ceo-laptop",
            &[("serialNumber", "C02XYZ")],
            &[],
        );
        refused(&s, &rep, path, "challenge is bound to another device");
        // The identity it is bound to, and nothing else, is issued.
        let rep = send(
            &s,
            "default",
            path,
            &bound(&s, "default", "C02XYZ"),
            "C02XYZ",
            &[],
            &[],
        );
        assert_eq!(cn_of(&issued(&rep, path)), "C02XYZ");
    }
    // A subject with the serial number in it binds its CN too: both name
    // the one device, and a relying party may look at either.
    let template = "CN={{CommonName}},serialNumber={{SerialNumber}}";
    s.cli_ok(&["profile", "create", "serials", "--subject", template]);
    for path in PATHS {
        let dn = [("serialNumber", "C02XYZ")];
        let ch = bound(&s, "serials", "C02XYZ");
        let rep = send(&s, "serials", path, &ch, "ceo-laptop", &dn, &[]);
        refused(&s, &rep, path, "challenge is bound to another device");
        let ch = bound(&s, "serials", "C02XYZ");
        let rep = send(&s, "serials", path, &ch, "C02XYZ", &dn, &[]);
        assert_eq!(cn_of(&issued(&rep, path)), "C02XYZ");
    }
}

#[test]
fn a_bound_challenge_issues_no_san_beyond_the_profiles_pattern() {
    let s = Scepd::start();
    for path in PATHS {
        // No SAN pattern: the only SAN a bound challenge issues is the
        // bound identity itself.
        let rep = send(
            &s,
            "default",
            path,
            &bound(&s, "default", "printer-7"),
            "printer-7",
            &[],
            &["DNS:ceo-laptop.corp.example"],
        );
        refused(&s, &rep, path, "challenge is bound to another device");
        let rep = send(
            &s,
            "default",
            path,
            &bound(&s, "default", "printer-7"),
            "printer-7",
            &[],
            &["DNS:printer-7"],
        );
        issued(&rep, path);
    }
}

#[test]
fn the_default_profile_copies_no_upn_email_or_uri_san_without_a_pattern() {
    let s = Scepd::start();
    let upn = "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ceo@corp.example";
    for path in PATHS {
        for san in [
            upn,
            "email:ceo@corp.example",
            "URI:https://corp.example/ceo",
        ] {
            let rep = send(
                &s,
                "default",
                path,
                &s.mint("default"),
                "dev-1",
                &[],
                &[san],
            );
            refused(&s, &rep, path, "needs the profile's SAN pattern");
        }
        // DNS names keep today's rule (the profile's SAN types).
        let rep = send(
            &s,
            "default",
            path,
            &s.mint("default"),
            "dev-2",
            &[],
            &["DNS:dev-2.example"],
        );
        issued(&rep, path);
    }
    // A pattern that allows them lets them through.
    diesel::RunQueryDsl::execute(
        diesel::sql_query(
            "UPDATE device_profiles SET san_pattern = '[a-z0-9.-]+@corp\\.example' \
             WHERE profile_id = 'default'",
        ),
        &mut s.pg(),
    )
    .unwrap();
    for path in PATHS {
        let rep = send(
            &s,
            "default",
            path,
            &s.mint("default"),
            "dev-3",
            &[],
            &[upn],
        );
        issued(&rep, path);
    }
}
