//! Challenges bound to a device (`challenges.device_identity`, minted with
//! `--device` or the API's `device_identity`): what such a challenge may
//! issue. The rule is here alone; both enrollment paths ask it, and the
//! database only compares the challenge's identity with its answer.
//!
//! A challenge bound to X issues a certificate for device X and nothing
//! else (docs/scep.md, "Challenges bound to a device"):
//!
//! - the issued subject (as the profile's template builds it) names X: it
//!   has a CN or a serialNumber, and every CN and every serialNumber in it
//!   is X. Relying parties identify a device by either attribute, so an
//!   attribute the challenge did not bind would be the device's to choose;
//! - every SAN is one the profile's SAN pattern allows (`policy::check`
//!   has applied it) or, on a profile without a pattern, X itself.

use openssl::nid::Nid;
use openssl::x509::X509NameRef;

use super::policy::san_value;
use crate::csr::{Csr, San};
use crate::store::profiles::Profile;

/// The one identity a challenge bound to a device must name to issue
/// `subject` with the CSR's SANs; `None` when no bound challenge may issue
/// it (an unbound challenge still may). `subject` has passed
/// `policy::check` for `profile`.
pub fn bound_identity(profile: &Profile, subject: &X509NameRef, csr: &Csr) -> Option<String> {
    let has_pattern = profile
        .san_pattern
        .as_deref()
        .is_some_and(|p| !p.trim().is_empty());
    identity_of(subject, &csr.sans, has_pattern)
}

fn identity_of(subject: &X509NameRef, sans: &[San], has_pattern: bool) -> Option<String> {
    let mut named = subject
        .entries()
        .filter(|e| matches!(e.object().nid(), Nid::COMMONNAME | Nid::SERIALNUMBER))
        .map(|e| e.data().to_string().ok());
    let identity = named.next()??;
    if !named.all(|v| v.as_deref() == Some(identity.as_str())) {
        return None;
    }
    let sans_allowed = has_pattern
        || sans
            .iter()
            .all(|s| san_value(s).eq_ignore_ascii_case(&identity));
    sans_allowed.then_some(identity)
}

#[cfg(test)]
mod tests {
    use openssl::x509::{X509Name, X509NameBuilder};

    use super::*;

    fn name(parts: &[(&str, &str)]) -> X509Name {
        let mut b = X509NameBuilder::new().unwrap();
        for (k, v) in parts {
            b.append_entry_by_text(k, v).unwrap();
        }
        b.build()
    }

    #[test]
    fn the_subject_names_one_identity_in_every_cn_and_serial_number() {
        let id = |parts: &[(&str, &str)]| identity_of(&name(parts), &[], false);
        assert_eq!(id(&[("CN", "C02X")]), Some("C02X".into()));
        assert_eq!(
            id(&[("serialNumber", "C02X"), ("O", "Acme")]),
            Some("C02X".into())
        );
        assert_eq!(
            id(&[("CN", "C02X"), ("serialNumber", "C02X")]),
            Some("C02X".into())
        );
        assert_eq!(id(&[("CN", "ceo-laptop"), ("serialNumber", "C02X")]), None);
        assert_eq!(id(&[("O", "Acme")]), None);
    }

    #[test]
    fn sans_need_the_profiles_pattern_or_name_the_identity() {
        let subject = name(&[("CN", "printer-7")]);
        let own = [San::Dns("PRINTER-7".into())];
        let other = [San::Dns("ceo-laptop.corp".into())];
        assert_eq!(identity_of(&subject, &own, false), Some("printer-7".into()));
        assert_eq!(identity_of(&subject, &other, false), None);
        assert_eq!(
            identity_of(&subject, &other, true),
            Some("printer-7".into())
        );
    }
}
