//! A device certificate profile's settings as an officer chooses them, and
//! the rules they must pass before they are stored: the vocabulary
//! issuance uses (RFC 5280 key usage and EKU names in `ca::profile`), the
//! subject template and SAN pattern exactly as `enroll::policy` applies
//! them, and the ranges the database's CHECK constraints hold.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{FieldError, Place, Refusals};
use crate::ca::{Eku, KeyUsage};
use crate::enroll::policy;
use crate::store::profiles::{NewProfile, Profile};

pub const CERT_TYPES: &[&str] = &["device", "user"];
pub const SAN_TYPES: &[&str] = &["dns", "email", "uri", "upn", "ip"];
/// The names `csr` gives the curves it recognises.
pub const EC_CURVES: &[&str] = &["P-256", "P-384", "P-521"];
pub const HASH_ALGS: &[&str] = &["sha256", "sha384", "sha512"];
pub const APPROVAL_MODES: &[&str] = &["auto", "manual"];
pub const KEY_USAGES: &[&str] = &[
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
];

pub const VALIDITY_DAYS: (i32, i32) = (1, 3650);
/// What the database holds; a profile made or changed since accepts no
/// less than [`NEW_MIN_RSA_BITS`] (`profiles::vet`, which knows the stored
/// value an older profile may keep).
pub const MIN_RSA_BITS: (i32, i32) = (1024, 16384);
/// NIST SP 800-131A disallows 1024-bit RSA signatures since 2013.
pub const NEW_MIN_RSA_BITS: i32 = 2048;
pub const RENEWAL_WINDOW_DAYS: (i32, i32) = (0, 3650);
pub const MAX_ACTIVE: (i32, i32) = (0, 10_000);

/// Every setting of a profile, and the places it is enabled for. Field
/// names are the `device_profiles` columns; `places` is `profile_scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDraft {
    pub profile_id: String,
    pub name: String,
    pub cert_type: String,
    pub validity_days: i32,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub subject_template: String,
    pub san_types: Vec<String>,
    pub san_pattern: Option<String>,
    pub min_rsa_bits: i32,
    pub allowed_ec_curves: Vec<String>,
    pub hash_alg: String,
    pub approval_mode: String,
    pub renewal_window_days: i32,
    pub max_active_per_device: i32,
    pub revoke_on_replace: bool,
    pub allow_post: bool,
    pub certrep_includes_chain: bool,
    pub signer_key_must_match: bool,
    pub auto_renew: bool,
    pub renewal_allows_identity_change: bool,
    /// `des`, `des3` or `aes` ([`policy::MIN_CIPHERS`]).
    pub min_cipher: String,
    pub include_crl_dp: bool,
    pub include_ocsp_url: bool,
    /// A CSR may ask for less than `validity_days` (`csr::validity`).
    pub honor_requested_validity: bool,
    pub enabled: bool,
    pub places: Vec<Place>,
}

impl ProfileDraft {
    /// A new profile as a fresh installation's default one is made.
    pub fn defaults(profile_id: &str, name: &str) -> Self {
        let d = NewProfile::with_defaults(profile_id, name);
        Self {
            profile_id: d.profile_id.into(),
            name: d.name.into(),
            cert_type: d.cert_type.into(),
            validity_days: d.validity_days,
            key_usage: d.key_usage,
            extended_key_usage: d.extended_key_usage,
            subject_template: d.subject_template.into(),
            san_types: d.san_types,
            san_pattern: None,
            min_rsa_bits: d.min_rsa_bits,
            allowed_ec_curves: d.allowed_ec_curves,
            hash_alg: d.hash_alg.into(),
            approval_mode: d.approval_mode.into(),
            renewal_window_days: d.renewal_window_days,
            max_active_per_device: d.max_active_per_device,
            revoke_on_replace: d.revoke_on_replace,
            allow_post: d.allow_post,
            certrep_includes_chain: d.certrep_includes_chain,
            signer_key_must_match: d.signer_key_must_match,
            auto_renew: d.auto_renew,
            renewal_allows_identity_change: d.renewal_allows_identity_change,
            min_cipher: d.min_cipher.into(),
            include_crl_dp: d.include_crl_dp,
            include_ocsp_url: d.include_ocsp_url,
            honor_requested_validity: d.honor_requested_validity,
            enabled: true,
            places: vec![],
        }
    }

    /// A stored profile, to edit.
    pub fn of(p: &Profile, mut places: Vec<Place>) -> Self {
        // The order `normalized` gives (SQL sorts NULL departments last),
        // so an edit that keeps the places does not record a change.
        places.sort();
        Self {
            profile_id: p.profile_id.clone(),
            name: p.name.clone(),
            cert_type: p.cert_type.clone(),
            validity_days: p.validity_days,
            key_usage: p.key_usage.clone(),
            extended_key_usage: p.extended_key_usage.clone(),
            subject_template: p.subject_template.clone(),
            san_types: p.san_types.clone(),
            san_pattern: p.san_pattern.clone(),
            min_rsa_bits: p.min_rsa_bits,
            allowed_ec_curves: p.allowed_ec_curves.clone(),
            hash_alg: p.hash_alg.clone(),
            approval_mode: p.approval_mode.clone(),
            renewal_window_days: p.renewal_window_days,
            max_active_per_device: p.max_active_per_device,
            revoke_on_replace: p.revoke_on_replace,
            allow_post: p.allow_post,
            certrep_includes_chain: p.certrep_includes_chain,
            signer_key_must_match: p.signer_key_must_match,
            auto_renew: p.auto_renew,
            renewal_allows_identity_change: p.renewal_allows_identity_change,
            min_cipher: p.min_cipher.clone(),
            include_crl_dp: p.include_crl_dp,
            include_ocsp_url: p.include_ocsp_url,
            honor_requested_validity: p.honor_requested_validity,
            enabled: p.enabled,
            places,
        }
    }

    /// Surrounding blanks trimmed, empty list entries and repeats dropped,
    /// curves spelled as `csr` reports them, places in a stable order.
    pub fn normalized(&self) -> Self {
        fn list(v: &[String]) -> Vec<String> {
            let mut out: Vec<String> = vec![];
            for s in v.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            out
        }
        let mut d = self.clone();
        d.profile_id = d.profile_id.trim().into();
        d.name = d.name.trim().into();
        d.subject_template = d.subject_template.trim().into();
        d.key_usage = list(&d.key_usage);
        d.extended_key_usage = list(&d.extended_key_usage);
        d.san_types = list(&d.san_types)
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect();
        d.allowed_ec_curves = list(&d.allowed_ec_curves)
            .into_iter()
            .map(|c| {
                EC_CURVES
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(&c))
                    .map_or(c, |k| (*k).to_string())
            })
            .collect();
        d.san_pattern = d
            .san_pattern
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        d.min_cipher = d.min_cipher.trim().to_ascii_lowercase();
        d.places.sort();
        d.places.dedup();
        d
    }

    /// Every rule the settings break (places are checked by the caller,
    /// against the database and the officer's scope).
    pub fn check(&self) -> Vec<FieldError> {
        let mut e = Refusals::default();
        let id_ok = (1..=64).contains(&self.profile_id.len())
            && self
                .profile_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !id_ok {
            e.add(
                "profile_id",
                "profile ID must be 1–64 letters, digits, '.', '_' or '-'",
            );
        }
        if self.name.is_empty() || self.name.chars().count() > 200 {
            e.add("name", "name must be 1–200 characters");
        }
        one_of(
            &mut e,
            "cert_type",
            "certificate type",
            &self.cert_type,
            CERT_TYPES,
        );
        range(
            &mut e,
            "validity_days",
            "validity",
            self.validity_days,
            VALIDITY_DAYS,
            "days",
        );
        if let Some(bad) = self
            .key_usage
            .iter()
            .find(|k| KeyUsage::from_str(k).is_err())
        {
            e.add("key_usage", format!("unknown key usage '{bad}'"));
        }
        if let Some(bad) = self
            .extended_key_usage
            .iter()
            .find(|k| Eku::from_str(k).is_err())
        {
            e.add(
                "extended_key_usage",
                format!("unknown extended key usage '{bad}'"),
            );
        }
        if let Err(v) = policy::check_template(&self.subject_template) {
            e.add("subject_template", format!("subject template: {v}"));
        }
        if let Some(bad) = self
            .san_types
            .iter()
            .find(|t| !SAN_TYPES.contains(&t.as_str()))
        {
            e.add(
                "san_types",
                format!("unknown SAN type '{bad}' (use {})", SAN_TYPES.join(", ")),
            );
        }
        if let Some(p) = &self.san_pattern {
            if let Err(err) = policy::san_regex(p) {
                // The regex crate's message ends with the one line that
                // says what is wrong; the lines above draw a caret.
                let text = err.to_string();
                let why = text.lines().last().unwrap_or_default().trim();
                let why = why.strip_prefix("error: ").unwrap_or(why);
                e.add("san_pattern", format!("invalid SAN pattern: {why}"));
            }
        }
        range(
            &mut e,
            "min_rsa_bits",
            "minimum RSA key size",
            self.min_rsa_bits,
            MIN_RSA_BITS,
            "bits",
        );
        if let Some(bad) = self
            .allowed_ec_curves
            .iter()
            .find(|c| !EC_CURVES.contains(&c.as_str()))
        {
            e.add(
                "allowed_ec_curves",
                format!("unknown EC curve '{bad}' (use {})", EC_CURVES.join(", ")),
            );
        }
        one_of(
            &mut e,
            "hash_alg",
            "signature hash",
            &self.hash_alg,
            HASH_ALGS,
        );
        one_of(
            &mut e,
            "approval_mode",
            "approval",
            &self.approval_mode,
            APPROVAL_MODES,
        );
        range(
            &mut e,
            "renewal_window_days",
            "renewal window",
            self.renewal_window_days,
            RENEWAL_WINDOW_DAYS,
            "days",
        );
        range(
            &mut e,
            "max_active_per_device",
            "active certificates per device",
            self.max_active_per_device,
            MAX_ACTIVE,
            "(0 = no limit)",
        );
        one_of(
            &mut e,
            "min_cipher",
            "minimum envelope cipher",
            &self.min_cipher,
            policy::MIN_CIPHERS,
        );
        e.into_vec()
    }

    /// The row to insert or the changes to make.
    pub fn as_new(&self) -> NewProfile<'_> {
        NewProfile {
            profile_id: &self.profile_id,
            name: &self.name,
            cert_type: &self.cert_type,
            validity_days: self.validity_days,
            key_usage: self.key_usage.clone(),
            extended_key_usage: self.extended_key_usage.clone(),
            subject_template: &self.subject_template,
            san_types: self.san_types.clone(),
            san_pattern: self.san_pattern.as_deref(),
            min_rsa_bits: self.min_rsa_bits,
            allowed_ec_curves: self.allowed_ec_curves.clone(),
            hash_alg: &self.hash_alg,
            approval_mode: &self.approval_mode,
            renewal_window_days: self.renewal_window_days,
            max_active_per_device: self.max_active_per_device,
            revoke_on_replace: self.revoke_on_replace,
            allow_post: self.allow_post,
            certrep_includes_chain: self.certrep_includes_chain,
            signer_key_must_match: self.signer_key_must_match,
            auto_renew: self.auto_renew,
            renewal_allows_identity_change: self.renewal_allows_identity_change,
            min_cipher: &self.min_cipher,
            include_crl_dp: self.include_crl_dp,
            include_ocsp_url: self.include_ocsp_url,
            honor_requested_validity: self.honor_requested_validity,
        }
    }
}

fn one_of(e: &mut Refusals, name: &'static str, what: &str, v: &str, allowed: &[&str]) {
    if !allowed.contains(&v) {
        e.add(name, format!("{what} must be {}", allowed.join(" or ")));
    }
}

fn range(
    e: &mut Refusals,
    name: &'static str,
    what: &str,
    v: i32,
    (lo, hi): (i32, i32),
    unit: &str,
) {
    if !(lo..=hi).contains(&v) {
        e.add(name, format!("{what} must be {lo}–{hi} {unit}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(d: &ProfileDraft, name: &str) -> Option<String> {
        d.check()
            .into_iter()
            .find(|e| e.field == name)
            .map(|e| e.message)
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(ProfileDraft::defaults("wifi", "Wi-Fi").check(), vec![]);
    }

    #[test]
    fn each_bad_field_is_named_with_its_reason() {
        let mut d = ProfileDraft::defaults("bad id!", "");
        d.validity_days = 0;
        d.extended_key_usage = vec!["clientAuth".into(), "fooAuth".into()];
        d.key_usage = vec!["keyCertSign".into()];
        d.subject_template = "CN={{Host}}".into();
        d.san_types = vec!["dns".into(), "x400".into()];
        d.san_pattern = Some("(unclosed".into());
        d.min_rsa_bits = 512;
        d.allowed_ec_curves = vec!["P-192".into()];
        d.hash_alg = "md5".into();
        d.approval_mode = "sometimes".into();
        d.renewal_window_days = -1;
        d.max_active_per_device = -1;
        assert!(message(&d, "profile_id").is_some());
        assert!(message(&d, "name").is_some());
        assert_eq!(
            message(&d, "validity_days").unwrap(),
            "validity must be 1–3650 days"
        );
        assert_eq!(
            message(&d, "extended_key_usage").unwrap(),
            "unknown extended key usage 'fooAuth'"
        );
        assert!(message(&d, "key_usage").unwrap().contains("keyCertSign"));
        assert!(message(&d, "subject_template")
            .unwrap()
            .contains("{{Host}}"));
        assert!(message(&d, "san_types").unwrap().contains("x400"));
        let pat = message(&d, "san_pattern").unwrap();
        assert!(pat.starts_with("invalid SAN pattern: "), "{pat}");
        assert!(!pat.contains('\n'));
        for f in [
            "min_rsa_bits",
            "allowed_ec_curves",
            "hash_alg",
            "approval_mode",
            "renewal_window_days",
            "max_active_per_device",
        ] {
            assert!(message(&d, f).is_some(), "{f}");
        }
        assert!(message(&d, "cert_type").is_none());
    }

    #[test]
    fn normalizing_trims_dedups_and_spells_curves_canonically() {
        let mut d = ProfileDraft::defaults(" wifi ", " Wi-Fi ");
        d.extended_key_usage = vec![" clientAuth".into(), "".into(), "clientAuth".into()];
        d.allowed_ec_curves = vec!["p-256".into()];
        d.san_pattern = Some("  ".into());
        d.places = vec![(2, None), (1, Some(3)), (2, None)];
        let n = d.normalized();
        assert_eq!(n.profile_id, "wifi");
        assert_eq!(n.extended_key_usage, vec!["clientAuth"]);
        assert_eq!(n.allowed_ec_curves, vec!["P-256"]);
        assert_eq!(n.san_pattern, None);
        assert_eq!(n.places, vec![(1, Some(3)), (2, None)]);
        assert_eq!(n.check(), vec![]);
    }
}

/// The switches a client can change on a profile as it stands, each left
/// alone when absent: what `scepd profile set` and the API's
/// `PATCH /api/v1/profiles/{id}` take, applied through
/// `admin::profiles::change` (vetted, audited, revision raised).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub certrep_includes_chain: Option<bool>,
    pub signer_key_must_match: Option<bool>,
    pub auto_renew: Option<bool>,
    pub renewal_allows_identity_change: Option<bool>,
    pub revoke_on_replace: Option<bool>,
    pub min_cipher: Option<String>,
    /// Issued certificates carry the CRL distribution point.
    pub include_crl_dp: Option<bool>,
    /// Issued certificates carry the OCSP URL (authorityInfoAccess).
    pub include_ocsp_url: Option<bool>,
    /// A CSR's requested validity shortens the certificate's.
    pub honor_requested_validity: Option<bool>,
}

impl SettingsPatch {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        [
            self.certrep_includes_chain,
            self.signer_key_must_match,
            self.auto_renew,
            self.renewal_allows_identity_change,
            self.revoke_on_replace,
            self.include_crl_dp,
            self.include_ocsp_url,
            self.honor_requested_validity,
        ]
        .iter()
        .all(Option::is_none)
            && self.min_cipher.is_none()
    }

    /// Write the given settings into `d`.
    pub fn apply(&self, d: &mut ProfileDraft) {
        let flags = [
            (self.certrep_includes_chain, &mut d.certrep_includes_chain),
            (self.signer_key_must_match, &mut d.signer_key_must_match),
            (self.auto_renew, &mut d.auto_renew),
            (
                self.renewal_allows_identity_change,
                &mut d.renewal_allows_identity_change,
            ),
            (self.revoke_on_replace, &mut d.revoke_on_replace),
            (self.include_crl_dp, &mut d.include_crl_dp),
            (self.include_ocsp_url, &mut d.include_ocsp_url),
            (
                self.honor_requested_validity,
                &mut d.honor_requested_validity,
            ),
        ];
        for (given, slot) in flags {
            if let Some(v) = given {
                *slot = v;
            }
        }
        if let Some(v) = &self.min_cipher {
            d.min_cipher = v.clone();
        }
    }
}
